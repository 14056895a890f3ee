package sc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/roles/sc/snapshot"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus"
)

// withEngine is the real snapshot engine over an in-process Walrus.
func withEngine(t *testing.T) func(*store.Store, *backend.Files) sc.Snapshots {
	return func(st *store.Store, be *backend.Files) sc.Snapshots {
		ctx := context.Background()
		cfg := conf.Defaults()
		cfg.Home = t.TempDir()
		cfg.WalrusBucketsPath = t.TempDir()
		w, err := walrus.New(ctx, walrus.Options{Conf: cfg, Store: st, Hostname: "cloud"})
		if err != nil {
			t.Fatal(err)
		}
		objs, err := snapshot.WalrusObjects(ctx, w, "000011112222")
		if err != nil {
			t.Fatal(err)
		}
		e, err := snapshot.New(ctx, snapshot.Options{Store: st, Objects: objs, Dir: t.TempDir(), Log: slog.New(slog.DiscardHandler),
			OpenVolume: func(ctx context.Context, id string) (snapshot.Volume, error) { return be.Open(id) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return e
	}
}

func waitSnapshot(t *testing.T, s scapi.Storage, id string) scapi.Snapshot {
	t.Helper()
	for range 3000 {
		sn, err := s.Snapshots(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(sn) == 1 && sn[0].State == scapi.SnapshotCompleted {
			return sn[0]
		}
		if len(sn) == 1 && sn[0].State == scapi.SnapshotError {
			t.Fatalf("snapshot %s failed: %s", id, sn[0].Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("snapshot %s never completed", id)
	return scapi.Snapshot{}
}

// TestSnapshotOfAnAttachedVolume: a snapshot taken while a node writes to
// the volume over NBD holds the volume as it was at the call (writes after
// it pass the copy-on-write hook of the export), and a volume made from it
// holds exactly that.
func TestSnapshotOfAnAttachedVolume(t *testing.T) {
	ctx := context.Background()
	n := newNBDEnvWith(t, withEngine(t))
	const size = 16 << 20
	n.volume(t, "vol-s", size)
	tg, err := n.sc.Export(ctx, scapi.ExportRequest{VolumeID: "vol-s", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.dial(rpctest.ClientCert(t, n.ca, "nc:node1"), tg.Export)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := bytes.Repeat([]byte("point in time "), 400000)[:5<<20]
	if _, err := c.WriteAt(before, 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := n.sc.CreateSnapshot(ctx, scapi.CreateSnapshotRequest{ID: "snap-1", VolumeID: "vol-s"}); err != nil {
		t.Fatal(err)
	}
	// Changes after the call, over the chunks the snapshot holds.
	if _, err := c.WriteAt(bytes.Repeat([]byte{0xee}, 2<<20), 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Trim(7<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	sn := waitSnapshot(t, n.sc, "snap-1")
	if sn.VolumeID != "vol-s" || sn.SizeBytes != size {
		t.Errorf("snapshot %+v", sn)
	}
	if err := n.sc.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-r", SizeBytes: size / 2, SnapshotID: "snap-1"}); err == nil {
		t.Error("a volume smaller than its snapshot was accepted")
	}
	if err := n.sc.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-r", SizeBytes: size, SnapshotID: "snap-1"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, n.sc, "vol-r", scapi.VolumeAvailable)
	d, err := n.be.Open("vol-r")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make([]byte, size)
	d.ReadAt(got, 0)
	want := make([]byte, size)
	copy(want[3<<20:], before)
	if !bytes.Equal(got, want) {
		t.Error("the volume made from the snapshot is not the volume as it was at the snapshot")
	}
	if err := n.sc.DeleteSnapshot(ctx, "snap-1"); err != nil {
		t.Fatal(err)
	}
	if sn, _ := n.sc.Snapshots(ctx, "snap-1"); len(sn) != 0 {
		t.Errorf("after delete: %+v", sn)
	}
}

// testSnapshotCalls is the snapshot half of the SC API with the real
// engine, run in process and over HTTPS: take, copy, make a volume of,
// and delete snapshots.
func testSnapshotCalls(t *testing.T, through func(t *testing.T, s *sc.SC) scapi.Storage) {
	ctx := context.Background()
	n := newNBDEnvWith(t, withEngine(t))
	s := through(t, n.sc)
	n.volume(t, "vol-1", 8<<20)
	d, err := n.be.Open("vol-1")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("snapshot data "), 1<<16)
	d.WriteAt(data, 1<<20)
	d.Close()
	if err := s.CreateSnapshot(ctx, scapi.CreateSnapshotRequest{ID: "snap-a", VolumeID: "vol-none"}); !errors.Is(err, scapi.ErrNoSuchVolume) {
		t.Errorf("snapshot of an unknown volume: %v", err)
	}
	for range 2 {
		if err := s.CreateSnapshot(ctx, scapi.CreateSnapshotRequest{ID: "snap-a", VolumeID: "vol-1"}); err != nil {
			t.Fatal(err)
		}
	}
	a := waitSnapshot(t, s, "snap-a")
	if a.VolumeID != "vol-1" || a.SizeBytes != 8<<20 || a.Progress != 100 || a.Started.IsZero() || a.Completed.IsZero() || a.Chunks == 0 || a.NewChunks != a.Chunks {
		t.Errorf("snapshot %+v", a)
	}
	if err := s.CopySnapshot(ctx, scapi.CopySnapshotRequest{ID: "snap-b", SourceID: "snap-a"}); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, s, "snap-b")
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-2", SizeBytes: 16 << 20, SnapshotID: "snap-none"}); !errors.Is(err, scapi.ErrNoSuchSnapshot) {
		t.Errorf("volume from an unknown snapshot: %v", err)
	}
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-2", SizeBytes: 16 << 20, SnapshotID: "snap-b"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "vol-2", scapi.VolumeAvailable)
	d, _ = n.be.Open("vol-2")
	got := make([]byte, len(data))
	d.ReadAt(got, 1<<20)
	d.Close()
	if !bytes.Equal(got, data) {
		t.Error("the volume made from the copied snapshot does not hold the data")
	}
	for _, id := range []string{"snap-a", "snap-b", "snap-b", "snap-none"} {
		if err := s.DeleteSnapshot(ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if sn, err := s.Snapshots(ctx); err != nil || len(sn) != 0 {
		t.Errorf("after deletes: %+v %v", sn, err)
	}
}

func TestSnapshotCallsInProcess(t *testing.T) {
	testSnapshotCalls(t, func(t *testing.T, s *sc.SC) scapi.Storage { return s })
}

func TestSnapshotCallsOverHTTPS(t *testing.T) {
	testSnapshotCalls(t, func(t *testing.T, s *sc.SC) scapi.Storage { return overHTTPS(t, s, zone) })
}
