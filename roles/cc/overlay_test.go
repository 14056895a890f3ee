package cc

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/euca-cloud/euca/internal/logbuf"
	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// TestOverlayAcrossHosts: with the real MANAGED-NOVLAN mode (in a fresh
// namespace), a node on another host is handed its network after a poll
// (the segment's bridge, VNI 1, the gateway, the CC's address and every
// remote node), again only when it changes or the node reports another
// version; the CC's bridge gets a VXLAN device flooding to the remote
// nodes; a node on this host (localhost) is handed nothing.
func TestOverlayAcrossHosts(t *testing.T) {
	nstest.Need(t)
	e := newEnv(t, "GREEDY", []string{"localhost", "192.0.2.9", "192.0.2.8"}, room(4), room(4), room(4))
	e.cfg.VNetLocalIP = netip.MustParseAddr("192.0.2.1")
	nstest.Inside(t, func() {
		if lo, err := netlink.LinkByName("lo"); err == nil {
			_ = netlink.LinkSetUp(lo)
		}
		overlayInNamespace(t, e)
	})
}

func overlayInNamespace(t *testing.T, e *env) {
	ctx := context.Background()
	// The underlay: a veth with the CC's address, the LAN behind it.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "lan1"}); err != nil {
		t.Error(err)
		return
	}
	l, _ := netlink.LinkByName("lan0")
	a, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := netlink.AddrAdd(l, a); err != nil || netlink.LinkSetUp(l) != nil {
		t.Errorf("underlay: %v", err)
		return
	}
	subnet := netip.MustParsePrefix("10.124.0.0/24")
	m, err := netmode.New(netmode.Config{Mode: netmode.ManagedNoVLAN, Subnet: subnet, LocalIP: e.cfg.VNetLocalIP}, testLog(t))
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
	defer c.Teardown(ctx)
	n := ccapi.Network{
		Subnet:    subnet,
		Instances: []ccapi.NetInstance{{ID: "i-0", MAC: "d0:0d:0a:7c:00:02", PrivateIP: netip.MustParseAddr("10.124.0.2"), Groups: []string{"sg-1"}}},
		Groups:    []ccapi.SecurityGroup{{ID: "sg-1", Ingress: []ccapi.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, PeerGroup: "sg-1"}}}},
	}
	if err := c.SetNetwork(ctx, n); err != nil {
		t.Error(err)
		return
	}
	round := func() { c.poll(ctx); c.retryApply(ctx) }
	sent := func(name string) int {
		k := 0
		for _, call := range e.nodes[name].callList() {
			if strings.HasPrefix(call, "network ") {
				k++
			}
		}
		return k
	}
	round()
	remotes := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.8"), netip.MustParseAddr("192.0.2.9")}
	for _, name := range []string{"192.0.2.9", "192.0.2.8"} {
		f := e.nodes[name]
		f.mu.Lock()
		got := f.net
		f.mu.Unlock()
		if got == nil {
			// The first round may meet only some peers; the next has all.
			round()
			f.mu.Lock()
			got = f.net
			f.mu.Unlock()
		}
		if got == nil || len(got.Segments) != 1 {
			t.Errorf("%s was handed %+v", name, got)
			continue
		}
		s := got.Segments[0]
		if s.Bridge != netmode.DefaultBridge || s.VNI != 1 || s.Gateway != netip.MustParseAddr("10.124.0.1") {
			t.Errorf("%s segment %+v", name, s)
		}
		if got.Subnet != subnet || len(got.Instances) != 1 || got.Instances[0].PrivateIP != netip.MustParseAddr("10.124.0.2") ||
			len(got.Groups) != 1 || got.Groups[0].Ingress[0].PeerGroup != "sg-1" {
			t.Errorf("%s network %+v", name, got)
		}
	}
	round() // every peer known: the last documents carry all of them
	for _, name := range []string{"192.0.2.9", "192.0.2.8"} {
		if got := e.nodes[name].net.Segments[0].Remotes; !slices.Equal(got, remotes) {
			t.Errorf("%s remotes %v, want %v", name, got, remotes)
		}
	}
	if k := sent("localhost"); k != 0 {
		t.Errorf("the node on this host was handed its network %d times", k)
	}
	if got, err := link.FDB(link.VXLANName(1)); err != nil || !slices.Equal(got, remotes[1:]) {
		t.Errorf("the CC's tunnel floods to %v, %v; want %v", got, err, remotes[1:])
	}

	// Nothing changed: nothing is sent again.
	before := sent("192.0.2.8")
	round()
	if k := sent("192.0.2.8"); k != before {
		t.Errorf("an unchanged network sent again (%d, then %d)", before, k)
	}
	// The network changes: it is sent again, at a poll that SetNetwork asks
	// Run for at once (a changed rule is in force on the nodes within a
	// second, not at the next poll).
	select {
	case <-c.kick:
	default:
	}
	n.Instances = append(n.Instances, ccapi.NetInstance{ID: "i-1", MAC: "d0:0d:0a:7c:00:03", PrivateIP: netip.MustParseAddr("10.124.0.3"), Groups: []string{"sg-1"}})
	if err := c.SetNetwork(ctx, n); err != nil {
		t.Error(err)
		return
	}
	select {
	case <-c.kick:
	default:
		t.Error("SetNetwork did not ask for a poll")
	}
	round()
	if k := sent("192.0.2.8"); k != before+1 || len(e.nodes["192.0.2.8"].net.Instances) != 2 {
		t.Errorf("a changed network: %d sends (was %d)", k, before)
	}
	// A node that lost it (restarted) reports no version: sent again.
	e.nodes["192.0.2.8"].set(func(f *fakeNode) { f.net = nil })
	round()
	if k := sent("192.0.2.8"); k != before+2 {
		t.Errorf("a node without its network: %d sends (was %d)", k, before+1)
	}
	// A restarted CC sets its network with the tunnel to the registered
	// nodes from the first apply, before any poll.
	c2, err := New(ctx, e.cfg, e.st, e.dial, NetworkOf(m), testLog(t))
	if err != nil {
		t.Error(err)
		return
	}
	if err := c2.apply(ctx); err != nil {
		t.Error(err)
		return
	}
	if got, err := link.FDB(link.VXLANName(1)); err != nil || !slices.Equal(got, remotes[1:]) {
		t.Errorf("a restarted CC's first apply floods to %v, %v; want %v", got, err, remotes[1:])
	}
	// A node deregistered: the CC's tunnel and the others stop flooding to it.
	if err := e.st.DeregisterCCNode(ctx, e.cfg.ClusterName, "192.0.2.9"); err != nil {
		t.Error(err)
		return
	}
	round()
	round()
	if got, err := link.FDB(link.VXLANName(1)); err != nil || !slices.Equal(got, remotes[1:2]) {
		t.Errorf("after a deregistration the CC's tunnel floods to %v, %v; want %v", got, err, remotes[1:2])
	}
	if got := e.nodes["192.0.2.8"].net.Segments[0].Remotes; !slices.Equal(got, remotes[:2]) {
		t.Errorf("after a deregistration 192.0.2.8's remotes are %v", got)
	}
}

// spanningFake is a network nodes on other hosts could join.
type spanningFake struct{ *fakeNetwork }

func (spanningFake) SetPeers([]netip.Addr) {}
func (spanningFake) FilterAtNodes() bool   { return false }
func (spanningFake) Segments(ccapi.Network) []ncapi.Segment {
	return []ncapi.Segment{{Bridge: "euca-br0", VNI: 1, Gateway: netip.MustParseAddr("10.1.0.1")}}
}

// TestOverlayUnresolvedNodeWarnsOnce: a node whose name does not resolve
// is warned of at its first poll, not at every one.
func TestOverlayUnresolvedNodeWarnsOnce(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"no-such-node.invalid"}, room(2))
	var buf logbuf.Buffer
	c, err := New(context.Background(), e.cfg, e.st, e.dial, spanningFake{e.net}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.poll(context.Background())
	}
	if n := strings.Count(buf.String(), "underlay address unknown"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, buf.String())
	}
}

// TestFilterAtNodes: in SYSTEM (and STATIC) the guests are on the
// operator's bridge, and a node filters its own, even on this host: it is
// handed the groups with no segment, no subnet, and Filter set.
func TestFilterAtNodes(t *testing.T) {
	e := newEnv(t, "GREEDY", []string{"localhost"}, room(4))
	m, err := netmode.New(netmode.Config{Mode: netmode.System}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := New(ctx, e.cfg, e.st, e.dial, NetworkOf(m), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Teardown(ctx)
	n := ccapi.Network{Subnet: netip.MustParsePrefix("10.243.8.0/24"),
		Instances: []ccapi.NetInstance{{ID: "i-0", MAC: "d2:00:00:00:00:02", PrivateIP: netip.MustParseAddr("10.243.8.5"), Groups: []string{"sg-1"}}},
		Groups:    []ccapi.SecurityGroup{{ID: "sg-1", Ingress: []ccapi.Rule{{Protocol: "tcp", FromPort: 80, ToPort: 80, PeerGroup: "sg-1"}}}}}
	if err := c.SetNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	f := e.nodes["localhost"]
	f.mu.Lock()
	got := f.net
	f.mu.Unlock()
	if got == nil || !got.Filter || len(got.Segments) != 0 || got.Subnet.IsValid() || len(got.Instances) != 1 || len(got.Groups) != 1 {
		t.Fatalf("the node on this host was handed %+v", got)
	}
}
