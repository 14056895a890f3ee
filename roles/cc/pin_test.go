package cc

import (
	"context"
	"errors"
	"testing"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
)

// TestPinnedLaunch: a request naming a node (an EBS-backed instance, its
// volumes exported to that node) runs there whatever the policy would
// choose, or not at all: a node without room, or not up, refuses it with
// ErrInsufficientCapacity and starts nothing.
func TestPinnedLaunch(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(2), room(1))
	c := e.cluster(t)
	ctx := context.Background()
	r := reqs("i", 1)
	r[0].Node = "b" // GREEDY would take a
	ps, err := c.RunInstances(ctx, r)
	if err != nil || len(ps) != 1 || ps[0].Node != "b" {
		t.Fatalf("pinned to b: %v %v", ps, err)
	}
	if got := e.nodes["b"].ids(); len(got) != 1 || got[0] != "i-0" {
		t.Errorf("node b runs %v", got)
	}
	full := reqs("j", 1)
	full[0].Node = "b"
	if _, err := c.RunInstances(ctx, full); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Errorf("pinned to a full node: %v", err)
	}
	gone := reqs("k", 1)
	gone[0].Node = "nowhere"
	if _, err := c.RunInstances(ctx, gone); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Errorf("pinned to an unknown node: %v", err)
	}
	two := reqs("m", 3)
	for i := range two {
		two[i].Node = "a"
	}
	if _, err := c.RunInstances(ctx, two); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Errorf("three pinned to a node with room for two: %v", err)
	}
	if got := len(e.nodes["a"].ids()); got != 0 {
		t.Errorf("a refused launch started %d on a", got)
	}
}
