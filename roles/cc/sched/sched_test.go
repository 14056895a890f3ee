package sched

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

var (
	small = ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2}
	large = ncapi.Resources{Cores: 2, MemoryMiB: 512, DiskGiB: 10}
)

// room is a node with space for n small instances.
func room(n int) ncapi.Resources {
	return ncapi.Resources{Cores: n, MemoryMiB: 128 * n, DiskGiB: 2 * n}
}

func up(name string, free ncapi.Resources) Node { return Node{Name: name, Up: true, Free: free} }

func reqs(need ncapi.Resources, n int) []Request {
	out := make([]Request, n)
	for i := range out {
		out[i] = Request{ID: fmt.Sprintf("i-%d", i), Needs: need}
	}
	return out
}

// nodesOf is the node each request went to, in request order.
func nodesOf(p Plan) []string {
	var out []string
	for _, a := range p.Assign {
		out = append(out, a.Node)
	}
	return out
}

func TestPolicies(t *testing.T) {
	down := func(n Node) Node { n.Up = false; return n }
	asleep := func(n Node) Node { n.Up, n.Asleep = false, true; return n }
	tests := []struct {
		name     string
		policy   Policy
		snap     Snapshot
		reqs     []Request
		want     []string // nodes in request order; nil with wantErr
		wantLast string
		wantErr  bool
		wantWake []string
	}{
		{"greedy fills the first node first", Greedy,
			Snapshot{Nodes: []Node{up("a", room(2)), up("b", room(2))}}, reqs(small, 3),
			[]string{"a", "a", "b"}, "b", false, nil},
		{"greedy skips a node without room", Greedy,
			Snapshot{Nodes: []Node{up("a", room(1)), up("b", room(5))}}, reqs(large, 1),
			[]string{"b"}, "b", false, nil},
		{"greedy follows NODES order, not room", Greedy,
			Snapshot{Nodes: []Node{up("a", room(2)), up("b", room(8))}}, reqs(small, 1),
			[]string{"a"}, "a", false, nil},
		{"greedy skips a node that is down", Greedy,
			Snapshot{Nodes: []Node{down(up("a", room(8))), up("b", room(1))}}, reqs(small, 1),
			[]string{"b"}, "b", false, nil},
		{"greedy: whole request or nothing", Greedy,
			Snapshot{Nodes: []Node{up("a", room(2)), up("b", room(1))}}, reqs(small, 4),
			nil, "", true, nil},
		{"greedy: one resource short is no room", Greedy,
			Snapshot{Nodes: []Node{up("a", ncapi.Resources{Cores: 8, MemoryMiB: 64, DiskGiB: 100})}}, reqs(small, 1),
			nil, "", true, nil},
		{"greedy: no nodes", Greedy, Snapshot{}, reqs(small, 1), nil, "", true, nil},
		{"greedy: all down", Greedy,
			Snapshot{Nodes: []Node{down(up("a", room(8)))}}, reqs(small, 1), nil, "", true, nil},

		{"roundrobin starts at the first node", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(4)), up("b", room(4)), up("c", room(4))}}, reqs(small, 4),
			[]string{"a", "b", "c", "a"}, "a", false, nil},
		{"roundrobin starts after the last node used", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(4)), up("b", room(4)), up("c", room(4))}, Last: "b"}, reqs(small, 2),
			[]string{"c", "a"}, "a", false, nil},
		{"roundrobin skips full nodes", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(4)), up("b", room(0)), up("c", room(1))}, Last: "a"}, reqs(small, 3),
			[]string{"c", "a", "a"}, "a", false, nil},
		{"roundrobin: cursor on a node that is down", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(4)), down(up("b", room(4))), up("c", room(4))}, Last: "b"}, reqs(small, 2),
			[]string{"c", "a"}, "a", false, nil},
		{"roundrobin: cursor on a node no longer listed", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(4)), up("b", room(4))}, Last: "gone"}, reqs(small, 1),
			[]string{"a"}, "a", false, nil},
		{"roundrobin: whole request or nothing", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(1)), up("b", room(1))}, Last: "a"}, reqs(small, 3),
			nil, "", true, nil},

		{"greedy: an instance never spans nodes", Greedy,
			Snapshot{Nodes: []Node{up("a", room(1)), up("b", room(1)), up("c", room(1))}}, reqs(large, 1),
			nil, "", true, nil},
		{"greedy: never over-commits a node's memory", Greedy,
			Snapshot{Nodes: []Node{up("a", ncapi.Resources{Cores: 8, MemoryMiB: 300, DiskGiB: 100})}}, reqs(small, 3),
			nil, "", true, nil},
		{"greedy: never over-commits a node's disk", Greedy,
			Snapshot{Nodes: []Node{up("a", ncapi.Resources{Cores: 8, MemoryMiB: 4096, DiskGiB: 5})}}, reqs(small, 3),
			nil, "", true, nil},
		{"greedy: a sleeping node only when nothing awake has room", Greedy,
			Snapshot{Nodes: []Node{asleep(up("a", room(4))), up("b", room(1)), asleep(up("c", room(4)))}}, reqs(small, 3),
			[]string{"b", "a", "a"}, "a", false, []string{"a"}},

		{"powersave fills awake nodes in NODES order", PowerSave,
			Snapshot{Nodes: []Node{up("a", room(2)), up("b", room(4))}}, reqs(small, 3),
			[]string{"a", "a", "b"}, "b", false, nil},
		{"powersave wakes nothing while an awake node has room", PowerSave,
			Snapshot{Nodes: []Node{asleep(up("a", room(4))), up("b", room(2))}}, reqs(small, 2),
			[]string{"b", "b"}, "b", false, nil},
		{"powersave wakes the first sleeping node with room", PowerSave,
			Snapshot{Nodes: []Node{up("a", room(1)), asleep(up("b", room(1))), asleep(up("c", room(8)))}}, reqs(large, 1),
			[]string{"c"}, "c", false, []string{"c"}},
		{"powersave wakes one node for the whole request", PowerSave,
			Snapshot{Nodes: []Node{up("a", room(1)), asleep(up("b", room(4))), asleep(up("c", room(4)))}}, reqs(small, 4),
			[]string{"a", "b", "b", "b"}, "b", false, []string{"b"}},
		{"powersave skips a node that is down", PowerSave,
			Snapshot{Nodes: []Node{down(up("a", room(4))), up("b", room(4))}}, reqs(small, 1),
			[]string{"b"}, "b", false, nil},
		{"powersave: whole request or nothing, and nothing woken", PowerSave,
			Snapshot{Nodes: []Node{up("a", room(1)), asleep(up("b", room(1)))}}, reqs(small, 3),
			nil, "", true, nil},
		{"roundrobin: a sleeping node takes its turn and is woken", RoundRobin,
			Snapshot{Nodes: []Node{up("a", room(4)), asleep(up("b", room(4)))}, Last: "a"}, reqs(small, 2),
			[]string{"b", "a"}, "a", false, []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.snap)
			p, err := tt.policy(tt.snap, tt.reqs)
			if fmt.Sprint(tt.snap) != before {
				t.Errorf("policy changed its snapshot: %s became %v", before, tt.snap)
			}
			if tt.wantErr {
				if !errors.Is(err, ccapi.ErrInsufficientCapacity) {
					t.Fatalf("err %v, want ErrInsufficientCapacity", err)
				}
				if len(p.Assign) != 0 || len(p.Wake) != 0 {
					t.Fatalf("a failed plan assigns %v, wakes %v", p.Assign, p.Wake)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := nodesOf(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("placed on %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(p.Wake, tt.wantWake) {
				t.Errorf("wake %v, want %v", p.Wake, tt.wantWake)
			}
			if p.Last != tt.wantLast {
				t.Errorf("last %q, want %q", p.Last, tt.wantLast)
			}
			for i, a := range p.Assign {
				if a.ID != tt.reqs[i].ID {
					t.Errorf("assignment %d is %s, want request order (%s)", i, a.ID, tt.reqs[i].ID)
				}
			}
		})
	}
}

// TestRoundRobinRotates carries the cursor from plan to snapshot across
// calls, as the cluster controller does.
func TestRoundRobinRotates(t *testing.T) {
	snap := Snapshot{Nodes: []Node{up("a", room(8)), up("b", room(8)), up("c", room(8))}}
	var got []string
	for range 5 {
		p, err := RoundRobin(snap, reqs(small, 1))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Assign[0].Node)
		snap.Last = p.Last
	}
	if want := []string{"a", "b", "c", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rotation %v, want %v", got, want)
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		room, need ncapi.Resources
		want       int
	}{
		{room(4), small, 4},
		{ncapi.Resources{Cores: 8, MemoryMiB: 1024, DiskGiB: 100}, small, 8},                                  // cores bind
		{ncapi.Resources{Cores: 8, MemoryMiB: 300, DiskGiB: 100}, small, 2},                                   // memory binds
		{ncapi.Resources{Cores: 8, MemoryMiB: 1024, DiskGiB: 5}, small, 2},                                    // disk binds
		{ncapi.Resources{Cores: 4, MemoryMiB: 2048, DiskGiB: 20}, large, 2},                                   // m1.large on a 4-core host
		{ncapi.Resources{Cores: 1, MemoryMiB: 127, DiskGiB: 2}, small, 0},                                     // just short
		{ncapi.Resources{Cores: -1, MemoryMiB: -128, DiskGiB: 0}, small, 0},                                   // oversubscribed
		{ncapi.Resources{Cores: 4, MemoryMiB: 512, DiskGiB: 0}, ncapi.Resources{Cores: 1, MemoryMiB: 128}, 4}, // no disk needed
		{room(4), ncapi.Resources{}, 0},
	}
	for _, tt := range tests {
		if got := Count(tt.room, tt.need); got != tt.want {
			t.Errorf("Count(%+v, %+v) = %d, want %d", tt.room, tt.need, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"GREEDY", "roundrobin", " PowerSave "} {
		if _, err := Lookup(name); err != nil {
			t.Errorf("Lookup(%q): %v", name, err)
		}
	}
	if _, err := Lookup("FIRSTFIT"); err == nil {
		t.Error("Lookup(FIRSTFIT) accepted an unknown policy")
	}
}
