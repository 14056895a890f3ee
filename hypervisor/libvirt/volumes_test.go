package libvirt

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/diskcmd"
	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/internal/pki"
)

// TestVolumeGuestIO hot-plugs a volume (a file served by internal/nbd over
// TLS, through the node's Proxy on a unix socket) into the running test
// guest, has the guest write a pattern to it (found by its serial, as any
// guest must), unplugs it, checks the bytes reached the volume's file,
// plugs it in again and has the guest read the pattern back: the path a
// guest's EBS volume takes, QEMU's NBD client on a unix socket and all.
func TestVolumeGuestIO(t *testing.T) {
	g := requireHost(t)
	c := newFakeCloud(t)
	ctx := context.Background()
	d := newTCG(t)
	defer d.Close()
	id := "i-vio" + randSuffix()
	spec := instanceSpec(t, g, c, id, false)
	cmds, err := diskcmd.Serve(c.gw.String() + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer cmds.Close()
	c.guest(spec.NICs[0].MAC).userData = cmds.UserData()
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy(ctx, id) })

	const mib = 4
	vol, file := proxiedVolume(t, "vol-0io"+randSuffix(), 16)
	if err := d.AttachVolume(ctx, id, vol); err != nil {
		t.Fatal(err)
	}
	assertLiveDisk(t, d, id, vol, true)
	console := func(ctx context.Context) ([]byte, error) { return d.Console(ctx, id) }
	waitConsole(t, d, id, "EUCA-READY", 120*time.Second)
	w, err := diskcmd.Wait(ctx, console, cmds.Write(vol.Serial, "euca42", mib), 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := diskcmd.Sum("euca42", mib)
	if w.SHA256 != want || w.Dev == "vda" || w.Dev == "" {
		t.Errorf("write: %+v, want sha256 %s on a disk of its own", w, want)
	}
	if err := d.DetachVolume(ctx, id, vol.VolumeID, false); err != nil {
		t.Fatal(err)
	}
	assertLiveDisk(t, d, id, vol, false)
	if got := fileSum(t, file, mib); got != want {
		t.Errorf("the volume's file holds %s, want %s", got, want)
	}
	if err := d.AttachVolume(ctx, id, vol); err != nil {
		t.Fatal(err)
	}
	r, err := diskcmd.Wait(ctx, console, cmds.Read(vol.Serial, mib), 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.SHA256 != want {
		t.Errorf("read back %+v, want sha256 %s", r, want)
	}
	if st, err := d.State(ctx, id); err != nil || st != hypervisor.Running {
		t.Errorf("state %v, %v", st, err)
	}
}

// assertLiveDisk checks whether the running guest has v as a network disk.
func assertLiveDisk(t *testing.T, d *Driver, id string, v hypervisor.VolumeDisk, want bool) {
	t.Helper()
	l, dom, _, err := d.lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	has := false
	for _, dk := range x.Devices.Disks {
		if dk.Alias == nil || dk.Alias.Name != hypervisor.VolumeAlias(v.VolumeID) {
			continue
		}
		has = true
		n := dk.Source.Network
		if n == nil || n.Protocol != "nbd" || len(n.Hosts) != 1 || n.Hosts[0].Socket != v.Socket || dk.Serial != v.Serial {
			t.Errorf("live disk of %s: %+v", v.VolumeID, dk)
		}
	}
	if has != want {
		t.Errorf("live XML has %s: %v, want %v:\n%s", v.VolumeID, has, want, doc)
	}
}

func fileSum(t *testing.T, path string, mib int) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, int64(mib)<<20); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestVolumeIOErrorPauses: a storage side away longer than the proxy
// retries fails the guest's write with an I/O error, which pauses the
// guest (error_policy 'stop') instead of reaching it; ResumeIOError
// resumes it once the storage is back, and the write QEMU retries then
// lands: the guest sees a pause, not an error.
func TestVolumeIOErrorPauses(t *testing.T) {
	g := requireHost(t)
	c := newFakeCloud(t)
	ctx := context.Background()
	d := newTCG(t)
	defer d.Close()
	id := "i-vpause" + randSuffix()
	spec := instanceSpec(t, g, c, id, false)
	cmds, err := diskcmd.Serve(c.gw.String() + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer cmds.Close()
	c.guest(spec.NICs[0].MAC).userData = cmds.UserData()
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy(ctx, id) })
	p := newProxied(t, "vol-0ioe"+randSuffix(), 16, 2*time.Second)
	if err := d.AttachVolume(ctx, id, p.disk); err != nil {
		t.Fatal(err)
	}
	console := func(ctx context.Context) ([]byte, error) { return d.Console(ctx, id) }
	waitConsole(t, d, id, "EUCA-READY", 120*time.Second)
	if _, err := diskcmd.Wait(ctx, console, cmds.Read(p.disk.Serial, 1), 120*time.Second); err != nil {
		t.Fatal(err)
	}
	if resumed, err := d.ResumeIOError(ctx, id); err != nil || resumed {
		t.Fatalf("ResumeIOError of a running guest = %v, %v", resumed, err)
	}

	p.down()
	seq := cmds.Write(p.disk.Serial, "after-pause", 4)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := d.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st == hypervisor.Paused {
			break
		}
		if time.Now().After(deadline) {
			con, _ := d.Console(ctx, id)
			t.Fatalf("the guest did not pause on its volume's I/O error (state %s):\n%s", st, con)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.up()
	resumed, err := d.ResumeIOError(ctx, id)
	if err != nil || !resumed {
		t.Fatalf("ResumeIOError = %v, %v; want resumed", resumed, err)
	}
	r, err := diskcmd.Wait(ctx, console, seq, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := diskcmd.Sum("after-pause", 4); r.SHA256 != want || fileSum(t, p.file, 4) != want {
		t.Errorf("after the pause: %+v, file %s; want %s", r, fileSum(t, p.file, 4), want)
	}
}

// TestBootFromVolume boots the test guest from a volume (an EBS-backed
// instance): the root image served over NBD through the node's Proxy is
// the domain's first disk, vda, which the guest's ramdisk mounts as root.
func TestBootFromVolume(t *testing.T) {
	g := requireHost(t)
	c := newFakeCloud(t)
	ctx := context.Background()
	d := newTCG(t)
	defer d.Close()
	id := "i-vboot" + randSuffix()
	spec := instanceSpec(t, g, c, id, false)
	root, err := os.ReadFile(g.root)
	if err != nil {
		t.Fatal(err)
	}
	vol, file := proxiedVolume(t, "vol-0boot"+randSuffix(), int64(len(root)>>20))
	if err := os.WriteFile(file, root, 0o600); err != nil {
		t.Fatal(err)
	}
	vol.Boot = true
	spec.RootDisk, spec.Volumes = hypervisor.Disk{}, []hypervisor.VolumeDisk{vol}
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy(ctx, id) })
	con := waitConsole(t, d, id, "EUCA-READY", 120*time.Second)
	for _, want := range []string{"EUCA-ROOT-OK", "EUCA-EPHEMERAL dev=/dev/vdb", "EUCA-SWAP dev=/dev/vdc"} {
		if !strings.Contains(con, want) {
			t.Errorf("console lacks %q:\n%s", want, con)
		}
	}
	doms, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.ID == id && (len(dom.Spec.Volumes) != 1 || !dom.Spec.Volumes[0].Boot || dom.Spec.RootDisk.Path != "") {
			t.Errorf("listed spec %+v", dom.Spec)
		}
	}
}

// proxiedVolume is a volume on the path a node gives it: a file exported
// by internal/nbd's server over TLS (a storage controller's, certificates
// from the cloud's CA) and served on a unix socket by internal/nbd's Proxy
// under a node's certificate. It returns the disk and the file.
func proxiedVolume(t *testing.T, volumeID string, mib int64) (hypervisor.VolumeDisk, string) {
	t.Helper()
	v := newProxied(t, volumeID, mib, 0)
	return v.disk, v.file
}

// proxied is a volume served as a node serves it, whose storage side can
// be stopped and started again on the same address.
type proxied struct {
	t    *testing.T
	disk hypervisor.VolumeDisk
	file string
	addr string
	mu   sync.Mutex
	srv  *nbd.Server
	tls  *tls.Config
	look func(context.Context, *tls.ConnectionState, string) (nbd.Export, error)
}

// down stops the storage side, as a storage controller that dies.
func (p *proxied) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.srv.Shutdown(context.Background())
}

// up serves the storage side again on its address.
func (p *proxied) up() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.srv = &nbd.Server{TLS: p.tls, Lookup: p.look}
	go p.srv.Serve(ln)
}

// newProxied serves a file of mib MiB; retry bounds how long the proxy
// retries a request (0: its default).
func newProxied(t *testing.T, volumeID string, mib int64, retry time.Duration) *proxied {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, err := ca.IssueClient("nc:test")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "vol.raw")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, mib<<20); err != nil {
		t.Fatal(err)
	}
	export := volumeID + "/secret-nonce"
	p := &proxied{t: t, file: file, tls: ca.ServerTLSConfig(srvCert),
		look: func(_ context.Context, peer *tls.ConnectionState, name string) (nbd.Export, error) {
			if peer == nil || name != export {
				return nil, nbd.ErrUnknownExport
			}
			return nbd.OpenFile(file)
		}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ln.Close()
	p.up()
	t.Cleanup(p.down)
	tc := ca.ClientTLSConfig(nodeCert)
	tc.ServerName = "127.0.0.1"
	px := &nbd.Proxy{Path: filepath.Join(dir, volumeID+".nbd"), Name: volumeID, RetryFor: retry,
		Dial: func(ctx context.Context) (*nbd.Client, error) {
			return nbd.Dial(ctx, "tcp", p.addr, tc, export)
		}}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	p.disk = hypervisor.VolumeDisk{VolumeID: volumeID, Serial: strings.ReplaceAll(volumeID, "-", ""), Socket: px.Path}
	return p
}
