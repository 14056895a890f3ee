package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSetVMTypeOrder(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name                string
		typ                 string
		cores, memory, disk int
		wantErr             string // substring; "" for success
		notFound            bool
		orderNeighbour      string
	}{
		{name: "grow within neighbours", typ: "m1.large", cores: 2, memory: 768, disk: 15},
		{name: "equal to smaller neighbour", typ: "c1.medium", cores: 1, memory: 128, disk: 2},
		{name: "smallest may grow to next", typ: "m1.small", cores: 1, memory: 128, disk: 2},
		{name: "largest may grow freely", typ: "c1.xlarge", cores: 16, memory: 65536, disk: 500},
		{name: "cores above larger", typ: "c1.medium", cores: 3, memory: 256, disk: 5, wantErr: "more than the larger type m1.large", orderNeighbour: "m1.large"},
		{name: "memory below smaller", typ: "m1.xlarge", cores: 2, memory: 512, disk: 20, wantErr: "less than the smaller type m1.large (768)", orderNeighbour: "m1.large"},
		{name: "disk below smaller", typ: "m1.large", cores: 2, memory: 768, disk: 1, wantErr: "GB of disk, less than the smaller type c1.medium", orderNeighbour: "c1.medium"},
		{name: "zero cores", typ: "m1.small", cores: 0, memory: 128, disk: 2, wantErr: "must be positive"},
		{name: "negative disk", typ: "m1.small", cores: 1, memory: 128, disk: -1, wantErr: "must be positive"},
		{name: "unknown", typ: "t9.huge", cores: 1, memory: 1, disk: 1, notFound: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := s.VMTypes(ctx)
			got, err := s.SetVMType(ctx, tc.typ, tc.cores, tc.memory, tc.disk)
			switch {
			case tc.notFound:
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err %v, want ErrNotFound", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				var oe *VMTypeOrderError
				if tc.orderNeighbour != "" && (!errors.As(err, &oe) || oe.Neighbour != tc.orderNeighbour || oe.Type != tc.typ) {
					t.Fatalf("err %#v, want order error naming %s", err, tc.orderNeighbour)
				}
				after, _ := s.VMTypes(ctx)
				if len(after) != len(before) {
					t.Fatal("types changed")
				}
				for i := range after {
					if after[i] != before[i] {
						t.Fatalf("refused change was written: %+v -> %+v", before[i], after[i])
					}
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got.Cores != tc.cores || got.MemoryMB != tc.memory || got.DiskGB != tc.disk {
					t.Fatalf("got %+v", got)
				}
				back, err := s.VMType(ctx, tc.typ)
				if err != nil || back != got {
					t.Fatalf("read back %+v, %v; want %+v", back, err, got)
				}
			}
		})
	}
}

func TestCheckVMTypeOrder(t *testing.T) {
	types := []VMType{
		{Name: "a", Cores: 1, MemoryMB: 128, DiskGB: 2},
		{Name: "b", Cores: 2, MemoryMB: 128, DiskGB: 2},
		{Name: "c", Cores: 1, MemoryMB: 256, DiskGB: 5},
	}
	// "c" shrank below "b": the message is about c.
	err := CheckVMTypeOrder(types, "c")
	var oe *VMTypeOrderError
	if !errors.As(err, &oe) || oe.Type != "c" || oe.Neighbour != "b" || oe.NeighbourLarger || oe.Resource != "cores" {
		t.Fatalf("got %#v", err)
	}
	// "b" grew above "c": the message is about b.
	err = CheckVMTypeOrder(types, "b")
	if !errors.As(err, &oe) || oe.Type != "b" || oe.Neighbour != "c" || !oe.NeighbourLarger {
		t.Fatalf("got %#v", err)
	}
	if err := CheckVMTypeOrder(types[:2], "b"); err != nil {
		t.Fatal(err)
	}
}
