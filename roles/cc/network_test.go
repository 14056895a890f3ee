package cc

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

func TestStateOf(t *testing.T) {
	n := ccapi.Network{
		Metadata: netip.MustParseAddrPort("10.0.0.1:8773"),
		Instances: []ccapi.NetInstance{
			{ID: "i-1", MAC: "d0:0d:0a:00:00:02", PrivateIP: netip.MustParseAddr("10.0.0.2"), PublicIP: netip.MustParseAddr("192.0.2.7"), Groups: []string{"sg-b", "sg-a"}},
			{ID: "i-2", MAC: "D0:0D:0A:00:00:03", PrivateIP: netip.MustParseAddr("10.0.0.3")},
		},
		Groups: []ccapi.SecurityGroup{
			{ID: "sg-a", Ingress: []ccapi.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}},
			{ID: "sg-b", Segment: 3, Ingress: []ccapi.Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroup: "sg-b"}}},
		},
	}
	st, seg, err := stateOf(n)
	if err != nil {
		t.Fatal(err)
	}
	want := netmode.State{
		Metadata: n.Metadata,
		Instances: []netmode.Instance{
			{ID: "i-1", MAC: net.HardwareAddr{0xd0, 0x0d, 0x0a, 0, 0, 2}, PrivateIP: n.Instances[0].PrivateIP, PublicIP: n.Instances[0].PublicIP, Groups: []string{"sg-b", "sg-a"}},
			{ID: "i-2", MAC: net.HardwareAddr{0xd0, 0x0d, 0x0a, 0, 0, 3}, PrivateIP: n.Instances[1].PrivateIP},
		},
		Groups: []netmode.Group{
			{ID: "sg-a", Ingress: []netmode.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}},
			{ID: "sg-b", Segment: 3, Ingress: []netmode.Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroup: "sg-b"}}},
		},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("state\n%+v\nwant\n%+v", st, want)
	}
	// The first group decides the segment (MANAGED).
	if !reflect.DeepEqual(seg, map[string]int{"i-1": 3}) {
		t.Errorf("segments %v", seg)
	}
	n.Instances[1].MAC = "not-a-mac"
	if _, _, err := stateOf(n); err == nil {
		t.Error("a bad MAC was accepted")
	}
}

// TestNetworkOfManagedNoVLAN drives the real MANAGED-NOVLAN mode through the
// cluster controller inside a fresh network namespace: SetNetwork makes the
// bridge with its gateway and the nftables table, twice harmlessly; a
// launch's NIC goes on that bridge; Teardown removes it all.
func TestNetworkOfManagedNoVLAN(t *testing.T) {
	nstest.Need(t)
	// The store and fakes are made here: only this goroutine may Fatal.
	e := newEnv(t, "GREEDY", []string{"a"}, room(4))
	nstest.Inside(t, func() {
		if lo, err := netlink.LinkByName("lo"); err == nil {
			_ = netlink.LinkSetUp(lo)
		}
		inNamespace(t, e)
	})
}

func inNamespace(t *testing.T, e *env) {
	ctx := context.Background()
	subnet := netip.MustParsePrefix("10.123.0.0/24")
	m, err := netmode.New(netmode.Config{Mode: netmode.ManagedNoVLAN, Subnet: subnet, DNS: []netip.Addr{netip.MustParseAddr("10.123.0.1")}}, testLog(t))
	if err != nil {
		t.Error(err)
		return
	}
	e.cfg.VNetSubnet = subnet
	c, err := New(ctx, e.cfg, e.st, e.dial, NetworkOf(m), testLog(t))
	if err != nil {
		t.Error(err)
		return
	}
	n := ccapi.Network{
		Subnet:    subnet,
		Instances: []ccapi.NetInstance{{ID: "i-0", MAC: "d0:0d:0a:7b:00:02", PrivateIP: netip.MustParseAddr("10.123.0.2"), Groups: []string{"sg-1"}}},
		Groups:    []ccapi.SecurityGroup{{ID: "sg-1", Ingress: []ccapi.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}}},
		Metadata:  netip.MustParseAddrPort("10.123.0.1:8773"),
	}
	for i := range 2 {
		if err := c.SetNetwork(ctx, n); err != nil {
			t.Errorf("SetNetwork #%d: %v", i+1, err)
			return
		}
	}
	br, err := netlink.LinkByName(netmode.DefaultBridge)
	if err != nil {
		t.Errorf("bridge %s: %v", netmode.DefaultBridge, err)
		return
	}
	addrs, err := link.Addrs(br)
	if err != nil || !reflect.DeepEqual(addrs, []netip.Prefix{netip.MustParsePrefix("10.123.0.1/24")}) {
		t.Errorf("bridge addresses %v, %v; want the gateway", addrs, err)
	}
	if !hasTable() {
		t.Error("no nftables table euca after SetNetwork")
	}

	ps, err := c.RunInstances(ctx, reqs("i", 1))
	if err != nil || ps[0].Node != "a" {
		t.Errorf("run: %v, %v", ps, err)
		return
	}
	if got := e.nodes["a"].bridges["i-0"]; got != netmode.DefaultBridge {
		t.Errorf("NIC bridge %q, want %s", got, netmode.DefaultBridge)
	}

	if err := c.Teardown(ctx); err != nil {
		t.Errorf("teardown: %v", err)
	}
	if _, err := netlink.LinkByName(netmode.DefaultBridge); err == nil {
		t.Error("bridge left after Teardown")
	}
	if hasTable() {
		t.Error("nftables table left after Teardown")
	}
}

func hasTable() bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	defer c.CloseLasting()
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false
	}
	for _, tb := range ts {
		if tb.Name == "euca" {
			return true
		}
	}
	return false
}

// recordingMode records the state Set is given (the rest of netmode.Mode
// is not called).
type recordingMode struct {
	netmode.Mode
	last netmode.State
}

func (m *recordingMode) Set(_ context.Context, st netmode.State) error { m.last = st; return nil }

// TestNetworkRelayingMetadata: a cluster on a host of its own sends guests
// to its metadata relay when the cloud names no target, and to the cloud's
// target when it names one.
func TestNetworkRelayingMetadata(t *testing.T) {
	ctx := context.Background()
	relay := netip.MustParseAddrPort("127.0.0.1:8775")
	m := &recordingMode{}
	n := NetworkRelayingMetadata(m, relay)
	if err := n.Set(ctx, ccapi.Network{}); err != nil {
		t.Fatal(err)
	}
	if m.last.Metadata != relay {
		t.Errorf("no target from the cloud: redirect to %v, want the relay %v", m.last.Metadata, relay)
	}
	given := netip.MustParseAddrPort("10.0.0.1:8773")
	if err := n.Set(ctx, ccapi.Network{Metadata: given}); err != nil {
		t.Fatal(err)
	}
	if m.last.Metadata != given {
		t.Errorf("the cloud's target: redirect to %v, want %v", m.last.Metadata, given)
	}
	if err := NetworkOf(m).Set(ctx, ccapi.Network{}); err != nil || m.last.Metadata.IsValid() {
		t.Errorf("without a relay: redirect to %v (%v), want none", m.last.Metadata, err)
	}
}
