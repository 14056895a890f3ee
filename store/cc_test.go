package store

import (
	"context"
	"errors"
	"testing"
)

func TestCCPlacements(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ps := []CCPlacement{
		{InstanceID: "i-1", Zone: "z1", Node: "a", Cores: 1, MemoryMiB: 128, DiskGiB: 2, CreatedMS: 10},
		{InstanceID: "i-2", Zone: "z1", Node: "b", Cores: 2, MemoryMiB: 512, DiskGiB: 10, CreatedMS: 20},
		{InstanceID: "i-3", Zone: "z2", Node: "c", Cores: 1, MemoryMiB: 128, DiskGiB: 2, CreatedMS: 30},
	}
	if err := s.PutCCPlacements(ctx, ps); err != nil {
		t.Fatal(err)
	}
	// A retried launch replaces its placement.
	moved := ps[0]
	moved.Node = "b"
	if err := s.PutCCPlacements(ctx, []CCPlacement{moved}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CCPlacements(ctx, "z1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != moved || got[1] != ps[1] {
		t.Fatalf("placements of z1: %+v", got)
	}
	if err := s.DeleteCCPlacements(ctx, []string{"i-1", "i-3", "i-unknown"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCCPlacements(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.CCPlacements(ctx, "z1")
	if len(got) != 1 || got[0].InstanceID != "i-2" {
		t.Fatalf("after delete, z1: %+v", got)
	}
	if got, _ = s.CCPlacements(ctx, "z2"); len(got) != 0 {
		t.Fatalf("after delete, z2: %+v", got)
	}
}

func TestCCNetwork(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CCNetwork(ctx, "z1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no network yet: %v, want ErrNotFound", err)
	}
	for _, doc := range []string{`{"subnet":"10.0.0.0/16"}`, `{"subnet":"10.1.0.0/16"}`} {
		if err := s.PutCCNetwork(ctx, "z1", []byte(doc)); err != nil {
			t.Fatal(err)
		}
		got, err := s.CCNetwork(ctx, "z1")
		if err != nil || string(got) != doc {
			t.Fatalf("network %q, %v; want %q", got, err, doc)
		}
	}
	if _, err := s.CCNetwork(ctx, "z2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other zone: %v, want ErrNotFound", err)
	}
}

func init() {
	tableSeeds["cc_networks"] = []string{
		`INSERT INTO cc_networks (zone, doc, updated_ms) VALUES ('us-euca-1a', '{"subnet":"172.31.0.0/16"}', 9)`,
		`INSERT INTO cc_placements (instance_id, zone, node, cores, memory_mib, disk_gib, created_ms) VALUES ('i-0123456789abcdef0', 'us-euca-1a', 'localhost', 1, 128, 2, 10)`,
	}
}
