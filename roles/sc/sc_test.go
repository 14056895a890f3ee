package sc_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

const zone = "euca-1a"

// env is a storage controller over a real store and real files.
type env struct {
	dir string
	st  *store.Store
	be  *backend.Files
	sc  *sc.SC
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	e.open(t)
	return e
}

// open (re)starts the storage controller over the env's directory.
func (e *env) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var err error
	if e.st, err = store.Open(ctx, filepath.Join(e.dir, "db")); err != nil {
		t.Fatal(err)
	}
	if e.be, err = backend.NewFiles(filepath.Join(e.dir, "volumes")); err != nil {
		t.Fatal(err)
	}
	e.sc, err = sc.New(ctx, sc.Options{Zone: zone, Store: e.st, Backend: e.be, Host: "192.0.2.10", Port: 10809,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st, s := e.st, e.sc
	t.Cleanup(func() { s.Close(); st.Close() })
}

// close stops it as a shutdown does.
func (e *env) close() {
	e.sc.Close()
	e.st.Close()
}

// waitState polls until volume id is in state (or gone, for ""), within a
// bound that only a hung job reaches.
func waitState(t testing.TB, s scapi.Storage, id, state string) scapi.Volume {
	t.Helper()
	for range 1000 {
		vs, err := s.Volumes(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if state == "" && len(vs) == 0 {
			return scapi.Volume{}
		}
		if len(vs) == 1 && vs[0].State == state {
			return vs[0]
		}
		if len(vs) == 1 && vs[0].State == scapi.VolumeError && state != scapi.VolumeError {
			t.Fatalf("volume %s failed: %s", id, vs[0].Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("volume %s never reached %q", id, state)
	return scapi.Volume{}
}

// testStorage is the SC API's behaviour, run in process and over HTTPS.
func testStorage(t *testing.T, through func(t *testing.T, s *sc.SC) scapi.Storage) {
	ctx := context.Background()
	e := newEnv(t)
	s := through(t, e.sc)
	if s.Zone() != zone {
		t.Errorf("zone %q", s.Zone())
	}
	for _, req := range []scapi.CreateVolumeRequest{{ID: "", SizeBytes: 1}, {ID: "../x", SizeBytes: 1}, {ID: "vol-1", SizeBytes: 0},
		{ID: "vol-1", SizeBytes: backend.MaxSize + 1}} {
		if err := s.CreateVolume(ctx, req); !errors.Is(err, scapi.ErrBadRequest) {
			t.Errorf("create %+v: %v, want ErrBadRequest", req, err)
		}
	}
	const size = 64 << 20
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-1", SizeBytes: size}); err != nil {
		t.Fatal(err)
	}
	v := waitState(t, s, "vol-1", scapi.VolumeAvailable)
	if v.SizeBytes != size || v.Created.IsZero() || len(v.Exports) != 0 {
		t.Errorf("volume %+v", v)
	}
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-1", SizeBytes: size}); err != nil {
		t.Errorf("create again: %v", err)
	}
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-1", SizeBytes: 2 * size}); !errors.Is(err, scapi.ErrBadRequest) {
		t.Errorf("create again with another size: %v, want ErrBadRequest", err)
	}
	// From a snapshot: no engine here, said so.
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-2", SizeBytes: size, SnapshotID: "snap-1"}); err == nil {
		t.Error("a volume from a snapshot without a snapshot engine was accepted")
	}

	if _, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-none", Node: "node1"}); !errors.Is(err, scapi.ErrNoSuchVolume) {
		t.Errorf("export of an unknown volume: %v", err)
	}
	if _, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-1"}); !errors.Is(err, scapi.ErrBadRequest) {
		t.Errorf("export to no node: %v", err)
	}
	t1, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-1", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-1", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	if t1.Host != "192.0.2.10" || t1.Port != 10809 || t1.SizeBytes != size || !strings.HasPrefix(t1.Export, "vol-1/") || len(t1.Export) != len("vol-1/")+32 || t1.Export == t2.Export {
		t.Errorf("targets %+v %+v", t1, t2)
	}
	if vs, _ := s.Volumes(ctx, "vol-1"); len(vs) != 1 || len(vs[0].Exports) != 2 {
		t.Errorf("exports listed: %+v", vs)
	}
	if err := s.DeleteVolume(ctx, "vol-1"); !errors.Is(err, scapi.ErrInUse) {
		t.Errorf("delete of an exported volume: %v, want ErrInUse", err)
	}

	if err := s.ResizeVolume(ctx, "vol-1", size/2); !errors.Is(err, scapi.ErrBadRequest) {
		t.Errorf("shrink: %v", err)
	}
	if err := s.ResizeVolume(ctx, "vol-none", size); !errors.Is(err, scapi.ErrNoSuchVolume) {
		t.Errorf("resize of an unknown volume: %v", err)
	}
	for range 2 {
		if err := s.ResizeVolume(ctx, "vol-1", 2*size); err != nil {
			t.Fatal(err)
		}
	}
	if vs, _ := s.Volumes(ctx, "vol-1"); vs[0].SizeBytes != 2*size {
		t.Errorf("after resize: %+v", vs[0])
	}
	if l, _ := e.be.List(); len(l) != 1 || l[0].Size != 2*size {
		t.Errorf("backend after resize: %+v", l)
	}

	for _, x := range []string{t1.Export, t2.Export, t2.Export, "vol-1/unknown"} {
		if err := s.Unexport(ctx, "vol-1", x); err != nil {
			t.Fatalf("unexport %s: %v", x, err)
		}
	}
	if vs, _ := s.Volumes(ctx); len(vs) != 1 || len(vs[0].Exports) != 0 {
		t.Errorf("after unexport: %+v", vs)
	}
	if err := s.DeleteVolume(ctx, "vol-1"); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "vol-1", "")
	if l, _ := e.be.List(); len(l) != 0 {
		t.Errorf("backend after delete: %+v", l)
	}
	if err := s.DeleteVolume(ctx, "vol-1"); err != nil {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-1", Node: "node1"}); !errors.Is(err, scapi.ErrNoSuchVolume) {
		t.Errorf("export of a deleted volume: %v", err)
	}
	if sn, err := s.Snapshots(ctx); err != nil || len(sn) != 0 {
		t.Errorf("snapshots: %v %v", sn, err)
	}
}

func TestStorageInProcess(t *testing.T) {
	testStorage(t, func(t *testing.T, s *sc.SC) scapi.Storage { return s })
}

func TestStorageOverHTTPS(t *testing.T) {
	testStorage(t, func(t *testing.T, s *sc.SC) scapi.Storage { return overHTTPS(t, s, zone) })
}

func overHTTPS(t *testing.T, s scapi.Storage, zone string) scapi.Storage {
	ca, _ := rpctest.CAs(t)
	addr := rpctest.Serve(t, ca, scapi.NewHandler(s, slog.New(slog.DiscardHandler)))
	return scapi.NewClient(rpctest.Client(addr, ca, rpctest.ClientCert(t, ca, "clc:test")), zone)
}

// TestStorageRefusesStrangers: only the cloud controller drives a storage
// controller: a node's certificate (which reaches its volumes over NBD),
// another CA's or a user's gets no answer.
func TestStorageRefusesStrangers(t *testing.T) {
	e := newEnv(t)
	ca, other := rpctest.CAs(t)
	addr := rpctest.Serve(t, ca, scapi.NewHandler(e.sc, slog.New(slog.DiscardHandler)))
	certs := rpctest.Strangers(t, ca, other, "clc:test")
	certs["a node"] = rpctest.ClientCert(t, ca, "nc:node1")
	certs["a cluster"] = rpctest.ClientCert(t, ca, "cc:euca-1a")
	for name, cert := range certs {
		c := scapi.NewClient(rpctest.Client(addr, ca, cert), zone)
		if err := c.CreateVolume(context.Background(), scapi.CreateVolumeRequest{ID: "vol-x", SizeBytes: 1 << 20}); err == nil {
			t.Errorf("%s: a call was answered", name)
		}
	}
	if vs, _ := e.sc.Volumes(context.Background()); len(vs) != 0 {
		t.Errorf("a stranger made %+v", vs)
	}
}

// TestStorageWrongZone: a storage controller asked about another zone
// refuses, naming its own.
func TestStorageWrongZone(t *testing.T) {
	e := newEnv(t)
	c := overHTTPS(t, e.sc, "euca-1b")
	err := c.CreateVolume(context.Background(), scapi.CreateVolumeRequest{ID: "vol-x", SizeBytes: 1 << 20})
	if !errors.Is(err, scapi.ErrWrongZone) || !strings.Contains(err.Error(), zone) {
		t.Errorf("create: %v, want ErrWrongZone naming %s", err, zone)
	}
}
