package sim

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/conformance"
)

func TestConformance(t *testing.T) {
	host := t.TempDir()
	var last *Driver
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) hypervisor.Driver {
			d, err := New(context.Background(), Options{Dir: host})
			if err != nil {
				t.Fatal(err)
			}
			last = d
			return d
		},
		Spec: func(t *testing.T, id string) hypervisor.InstanceSpec {
			dir := t.TempDir()
			root := filepath.Join(dir, "root.qcow2")
			if err := os.WriteFile(root, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return hypervisor.InstanceSpec{ID: id, Cores: 1, MemoryMiB: 128,
				RootDisk:   hypervisor.Disk{Path: root, Format: hypervisor.QCOW2},
				NICs:       []hypervisor.NIC{{Bridge: "euca-br0", MAC: "d0:0d:00:00:00:01"}},
				ConsoleLog: filepath.Join(dir, "console.log")}
		},
		Foreign: func(t *testing.T, id string) {
			if err := last.DefineForeign(hypervisor.DomainName(id)); err != nil {
				t.Fatal(err)
			}
		},
		Volume: func(t *testing.T, volumeID string) hypervisor.VolumeDisk {
			// What the simulated guest checks: that the socket is there.
			sock := filepath.Join(t.TempDir(), volumeID+".sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return hypervisor.VolumeDisk{VolumeID: volumeID, Serial: strings.ReplaceAll(volumeID, "-", ""), Socket: sock}
		},
		Markers: []string{"EUCA-INITRD-OK", "EUCA-ROOT-OK", "EUCA-READY"},
		Boot:    time.Second,
	})
}

// A record cut short by a crash is dropped, not mistaken for a domain.
func TestRecoverDropsPartialWrites(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "euca-i-1.json.tmp"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	doms, err := d.Recover(context.Background())
	if err != nil || len(doms) != 0 {
		t.Fatalf("Recover = %v, %v", doms, err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("%s left", e.Name())
		}
	}
}

// A host powered down answers nothing, keeps its domains, and answers
// again once woken.
func TestPowerOffAndWake(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := New(ctx, Options{Dir: filepath.Join(dir, "host")})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.qcow2")
	os.WriteFile(root, nil, 0o644)
	spec := hypervisor.InstanceSpec{ID: "i-1", Cores: 1, MemoryMiB: 128,
		RootDisk: hypervisor.Disk{Path: root, Format: hypervisor.QCOW2}, ConsoleLog: filepath.Join(dir, "console.log")}
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.PowerOff(); err != nil || !d.Asleep() {
		t.Fatalf("PowerOff: %v, asleep %v", err, d.Asleep())
	}
	if _, err := d.Capacity(ctx); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Errorf("Capacity asleep: %v", err)
	}
	if _, err := d.List(ctx); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Errorf("List asleep: %v", err)
	}
	spec2 := spec
	spec2.ID = "i-2"
	if _, err := d.Start(ctx, spec2); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Errorf("Start asleep: %v", err)
	}
	if err := d.Wake(); err != nil || d.Asleep() {
		t.Fatalf("Wake: %v, asleep %v", err, d.Asleep())
	}
	doms, err := d.List(ctx)
	if err != nil || len(doms) != 1 || doms[0].ID != "i-1" || doms[0].State != hypervisor.Running {
		t.Fatalf("after waking: %+v, %v", doms, err)
	}
}

// TestHostLivesWithItsProcess: a domain whose simulating process has died
// is gone when the host is opened again (the host lost power with it);
// one whose process still runs, or this process's own, stays.
func TestHostLivesWithItsProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := New(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DefineForeign("euca-i-ours"); err != nil {
		t.Fatal(err)
	}
	// Two other processes: one that keeps running, one that has ended.
	running := exec.Command("sleep", "60")
	ended := exec.Command("sleep", "0.01")
	for _, c := range []*exec.Cmd{running, ended} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { running.Process.Kill(); running.Wait() }()
	runningBoot, endedBoot := processBoot(running.Process.Pid), processBoot(ended.Process.Pid)
	if runningBoot == "" || endedBoot == "" {
		t.Fatalf("process boots %q %q", runningBoot, endedBoot)
	}
	if err := ended.Wait(); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]string{"euca-i-live": runningBoot, "euca-i-dead": endedBoot, "euca-i-old": ""} {
		d.mu.Lock()
		err := d.save(&record{Name: name, State: hypervisor.Running, Boot: b})
		d.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	d2, err := New(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for name := range d2.doms {
		got = append(got, name)
	}
	sort.Strings(got)
	if want := []string{"euca-i-live", "euca-i-ours"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("domains after reopening: %v, want %v", got, want)
	}
	for _, gone := range []string{"euca-i-dead", "euca-i-old"} {
		if _, err := os.Stat(d2.path(gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the record of a guest of a host that lost power stays: %v", gone, err)
		}
	}
}
