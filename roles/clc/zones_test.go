package clc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/store"
)

// zoneFixture is instFixture's cloud with more zones: clusters registered
// in the store and connected through a dial that hands out fakes.
type zoneFixture struct {
	*instFixture
	st     *store.Store
	fakes  map[string]*fakeCluster
	dialed []string
}

func newZoneFixture(t *testing.T, localFree int) *zoneFixture {
	f := &zoneFixture{instFixture: newInstFixture(t, localFree), fakes: map[string]*fakeCluster{}}
	f.st = f.c.store
	f.fakes[f.c.cfg.ClusterName] = f.cl
	return f
}

// register registers a cluster of zone with room for free instances and
// syncs the cloud with the register.
func (f *zoneFixture) register(t *testing.T, zone string, free int) *fakeCluster {
	t.Helper()
	fc := newFakeCluster(zone, free)
	f.fakes[zone] = fc
	if _, err := f.st.RegisterCluster(context.Background(), store.Cluster{Name: zone, Host: "cc-" + zone, Port: 8774}); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	return fc
}

func (f *zoneFixture) sync(t *testing.T) {
	t.Helper()
	err := f.c.syncClusters(context.Background(), func(r store.Cluster) (ccapi.Cluster, error) {
		f.dialed = append(f.dialed, r.Name)
		fc, ok := f.fakes[r.Name]
		if !ok {
			return nil, fmt.Errorf("no cluster at %s", r.Host)
		}
		return fc, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// defaultSubnets are an account's default subnets' CIDRs by zone.
func (f *zoneFixture) defaultSubnets(t *testing.T, account string) map[string]string {
	t.Helper()
	sns, err := f.st.Subnets(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sn := range sns {
		if sn.DefaultForAZ {
			out[sn.Zone] = sn.CIDR
		}
	}
	return out
}

// TestZonesFollowTheRegister: a cluster registered becomes a zone, after
// CLUSTER_NAME, with a default subnet in every account's default VPC: the
// space is split between the zones, a subnet made before the split
// narrowed to its slice; one deregistered stops being a zone.
func TestZonesFollowTheRegister(t *testing.T) {
	f := newZoneFixture(t, 5)
	local := f.c.cfg.ClusterName // us-east-1a, the space 172.31.0.0/16
	if got := f.defaultSubnets(t, f.alice); len(got) != 1 || got[local] != "172.31.0.0/16" {
		t.Fatalf("one zone: default subnets %v", got)
	}
	f.register(t, "us-east-1b", 3)
	f.register(t, "us-east-1c", 3)
	if got := f.c.Zones(); !slices.Equal(got, []string{local, "us-east-1b", "us-east-1c"}) {
		t.Fatalf("zones %v", got)
	}
	want := map[string]string{local: "172.31.0.0/18", "us-east-1b": "172.31.64.0/18", "us-east-1c": "172.31.128.0/18"}
	for _, acct := range []string{f.alice, f.bob} {
		if got := f.defaultSubnets(t, acct); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("default subnets %v, want %v", got, want)
		}
	}
	if f.c.ZoneID("us-east-1c") != "use1-az3" {
		t.Errorf("zone id %q", f.c.ZoneID("us-east-1c"))
	}
	if f.c.inst.cluster("us-east-1b") != f.fakes["us-east-1b"] {
		t.Error("the registered cluster is not connected")
	}
	f.sync(t)
	if len(f.dialed) != 2 {
		t.Errorf("dialed %v: an unchanged registration is dialled again", f.dialed)
	}

	if err := f.st.DeregisterCluster(context.Background(), "us-east-1c"); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	if got := f.c.Zones(); !slices.Equal(got, []string{local, "us-east-1b"}) {
		t.Fatalf("zones after deregister %v", got)
	}
	if f.c.inst.cluster("us-east-1c") != nil {
		t.Error("a deregistered cluster is still reached")
	}
}

// TestRegisteredLocalZoneIgnored: a registration naming the zone this
// process serves does not take it over.
func TestRegisteredLocalZoneIgnored(t *testing.T) {
	f := newZoneFixture(t, 5)
	other := newFakeCluster(f.c.cfg.ClusterName, 5)
	f.fakes = map[string]*fakeCluster{f.c.cfg.ClusterName: other}
	if _, err := f.st.RegisterCluster(context.Background(), store.Cluster{Name: f.c.cfg.ClusterName, Host: "elsewhere", Port: 8774}); err != nil {
		t.Fatal(err)
	}
	f.sync(t)
	if f.c.inst.cluster(f.c.cfg.ClusterName) != f.cl || len(f.dialed) != 0 || len(f.c.Zones()) != 1 {
		t.Errorf("the local zone was taken over: dialed %v, zones %v", f.dialed, f.c.Zones())
	}
}

// TestSubnetInUseKeepsItsRange: a zone's default subnet with an instance
// in it keeps its range when a zone is added, and its zone's network still
// spans it; the new zone gets its slice.
func TestSubnetInUseKeepsItsRange(t *testing.T) {
	f := newZoneFixture(t, 5)
	ctx := context.Background()
	if _, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 1)); err != nil {
		t.Fatal(err)
	}
	f.register(t, "us-east-1b", 3)
	local := f.c.cfg.ClusterName
	if got := f.defaultSubnets(t, f.alice); got[local] != "172.31.0.0/16" || got["us-east-1b"] != "172.31.128.0/17" {
		t.Errorf("alice's subnets %v", got)
	}
	if got := f.defaultSubnets(t, f.bob); got[local] != "172.31.0.0/17" {
		t.Errorf("bob's unused subnet was not narrowed: %v", got)
	}
	if p := f.c.zonePrefix(ctx, local); p.String() != "172.31.0.0/16" {
		t.Errorf("the zone's network %s no longer spans its instance's subnet", p)
	}
	if p := f.c.zonePrefix(ctx, "us-east-1b"); p.String() != "172.31.128.0/17" {
		t.Errorf("the new zone's network %s", p)
	}
}

// TestRunInstancesPlacement: Placement.AvailabilityZone sends a launch to
// that zone's cluster; without it the launch goes where there is most room
// for the type.
func TestRunInstancesPlacement(t *testing.T) {
	f := newZoneFixture(t, 2)
	ctx := context.Background()
	f.c.SetMetadataTarget(netip.AddrPort{}) // the default: the listener on loopback
	b := f.register(t, "us-east-1b", 5)

	spec := f.spec(1, 1)
	spec.Zone = f.c.cfg.ClusterName
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	if insts[0].Zone != f.c.cfg.ClusterName || len(f.cl.runs) != 1 || len(b.runs) != 0 {
		t.Fatalf("placed in %s; runs local %d, b %d", insts[0].Zone, len(f.cl.runs), len(b.runs))
	}

	insts, err = f.c.RunInstances(ctx, f.alice, f.spec(2, 2)) // local has 1 left, b 5
	if err != nil {
		t.Fatal(err)
	}
	if insts[0].Zone != "us-east-1b" || len(b.runs) != 1 {
		t.Fatalf("no zone asked: placed in %s", insts[0].Zone)
	}
	ip := netip.MustParseAddr(insts[0].PrivateIP)
	if !netip.MustParsePrefix("172.31.128.0/17").Contains(ip) {
		t.Errorf("an instance of us-east-1b has address %s outside its zone's slice", ip)
	}
	if n := b.lastNetwork(t); n.Subnet.String() != "172.31.128.0/17" || len(n.Instances) != 2 {
		t.Errorf("us-east-1b's network %+v", n)
	}
	// The metadata service listens on the front-end's loopback: a cluster
	// elsewhere is not told to send guests to its own.
	if n := b.lastNetwork(t); n.Metadata.IsValid() {
		t.Errorf("us-east-1b's cluster redirects metadata to %s", n.Metadata)
	}
	if n := f.cl.lastNetwork(t); n.Metadata != f.c.MetadataListenAddr() {
		t.Errorf("the local cluster redirects metadata to %s", n.Metadata)
	}

	b.mu.Lock()
	b.free = 0
	b.mu.Unlock()
	insts, err = f.c.RunInstances(ctx, f.alice, f.spec(1, 1)) // local 1, b 0
	if err != nil || insts[0].Zone != f.c.cfg.ClusterName {
		t.Fatalf("with room only in the first zone: %v, %v", insts, err)
	}

	spec.Zone = "us-east-1b"
	_, err = f.c.RunInstances(ctx, f.alice, spec)
	wantCode(t, "a full zone asked for", err, "InsufficientInstanceCapacity")
	if err == nil || !strings.Contains(err.Error(), "us-east-1b") {
		t.Errorf("the refusal does not name the zone: %v", err)
	}
	spec.Zone = "us-east-1z"
	_, err = f.c.RunInstances(ctx, f.alice, spec)
	wantCode(t, "an unknown zone", err, "InvalidParameterValue")
}

// silentCluster is a cluster whose controller does not answer.
type silentCluster struct{ *fakeCluster }

func (s silentCluster) Describe(context.Context, []ccapi.VMType) (ccapi.Status, error) {
	return ccapi.Status{}, errors.New("dial tcp 10.0.0.9:8774: connection refused")
}

// TestZoneStates: a zone is available while its cluster answers and a node
// does (saying so when one does not), unavailable when none does or the
// cluster does not; a zone that does not answer is passed over by a launch
// that names no zone, and its room reads as none.
func TestZoneStates(t *testing.T) {
	f := newZoneFixture(t, 2)
	ctx := context.Background()
	b := f.register(t, "us-east-1b", 5)
	c := newFakeCluster("us-east-1c", 50)
	if _, err := f.st.RegisterCluster(ctx, store.Cluster{Name: "us-east-1c", Host: "cc-c", Port: 8774}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.syncClusters(ctx, func(r store.Cluster) (ccapi.Cluster, error) {
		if r.Name == "us-east-1c" {
			return silentCluster{c}, nil
		}
		return f.fakes[r.Name], nil
	}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.nodesDown = true
	b.mu.Unlock()
	if states, msgs := f.c.ZoneStates(ctx); states["us-east-1b"] != ZoneUnavailable || !strings.Contains(msgs["us-east-1b"], "None of its 1 nodes") {
		t.Fatalf("every node down: %v, %v", states, msgs)
	}
	b.mu.Lock()
	b.asleep = true // a second node, asleep: one of two is down
	b.mu.Unlock()
	states, msgs := f.c.ZoneStates(ctx)
	if states[f.c.cfg.ClusterName] != ZoneAvailable || states["us-east-1b"] != ZoneAvailable || states["us-east-1c"] != ZoneUnavailable {
		t.Fatalf("states %v", states)
	}
	if !strings.Contains(msgs["us-east-1b"], "1 of 2 nodes") || !strings.Contains(msgs["us-east-1c"], "connection refused") || msgs[f.c.cfg.ClusterName] != "" {
		t.Errorf("messages %v", msgs)
	}
	capa, visible, err := f.c.ZoneCapacity(ctx, f.adminID(t))
	if err != nil || !visible || capa[f.c.cfg.ClusterName]["m1.small"].Free != 2 || capa["us-east-1b"]["m1.small"].Free != 5 {
		t.Errorf("capacity %v, %v, %v", capa, visible, err)
	}
	if _, ok := capa["us-east-1c"]; ok {
		t.Errorf("a zone that does not answer reports room: %v", capa["us-east-1c"])
	}
	if z := f.c.pickZone(ctx, "m1.small"); z != "us-east-1b" {
		t.Errorf("picked %s", z)
	}
}

func (f *zoneFixture) adminID(t *testing.T) string {
	t.Helper()
	a, err := f.st.AccountByName(context.Background(), AdminAccount)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
