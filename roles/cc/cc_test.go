package cc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/cc/power"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

func TestCapacityMath(t *testing.T) {
	nodes := []ccapi.NodeInfo{
		{Host: "a", Up: true, Max: ncapi.Resources{Cores: 4, MemoryMiB: 2048, DiskGiB: 40}, Free: ncapi.Resources{Cores: 3, MemoryMiB: 1920, DiskGiB: 38}},
		{Host: "b", Up: true, Max: ncapi.Resources{Cores: 2, MemoryMiB: 256, DiskGiB: 100}, Free: ncapi.Resources{Cores: 2, MemoryMiB: 256, DiskGiB: 100}},
		{Host: "c", Up: false, Max: room(100), Free: room(100)}, // down: counts for nothing
	}
	got := capacity(nodes, testTypes)
	want := map[string]ccapi.Capacity{
		// a: free min(3, 15, 19) = 3, max min(4, 16, 20) = 4; b: memory binds at 2.
		"m1.small": {Free: 3 + 2, Max: 4 + 2},
		// a: free min(1, 3, 3) = 1, max min(2, 4, 4) = 2; b: 256 MiB holds none.
		"m1.large": {Free: 1, Max: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("capacity %v, want %v", got, want)
	}
}

func TestDescribeNodesAndCapacity(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(4), room(8))
	e.nodes["b"].down = true
	c := e.cluster(t)
	ctx := context.Background()
	st, err := c.Describe(ctx, testTypes)
	if err != nil {
		t.Fatal(err)
	}
	if st.Zone != e.cfg.ClusterName || len(st.Nodes) != 2 {
		t.Fatalf("status %+v", st)
	}
	a, b := st.Nodes[0], st.Nodes[1]
	if a.Host != "a" || !a.Up || a.LastSeen.IsZero() || a.Max != room(4) || a.Driver != "fake" {
		t.Errorf("node a %+v", a)
	}
	if b.Host != "b" || b.Up || !strings.Contains(b.Error, "connection refused") {
		t.Errorf("node b %+v: want down with the error", b)
	}
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 4, Max: 4}) {
		t.Errorf("m1.small %+v: a down node must not count", got)
	}

	// The node comes back: the next poll counts it.
	e.nodes["b"].set(func(f *fakeNode) { f.down = false })
	c.poll(ctx)
	st, _ = c.Describe(ctx, testTypes)
	if !st.Nodes[1].Up || st.Nodes[1].Error != "" {
		t.Errorf("node b after recovery %+v", st.Nodes[1])
	}
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 12, Max: 12}) {
		t.Errorf("m1.small after recovery %+v", got)
	}
}

func TestRunInstancesPlacesAndCountsRoom(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(2), room(2))
	c := e.cluster(t)
	ctx := context.Background()
	ps, err := c.RunInstances(ctx, reqs("i", 3))
	if err != nil {
		t.Fatal(err)
	}
	want := []ccapi.Placement{{ID: "i-0", Node: "a"}, {ID: "i-1", Node: "a"}, {ID: "i-2", Node: "b"}}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("placements %v, want %v", ps, want)
	}
	if got := e.nodes["a"].ids(); !reflect.DeepEqual(got, []string{"i-0", "i-1"}) {
		t.Errorf("node a runs %v", got)
	}
	if br := e.nodes["b"].bridges["i-2"]; br != "euca-br0" {
		t.Errorf("NIC bridge %q, want the network's", br)
	}
	// Before any poll sees them, the room they took is already counted.
	st, _ := c.Describe(ctx, testTypes)
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 1, Max: 4}) {
		t.Errorf("capacity before the poll %+v", got)
	}
	if len(st.Instances) != 3 {
		t.Errorf("instances before the poll %+v", st.Instances)
	}
	c.poll(ctx)
	st, _ = c.Describe(ctx, testTypes)
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 1, Max: 4}) {
		t.Errorf("capacity after the poll %+v (counted twice?)", got)
	}
	nodeOf := map[string]string{}
	for _, in := range st.Instances {
		nodeOf[in.ID] = in.Node
	}
	if !reflect.DeepEqual(nodeOf, map[string]string{"i-0": "a", "i-1": "a", "i-2": "b"}) {
		t.Errorf("described instances %v", nodeOf)
	}
	// One more fits; two more do not, and then nothing starts.
	if _, err := c.RunInstances(ctx, reqs("j", 2)); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Fatalf("over capacity: %v", err)
	}
	if got := len(e.nodes["a"].callList()) + len(e.nodes["b"].callList()); got != 3 {
		t.Errorf("a refused request reached the nodes: %v %v", e.nodes["a"].callList(), e.nodes["b"].callList())
	}
	if _, err := c.RunInstances(ctx, reqs("k", 1)); err != nil {
		t.Fatalf("the last room: %v", err)
	}
}

func TestRunInstancesRollsBack(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(2), room(2))
	e.nodes["b"].failRun = errors.New("image download failed")
	c := e.cluster(t)
	ctx := context.Background()
	_, err := c.RunInstances(ctx, reqs("i", 4))
	if err == nil || !strings.Contains(err.Error(), "image download failed") {
		t.Fatalf("err %v", err)
	}
	for n, f := range e.nodes {
		if ids := f.ids(); len(ids) != 0 {
			t.Errorf("node %s still runs %v", n, ids)
		}
	}
	if calls := e.nodes["a"].callList(); !containsAll(calls, "terminate i-0", "terminate i-1") {
		t.Errorf("node a calls %v: want its instances terminated", calls)
	}
	if ps, _ := e.st.CCPlacements(ctx, c.Zone()); len(ps) != 0 {
		t.Errorf("placements left in the store: %+v", ps)
	}
	st, _ := c.Describe(ctx, testTypes)
	if len(st.Instances) != 0 || st.Capacity["m1.small"].Free != 4 {
		t.Errorf("after rollback: instances %v, capacity %v", st.Instances, st.Capacity)
	}

	// A node with less room than its poll said: capacity, and rolled back.
	e.nodes["b"].set(func(f *fakeNode) { f.failRun = ncapi.ErrNoCapacity })
	if _, err := c.RunInstances(ctx, reqs("j", 4)); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Fatalf("node out of room: %v, want ErrInsufficientCapacity", err)
	}
	if ids := e.nodes["a"].ids(); len(ids) != 0 {
		t.Errorf("node a still runs %v", ids)
	}
}

func containsAll(list []string, want ...string) bool {
	have := map[string]bool{}
	for _, s := range list {
		have[s] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

func TestDownNodeGetsNothing(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(8), room(1))
	e.nodes["a"].down = true
	c := e.cluster(t)
	ctx := context.Background()
	ps, err := c.RunInstances(ctx, reqs("i", 1))
	if err != nil || ps[0].Node != "b" {
		t.Fatalf("placed %v, %v; want on b", ps, err)
	}
	if _, err := c.RunInstances(ctx, reqs("j", 1)); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Fatalf("b full and a down: %v", err)
	}
	if calls := e.nodes["a"].callList(); len(calls) != 0 {
		t.Errorf("a down node was asked: %v", calls)
	}
}

func TestRoundRobinAcrossRequests(t *testing.T) {
	e := newEnv(t, "ROUNDROBIN", []string{"a", "b", "c"}, room(4), room(4), room(4))
	c := e.cluster(t)
	var got []string
	for i := range 4 {
		ps, err := c.RunInstances(context.Background(), reqs("i"+string(rune('0'+i)), 1))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ps[0].Node)
	}
	if want := []string{"a", "b", "c", "a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rotation %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// placedOn is the node of each placement, in order.
func placedOn(ps []ccapi.Placement) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Node)
	}
	return out
}

// TestPowerSavePlacesAsGreedy: POWERSAVE is GREEDY's order (Eucalyptus 1.5
// ran one function for both): awake nodes in NODES order, an idle one
// before a busy one further down the list.
func TestPowerSavePlacesAsGreedy(t *testing.T) {
	e := newEnv(t, "POWERSAVE", []string{"a", "b"}, room(2), room(4))
	e.nodes["b"].instances["i-old"] = ncapi.InstanceStatus{ID: "i-old", State: ncapi.StateRunning, Holds: small}
	c := e.cluster(t)
	ps, err := c.RunInstances(context.Background(), reqs("i", 3))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := placedOn(ps), []string{"a", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("powersave placed on %v, want %v", got, want)
	}
}

// fakePower sleeps and wakes fake nodes: a sleeping one answers nothing.
// A node in dead does not come back when woken.
type fakePower struct {
	mu        sync.Mutex
	nodes     map[string]*fakeNode
	dead      map[string]bool
	off, woke []string
}

func (p *fakePower) PowerOff(_ context.Context, name string) error {
	p.mu.Lock()
	p.off = append(p.off, name)
	p.mu.Unlock()
	p.nodes[name].set(func(f *fakeNode) { f.down = true })
	return nil
}

func (p *fakePower) Wake(_ context.Context, name string) error {
	p.mu.Lock()
	p.woke = append(p.woke, name)
	dead := p.dead[name]
	p.mu.Unlock()
	if !dead {
		p.nodes[name].set(func(f *fakeNode) { f.down = false })
	}
	return nil
}

func (p *fakePower) calls() (off, woke []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.off), slices.Clone(p.woke)
}

// clock is a settable time for the cluster (c.now); step is added at each
// reading, so that waits on the cluster's time end without real sleeps.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (k *clock) now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.t = k.t.Add(k.step)
	return k.t
}

func (k *clock) add(d time.Duration) {
	k.mu.Lock()
	k.t = k.t.Add(d)
	k.mu.Unlock()
}

// powerEnv is a POWERSAVE cluster over nodes with room for n[i] m1.small
// each, a fake power switch and a settable clock; idle and wake thresholds
// of a minute.
func powerEnv(t *testing.T, names []string, n ...int) (*env, *Cluster, *fakePower, *clock) {
	t.Helper()
	max := make([]ncapi.Resources, len(n))
	for i := range n {
		max[i] = room(n[i])
	}
	e := newEnv(t, "POWERSAVE", names, max...)
	e.cfg.PowerIdleThresh, e.cfg.PowerWakeThresh = time.Minute, time.Minute
	c := e.cluster(t)
	k := &clock{t: time.Unix(1e9, 0)}
	c.now = k.now
	c.fast = time.Millisecond
	sw := &fakePower{nodes: e.nodes, dead: map[string]bool{}}
	c.SetPower(sw)
	return e, c, sw, k
}

func nodeInfo(t *testing.T, c *Cluster, name string) ccapi.NodeInfo {
	t.Helper()
	st, err := c.Describe(context.Background(), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Host == name {
			return n
		}
	}
	t.Fatalf("no node %s in %+v", name, st.Nodes)
	return ccapi.NodeInfo{}
}

// TestPowerSaveSleepsIdleNodesAndWakesThem: a node idle for longer than
// POWER_IDLETHRESH is powered down and no longer polled; its room still
// counts; it is woken only when no awake node has room.
func TestPowerSaveSleepsIdleNodesAndWakesThem(t *testing.T) {
	e, c, sw, k := powerEnv(t, []string{"a", "b"}, 2, 2)
	ctx := context.Background()
	if ps, err := c.RunInstances(ctx, reqs("i", 1)); err != nil || ps[0].Node != "a" {
		t.Fatalf("placed %v, %v", ps, err)
	}
	c.poll(ctx) // b idle from now; a busy
	k.add(30 * time.Second)
	c.poll(ctx)
	if off, _ := sw.calls(); len(off) != 0 {
		t.Fatalf("powered down %v before POWER_IDLETHRESH", off)
	}
	k.add(31 * time.Second)
	c.poll(ctx)
	if off, _ := sw.calls(); !reflect.DeepEqual(off, []string{"b"}) {
		t.Fatalf("powered down %v, want [b] (a runs an instance)", off)
	}
	if b := nodeInfo(t, c, "b"); !b.Asleep || b.Up {
		t.Fatalf("b after power-down: %+v", b)
	}
	st, _ := c.Describe(ctx, testTypes)
	if got := st.Capacity["m1.small"]; got.Free != 3 || got.Max != 4 {
		t.Errorf("capacity %+v with b asleep, want free 3, max 4 (a sleeping node can be woken)", got)
	}
	// Asleep, b is not polled (it would fail and be counted out).
	c.poll(ctx)
	if b := nodeInfo(t, c, "b"); !b.Asleep {
		t.Fatalf("a poll woke or downed b: %+v", b)
	}

	// a has room for one more: nothing is woken for it.
	if ps, err := c.RunInstances(ctx, reqs("j", 1)); err != nil || ps[0].Node != "a" {
		t.Fatalf("placed %v, %v", ps, err)
	}
	if _, woke := sw.calls(); len(woke) != 0 {
		t.Fatalf("woke %v while a had room", woke)
	}
	// a is full: b is woken, and takes both.
	ps, err := c.RunInstances(ctx, reqs("k", 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := placedOn(ps); !reflect.DeepEqual(got, []string{"b", "b"}) {
		t.Fatalf("placed on %v, want b woken for both", got)
	}
	if _, woke := sw.calls(); !reflect.DeepEqual(woke, []string{"b"}) {
		t.Fatalf("woke %v, want [b]", woke)
	}
	if b := nodeInfo(t, c, "b"); b.Asleep || !b.Up {
		t.Fatalf("b after waking: %+v", b)
	}
	if ids := e.nodes["b"].ids(); len(ids) != 2 {
		t.Fatalf("b runs %v", ids)
	}
}

// TestPowerSaveSleepersSurviveARestart: a restarted cluster controller
// takes the nodes POWERSAVE left asleep as asleep (with their room), not as
// down, and wakes them when a launch needs them.
func TestPowerSaveSleepersSurviveARestart(t *testing.T) {
	e, c, sw, k := powerEnv(t, []string{"a", "b"}, 1, 2)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 1)); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	k.add(2 * time.Minute)
	c.poll(ctx)
	if off, _ := sw.calls(); !reflect.DeepEqual(off, []string{"b"}) {
		t.Fatalf("powered down %v, want [b]", off)
	}

	c2 := e.cluster(t)
	c2.SetPower(sw)
	c2.poll(ctx)
	if b := nodeInfo(t, c2, "b"); !b.Asleep || b.Up {
		t.Fatalf("b after a restart: %+v, want asleep", b)
	}
	st, _ := c2.Describe(ctx, testTypes)
	if got := st.Capacity["m1.small"]; got.Free != 2 || got.Max != 3 {
		t.Errorf("capacity after a restart %+v, want free 2 (b's), max 3", got)
	}
	ps, err := c2.RunInstances(ctx, reqs("j", 1))
	if err != nil || ps[0].Node != "b" {
		t.Fatalf("placed %v, %v: want b woken", ps, err)
	}
	if _, woke := sw.calls(); !reflect.DeepEqual(woke, []string{"b"}) {
		t.Fatalf("woke %v, want [b]", woke)
	}
}

// sleepyNode is a fake node that powers its own host down.
type sleepyNode struct{ *fakeNode }

func (s sleepyNode) PowerDown(context.Context) error {
	s.set(func(f *fakeNode) { f.down = true })
	return nil
}

// wakeOnly wakes fake nodes but cannot power them down, as Wake-on-LAN.
type wakeOnly struct{ *fakePower }

func (w wakeOnly) PowerOff(ctx context.Context, node string) error {
	return fmt.Errorf("power off %s: %w", node, power.ErrNoPowerOff)
}

// TestPowerSaveAsksTheNodeToPowerDown: with a switch that only wakes, an
// idle node is asked to power its own host down (Eucalyptus's
// ncPowerDown); the front-end's own node never is.
func TestPowerSaveAsksTheNodeToPowerDown(t *testing.T) {
	e := newEnv(t, "POWERSAVE", []string{"a", LocalNode}, room(2), room(2))
	e.cfg.PowerIdleThresh = time.Minute
	nodes := map[string]ncapi.Node{"a": sleepyNode{e.nodes["a"]}, LocalNode: sleepyNode{e.nodes[LocalNode]}}
	c, err := New(context.Background(), e.cfg, e.st, func(host string, _ int) (ncapi.Node, error) { return nodes[host], nil }, e.net, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	k := &clock{t: time.Unix(1e9, 0)}
	c.now = k.now
	sw := wakeOnly{&fakePower{nodes: e.nodes, dead: map[string]bool{}}}
	c.SetPower(sw)
	ctx := context.Background()
	c.poll(ctx)
	k.add(2 * time.Minute)
	c.poll(ctx)
	if a := nodeInfo(t, c, "a"); !a.Asleep {
		t.Fatalf("a: %+v, want asleep (powered down through its node API)", a)
	}
	if l := nodeInfo(t, c, LocalNode); l.Asleep || !l.Up {
		t.Fatalf("the front-end's own node: %+v, want up", l)
	}
}

// TestPowerSaveCountsOutANodeThatDoesNotWake: a woken node that has not
// answered within POWER_WAKETHRESH is down, out of the totals, and the
// launch goes to the next sleeping node instead.
func TestPowerSaveCountsOutANodeThatDoesNotWake(t *testing.T) {
	e, c, sw, k := powerEnv(t, []string{"a", "b", "c"}, 1, 2, 2)
	ctx := context.Background()
	c.poll(ctx)
	k.add(2 * time.Minute)
	c.poll(ctx)
	if off, _ := sw.calls(); len(off) != 3 {
		t.Fatalf("powered down %v, want all three idle nodes", off)
	}
	sw.mu.Lock()
	sw.dead["a"] = true // a's wake is lost
	sw.mu.Unlock()
	k.mu.Lock()
	k.step = time.Second // every reading of the clock moves it on
	k.mu.Unlock()
	ps, err := c.RunInstances(ctx, reqs("i", 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := placedOn(ps); !reflect.DeepEqual(got, []string{"b", "b"}) {
		t.Fatalf("placed on %v, want b (a never came back)", got)
	}
	// The first plan woke a (room for one) and b; the second found b awake.
	if _, woke := sw.calls(); !reflect.DeepEqual(sorted(woke), []string{"a", "b"}) {
		t.Fatalf("woke %v, want a and b, and c left asleep", woke)
	}
	if a := nodeInfo(t, c, "a"); a.Up || a.Asleep {
		t.Fatalf("a after a lost wake: %+v, want down", a)
	}
	if calls := e.nodes["a"].callList(); len(calls) != 0 {
		t.Errorf("a was asked %v though it never answered", calls)
	}
	st, _ := c.Describe(ctx, testTypes)
	if got := st.Capacity["m1.small"]; got.Free != 2 || got.Max != 4 {
		t.Errorf("capacity %+v, want free 2, max 4: a counted out, c asleep", got)
	}
}

// TestPowerSaveWithoutSwitchPowersNothing: POWERSAVE with no power control
// only places.
func TestPowerSaveWithoutSwitchPowersNothing(t *testing.T) {
	e := newEnv(t, "POWERSAVE", []string{"a"}, room(2))
	e.cfg.PowerIdleThresh = 0
	c := e.cluster(t)
	ctx := context.Background()
	c.poll(ctx)
	c.poll(ctx)
	if a := nodeInfo(t, c, "a"); a.Asleep || !a.Up {
		t.Fatalf("a: %+v", a)
	}
}

// TestInstanceNeverSpansNodes: an instance larger than every node is
// refused, though the nodes' room together would hold it.
func TestInstanceNeverSpansNodes(t *testing.T) {
	for _, policy := range []string{"GREEDY", "ROUNDROBIN", "POWERSAVE"} {
		t.Run(policy, func(t *testing.T) {
			e := newEnv(t, policy, []string{"a", "b", "c"}, room(2), room(2), room(2))
			c := e.cluster(t)
			big := reqs("i", 1)
			big[0].Holds = ncapi.Resources{Cores: 3, MemoryMiB: 256, DiskGiB: 4}
			if _, err := c.RunInstances(context.Background(), big); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
				t.Fatalf("3 cores over nodes of 2: %v", err)
			}
			for n, f := range e.nodes {
				if calls := f.callList(); len(calls) != 0 {
					t.Errorf("node %s was asked %v", n, calls)
				}
			}
		})
	}
}

func TestPollResolvesPlacements(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	c := e.cluster(t)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 2)); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	// The node boots one, and loses the other behind the CC's back.
	e.nodes["a"].set(func(f *fakeNode) {
		in := f.instances["i-0"]
		in.State = ncapi.StateRunning
		f.instances["i-0"] = in
		delete(f.instances, "i-1")
	})
	c.poll(ctx)
	st, _ := c.Describe(ctx, testTypes)
	// The lost one is reported terminated, and why, for the cloud
	// controller to end at once.
	if len(st.Instances) != 2 || st.Instances[0].ID != "i-0" || st.Instances[0].State != ncapi.StateRunning ||
		st.Instances[1].ID != "i-1" || st.Instances[1].State != ncapi.StateTerminated || !st.Instances[1].Lost ||
		!strings.Contains(st.Instances[1].Reason, "node a no longer has the instance") {
		t.Fatalf("instances %+v", st.Instances)
	}
	if got := st.Capacity["m1.small"].Free; got != 3 {
		t.Errorf("free %d, want 3", got)
	}
	ps, _ := e.st.CCPlacements(ctx, c.Zone())
	if len(ps) != 1 || ps[0].InstanceID != "i-0" {
		t.Errorf("stored placements %+v: the lost instance should be forgotten", ps)
	}
}

func TestRoutingByNode(t *testing.T) {
	e := newEnv(t, "ROUNDROBIN", []string{"a", "b"}, room(4), room(4))
	c := e.cluster(t)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 2)); err != nil { // i-0 on a, i-1 on b
		t.Fatal(err)
	}
	out, err := c.ConsoleOutput(ctx, "i-1")
	if err != nil || string(out) != "console of i-1" {
		t.Fatalf("console %q, %v", out, err)
	}
	if err := c.RebootInstances(ctx, []string{"i-0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.TerminateInstances(ctx, []string{"i-1", "i-1"}); err != nil {
		t.Fatal(err)
	}
	if got, want := e.nodes["a"].callList(), []string{"run i-0", "reboot i-0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("node a calls %v, want %v", got, want)
	}
	if got, want := e.nodes["b"].callList(), []string{"run i-1", "console i-1", "terminate i-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("node b calls %v, want %v", got, want)
	}

	// Unknown ids: terminate asks everyone and is not an error; reboot and
	// console are ErrNoSuchInstance.
	if err := c.TerminateInstances(ctx, []string{"i-unknown"}); err != nil {
		t.Errorf("terminate unknown: %v", err)
	}
	for n, f := range e.nodes {
		if calls := f.callList(); calls[len(calls)-1] != "terminate i-unknown" {
			t.Errorf("node %s was not asked to terminate the unknown instance: %v", n, calls)
		}
	}
	if err := c.RebootInstances(ctx, []string{"i-unknown"}); !errors.Is(err, ccapi.ErrNoSuchInstance) {
		t.Errorf("reboot unknown: %v", err)
	}
	if _, err := c.ConsoleOutput(ctx, "i-unknown"); !errors.Is(err, ccapi.ErrNoSuchInstance) {
		t.Errorf("console unknown: %v", err)
	}
	// An instance the CC never placed but a node reports (adopted after a
	// restart) is found through the poll.
	e.nodes["b"].set(func(f *fakeNode) {
		f.instances["i-adopted"] = ncapi.InstanceStatus{ID: "i-adopted", State: ncapi.StateRunning, Holds: small}
	})
	c.poll(ctx)
	before := len(e.nodes["a"].callList())
	if _, err := c.ConsoleOutput(ctx, "i-adopted"); err != nil {
		t.Fatal(err)
	}
	if len(e.nodes["a"].callList()) != before {
		t.Errorf("node a was asked for an instance the poll placed on b")
	}
}

func TestRestartKeepsPlacements(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(1), room(4))
	ctx := context.Background()
	c := e.cluster(t)
	if _, err := c.RunInstances(ctx, reqs("i", 2)); err != nil { // i-0 on a, i-1 on b
		t.Fatal(err)
	}
	// The CC restarts while b is unreachable: the instance on b is still
	// routed there (and fails as b does), not reported as unknown.
	e.nodes["b"].set(func(f *fakeNode) { f.down = true })
	c2 := e.cluster(t)
	_, err := c2.ConsoleOutput(ctx, "i-1")
	if err == nil || errors.Is(err, ccapi.ErrNoSuchInstance) || !strings.Contains(err.Error(), "node b") {
		t.Fatalf("console of an instance on a down node: %v", err)
	}
	if err := c2.TerminateInstances(ctx, []string{"i-1"}); err == nil {
		t.Fatal("terminate on a down node reported success")
	}
	st, _ := c2.Describe(ctx, testTypes)
	var pending []string
	for _, in := range st.Instances {
		if in.Node == "b" {
			pending = append(pending, in.ID+"/"+in.State)
		}
	}
	if !reflect.DeepEqual(pending, []string{"i-1/pending"}) {
		t.Errorf("instances on b after restart %v", pending)
	}
}

func TestRetriedLaunchGoesToTheSameNode(t *testing.T) {
	e := newEnv(t, "ROUNDROBIN", []string{"a", "b"}, room(4), room(4))
	c := e.cluster(t)
	ctx := context.Background()
	first, err := c.RunInstances(ctx, reqs("i", 1))
	if err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	again, err := c.RunInstances(ctx, reqs("i", 1))
	if err != nil || again[0] != first[0] {
		t.Fatalf("retry placed %v (%v), first %v", again, err, first)
	}
	if got := len(e.nodes["a"].ids()) + len(e.nodes["b"].ids()); got != 1 {
		t.Errorf("%d guests for one instance", got)
	}
	st, _ := c.Describe(ctx, testTypes)
	if got := st.Capacity["m1.small"].Free; got != 7 {
		t.Errorf("free %d after a retried launch, want 7", got)
	}
}

// TestConcurrentLaunchesDoNotOverbook: room for 4 over two nodes, 10
// launches at once, under each policy.
func TestConcurrentLaunchesDoNotOverbook(t *testing.T) {
	for _, policy := range []string{"GREEDY", "ROUNDROBIN", "POWERSAVE"} {
		t.Run(policy, func(t *testing.T) { concurrentLaunches(t, policy) })
	}
}

func concurrentLaunches(t *testing.T, policy string) {
	e := newEnv(t, policy, []string{"a", "b"}, room(3), room(1))
	c := e.cluster(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 10 {
		wg.Go(func() {
			_, err := c.RunInstances(context.Background(), reqs("i"+string(rune('a'+i)), 1))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ccapi.ErrInsufficientCapacity):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 4 || refused != 6 {
		t.Fatalf("%d started, %d refused; want 4 and 6", ok, refused)
	}
	// The cluster refused the six itself: no node was asked for more than
	// it had (a node's own refusal is a last guard, not the plan).
	runs := 0
	for n, f := range e.nodes {
		if free := f.freeLocked(); free.Cores < 0 || free.MemoryMiB < 0 || free.DiskGiB < 0 {
			t.Errorf("node %s over-committed: free %+v", n, free)
		}
		for _, call := range f.callList() {
			if strings.HasPrefix(call, "run ") {
				runs++
			}
		}
	}
	if runs != 4 {
		t.Errorf("nodes were asked to run %d instances, want the 4 that fit", runs)
	}
}

func TestSetNetwork(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	ctx := context.Background()
	c := e.cluster(t)
	n := ccapi.Network{
		Subnet:    netip.MustParsePrefix("172.31.0.0/16"),
		Instances: []ccapi.NetInstance{{ID: "i-1", MAC: "d0:0d:ac:1f:00:02", PrivateIP: netip.MustParseAddr("172.31.0.2"), Groups: []string{"sg-1"}}},
		Groups:    []ccapi.SecurityGroup{{ID: "sg-1", Ingress: []ccapi.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}}},
		Metadata:  netip.MustParseAddrPort("172.31.0.1:8773"),
	}
	for range 2 { // harmless twice: the whole state each time
		if err := c.SetNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	got, count := e.net.last()
	if count != 2 || !reflect.DeepEqual(got, n) {
		t.Fatalf("network set %d times, last %+v", count, got)
	}

	// A restarted CC applies the recorded network when it runs.
	e.net = &fakeNetwork{}
	c2 := e.cluster(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c2.Run(runCtx) }()
	eventually(t, "the recorded network applied at start", func() bool {
		got, count := e.net.last()
		return count >= 1 && reflect.DeepEqual(got, n)
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	// An apply that fails is an error, is remembered, and is retried.
	e.net = &fakeNetwork{fail: errors.New("no nftables")}
	c3 := e.cluster(t)
	c3.fast, c3.interval = time.Millisecond, time.Millisecond
	n2 := n
	n2.Instances = nil
	if err := c3.SetNetwork(ctx, n2); err == nil || !strings.Contains(err.Error(), "no nftables") {
		t.Fatalf("failing apply: %v", err)
	}
	runCtx, stop = context.WithCancel(ctx)
	go func() { done <- c3.Run(runCtx) }()
	e.net.mu.Lock()
	e.net.fail = nil
	e.net.mu.Unlock()
	eventually(t, "the failed apply retried", func() bool {
		got, count := e.net.last()
		return count >= 1 && reflect.DeepEqual(got, n2)
	})
	stop()
	<-done
}

// TestDefaultNetworkAtStart: with nothing recorded, Run applies the private
// subnet alone, so the bridge is there before the first instance.
func TestDefaultNetworkAtStart(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	c := e.cluster(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "the default network", func() bool {
		got, count := e.net.last()
		return count == 1 && got.Subnet == e.cfg.VNetSubnet && len(got.Instances) == 0
	})
	stop()
	<-done
}

// TestRunPolls: Run keeps the nodes' status current and stops on cancel.
func TestRunPolls(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	c := e.cluster(t)
	c.interval, c.fast = time.Millisecond, time.Millisecond
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	upNow := func(want bool) func() bool {
		return func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.state["a"].polled && c.state["a"].info.Up == want
		}
	}
	eventually(t, "node a up", upNow(true))
	e.nodes["a"].set(func(f *fakeNode) { f.down = true })
	eventually(t, "node a down", upNow(false))
	e.nodes["a"].set(func(f *fakeNode) { f.down = false })
	eventually(t, "node a up again", upNow(true))
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestReporter(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	c := e.cluster(t)
	r := NewReporter(e.st, nil, c)
	got, err := r.Capacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	zone := got[e.cfg.ClusterName]
	// Default VM types: m1.small 1/128/2 fits 4 times in room(4) (4 cores,
	// 512 MiB, 8 GiB); c1.medium 1/256/5: memory 2, disk 1.
	if zone["m1.small"] != (store.VMTypeCapacity{Free: 4, Max: 4}) || zone["c1.medium"] != (store.VMTypeCapacity{Free: 1, Max: 1}) {
		t.Fatalf("capacity %+v", got)
	}
	if len(zone) != 5 {
		t.Errorf("%d VM types reported, want the 5 defaults", len(zone))
	}
}

func TestNewRefusesUnknownPolicy(t *testing.T) {
	e := newEnv(t, "FIRSTFIT", nil)
	if _, err := New(context.Background(), e.cfg, e.st, nil, nil, nil); err == nil {
		t.Fatal("an unknown SCHEDPOLICY was accepted")
	}
}

// TestNodeOrder: NODES order first, then the nodes registered at run time,
// oldest first.
func TestNodeOrder(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"z", "a"}, room(1), room(1))
	ctx := context.Background()
	e.addNode("m", room(1))
	e.addNode("b", room(1))
	// Registered earlier than NODES is read: NODES still comes first.
	if _, err := e.st.RegisterCCNode(ctx, e.cfg.ClusterName, "m", 8775); err != nil {
		t.Fatal(err)
	}
	c := e.cluster(t)
	time.Sleep(2 * time.Millisecond) // registration times are milliseconds
	if _, err := e.st.RegisterCCNode(ctx, e.cfg.ClusterName, "b", 8775); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if want := []string{"z", "a", "m", "b"}; !reflect.DeepEqual(c.order, want) {
		t.Fatalf("order %v, want %v", c.order, want)
	}
}
