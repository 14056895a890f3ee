package cc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// fakeNode is an in-memory node controller: instances hold resources, and a
// terminated one disappears at once.
type fakeNode struct {
	mu        sync.Mutex
	max       ncapi.Resources
	instances map[string]ncapi.InstanceStatus
	bridges   map[string]string // the bridge each RunInstance asked for
	down      bool              // every call fails as an unreachable node would
	failRun   error             // RunInstance fails with it
	calls     []string          // "run i-1", "terminate i-1", ...
	net       *ncapi.Network    // the last SetNetwork
}

var errUnreachable = errors.New("fake: connection refused")

func newFakeNode(max ncapi.Resources) *fakeNode {
	return &fakeNode{max: max, instances: map[string]ncapi.InstanceStatus{}, bridges: map[string]string{}}
}

func (f *fakeNode) record(call string) error {
	f.calls = append(f.calls, call)
	if f.down {
		return errUnreachable
	}
	return nil
}

func (f *fakeNode) freeLocked() ncapi.Resources {
	free := f.max
	for _, in := range f.instances {
		free = free.Sub(in.Holds)
	}
	return free
}

func (f *fakeNode) Describe(context.Context) (ncapi.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ncapi.NodeStatus{}, errUnreachable
	}
	st := ncapi.NodeStatus{Host: "fake", Driver: "fake", Version: "fake-1", Max: f.max, Free: f.freeLocked(), Instances: []ncapi.InstanceStatus{}}
	if f.net != nil {
		st.Network = f.net.Version()
	}
	for _, in := range f.instances {
		st.Instances = append(st.Instances, in)
	}
	sort.Slice(st.Instances, func(i, j int) bool { return st.Instances[i].ID < st.Instances[j].ID })
	return st, nil
}

func (f *fakeNode) RunInstance(_ context.Context, req ncapi.InstanceRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("run " + req.ID); err != nil {
		return err
	}
	if f.failRun != nil {
		return f.failRun
	}
	if _, ok := f.instances[req.ID]; ok {
		return nil
	}
	if !f.freeLocked().Fits(req.Holds) {
		return ncapi.ErrNoCapacity
	}
	f.instances[req.ID] = ncapi.InstanceStatus{ID: req.ID, State: ncapi.StatePending, Holds: req.Holds}
	f.bridges[req.ID] = req.Bridge
	return nil
}

func (f *fakeNode) TerminateInstance(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("terminate " + id); err != nil {
		return err
	}
	delete(f.instances, id)
	return nil
}

func (f *fakeNode) RebootInstance(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("reboot " + id); err != nil {
		return err
	}
	if _, ok := f.instances[id]; !ok {
		return fmt.Errorf("reboot %s: %w", id, ncapi.ErrNoSuchInstance)
	}
	return nil
}

func (f *fakeNode) ConsoleOutput(_ context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("console " + id); err != nil {
		return nil, err
	}
	if _, ok := f.instances[id]; !ok {
		return nil, fmt.Errorf("console %s: %w", id, ncapi.ErrNoSuchInstance)
	}
	return []byte("console of " + id), nil
}

// set changes a node under the fake's lock.
func (f *fakeNode) SetNetwork(_ context.Context, n ncapi.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("network " + n.Version()); err != nil {
		return err
	}
	f.net = &n
	return nil
}

func (f *fakeNode) set(fn func(f *fakeNode)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeNode) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.instances {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (f *fakeNode) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// fakeNetwork records the states it is given.
type fakeNetwork struct {
	mu   sync.Mutex
	sets []ccapi.Network
	fail error
}

func (n *fakeNetwork) Set(_ context.Context, st ccapi.Network) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return n.fail
	}
	n.sets = append(n.sets, st)
	return nil
}

func (n *fakeNetwork) Bridge(string) string { return "euca-br0" }

func (n *fakeNetwork) Close(context.Context) error { return nil }

func (n *fakeNetwork) last() (ccapi.Network, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.sets) == 0 {
		return ccapi.Network{}, 0
	}
	return n.sets[len(n.sets)-1], len(n.sets)
}

// room is a node with space for n m1.small instances.
func room(n int) ncapi.Resources {
	return ncapi.Resources{Cores: n, MemoryMiB: 128 * n, DiskGiB: 2 * n}
}

var small = ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2}

var testTypes = []ccapi.VMType{
	{Name: "m1.small", Cores: 1, MemoryMiB: 128, DiskGiB: 2},
	{Name: "m1.large", Cores: 2, MemoryMiB: 512, DiskGiB: 10},
}

type env struct {
	cfg   *conf.Config
	st    *store.Store
	net   *fakeNetwork
	mu    sync.Mutex
	nodes map[string]*fakeNode
	dials []string // host:port of each dial
}

// newEnv makes a store and fake nodes named in NODES order.
func newEnv(t *testing.T, policy string, names []string, max ...ncapi.Resources) *env {
	t.Helper()
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	cfg.SchedPolicy = policy
	cfg.Nodes = names
	st, err := store.Open(context.Background(), cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{cfg: cfg, st: st, nodes: map[string]*fakeNode{}, net: &fakeNetwork{}}
	for i, n := range names {
		e.nodes[n] = newFakeNode(max[i])
	}
	return e
}

// cluster builds a cluster controller over the env's nodes.
func (e *env) cluster(t *testing.T) *Cluster {
	t.Helper()
	c, err := New(context.Background(), e.cfg, e.st, e.dial, e.net, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// dial connects to the env's fake node of that name.
func (e *env) dial(host string, port int) (ncapi.Node, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dials = append(e.dials, fmt.Sprintf("%s:%d", host, port))
	f, ok := e.nodes[host]
	if !ok {
		return nil, fmt.Errorf("fake: no node %s", host)
	}
	return f, nil
}

// addNode makes a fake node the env can dial (not yet registered).
func (e *env) addNode(name string, max ncapi.Resources) *fakeNode {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := newFakeNode(max)
	e.nodes[name] = f
	return f
}

// reqs are n m1.small requests with ids prefix-0, prefix-1, ...
func reqs(prefix string, n int) []ccapi.InstanceRequest {
	out := make([]ccapi.InstanceRequest, n)
	for i := range out {
		out[i] = ccapi.InstanceRequest{InstanceRequest: ncapi.InstanceRequest{
			ID: fmt.Sprintf("%s-%d", prefix, i), VMType: "m1.small", Holds: small, MAC: "d0:0d:00:00:00:01",
		}}
	}
	return out
}

// eventually waits for cond, polling; it never asserts on how long it took
// beyond a generous limit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// AttachVolume records the volume on the instance, as a node describes it.
func (f *fakeNode) AttachVolume(_ context.Context, id string, v ncapi.VolumeAttachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("attach " + id + " " + v.VolumeID); err != nil {
		return err
	}
	in, ok := f.instances[id]
	if !ok {
		return fmt.Errorf("attach to %s: %w", id, ncapi.ErrNoSuchInstance)
	}
	if v.Port == 0 {
		return fmt.Errorf("attach to %s: %w: no port", id, ncapi.ErrBadRequest)
	}
	for _, have := range in.Volumes {
		if have.VolumeID == v.VolumeID {
			return nil
		}
	}
	in.Volumes = append(slices.Clone(in.Volumes), ncapi.VolumeStatus{VolumeID: v.VolumeID, Device: v.Device, State: ncapi.VolumeAttached})
	f.instances[id] = in
	return nil
}

func (f *fakeNode) DetachVolume(_ context.Context, id, volumeID string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("detach " + id + " " + volumeID); err != nil {
		return err
	}
	in, ok := f.instances[id]
	if !ok {
		return fmt.Errorf("detach from %s: %w", id, ncapi.ErrNoSuchInstance)
	}
	in.Volumes = slices.DeleteFunc(slices.Clone(in.Volumes), func(v ncapi.VolumeStatus) bool { return v.VolumeID == volumeID })
	f.instances[id] = in
	return nil
}

// StopInstance forgets the instance, as a node does.
func (f *fakeNode) StopInstance(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("stop " + id); err != nil {
		return err
	}
	delete(f.instances, id)
	return nil
}
