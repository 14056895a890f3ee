package netmode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/euca-cloud/euca/netmode/dhcp"
	"github.com/euca-cloud/euca/netmode/ipam"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/vishvananda/netlink"
)

// managed is MANAGED-NOVLAN (one network, the whole subnet, on one bridge)
// and MANAGED (one network per security-group segment, each on its own
// bridge euca-br<tag>, with a VLAN device euca-vl<tag> on VNET_PRIVINTERFACE
// when one is configured: without it the segments stay on this host,
// which needs no 802.1Q at all). The host takes each network's first
// address; everything else is the same in both.
type managed struct {
	cfg  Config
	vlan bool
	log  *slog.Logger

	mu      sync.Mutex
	dhcp    dhcpServers
	pubIf   string                // the interface elastic IPs were last put on
	pubMine map[netip.Prefix]bool // elastic IPs this process added
	noVLAN  bool                  // the kernel refused a VLAN device (said once)
}

func newManaged(cfg Config, log *slog.Logger) (Mode, error) {
	m := &managed{cfg: cfg, vlan: cfg.Mode == Managed, log: log, pubMine: map[netip.Prefix]bool{}}
	m.dhcp.log = log
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 30 {
		return nil, fmt.Errorf("%s: VNET_SUBNET/VNET_NETMASK %v is not an IPv4 network with room for instances", cfg.Mode, cfg.Subnet)
	}
	m.cfg.Subnet = cfg.Subnet.Masked()
	if m.vlan {
		if ipam.Segments(m.cfg.Subnet, cfg.AddrsPerNet) == 0 {
			return nil, fmt.Errorf("MANAGED: VNET_SUBNET %v cannot be cut into networks of VNET_ADDRSPERNET=%d", cfg.Subnet, cfg.AddrsPerNet)
		}
		if cfg.PrivInterface != "" {
			if err := link.CheckName(cfg.PrivInterface); err != nil {
				return nil, fmt.Errorf("VNET_PRIVINTERFACE: %w", err)
			}
		}
	} else {
		if m.cfg.Bridge == "" {
			m.cfg.Bridge = DefaultBridge
		}
		if err := link.CheckName(m.cfg.Bridge); err != nil {
			return nil, fmt.Errorf("VNET_BRIDGE: %w", err)
		}
	}
	if cfg.PubInterface != "" {
		if err := link.CheckName(cfg.PubInterface); err != nil {
			return nil, fmt.Errorf("VNET_PUBINTERFACE: %w", err)
		}
	}
	return m, nil
}

func (m *managed) Name() string { return m.cfg.Mode }

func (m *managed) Segments() int {
	if !m.vlan {
		return 0
	}
	return min(ipam.Segments(m.cfg.Subnet, m.cfg.AddrsPerNet), ipam.MaxSegments)
}

// VLANTag is segment's 802.1Q id and bridge suffix: 0 and 1 are not usable.
func VLANTag(segment int) int { return segment + 2 }

// NoVLANVNI is the VXLAN id of MANAGED-NOVLAN's one network; MANAGED's
// segments use their VLAN tags (2-4094), so the two never share one.
const NoVLANVNI = 1

func (m *managed) VNI(segment int) int {
	if !m.vlan {
		return NoVLANVNI
	}
	return VLANTag(segment)
}

func (m *managed) Bridge(segment int) string {
	if !m.vlan {
		return m.cfg.Bridge
	}
	return fmt.Sprintf("%sbr%d", link.Prefix, VLANTag(segment))
}

func (m *managed) Gateway(segment int) netip.Addr {
	p, err := m.prefix(segment)
	if err != nil {
		return netip.Addr{}
	}
	return ipam.Gateway(p)
}

func (m *managed) Allocate(used []netip.Addr, segment int) (Address, error) {
	p, err := m.prefix(segment)
	if err != nil {
		return Address{}, err
	}
	return allocateFrom(p, used)
}

// prefix is the network of segment (the whole subnet in MANAGED-NOVLAN).
func (m *managed) prefix(segment int) (netip.Prefix, error) {
	if !m.vlan {
		return m.cfg.Subnet, nil
	}
	if segment >= ipam.MaxSegments {
		return netip.Prefix{}, fmt.Errorf("segment %d: at most %d VLANs", segment, ipam.MaxSegments)
	}
	return ipam.Segment(m.cfg.Subnet, m.cfg.AddrsPerNet, segment)
}

// network is one bridge's worth of the desired state.
type network struct {
	bridge    string
	prefix    netip.Prefix
	gateway   netip.Addr
	tag       int // MANAGED's VLAN id
	vni       int // the VXLAN id carrying it to the peers
	instances []Instance
}

// networks groups st's instances by network and checks each address
// belongs to its network.
func (m *managed) networks(st State) ([]*network, map[string]*network, error) {
	if err := checkInstances(st.Instances, true); err != nil {
		return nil, nil, err
	}
	segOf := map[string]int{}
	for _, g := range st.Groups {
		segOf[g.ID] = g.Segment
	}
	bySeg := map[int]*network{}
	byInst := map[string]*network{}
	var nets []*network
	for _, in := range st.Instances {
		seg := 0
		if m.vlan {
			if len(in.Groups) == 0 {
				return nil, nil, fmt.Errorf("instance %s: MANAGED needs a security group to find its segment", in.ID)
			}
			s, ok := segOf[in.Groups[0]]
			if !ok {
				return nil, nil, fmt.Errorf("instance %s: group %s is not in the state", in.ID, in.Groups[0])
			}
			seg = s
		}
		n := bySeg[seg]
		if n == nil {
			p, err := m.prefix(seg)
			if err != nil {
				return nil, nil, fmt.Errorf("instance %s: %w", in.ID, err)
			}
			n = &network{bridge: m.Bridge(seg), prefix: p, gateway: ipam.Gateway(p), vni: m.VNI(seg)}
			if m.vlan {
				n.tag = VLANTag(seg)
			}
			bySeg[seg] = n
			nets = append(nets, n)
		}
		if !n.prefix.Contains(in.PrivateIP) || in.PrivateIP == n.gateway || in.PrivateIP == n.prefix.Addr() || in.PrivateIP == ipam.Broadcast(n.prefix) {
			return nil, nil, fmt.Errorf("instance %s: %s is not a host address of %s (gateway %s)", in.ID, in.PrivateIP, n.prefix, n.gateway)
		}
		if in.PublicIP.IsValid() && !in.PublicIP.Is4() {
			return nil, nil, fmt.Errorf("instance %s: public address %s is not IPv4", in.ID, in.PublicIP)
		}
		n.instances = append(n.instances, in)
		byInst[in.ID] = n
	}
	// MANAGED-NOVLAN keeps its bridge, gateway and DHCP with no instances,
	// so the first instance finds them ready.
	if !m.vlan && len(nets) == 0 {
		nets = []*network{{bridge: m.cfg.Bridge, prefix: m.cfg.Subnet, gateway: ipam.Gateway(m.cfg.Subnet), vni: NoVLANVNI}}
	}
	slices.SortFunc(nets, func(a, b *network) int { return a.tag - b.tag })
	return nets, byInst, nil
}

func (m *managed) Set(ctx context.Context, st State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	nets, byInst, err := m.networks(st)
	if err != nil {
		return fmt.Errorf("%s: %w", m.cfg.Mode, err)
	}
	spec, err := m.rules(st, nets)
	if err != nil {
		return fmt.Errorf("%s: %w", m.cfg.Mode, err)
	}
	if err := enableForwarding(m.log); err != nil {
		return err
	}
	var under link.Underlay
	if len(st.Peers) > 0 {
		if under, err = link.FindUnderlay(m.cfg.PrivInterface, m.cfg.LocalIP, st.Peers[0]); err != nil {
			return fmt.Errorf("%s: VXLAN: %w", m.cfg.Mode, err)
		}
	}

	// Bridges, their gateway addresses, tunnels; then what is no longer wanted.
	bridges := map[string]netlink.Link{}
	tunnels := map[string]bool{}
	var errs []error
	for _, n := range nets {
		br, created, err := link.EnsureBridge(n.bridge, link.BridgeMAC(n.gateway))
		if err != nil {
			return err
		}
		if created {
			m.log.Info("netmode: bridge created", "bridge", n.bridge, "network", n.prefix)
		}
		bridges[n.bridge] = br
		gw := netip.PrefixFrom(n.gateway, n.prefix.Bits())
		if err := link.SetAddrs(br, []netip.Prefix{gw}, m.oursOn(n.bridge)); err != nil {
			return err
		}
		if len(st.Peers) > 0 {
			name := link.VXLANName(n.vni)
			tunnels[name] = true
			err := link.EnsureVXLAN(link.VXLAN{Name: name, VNI: n.vni, Local: under.Local, Dev: under.Dev,
				MTU: under.MTU - link.VXLANOverhead}, br)
			if err == nil {
				err = link.SetFDB(name, st.Peers)
			}
			if err != nil {
				errs = append(errs, err)
			}
		} else if n.tag != 0 && m.cfg.PrivInterface != "" {
			err := link.EnsureVLAN(link.VLANName(n.tag), m.cfg.PrivInterface, n.tag, br)
			if errors.Is(err, link.ErrNoVLAN) {
				// Nothing is lost on this host: each segment keeps its own
				// bridge; nodes on other hosts are reached over VXLAN.
				if !m.noVLAN {
					m.log.Warn("netmode: the kernel has no 802.1Q: MANAGED's segments are not tagged on VNET_PRIVINTERFACE; each stays on its own bridge here and reaches nodes on other hosts over VXLAN",
						"interface", m.cfg.PrivInterface, "err", err)
				}
				m.noVLAN, err = true, nil
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	errs = append(errs, syncTaps(st.Instances, func(in Instance) (netlink.Link, error) {
		return bridges[byInst[in.ID].bridge], nil
	}, m.log))
	errs = append(errs, m.removeStale(bridges, tunnels))
	errs = append(errs, m.setPublic(st.Instances))

	if err := applyRules(spec, m.log); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, allowLoopbackTarget(st.Metadata, spec.Bridges, true))
	}

	want := map[string]dhcpWant{}
	for _, n := range nets {
		w := dhcpWant{
			ifindex: bridges[n.bridge].Attrs().Index,
			cfg: dhcp.Config{ServerIP: n.gateway, Subnet: n.prefix, Router: n.gateway,
				DNS: m.cfg.DNS, LeaseTime: m.cfg.LeaseTime},
		}
		if len(w.cfg.DNS) == 0 {
			w.cfg.DNS = []netip.Addr{n.gateway}
		}
		if len(st.Peers) > 0 {
			w.cfg.MTU = under.MTU - link.VXLANOverhead
		}
		for _, in := range n.instances {
			w.leases = append(w.leases, dhcp.Lease{MAC: in.MAC, IP: in.PrivateIP})
		}
		want[n.bridge] = w
	}
	errs = append(errs, m.dhcp.set(want))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", m.cfg.Mode, err)
	}
	return nil
}

// oursOn says which addresses on bridge the mode manages: all of them on a
// bridge it owns, those inside the private subnet on an operator's.
func (m *managed) oursOn(bridge string) func(netip.Prefix) bool {
	if link.Owned(bridge) {
		return func(netip.Prefix) bool { return true }
	}
	return func(p netip.Prefix) bool { return m.cfg.Subnet.Contains(p.Addr()) }
}

// removeStale deletes the project's bridges and VLANs not in want (a
// segment whose last instance went, a renamed VNET_BRIDGE), and its VXLAN
// devices not in tunnels (no peers left).
func (m *managed) removeStale(want map[string]netlink.Link, tunnels map[string]bool) error {
	var errs []error
	for _, kind := range []string{link.KindVXLAN, link.KindVLAN, link.KindBridge} {
		ls, err := link.List(kind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, l := range ls {
			name := l.Attrs().Name
			keep := want[name] != nil
			if kind == link.KindVXLAN {
				keep = tunnels[name] && want[masterName(l)] != nil
			}
			if kind == link.KindVLAN {
				keep = false
				if br, ok := want[masterName(l)]; ok && br != nil {
					keep = true
				}
			}
			if keep {
				continue
			}
			if err := link.Delete(name); err != nil {
				errs = append(errs, err)
			} else {
				m.log.Info("netmode: link removed", "link", name)
			}
		}
	}
	return errors.Join(errs...)
}

func masterName(l netlink.Link) string {
	if l.Attrs().MasterIndex == 0 {
		return ""
	}
	mst, err := netlink.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		return ""
	}
	return mst.Attrs().Name
}

// setPublic puts the elastic IPs on the public interface and takes off
// those no longer used.
func (m *managed) setPublic(ins []Instance) error {
	var want []netip.Prefix
	for _, in := range ins {
		if in.PublicIP.IsValid() {
			want = append(want, netip.PrefixFrom(in.PublicIP, 32))
		}
	}
	pub := m.cfg.PubInterface
	if pub == "" {
		var err error
		if pub, err = link.DefaultRouteInterface(); err != nil {
			return err
		}
	}
	var errs []error
	if m.pubIf != "" && m.pubIf != pub { // the default route moved
		if l, err := netlink.LinkByName(m.pubIf); err == nil {
			errs = append(errs, link.SetAddrs(l, nil, m.oursPublic))
		}
	}
	if pub == "" {
		if len(want) > 0 {
			errs = append(errs, fmt.Errorf("elastic IPs need a public interface: set VNET_PUBINTERFACE or a default route"))
		}
		return errors.Join(errs...)
	}
	l, err := netlink.LinkByName(pub)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("public interface %s: %w", pub, err))...)
	}
	errs = append(errs, link.SetAddrs(l, want, m.oursPublic))
	m.pubIf = pub
	for _, p := range want {
		m.pubMine[p] = true
	}
	return errors.Join(errs...)
}

// oursPublic: a /32 from the VNET_PUBLICIPS pool, or one this process put
// there, is an elastic IP the mode manages.
func (m *managed) oursPublic(p netip.Prefix) bool {
	return p.Bits() == 32 && (slices.Contains(m.cfg.PublicIPs, p.Addr()) || m.pubMine[p])
}

// rules is the nftables spec of the state.
func (m *managed) rules(st State, nets []*network) (nft.Spec, error) {
	spec := nft.Spec{Subnet: m.cfg.Subnet, Metadata: st.Metadata, Masquerade: true, Filter: true,
		TunnelPort: link.VXLANPort, TunnelPeers: st.Peers}
	for _, n := range nets {
		spec.Bridges = append(spec.Bridges, n.bridge)
	}
	for _, in := range st.Instances {
		if in.PublicIP.IsValid() {
			spec.NAT = append(spec.NAT, nft.OneToOne{Public: in.PublicIP, Private: in.PrivateIP})
		}
	}
	var err error
	spec.Instances, spec.Groups, err = Filter(st.Instances, st.Groups)
	return spec, err
}

// Filter is the security-group part of a state as the nftables rules
// take it: every instance a target, and each group's rules both ways (a
// peer group's members are the targets in that group, which the table
// keeps as a set of addresses). Rules the IPv4 filter cannot express
// (ICMPv6) are left out.
func Filter(instances []Instance, groups []Group) ([]nft.Instance, []nft.Group, error) {
	var targets []nft.Instance
	for _, in := range instances {
		if !in.PrivateIP.IsValid() {
			// SYSTEM, before its node learned the address: nothing to
			// name, and its port lets it send nothing but DHCP.
			continue
		}
		targets = append(targets, nft.Instance{ID: in.ID, Addr: in.PrivateIP, Groups: in.Groups})
	}
	rules := func(g Group, rs []Rule) ([]nft.Rule, error) {
		var out []nft.Rule
		for _, r := range rs {
			proto, ok, err := protocol(r.Protocol)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", g.ID, err)
			}
			if !ok {
				continue
			}
			nr := nft.Rule{Proto: proto, FromPort: r.FromPort, ToPort: r.ToPort}
			switch {
			case r.PeerGroup != "":
				nr.PeerGroup = r.PeerGroup
			case r.CIDR.IsValid():
				nr.Peers = []netip.Prefix{r.CIDR}
			}
			out = append(out, nr)
		}
		return out, nil
	}
	var out []nft.Group
	for _, g := range groups {
		in, err := rules(g, g.Ingress)
		if err != nil {
			return nil, nil, err
		}
		eg, err := rules(g, g.Egress)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, nft.Group{ID: g.ID, Ingress: in, Egress: eg})
	}
	return targets, out, nil
}

func (m *managed) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := []error{m.dhcp.close(), removeRules(), removeTaps(), m.removeStale(nil, nil)}
	if !link.Owned(m.cfg.Bridge) && m.cfg.Bridge != "" {
		// An operator's bridge stays; the gateway address goes.
		if l, err := netlink.LinkByName(m.cfg.Bridge); err == nil {
			errs = append(errs, link.SetAddrs(l, nil, m.oursOn(m.cfg.Bridge)))
		}
	}
	if m.pubIf == "" && m.cfg.PubInterface == "" {
		m.pubIf, _ = link.DefaultRouteInterface()
	}
	for _, name := range slices.Compact([]string{m.pubIf, m.cfg.PubInterface}) {
		if name == "" {
			continue
		}
		if l, err := netlink.LinkByName(name); err == nil {
			errs = append(errs, link.SetAddrs(l, nil, m.oursPublic))
		}
	}
	clear(m.pubMine)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s close: %w", m.cfg.Mode, err)
	}
	return nil
}
