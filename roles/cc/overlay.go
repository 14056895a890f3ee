package cc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// The cluster's network across hosts. A node on another host than this
// CC joins each of the network's segments over VXLAN (package
// netmode/nodenet): after each answered poll, the CC hands such a node its
// network (ncapi.Node.SetNetwork) when the version the node reports is
// not the one wanted, and tells its own network (spanning) the underlay
// addresses of all such nodes, so its bridges carry a tunnel to them.
// A node on this host (in process, or at one of its addresses) joins
// nothing: the CC's own bridges are already its.

// spanning is a Network that nodes on other hosts can join (modeNetwork).
type spanning interface {
	SetPeers(peers []netip.Addr)
	Segments(n ccapi.Network) []ncapi.Segment
	// FilterAtNodes reports whether each node, on this host or another,
	// enforces the security groups for its own guests (STATIC, SYSTEM).
	FilterAtNodes() bool
}

// overlay is what the CC keeps of it.
type overlay struct {
	priv  string     // VNET_PRIVINTERFACE
	local netip.Addr // VNET_LOCALIP

	mu     sync.Mutex
	addrs  map[string]netip.Addr // node name -> underlay address; invalid: on this host
	peers  map[string]netip.Addr // the nodes on other hosts that answered
	self   netip.Addr            // this host's underlay address, towards them
	doc    *ncapi.Network        // what every such node is handed; nil: to build
	repeer bool                  // peers changed: the CC's network must be set again
	warned map[string]bool       // nodes whose address could not be found, warned of once
	taken  map[string]string     // node name -> the network version it last took from this CC
}

// changed drops the cached node network: the desired network changed.
func (o *overlay) changed() {
	o.mu.Lock()
	o.doc = nil
	o.mu.Unlock()
}

// takeRepeer reports (once) that the peers changed since the last call.
func (o *overlay) takeRepeer() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.repeer
	o.repeer = false
	return r
}

// joinNode runs after node name (reached through n) answered a poll
// reporting the network version have: it makes sure a node on another
// host has its network.
func (c *Cluster) joinNode(ctx context.Context, name string, n ncapi.Node, have string) {
	sp, ok := c.net.(spanning)
	if !ok {
		return
	}
	addr, err := c.ov.addrOf(ctx, name)
	if err != nil {
		c.ov.mu.Lock()
		first := !c.ov.warned[name]
		if c.ov.warned == nil {
			c.ov.warned = map[string]bool{}
		}
		c.ov.warned[name] = true
		c.ov.mu.Unlock()
		level := slog.LevelDebug
		if first {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "cc: node's underlay address unknown; its instances get no network until it resolves", "node", name, "err", err)
		return
	}
	var doc ncapi.Network
	switch {
	case !addr.IsValid() && !sp.FilterAtNodes():
		return // on this host: the network mode's bridges are its already
	case !addr.IsValid():
		// On this host, guests on the operator's bridge: the node
		// filters them, with no segment to join.
		c.netMu.Lock()
		doc = nodeNetworkOf(c.desired, nil, nil, true)
		c.netMu.Unlock()
	default:
		c.prunePeers(sp)
		doc, err = c.nodeNetwork(sp, name, addr)
	}
	if err != nil {
		c.log.WarnContext(ctx, "cc: node network", "node", name, "err", err)
		return
	}
	if doc.Version() == have {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	if err := n.SetNetwork(sctx, doc); err != nil {
		if ctx.Err() == nil {
			c.log.WarnContext(ctx, "cc: node did not take its network; sent again next poll", "node", name, "err", err)
		}
		return
	}
	c.ov.mu.Lock()
	if c.ov.taken == nil {
		c.ov.taken = map[string]string{}
	}
	c.ov.taken[name] = doc.Version()
	c.ov.mu.Unlock()
	c.log.InfoContext(ctx, "cc: node network sent", "node", name, "version", doc.Version(), "segments", len(doc.Segments))
}

// readyNode hands node name (on another host) the network before an
// instance starts on it, unless the network it last took is the one
// wanted: the instance's NIC joins its segment's bridge on the node, and
// in MANAGED a group's first instance is what makes its segment, so
// waiting for the next poll would race the node's start of the guest.
func (c *Cluster) readyNode(ctx context.Context, name string, n ncapi.Node) {
	c.ov.mu.Lock()
	have := c.ov.taken[name]
	c.ov.mu.Unlock()
	c.joinNode(ctx, name, n, have)
}

// addrOf is node name's underlay address, invalid for a node on this
// host. NODES names a node "host" or "host:port".
func (o *overlay) addrOf(ctx context.Context, name string) (netip.Addr, error) {
	o.mu.Lock()
	a, ok := o.addrs[name]
	o.mu.Unlock()
	if ok {
		return a, nil
	}
	host := name
	if h, _, err := net.SplitHostPort(name); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		rctx, cancel := context.WithTimeout(ctx, pollTimeout)
		defer cancel()
		as, lerr := net.DefaultResolver.LookupNetIP(rctx, "ip4", host)
		if lerr != nil || len(as) == 0 {
			return netip.Addr{}, fmt.Errorf("resolve %s: %v", host, lerr)
		}
		a = as[0]
	}
	a = a.Unmap()
	if local, err := isHostAddr(a); err != nil {
		return netip.Addr{}, err
	} else if local {
		a = netip.Addr{}
	}
	o.mu.Lock()
	if o.addrs == nil {
		o.addrs = map[string]netip.Addr{}
	}
	o.addrs[name] = a
	o.mu.Unlock()
	return a, nil
}

// isHostAddr reports whether a is loopback or one of this host's addresses.
func isHostAddr(a netip.Addr) (bool, error) {
	if a.IsLoopback() || a.IsUnspecified() {
		return true, nil
	}
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return false, fmt.Errorf("this host's addresses: %w", err)
	}
	for _, ifa := range ifas {
		if p, err := netip.ParsePrefix(ifa.String()); err == nil && p.Addr().Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

// nodeNetwork records node name at addr as a peer and returns what a node
// on another host is handed: the same for all of them (each leaves itself
// out of the remotes).
func (c *Cluster) nodeNetwork(sp spanning, name string, addr netip.Addr) (ncapi.Network, error) {
	c.ov.mu.Lock()
	if c.ov.peers == nil {
		c.ov.peers = map[string]netip.Addr{}
	}
	if c.ov.peers[name] != addr {
		c.ov.peers[name] = addr
		c.ov.doc, c.ov.repeer = nil, true
		sp.SetPeers(sortedAddrs(c.ov.peers))
	}
	if c.ov.doc != nil {
		defer c.ov.mu.Unlock()
		return *c.ov.doc, nil
	}
	if c.ov.local.IsValid() {
		c.ov.self = c.ov.local
	}
	if !c.ov.self.IsValid() {
		u, err := link.FindUnderlay(c.ov.priv, c.ov.local, addr)
		if err != nil {
			c.ov.mu.Unlock()
			return ncapi.Network{}, err
		}
		c.ov.self = u.Local
	}
	remotes := append([]netip.Addr{c.ov.self}, sortedAddrs(c.ov.peers)...)
	c.ov.mu.Unlock()

	c.netMu.Lock()
	n := c.desired
	c.netMu.Unlock()
	doc := nodeNetworkOf(n, sp.Segments(n), remotes, sp.FilterAtNodes())

	c.ov.mu.Lock()
	defer c.ov.mu.Unlock()
	if c.ov.doc == nil && slices.Equal(remotes[1:], sortedAddrs(c.ov.peers)) {
		c.ov.doc = &doc
	}
	return doc, nil
}

// seedPeers takes the registered nodes on other hosts for peers before
// any has answered a poll: a restarted CC then sets its network with the
// tunnel to them, instead of taking it down until each answers again.
func (c *Cluster) seedPeers(ctx context.Context) {
	sp, ok := c.net.(spanning)
	if !ok {
		return
	}
	regs, err := c.st.CCNodes(ctx, c.zone)
	if err != nil {
		c.log.WarnContext(ctx, "cc: registered nodes", "err", err)
		return
	}
	// Names to resolve hold up the start only this long; the polls find
	// the rest.
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	for _, r := range regs {
		addr, err := c.ov.addrOf(ctx, r.Host)
		if err != nil || !addr.IsValid() {
			continue // unresolved (joinNode warns of it) or on this host
		}
		c.ov.mu.Lock()
		if c.ov.peers == nil {
			c.ov.peers = map[string]netip.Addr{}
		}
		if c.ov.peers[r.Host] != addr {
			c.ov.peers[r.Host] = addr
			c.ov.doc = nil
			sp.SetPeers(sortedAddrs(c.ov.peers))
		}
		c.ov.mu.Unlock()
	}
}

// seedTimeout bounds the name lookups of seedPeers.
const seedTimeout = 5 * time.Second

// prunePeers forgets the peers of nodes no longer registered.
func (c *Cluster) prunePeers(sp spanning) {
	c.mu.Lock()
	known := make(map[string]bool, len(c.state))
	for name := range c.state {
		known[name] = true
	}
	c.mu.Unlock()
	c.ov.mu.Lock()
	defer c.ov.mu.Unlock()
	gone := false
	for name := range c.ov.peers {
		if !known[name] {
			delete(c.ov.peers, name)
			gone = true
		}
	}
	if gone {
		c.ov.doc, c.ov.repeer = nil, true
		sp.SetPeers(sortedAddrs(c.ov.peers))
	}
}

func sortedAddrs(m map[string]netip.Addr) []netip.Addr {
	out := slices.Collect(func(yield func(netip.Addr) bool) {
		for _, a := range m {
			if !yield(a) {
				return
			}
		}
	})
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// nodeNetworkOf is the node API's form of the zone's network n; filter:
// the node filters its guests itself (ncapi.Network.Filter).
func nodeNetworkOf(n ccapi.Network, segs []ncapi.Segment, remotes []netip.Addr, filter bool) ncapi.Network {
	out := ncapi.Network{Subnet: n.Subnet, Segments: []ncapi.Segment{}, Instances: []ncapi.NetInstance{}, Groups: []ncapi.SecurityGroup{}}
	if filter {
		out.Filter, out.Subnet = true, netip.Prefix{}
	}
	for _, s := range segs {
		s.Remotes = remotes
		out.Segments = append(out.Segments, s)
	}
	for _, in := range n.Instances {
		out.Instances = append(out.Instances, ncapi.NetInstance{ID: in.ID, PrivateIP: in.PrivateIP, Groups: in.Groups})
	}
	for _, g := range n.Groups {
		out.Groups = append(out.Groups, ncapi.SecurityGroup{ID: g.ID, Ingress: nodeRules(g.Ingress), Egress: nodeRules(g.Egress)})
	}
	return out
}

// nodeRules is a group's rules in the node API's form.
func nodeRules(rs []ccapi.Rule) []ncapi.Rule {
	out := []ncapi.Rule{}
	for _, r := range rs {
		out = append(out, ncapi.Rule{Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort, CIDR: r.CIDR, PeerGroup: r.PeerGroup})
	}
	return out
}
