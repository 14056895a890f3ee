package cc

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/logbuf"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

func TestParseNode(t *testing.T) {
	for _, tc := range []struct {
		in, host string
		port     int
		err      string
	}{
		{in: "10.0.0.2", host: "10.0.0.2", port: 8775},
		{in: " node7.example ", host: "node7.example", port: 8775},
		{in: "Node7.Example:8776", host: "node7.example", port: 8776},
		{in: "10.0.0.2:9000", host: "10.0.0.2", port: 9000},
		{in: "[fd00::2]:9000", host: "fd00::2", port: 9000},
		{in: "fd00::2", host: "fd00::2", port: 8775},
		{in: "127.0.0.1", host: LocalNode, port: 8775},
		{in: "LOCALHOST:8776", host: LocalNode, port: 8776},
		{in: "[::1]:8775", host: LocalNode, port: 8775},
		{in: "10.0.0.2:0", err: "port"},
		{in: "10.0.0.2:http", err: "port"},
		{in: "", err: "want HOST"},
		{in: "a b", err: "want HOST"},
		{in: "--zone", err: "want HOST"},
		{in: "http://10.0.0.2", err: "want HOST"},
	} {
		host, port, err := ParseNode(tc.in, 8775)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || host != tc.host || port != tc.port):
			t.Errorf("%q: %q %d %v, want %q %d", tc.in, host, port, err, tc.host, tc.port)
		}
	}
}

// describe is the cluster's Describe, failing the test on error.
func describe(t *testing.T, c *Cluster) ccapi.Status {
	t.Helper()
	st, err := c.Describe(context.Background(), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// instance is one instance of a Describe, by id.
func instance(st ccapi.Status, id string) (ccapi.InstanceStatus, bool) {
	for _, in := range st.Instances {
		if in.ID == id {
			return in, true
		}
	}
	return ccapi.InstanceStatus{}, false
}

func nodeNames(st ccapi.Status) []string {
	var out []string
	for _, n := range st.Nodes {
		out = append(out, n.Host)
	}
	return out
}

// running makes every instance of the fake nodes run.
func running(nodes ...*fakeNode) {
	for _, f := range nodes {
		f.set(func(f *fakeNode) {
			for id, in := range f.instances {
				in.State = ncapi.StateRunning
				f.instances[id] = in
			}
		})
	}
}

// TestNodeRegisterDeregister: a node registered in the store while the CC
// runs is dialled and counted at the next poll; one deregistered leaves the
// totals at the next look, its instances reported unreachable, and a
// termination of one of them is not held up by a node nobody can reach.
func TestNodeRegisterDeregister(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(2))
	b := e.addNode("b", room(4))
	c := e.cluster(t)
	ctx := context.Background()
	zone := e.cfg.ClusterName
	if got := describe(t, c).Capacity["m1.small"]; got != (ccapi.Capacity{Free: 2, Max: 2}) {
		t.Fatalf("one node: %+v", got)
	}
	if _, err := e.st.RegisterCCNode(ctx, zone, "b", 8800); err != nil {
		t.Fatal(err)
	}
	st := describe(t, c)
	if !reflect.DeepEqual(nodeNames(st), []string{"a", "b"}) || st.Nodes[1].Port != 8800 || st.Nodes[1].Up {
		t.Fatalf("after register, before a poll: %+v", st.Nodes)
	}
	if !slices.Contains(e.dials, "b:8800") {
		t.Errorf("dials %v: b not dialled on its port", e.dials)
	}
	select {
	case <-c.kick: // the registration asked Run for a poll now
	default:
		t.Error("a registration did not ask for a poll")
	}
	c.poll(ctx)
	st = describe(t, c)
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 6, Max: 6}) || !st.Nodes[1].Up || st.Nodes[1].Version != "fake-1" {
		t.Fatalf("after the poll: %+v %+v", got, st.Nodes)
	}

	if _, err := c.RunInstances(ctx, reqs("i", 3)); err != nil { // a: i-0, i-1; b: i-2
		t.Fatal(err)
	}
	running(e.nodes["a"], b)
	c.poll(ctx)

	if err := e.st.DeregisterCCNode(ctx, zone, "a"); err != nil {
		t.Fatal(err)
	}
	st = describe(t, c) // no poll: the next look
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 3, Max: 4}) || !reflect.DeepEqual(nodeNames(st), []string{"b"}) {
		t.Fatalf("after deregister: %+v %v", got, nodeNames(st))
	}
	for _, id := range []string{"i-0", "i-1"} {
		in, ok := instance(st, id)
		if !ok || in.Node != "a" || !strings.Contains(in.Unreachable, "node a is not registered") || in.Lost {
			t.Errorf("%s of the deregistered node: %+v", id, in)
		}
	}
	if in, _ := instance(st, "i-2"); in.Unreachable != "" || in.State != ncapi.StateRunning {
		t.Errorf("i-2 of b: %+v", in)
	}
	// Deregistered, it is polled no more.
	c.poll(ctx)
	if got := describe(t, c).Capacity["m1.small"].Max; got != 4 {
		t.Errorf("a poll brought the deregistered node back: max %d", got)
	}
	if err := c.TerminateInstances(ctx, []string{"i-0"}); err != nil {
		t.Fatalf("terminate an instance of a deregistered node: %v", err)
	}
	if _, ok := instance(describe(t, c), "i-0"); ok {
		t.Error("a terminated instance of a deregistered node is still reported")
	}
	if slices.Contains(e.nodes["a"].callList(), "terminate i-0") {
		t.Error("the deregistered node was called")
	}
	ps, _ := e.st.CCPlacements(ctx, zone)
	if len(ps) != 2 {
		t.Errorf("placements %+v: want i-1 and i-2", ps)
	}

	// Registered again, its instance is adopted as it runs.
	if _, err := e.st.RegisterCCNode(ctx, zone, "a", 8775); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	st = describe(t, c)
	if in, _ := instance(st, "i-1"); in.Unreachable != "" || in.State != ncapi.StateRunning || in.Node != "a" {
		t.Errorf("i-1 after the node came back: %+v", in)
	}
	if got := st.Capacity["m1.small"].Max; got != 6 {
		t.Errorf("max %d after the node came back", got)
	}
}

// TestNodeFailureAndReturn: a node that stops answering leaves the totals
// and its instances are reported unreachable; when it answers again, what it
// still runs is adopted, and what it lost is reported terminated at once.
func TestNodeFailureAndReturn(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a", "b"}, room(2), room(2))
	c := e.cluster(t)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 4)); err != nil { // a: i-0, i-1; b: i-2, i-3
		t.Fatal(err)
	}
	a, b := e.nodes["a"], e.nodes["b"]
	running(a, b)
	c.poll(ctx)
	if got := describe(t, c).Capacity["m1.small"]; got != (ccapi.Capacity{Free: 0, Max: 4}) {
		t.Fatalf("full: %+v", got)
	}

	b.set(func(f *fakeNode) { f.down = true })
	downAt := time.Now().Add(time.Hour).UTC() // after the placements
	c.now = func() time.Time { return downAt }
	c.poll(ctx)
	c.now = func() time.Time { return downAt.Add(time.Minute) }
	c.poll(ctx) // still down: since the first poll it missed
	st := describe(t, c)
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 0, Max: 2}) {
		t.Errorf("b down: %+v", got)
	}
	for _, id := range []string{"i-2", "i-3"} {
		in, ok := instance(st, id)
		if !ok || in.State != ncapi.StateRunning || !strings.Contains(in.Unreachable, "node b does not answer") ||
			!strings.Contains(in.Unreachable, "connection refused") || !strings.Contains(in.Unreachable, "last seen") || !in.UnreachableSince.Equal(downAt) {
			t.Errorf("%s of the down node: %+v", id, in)
		}
	}
	if in, _ := instance(st, "i-0"); in.Unreachable != "" {
		t.Errorf("i-0 of a: %+v", in)
	}
	// A call for one of its instances is refused at once, the node not
	// asked: a dead host must not hold up the caller.
	callsBefore := len(b.callList())
	if err := c.TerminateInstances(ctx, []string{"i-2"}); err == nil || !strings.Contains(err.Error(), "node b does not answer") {
		t.Errorf("terminate on the down node: %v", err)
	}
	if _, err := c.ConsoleOutput(ctx, "i-3"); err == nil {
		t.Error("console of an instance on the down node")
	}
	if calls := b.callList(); len(calls) != callsBefore {
		t.Errorf("the down node was called: %v", calls[callsBefore:])
	}
	sts, _ := e.st.CCNodeStatuses(ctx, e.cfg.ClusterName)
	if s := sts[store.CCNodeKey{Zone: e.cfg.ClusterName, Host: "b"}]; s.Up || !strings.Contains(s.Error, "connection refused") || s.LastSeenMS == 0 {
		t.Errorf("stored status of b: %+v", s)
	}

	// b returns after a restart that kept i-2 and lost i-3.
	b.set(func(f *fakeNode) {
		f.down = false
		delete(f.instances, "i-3")
	})
	c.poll(ctx)
	st = describe(t, c)
	if got := st.Capacity["m1.small"]; got != (ccapi.Capacity{Free: 1, Max: 4}) {
		t.Errorf("b back: %+v", got)
	}
	if in, _ := instance(st, "i-2"); in.Unreachable != "" || !in.UnreachableSince.IsZero() || in.State != ncapi.StateRunning || in.Lost {
		t.Errorf("i-2 adopted: %+v", in)
	}
	if in, _ := instance(st, "i-3"); in.State != ncapi.StateTerminated || !in.Lost || in.Node != "b" ||
		!strings.Contains(in.Reason, "node b no longer has the instance") {
		t.Errorf("i-3 lost: %+v", in)
	}
	// Still reported at the next polls, for the cloud controller to see.
	c.poll(ctx)
	if in, _ := instance(describe(t, c), "i-3"); !in.Lost {
		t.Errorf("i-3 no longer reported lost: %+v", in)
	}
	if ps, _ := e.st.CCPlacements(ctx, e.cfg.ClusterName); len(ps) != 3 {
		t.Errorf("placements %+v: i-3's should be gone", ps)
	}
}

// TestCCRestartWithNodeDown: a restarted CC keeps its placements: the
// instances of a node that is down are unreachable, not gone, and when the
// node answers without one of them, that one is lost.
func TestCCRestartWithNodeDown(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	c := e.cluster(t)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 2)); err != nil {
		t.Fatal(err)
	}
	running(e.nodes["a"])
	c.poll(ctx)

	a := e.nodes["a"]
	a.set(func(f *fakeNode) { f.down = true })
	c2 := e.cluster(t)
	st := describe(t, c2)
	if len(st.Instances) != 2 || st.Capacity["m1.small"].Max != 0 {
		t.Fatalf("restarted CC, node down: %+v", st)
	}
	for _, in := range st.Instances {
		if !strings.Contains(in.Unreachable, "node a does not answer") || in.Node != "a" {
			t.Errorf("%+v: want unreachable on a", in)
		}
	}
	a.set(func(f *fakeNode) {
		f.down = false
		delete(f.instances, "i-1")
	})
	c2.poll(ctx)
	st = describe(t, c2)
	if in, _ := instance(st, "i-0"); in.State != ncapi.StateRunning || in.Unreachable != "" {
		t.Errorf("i-0: %+v", in)
	}
	if in, _ := instance(st, "i-1"); !in.Lost || in.State != ncapi.StateTerminated {
		t.Errorf("i-1: %+v", in)
	}
}

// TestNodeStatusWrites: the polled status reaches the store when it
// changes; the last-seen time alone at most every statusEvery.
func TestNodeStatusWrites(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	c := e.cluster(t)
	ctx := context.Background()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c.now = func() time.Time { return clock }
	key := store.CCNodeKey{Zone: e.cfg.ClusterName, Host: "a"}
	stored := func() store.CCNodeStatus {
		t.Helper()
		sts, err := e.st.CCNodeStatuses(ctx, e.cfg.ClusterName)
		if err != nil {
			t.Fatal(err)
		}
		return sts[key]
	}
	c.poll(ctx)
	want := store.CCNodeStatus{Zone: key.Zone, Host: "a", Up: true, CoresFree: 4, CoresMax: 4, MemoryFree: 512, MemoryMax: 512,
		DiskFree: 8, DiskMax: 8, LastSeenMS: clock.UnixMilli(), Version: "fake-1"}
	if got := stored(); got != want {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
	clock = clock.Add(time.Second)
	c.poll(ctx)
	if got := stored(); got.LastSeenMS != want.LastSeenMS {
		t.Errorf("last seen alone written after a second: %+v", got)
	}
	if _, err := c.RunInstances(ctx, reqs("i", 1)); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	if got := stored(); got.Instances != 1 || got.CoresFree != 3 || got.LastSeenMS != clock.UnixMilli() {
		t.Errorf("a change is written at once: %+v", got)
	}
	clock = clock.Add(statusEvery)
	c.poll(ctx)
	if got := stored(); got.LastSeenMS != clock.UnixMilli() {
		t.Errorf("last seen not written after %v: %+v", statusEvery, got)
	}
	e.nodes["a"].set(func(f *fakeNode) { f.down = true })
	clock = clock.Add(time.Second)
	c.poll(ctx)
	if got := stored(); got.Up || got.Error == "" || got.LastSeenMS != clock.Add(-time.Second).UnixMilli() {
		t.Errorf("down: %+v", got)
	}
	// Powered down by POWERSAVE: asleep, not failing.
	c.mu.Lock()
	c.state["a"].asleep = true
	c.mu.Unlock()
	c.poll(ctx)
	if got := stored(); got.Up || got.Error != store.CCNodeAsleep {
		t.Errorf("asleep: %+v", got)
	}
}

// TestNodeDialFailure: a node that cannot be dialled is down with the
// reason, and is dialled again at the next round.
func TestNodeDialFailure(t *testing.T) {
	e := newEnv(t, "GREEDY", nil)
	c := e.cluster(t)
	var log logbuf.Buffer
	c.log = slog.New(slog.NewTextHandler(&log, nil))
	ctx := context.Background()
	if _, err := e.st.RegisterCCNode(ctx, e.cfg.ClusterName, "late", 8775); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	st := describe(t, c)
	if len(st.Nodes) != 1 || st.Nodes[0].Up || !strings.Contains(st.Nodes[0].Error, "cannot connect") {
		t.Fatalf("undialable node: %+v", st.Nodes)
	}
	c.poll(ctx)
	describe(t, c)
	if n := strings.Count(log.String(), "cannot connect to node"); n != 1 {
		t.Errorf("the same dial failure logged %d times:\n%s", n, log.String())
	}
	if _, err := c.RunInstances(ctx, reqs("i", 1)); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Fatalf("launch with no node up: %v", err)
	}
	e.addNode("late", room(1))
	c.poll(ctx)
	if st := describe(t, c); !st.Nodes[0].Up || st.Capacity["m1.small"].Max != 1 {
		t.Fatalf("dialled again: %+v", st)
	}
}
