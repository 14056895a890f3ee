package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func init() {
	// Rows in every table of schemaSCSnap, for TestMigrationsKeepData.
	tableSeeds["sc_snapshots"] = []string{
		`INSERT INTO sc_snapshots (id, volume_id, state, size_bytes, chunk_size, chunk_count, next_chunk, data_chunks,
			new_chunks, new_bytes, source_id, error, started_ms, completed_ms) VALUES
			('snap-0123456789abcdef0', 'vol-0123456789abcdef0', 'completed', 8388608, 4194304, 2, 2, 1, 1, 4194304, '', '', 12, 13)`,
		`INSERT INTO sc_chunks (hash, size, refs) VALUES ('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 4194304, 1)`,
		`INSERT INTO sc_snapshot_chunks (snapshot_id, idx, hash) VALUES
			('snap-0123456789abcdef0', 1, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')`,
	}
}

const (
	hashA = "aaaa000000000000000000000000000000000000000000000000000000000000"
	hashB = "bbbb000000000000000000000000000000000000000000000000000000000000"
)

// addChunk records a chunk as the snapshot engine does: intent, then the
// reference.
func addChunk(t *testing.T, s *Store, id string, idx int, hash string) {
	t.Helper()
	ctx := context.Background()
	stored, err := s.IntendSCChunk(ctx, hash, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSCSnapshotChunk(ctx, id, idx, hash, 100, !stored); err != nil {
		t.Fatal(err)
	}
}

func TestSCSnapshotRefs(t *testing.T) {
	ctx := context.Background()
	s := openSCSnapStore(t)
	for _, id := range []string{"snap-1", "snap-2"} {
		if err := s.CreateSCSnapshot(ctx, SCSnapshot{ID: id, VolumeID: "vol-1", SizeBytes: 400, ChunkSize: 100, ChunkCount: 4}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSCSnapshot(ctx, SCSnapshot{ID: "snap-1", VolumeID: "vol-1"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	// snap-1: A at 0, hole at 1-2, A again at 3. snap-2: A at 0, B at 1, holes after.
	addChunk(t, s, "snap-1", 0, hashA)
	if err := s.SkipSCSnapshotChunks(ctx, "snap-1", 3); err != nil {
		t.Fatal(err)
	}
	addChunk(t, s, "snap-1", 3, hashA)
	if err := s.AddSCSnapshotChunk(ctx, "snap-1", 2, hashA, 100, false); !errors.Is(err, ErrSCSnapState) {
		t.Fatalf("chunk behind next: %v, want ErrSCSnapState", err)
	}
	addChunk(t, s, "snap-2", 0, hashA)
	addChunk(t, s, "snap-2", 1, hashB)
	if err := s.CompleteSCSnapshot(ctx, "snap-2"); !errors.Is(err, ErrSCSnapState) {
		t.Fatalf("complete with chunks left: %v, want ErrSCSnapState", err)
	}
	if err := s.SkipSCSnapshotChunks(ctx, "snap-2", 4); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"snap-1", "snap-2"} {
		if err := s.CompleteSCSnapshot(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	sn, err := s.SCSnapshot(ctx, "snap-1")
	if err != nil {
		t.Fatal(err)
	}
	if sn.State != SCSnapCompleted || sn.DataChunks != 2 || sn.NewChunks != 1 || sn.NewBytes != 100 || sn.CompletedMS == 0 {
		t.Fatalf("snap-1 = %+v", sn)
	}
	sn2, _ := s.SCSnapshot(ctx, "snap-2")
	if sn2.NewChunks != 1 || sn2.DataChunks != 2 {
		t.Fatalf("snap-2 = %+v: A was stored by snap-1", sn2)
	}
	if c, _ := s.SCChunk(ctx, hashA); c.Refs != 3 {
		t.Fatalf("refs of A = %d, want 3", c.Refs)
	}

	if err := s.CopySCSnapshot(ctx, "snap-3", "snap-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CopySCSnapshot(ctx, "snap-4", "snap-3"); !errors.Is(err, ErrSCSnapState) {
		t.Fatalf("copy of a pending copy: %v, want ErrSCSnapState", err)
	}
	if err := s.CopySCSnapshot(ctx, "snap-4", "snap-9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("copy of nothing: %v, want ErrNotFound", err)
	}
	if err := s.CompleteSCSnapshot(ctx, "snap-3"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.SCChunk(ctx, hashA); c.Refs != 5 {
		t.Fatalf("refs of A after copy = %d, want 5", c.Refs)
	}
	chunks, err := s.SCSnapshotChunks(ctx, "snap-3")
	if err != nil {
		t.Fatal(err)
	}
	if want := []SCSnapshotChunk{{0, hashA, 100}, {3, hashA, 100}}; !reflect.DeepEqual(chunks, want) {
		t.Fatalf("copy's chunks = %v, want %v", chunks, want)
	}

	for _, step := range []struct {
		id     string
		unused []string
	}{{"snap-1", nil}, {"snap-2", []string{hashB}}, {"snap-3", []string{hashA}}, {"snap-3", nil}} {
		if _, err := s.MarkSCSnapshotDeleting(ctx, step.id); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		unused, err := s.DeleteSCSnapshot(ctx, step.id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(unused, step.unused) {
			t.Fatalf("delete %s: unused %v, want %v", step.id, unused, step.unused)
		}
	}
	garbage, err := s.SCGarbageChunks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(garbage, []string{hashA, hashB}) {
		t.Fatalf("garbage = %v", garbage)
	}
	for _, h := range garbage {
		if ok, err := s.DeleteSCChunk(ctx, h); err != nil || !ok {
			t.Fatalf("delete chunk %s: %v %v", h, ok, err)
		}
	}
	if left, _ := s.SCSnapshots(ctx); len(left) != 0 {
		t.Fatalf("snapshots left: %v", left)
	}
}

// TestSCChunkIntent: an intent leaves an unreferenced row (garbage until a
// reference comes), and a referenced chunk is not deleted.
func TestSCChunkIntent(t *testing.T) {
	ctx := context.Background()
	s := openSCSnapStore(t)
	stored, err := s.IntendSCChunk(ctx, hashA, 10)
	if err != nil || stored {
		t.Fatalf("first intent: %v %v", stored, err)
	}
	if g, _ := s.SCGarbageChunks(ctx); len(g) != 1 {
		t.Fatalf("garbage = %v, want the intent", g)
	}
	if err := s.CreateSCSnapshot(ctx, SCSnapshot{ID: "snap-1", VolumeID: "vol-1", SizeBytes: 10, ChunkSize: 10, ChunkCount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSCSnapshotChunk(ctx, "snap-1", 0, hashA, 10, true); err != nil {
		t.Fatal(err)
	}
	if stored, _ := s.IntendSCChunk(ctx, hashA, 10); !stored {
		t.Fatal("a referenced chunk is not reported stored")
	}
	if ok, err := s.DeleteSCChunk(ctx, hashA); ok || err != nil {
		t.Fatalf("deleted a referenced chunk: %v %v", ok, err)
	}
	if err := s.FailSCSnapshot(ctx, "snap-1", "disk gone"); err != nil {
		t.Fatal(err)
	}
	if sn, _ := s.SCSnapshot(ctx, "snap-1"); sn.State != SCSnapError || sn.Error != "disk gone" {
		t.Fatalf("failed snapshot = %+v", sn)
	}
}

func openSCSnapStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
