package nc

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/euca-cloud/euca/netmode/nodenet"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// fakeNetwork stands for the host's network agent (nodenet, tested in
// its own package against the kernel): it records what it is given.
type fakeNetwork struct {
	mu   sync.Mutex
	sets []ncapi.Network
	fail error
}

func (f *fakeNetwork) Set(_ context.Context, n ncapi.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, n)
	return f.fail
}

func (f *fakeNetwork) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sets)
}

// TestSetNetwork: the node applies the network it is handed and reports
// its version; a failed apply reports none, so the cluster controller
// sends it again, and the reconcile loop applies the last one again.
func TestSetNetwork(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	if v := status(t, n).Network; v != "" {
		t.Fatalf("a fresh node reports network %q", v)
	}
	nw := ncapi.Network{Subnet: netip.MustParsePrefix("10.1.0.0/16"), Segments: []ncapi.Segment{{Bridge: "euca-br0", VNI: 1,
		Gateway: netip.MustParseAddr("10.1.0.1"), Remotes: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}}}

	// Without an agent (a simulated host) the network is only recorded.
	if err := n.SetNetwork(ctx, nw); err != nil {
		t.Fatal(err)
	}
	if v := status(t, n).Network; v != nw.Version() {
		t.Errorf("network %q, want %q", v, nw.Version())
	}

	agent := &fakeNetwork{fail: errors.New("no br_netfilter")}
	n.UseNetwork(agent)
	if err := n.SetNetwork(ctx, nw); err == nil {
		t.Fatal("a failed apply reported success")
	}
	if v := status(t, n).Network; v != "" {
		t.Errorf("after a failed apply the node reports %q", v)
	}
	agent.mu.Lock()
	agent.fail = nil
	agent.mu.Unlock()
	n.reapplyNetwork(ctx) // what Run does at each reconcile
	if v := status(t, n).Network; v != nw.Version() || agent.count() != 2 {
		t.Errorf("after the reconcile: network %q, %d applies", v, agent.count())
	}
	n.reapplyNetwork(ctx) // applied: nothing to retry
	if agent.count() != 2 {
		t.Errorf("an applied network applied again at a reconcile (%d applies)", agent.count())
	}

	bad := nw
	bad.Segments = []ncapi.Segment{{Bridge: "a-bridge-name-too-long"}}
	if err := n.SetNetwork(ctx, bad); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("a bridge name too long: %v, want ErrBadRequest", err)
	}
}

// TestNodeNetworkAgent: the node API's network reaches the kernel whole
// through NodeNetwork (inside a fresh namespace): the segment's bridge and
// tunnel, and every group rule in the node's table, peer groups resolved.
func TestNodeNetworkAgent(t *testing.T) {
	nstest.Inside(t, func() {
		agentInNamespace(t)
	})
}

func agentInNamespace(t *testing.T) {
	ctx := context.Background()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}); err != nil {
		t.Error(err)
		return
	}
	l, _ := netlink.LinkByName("eth0")
	a, _ := netlink.ParseAddr("192.0.2.2/24")
	if err := netlink.AddrAdd(l, a); err != nil || netlink.LinkSetUp(l) != nil {
		t.Errorf("underlay: %v", err)
		return
	}
	agent, err := nodenet.New(nodenet.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Error(err)
		return
	}
	net := NodeNetwork(agent)
	defer agent.Close(ctx)
	nw := ncapi.Network{
		Subnet: netip.MustParsePrefix("10.1.0.0/16"),
		Segments: []ncapi.Segment{{Bridge: "euca-br0", VNI: 1, Gateway: netip.MustParseAddr("10.1.0.1"),
			Remotes: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}}},
		Instances: []ncapi.NetInstance{
			{ID: "i-1", PrivateIP: netip.MustParseAddr("10.1.0.2"), Groups: []string{"sg-1"}},
			{ID: "i-2", PrivateIP: netip.MustParseAddr("10.1.0.3"), Groups: []string{"sg-2"}},
		},
		Groups: []ncapi.SecurityGroup{
			{ID: "sg-1", Ingress: []ncapi.Rule{
				{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("10.9.0.0/16")},
				{Protocol: "udp", FromPort: 53, ToPort: 53, PeerGroup: "sg-2"}}},
			{ID: "sg-2"},
		},
	}
	if err := net.Set(ctx, nw); err != nil {
		t.Error(err)
		return
	}
	if got, err := link.FDB(link.VXLANName(1)); err != nil || len(got) != 2 {
		t.Errorf("tunnel floods to %v, %v: want the CC and the other node", got, err)
	}
	c, err := nftables.New()
	if err != nil {
		t.Error(err)
		return
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: nft.NodeTableName}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Error(err)
		return
	}
	var got []string
	for _, ch := range chains {
		if ch.Table.Name != nft.NodeTableName || ch.Name != nft.GroupChain("sg-1") {
			continue
		}
		rules, _ := c.GetRules(tbl, ch)
		for _, r := range rules {
			got = append(got, nft.Comment(r))
		}
	}
	if want := []string{"tcp 22-22 from 10.9.0.0/16", "udp 53-53 from group sg-2"}; !slices.Equal(got, want) {
		t.Errorf("sg-1's rules on the node %q, want %q", got, want)
	}
	// sg-2's members, the peers of that rule: its instance's address.
	members, err := c.GetSetByName(tbl, nft.MembersSet("sg-2"))
	if err != nil {
		t.Errorf("the set of sg-2's members: %v", err)
		return
	}
	elems, err := c.GetSetElements(members)
	if err != nil || len(elems) != 1 || netip.AddrFrom4([4]byte(elems[0].Key)) != netip.MustParseAddr("10.1.0.3") {
		t.Errorf("sg-2's members %v, %v; want 10.1.0.3", elems, err)
	}
}
