package store

import (
	"context"
	"errors"
	"testing"
)

func TestCCNodeRegistry(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []struct {
		zone, host string
		port       int
		added      bool
	}{
		{"z1", "10.0.0.2", 8775, true},
		{"z1", "10.0.0.3", 8775, true},
		{"z2", "10.0.0.2", 8775, true},  // one host may serve in two zones' lists
		{"z1", "10.0.0.2", 9000, false}, // registered again: the port moves
	} {
		added, err := s.RegisterCCNode(ctx, n.zone, n.host, n.port)
		if err != nil || added != n.added {
			t.Fatalf("register %+v: added %v, %v", n, added, err)
		}
	}
	got, err := s.CCNodes(ctx, "z1")
	if err != nil || len(got) != 2 || got[0].Host != "10.0.0.2" || got[0].Port != 9000 || got[1].Host != "10.0.0.3" || got[0].RegisteredMS == 0 {
		t.Fatalf("z1 nodes %+v, %v", got, err)
	}
	if all, _ := s.CCNodes(ctx, ""); len(all) != 3 {
		t.Fatalf("every zone's nodes: %+v", all)
	}

	st := CCNodeStatus{Zone: "z1", Host: "10.0.0.2", Up: true, CoresFree: 3, CoresMax: 4, MemoryFree: 1000, MemoryMax: 2048,
		DiskFree: 30, DiskMax: 40, Instances: 1, LastSeenMS: 77, Version: "v1"}
	ghost := CCNodeStatus{Zone: "z1", Host: "10.0.0.9", Error: "never registered"}
	if err := s.PutCCNodeStatuses(ctx, []CCNodeStatus{st, ghost}); err != nil {
		t.Fatal(err)
	}
	sts, err := s.CCNodeStatuses(ctx, "z1")
	if err != nil || len(sts) != 1 || sts[CCNodeKey{"z1", "10.0.0.2"}] != st {
		t.Fatalf("statuses %+v, %v: want only the registered node's", sts, err)
	}
	st.Up, st.Error = false, "connection refused"
	if err := s.PutCCNodeStatuses(ctx, []CCNodeStatus{st}); err != nil {
		t.Fatal(err)
	}
	if sts, _ = s.CCNodeStatuses(ctx, ""); sts[CCNodeKey{"z1", "10.0.0.2"}] != st {
		t.Fatalf("replaced status %+v", sts)
	}

	if err := s.DeregisterCCNode(ctx, "z1", "10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeregisterCCNode(ctx, "z1", "10.0.0.2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deregister twice: %v, want ErrNotFound", err)
	}
	if got, _ = s.CCNodes(ctx, "z1"); len(got) != 1 || got[0].Host != "10.0.0.3" {
		t.Fatalf("after deregister: %+v", got)
	}
	if sts, _ = s.CCNodeStatuses(ctx, ""); len(sts) != 0 {
		t.Fatalf("a deregistered node's status stays: %+v", sts)
	}
	// A late poll of the deregistered node does not bring it back.
	if err := s.PutCCNodeStatuses(ctx, []CCNodeStatus{st}); err != nil {
		t.Fatal(err)
	}
	if sts, _ = s.CCNodeStatuses(ctx, ""); len(sts) != 0 {
		t.Fatalf("status of a deregistered node written: %+v", sts)
	}
	if got, _ = s.CCNodes(ctx, "z2"); len(got) != 1 {
		t.Fatalf("the other zone's registration went too: %+v", got)
	}
}

func init() {
	tableSeeds["cc_nodes"] = []string{
		`INSERT INTO cc_nodes (zone, host, port, registered_ms) VALUES ('us-euca-1a', '10.0.0.2', 8775, 11)`,
		`INSERT INTO cc_node_status (zone, host, up, cores_free, cores_max, memory_free, memory_max, disk_free, disk_max, instances, last_seen_ms, version, error)
			VALUES ('us-euca-1a', '10.0.0.2', 1, 3, 4, 1920, 2048, 38, 40, 1, 12, 'v1', '')`,
	}
}
