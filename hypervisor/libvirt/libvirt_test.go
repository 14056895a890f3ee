package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/conformance"
	"github.com/euca-cloud/euca/hypervisor/disk"
)

// guestFiles are the test guest's kernel, ramdisk and root image.
type guestFiles struct{ kernel, ramdisk, root string }

// requireHost returns the test guest, or skips with the reason this
// machine cannot boot it (under CI=true, fails: CI runs
// scripts/libvirt-up.sh and `make guest-image` first).
func requireHost(t *testing.T) guestFiles {
	t.Helper()
	var why string
	dir := os.Getenv("EUCA_GUEST_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "build", "guest")
	}
	g := guestFiles{filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), filepath.Join(dir, "root.img")}
	if os.Geteuid() != 0 {
		why = "needs root (a bridge, nftables, libvirtd's guests)"
	} else if c, err := net.DialTimeout("unix", DefaultSocket, time.Second); err != nil {
		why = fmt.Sprintf("libvirtd is not reachable at %s (run `make libvirt`): %v", DefaultSocket, err)
	} else {
		c.Close()
		for _, f := range []string{g.kernel, g.ramdisk, g.root} {
			if _, err := os.Stat(f); err != nil {
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
	return g
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// logRecorder keeps the driver's log records for assertions and prints
// them in the test's log.
type logRecorder struct {
	t  *testing.T
	mu sync.Mutex
	rs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.rs = append(l.rs, r)
	l.mu.Unlock()
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.t.Logf("driver %s: %s%s", r.Level, r.Message, b.String())
	return nil
}

func (l *logRecorder) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.rs {
		if r.Level == level {
			n++
		}
	}
	return n
}

func newTCG(t *testing.T) *Driver {
	t.Helper()
	d, err := New(context.Background(), Options{Hypervisor: "qemu", Log: slog.New(&logRecorder{t: t})})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// instanceSpec makes an instance's files as an NC would (an overlay of the
// cached image, an ephemeral and a swap disk) and its spec, its NIC on c's
// bridge.
func instanceSpec(t *testing.T, g guestFiles, c *fakeCloud, id string, noIMDSv2 bool) hypervisor.InstanceSpec {
	t.Helper()
	ctx, dir := context.Background(), t.TempDir()
	s := hypervisor.InstanceSpec{ID: id, Cores: 1, MemoryMiB: 128, // m1.small
		Kernel: g.kernel, Ramdisk: g.ramdisk, KernelCmdline: "console=ttyS0 quiet",
		RootDisk:      hypervisor.Disk{Path: filepath.Join(dir, "root.qcow2"), Format: hypervisor.QCOW2},
		EphemeralDisk: hypervisor.Disk{Path: filepath.Join(dir, "ephemeral.img"), Format: hypervisor.Raw},
		SwapDisk:      hypervisor.Disk{Path: filepath.Join(dir, "swap.img"), Format: hypervisor.Raw},
		NICs:          []hypervisor.NIC{{Bridge: c.bridge, MAC: c.add(id, noIMDSv2).mac}},
		ConsoleLog:    filepath.Join(dir, "console.log"),
		SysInfo:       hypervisor.SysInfo{Manufacturer: "Eucalyptus", Product: "euca"},
	}
	if err := disk.NewOverlay(ctx, g.root, s.RootDisk.Path); err != nil {
		t.Fatal(err)
	}
	if err := disk.NewEphemeral(ctx, s.EphemeralDisk.Path, 1); err != nil {
		t.Fatal(err)
	}
	if err := disk.NewSwap(ctx, s.SwapDisk.Path, 32); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance boots the test guest under TCG through libvirtd and runs
// the suite every driver passes.
func TestConformance(t *testing.T) {
	g := requireHost(t)
	c := newFakeCloud(t)
	conformance.Run(t, conformance.Harness{
		New:  func(t *testing.T) hypervisor.Driver { return newTCG(t) },
		Spec: func(t *testing.T, id string) hypervisor.InstanceSpec { return instanceSpec(t, g, c, id, false) },
		Foreign: func(t *testing.T, id string) {
			// Another tool's domain that happens to carry our prefix.
			d := newTCG(t)
			defer d.Close()
			l, err := d.conn()
			if err != nil {
				t.Fatal(err)
			}
			doc := fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>`+
				`<os><type arch='x86_64'>hvm</type></os></domain>`, hypervisor.DomainName(id))
			dom, err := l.DomainDefineXMLFlags(doc, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				d := newTCG(t)
				defer d.Close()
				if l, err := d.conn(); err == nil {
					l.DomainUndefineFlags(dom, 0)
				}
			})
		},
		Volume:  func(t *testing.T, volumeID string) hypervisor.VolumeDisk { return qemuNBDVolume(t, volumeID, 16) },
		Markers: []string{"EUCA-INITRD-OK", "EUCA-ROOT-OK", "EUCA-READY"},
		Boot:    90 * time.Second,
	})
}

// qemuNBDVolume serves a sparse file of mib MiB as an NBD export on a unix
// socket with qemu-nbd (what QEMU's own NBD client is sure to speak), until
// t ends.
func qemuNBDVolume(t *testing.T, volumeID string, mib int64) hypervisor.VolumeDisk {
	t.Helper()
	bin, err := exec.LookPath("qemu-nbd")
	if err != nil {
		t.Skipf("no qemu-nbd (qemu-utils): %v", err)
	}
	dir := t.TempDir()
	file, sock := filepath.Join(dir, "vol.raw"), filepath.Join(dir, "nbd.sock")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, mib<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--socket="+sock, "--export-name="+volumeID, "--format=raw", "--persistent", "--shared=4", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("qemu-nbd did not listen on %s: %s", sock, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return hypervisor.VolumeDisk{VolumeID: volumeID, Serial: strings.ReplaceAll(volumeID, "-", ""), Socket: sock}
}

// TestGuestNetwork proves the test guest's init: disks found by label, an
// address by DHCP, its identity, key and user data read from
// 169.254.169.254 (with an IMDSv2 token, and without where the service
// refuses tokens), all printed between markers, and HTTP served on port 80.
func TestGuestNetwork(t *testing.T) {
	g := requireHost(t)
	c := newFakeCloud(t)
	ctx := context.Background()
	d := newTCG(t)
	defer d.Close()
	suffix := randSuffix()
	cases := []struct {
		id       string
		noIMDSv2 bool
		imds     string
	}{{"i-netv2" + suffix, false, "EUCA-IMDS v2"}, {"i-netv1" + suffix, true, "EUCA-IMDS v1"}}
	for _, tc := range cases {
		spec := instanceSpec(t, g, c, tc.id, tc.noIMDSv2)
		if _, err := d.Start(ctx, spec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Destroy(ctx, tc.id) })
	}
	for _, tc := range cases {
		gst := c.guest(specMAC(t, d, tc.id))
		con := waitConsole(t, d, tc.id, "EUCA-READY", 120*time.Second)
		for _, want := range []string{
			"EUCA-ROOT-OK",
			"EUCA-EPHEMERAL dev=/dev/vdb",
			"EUCA-SWAP dev=/dev/vdc",
			"EUCA-LEASE ip=" + gst.ip.String() + " ",
			fmt.Sprintf(" mtu=%d\n", guestMTU),
			fmt.Sprintf("EUCA-NIC mac=%s mtu=%d\n", specMAC(t, d, tc.id), bridgeMTU),
			tc.imds,
			"EUCA-META instance-id=" + tc.id + "\n",
			"EUCA-META public-key=" + gst.key + "\n",
			"EUCA-USERDATA-BEGIN\n" + gst.userData + "\nEUCA-USERDATA-END\n",
			"EUCA-HTTPD port=80",
			"EUCA-READY instance-id=" + tc.id,
		} {
			if !strings.Contains(con, want) {
				t.Errorf("%s: console lacks %q:\n%s", tc.id, want, con)
			}
		}
		c.mu.Lock()
		tokenGETs, plainGETs := gst.tokenGETs, gst.plainGETs
		c.mu.Unlock()
		if !tc.noIMDSv2 && (tokenGETs < 3 || plainGETs != 0) {
			t.Errorf("%s: %d GETs with a token, %d without; want all with one", tc.id, tokenGETs, plainGETs)
		}
		if tc.noIMDSv2 && (tokenGETs != 0 || plainGETs < 3) {
			t.Errorf("%s: %d GETs with a token, %d without; want IMDSv1 GETs", tc.id, tokenGETs, plainGETs)
		}
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		body, err := get(gctx, "http://"+gst.ip.String()+"/")
		cancel()
		if err != nil || strings.TrimSpace(body) != tc.id {
			t.Errorf("%s: GET http://%s/ = %q, %v; want the instance id", tc.id, gst.ip, body, err)
		}
	}
}

// TestAccelAuto: under HYPERVISOR=auto the driver uses KVM only after the
// probe guest booted under it; otherwise it says so once and uses TCG. On
// this kind of machine /dev/kvm exists but hangs guests: TCG, one warning.
func TestAccelAuto(t *testing.T) {
	g := requireHost(t)
	rec := &logRecorder{t: t}
	d, err := New(context.Background(), Options{Log: slog.New(rec),
		Probe: Probe{Kernel: g.kernel, Ramdisk: g.ramdisk, Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("auto chose %s", d.Name())
	switch warns := rec.count(slog.LevelWarn); d.Accel() {
	case hypervisor.AccelKVM:
		if warns != 0 {
			t.Errorf("KVM chosen with %d warnings", warns)
		}
	case hypervisor.AccelTCG:
		if warns != 1 {
			t.Errorf("TCG chosen with %d warnings, want exactly one", warns)
		}
	default:
		t.Errorf("accel %q", d.Accel())
	}
	assertNoProbe(t, d)
}

// The probe guest itself works: under TCG it boots, prints its marker and
// powers off (that is what makes a KVM verdict mean something), and a probe
// left by a killed NC is never listed and is removed by Recover.
func TestProbeGuest(t *testing.T) {
	g := requireHost(t)
	ctx := context.Background()
	d := newTCG(t)
	defer d.Close()
	dir := t.TempDir()
	root := filepath.Join(dir, "empty.img")
	os.WriteFile(root, make([]byte, 1<<20), 0o600)
	spec := hypervisor.InstanceSpec{ID: "probe-kvm-" + randSuffix(), Cores: 1, MemoryMiB: 128,
		Kernel: g.kernel, Ramdisk: g.ramdisk, KernelCmdline: DefaultProbeCmdline,
		RootDisk: hypervisor.Disk{Path: root}, ConsoleLog: filepath.Join(dir, "console.log"),
		Accel: hypervisor.AccelTCG}
	if _, err := d.start(ctx, spec, kindProbe); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		con, _ := hypervisor.ReadConsoleFile(spec.ConsoleLog)
		if bytes.Contains(con, []byte(DefaultProbeMarker)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s from the probe under TCG:\n%s", DefaultProbeMarker, con)
		}
		time.Sleep(100 * time.Millisecond)
	}
	doms, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.ID == spec.ID {
			t.Errorf("the probe is listed: %+v", dom)
		}
	}
	if _, err := d.State(ctx, spec.ID); !errors.Is(err, hypervisor.ErrForeign) {
		t.Errorf("State of the probe = %v, want ErrForeign (not an instance)", err)
	}
	if _, err := d.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoProbe(t, d)
}

func assertNoProbe(t *testing.T, d *Driver) {
	t.Helper()
	l, err := d.conn()
	if err != nil {
		t.Fatal(err)
	}
	doms, _, err := l.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive|golibvirt.ConnectListDomainsInactive)
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if strings.HasPrefix(dom.Name, hypervisor.DomainPrefix+"probe-") {
			t.Errorf("probe domain %s left", dom.Name)
		}
	}
}

func specMAC(t *testing.T, d *Driver, id string) string {
	t.Helper()
	doms, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.ID == id {
			return dom.Spec.NICs[0].MAC
		}
	}
	t.Fatalf("%s not listed", id)
	return ""
}

var markerLine = regexp.MustCompile(`(?m)^EUCA-[A-Z0-9-]+`)

// waitConsole waits for marker on id's console and returns the console.
func waitConsole(t *testing.T, d hypervisor.Driver, id, marker string, bound time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		con, err := d.Console(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(con, []byte(marker)) {
			return strings.ReplaceAll(string(con), "\r\n", "\n")
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s after %v; markers so far %q:\n%s", id, marker, bound,
				markerLine.FindAllString(string(con), -1), con)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randSuffix() string { return fmt.Sprintf("%08x", time.Now().UnixNano()&0xffffffff) }
