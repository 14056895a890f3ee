package netmode

import (
	"context"
	"net"
	"testing"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestKernelManagedSegmentsRouted: in MANAGED two groups are two networks.
// Each guest leases its address from its own segment's DHCP server and
// gateway; a guest of one group reaches a guest of the other only through
// the host's routing, where the forward chain filters by the target's
// security groups: refused until a source-group rule admits the first
// group, then admitted with the guest's own address (no NAT between
// segments). At layer 2 the two never meet: each segment is its own
// bridge, so the other guest's address is unreachable on the link even
// when the rules admit it.
func TestKernelManagedSegmentsRouted(t *testing.T) {
	host, ga, gb := nstest.New(t), nstest.New(t), nstest.New(t)
	m, err := New(Config{Mode: Managed, Subnet: mp("10.242.1.0/24"), AddrsPerNet: 32}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	macA, macB := mac("d0:0d:0a:f2:01:02"), mac("d0:0d:0a:f2:01:22")
	st := State{
		Instances: []Instance{
			{ID: "i-a", MAC: macA, PrivateIP: ma("10.242.1.2"), Groups: []string{"sg-a"}},
			{ID: "i-b", MAC: macB, PrivateIP: ma("10.242.1.34"), Groups: []string{"sg-b"}},
		},
		Groups: []Group{{ID: "sg-a", Segment: 0, Egress: allOut}, {ID: "sg-b", Segment: 1, Egress: allOut}},
	}
	nstest.MustDo(t, host, func() error { return m.Set(ctx, st) })
	t.Cleanup(func() { nstest.Do(host, func() error { return m.Close(ctx) }) })

	// Each guest on its group's bridge, configured by that segment's DHCP.
	for _, g := range []struct {
		ns     netns.NsHandle
		port   string
		seg    int
		mac    net.HardwareAddr
		ip, gw string
	}{{ga, "mgdva", 0, macA, "10.242.1.2", "10.242.1.1"}, {gb, "mgdvb", 1, macB, "10.242.1.34", "10.242.1.33"}} {
		ns := g.ns
		nstest.Veth(t, host, g.port, ns, "eth0", g.mac)
		nstest.Attach(t, host, g.port, m.Bridge(g.seg))
		l, err := nstest.Lease(ns, "eth0", nil, 3)
		if err != nil {
			t.Fatalf("segment %d: %v", g.seg, err)
		}
		if l.ACK.YourIPAddr.String() != g.ip || l.ACK.Router()[0].String() != g.gw || l.ACK.ServerIdentifier().String() != g.gw {
			t.Fatalf("segment %d lease %s; want %s from %s", g.seg, l.ACK.Summary(), g.ip, g.gw)
		}
		nstest.Configure(t, ns, "eth0", l.ACK)
	}
	nstest.MustDo(t, host, func() error {
		if a, b := masterName(nstest.MustLink(t, "mgdva")), masterName(nstest.MustLink(t, "mgdvb")); a != "euca-br2" || b != "euca-br3" {
			t.Errorf("guests on bridges %q and %q; want euca-br2 and euca-br3", a, b)
		}
		return nil
	})
	nstest.ServeWho(t, gb, "0.0.0.0:8080")

	// No rule of sg-b admits sg-a: routed, and dropped.
	nstest.MustNotConnect(t, ga, "10.242.1.34:8080")

	// sg-b admits sg-a on 8080: routed between the segments, unNATed.
	st.Groups[1].Ingress = []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, PeerGroup: "sg-a"}}
	nstest.MustDo(t, host, func() error { return m.Set(ctx, st) })
	nstest.MustWho(t, ga, "10.242.1.34:8080", "10.242.1.2")
	// …and on nothing else: the way back is refused (sg-a admits nothing).
	nstest.ServeWho(t, ga, "0.0.0.0:8080")
	nstest.MustNotConnect(t, gb, "10.242.1.2:8080")

	// Layer 2: b's address on a's link is nobody's, rules or not.
	nstest.MustDo(t, ga, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: net.ParseIP("10.242.1.34"), Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK})
	})
	nstest.MustNotConnect(t, ga, "10.242.1.34:8080")
}
