// Package nodenet is a node's side of its cluster's network, on a host
// other than its cluster controller's: the cluster controller (package
// netmode, on its own host) runs each segment's bridge with the gateway,
// DHCP, the metadata redirect and NAT; a node joins each segment with a
// bridge of the same name and a VXLAN device (one VNI per segment) whose
// flood entries point at the cluster controller and the cluster's other
// nodes, so an instance here leases, reaches the metadata service and
// leaves through NAT there exactly as one on the controller's host does,
// and reaches instances on other nodes directly.
//
// Filtering. Two instances on one node talk across this node's bridge
// only, and two on different nodes across the tunnel between their
// nodes: neither passes the controller. So the node enforces the security
// groups itself, with the controller's own rules (netmode.Filter, nft):
// the table inet euca-node, whose forward chain sees bridged IPv4 through
// br_netfilter (bridge-nf-call-iptables), with its connection tracking.
// A bridge-family table cannot do this on its own: without
// nf_conntrack_bridge (not in this kernel) it has no connection state, so
// it could not let the answers of a guest's own connections back in.
//
// STATIC and SYSTEM. The guests sit on the operator's bridge, each node's,
// and reach the LAN and each other through it: no host of the cloud is on
// their path. The controller hands every node (on its own host too) a
// network of no segments with Filter set, and the node enforces its
// guests' groups in the same table, stateful as above, with no subnet: the
// LAN's other hosts are not the groups' to decide for. A packet's source
// address is true there because each guest's port is held to its own
// (package guestport), and a SYSTEM guest whose address is not learned
// yet is no target: its port lets it send nothing but DHCP.
//
// Metadata in STATIC and SYSTEM. The guests' router is the LAN's, which
// knows nothing of 169.254.169.254, and no host of the cloud is on their
// path: so a node on a host of its own serves them a metadata relay
// (internal/mdrelay, on its loopback, asking the front-end over the
// internal TLS under the node's identity) and, given it (Config.Metadata),
// redirects their 169.254.169.254:80 there in its own table: on
// VNET_BRIDGE (Config.Bridge), for packets the guest-port table marked as
// a guest's own request (nft.PortsMetadataMark), so a LAN host crossing
// the bridge is never redirected, whatever source it claims. Reaching a
// loopback listener takes route_localnet on the bridge, with the guard
// the cluster controller's host has (package nft): nothing to or from
// loopback passes it. The relay's answers go back by the host's route to
// the guest, the bridge's own subnet when the host has an address there.
//
// Everything carries the project's names (bridges as the controller names
// them, "euca-vx<VNI>", the table euca-node); Set makes what is missing
// and removes what it made and no longer wants, and netmode's Close
// (`euca network flush`) removes it too. A segment on an operator's bridge
// (the controller's VNET_BRIDGE, without the prefix) must exist here as
// there: the agent only plugs its tunnel into it. When the controller's address is
// this host's own, the controller's network mode already runs the
// segments here: Set then leaves the host alone.
package nodenet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// Network is what a node needs of its cluster's network.
type Network struct {
	Segments []Segment
	// Subnet is the cluster's private space; the filter drops new flows to
	// an address of it that no instance holds.
	Subnet netip.Prefix
	// Instances and Groups are every instance of the cluster and the
	// groups they are in: the targets, and the peers a group's rules
	// name. Only ID, PrivateIP and Groups matter here.
	Instances []netmode.Instance
	Groups    []netmode.Group
	// Filter, with no segments, has the node filter its guests on the
	// operator's bridge (STATIC, SYSTEM), on the controller's host too.
	// Subnet is then invalid: the LAN's other hosts are let be.
	Filter bool
}

// Segment is one of the cluster's networks: a bridge carried between
// hosts by one VXLAN id.
type Segment struct {
	Bridge string
	VNI    int
	// Gateway is the controller's address on the segment (DHCP, metadata,
	// the route out): its traffic with instances is not filtered here,
	// as it is not on the controller's own host.
	Gateway netip.Addr
	// Remotes are the underlay addresses of the segment's other hosts: the
	// cluster controller's first, then the cluster's other nodes.
	Remotes []netip.Addr
}

// Config is the node's underlay, from its eucalyptus.conf.
type Config struct {
	PrivInterface string     // VNET_PRIVINTERFACE; "": the route towards the controller's
	LocalIP       netip.Addr // VNET_LOCALIP; invalid: the source of that route
	// Bridge (VNET_BRIDGE) and Metadata, the node's metadata relay, when
	// valid, have the node redirect its guests' metadata requests on the
	// operator's bridge to the relay (STATIC, SYSTEM).
	Bridge   string
	Metadata netip.AddrPort
}

// Agent reconciles this host with the Network its cluster controller
// hands it. It acts in the network namespace of the calling thread.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	shared bool // the controller runs on this host: nothing of ours here
	// localnet: the agent turned route_localnet on for Config.Bridge (the
	// operator's), and turns it off again when it removes the guard.
	localnet bool
}

// New makes an agent; it touches nothing until Set.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if cfg.PrivInterface != "" {
		if err := link.CheckName(cfg.PrivInterface); err != nil {
			return nil, fmt.Errorf("VNET_PRIVINTERFACE: %w", err)
		}
	}
	if cfg.Metadata.IsValid() {
		if err := link.CheckName(cfg.Bridge); err != nil {
			return nil, fmt.Errorf("VNET_BRIDGE (the metadata redirect): %w", err)
		}
		if !cfg.Metadata.Addr().Is4() {
			return nil, fmt.Errorf("metadata relay %v is not IPv4", cfg.Metadata)
		}
	}
	if cfg.LocalIP.IsValid() && !cfg.LocalIP.Is4() {
		return nil, fmt.Errorf("VNET_LOCALIP %v is not IPv4", cfg.LocalIP)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: log.With("netmode", "node")}, nil
}

// Kernel settings: the bridged IPv4 of the segments must pass the inet
// forward hook, where the filter is; this node routes nothing itself, so
// ip_forward is left as it is.
const (
	bridgeNF4 = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	bridgeNF6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
)

// Set brings the host to n: each segment's bridge and tunnel, the
// tunnel's flood entries, the filter; and removes the segments and rules
// no longer in n. Harmless twice.
func (a *Agent) Set(ctx context.Context, n Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := check(n); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	if len(n.Segments) == 0 && n.Filter {
		return a.filterOnly(n)
	}
	if len(n.Segments) == 0 {
		return a.closeLocked()
	}
	ctl := n.Segments[0].Remotes[0]
	shared, err := isLocal(ctl)
	if err != nil {
		return err
	}
	if shared {
		if !a.shared {
			a.log.Info("nodenet: the cluster controller runs on this host; its network mode makes the segments", "controller", ctl)
		}
		a.shared = true
		return nil
	}
	a.shared = false
	under, err := link.FindUnderlay(a.cfg.PrivInterface, a.cfg.LocalIP, ctl)
	if err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	for _, p := range []string{bridgeNF4, bridgeNF6} {
		if _, err := link.WriteSysctl(p, "1"); err != nil {
			return fmt.Errorf("node network: isolation between instances needs br_netfilter: sysctl %s: %w", p, err)
		}
	}

	bridges, tunnels := map[string]bool{}, map[string]bool{}
	var errs []error
	for _, s := range n.Segments {
		br, err := a.bridge(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bridges[s.Bridge] = true
		name := link.VXLANName(s.VNI)
		tunnels[name] = true
		remotes := slices.DeleteFunc(slices.Clone(s.Remotes), func(r netip.Addr) bool { return r == under.Local })
		err = link.EnsureVXLAN(link.VXLAN{Name: name, VNI: s.VNI, Local: under.Local, Dev: under.Dev,
			MTU: under.MTU - link.VXLANOverhead}, br)
		if err == nil {
			err = link.SetFDB(name, remotes)
		}
		if err == nil {
			err = markName(name)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, a.removeStale(bridges, tunnels))
	errs = append(errs, a.filter(n))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	return nil
}

// Bounds of a Network: a cluster has a segment per security group at
// most (4096, as VLAN tags bounded Eucalyptus's MANAGED mode) and a
// remote per host; more is a malformed or hostile message, which would
// have the kernel make that many devices and flood entries.
const (
	maxSegments = 4096
	maxRemotes  = 4096
)

// underlay reports whether a can be a host's or gateway's address: unicast
// IPv4, not this host's loopback, nothing, or everyone.
func underlay(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func check(n Network) error {
	if len(n.Segments) > maxSegments {
		return fmt.Errorf("%d segments, more than %d", len(n.Segments), maxSegments)
	}
	vnis, bridges := map[int]bool{}, map[string]bool{}
	for _, s := range n.Segments {
		if err := link.CheckName(s.Bridge); err != nil {
			return fmt.Errorf("segment bridge: %w", err)
		}
		if err := link.CheckVNI(s.VNI); err != nil {
			return fmt.Errorf("segment %s: %w", s.Bridge, err)
		}
		if vnis[s.VNI] || bridges[s.Bridge] {
			return fmt.Errorf("segment %s (VNI %d) listed twice", s.Bridge, s.VNI)
		}
		vnis[s.VNI], bridges[s.Bridge] = true, true
		if len(s.Remotes) == 0 || !s.Remotes[0].Is4() {
			return fmt.Errorf("segment %s: no IPv4 address of the cluster controller", s.Bridge)
		}
		if len(s.Remotes) > maxRemotes {
			return fmt.Errorf("segment %s: %d remotes, more than %d", s.Bridge, len(s.Remotes), maxRemotes)
		}
		for _, r := range s.Remotes {
			if !underlay(r) {
				return fmt.Errorf("segment %s: remote %v is not a unicast IPv4 address", s.Bridge, r)
			}
		}
		if !underlay(s.Gateway) {
			return fmt.Errorf("segment %s: gateway %v is not a unicast IPv4 address", s.Bridge, s.Gateway)
		}
		if s.Remotes[0] != n.Segments[0].Remotes[0] {
			return fmt.Errorf("segments %s and %s name different cluster controllers", n.Segments[0].Bridge, s.Bridge)
		}
	}
	if len(n.Segments) > 0 && !n.Subnet.Addr().Is4() {
		return fmt.Errorf("subnet %v is not IPv4", n.Subnet)
	}
	return nil
}

// isLocal reports whether a is one of this host's addresses.
func isLocal(a netip.Addr) (bool, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("node network: addresses: %w", err)
	}
	for _, x := range addrs {
		if got, ok := netip.AddrFromSlice(x.IP); ok && got.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

// bridge is segment s's bridge: one of the project's (euca-…) is made
// when missing and marked as the agent's; another name is the operator's
// (the controller's VNET_BRIDGE), which must exist here as it does there,
// and is only given the tunnel.
func (a *Agent) bridge(s Segment) (netlink.Link, error) {
	if !link.Owned(s.Bridge) {
		br, err := link.Bridge(s.Bridge)
		if err != nil {
			return nil, fmt.Errorf("%w: make it on this host as on the cluster controller's (VNET_BRIDGE)", err)
		}
		return br, nil
	}
	br, created, err := link.EnsureBridge(s.Bridge, nil)
	if err != nil {
		return nil, err
	}
	if err := mark(br); err != nil {
		return nil, err
	}
	if created {
		a.log.Info("nodenet: bridge created", "bridge", s.Bridge, "vni", s.VNI)
	}
	// The host has no business on the instances' network: no IPv6
	// link-local address, router solicitations or DAD from the bridge.
	if _, err := link.WriteSysctl("/proc/sys/net/ipv6/conf/"+s.Bridge+"/disable_ipv6", "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bridge %s: disable IPv6: %w", s.Bridge, err)
	}
	return br, nil
}

// Alias marks the links an agent made (IFLA_IFALIAS): Set and Close
// remove only those, never a bridge the controller's network mode made on
// a host both share.
const Alias = "euca node segment"

func mark(l netlink.Link) error {
	if l.Attrs().Alias == Alias {
		return nil
	}
	if err := netlink.LinkSetAlias(l, Alias); err != nil {
		return fmt.Errorf("mark %s: %w", l.Attrs().Name, err)
	}
	return nil
}

func markName(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return mark(l)
}

// removeStale deletes the VXLAN devices and bridges the agent made and no
// longer wants.
func (a *Agent) removeStale(bridges, tunnels map[string]bool) error {
	var errs []error
	for _, kind := range []string{link.KindVXLAN, link.KindBridge} {
		ls, err := link.List(kind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, l := range ls {
			name := l.Attrs().Name
			if bridges[name] || tunnels[name] || l.Attrs().Alias != Alias {
				continue
			}
			if err := link.Delete(name); err != nil {
				errs = append(errs, err)
			} else {
				a.log.Info("nodenet: link removed", "link", name)
			}
		}
	}
	return errors.Join(errs...)
}

// filterOnly is Set for a network of no segments that the node filters
// (STATIC, SYSTEM): its guests are on the operator's bridge, which
// br_netfilter must hand to the inet hooks, and on no tunnel of ours.
func (a *Agent) filterOnly(n Network) error {
	a.shared = false
	errs := []error{a.removeStale(nil, nil)}
	for _, p := range []string{bridgeNF4, bridgeNF6} {
		if _, err := link.WriteSysctl(p, "1"); err != nil {
			errs = append(errs, fmt.Errorf("filtering the guests needs br_netfilter: sysctl %s: %w", p, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	if err := a.filter(n); err != nil {
		return fmt.Errorf("node network: %w", err)
	}
	// Only once the table's guard is in: route_localnet without it would
	// open the host's loopback services to the LAN.
	if a.cfg.Metadata.IsValid() && a.cfg.Metadata.Addr().IsLoopback() {
		changed, err := link.WriteSysctl(a.localnetPath(), "1")
		if err != nil {
			return fmt.Errorf("node network: the metadata relay on loopback: route_localnet on %s: %w", a.cfg.Bridge, err)
		}
		a.localnet = a.localnet || changed
	}
	return nil
}

func (a *Agent) localnetPath() string {
	return "/proc/sys/net/ipv4/conf/" + a.cfg.Bridge + "/route_localnet"
}

// filter reconciles the table euca-node with the security groups of n.
func (a *Agent) filter(n Network) error {
	spec := nft.Spec{Table: nft.NodeTableName, Subnet: n.Subnet, Filter: true}
	if len(n.Segments) == 0 && a.cfg.Metadata.IsValid() {
		spec.Metadata, spec.MetadataBridges, spec.MetadataMark = a.cfg.Metadata, []string{a.cfg.Bridge}, nft.PortsMetadataMark
	}
	for _, s := range n.Segments {
		spec.Bridges = append(spec.Bridges, s.Bridge)
		spec.Host = append(spec.Host, s.Gateway)
		spec.TunnelPeers = append(spec.TunnelPeers, s.Remotes...)
	}
	if len(n.Segments) > 0 {
		spec.TunnelPort = link.VXLANPort
	}
	var err error
	if spec.Instances, spec.Groups, err = netmode.Filter(n.Instances, n.Groups); err != nil {
		return err
	}
	rs, changed, err := nft.Sync(spec)
	if err != nil {
		return err
	}
	if changed {
		a.log.Info("nodenet: nftables table replaced", "table", rs.Table.Name, "rules", len(rs.Rules))
	}
	return nil
}

// Close removes what the agent made: the segments' tunnels and bridges,
// and the table. Harmless twice.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closeLocked()
}

func (a *Agent) closeLocked() error {
	errs := []error{a.removeStale(nil, nil)}
	if a.localnet {
		// Before the guard goes with the table.
		if _, err := link.WriteSysctl(a.localnetPath(), "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("route_localnet on %s: %w", a.cfg.Bridge, err))
		} else {
			a.localnet = false
		}
	}
	c, err := nftables.New()
	if err != nil {
		errs = append(errs, fmt.Errorf("nftables: %w", err))
	} else {
		errs = append(errs, nft.Remove(c, nft.NodeTableName))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node network close: %w", err)
	}
	return nil
}
