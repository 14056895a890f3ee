package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestSCVolumes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, created, err := s.SCCreateVolume(ctx, SCVolume{ID: "vol-1", SizeBytes: 1 << 30})
	if err != nil || !created || v.State != SCVolumeCreating || v.CreatedMS == 0 {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	// Again: nothing changes, the row there is returned.
	again, created, err := s.SCCreateVolume(ctx, SCVolume{ID: "vol-1", SizeBytes: 2 << 30, SnapshotID: "snap-1"})
	if err != nil || created || again.SizeBytes != 1<<30 || again.SnapshotID != "" {
		t.Fatalf("second create: %+v %v %v", again, created, err)
	}
	if _, _, err := s.SCCreateVolume(ctx, SCVolume{ID: "vol-2", SizeBytes: 1 << 20, SnapshotID: "snap-9"}); err != nil {
		t.Fatal(err)
	}
	// An export needs an available volume.
	e := SCExport{Name: "vol-1/abc", VolumeID: "vol-1", Node: "node1"}
	if err := s.SCAddExport(ctx, e); !errors.Is(err, ErrConflict) {
		t.Fatalf("export of a creating volume: %v", err)
	}
	if err := s.SCAddExport(ctx, SCExport{Name: "vol-9/x", VolumeID: "vol-9"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("export of an unknown volume: %v", err)
	}
	if err := s.SCSetVolumeState(ctx, "vol-1", SCVolumeAvailable, "", SCVolumeCreating); err != nil {
		t.Fatal(err)
	}
	if err := s.SCSetVolumeState(ctx, "vol-1", SCVolumeAvailable, "", SCVolumeCreating); !errors.Is(err, ErrConflict) {
		t.Fatalf("transition from the wrong state: %v", err)
	}
	if err := s.SCSetVolumeState(ctx, "vol-2", SCVolumeError, "no snapshot"); err != nil {
		t.Fatal(err)
	}
	if err := s.SCAddExport(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.SCAddExport(ctx, e); !errors.Is(err, ErrConflict) {
		t.Fatalf("same export twice: %v", err)
	}
	if got, err := s.SCExport(ctx, "vol-1/abc"); err != nil || got.Node != "node1" || got.VolumeID != "vol-1" {
		t.Fatalf("export: %+v %v", got, err)
	}
	if _, err := s.SCExport(ctx, "vol-1/zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown export: %v", err)
	}
	vs, err := s.SCVolumes(ctx)
	if err != nil || len(vs) != 2 || !slices.Equal(vs[0].Exports, []string{"vol-1/abc"}) || vs[1].State != SCVolumeError || vs[1].Error != "no snapshot" || vs[1].SnapshotID != "snap-9" {
		t.Fatalf("volumes: %+v %v", vs, err)
	}
	if vs, _ := s.SCVolumes(ctx, "vol-2", "vol-none"); len(vs) != 1 || vs[0].ID != "vol-2" {
		t.Fatalf("named volumes: %+v", vs)
	}
	// Exported: no delete, no shrink.
	if err := s.SCStartDeleteVolume(ctx, "vol-1"); !errors.Is(err, ErrSCExported) {
		t.Fatalf("delete of an exported volume: %v", err)
	}
	if err := s.SCSetVolumeSize(ctx, "vol-1", 1<<20); !errors.Is(err, ErrConflict) {
		t.Fatalf("shrink: %v", err)
	}
	if err := s.SCSetVolumeSize(ctx, "vol-1", 4<<30); err != nil {
		t.Fatal(err)
	}
	if err := s.SCDeleteExport(ctx, "vol-1", "vol-1/abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.SCDeleteExport(ctx, "vol-1", "vol-1/abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.SCStartDeleteVolume(ctx, "vol-1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SCVolume(ctx, "vol-1"); v.State != SCVolumeDeleting || v.SizeBytes != 4<<30 {
		t.Fatalf("deleting: %+v", v)
	}
	if err := s.SCStartDeleteVolume(ctx, "vol-none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of an unknown volume: %v", err)
	}
	if err := s.SCDeleteVolume(ctx, "vol-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SCVolume(ctx, "vol-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// Exports go with their volume.
	if err := s.SCSetVolumeState(ctx, "vol-2", SCVolumeAvailable, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SCAddExport(ctx, SCExport{Name: "vol-2/n", VolumeID: "vol-2", Node: "n"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SCDeleteVolume(ctx, "vol-2"); err != nil {
		t.Fatal(err)
	}
	if es, _ := s.SCExports(ctx, ""); len(es) != 0 {
		t.Fatalf("exports of a deleted volume: %+v", es)
	}
}

func init() {
	tableSeeds["sc_volumes"] = []string{
		`INSERT INTO sc_volumes (id, size_bytes, snapshot_id, state, error, created_ms, updated_ms) VALUES ('vol-0123456789abcdef0', 1073741824, 'snap-0123456789abcdef0', 'available', '', 1, 2)`,
		`INSERT INTO sc_exports (name, volume_id, node, created_ms) VALUES ('vol-0123456789abcdef0/00112233445566778899aabbccddeeff', 'vol-0123456789abcdef0', 'node1', 3)`,
	}
}
