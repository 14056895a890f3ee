package store

import (
	"context"
	"errors"
	"testing"
)

func init() {
	tableSeeds["nc_instances"] = []string{
		`INSERT INTO nc_instances (id, request, state, reason, dir, spec, created_ms, launched_ms, updated_ms) VALUES
			('i-0123456789abcdef0', '{"id":"i-0123456789abcdef0"}', 'running', '', '/var/lib/eucalyptus/instances/i-0123456789abcdef0',
			 '{"id":"i-0123456789abcdef0"}', 11, 12, 12),
			('i-0123456789abcdef1', '{"id":"i-0123456789abcdef1"}', 'failed', 'image emi-1: digest mismatch', '/x/i-0123456789abcdef1',
			 '', 13, 0, 14)`,
	}
}

func TestNCInstances(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := NCInstance{ID: "i-00000000000000a1", Request: `{"id":"i-00000000000000a1"}`, State: "pending", Dir: "/i/i-00000000000000a1", CreatedMS: 5}
	b := NCInstance{ID: "i-00000000000000b1", Request: `{}`, State: "pending", Dir: "/i/i-00000000000000b1", CreatedMS: 6}
	for _, in := range []NCInstance{a, b} {
		if err := s.NCCreateInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.NCCreateInstance(ctx, a); !errors.Is(err, ErrConflict) {
		t.Fatalf("create twice: %v", err)
	}
	got, err := s.NCInstance(ctx, a.ID)
	if err != nil || got.Request != a.Request || got.State != "pending" || got.CreatedMS != 5 || got.UpdatedMS == 0 {
		t.Fatalf("get %+v, %v", got, err)
	}
	got.State, got.Spec, got.LaunchedMS, got.Reason = "running", `{"id":"x"}`, 77, "r"
	got.Request, got.Dir = "changed", "changed" // the request with a learned address; the directory never

	at, err := s.NCUpdateInstance(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.NCInstance(ctx, a.ID)
	if again.State != "running" || again.Spec != `{"id":"x"}` || again.LaunchedMS != 77 || again.Reason != "r" ||
		again.Request != "changed" || again.Dir != a.Dir || again.UpdatedMS != at {
		t.Fatalf("after update %+v", again)
	}
	if _, err := s.NCUpdateInstance(ctx, NCInstance{ID: "i-00000000nothere"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if _, err := s.NCInstance(ctx, "i-00000000nothere"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	all, err := s.NCInstances(ctx)
	if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("list %+v, %v", all, err)
	}
	if err := s.NCDeleteInstance(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.NCDeleteInstance(ctx, a.ID); err != nil {
		t.Fatalf("delete twice: %v", err)
	}
	if all, _ := s.NCInstances(ctx); len(all) != 1 {
		t.Fatalf("after delete %+v", all)
	}
}
