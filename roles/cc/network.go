package cc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Network realises the zone's virtual network on this host: the seam
// between the cluster controller and the network mode (VNET_MODE).
type Network interface {
	// Set brings the host to the whole desired network; harmless twice.
	Set(ctx context.Context, n ccapi.Network) error
	// Bridge is the bridge the NIC of an instance joins (in MANAGED, its
	// security group's segment, as the last Set described it).
	Bridge(instanceID string) string
	// Close removes what the network made on this host.
	Close(ctx context.Context) error
}

// SetNetwork records the zone's whole desired network, applies it, and has
// Run poll the nodes at once, handing the change to those on other hosts. The
// record survives a failed apply: Run retries it, and a restarted CC
// applies it again before the cloud controller speaks.
func (c *Cluster) SetNetwork(ctx context.Context, n ccapi.Network) error {
	c.netMu.Lock()
	defer c.netMu.Unlock()
	doc, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("cc: network of %s: %w", c.zone, err)
	}
	if err := c.st.PutCCNetwork(ctx, c.zone, doc); err != nil {
		return err
	}
	c.desired = n
	c.ov.changed()
	// The nodes on other hosts take their network after a poll: one now,
	// so that a changed rule is in force there too within a second.
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return c.applyLocked(ctx)
}

// apply applies the recorded network (Run, at start: the registered
// nodes on other hosts are its peers from the first apply, so a restarted
// CC never takes their tunnel down).
func (c *Cluster) apply(ctx context.Context) error {
	c.seedPeers(ctx)
	c.netMu.Lock()
	defer c.netMu.Unlock()
	return c.applyLocked(ctx)
}

func (c *Cluster) applyLocked(ctx context.Context) error {
	if err := c.net.Set(ctx, c.desired); err != nil {
		c.applied = false
		return fmt.Errorf("cc: apply network of %s: %w", c.zone, err)
	}
	level := slog.LevelDebug
	if !c.applied {
		level = slog.LevelInfo
	}
	c.log.Log(ctx, level, "cc: network applied", "zone", c.zone, "instances", len(c.desired.Instances), "groups", len(c.desired.Groups))
	c.applied = true
	return nil
}

// retryApply applies the recorded network again if the last apply failed.
// It does not wait behind a SetNetwork in progress: that one applies.
func (c *Cluster) retryApply(ctx context.Context) {
	if !c.netMu.TryLock() {
		return
	}
	defer c.netMu.Unlock()
	if c.applied && !c.ov.takeRepeer() {
		return
	}
	if err := c.applyLocked(ctx); err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "cc: network still not applied", "err", err)
	}
}

// noNetwork is the CC without a network of its own: NICs join VNET_BRIDGE,
// which the operator made (SYSTEM mode's arrangement).
type noNetwork struct{ bridge string }

func (noNetwork) Set(context.Context, ccapi.Network) error { return nil }
func (n noNetwork) Bridge(string) string                   { return n.bridge }
func (noNetwork) Close(context.Context) error              { return nil }

// NetworkOf adapts a network mode to the cluster controller.
func NetworkOf(m netmode.Mode) Network {
	return &modeNetwork{m: m, segment: map[string]int{}}
}

// NetworkRelayingMetadata is NetworkOf for a cluster on a host of its own:
// the cloud names it no metadata target (the service listens on the
// front-end's loopback), so guests' 169.254.169.254:80 goes to relay, this
// host's metadata relay (internal/mdrelay), instead.
func NetworkRelayingMetadata(m netmode.Mode, relay netip.AddrPort) Network {
	return &modeNetwork{m: m, segment: map[string]int{}, relay: relay}
}

type modeNetwork struct {
	m       netmode.Mode
	mu      sync.Mutex
	segment map[string]int // instance id -> segment, from the last Set
	peers   []netip.Addr   // the nodes on other hosts, for the next Set
	relay   netip.AddrPort // the metadata target when the cloud names none
}

// SetPeers is the underlay addresses of the cluster's nodes on other
// hosts: the next Set carries the network to them over VXLAN.
func (a *modeNetwork) SetPeers(peers []netip.Addr) {
	a.mu.Lock()
	a.peers = slices.Clone(peers)
	a.mu.Unlock()
}

// Segments are the networks of n a node on another host joins: the bridge
// its instances' NICs go on, the VXLAN id and this host's gateway; none
// when the mode has no network of its own to carry (SYSTEM, STATIC).
func (a *modeNetwork) Segments(n ccapi.Network) []ncapi.Segment {
	if a.m.VNI(0) == 0 {
		return nil
	}
	segs := []int{0}
	if a.m.Segments() > 0 { // MANAGED: the segments instances are in
		_, segment, err := stateOf(n)
		if err != nil {
			return nil
		}
		segs = slices.Compact(slices.Sorted(maps.Values(segment)))
	}
	var out []ncapi.Segment
	for _, sg := range segs {
		if gw := a.m.Gateway(sg); gw.IsValid() {
			out = append(out, ncapi.Segment{Bridge: a.m.Bridge(sg), VNI: a.m.VNI(sg), Gateway: gw})
		}
	}
	return out
}

// FilterAtNodes: in STATIC and SYSTEM the guests sit on the operator's
// bridge, each node's, and nothing of this host is on their path: each
// node filters its own (ncapi.Network.Filter).
func (a *modeNetwork) FilterAtNodes() bool {
	return a.m.Name() == netmode.Static || a.m.Name() == netmode.System
}

func (a *modeNetwork) Set(ctx context.Context, n ccapi.Network) error {
	if !n.Metadata.IsValid() {
		n.Metadata = a.relay
	}
	st, segment, err := stateOf(n)
	if err != nil {
		return err
	}
	a.mu.Lock()
	st.Peers = a.peers
	a.mu.Unlock()
	if err := a.m.Set(ctx, st); err != nil {
		return err
	}
	a.mu.Lock()
	a.segment = segment
	a.mu.Unlock()
	return nil
}

func (a *modeNetwork) Bridge(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m.Bridge(a.segment[id])
}

func (a *modeNetwork) Close(ctx context.Context) error { return a.m.Close(ctx) }

// stateOf translates the cluster API's network into the mode's state, and
// says which segment each instance is in (its first group's).
func stateOf(n ccapi.Network) (netmode.State, map[string]int, error) {
	st := netmode.State{Metadata: n.Metadata}
	segOf := map[string]int{}
	for _, g := range n.Groups {
		ng := netmode.Group{ID: g.ID, Segment: g.Segment}
		ng.Ingress, ng.Egress = modeRules(g.Ingress), modeRules(g.Egress)
		st.Groups = append(st.Groups, ng)
		segOf[g.ID] = g.Segment
	}
	segment := map[string]int{}
	for _, in := range n.Instances {
		mac, err := net.ParseMAC(in.MAC)
		if err != nil {
			return netmode.State{}, nil, fmt.Errorf("instance %s: MAC %q: %w", in.ID, in.MAC, err)
		}
		st.Instances = append(st.Instances, netmode.Instance{
			ID: in.ID, MAC: mac, PrivateIP: in.PrivateIP, PublicIP: in.PublicIP, Groups: in.Groups,
		})
		if len(in.Groups) > 0 {
			segment[in.ID] = segOf[in.Groups[0]]
		}
	}
	return st, segment, nil
}

// modeRules is a group's rules as the network mode takes them.
func modeRules(rs []ccapi.Rule) []netmode.Rule {
	var out []netmode.Rule
	for _, r := range rs {
		out = append(out, netmode.Rule{Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort, CIDR: r.CIDR, PeerGroup: r.PeerGroup})
	}
	return out
}
