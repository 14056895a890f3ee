package sc_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// nbdEnv is a storage controller serving NBD on loopback with the cloud
// CA's TLS, as roles does.
type nbdEnv struct {
	*env
	ca   *pki.CA
	addr string
	cow  *cowRecorder
}

func newNBDEnv(t *testing.T) *nbdEnv {
	cow := &cowRecorder{}
	n := newNBDEnvWith(t, func(*store.Store, *backend.Files) sc.Snapshots { return cow })
	n.cow = cow
	return n
}

// newNBDEnvWith is newNBDEnv with the snapshot engine snaps makes.
func newNBDEnvWith(t *testing.T, snaps func(*store.Store, *backend.Files) sc.Snapshots) *nbdEnv {
	t.Helper()
	ca, _ := rpctest.CAs(t)
	e := &env{dir: t.TempDir()}
	ctx := context.Background()
	var err error
	if e.st, err = store.Open(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if e.be, err = backend.NewFiles(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if e.sc, err = sc.New(ctx, sc.Options{Zone: zone, Store: e.st, Backend: e.be, Host: "127.0.0.1", Port: 10809, Snapshots: snaps(e.st, e.be),
		Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := e.sc.NBDServer(sc.ServerTLS(ca.ServerTLSConfig(cert)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
		e.sc.Close()
		e.st.Close()
	})
	return &nbdEnv{env: e, ca: ca, addr: ln.Addr().String()}
}

func (n *nbdEnv) volume(t *testing.T, id string, size int64) {
	t.Helper()
	if err := n.sc.CreateVolume(context.Background(), scapi.CreateVolumeRequest{ID: id, SizeBytes: size}); err != nil {
		t.Fatal(err)
	}
	waitState(t, n.sc, id, scapi.VolumeAvailable)
}

func (n *nbdEnv) dial(cert tls.Certificate, export string) (*nbd.Client, error) {
	tc := n.ca.ClientTLSConfig(cert)
	tc.ServerName = "127.0.0.1"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return nbd.Dial(ctx, "tcp", n.addr, tc, export)
}

// cowRecorder is the snapshot engine's hook as the export sees it: it
// records each change announced and the bytes there at that moment.
type cowRecorder struct {
	slowSnapshots
	mu   sync.Mutex
	seen []cowCall
}

type cowCall struct {
	volume string
	off, n int64
	old    []byte
}

func (c *cowRecorder) BeforeWrite(volumeID string, src io.ReaderAt, off, n int64) error {
	old := make([]byte, n)
	if _, err := src.ReadAt(old, off); err != nil && err != io.EOF {
		return err
	}
	c.mu.Lock()
	c.seen = append(c.seen, cowCall{volumeID, off, n, old})
	c.mu.Unlock()
	return nil
}

func (c *cowRecorder) calls() []cowCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]cowCall(nil), c.seen...)
}

// TestNBDExportToItsNode: the node an export was made for reads and
// writes the volume through it; every change passes the snapshot hook
// first, with the bytes it replaces still in place.
func TestNBDExportToItsNode(t *testing.T) {
	n := newNBDEnv(t)
	n.volume(t, "vol-a", 8<<20)
	tg, err := n.sc.Export(context.Background(), scapi.ExportRequest{VolumeID: "vol-a", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.dial(rpctest.ClientCert(t, n.ca, "nc:node1"), tg.Export)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Size() != 8<<20 {
		t.Errorf("size %d", c.Size())
	}
	first := bytes.Repeat([]byte{0x11}, 64<<10)
	second := bytes.Repeat([]byte{0x22}, 64<<10)
	if _, err := c.WriteAt(first, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt(second, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Trim(2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Zero(3<<20, 4096); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(second))
	if _, err := c.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, second) {
		t.Fatalf("read back: %v", err)
	}
	calls := n.cow.calls()
	if len(calls) != 4 {
		t.Fatalf("snapshot hook saw %d changes, want 4: %+v", len(calls), calls)
	}
	if calls[0].volume != "vol-a" || calls[0].off != 1<<20 || !bytes.Equal(calls[0].old, make([]byte, 64<<10)) {
		t.Errorf("first write: hook saw %s %d, old bytes not zero", calls[0].volume, calls[0].off)
	}
	if !bytes.Equal(calls[1].old, first) {
		t.Error("second write: the hook did not see the bytes it replaces")
	}
	if calls[2].off != 2<<20 || calls[2].n != 1<<20 || calls[3].off != 3<<20 || calls[3].n != 4096 {
		t.Errorf("trim and zero announced as %+v %+v", calls[2], calls[3])
	}
	// The bytes are the volume's: a handle of the backend sees them.
	d, err := n.be.Open("vol-a")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.ReadAt(got, 1<<20)
	if !bytes.Equal(got, second) {
		t.Error("the volume file does not hold what was written")
	}
}

// TestNBDRefusesOthers: another node, another role, a name that is not a
// live export, a node's certificate from another CA, and a joined node's
// certificate presented from an address it does not name reach nothing.
func TestNBDRefusesOthers(t *testing.T) {
	n := newNBDEnv(t)
	n.volume(t, "vol-b", 1<<20)
	tg, err := n.sc.Export(context.Background(), scapi.ExportRequest{VolumeID: "vol-b", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	_, other := rpctest.CAs(t)
	otherNode, _ := other.IssueClient("nc:node1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	elsewhere, err := n.ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node1", IPs: []net.IP{net.IPv4(192, 0, 2, 7)}, PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert   tls.Certificate
		export string
	}{
		"another node":         {rpctest.ClientCert(t, n.ca, "nc:node2"), tg.Export},
		"the cloud controller": {rpctest.ClientCert(t, n.ca, "clc:front"), tg.Export},
		"another CA's node":    {otherNode, tg.Export},
		"a made-up nonce":      {rpctest.ClientCert(t, n.ca, "nc:node1"), "vol-b/00000000000000000000000000000000"},
		"the bare volume id":   {rpctest.ClientCert(t, n.ca, "nc:node1"), "vol-b"},
		"a joined node's certificate from another address": {
			tls.Certificate{Certificate: [][]byte{elsewhere.Raw}, PrivateKey: key, Leaf: elsewhere}, tg.Export},
	} {
		c, err := n.dial(tc.cert, tc.export)
		if err == nil {
			c.Close()
			t.Errorf("%s: connected", name)
		}
	}
	// A joined node's certificate from an address it names is its own.
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	here, err := n.ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node9", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: &key2.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	tg9, err := n.sc.Export(context.Background(), scapi.ExportRequest{VolumeID: "vol-b", Node: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.dial(tls.Certificate{Certificate: [][]byte{here.Raw}, PrivateKey: key2, Leaf: here}, tg9.Export)
	if err != nil {
		t.Fatalf("a joined node named by its address: %v", err)
	}
	c.Close()
}

// TestNBDUnexportFences: Unexport closes the export's connections and no
// new one gets in; the volume may then be deleted.
func TestNBDUnexportFences(t *testing.T) {
	n := newNBDEnv(t)
	ctx := context.Background()
	n.volume(t, "vol-c", 1<<20)
	tg, err := n.sc.Export(ctx, scapi.ExportRequest{VolumeID: "vol-c", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	cert := rpctest.ClientCert(t, n.ca, "nc:node1")
	c, err := n.dial(cert, tg.Export)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteAt([]byte("before"), 0); err != nil {
		t.Fatal(err)
	}
	if err := n.sc.DeleteVolume(ctx, "vol-c"); !errors.Is(err, scapi.ErrInUse) {
		t.Fatalf("delete while exported: %v", err)
	}
	if err := n.sc.Unexport(ctx, "vol-c", tg.Export); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteAt([]byte("after!"), 0); err == nil {
		t.Error("a write through a withdrawn export was answered")
	}
	if c2, err := n.dial(cert, tg.Export); err == nil {
		c2.Close()
		t.Error("a withdrawn export let a new connection in")
	}
	d, _ := n.be.Open("vol-c")
	b := make([]byte, 6)
	d.ReadAt(b, 0)
	d.Close()
	if string(b) != "before" {
		t.Errorf("volume holds %q", b)
	}
	if err := n.sc.DeleteVolume(ctx, "vol-c"); err != nil {
		t.Fatal(err)
	}
	waitState(t, n.sc, "vol-c", "")
}

// TestNBDPlainOnlyWhenSaidSo: a client without TLS (no certificate) is let
// in only by a storage controller told so (ENABLE_WS_SECURITY="N"), and
// then still only with a live export's name.
func TestNBDPlainOnlyWhenSaidSo(t *testing.T) {
	ctx := context.Background()
	for _, plain := range []bool{false, true} {
		dir := t.TempDir()
		st, err := store.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		be, _ := backend.NewFiles(t.TempDir())
		s, err := sc.New(ctx, sc.Options{Zone: zone, Store: st, Backend: be, Plain: plain, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-p", SizeBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		waitState(t, s, "vol-p", scapi.VolumeAvailable)
		tg, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-p", Node: "node1"})
		if err != nil {
			t.Fatal(err)
		}
		exp, err := s.Lookup(ctx, nil, tg.Export)
		if plain != (err == nil) {
			t.Errorf("plain=%v: lookup without a certificate: %v", plain, err)
		}
		if exp != nil {
			exp.(io.Closer).Close()
		}
		if _, err := s.Lookup(ctx, nil, "vol-p/00000000000000000000000000000000"); !errors.Is(err, nbd.ErrUnknownExport) && !errors.Is(err, nbd.ErrDenied) {
			t.Errorf("plain=%v: a made-up name: %v", plain, err)
		}
	}
}
