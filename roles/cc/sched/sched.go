// Package sched holds the cluster controller's placement policies
// (SCHEDPOLICY). A policy is pure: it reads a snapshot of the cluster's
// nodes and returns a plan that puts every requested instance on a node, or
// an error when the whole request does not fit; it starts nothing and keeps
// no state of its own (what must be remembered between calls, ROUNDROBIN's
// cursor, travels in the snapshot and comes back in the plan). The cluster
// controller carries the plan out, and rolls it back if a node refuses.
//
// The policies are Eucalyptus 1.5's (cluster/handlers.c, schedule_instance_*):
//
//   - GREEDY: each instance goes to the first awake node, in NODES order,
//     with room for it; when no awake node has room, to the first sleeping
//     one that has, which the plan then asks to wake (Eucalyptus's default
//     when SCHEDPOLICY is absent).
//   - ROUNDROBIN: each instance goes to the first node with room after the
//     node that took the previous instance, wrapping around; the cursor is
//     kept across requests, so launches spread over the cluster. A sleeping
//     node takes its turn (and is woken), as in Eucalyptus, where only a
//     node that is down is skipped.
//   - POWERSAVE: places as GREEDY does (Eucalyptus ran the same function):
//     awake nodes first, filled in NODES order so that the later ones stay
//     idle, and a sleeping node only when nothing awake has room. What makes
//     it POWERSAVE is the cluster controller's: it powers a node down once it
//     has been idle for POWER_IDLETHRESH seconds, and counts a woken node out
//     if it does not answer within POWER_WAKETHRESH (package power). Nodes
//     sleep only under POWERSAVE, so under the other policies the sleeping
//     branch never comes into play.
//
// Instances are placed in request order, each seeing the room the earlier
// ones of the same plan took; the plan is all or nothing. Room is never
// over-committed: a node takes an instance only if every resource it needs
// (cores, memory, disk) is free on that one node; an instance never spans
// nodes.
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
	Up   bool            // answered its last poll (or is being woken): takes instances
	Free ncapi.Resources // room left, including instances started since the poll
	// Asleep: powered down by POWERSAVE. It takes instances only when no
	// awake node has room, and the plan names it in Wake. Free is its room
	// when it went to sleep.
	Asleep bool
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
// the cursor to pass in the next snapshot, and the sleeping nodes it put
// instances on, which must be woken before they are started.
type Plan struct {
	Assign []Assignment
	Last   string
	Wake   []string
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

// Greedy puts each instance on the first awake node, in NODES order, with
// room, else on the first sleeping one with room.
func Greedy(snap Snapshot, reqs []Request) (Plan, error) {
	return place(snap, reqs, awakeFirst)
}

// RoundRobin puts each instance on the first node with room after the one
// that took the previous instance.
func RoundRobin(snap Snapshot, reqs []Request) (Plan, error) {
	return place(snap, reqs, func(nodes []Node, last int) []int {
		return usable(nodes, last+1)
	})
}

// PowerSave places as Greedy does: awake nodes in NODES order, then the
// sleeping ones. The powering down and waking are the cluster controller's.
func PowerSave(snap Snapshot, reqs []Request) (Plan, error) {
	return place(snap, reqs, awakeFirst)
}

// awakeFirst is GREEDY's and POWERSAVE's order: the awake nodes in NODES
// order, then the sleeping ones in NODES order.
func awakeFirst(nodes []Node, _ int) []int {
	all := usable(nodes, 0)
	out := make([]int, 0, len(all))
	var asleep []int
	for _, i := range all {
		if nodes[i].Asleep {
			asleep = append(asleep, i)
		} else {
			out = append(out, i)
		}
	}
	return append(out, asleep...)
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
		if nodes[chosen].Asleep {
			// Woken for this plan: awake for the instances after this one.
			nodes[chosen].Asleep, nodes[chosen].Up = false, true
			plan.Wake = append(plan.Wake, nodes[chosen].Name)
		}
		last = chosen
		plan.Last = nodes[chosen].Name
		plan.Assign = append(plan.Assign, Assignment{ID: r.ID, Node: nodes[chosen].Name})
	}
	return plan, nil
}

// usable lists the nodes that are up or asleep (not down), starting at from
// and wrapping.
func usable(nodes []Node, from int) []int {
	out := make([]int, 0, len(nodes))
	for k := range nodes {
		i := (from + k) % len(nodes)
		if nodes[i].Up || nodes[i].Asleep {
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
