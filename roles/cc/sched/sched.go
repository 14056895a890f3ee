// Package sched holds the cluster controller's placement policies
// (SCHEDPOLICY). A policy is pure: it reads a snapshot of the cluster's
// nodes and returns a plan that puts every requested instance on a node, or
// an error when the whole request does not fit; it starts nothing and keeps
// no state of its own (what must be remembered between calls, ROUNDROBIN's
// cursor, travels in the snapshot and comes back in the plan). The cluster
// controller carries the plan out, and rolls it back if a node refuses.
//
// The policies are Eucalyptus's:
//
//   - GREEDY: each instance goes to the first node, in NODES order, with room
//     for it (Eucalyptus's default when SCHEDPOLICY is absent).
//   - ROUNDROBIN: each instance goes to the first node with room after the
//     node that took the previous instance, wrapping around; the cursor is
//     kept across requests, so launches spread over the cluster.
//   - POWERSAVE: like GREEDY, but nodes that already run instances come
//     before idle ones, so that the idle ones stay idle and could be powered
//     down. Eucalyptus also suspended a node idle for POWER_IDLETHRESH and
//     woke it (allowing POWER_WAKETHRESH for it to come back) when needed;
//     euca accepts both keys but powers nothing down or up: power control
//     of physical hosts is out of scope, so only the preference remains.
//
// Instances are placed in request order, each seeing the room the earlier
// ones of the same plan took; the plan is all or nothing.
package sched

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Node is one node as a policy sees it.
type Node struct {
	Name string
	Up   bool            // only nodes that answered their last poll take instances
	Free ncapi.Resources // room left, including instances started since the poll
	Busy bool            // it runs (or is starting) at least one instance
}

// Request is one instance to place.
type Request struct {
	ID    string
	Needs ncapi.Resources
}

// Snapshot is the cluster as the policy decides on it.
type Snapshot struct {
	// Nodes are every node of the cluster, up or not, in NODES order:
	// ROUNDROBIN finds its cursor among them even when that node is down.
	Nodes []Node
	// Last is the node that took the previous instance (ROUNDROBIN).
	Last string
}

// Assignment puts one instance on one node.
type Assignment struct {
	ID   string
	Node string
}

// Plan is a policy's answer: one assignment per request, in request order,
// and the cursor to pass in the next snapshot.
type Plan struct {
	Assign []Assignment
	Last   string
}

// Policy places a whole request on a snapshot.
type Policy func(snap Snapshot, reqs []Request) (Plan, error)

// policies is every SCHEDPOLICY this build knows.
var policies = map[string]Policy{
	"GREEDY":     Greedy,
	"ROUNDROBIN": RoundRobin,
	"POWERSAVE":  PowerSave,
}

// Lookup returns the policy SCHEDPOLICY names (any case).
func Lookup(name string) (Policy, error) {
	if p, ok := policies[strings.ToUpper(strings.TrimSpace(name))]; ok {
		return p, nil
	}
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown SCHEDPOLICY %q (known: %s)", name, strings.Join(names, ", "))
}

// Greedy puts each instance on the first node, in NODES order, with room.
func Greedy(snap Snapshot, reqs []Request) (Plan, error) {
	return place(snap, reqs, func(nodes []Node, _ int) []int {
		return upIndexes(nodes, 0)
	})
}

// RoundRobin puts each instance on the first node with room after the one
// that took the previous instance.
func RoundRobin(snap Snapshot, reqs []Request) (Plan, error) {
	return place(snap, reqs, func(nodes []Node, last int) []int {
		return upIndexes(nodes, last+1)
	})
}

// PowerSave puts each instance on the first busy node with room, and only
// when none has room on the first idle one. A node an earlier instance of
// the same plan went to counts as busy.
func PowerSave(snap Snapshot, reqs []Request) (Plan, error) {
	return place(snap, reqs, func(nodes []Node, _ int) []int {
		all := upIndexes(nodes, 0)
		busy := make([]int, 0, len(all))
		var idle []int
		for _, i := range all {
			if nodes[i].Busy {
				busy = append(busy, i)
			} else {
				idle = append(idle, i)
			}
		}
		return append(busy, idle...)
	})
}

// place runs the policy's node order for each request in turn. order gets
// the nodes (with the room left so far) and the index of the last node used
// (-1 for none) and returns the indexes to try, best first.
func place(snap Snapshot, reqs []Request, order func(nodes []Node, last int) []int) (Plan, error) {
	nodes := slices.Clone(snap.Nodes)
	last := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == snap.Last })
	plan := Plan{Assign: make([]Assignment, 0, len(reqs)), Last: snap.Last}
	for _, r := range reqs {
		chosen := -1
		for _, i := range order(nodes, last) {
			if Count(nodes[i].Free, r.Needs) > 0 {
				chosen = i
				break
			}
		}
		if chosen < 0 {
			return Plan{}, fmt.Errorf("%w: %d instance(s) requested, %s (%d cores, %d MiB, %d GiB) has no node with room after %d placed",
				ccapi.ErrInsufficientCapacity, len(reqs), r.ID, r.Needs.Cores, r.Needs.MemoryMiB, r.Needs.DiskGiB, len(plan.Assign))
		}
		nodes[chosen].Free = nodes[chosen].Free.Sub(r.Needs)
		nodes[chosen].Busy = true
		last = chosen
		plan.Last = nodes[chosen].Name
		plan.Assign = append(plan.Assign, Assignment{ID: r.ID, Node: nodes[chosen].Name})
	}
	return plan, nil
}

// upIndexes lists the nodes that are up, starting at from and wrapping.
func upIndexes(nodes []Node, from int) []int {
	out := make([]int, 0, len(nodes))
	for k := range nodes {
		i := (from + k) % len(nodes)
		if nodes[i].Up {
			out = append(out, i)
		}
	}
	return out
}

// Count is how many instances needing need fit in room: the smallest of the
// per-resource quotients (Eucalyptus's free/max of a VM type). A resource the
// instance does not need is no limit; an instance that needs nothing counts
// as not fitting rather than as infinitely many.
func Count(room, need ncapi.Resources) int {
	n, limited := 0, false
	for _, d := range [][2]int{
		{room.Cores, need.Cores},
		{room.MemoryMiB, need.MemoryMiB},
		{room.DiskGiB, need.DiskGiB},
	} {
		if d[1] <= 0 {
			continue
		}
		q := max(d[0], 0) / d[1]
		if !limited || q < n {
			n, limited = q, true
		}
	}
	return n
}
