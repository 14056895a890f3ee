package nc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// storageHost is a storage controller's data side as the node meets it:
// internal/nbd's server, TLS only with a certificate of the cloud's CA,
// letting in node certificates only, serving file-backed exports.
type storageHost struct {
	t    *testing.T
	ca   *pki.CA
	srv  *nbd.Server
	ln   net.Listener
	port int

	mu      sync.Mutex
	exports map[string]string // export name -> file
}

func newStorageHost(t *testing.T) *storageHost {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &storageHost{t: t, ca: ca, exports: map[string]string{}}
	s.srv = &nbd.Server{TLS: ca.ServerTLSConfig(cert), Lookup: s.lookup}
	s.listen("127.0.0.1:0")
	t.Cleanup(func() { s.srv.Shutdown(context.Background()) })
	return s
}

func (s *storageHost) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.ln, s.port = ln, ln.Addr().(*net.TCPAddr).Port
	go s.srv.Serve(ln)
}

func (s *storageHost) lookup(ctx context.Context, peer *tls.ConnectionState, name string) (nbd.Export, error) {
	if peer == nil || len(peer.PeerCertificates) == 0 || pki.RoleOf(peer.PeerCertificates[0]) != "nc" {
		return nil, nbd.ErrDenied
	}
	s.mu.Lock()
	path, ok := s.exports[name]
	s.mu.Unlock()
	if !ok {
		return nil, nbd.ErrUnknownExport
	}
	return nbd.OpenFile(path)
}

// volume makes a volume of mib MiB and exports it under a name with a
// nonce, as the SC's Export does.
func (s *storageHost) volume(id string, mib int64) (ncapi.VolumeAttachment, string) {
	s.t.Helper()
	path := filepath.Join(s.t.TempDir(), id+".raw")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Truncate(path, mib<<20); err != nil {
		s.t.Fatal(err)
	}
	export := id + "/0123456789abcdef0123456789abcdef"
	s.mu.Lock()
	s.exports[export] = path
	s.mu.Unlock()
	return ncapi.VolumeAttachment{VolumeID: id, Device: "/dev/sdf", Host: "127.0.0.1", Port: s.port,
		Export: export, SizeBytes: mib << 20}, path
}

// nodeTLS is a node's client configuration, certificate "nc:…".
func (s *storageHost) nodeTLS(cn string) *tls.Config {
	s.t.Helper()
	cert, err := s.ca.IssueClient(cn)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.ca.ClientTLSConfig(cert)
}

// throughSocket writes p at off through the node's socket for volume id
// of instance, as QEMU would, and reads it back.
func throughSocket(t *testing.T, sock, volumeID string, p []byte, off int64) {
	t.Helper()
	c, err := nbd.Dial(context.Background(), "unix", sock, nil, volumeID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(p))
	if _, err := c.ReadAt(got, off); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// waitServed waits until the node serves volumeID on sock.
func waitServed(t *testing.T, sock, volumeID string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := nbd.Dial(context.Background(), "unix", sock, nil, volumeID)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served on %s: %v", volumeID, sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileHas(t *testing.T, path string, p []byte, off int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(p))
	if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, p) {
		t.Errorf("%s at %d holds %q, %v; want %q", filepath.Base(path), off, got, err, p)
	}
}

func volumesOfStatus(t *testing.T, n *Node, id string) []ncapi.VolumeStatus {
	t.Helper()
	for _, is := range status(t, n).Instances {
		if is.ID == id {
			return is.Volumes
		}
	}
	t.Fatalf("%s not described", id)
	return nil
}

func domainVolumes(t *testing.T, d hypervisor.Driver, id string) []hypervisor.VolumeDisk {
	t.Helper()
	doms, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.ID == id {
			return dom.Spec.Volumes
		}
	}
	return nil
}

// TestVolumeAttachDetach: a volume is served on the instance's socket,
// through the node's TLS identity, to the storage controller's file; it
// survives a restart of the node (served again, still described); it
// goes on detach; and a node without the right certificate gets nothing.
func TestVolumeAttachDetach(t *testing.T) {
	sc := newStorageHost(t)
	h := newHost(t, nil)
	n := h.start()
	n.UseVolumeTLS(sc.nodeTLS("nc:node1"))
	ctx := context.Background()
	req := h.req("i-00000000000000a1")
	running(t, n, req)
	att, file := sc.volume("vol-00000000000000a1", 4)

	for range 2 { // harmless twice
		if err := n.AttachVolume(ctx, req.ID, att); err != nil {
			t.Fatal(err)
		}
	}
	if got := volumesOfStatus(t, n, req.ID); len(got) != 1 || got[0] != (ncapi.VolumeStatus{VolumeID: att.VolumeID, Device: "/dev/sdf", State: ncapi.VolumeAttached}) {
		t.Errorf("described volumes %+v", got)
	}
	disks := domainVolumes(t, h.drv, req.ID)
	if len(disks) != 1 || disks[0].VolumeID != att.VolumeID || disks[0].Serial != "vol00000000000000a1" || disks[0].Boot {
		t.Fatalf("domain volumes %+v", disks)
	}
	sock := disks[0].Socket
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: %v, %v: want root's only", sock, fi, err)
	}
	throughSocket(t, sock, att.VolumeID, []byte("written through the node"), 1<<20)
	fileHas(t, file, []byte("written through the node"), 1<<20)

	// Refused: no such instance, a bad attachment, a boot volume hot-plugged.
	if err := n.AttachVolume(ctx, "i-00000000000000ff", att); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Errorf("attach to an unknown instance: %v", err)
	}
	bad := att
	bad.Port = 0
	if err := n.AttachVolume(ctx, req.ID, bad); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("attach without a port: %v", err)
	}
	boot := att
	boot.Boot = true
	if err := n.AttachVolume(ctx, req.ID, boot); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("hot-plugging a boot volume: %v", err)
	}

	// A restarted node serves the volume again and still describes it.
	n.stop()
	n = h.start()
	n.UseVolumeTLS(sc.nodeTLS("nc:node1"))
	waitServed(t, sock, att.VolumeID) // New tried without a TLS identity; UseVolumeTLS tries again
	if got := volumesOfStatus(t, n, req.ID); len(got) != 1 || got[0].State != ncapi.VolumeAttached {
		t.Errorf("after a restart: volumes %+v", got)
	}
	throughSocket(t, sock, att.VolumeID, []byte("after a restart"), 2<<20)
	fileHas(t, file, []byte("after a restart"), 2<<20)

	for range 2 {
		if err := n.DetachVolume(ctx, req.ID, att.VolumeID, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := volumesOfStatus(t, n, req.ID); len(got) != 0 {
		t.Errorf("after detach: volumes %+v", got)
	}
	if got := domainVolumes(t, h.drv, req.ID); len(got) != 0 {
		t.Errorf("after detach: domain volumes %+v", got)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after detach: %v", err)
	}
	if rows, _ := h.st.NCVolumes(ctx); len(rows) != 0 {
		t.Errorf("rows after detach: %+v", rows)
	}
	if err := n.DetachVolume(ctx, "i-00000000000000ff", att.VolumeID, false); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Errorf("detach from an unknown instance: %v", err)
	}

	// A node the export is not for cannot reach it, and nothing stays.
	n.UseVolumeTLS(nil)
	if err := n.AttachVolume(ctx, req.ID, att); err == nil {
		t.Error("attach without the node's certificate succeeded")
	}
	if got := volumesOfStatus(t, n, req.ID); len(got) != 0 {
		t.Errorf("after a failed attach: volumes %+v", got)
	}
	if rows, _ := h.st.NCVolumes(ctx); len(rows) != 0 {
		t.Errorf("rows after a failed attach: %+v", rows)
	}
}

// TestStopInstance: a stopped instance is forgotten with its files and
// volumes' sockets (the volume's data untouched), frees its resources, and
// its id runs again, here from a boot volume (an EBS-backed instance: no
// image, the volume is the root disk).
func TestStopInstance(t *testing.T) {
	StopGrace = 0
	sc := newStorageHost(t)
	h := newHost(t, nil)
	n := h.start()
	n.UseVolumeTLS(sc.nodeTLS("nc:node1"))
	ctx := context.Background()
	req := h.req("i-00000000000000b1")
	running(t, n, req)
	att, file := sc.volume("vol-00000000000000b1", 4)
	if err := n.AttachVolume(ctx, req.ID, att); err != nil {
		t.Fatal(err)
	}
	sock := domainVolumes(t, h.drv, req.ID)[0].Socket
	throughSocket(t, sock, att.VolumeID, []byte("kept across a stop"), 0)
	before := status(t, n).Free

	for range 2 {
		if err := n.StopInstance(ctx, req.ID); err != nil {
			t.Fatal(err)
		}
	}
	st := status(t, n)
	if len(st.Instances) != 0 || st.Free != st.Max || st.Free == before {
		t.Errorf("after stop: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.InstancePath, req.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance directory after stop: %v", err)
	}
	if doms, _ := h.drv.List(ctx); len(doms) != 0 {
		t.Errorf("domains after stop: %+v", doms)
	}
	if rows, _ := h.st.NCVolumes(ctx); len(rows) != 0 {
		t.Errorf("volume rows after stop: %+v", rows)
	}
	if _, err := h.st.NCInstance(ctx, req.ID); err == nil {
		t.Error("the stopped instance is still recorded")
	}
	fileHas(t, file, []byte("kept across a stop"), 0)

	// Started again under its id, booting from the volume.
	again := req
	again.Image = ncapi.ImageRef{}
	bootAtt := att
	bootAtt.Boot = true
	again.Volumes = []ncapi.VolumeAttachment{bootAtt}
	is := running(t, n, again)
	if len(is.Volumes) != 1 || is.Volumes[0].State != ncapi.VolumeAttached {
		t.Errorf("volumes of the restarted instance: %+v", is.Volumes)
	}
	doms, _ := h.drv.List(ctx)
	if len(doms) != 1 || doms[0].Spec.RootDisk.Path != "" || len(doms[0].Spec.Volumes) != 1 || !doms[0].Spec.Volumes[0].Boot {
		t.Fatalf("domain of the EBS-backed instance: %+v", doms)
	}
	c, err := nbd.Dial(ctx, "unix", doms[0].Spec.Volumes[0].Socket, nil, att.VolumeID)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("kept across a stop"))
	c.ReadAt(got, 0)
	c.Close()
	if string(got) != "kept across a stop" {
		t.Errorf("the boot volume reads %q", got)
	}
	// Both an image and a boot volume, or two boot volumes: refused.
	for i, r := range []ncapi.InstanceRequest{func() ncapi.InstanceRequest { r := again; r.ID = "i-00000000000000b2"; r.Image = h.image; return r }(),
		func() ncapi.InstanceRequest {
			r := again
			r.ID = "i-00000000000000b3"
			v2 := bootAtt
			v2.VolumeID = "vol-00000000000000b2"
			r.Volumes = append(r.Volumes, v2)
			return r
		}()} {
		if err := n.RunInstance(ctx, r); !errors.Is(err, ncapi.ErrBadRequest) {
			t.Errorf("bad request %d: %v", i, err)
		}
	}
	if err := n.TerminateInstance(ctx, again.ID); err != nil {
		t.Fatal(err)
	}
	if rows, _ := h.st.NCVolumes(ctx); len(rows) != 0 {
		t.Errorf("volume rows after terminate: %+v", rows)
	}
	if err := n.StopInstance(ctx, "i-00000000000000ff"); err != nil {
		t.Errorf("stop of an unknown instance: %v", err)
	}

}

// A socket's path fits a sockaddr_un: an instance directory too deep for
// one puts it in SocketDir, under a name that is the same every time.
func TestSocketPath(t *testing.T) {
	short := socketPath("/var/lib/eucalyptus/instances/i-0123456789abcdef0", "vol-0123456789abcdef0")
	if short != "/var/lib/eucalyptus/instances/i-0123456789abcdef0/vol-0123456789abcdef0.nbd" {
		t.Errorf("short: %s", short)
	}
	deep := "/tmp/TestEBSGuestVolume3574196909/001/euca/var/lib/eucalyptus/instances/i-350770a42b31c772d"
	p := socketPath(deep, "vol-f064b5735ed2d978f")
	if filepath.Dir(p) != SocketDir || len(p) > 107 || p != socketPath(deep, "vol-f064b5735ed2d978f") ||
		p == socketPath(deep+"x", "vol-f064b5735ed2d978f") || p == socketPath(deep, "vol-f064b5735ed2d978e") {
		t.Errorf("deep: %s", p)
	}
}
