package nc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor/libvirt"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// fileImages serves images from files, as Walrus serves decrypted images.
type fileImages map[string]string // image id -> path

func (f fileImages) Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
	p, ok := f[ref.ID]
	if !ok {
		return nil, fmt.Errorf("no image %s", ref.ID)
	}
	return os.Open(p)
}

func fileRef(t *testing.T, id, path string) ncapi.ImageRef {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return ncapi.ImageRef{ID: id, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

// requireLibvirt returns the test guest's directory, or skips with the
// reason this machine cannot boot it (under CI=true it fails: CI runs
// scripts/libvirt-up.sh and `make guest-image` first).
func requireLibvirt(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("EUCA_GUEST_DIR")
	if dir == "" {
		wd, _ := os.Getwd()
		dir = filepath.Join(wd, "..", "..", "build", "guest")
	}
	var why string
	if os.Geteuid() != 0 {
		why = "needs root (libvirtd's guests)"
	} else if c, err := net.DialTimeout("unix", libvirt.DefaultSocket, time.Second); err != nil {
		why = fmt.Sprintf("libvirtd is not reachable at %s (run scripts/libvirt-up.sh): %v", libvirt.DefaultSocket, err)
	} else {
		c.Close()
		for _, f := range []string{"vmlinuz", "initrd.img", "root.img"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				why = fmt.Sprintf("no test guest (run `make guest-image`): %v", err)
				break
			}
		}
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return dir
}

// TestLibvirtBoot boots the test guest through the node controller on
// libvirt (TCG): the cached image under a qcow2 overlay, the kernel and
// ramdisk from the cache, the ephemeral and swap disks the guest mounts;
// then a restart adopts the running guest without rebooting it, and
// termination removes everything.
func TestLibvirtBoot(t *testing.T) {
	needTools(t)
	guest := requireLibvirt(t)
	ctx := context.Background()
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	cfg.InstancePath = filepath.Join(cfg.Home, "instances")
	cfg.SwapSizeMB = 32
	cfg.Hypervisor = "qemu" // TCG: see MACHINE.md on this machine's KVM
	st, err := store.Open(ctx, filepath.Join(cfg.Home, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	imgs := fileImages{
		"emi-0000000000000001": filepath.Join(guest, "root.img"),
		"eki-0000000000000001": filepath.Join(guest, "vmlinuz"),
		"eri-0000000000000001": filepath.Join(guest, "initrd.img"),
	}
	kernel := fileRef(t, "eki-0000000000000001", imgs["eki-0000000000000001"])
	ramdisk := fileRef(t, "eri-0000000000000001", imgs["eri-0000000000000001"])
	req := ncapi.InstanceRequest{ID: fmt.Sprintf("i-%017x", time.Now().UnixNano()&0xffffffffffff), VMType: "m1.small",
		Holds: ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 1},
		Image: fileRef(t, "emi-0000000000000001", imgs["emi-0000000000000001"]), Kernel: &kernel, Ramdisk: &ramdisk}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	start := func() (*Node, *libvirt.Driver) {
		drv, err := libvirt.New(ctx, libvirt.Options{Hypervisor: cfg.Hypervisor, InstancePath: cfg.InstancePath, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(ctx, cfg, st, drv, imgs, log)
		if err != nil {
			drv.Close()
			t.Fatal(err)
		}
		return n, drv
	}
	n, drv := start()
	t.Cleanup(func() { drv.Destroy(ctx, req.ID) })
	if err := n.RunInstance(ctx, req); err != nil {
		t.Fatal(err)
	}
	waitState(t, n, req.ID, ncapi.StateRunning)
	con := waitConsole(t, n, req.ID, "EUCA-READY", 120*time.Second)
	for _, m := range []string{"EUCA-INITRD-OK", "EUCA-ROOT-OK", "EUCA-EPHEMERAL", "EUCA-SWAP"} {
		if !bytes.Contains(con, []byte(m)) {
			t.Errorf("console lacks %s:\n%s", m, con)
		}
	}
	if st := status(t, n); st.Driver != "libvirt/tcg" || st.Free.Cores != st.Max.Cores-1 {
		t.Errorf("status %+v", st)
	}

	// The process ends; the guest runs on; the next start adopts it.
	n.stop()
	drv.Close()
	n, drv = start()
	defer func() { n.stop(); drv.Close() }()
	waitState(t, n, req.ID, ncapi.StateRunning)
	con, err = n.ConsoleOutput(ctx, req.ID)
	if err != nil || bytes.Count(con, []byte("EUCA-INITRD-OK")) != 1 {
		t.Fatalf("after the restart the guest booted %d times (%v):\n%s", bytes.Count(con, []byte("EUCA-INITRD-OK")), err, con)
	}
	if err := n.TerminateInstance(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	doms, err := drv.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if d.ID == req.ID {
			t.Fatalf("domain left: %+v", d)
		}
	}
	if exists(filepath.Join(cfg.InstancePath, req.ID)) {
		t.Fatal("instance files left")
	}
}

// waitConsole waits for marker on id's console (a bound on a stuck boot,
// not a timing assertion).
func waitConsole(t *testing.T, n *Node, id, marker string, bound time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		con, err := n.ConsoleOutput(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(con, []byte(marker)) {
			return con
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the console of %s after %v:\n%s", marker, id, bound, con)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
