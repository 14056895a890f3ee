package nc

import (
	"context"
	"fmt"
	"sync"

	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/nodenet"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Network joins this host to its cluster's network: on a host other than
// the cluster controller's, each segment's bridge (the one
// InstanceRequest.Bridge names) with its VXLAN tunnel, and the security
// groups (package netmode/nodenet, through NodeNetwork).
type Network interface {
	Set(ctx context.Context, n ncapi.Network) error
}

// NodeNetwork adapts a node network agent to the node controller.
func NodeNetwork(a *nodenet.Agent) Network { return agentNetwork{a} }

type agentNetwork struct{ a *nodenet.Agent }

func (g agentNetwork) Set(ctx context.Context, n ncapi.Network) error {
	nn := nodenet.Network{Subnet: n.Subnet, Filter: n.Filter}
	for _, s := range n.Segments {
		nn.Segments = append(nn.Segments, nodenet.Segment{Bridge: s.Bridge, VNI: s.VNI, Gateway: s.Gateway, Remotes: s.Remotes})
	}
	for _, in := range n.Instances {
		nn.Instances = append(nn.Instances, netmode.Instance{ID: in.ID, PrivateIP: in.PrivateIP, Groups: in.Groups})
	}
	for _, g := range n.Groups {
		nn.Groups = append(nn.Groups, netmode.Group{ID: g.ID, Ingress: modeRules(g.Ingress), Egress: modeRules(g.Egress)})
	}
	return g.a.Set(ctx, nn)
}

// modeRules is a group's rules as the node's filter takes them.
func modeRules(rs []ncapi.Rule) []netmode.Rule {
	var out []netmode.Rule
	for _, r := range rs {
		out = append(out, netmode.Rule{Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort, CIDR: r.CIDR, PeerGroup: r.PeerGroup})
	}
	return out
}

// nodeNetwork is what the node holds of its cluster's network.
type nodeNetwork struct {
	mu      sync.Mutex
	net     Network       // nil: nothing to make on this host
	last    ncapi.Network // the last network handed over
	have    bool
	version string // last's Version once applied; "" while it is not
}

// UseNetwork makes SetNetwork join this host to the cluster's network
// through net. Without it (a simulated node, or one not run as root),
// SetNetwork only records what it was handed: instances on a real host
// then get no network.
func (n *Node) UseNetwork(net Network) {
	n.network.mu.Lock()
	n.network.net = net
	n.network.mu.Unlock()
}

// SetNetwork applies the cluster's network on this host (ncapi.Node).
// A failure leaves the version empty in Describe, so the cluster
// controller sends it again; Run retries the last one meanwhile.
func (n *Node) SetNetwork(ctx context.Context, nw ncapi.Network) error {
	if err := n.awake(); err != nil {
		return err
	}
	for _, s := range nw.Segments {
		if s.Bridge == "" || len(s.Bridge) > 15 {
			return fmt.Errorf("%w: segment bridge %q: interface names are 1 to 15 bytes", ncapi.ErrBadRequest, s.Bridge)
		}
	}
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	n.network.last, n.network.have = nw, true
	return n.applyNetworkLocked(ctx)
}

func (n *Node) applyNetworkLocked(ctx context.Context) error {
	v := n.network.last.Version()
	if n.network.net != nil {
		if err := n.network.net.Set(ctx, n.network.last); err != nil {
			n.network.version = ""
			return fmt.Errorf("nc: network: %w", err)
		}
	}
	if n.network.version != v {
		n.log.InfoContext(ctx, "nc: network applied", "version", v, "segments", len(n.network.last.Segments), "instances", len(n.network.last.Instances))
	}
	n.network.version = v
	return nil
}

// reapplyNetwork applies the last network handed over again while its
// apply is failing (Run calls it): reading back a large table at every
// round would cost more than the rare change by hand it could undo.
func (n *Node) reapplyNetwork(ctx context.Context) {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	if !n.network.have || n.network.net == nil || n.network.version != "" {
		return
	}
	if err := n.applyNetworkLocked(ctx); err != nil && ctx.Err() == nil {
		n.log.WarnContext(ctx, "nc: network not applied; the cluster controller will send it again", "err", err)
	}
}

// networkVersion is the version Describe reports.
func (n *Node) networkVersion() string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	return n.network.version
}
