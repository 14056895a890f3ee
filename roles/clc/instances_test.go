package clc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// fakeCluster is a cluster controller that starts nothing: it keeps what
// it was asked and reports the states a test gives its instances.
type fakeCluster struct {
	mu        sync.Mutex
	zone      string
	free      int   // instances of any type that fit; RunInstances refuses more
	report    int   // capacity Describe reports (-1: the free count)
	fail      error // RunInstances fails with it
	nodesDown bool
	asleep    bool // a second node, powered down by POWERSAVE
	extraDown bool // a third node, down
	instances map[string]*ccapi.InstanceStatus
	runs      [][]ccapi.InstanceRequest
	networks  []ccapi.Network
	stopped   []string
	rebooted  []string
	console   map[string][]byte
}

func newFakeCluster(zone string, free int) *fakeCluster {
	return &fakeCluster{zone: zone, free: free, report: -1, instances: map[string]*ccapi.InstanceStatus{}, console: map[string][]byte{}}
}

func (f *fakeCluster) Zone() string { return f.zone }

func (f *fakeCluster) Describe(ctx context.Context, types []ccapi.VMType) (ccapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := ccapi.Status{Zone: f.zone, Capacity: map[string]ccapi.Capacity{}, Nodes: []ccapi.NodeInfo{{Host: "node1", Up: !f.nodesDown}}}
	if f.asleep {
		st.Nodes = append(st.Nodes, ccapi.NodeInfo{Host: "node2", Asleep: true})
	}
	if f.extraDown {
		st.Nodes = append(st.Nodes, ccapi.NodeInfo{Host: "node3"})
	}
	report := f.report
	if report < 0 {
		report = f.free
	}
	for _, t := range types {
		st.Capacity[t.Name] = ccapi.Capacity{Free: report, Max: 10}
	}
	for _, is := range f.instances {
		st.Instances = append(st.Instances, *is)
	}
	return st, nil
}

func (f *fakeCluster) RunInstances(ctx context.Context, reqs []ccapi.InstanceRequest) ([]ccapi.Placement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, reqs)
	if f.fail != nil {
		return nil, f.fail
	}
	if len(reqs) > f.free {
		return nil, ccapi.ErrInsufficientCapacity
	}
	f.free -= len(reqs)
	var out []ccapi.Placement
	for _, r := range reqs {
		f.instances[r.ID] = &ccapi.InstanceStatus{Node: "node1", InstanceStatus: ncapi.InstanceStatus{ID: r.ID, State: ncapi.StatePending, Holds: r.Holds}}
		out = append(out, ccapi.Placement{ID: r.ID, Node: "node1"})
	}
	return out, nil
}

func (f *fakeCluster) TerminateInstances(ctx context.Context, list []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = append(f.stopped, list...)
	for _, id := range list {
		if is, ok := f.instances[id]; ok {
			is.State = ncapi.StateShuttingDown
		}
	}
	return nil
}

func (f *fakeCluster) RebootInstances(ctx context.Context, list []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rebooted = append(f.rebooted, list...)
	return nil
}

func (f *fakeCluster) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.console[id]; ok {
		return b, nil
	}
	return nil, ccapi.ErrNoSuchInstance
}

func (f *fakeCluster) SetNetwork(ctx context.Context, n ccapi.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks = append(f.networks, n)
	return nil
}

// set moves an instance on the fake's node; "" removes it.
func (f *fakeCluster) set(id, state, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == "" {
		delete(f.instances, id)
		return
	}
	is, ok := f.instances[id]
	if !ok {
		is = &ccapi.InstanceStatus{Node: "node1", InstanceStatus: ncapi.InstanceStatus{ID: id}}
		f.instances[id] = is
	}
	is.State, is.Reason = state, reason
	if state == ncapi.StateRunning {
		is.LaunchedAt = time.UnixMilli(1_700_000_000_000)
	}
}

// unreachable has the fake report an instance's node unreachable for
// why; "" makes it reachable again.
func (f *fakeCluster) unreachable(id, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[id].Unreachable = why
}

func (f *fakeCluster) lastNetwork(t *testing.T) ccapi.Network {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.networks) == 0 {
		t.Fatal("no network handed over")
	}
	return f.networks[len(f.networks)-1]
}

// instFixture is a cloud controller with one zone served by a fake
// cluster, an account (alice) holding a key pair and images, and another
// (bob) with a private image of his own.
type instFixture struct {
	c                         *Cloud
	cl                        *fakeCluster
	alice, bob                string
	emi, eki, eri             string
	bobEMI, pendingEMI, noKer string
	key                       store.KeyPair
}

func newInstFixture(t *testing.T, free int) *instFixture {
	t.Helper()
	return newInstFixtureConf(t, free, testConfig(t))
}

// newInstFixtureConf is newInstFixture on cfg (a network mode's keys).
func newInstFixtureConf(t *testing.T, free int, cfg *conf.Config) *instFixture {
	t.Helper()
	ctx := context.Background()
	c, st, accounts := newTestCloud(t, cfg, "alice", "bob")
	a, b := accounts[0], accounts[1]
	f := &instFixture{c: c, alice: a.ID, bob: b.ID, emi: ids.New("emi"), eki: ids.New("eki"), eri: ids.New("eri"),
		bobEMI: ids.New("emi"), pendingEMI: ids.New("emi"), noKer: ids.New("emi")}
	for _, im := range []store.Image{
		{ID: f.eki, AccountID: a.ID, Kind: store.ImageKernel, Name: "kernel", Location: "b/k.manifest.xml", Architecture: "x86_64", State: store.ImageAvailable, SHA256: "kk", SizeBytes: 5},
		{ID: f.eri, AccountID: a.ID, Kind: store.ImageRamdisk, Name: "ramdisk", Location: "b/r.manifest.xml", Architecture: "x86_64", State: store.ImageAvailable, SHA256: "rr", SizeBytes: 6},
		{ID: f.emi, AccountID: a.ID, Kind: store.ImageMachine, Name: "debian", Location: "b/debian.manifest.xml", Architecture: "x86_64",
			KernelID: f.eki, RamdiskID: f.eri, State: store.ImageAvailable, SHA256: "mm", SizeBytes: 7},
		{ID: f.pendingEMI, AccountID: a.ID, Kind: store.ImageMachine, Name: "slow", Location: "b/s.manifest.xml", Architecture: "x86_64", State: store.ImagePending},
		{ID: f.noKer, AccountID: a.ID, Kind: store.ImageMachine, Name: "bad", Location: "b/x.manifest.xml", Architecture: "x86_64",
			KernelID: "eki-0000000000000dead", State: store.ImageAvailable},
		{ID: f.bobEMI, AccountID: b.ID, Kind: store.ImageMachine, Name: "bobs", Location: "b/b.manifest.xml", Architecture: "x86_64", State: store.ImageAvailable},
	} {
		if err := st.CreateImage(ctx, im); err != nil {
			t.Fatal(err)
		}
	}
	f.key = store.KeyPair{ID: ids.New("key"), AccountID: a.ID, Name: "mykey", Type: "ed25519", Fingerprint: "ff", PublicKey: "ssh-ed25519 AAAAC3Nza alice@laptop"}
	if err := st.CreateKeyPair(ctx, f.key); err != nil {
		t.Fatal(err)
	}
	f.cl = newFakeCluster(cfg.ClusterName, free)
	c.SetCluster(f.cl)
	c.SetMetadataTarget(netip.MustParseAddrPort("172.31.0.1:8775"))
	return f
}

func (f *instFixture) spec(min, max int) store.LaunchSpec {
	return store.LaunchSpec{ImageID: f.emi, InstanceType: "m1.small", MinCount: min, MaxCount: max,
		Options: store.InstanceOptions{SourceDestCheck: true, ShutdownBehavior: "stop", CPUCredits: "standard",
			HTTPTokens: "optional", HTTPEndpoint: "enabled", HTTPHopLimit: 1}}
}

// launch starts n of alice's instances (MinCount = MaxCount = n).
func (f *instFixture) launch(t *testing.T, n int) []store.Instance {
	t.Helper()
	insts, err := f.c.RunInstances(context.Background(), f.alice, f.spec(n, n))
	if err != nil {
		t.Fatal(err)
	}
	return insts
}

func (f *instFixture) instances(t *testing.T, account string) []store.Instance {
	t.Helper()
	all, err := f.c.DescribeInstances(context.Background(), account, nil)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func (f *instFixture) reconcile(t *testing.T) {
	t.Helper()
	if err := f.c.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRunDescribeTerminate(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	web, err := f.c.CreateSecurityGroup(ctx, f.alice, "web", "web servers", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := f.spec(1, 2)
	spec.KeyName = "mykey"
	spec.GroupIDs = []string{web.ID}
	spec.UserData = []byte("#cloud-config\n")
	spec.InstanceTags = []store.Tag{{Key: "Name", Value: "web"}}
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 2 || insts[0].ReservationID != insts[1].ReservationID || insts[0].PrivateIP == insts[1].PrivateIP {
		t.Fatalf("launched %+v", insts)
	}
	for i, in := range insts {
		ip := netip.MustParseAddr(in.PrivateIP)
		if in.State != store.InstancePending || in.LaunchIndex != i || in.KernelID != f.eki || in.RamdiskID != f.eri ||
			in.KeyName != "mykey" || in.PublicKey != f.key.PublicKey || in.Node != "node1" || !strings.HasPrefix(in.MAC, "d0:0d:") ||
			!netip.MustParsePrefix("172.31.0.0/16").Contains(ip) || ip == netip.MustParseAddr("172.31.0.1") ||
			len(in.Groups) != 1 || in.Groups[0].ID != web.ID || len(in.Tags) != 1 || string(in.UserData) != "#cloud-config\n" {
			t.Errorf("instance %d: %+v", i, in)
		}
	}
	// What the cluster was asked: the images with their digests, the
	// type's size, the MAC and address allocated.
	run := f.cl.runs[0]
	if len(run) != 2 || run[0].Image.SHA256 != "mm" || run[0].Kernel == nil || run[0].Kernel.ID != f.eki || run[0].Ramdisk.SHA256 != "rr" ||
		run[0].Holds != (ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2}) || run[0].MAC != insts[0].MAC ||
		run[0].PrivateIP.String() != insts[0].PrivateIP || run[0].VMType != "m1.small" {
		t.Fatalf("cluster asked %+v", run)
	}
	// The network came first, whole: both instances, the group's rules,
	// the metadata target.
	n := f.cl.lastNetwork(t)
	if n.Subnet.String() != "172.31.0.0/16" || n.Metadata.String() != "172.31.0.1:8775" || len(n.Instances) != 2 ||
		n.Instances[0].MAC != insts[0].MAC || n.Instances[0].Groups[0] != web.ID {
		t.Fatalf("network %+v", n)
	}
	// A new group: nothing in, everything out.
	if len(n.Groups) != 1 || n.Groups[0].ID != web.ID || len(n.Groups[0].Ingress) != 0 || len(n.Groups[0].Egress) != 1 ||
		n.Groups[0].Egress[0] != (ccapi.Rule{Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: netip.MustParsePrefix("0.0.0.0/0")}) {
		t.Fatalf("groups %+v", n.Groups)
	}
	// A rule added afterwards reaches the network at once, not at the
	// next reconcile; so does a revoked one.
	port := 80
	if _, err := f.c.AuthorizeSecurityGroupRules(ctx, f.alice, web.ID, "", false, []store.IPPermission{{Protocol: "tcp", FromPort: &port, ToPort: &port,
		IPv4Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0"}}}}, nil); err != nil {
		t.Fatal(err)
	}
	n = f.cl.lastNetwork(t)
	if len(n.Groups) != 1 || len(n.Groups[0].Ingress) != 1 || n.Groups[0].Ingress[0].CIDR.String() != "0.0.0.0/0" || n.Groups[0].Ingress[0].FromPort != 80 {
		t.Fatalf("rule not in the network: %+v", n.Groups)
	}
	if _, _, err := f.c.RevokeSecurityGroupRules(ctx, f.alice, web.ID, "", true, []store.IPPermission{{Protocol: "-1",
		IPv4Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0"}}}}, nil); err != nil {
		t.Fatal(err)
	}
	if n = f.cl.lastNetwork(t); len(n.Groups[0].Egress) != 0 || len(n.Groups[0].Ingress) != 1 {
		t.Fatalf("egress revoked, network %+v", n.Groups)
	}
	if _, err := f.c.DeleteSecurityGroup(ctx, f.alice, web.ID, ""); err == nil {
		t.Fatal("a group with live instances was deleted")
	} else {
		wantCode(t, "delete used group", err, "DependencyViolation")
	}

	// pending → running when the node says so.
	f.cl.set(insts[0].ID, ncapi.StateRunning, "")
	f.reconcile(t)
	got, err := f.c.DescribeInstances(ctx, f.alice, []string{insts[0].ID, insts[1].ID})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != store.InstanceRunning || got[0].LaunchedMS != 1_700_000_000_000 || got[1].State != store.InstancePending {
		t.Fatalf("after reconcile: %s %d %s", got[0].State, got[0].LaunchedMS, got[1].State)
	}
	_, err = f.c.DescribeInstances(ctx, f.bob, []string{insts[0].ID})
	wantCode(t, "bob describes alice's instance", err, "InvalidInstanceID.NotFound")
	_, err = f.c.DescribeInstances(ctx, f.alice, []string{insts[0].ID, "i-0000000000000beef"})
	wantCode(t, "missing id", err, "InvalidInstanceID.NotFound")

	// Reboot and console.
	if err := f.c.RebootInstances(ctx, f.alice, []string{insts[0].ID, insts[1].ID}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.cl.rebooted, []string{insts[0].ID}) {
		t.Fatalf("rebooted %v (only the running one)", f.cl.rebooted)
	}
	f.cl.console[insts[0].ID] = []byte("login: ")
	if out, err := f.c.ConsoleOutput(ctx, f.alice, insts[0].ID); err != nil || string(out) != "login: " {
		t.Fatalf("console %q %v", out, err)
	}
	if out, err := f.c.ConsoleOutput(ctx, f.alice, insts[1].ID); err != nil || out != nil {
		t.Fatalf("console of an instance the node lacks: %q %v", out, err)
	}
	_, err = f.c.ConsoleOutput(ctx, f.bob, insts[0].ID)
	wantCode(t, "bob's console", err, "InvalidInstanceID.NotFound")

	// Terminate: shutting-down, the cluster told; terminated once gone.
	tr, err := f.c.TerminateInstances(ctx, f.alice, []string{insts[0].ID, insts[1].ID, insts[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 2 || tr[0].Previous != store.InstanceRunning || tr[0].Current != store.InstanceShuttingDown || tr[1].Previous != store.InstancePending {
		t.Fatalf("transitions %+v", tr)
	}
	sort.Strings(f.cl.stopped)
	want := []string{insts[0].ID, insts[1].ID}
	sort.Strings(want)
	if !slices.Equal(f.cl.stopped, want) {
		t.Fatalf("cluster stopped %v", f.cl.stopped)
	}
	f.cl.set(insts[0].ID, ncapi.StateTerminated, "")
	f.cl.set(insts[1].ID, "", "")
	f.reconcile(t)
	for _, in := range f.instances(t, f.alice) {
		if in.State != store.InstanceTerminated || in.StateReasonCode != "Client.UserInitiatedShutdown" || !strings.HasPrefix(in.TransitionReason, "User initiated (") {
			t.Fatalf("after termination: %+v", in)
		}
	}
	if n := f.cl.lastNetwork(t); len(n.Instances) != 0 || len(n.Groups) != 0 {
		t.Fatalf("terminated instances still in the network: %+v", n)
	}
	if _, err := f.c.DeleteSecurityGroup(ctx, f.alice, web.ID, ""); err != nil {
		t.Fatalf("group of terminated instances: %v", err)
	}
	// Terminated again: stays, and says so.
	tr, err = f.c.TerminateInstances(ctx, f.alice, []string{insts[0].ID})
	if err != nil || tr[0].Previous != store.InstanceTerminated || tr[0].Current != store.InstanceTerminated {
		t.Fatalf("terminate a terminated instance: %+v %v", tr, err)
	}
	// An hour later they are gone.
	old := timeNow
	timeNow = func() time.Time { return old().Add(2 * time.Hour) }
	defer func() { timeNow = old }()
	f.reconcile(t)
	if left := f.instances(t, f.alice); len(left) != 0 {
		t.Fatalf("terminated instances after an hour: %+v", left)
	}
}

func TestRunCapacity(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 0)
	_, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	wantCode(t, "no room", err, "InsufficientInstanceCapacity")
	if len(f.instances(t, f.alice)) != 0 || len(f.cl.runs) != 0 {
		t.Fatal("a refused launch left something")
	}
	// Room for 2 of MaxCount 3: two start.
	f.cl.free = 2
	insts, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 3))
	if err != nil || len(insts) != 2 {
		t.Fatalf("as many as fit: %d %v", len(insts), err)
	}
	// The cluster reports more room than it has: it refuses, the launch
	// retries with fewer, down to MinCount, and what it dropped is gone.
	f.cl.free, f.cl.report = 1, 5
	insts, err = f.c.RunInstances(ctx, f.alice, f.spec(1, 3))
	if err != nil || len(insts) != 1 {
		t.Fatalf("retry with fewer: %d %v", len(insts), err)
	}
	if all := f.instances(t, f.alice); len(all) != 3 {
		t.Fatalf("instances recorded: %d, want 3", len(all))
	}
	f.cl.free, f.cl.report = 1, 5
	_, err = f.c.RunInstances(ctx, f.alice, f.spec(2, 3))
	wantCode(t, "below MinCount", err, "InsufficientInstanceCapacity")
	if all := f.instances(t, f.alice); len(all) != 3 {
		t.Fatalf("instances after a refused launch: %d, want 3", len(all))
	}
	if n := f.cl.lastNetwork(t); len(n.Instances) != 3 {
		t.Fatalf("network after a refused launch: %d instances", len(n.Instances))
	}
	// Any other failure: nothing stays, and whatever the cluster might have
	// started is stopped.
	f.cl.fail = errors.New("node unreachable")
	f.cl.stopped = nil
	_, err = f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	if err == nil {
		t.Fatal("launch through a failing cluster succeeded")
	}
	if _, typed := awserr.As(err); typed {
		t.Fatalf("a cluster failure is internal, got %v", err)
	}
	if all := f.instances(t, f.alice); len(all) != 3 || len(f.cl.stopped) != 1 {
		t.Fatalf("after a failure: %d instances, stopped %v", len(all), f.cl.stopped)
	}
	if n := f.cl.lastNetwork(t); len(n.Instances) != 3 {
		t.Fatalf("network after a failure: %d instances", len(n.Instances))
	}
}

func TestRunClientToken(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	spec := f.spec(1, 1)
	spec.ClientToken = "terraform-20261125"
	first, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil || len(again) != 1 || again[0].ID != first[0].ID || again[0].ClientToken != spec.ClientToken {
		t.Fatalf("same token: %+v %v", again, err)
	}
	if len(f.cl.runs) != 1 {
		t.Fatalf("the cluster was asked %d times", len(f.cl.runs))
	}
	other := spec
	other.InstanceType = "c1.medium"
	_, err = f.c.RunInstances(ctx, f.alice, other)
	wantCode(t, "same token, other parameters", err, "IdempotentParameterMismatch")
	// Another account's token is its own.
	bobSpec := spec
	bobSpec.ImageID = f.bobEMI
	if _, err := f.c.RunInstances(ctx, f.bob, bobSpec); err != nil {
		t.Fatal(err)
	}
	// A refused launch does not keep its token.
	f.cl.free = 0
	spec.ClientToken = "retry-me"
	_, err = f.c.RunInstances(ctx, f.alice, spec)
	wantCode(t, "no room", err, "InsufficientInstanceCapacity")
	f.cl.free = 1
	if _, err := f.c.RunInstances(ctx, f.alice, spec); err != nil {
		t.Fatalf("retry of a refused token: %v", err)
	}
}

func TestTerminationProtection(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	spec := f.spec(1, 1)
	spec.Options.DisableAPITermination = true
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := insts[0].ID
	_, err = f.c.TerminateInstances(ctx, f.alice, []string{id})
	wantCode(t, "protected", err, "OperationNotPermitted")
	if got := f.instances(t, f.alice); got[0].State != store.InstancePending || len(f.cl.stopped) != 0 {
		t.Fatalf("a refused terminate changed %+v", got[0])
	}
	// Terraform's delete: lift the protection, then terminate.
	no := false
	if err := f.c.ModifyInstanceAttribute(ctx, f.alice, id, store.InstanceUpdate{DisableAPITermination: &no}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.TerminateInstances(ctx, f.alice, []string{id}); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.TerminateInstances(ctx, f.bob, []string{id})
	wantCode(t, "bob terminates alice's", err, "InvalidInstanceID.NotFound")
}

func TestModifyInstanceAttribute(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	insts := f.launch(t, 1)
	id := insts[0].ID
	typ := "c1.medium"
	err := f.c.ModifyInstanceAttribute(ctx, f.alice, id, store.InstanceUpdate{InstanceType: &typ}, nil)
	wantCode(t, "type of a pending instance", err, "IncorrectInstanceState")
	data := []byte("x")
	err = f.c.ModifyInstanceAttribute(ctx, f.alice, id, store.InstanceUpdate{UserData: &data}, nil)
	wantCode(t, "user data of a pending instance", err, "IncorrectInstanceState")
	term := "terminate"
	if err := f.c.ModifyInstanceAttribute(ctx, f.alice, id, store.InstanceUpdate{ShutdownBehavior: &term}, nil); err != nil {
		t.Fatal(err)
	}
	db, err := f.c.CreateSecurityGroup(ctx, f.alice, "db", "databases", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.cl.networks)
	if err := f.c.ModifyInstanceAttribute(ctx, f.alice, id, store.InstanceUpdate{}, []string{db.ID}); err != nil {
		t.Fatal(err)
	}
	got := f.instances(t, f.alice)[0]
	if got.Options.ShutdownBehavior != "terminate" || len(got.Groups) != 1 || got.Groups[0].ID != db.ID {
		t.Fatalf("after modify: %+v", got)
	}
	if len(f.cl.networks) == before || f.cl.lastNetwork(t).Instances[0].Groups[0] != db.ID {
		t.Fatal("new groups not handed to the network")
	}
	err = f.c.ModifyInstanceAttribute(ctx, f.alice, id, store.InstanceUpdate{}, []string{"sg-0000000000000dead"})
	wantCode(t, "unknown group", err, "InvalidGroup.NotFound")
	err = f.c.ModifyInstanceAttribute(ctx, f.bob, id, store.InstanceUpdate{ShutdownBehavior: &term}, nil)
	wantCode(t, "bob modifies", err, "InvalidInstanceID.NotFound")
}

func TestRunInstancesRefusals(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	big := make([]byte, MaxUserData+1)
	cases := []struct {
		name string
		edit func(s *store.LaunchSpec)
		code string
	}{
		{"unknown image", func(s *store.LaunchSpec) { s.ImageID = "emi-0000000000000dead" }, "InvalidAMIID.NotFound"},
		{"another account's private image", func(s *store.LaunchSpec) { s.ImageID = f.bobEMI }, "InvalidAMIID.NotFound"},
		{"kernel as machine image", func(s *store.LaunchSpec) { s.ImageID = f.eki }, "InvalidParameterValue"},
		{"image not available", func(s *store.LaunchSpec) { s.ImageID = f.pendingEMI }, "InvalidAMIID.Unavailable"},
		{"image's kernel missing", func(s *store.LaunchSpec) { s.ImageID = f.noKer }, "InvalidKernelID.NotFound"},
		{"ramdisk as kernel", func(s *store.LaunchSpec) { s.KernelID = f.eri }, "InvalidKernelID.NotFound"},
		{"unknown ramdisk", func(s *store.LaunchSpec) { s.RamdiskID = "eri-0000000000000dead" }, "InvalidRamDiskID.NotFound"},
		{"unknown key", func(s *store.LaunchSpec) { s.KeyName = "nokey" }, "InvalidKeyPair.NotFound"},
		{"unknown type", func(s *store.LaunchSpec) { s.InstanceType = "m9.huge" }, "InvalidParameterValue"},
		{"unknown zone", func(s *store.LaunchSpec) { s.Zone = "us-east-1z" }, "InvalidParameterValue"},
		{"unknown subnet", func(s *store.LaunchSpec) { s.SubnetID = "subnet-0000000000000dead" }, "InvalidSubnetID.NotFound"},
		{"unknown group name", func(s *store.LaunchSpec) { s.GroupNames = []string{"nope"} }, "InvalidGroup.NotFound"},
		{"unknown group id", func(s *store.LaunchSpec) { s.GroupIDs = []string{"sg-0000000000000dead"} }, "InvalidGroup.NotFound"},
		{"user data too large", func(s *store.LaunchSpec) { s.UserData = big }, "InvalidParameterValue"},
		{"min over max", func(s *store.LaunchSpec) { s.MinCount = 3 }, "InvalidParameterValue"},
		{"address outside the subnet", func(s *store.LaunchSpec) { s.PrivateIP = "10.9.9.9" }, "InvalidParameterValue"},
		{"address reserved", func(s *store.LaunchSpec) { s.PrivateIP = "172.31.0.1" }, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		s := f.spec(1, 1)
		tc.edit(&s)
		_, err := f.c.RunInstances(ctx, f.alice, s)
		wantCode(t, tc.name, err, tc.code)
	}
	if len(f.instances(t, f.alice)) != 0 || len(f.cl.runs) != 0 {
		t.Fatal("a refused launch left something behind")
	}
	// A chosen address, then the same one again.
	s := f.spec(1, 1)
	s.PrivateIP = "172.31.9.9"
	s.Zone = f.cl.zone
	insts, err := f.c.RunInstances(ctx, f.alice, s)
	if err != nil || insts[0].PrivateIP != "172.31.9.9" || insts[0].MAC != "d0:0d:ac:1f:09:09" {
		t.Fatalf("chosen address: %+v %v", insts, err)
	}
	_, err = f.c.RunInstances(ctx, f.alice, s)
	wantCode(t, "address in use", err, "InvalidIPAddress.InUse")
	// Bob launches the public image of nobody: no cluster for the zone
	// gives InsufficientInstanceCapacity too.
	f.c.inst.mu.Lock()
	f.c.inst.clusters = nil
	f.c.inst.mu.Unlock()
	_, err = f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	wantCode(t, "no cluster", err, "InsufficientInstanceCapacity")
}

func TestReconcileStates(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	insts := f.launch(t, 4)
	failed, lost, stubborn, crashed := insts[0].ID, insts[1].ID, insts[2].ID, insts[3].ID
	// A failed boot ends terminated with the reason.
	f.cl.set(failed, ncapi.StateFailed, "image checksum mismatch")
	// A running instance whose guest shuts itself down.
	f.cl.set(crashed, ncapi.StateRunning, "")
	f.reconcile(t)
	f.cl.set(crashed, ncapi.StateTerminated, "")
	// An instance the node forgot.
	f.cl.set(lost, "", "")
	// An orphan the node runs that no record has.
	f.cl.set("i-00000000000000bad", ncapi.StateRunning, "")
	f.cl.stopped = nil
	f.reconcile(t)
	byID := map[string]store.Instance{}
	for _, in := range f.instances(t, f.alice) {
		byID[in.ID] = in
	}
	if in := byID[failed]; in.State != store.InstanceTerminated || in.StateReasonCode != "Server.InternalError" ||
		!strings.Contains(in.StateReasonMessage, "image checksum mismatch") {
		t.Fatalf("failed boot: %+v", in)
	}
	if in := byID[crashed]; in.State != store.InstanceTerminated || in.StateReasonCode != "Client.InstanceInitiatedShutdown" {
		t.Fatalf("guest shut down: %+v", in)
	}
	if !slices.Contains(f.cl.stopped, "i-00000000000000bad") {
		t.Fatalf("orphan not stopped: %v", f.cl.stopped)
	}
	if byID[lost].State != store.InstancePending {
		t.Fatal("a missing instance was lost at once")
	}
	// Lost only after a while with every node up; a node down keeps it.
	old := timeNow
	defer func() { timeNow = old }()
	timeNow = func() time.Time { return old().Add(lostAfter + time.Minute) }
	f.cl.nodesDown = true
	f.reconcile(t)
	if in, _ := f.c.store.Instance(ctx, f.alice, lost); in.State != store.InstancePending {
		t.Fatalf("lost while a node is down: %s", in.State)
	}
	f.cl.nodesDown = false
	// A node asleep (POWERSAVE sleeps only idle nodes) hides nothing.
	f.cl.asleep = true
	f.reconcile(t)
	if in, _ := f.c.store.Instance(ctx, f.alice, lost); in.State != store.InstanceTerminated || in.StateReasonCode != "Server.InternalError" {
		t.Fatalf("lost instance: %+v", in)
	}
	// A terminate the cluster did not carry out is sent again.
	timeNow = old
	if _, err := f.c.TerminateInstances(ctx, f.alice, []string{stubborn}); err != nil {
		t.Fatal(err)
	}
	f.cl.set(stubborn, ncapi.StateRunning, "")
	f.cl.stopped = nil
	f.reconcile(t)
	if !slices.Contains(f.cl.stopped, stubborn) {
		t.Fatalf("terminate not sent again: %v", f.cl.stopped)
	}
}

func TestDefaultMetadataTarget(t *testing.T) {
	f := newInstFixture(t, 10)
	f.c.SetMetadataTarget(netip.AddrPort{})
	n, err := f.c.zoneNetwork(context.Background(), f.cl.zone)
	if err != nil {
		t.Fatal(err)
	}
	// The listener's own address, loopback, whatever VNET_CLOUDIP says:
	// an address on the LAN would let the LAN reach the service.
	if n.Metadata.String() != "127.0.0.1:8779" || n.Metadata != f.c.MetadataListenAddr() {
		t.Fatalf("default metadata target %s, listener %s", n.Metadata, f.c.MetadataListenAddr())
	}
	f.c.cfg.VNetCloudIP = netip.MustParseAddr("192.168.1.10")
	if n, _ = f.c.zoneNetwork(context.Background(), f.cl.zone); n.Metadata.String() != "127.0.0.1:8779" {
		t.Fatalf("metadata target with VNET_CLOUDIP %s", n.Metadata)
	}
}

func TestRunLoopStops(t *testing.T) {
	f := newInstFixture(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.c.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDescribeInstancesByIDReadsOnlyThose: DescribeInstances of one
// instance (what a client waiting for it asks, and TerminateInstances)
// reads that instance only, so it costs the same in an account of 10,000.
// Measured in allocations, which grow with every row read, not in time.
func TestDescribeInstancesByIDReadsOnlyThose(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 1000)
	one := f.launch(t, 1)
	describe := func() {
		got, err := f.c.DescribeInstances(ctx, f.alice, []string{one[0].ID})
		if err != nil || len(got) != 1 || got[0].ID != one[0].ID {
			t.Fatalf("DescribeInstances(%s) = %v, %v", one[0].ID, got, err)
		}
	}
	alone := testing.AllocsPerRun(5, describe)
	if _, err := f.c.RunInstances(ctx, f.alice, f.spec(400, 400)); err != nil {
		t.Fatal(err)
	}
	among := testing.AllocsPerRun(5, describe)
	if among > 2*alone {
		t.Errorf("DescribeInstances of one instance: %.0f allocations alone, %.0f among 400 others", alone, among)
	}
	// Unknown ids are still named in the error, known ones or not.
	_, err := f.c.DescribeInstances(ctx, f.alice, []string{one[0].ID, "i-0000000000000dead"})
	wantCode(t, "an unknown id", err, "InvalidInstanceID.NotFound")
}

// TestRunInstancesReadsItsReservationOnly: RunInstances answers with its
// own reservation's instances, read alone rather than picked out of all the
// account's, so that part of a launch costs the same in an account of
// 10,000 (allocations, which grow with every row read, not time).
func TestRunInstancesReadsItsReservationOnly(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 1000)
	mine := f.launch(t, 2)
	read := func() {
		got, err := f.c.reservationInstances(ctx, f.alice, mine[0].ReservationID)
		if err != nil || len(got) != 2 || got[0].ID != mine[0].ID || got[1].ID != mine[1].ID {
			t.Fatalf("reservationInstances = %v, %v", got, err)
		}
	}
	alone := testing.AllocsPerRun(3, read)
	if _, err := f.c.RunInstances(ctx, f.alice, f.spec(400, 400)); err != nil {
		t.Fatal(err)
	}
	among := testing.AllocsPerRun(3, read)
	if among > 2*alone {
		t.Errorf("the instances of a reservation of 2: %.0f allocations alone, %.0f among 400 others", alone, among)
	}
	// Another account's reservation is empty to this one.
	if got, err := f.c.reservationInstances(ctx, f.bob, mine[0].ReservationID); err != nil || len(got) != 0 {
		t.Errorf("bob reads alice's reservation: %v, %v", got, err)
	}
}

// TestReconcileUnreachableAndLost: an instance on a node its cluster cannot
// reach keeps its state and is reported unreachable; one a returned node
// lost, or whose guest failed, ends at the next pass with the node's
// reason, not after lostAfter.
func TestReconcileUnreachableAndLost(t *testing.T) {
	f := newInstFixture(t, 10)
	insts := f.launch(t, 3)
	away, lost, failed := insts[0].ID, insts[1].ID, insts[2].ID
	for _, in := range insts {
		f.cl.set(in.ID, ncapi.StateRunning, "")
	}
	f.reconcile(t)
	f.cl.mu.Lock()
	f.cl.instances[away].Unreachable = "node node1 does not answer"
	f.cl.instances[lost].State, f.cl.instances[lost].Lost = ncapi.StateTerminated, true
	f.cl.instances[lost].Reason = "node node1 no longer has the instance"
	f.cl.instances[failed].State, f.cl.instances[failed].Reason = ncapi.StateFailed, "the hypervisor lost the guest"
	f.cl.mu.Unlock()
	f.reconcile(t)
	if got := f.c.Unreachable(nil); len(got) != 1 || got[away].Why != "node node1 does not answer" {
		t.Errorf("unreachable %v", got)
	}
	if got := f.c.Unreachable([]string{lost}); len(got) != 0 {
		t.Errorf("unreachable of a reachable one: %v", got)
	}
	byID := map[string]store.Instance{}
	for _, in := range f.instances(t, f.alice) {
		byID[in.ID] = in
	}
	if in := byID[away]; in.State != store.InstanceRunning {
		t.Errorf("unreachable instance: %s", in.State)
	}
	for id, why := range map[string]string{lost: "no longer has the instance", failed: "the hypervisor lost the guest"} {
		if in := byID[id]; in.State != store.InstanceTerminated || in.StateReasonCode != "Server.InternalError" || !strings.Contains(in.StateReasonMessage, why) {
			t.Errorf("%s: %+v, want terminated with %q", id, in, why)
		}
	}
	// Reachable again: no longer reported.
	f.cl.unreachable(away, "")
	f.reconcile(t)
	if got := f.c.Unreachable(nil); len(got) != 0 {
		t.Errorf("unreachable after the node came back: %v", got)
	}
}

// TestLostAfterWaitsForItsNodeOnly: an instance missing from every poll is
// lost after lostAfter once its own node is up, whatever the cluster's
// other nodes do.
func TestLostAfterWaitsForItsNodeOnly(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	insts := f.launch(t, 1)
	id := insts[0].ID
	f.cl.set(id, ncapi.StateRunning, "")
	f.reconcile(t)
	f.cl.set(id, "", "")
	f.reconcile(t)
	old := timeNow
	defer func() { timeNow = old }()
	timeNow = func() time.Time { return old().Add(lostAfter + time.Minute) }
	f.cl.mu.Lock()
	f.cl.extraDown = true // another node of the cluster is down
	f.cl.mu.Unlock()
	f.reconcile(t)
	if in, _ := f.c.store.Instance(ctx, f.alice, id); in.State != store.InstanceTerminated {
		t.Fatalf("missing instance of a node that is up, another node down: %s", in.State)
	}
}

// TestRestartKeepsInstances: a cloud controller started again over the
// same store, its cluster reporting the same instances, loses none: the
// same states, addresses, MACs and nodes, and the network it hands the
// cluster is the one it handed before.
func TestRestartKeepsInstances(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	insts := f.launch(t, 3)
	f.cl.set(insts[0].ID, ncapi.StateRunning, "")
	f.cl.set(insts[1].ID, ncapi.StateRunning, "")
	f.reconcile(t)
	before := f.instances(t, f.alice)
	netBefore := f.cl.lastNetwork(t)

	c2, err := New(ctx, f.c.cfg, f.c.store, f.c.log)
	if err != nil {
		t.Fatal(err)
	}
	c2.SetCluster(f.cl)
	c2.SetMetadataTarget(netip.MustParseAddrPort("172.31.0.1:8775"))
	if err := c2.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := c2.DescribeInstances(ctx, f.alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d instances after the restart, %d before", len(after), len(before))
	}
	for i, b := range before {
		a := after[i]
		if a.ID != b.ID || a.State != b.State || a.PrivateIP != b.PrivateIP || a.MAC != b.MAC || a.Node != b.Node {
			t.Errorf("after the restart %+v, before %+v", a, b)
		}
	}
	if got := f.cl.lastNetwork(t); !reflect.DeepEqual(got.Instances, netBefore.Instances) {
		t.Errorf("network after the restart %+v, before %+v", got.Instances, netBefore.Instances)
	}
}

// TestTerminateWaitsForUnreachableNode: a terminate that did not reach an
// instance is sent again, but not while its node is unreachable (it cannot
// take it; the passes are not held up asking); once the node answers, it is.
func TestTerminateWaitsForUnreachableNode(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	insts := f.launch(t, 1)
	id := insts[0].ID
	f.cl.set(id, ncapi.StateRunning, "")
	f.reconcile(t)
	f.cl.unreachable(id, "node node1 does not answer")
	if _, err := f.c.TerminateInstances(ctx, f.alice, []string{id}); err != nil {
		t.Fatal(err)
	}
	f.cl.set(id, ncapi.StateRunning, "") // the node never heard of it
	f.cl.stopped = nil
	f.reconcile(t)
	if slices.Contains(f.cl.stopped, id) {
		t.Errorf("terminate sent again to an unreachable node: %v", f.cl.stopped)
	}
	if in, _ := f.c.store.Instance(ctx, f.alice, id); in.State != store.InstanceShuttingDown {
		t.Errorf("state %s, want shutting-down until the node answers", in.State)
	}
	f.cl.unreachable(id, "")
	f.reconcile(t)
	if !slices.Contains(f.cl.stopped, id) {
		t.Errorf("terminate not sent again once the node answers: %v", f.cl.stopped)
	}
}

// TestRunStaticMACMap: in STATIC each instance takes a VNET_MACMAP pair;
// with every pair held a launch is refused with InsufficientInstanceCapacity
// naming the map, leaving nothing behind; a terminated instance's pair is
// free again.
func TestRunStaticMACMap(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.VNetMode = "STATIC"
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	cfg.VNetMACMap = []conf.MACIP{
		{MAC: mac("00:AA:DD:11:CE:FE"), IP: netip.MustParseAddr("172.31.0.3")},
		{MAC: mac("00:AA:DD:11:CE:FF"), IP: netip.MustParseAddr("172.31.0.4")},
	}
	f := newInstFixtureConf(t, 10, cfg)
	// MaxCount beyond the map: as many as it holds.
	got, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 5))
	if err != nil || len(got) != 2 {
		t.Fatalf("MinCount 1, MaxCount 5 with a map of 2: %d instances, %v", len(got), err)
	}
	for i, want := range []string{"172.31.0.3/00:aa:dd:11:ce:fe", "172.31.0.4/00:aa:dd:11:ce:ff"} {
		if g := got[i].PrivateIP + "/" + got[i].MAC; g != want {
			t.Errorf("instance %d: %s, want the pair %s", i, g, want)
		}
	}
	_, err = f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	wantCode(t, "map exhausted", err, "InsufficientInstanceCapacity")
	if err == nil || !strings.Contains(err.Error(), "VNET_MACMAP") {
		t.Errorf("the refusal does not name its cause: %v", err)
	}
	if n := len(f.instances(t, f.alice)); n != 2 || len(f.cl.runs) != 1 {
		t.Fatalf("a refused launch left %d instances, %d runs", n, len(f.cl.runs))
	}
	// An address outside the map is not the cloud's to give.
	spec := f.spec(1, 1)
	spec.PrivateIP = "172.31.0.9"
	_, err = f.c.RunInstances(ctx, f.alice, spec)
	wantCode(t, "outside the map", err, "InvalidParameterValue")

	if _, err := f.c.TerminateInstances(ctx, f.alice, []string{got[0].ID}); err != nil {
		t.Fatal(err)
	}
	f.cl.set(got[0].ID, ncapi.StateTerminated, "")
	f.reconcile(t)
	again := f.launch(t, 1)
	if again[0].PrivateIP != "172.31.0.3" || again[0].MAC != "00:aa:dd:11:ce:fe" {
		t.Errorf("after termination: %s %s, want the freed pair", again[0].PrivateIP, again[0].MAC)
	}
}

// TestRunSystemMAC: in SYSTEM an instance gets a random locally
// administered MAC and no address until its node learns one.
func TestRunSystemMAC(t *testing.T) {
	cfg := testConfig(t)
	cfg.VNetMode = "SYSTEM"
	f := newInstFixtureConf(t, 10, cfg)
	got := f.launch(t, 2)
	for _, in := range got {
		m, err := net.ParseMAC(in.MAC)
		if err != nil || m[0]&2 == 0 || m[0]&1 != 0 {
			t.Errorf("%s: MAC %q is not a locally administered unicast address", in.ID, in.MAC)
		}
		if in.PrivateIP != "" {
			t.Errorf("%s: private address %q before any was learned", in.ID, in.PrivateIP)
		}
	}
	if got[0].MAC == got[1].MAC {
		t.Errorf("two instances share MAC %s", got[0].MAC)
	}
	// Their nodes learn the addresses the LAN's DHCP gave them: the cloud
	// records them, but never one address for two instances.
	addr := netip.MustParseAddr("10.243.5.7")
	f.cl.mu.Lock()
	for _, in := range got {
		f.cl.instances[in.ID].State = ncapi.StateRunning
		f.cl.instances[in.ID].PrivateIP = addr
	}
	f.cl.mu.Unlock()
	f.reconcile(t)
	var holders int
	for _, in := range f.instances(t, f.alice) {
		switch in.PrivateIP {
		case addr.String():
			holders++
		case "":
		default:
			t.Errorf("%s: address %q, reported %v", in.ID, in.PrivateIP, addr)
		}
	}
	if holders != 1 {
		t.Fatalf("%d instances hold the learned address, want 1", holders)
	}
	if in, err := f.c.store.LiveInstanceByAddress(context.Background(), addr.String()); err != nil || in.MAC == "" {
		t.Errorf("the metadata service cannot know the instance by its learned address: %v", err)
	}
}

// TestPeerOfAnotherAccount: a rule naming another account's group the
// EC2-classic way (UserId and GroupName) is accepted and stored with its
// owner, and the zone's network names that group as the peer, with the
// other account's instances in it as its members.
func TestPeerOfAnotherAccount(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	web := sgMust(f.c.CreateSecurityGroup(ctx, f.alice, "web", "w", "", nil))
	bobs := sgMust(f.c.CreateSecurityGroup(ctx, f.bob, "clients", "c", "", nil))
	port := 443
	made, err := f.c.AuthorizeSecurityGroupRules(ctx, f.alice, web.ID, "", false, []store.IPPermission{{Protocol: "tcp", FromPort: &port, ToPort: &port,
		Groups: []store.PermissionGroup{{UserID: f.bob, GroupName: "clients"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || made[0].PeerGroupID != bobs.ID || made[0].PeerOwnerID != f.bob || made[0].PeerGroupName != "clients" {
		t.Fatalf("rule %+v", made)
	}
	// By id too; the same rule again is a duplicate.
	_, err = f.c.AuthorizeSecurityGroupRules(ctx, f.alice, web.ID, "", false, []store.IPPermission{{Protocol: "tcp", FromPort: &port, ToPort: &port,
		Groups: []store.PermissionGroup{{UserID: f.bob, GroupID: bobs.ID}}}}, nil)
	wantCode(t, "same peer by id", err, "InvalidPermission.Duplicate")

	spec := f.spec(1, 1)
	spec.GroupIDs = []string{web.ID}
	mine, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.ImageID, spec.GroupIDs = f.bobEMI, []string{bobs.ID}
	theirs, err := f.c.RunInstances(ctx, f.bob, spec)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.c.zoneNetwork(ctx, f.cl.zone)
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]ccapi.SecurityGroup{}
	for _, g := range n.Groups {
		groups[g.ID] = g
	}
	if in := groups[web.ID].Ingress; len(in) != 1 || in[0].PeerGroup != bobs.ID || in[0].FromPort != 443 {
		t.Fatalf("web's ingress %+v", in)
	}
	if _, ok := groups[bobs.ID]; !ok {
		t.Fatalf("bob's group missing from the network: %+v", n.Groups)
	}
	members := map[string][]string{}
	for _, in := range n.Instances {
		members[in.ID] = in.Groups
	}
	if !slices.Equal(members[theirs[0].ID], []string{bobs.ID}) || !slices.Equal(members[mine[0].ID], []string{web.ID}) {
		t.Fatalf("instances %+v", n.Instances)
	}
	// Referenced by alice's rule, bob's group cannot go.
	_, err = f.c.DeleteSecurityGroup(ctx, f.bob, bobs.ID, "")
	wantCode(t, "delete a referenced group", err, "DependencyViolation")
}

// stuckCluster is a cluster controller that never answers SetNetwork:
// it waits until its caller gives up, and records whether the caller
// would ever have, and whether live had the change by then.
type stuckCluster struct {
	*fakeCluster
	live   *fakeCluster
	rule   string // the rule live must have been sent
	mu     sync.Mutex
	calls  int
	nowait int // calls whose context had no deadline
	before int // calls that ended before live had the rule
}

func (s *stuckCluster) SetNetwork(ctx context.Context, n ccapi.Network) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		s.mu.Lock()
		s.nowait++
		s.mu.Unlock()
		return errors.New("stuck: a caller that would wait for ever")
	}
	<-ctx.Done()
	if !s.live.sentRule(s.rule) {
		s.mu.Lock()
		s.before++
		s.mu.Unlock()
	}
	return ctx.Err()
}

// sentRule reports whether a network with an ingress rule from peer cidr
// was handed over.
func (f *fakeCluster) sentRule(cidr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.networks {
		for _, g := range n.Groups {
			for _, r := range g.Ingress {
				if r.CIDR.String() == cidr {
					return true
				}
			}
		}
	}
	return false
}

// TestPushDeadline: a zone whose cluster controller does not answer holds
// a security group change only for pushWait, and never holds up the push
// to the other zones: one account's change (or a dead cluster) does not
// stall every account's API calls behind the cluster client's retries.
func TestPushDeadline(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	web := sgMust(f.c.CreateSecurityGroup(ctx, f.alice, "web", "w", "", nil))
	spec := f.spec(1, 1)
	spec.GroupIDs = []string{web.ID}
	if _, err := f.c.RunInstances(ctx, f.alice, spec); err != nil {
		t.Fatal(err)
	}
	stuck := &stuckCluster{fakeCluster: newFakeCluster("dead-zone", 10), live: f.cl, rule: "198.51.100.7/32"}
	f.c.SetCluster(stuck)
	old := pushWait
	pushWait = 200 * time.Millisecond
	defer func() { pushWait = old }()
	port := 22
	if _, err := f.c.AuthorizeSecurityGroupRules(ctx, f.alice, web.ID, "", false, []store.IPPermission{{Protocol: "tcp", FromPort: &port, ToPort: &port,
		IPv4Ranges: []store.PermissionCIDR{{CIDR: stuck.rule}}}}, nil); err != nil {
		t.Fatal(err)
	}
	stuck.mu.Lock()
	defer stuck.mu.Unlock()
	switch {
	case stuck.calls == 0:
		t.Fatal("the dead zone was not sent the change")
	case stuck.nowait > 0:
		t.Fatalf("%d pushes to the dead zone without a deadline", stuck.nowait)
	case stuck.before > 0:
		t.Fatal("the live zone was sent the change only after the dead zone gave up")
	case !f.cl.sentRule(stuck.rule):
		t.Fatal("the live zone was not sent the change")
	}
}

// TestGroupsPerInstance: an instance is in at most
// MaxSecurityGroupsPerInterface groups, at launch and when its groups are
// changed: each group's rules are chains on every filtering host, so an
// unbounded list (one instance in every group of a thousand) would swell
// the table each push rewrites.
func TestGroupsPerInstance(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	var ids []string
	for i := range MaxSecurityGroupsPerInterface + 1 {
		ids = append(ids, sgMust(f.c.CreateSecurityGroup(ctx, f.alice, "g"+strconv.Itoa(i), "g", "", nil)).ID)
	}
	spec := f.spec(1, 1)
	spec.GroupIDs = ids
	_, err := f.c.RunInstances(ctx, f.alice, spec)
	wantCode(t, "launch in too many groups", err, "SecurityGroupsPerInstanceLimitExceeded")
	spec.GroupIDs = append(ids[1:], ids[1]) // the most, one named twice
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatalf("launch in %d groups: %v", MaxSecurityGroupsPerInterface, err)
	}
	err = f.c.ModifyInstanceAttribute(ctx, f.alice, insts[0].ID, store.InstanceUpdate{}, ids)
	wantCode(t, "modified into too many groups", err, "SecurityGroupsPerInstanceLimitExceeded")
}

// Volumes are not modelled by this fake: the EBS issue's tests drive them.
func (f *fakeCluster) AttachVolume(context.Context, string, ncapi.VolumeAttachment) error { return nil }
func (f *fakeCluster) DetachVolume(context.Context, string, string, bool) error           { return nil }
func (f *fakeCluster) StopInstances(context.Context, []string) error                      { return nil }
