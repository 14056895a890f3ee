// Package nft turns the network mode's desired state into one nftables
// table, "euca" in the inet family, and reconciles the kernel with it over
// netlink (github.com/google/nftables; never the nft binary).
//
// The table holds four base chains, and a fifth when the metadata listener
// is on loopback:
//
//	guard       (filter, mangle) nothing addressed to loopback, or sent from
//	                           it, arriving on a cloud bridge passes: reaching a loopback
//	                           listener through the DNAT needs route_localnet
//	                           on the bridges, which would otherwise open every
//	                           loopback service of the host to them. It runs
//	                           before the DNAT, which is how the metadata flow
//	                           (still addressed to 169.254.169.254 here) passes.
//	prerouting  (nat, dstnat)  169.254.169.254:80 arriving on a cloud bridge is
//	                           DNATed to the CLC's metadata listener (DNAT only:
//	                           the CLC knows the instance by its source address);
//	                           each elastic IP is DNATed to its instance.
//	output      (nat, dstnat)  the same elastic-IP DNAT for the host's own traffic.
//	postrouting (nat, srcnat)  the metadata flow is left alone (no SNAT), an
//	                           instance with an elastic IP leaves under it, the
//	                           rest of the private subnet is masqueraded.
//	forward     (filter)       established/related flows pass, invalid ones
//	                           drop; the cloud's own services (the host's
//	                           addresses, the metadata service) pass; a new
//	                           flow from an instance goes to that instance's
//	                           egress chain (found in the verdict map
//	                           from-instances), which jumps to each of its
//	                           groups' egress chains (a rule per egress
//	                           permission and destination, going on to
//	                           to-instances) and then drops; every other new
//	                           flow goes to to-instances.
//	to-instances               a new flow to an instance goes to that
//	                           instance's ingress chain (found in the verdict
//	                           map to-instances), which jumps to each
//	                           of its groups' ingress chains (an accept per
//	                           ingress permission and source) and then drops;
//	                           a new flow to any other address of the subnet
//	                           drops; the rest (out of the cloud) passes.
//	                           Bridged traffic between instances passes here
//	                           too (br_netfilter's bridge-nf-call-iptables),
//	                           so a flow between two instances must be let
//	                           out of the one and into the other.
//	host-output (filter)       the host's own new flows to an instance go to
//	                           to-instances: the host is no member of any
//	                           group. Its DHCP answers pass.
//
// Chains: inst-<id> and group-<id> (ingress), out-inst-<id> and
// out-group-<id> (egress). Sets: the verdict maps from-instances and
// to-instances, and members-<group> for each group a rule names. Being stateful (conntrack), an allowed flow's
// answers pass both ways whatever the rules say, and an established flow
// outlives the rule that let it start, as EC2's tracked connections do.
//
// Every rule carries a comment (nft's userdata TLV, shown by `nft list
// ruleset`) that names what it does; the comments double as the rule's
// identity, so Apply can see what of the table the kernel already holds
// and send only the chains and maps that differ, in one atomic batch (see
// Apply; the table's digest spares reading it back).
package nft

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the table the cloud owns.
const TableName = "euca"

// NodeTableName is the table of a node on another host than its cluster
// controller: the security groups only (Spec.Filter), for what its bridge
// carries between its instances and to and from the tunnel.
const NodeTableName = "euca-node"

// MetadataAddr is where instances reach the metadata service.
var MetadataAddr = netip.MustParseAddr("169.254.169.254")

var (
	loopback  = netip.MustParsePrefix("127.0.0.0/8")
	broadcast = netip.MustParsePrefix("255.255.255.255/32")
	multicast = netip.MustParsePrefix("224.0.0.0/4")
)

// Base chain names.
const (
	ChainPrerouting  = "prerouting"
	ChainOutput      = "output"
	ChainPostrouting = "postrouting"
	ChainForward     = "forward"
	ChainGuard       = "guard"
	ChainHostOutput  = "host-output"
	ChainInput       = "input"
)

// Spec is the desired state the rules implement.
type Spec struct {
	Table   string   // "": TableName
	Bridges []string // the cloud's private bridges
	// Subnet is the cloud's private space: new flows to an address of it
	// that no instance holds drop, and NAT leaves it alone. Invalid: the
	// guests are on the operator's LAN (STATIC, SYSTEM), whose other hosts
	// the groups do not decide for; then no NAT either.
	Subnet   netip.Prefix
	Metadata netip.AddrPort // where 169.254.169.254:80 goes; invalid: no redirect
	// MetadataBridges get the metadata redirect (and its guard) without
	// being the cloud's: a node's VNET_BRIDGE in STATIC and SYSTEM, the
	// operator's LAN, whose traffic the filter otherwise lets be.
	MetadataBridges []string
	// MetadataMark, when not 0, limits the redirect to packets carrying
	// that mark: the guest-port table sets it on a guest's own metadata
	// requests (PortsMetadataMark), so that a LAN host crossing the same
	// bridge is never redirected, whatever source it claims.
	MetadataMark uint32
	Masquerade   bool       // NAT the subnet's outbound traffic
	NAT          []OneToOne // elastic IPs
	Filter       bool       // isolate instances by their security groups
	// Host are the cloud's own addresses on the bridges (the gateway):
	// a node's bridge carries their traffic with its instances (DHCP
	// offers, metadata, the gateway's answers), which on the gateway's own
	// host is input and output, never filtered here; so it is not on the
	// node either.
	Host      []netip.Addr
	Instances []Instance
	Groups    []Group
	// TunnelPort is the UDP port of the segments' tunnels (VXLAN), 0 for
	// none. VXLAN has no authentication: a datagram to it puts its inner
	// frame on the segment its VNI names, from any source, past the guest
	// ports' checks. So no guest may send to it, on this host or routed
	// to another (masqueraded, it would come from a tunnel peer); and with
	// TunnelPeers, this host's port takes datagrams from those alone.
	TunnelPort  uint16
	TunnelPeers []netip.Addr
}

// OneToOne maps a public (elastic) address to an instance's private one.
type OneToOne struct{ Public, Private netip.Addr }

// Instance is a filtering target.
type Instance struct {
	ID     string
	Addr   netip.Addr
	Groups []string
}

// Group is a security group's rules, both ways.
type Group struct {
	ID      string
	Ingress []Rule // what may come in to its members
	Egress  []Rule // what its members may send: no rule, nothing
}

// Rule allows traffic of one protocol and port range from (ingress) or to
// (egress) its peers.
type Rule struct {
	Proto    int            // IANA protocol number; -1: any
	FromPort int            // TCP/UDP: first port; ICMP: type; -1: any
	ToPort   int            // TCP/UDP: last port; ICMP: code; -1: any
	Peers    []netip.Prefix // sources or destinations; none: the rule allows nothing
	// PeerGroup, when set, is the peer instead of Peers: the instances of
	// the Spec in that group, matched through the table's set of its
	// members (MembersSet), so that a launch changes an element, not
	// every rule naming the group.
	PeerGroup string
}

// Ruleset is the table, chains and rules Build made, in the order they are
// added to the kernel.
type Ruleset struct {
	Table  *nftables.Table
	Chains []*nftables.Chain
	Maps   []*Map
	Rules  []*nftables.Rule
}

// Map is a set of the table: a verdict map (an IPv4 address to a
// verdict), or a set of IPv4 addresses (a group's members).
type Map struct {
	Set      *nftables.Set
	Elements []nftables.SetElement
}

// The verdict maps of the filter: a new flow finds its instance's chain in
// one lookup, not by walking a rule per instance.
const (
	MapFromInstances = "from-instances" // source address: goto the instance's egress chain
	MapToInstances   = "to-instances"   // destination address: goto its ingress chain
)

// MembersSet names the set of a group's members' addresses.
func MembersSet(group string) string { return "members-" + group }

// Texts are m's elements as Apply compares them: "address verdict chain",
// or the address alone in a set that is not a map.
func (m *Map) Texts() []string {
	out := make([]string, len(m.Elements))
	for i, e := range m.Elements {
		if e.VerdictData == nil {
			out[i] = elementText(e.Key, 0, "")
			continue
		}
		out[i] = elementText(e.Key, int32(e.VerdictData.Kind), e.VerdictData.Chain)
	}
	return out
}

// add queues m's elements, a few hundred to a message: google/nftables
// puts a call's elements in one netlink attribute, whose length (16 bits)
// a thousand elements overflow.
func (m *Map) add(c *nftables.Conn) error {
	for es := range slices.Chunk(m.Elements, elementsPerMessage) {
		if err := c.SetAddElements(m.Set, es); err != nil {
			return fmt.Errorf("nftables: map %s: %w", m.Set.Name, err)
		}
	}
	return nil
}

// elementsPerMessage keeps a message's elements well under 64 KiB (an
// element of an address and a goto is under 60 bytes).
const elementsPerMessage = 512

func elementText(key []byte, kind int32, chain string) string {
	a, _ := netip.AddrFromSlice(key)
	if chain == "" && kind == 0 {
		return a.String()
	}
	return fmt.Sprintf("%s %d %s", a, kind, chain)
}

// addrSet makes the set name of the addresses addrs, and returns the
// expressions matching the source or destination address (at off)
// against it.
func (rs *Ruleset) addrSet(name string, addrs []netip.Addr) func(off uint32) []expr.Any {
	id := uint32(len(rs.Maps) + 1)
	m := &Map{Set: &nftables.Set{Table: rs.Table, Name: name, ID: id, KeyType: nftables.TypeIPAddr}}
	for _, a := range addrs {
		m.Elements = append(m.Elements, nftables.SetElement{Key: a.AsSlice()})
	}
	rs.Maps = append(rs.Maps, m)
	return func(off uint32) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: name, SetID: id},
		}
	}
}

// vmap makes a verdict map keyed by IPv4 address, and the rule
// expressions looking the source or destination address (at off) up in
// it.
func (rs *Ruleset) vmap(name string, off uint32) (*Map, []expr.Any) {
	// The set's id within a batch that adds it, numbered as nft does; a
	// batch that does not add it finds it by name.
	id := uint32(len(rs.Maps) + 1)
	m := &Map{Set: &nftables.Set{Table: rs.Table, Name: name, ID: id, IsMap: true,
		KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}}
	rs.Maps = append(rs.Maps, m)
	return m, concat(ipv4(), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: name, SetID: id},
	})
}

// InstanceChain and GroupChain name the per-instance and per-group
// chains of the ingress side, InstanceEgressChain and GroupEgressChain
// those of the egress side.
func InstanceChain(id string) string       { return "inst-" + id }
func GroupChain(id string) string          { return "group-" + id }
func InstanceEgressChain(id string) string { return "out-inst-" + id }
func GroupEgressChain(id string) string    { return "out-group-" + id }

// ChainToInstances is where a new flow meets its destination's ingress
// rules.
const ChainToInstances = "to-instances"

var (
	policyAccept = nftables.ChainPolicyAccept
	protoNames   = map[int]string{-1: "all", unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}
)

// Build makes the ruleset of s. Equal specs give identical rulesets
// whatever the order of their lists.
func Build(s Spec) (*Ruleset, error) {
	if s.Table == "" {
		s.Table = TableName
	}
	switch {
	case s.Subnet.IsValid() && !s.Subnet.Addr().Is4():
		return nil, fmt.Errorf("nft: subnet %v is not IPv4", s.Subnet)
	case !s.Subnet.IsValid() && (s.Masquerade || len(s.NAT) > 0):
		return nil, fmt.Errorf("nft: NAT without the cloud's subnet")
	}
	s.Subnet = s.Subnet.Masked()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: s.Table}
	rs := &Ruleset{Table: t}
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		c := &nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: &policyAccept}
		rs.Chains = append(rs.Chains, c)
		return c
	}
	pre := base(ChainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := base(ChainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := base(ChainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	fwd := base(ChainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	var guard *nftables.Chain
	if s.Metadata.IsValid() && s.Metadata.Addr().IsLoopback() {
		guard = base(ChainGuard, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityMangle)
	}

	bridges := slices.Sorted(slices.Values(s.Bridges))
	bridges = slices.Compact(bridges)
	nat := slices.Clone(s.NAT)
	slices.SortFunc(nat, func(a, b OneToOne) int { return a.Public.Compare(b.Public) })
	for _, n := range nat {
		if !n.Public.Is4() || !n.Private.Is4() {
			return nil, fmt.Errorf("nft: elastic IP %v -> %v is not IPv4", n.Public, n.Private)
		}
	}

	// prerouting: metadata, then elastic IPs.
	if s.Metadata.IsValid() {
		if !s.Metadata.Addr().Is4() {
			return nil, fmt.Errorf("nft: metadata target %v is not IPv4", s.Metadata)
		}
		mdBridges := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(bridges), s.MetadataBridges...))))
		for _, br := range mdBridges {
			if guard != nil {
				rs.add(guard, "nothing to loopback from "+br,
					concat(ipv4(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br),
						addr(offDaddr, expr.CmpOpEq, loopback), verdict(expr.VerdictDrop)))
				// route_localnet also lets in what claims to come from
				// loopback, which a host service would take for itself.
				rs.add(guard, "nothing from loopback on "+br,
					concat(ipv4(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br),
						addr(offSaddr, expr.CmpOpEq, loopback), verdict(expr.VerdictDrop)))
			}
			e := concat(ipv4(), ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br),
				addr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(MetadataAddr, 32)),
				l4(unix.IPPROTO_TCP), port(offDport, 80, 80))
			what := fmt.Sprintf("metadata from %s to %s", br, s.Metadata)
			if s.MetadataMark != 0 {
				e = append(e, markSet(s.MetadataMark)...)
				what = fmt.Sprintf("metadata from %s's guests to %s", br, s.Metadata)
			}
			rs.add(pre, what, append(e, dnat(s.Metadata)...))
		}
	}
	for _, n := range nat {
		e := concat(ipv4(), addr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(n.Public, 32)), dnat(netip.AddrPortFrom(n.Private, 0)))
		rs.add(pre, fmt.Sprintf("elastic %s to %s", n.Public, n.Private), e)
		rs.add(out, fmt.Sprintf("elastic %s to %s from the host", n.Public, n.Private), e)
	}

	// postrouting: the metadata flow keeps its source, elastic IPs, masquerade.
	if s.Metadata.IsValid() {
		rs.add(post, fmt.Sprintf("metadata to %s keeps its source", s.Metadata),
			concat(ctBits(expr.CtKeySTATUS, ipsDstNAT), ipv4(),
				addr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(s.Metadata.Addr(), 32)),
				l4(unix.IPPROTO_TCP), port(offDport, int(s.Metadata.Port()), int(s.Metadata.Port())),
				verdict(expr.VerdictReturn)))
	}
	for _, n := range nat {
		rs.add(post, fmt.Sprintf("elastic %s from %s", n.Public, n.Private),
			concat(ipv4(), addr(offSaddr, expr.CmpOpEq, netip.PrefixFrom(n.Private, 32)),
				addr(offDaddr, expr.CmpOpNeq, s.Subnet), snat(n.Public)))
	}
	if s.Masquerade {
		e := concat(ipv4(), addr(offSaddr, expr.CmpOpEq, s.Subnet), addr(offDaddr, expr.CmpOpNeq, s.Subnet))
		for _, br := range bridges {
			e = append(e, ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br)...)
		}
		rs.add(post, fmt.Sprintf("masquerade %s", s.Subnet), append(e, &expr.Masq{}))
	}

	if s.TunnelPort != 0 {
		if err := rs.tunnel(fwd, s, bridges, base); err != nil {
			return nil, err
		}
	}
	if s.Filter {
		if err := rs.filter(fwd, s, bridges); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// tunnel guards the tunnel port (Spec.TunnelPort): first in forward and in
// a chain of the input hook, so that no flow, established or not, of a
// guest's reaches it.
func (rs *Ruleset) tunnel(fwd *nftables.Chain, s Spec, bridges []string,
	base func(string, nftables.ChainType, *nftables.ChainHook, *nftables.ChainPriority) *nftables.Chain) error {
	in := base(ChainInput, nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	toTunnel := concat(l4(unix.IPPROTO_UDP), port(offDport, int(s.TunnelPort), int(s.TunnelPort)))
	for _, br := range bridges {
		from := ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br)
		rs.add(fwd, "no tunnel from "+br, concat(from, toTunnel, verdict(expr.VerdictDrop)))
		rs.add(in, "no tunnel from "+br, concat(from, toTunnel, verdict(expr.VerdictDrop)))
	}
	if len(s.TunnelPeers) == 0 {
		return nil
	}
	peers := slices.Clone(s.TunnelPeers)
	slices.SortFunc(peers, netip.Addr.Compare)
	for _, p := range slices.Compact(peers) {
		if !p.Is4() {
			return fmt.Errorf("nft: tunnel peer %v is not IPv4", p)
		}
		rs.add(in, "tunnel from "+p.String(), concat(ipv4(), toTunnel,
			addr(offSaddr, expr.CmpOpEq, netip.PrefixFrom(p, 32)), verdict(expr.VerdictAccept)))
	}
	rs.add(in, "no tunnel from elsewhere", concat(ipv4(), toTunnel, verdict(expr.VerdictDrop)))
	return nil
}

// filter fills the forward chain, the chain of new flows towards the
// instances, and the per-group and per-instance chains of both directions.
//
// A new flow from an instance goes to that instance's egress chain, which
// jumps to each of its groups' egress chains; a matching egress rule goes
// on to the ingress side (ChainToInstances), where a flow to an instance
// meets that instance's ingress chain and a flow to anywhere else of the
// subnet is dropped. So a flow between two instances must be allowed out
// of the one and into the other. Every path ends in a verdict: a goto
// never falls back into the egress chain that led to it.
func (rs *Ruleset) filter(fwd *nftables.Chain, s Spec, bridges []string) error {
	// A source of the cloud's subnet comes in on the cloud's bridges,
	// where the guest ports vouch for it; from elsewhere (the public side)
	// it is forged, and the groups would take it for the instance that
	// holds it (first: a forged packet may claim an established flow).
	if s.Subnet.IsValid() && len(bridges) > 0 {
		e := concat(ipv4(), addr(offSaddr, expr.CmpOpEq, s.Subnet))
		for _, br := range bridges {
			e = append(e, ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, br)...)
		}
		rs.add(fwd, fmt.Sprintf("no %s from outside", s.Subnet), append(e, verdict(expr.VerdictDrop)...))
	}
	rs.add(fwd, "established", concat(ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept)))
	rs.add(fwd, "invalid", concat(ctBits(expr.CtKeySTATE, expr.CtStateBitINVALID), verdict(expr.VerdictDrop)))
	hosts := slices.Clone(s.Host)
	slices.SortFunc(hosts, netip.Addr.Compare)
	hosts = slices.Compact(hosts)
	for _, h := range hosts {
		if !h.Is4() {
			return fmt.Errorf("nft: host address %v is not IPv4", h)
		}
		p := netip.PrefixFrom(h, 32)
		rs.add(fwd, "from the host "+h.String(), concat(ipv4(), addr(offSaddr, expr.CmpOpEq, p), verdict(expr.VerdictAccept)))
		rs.add(fwd, "to the host "+h.String(), concat(ipv4(), addr(offDaddr, expr.CmpOpEq, p), verdict(expr.VerdictAccept)))
	}
	// The metadata service is the cloud's own, reached whatever the
	// groups say (as EC2's is): bridged past a node towards the
	// controller, still addressed to 169.254.169.254, or routed to a
	// metadata listener that is not on the controller's loopback.
	rs.add(fwd, "metadata", concat(ipv4(), addr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(MetadataAddr, 32)),
		l4(unix.IPPROTO_TCP), port(offDport, 80, 80), verdict(expr.VerdictAccept)))
	if s.Metadata.IsValid() && !s.Metadata.Addr().IsLoopback() {
		rs.add(fwd, fmt.Sprintf("metadata at %s", s.Metadata),
			concat(ctBits(expr.CtKeySTATUS, ipsDstNAT), ipv4(),
				addr(offDaddr, expr.CmpOpEq, netip.PrefixFrom(s.Metadata.Addr(), 32)),
				l4(unix.IPPROTO_TCP), port(offDport, int(s.Metadata.Port()), int(s.Metadata.Port())),
				verdict(expr.VerdictAccept)))
	}
	// Broadcast and multicast are no instance's address, so no group's
	// ingress rule would see them: bridged to every port of a segment,
	// they reached the guests of every group on it. Only DHCP's
	// broadcasts pass (a guest's to its server; a server's answers,
	// which no guest can send: the guest ports drop them).
	rs.add(fwd, "dhcp broadcast to a server", concat(ipv4(), addr(offDaddr, expr.CmpOpEq, broadcast),
		l4(unix.IPPROTO_UDP), port(offDport, 67, 67), verdict(expr.VerdictAccept)))
	rs.add(fwd, "dhcp broadcast answers", concat(ipv4(), addr(offDaddr, expr.CmpOpEq, broadcast),
		l4(unix.IPPROTO_UDP), payload(expr.PayloadBaseTransportHeader, 0, []byte{0, 67, 0, 68}, expr.CmpOpEq), verdict(expr.VerdictAccept)))
	rs.add(fwd, "no broadcast", concat(ipv4(), addr(offDaddr, expr.CmpOpEq, broadcast), verdict(expr.VerdictDrop)))
	rs.add(fwd, "no multicast", concat(ipv4(), addr(offDaddr, expr.CmpOpEq, multicast), verdict(expr.VerdictDrop)))
	// Instances have no IPv6 addresses the rules could name: refuse IPv6
	// to and from them, bridged or routed, rather than let it bypass the
	// groups.
	for _, br := range bridges {
		rs.add(fwd, "no IPv6 to "+br, concat(meta(expr.MetaKeyNFPROTO, []byte{unix.NFPROTO_IPV6}),
			ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictDrop)))
		rs.add(fwd, "no IPv6 from "+br, concat(meta(expr.MetaKeyNFPROTO, []byte{unix.NFPROTO_IPV6}),
			ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), verdict(expr.VerdictDrop)))
	}

	groups := slices.Clone(s.Groups)
	slices.SortFunc(groups, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
	known := map[string]bool{}
	for _, g := range groups {
		if known[g.ID] {
			return fmt.Errorf("nft: group %s listed twice", g.ID)
		}
		known[g.ID] = true
	}
	insts := slices.Clone(s.Instances)
	slices.SortFunc(insts, func(a, b Instance) int { return a.Addr.Compare(b.Addr) })
	for i, in := range insts {
		if !in.Addr.Is4() || s.Subnet.IsValid() && !s.Subnet.Contains(in.Addr) {
			return fmt.Errorf("nft: instance %s address %v outside %s", in.ID, in.Addr, s.Subnet)
		}
		if i > 0 && insts[i-1].Addr == in.Addr {
			return fmt.Errorf("nft: instances %s and %s share %s", insts[i-1].ID, in.ID, in.Addr)
		}
	}

	toInst := &nftables.Chain{Name: ChainToInstances, Table: rs.Table}
	rs.Chains = append(rs.Chains, toInst)
	from, fromLookup := rs.vmap(MapFromInstances, offSaddr)
	to, toLookup := rs.vmap(MapToInstances, offDaddr)
	rs.add(toInst, "to the instances", toLookup)
	// The host's own new flows to an instance meet its ingress rules as a
	// flow from outside does: the host is no member of any group. Its DHCP
	// server's answers, and what it sends itself (through loopback),
	// pass.
	hostOut := &nftables.Chain{Name: ChainHostOutput, Table: rs.Table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &policyAccept}
	rs.Chains = append(rs.Chains, hostOut)
	rs.add(hostOut, "established", concat(ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept)))
	rs.add(hostOut, "to itself", concat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, "lo"), verdict(expr.VerdictAccept)))
	// Source and destination port in one load, as nft writes it.
	rs.add(hostOut, "dhcp answers", concat(ipv4(), l4(unix.IPPROTO_UDP),
		payload(expr.PayloadBaseTransportHeader, 0, []byte{0, 67, 0, 68}, expr.CmpOpEq), verdict(expr.VerdictAccept)))
	rs.add(hostOut, "towards the instances", verdict(expr.VerdictGoto, ChainToInstances))
	// The members of each group a rule names, as a set.
	members := map[string][]netip.Addr{}
	for _, in := range insts {
		for _, g := range slices.Compact(slices.Sorted(slices.Values(in.Groups))) {
			members[g] = append(members[g], in.Addr)
		}
	}
	named := map[string]bool{}
	for _, g := range groups {
		for _, r := range slices.Concat(g.Ingress, g.Egress) {
			if r.PeerGroup != "" {
				named[r.PeerGroup] = true
			}
		}
	}
	peerSets := map[string]func(uint32) []expr.Any{}
	for _, g := range slices.Sorted(maps.Keys(named)) {
		peerSets[g] = rs.addrSet(MembersSet(g), members[g])
	}

	for _, g := range groups {
		for _, dir := range []direction{ingress, egress} {
			c := &nftables.Chain{Name: dir.groupChain(g.ID), Table: rs.Table}
			rs.Chains = append(rs.Chains, c)
			var texts []string
			for _, r := range dir.rules(g) {
				if r.PeerGroup != "" {
					e, text, ok := ruleMatch(r, dir, peerSets[r.PeerGroup], "group "+r.PeerGroup)
					if ok && !slices.Contains(texts, text) {
						texts = append(texts, text)
						rs.add(c, text, e)
					}
					continue
				}
				peers := slices.Clone(r.Peers)
				slices.SortFunc(peers, func(a, b netip.Prefix) int {
					if c := a.Addr().Compare(b.Addr()); c != 0 {
						return c
					}
					return a.Bits() - b.Bits()
				})
				for _, p := range slices.Compact(peers) {
					e, text, ok := ruleExprs(r, p, dir)
					if !ok || slices.Contains(texts, text) {
						continue
					}
					texts = append(texts, text)
					rs.add(c, text, e)
				}
			}
		}
	}

	for _, in := range insts {
		gs := slices.Compact(slices.Sorted(slices.Values(in.Groups)))
		self := netip.PrefixFrom(in.Addr, 32)
		for _, dir := range []direction{ingress, egress} {
			c := &nftables.Chain{Name: dir.instanceChain(in.ID), Table: rs.Table}
			rs.Chains = append(rs.Chains, c)
			for _, g := range gs {
				if known[g] { // an unknown group allows nothing
					rs.add(c, "group "+g, verdict(expr.VerdictJump, dir.groupChain(g)))
				}
			}
			rs.add(c, "default drop", verdict(expr.VerdictDrop))
		}
		key := self.Addr().AsSlice()
		from.Elements = append(from.Elements, nftables.SetElement{Key: key,
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: egress.instanceChain(in.ID)}})
		to.Elements = append(to.Elements, nftables.SetElement{Key: key,
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: ingress.instanceChain(in.ID)}})
	}
	rs.add(fwd, "from the instances", fromLookup)
	rs.add(fwd, "towards the instances", verdict(expr.VerdictGoto, ChainToInstances))
	if s.Subnet.IsValid() {
		rs.add(toInst, fmt.Sprintf("nothing else new to %s", s.Subnet),
			concat(ipv4(), addr(offDaddr, expr.CmpOpEq, s.Subnet), verdict(expr.VerdictDrop)))
	}
	// Ends every path that came here by goto from an egress rule: falling
	// off this chain would return into the egress chain that jumped.
	rs.add(toInst, "elsewhere", verdict(expr.VerdictAccept))
	return nil
}

// direction is ingress or egress: which rules of a group, which chains,
// and which end of a packet a rule's peers are matched against.
type direction bool

const (
	ingress direction = false
	egress  direction = true
)

func (d direction) rules(g Group) []Rule {
	if d == egress {
		return g.Egress
	}
	return g.Ingress
}

func (d direction) groupChain(id string) string {
	if d == egress {
		return GroupEgressChain(id)
	}
	return GroupChain(id)
}

func (d direction) instanceChain(id string) string {
	if d == egress {
		return InstanceEgressChain(id)
	}
	return InstanceChain(id)
}

// ruleExprs is one rule of a group for one peer (an ingress rule's source,
// an egress rule's destination), and its comment. ok is false for a rule
// nothing can match (an IPv6 peer, ports backwards). An ingress rule
// accepts; an egress rule goes on to the destination's ingress
// (ChainToInstances).
func ruleExprs(r Rule, peer netip.Prefix, dir direction) (e []expr.Any, text string, ok bool) {
	if !peer.Addr().Is4() {
		return nil, "", false
	}
	peer = peer.Masked()
	return ruleMatch(r, dir, func(off uint32) []expr.Any { return addr(off, expr.CmpOpEq, peer) }, peer.String())
}

// ruleMatch is ruleExprs with the peer matched by peerExprs (given the
// offset of the address to match) and named peerText in the comment.
func ruleMatch(r Rule, dir direction, peerExprs func(off uint32) []expr.Any, peerText string) (e []expr.Any, text string, ok bool) {
	name, known := protoNames[r.Proto]
	if !known {
		name = fmt.Sprint(r.Proto)
	}
	text = name
	if r.Proto >= 0 {
		e = append(e, l4(byte(r.Proto))...)
	}
	switch r.Proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP:
		from, to := max(r.FromPort, 0), r.ToPort
		if to < 0 || to > 65535 {
			to = 65535
		}
		if from > to {
			return nil, "", false
		}
		if from > 0 || to < 65535 {
			e = append(e, port(offDport, from, to)...)
			text += fmt.Sprintf(" %d-%d", from, to)
		}
	case unix.IPPROTO_ICMP:
		if r.FromPort >= 0 {
			e = append(e, payload(expr.PayloadBaseTransportHeader, 0, []byte{byte(r.FromPort)}, expr.CmpOpEq)...)
			text += fmt.Sprintf(" type %d", r.FromPort)
			if r.ToPort >= 0 {
				e = append(e, payload(expr.PayloadBaseTransportHeader, 1, []byte{byte(r.ToPort)}, expr.CmpOpEq)...)
				text += fmt.Sprintf(" code %d", r.ToPort)
			}
		}
	}
	// The peer match goes first, after the IPv4 dependency nft adds in an
	// inet table: it is what differs most between rules.
	off, v := uint32(offSaddr), verdict(expr.VerdictAccept)
	text += " from " + peerText
	if dir == egress {
		off, v = offDaddr, verdict(expr.VerdictGoto, ChainToInstances)
		text = strings.Replace(text, " from ", " to ", 1)
	}
	e = concat(ipv4(), peerExprs(off), e)
	return append(e, v...), text, true
}

// add appends a rule with its comment.
func (rs *Ruleset) add(c *nftables.Chain, comment string, e []expr.Any) {
	rs.Rules = append(rs.Rules, &nftables.Rule{
		Table:    rs.Table,
		Chain:    c,
		Exprs:    e,
		UserData: userdata.AppendString(nil, userdata.TypeComment, comment),
	})
}

// Comments returns the comments of the rules of chain, in order.
func (rs *Ruleset) Comments(chain string) []string {
	var out []string
	for _, r := range rs.Rules {
		if r.Chain.Name == chain {
			out = append(out, Comment(r))
		}
	}
	return out
}

// Comment is a rule's comment.
func Comment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// queue adds the whole ruleset to c's next batch.
func (rs *Ruleset) queue(c *nftables.Conn) error {
	c.AddTable(rs.Table)
	for _, ch := range rs.Chains {
		c.AddChain(ch)
	}
	for _, m := range rs.Maps { // after the chains their verdicts name
		if err := c.AddSet(m.Set, nil); err != nil {
			return fmt.Errorf("nftables: map %s: %w", m.Set.Name, err)
		}
		if err := m.add(c); err != nil {
			return err
		}
	}
	for _, r := range rs.Rules {
		c.AddRule(r)
	}
	return nil
}

// Sync builds the ruleset of s and applies it to this network namespace's
// kernel (Build, then Apply), returning the ruleset and whether the table
// changed.
func Sync(s Spec) (*Ruleset, bool, error) {
	rs, err := Build(s)
	if err != nil {
		return nil, false, err
	}
	c, err := nftables.New(nftables.WithSockOptions(rs.Buffers()))
	if err != nil {
		return nil, false, fmt.Errorf("nftables: %w", err)
	}
	changed, err := Apply(c, rs)
	return rs, changed, err
}

// Buffers sizes a netlink socket for rs's batch: sent whole (one atomic
// transaction), it exceeds the default socket buffer past a few thousand
// rules ("message too long"), and its acknowledgements, one per message,
// would overflow the default receive buffer (ENOBUFS). The sizes are
// forced (CAP_NET_ADMIN), past net.core.[rw]mem_max.
func (rs *Ruleset) Buffers() nftables.SockOption {
	n := max(minBuffer, (len(rs.Chains)+len(rs.Rules)+4)*bufferPerMessage)
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n); e != nil && serr == nil {
					serr = fmt.Errorf("netlink socket buffer of %d bytes: %w", n, e)
				}
			}
		})
		return errors.Join(err, serr)
	}
}

// A message of the batch is a few hundred bytes at most; its
// acknowledgement costs the receive buffer about a kilobyte (the skb).
const (
	minBuffer        = 4 << 20
	bufferPerMessage = 2 << 10
)

// Apply brings the kernel's table to rs in one atomic batch, and reports
// whether it changed anything. Nothing is sent when the kernel already
// holds rs. A table missing, or with a base chain of another definition,
// is made whole (an old one deleted in the same batch). Otherwise only what
// differs is sent: a chain whose rules differ is flushed and refilled, a
// new chain added, a chain no longer wanted (a deleted group's, a gone
// instance's) deleted, so that a change to one group costs that group's
// rules, not the table's. Established flows keep their conntrack entries
// and NAT either way.
func Apply(c *nftables.Conn, rs *Ruleset) (bool, error) {
	cur, curDigest, err := load(c, rs.Table.Family, rs.Table.Name)
	if err != nil {
		return false, err
	}
	want := shapeOf(rs)
	digest := want.digest()
	changed := cur == nil || !cur.equal(want)
	if !changed && curDigest == digest {
		return false, nil
	}
	// Made whole: a missing table, a base chain to redefine, or a table
	// not as Apply leaves it (more than one digest).
	whole := cur == nil || !cur.sameBase(want) || curDigest == manyDigests
	switch {
	case whole:
		if cur != nil {
			c.DelTable(rs.Table)
		}
		err = rs.queue(c)
	case changed:
		err = rs.queueDiff(c, cur, want)
	}
	if err != nil {
		return false, err
	}
	if curDigest != digest {
		if !whole && curDigest != "" {
			c.DelChain(&nftables.Chain{Name: digestPrefix + curDigest, Table: rs.Table})
		}
		c.AddChain(&nftables.Chain{Name: digestPrefix + digest, Table: rs.Table})
	}
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("nftables: apply table %s: %w", rs.Table.Name, err)
	}
	remember(digest, want)
	return changed, nil
}

// The table carries the digest of its contents as Apply wrote them, as the
// name of an empty chain (digest-<hex>), and the process remembers the
// contents of the last few digests it wrote: reading the chains back (one
// dump) then tells what the kernel holds, where reading every rule back
// takes seconds with tens of thousands of rules (the kernel's rule dump
// restarts its walk for each buffer it fills). A table whose digest the
// process does not know (written by an earlier process, or changed by
// hand since) is read whole, once.
const digestPrefix = "digest-"

// manyDigests is load's digest of a table with more than one.
const manyDigests = "?"

var applied struct {
	sync.Mutex
	order []string
	shape map[string]shape
}

// remember records that the table with digest d holds s.
func remember(d string, s shape) {
	applied.Lock()
	defer applied.Unlock()
	if applied.shape == nil {
		applied.shape = map[string]shape{}
	}
	if _, ok := applied.shape[d]; ok {
		return
	}
	applied.shape[d] = s
	applied.order = append(applied.order, d)
	if len(applied.order) > rememberTables {
		delete(applied.shape, applied.order[0])
		applied.order = applied.order[1:]
	}
}

// rememberTables is how many digests a process keeps: a table or two of
// its own (the cluster's, a node's, the guest ports') and the tests'
// namespaces.
const rememberTables = 16

func remembered(d string) shape {
	applied.Lock()
	defer applied.Unlock()
	return applied.shape[d]
}

// digest names the contents of a table: every chain's definition and its
// rules' comments.
func (s shape) digest() string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(s)) {
		cs := s[name]
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00", name, cs.key, len(cs.comments))
		for _, c := range cs.comments {
			fmt.Fprintf(h, "%s\x00", c)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// queueDiff adds to c's next batch what turns the table cur into want
// (rs's shape): new chains first, so that refilled rules can jump to them;
// then each changed chain flushed and refilled; stale chains last, once
// the rules that jumped to them are gone.
func (rs *Ruleset) queueDiff(c *nftables.Conn, cur, want shape) error {
	byChain := map[string][]*nftables.Rule{}
	for _, r := range rs.Rules {
		byChain[r.Chain.Name] = append(byChain[r.Chain.Name], r)
	}
	for _, ch := range rs.Chains {
		if _, ok := cur[ch.Name]; !ok {
			c.AddChain(ch)
		}
	}
	// A map's elements name chains: made or refilled once the new chains
	// are there, and before the stale ones go; a set before the rules
	// that name it.
	for _, m := range rs.Maps {
		k := mapKey(m.Set.Name)
		have, ok := cur[k]
		switch {
		case ok && slices.Equal(have.comments, want[k].comments):
			continue
		case ok:
			c.FlushSet(m.Set)
		default:
			if err := c.AddSet(m.Set, nil); err != nil {
				return fmt.Errorf("nftables: set %s: %w", m.Set.Name, err)
			}
		}
		if err := m.add(c); err != nil {
			return err
		}
	}
	for _, ch := range rs.Chains {
		have, ok := cur[ch.Name]
		if ok && slices.Equal(have.comments, want[ch.Name].comments) {
			continue
		}
		if ok {
			c.FlushChain(ch)
		}
		for _, r := range byChain[ch.Name] {
			c.AddRule(r)
		}
	}
	stale := slices.DeleteFunc(slices.Sorted(maps.Keys(cur)), func(name string) bool {
		_, wanted := want[name]
		return wanted
	})
	for _, name := range stale {
		if !isMapKey(name) {
			c.FlushChain(&nftables.Chain{Name: name, Table: rs.Table})
		}
	}
	for _, name := range stale {
		if !isMapKey(name) {
			c.DelChain(&nftables.Chain{Name: name, Table: rs.Table})
		}
	}
	// Sets last: the rules naming them and the chains their elements
	// name are gone by now.
	for _, name := range stale {
		if isMapKey(name) {
			c.DelSet(&nftables.Set{Table: rs.Table, Name: mapName(name)})
		}
	}
	return nil
}

// A map is in a shape as "@name", which no chain of ours is called.
func mapKey(name string) string { return "@" + name }
func isMapKey(key string) bool  { return strings.HasPrefix(key, "@") }
func mapName(key string) string { return strings.TrimPrefix(key, "@") }

// setShapeKey is a set's definition in a shape: a verdict map or a set of
// addresses.
func setShapeKey(s *nftables.Set) string {
	if s.IsMap {
		return "map"
	}
	return "set"
}

// Remove deletes the inet table name; a missing table is not an error.
func Remove(c *nftables.Conn, name string) error {
	return removeTable(c, nftables.TableFamilyINet, name)
}

func removeTable(c *nftables.Conn, family nftables.TableFamily, name string) error {
	t, err := findTable(c, family, name)
	if err != nil || t == nil {
		return err
	}
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		if t, _ := findTable(c, family, name); t == nil {
			return nil // removed meanwhile
		}
		return fmt.Errorf("nftables: delete table %s: %w", name, err)
	}
	return nil
}

// Exists reports whether the inet table name is in the kernel.
func Exists(c *nftables.Conn, name string) (bool, error) {
	return exists(c, nftables.TableFamilyINet, name)
}

func exists(c *nftables.Conn, family nftables.TableFamily, name string) (bool, error) {
	t, err := findTable(c, family, name)
	return t != nil, err
}

func findTable(c *nftables.Conn, family nftables.TableFamily, name string) (*nftables.Table, error) {
	ts, err := c.ListTablesOfFamily(family)
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, nil
}

// shape is what Apply compares: each chain's definition and its rules'
// comments, in order, by chain name.
type shape map[string]chainShape

type chainShape struct {
	key      string // chainKey: its hook, priority, type and policy
	comments []string
}

func chainKey(c *nftables.Chain) string {
	k := c.Name
	if c.Hooknum != nil {
		k += fmt.Sprintf(" hook %d", *c.Hooknum)
	}
	if c.Priority != nil {
		k += fmt.Sprintf(" priority %d", *c.Priority)
	}
	if c.Type != "" {
		k += " type " + string(c.Type)
	}
	if c.Policy != nil {
		k += fmt.Sprintf(" policy %d", *c.Policy)
	}
	return k
}

func shapeOf(rs *Ruleset) shape {
	s := shape{}
	for _, c := range rs.Chains {
		s[c.Name] = chainShape{key: chainKey(c), comments: []string{}}
	}
	for _, r := range rs.Rules {
		cs := s[r.Chain.Name]
		cs.comments = append(cs.comments, Comment(r))
		s[r.Chain.Name] = cs
	}
	for _, m := range rs.Maps {
		s[mapKey(m.Set.Name)] = chainShape{key: setShapeKey(m.Set), comments: slices.Sorted(slices.Values(m.Texts()))}
	}
	return s
}

func (s shape) equal(o shape) bool {
	if len(s) != len(o) {
		return false
	}
	for k, v := range s {
		w, ok := o[k]
		if !ok || v.key != w.key || !slices.Equal(v.comments, w.comments) {
			return false
		}
	}
	return true
}

// sameBase reports whether every chain both have is defined alike (a base
// chain's hook, priority, type and policy cannot be changed in place).
func (s shape) sameBase(o shape) bool {
	for k, v := range s {
		if w, ok := o[k]; ok && v.key != w.key {
			return false
		}
	}
	return true
}

// load reads the kernel's table name as a shape, or nil when it is absent,
// and the digest it carries ("": none). Its chains are listed (one dump);
// its rules are read only when the digest is not one this process wrote
// (see remember), in one dump of the whole table.
func load(c *nftables.Conn, family nftables.TableFamily, name string) (shape, string, error) {
	t, err := findTable(c, family, name)
	if err != nil || t == nil {
		return nil, "", err
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		return nil, "", fmt.Errorf("nftables: list chains: %w", err)
	}
	s, digest := shape{}, ""
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != name {
			continue
		}
		if d, ok := strings.CutPrefix(ch.Name, digestPrefix); ok && ch.Hooknum == nil {
			if digest != "" {
				digest = manyDigests
			} else {
				digest = d
			}
			continue
		}
		s[ch.Name] = chainShape{key: chainKey(ch), comments: []string{}}
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, "", fmt.Errorf("nftables: list sets: %w", err)
	}
	for _, set := range sets {
		s[mapKey(set.Name)] = chainShape{key: setShapeKey(set), comments: []string{}}
	}
	if known := remembered(digest); known != nil && sameChains(known, s) {
		return known, digest, nil
	}
	for _, set := range sets {
		elems, err := c.GetSetElements(set)
		if err != nil {
			return nil, "", fmt.Errorf("nftables: elements of %s: %w", set.Name, err)
		}
		texts := []string{}
		for _, e := range elems {
			kind, chain := verdictOf(e.Val)
			texts = append(texts, elementText(e.Key, kind, chain))
		}
		slices.Sort(texts)
		s[mapKey(set.Name)] = chainShape{key: setShapeKey(set), comments: texts}
	}
	rules, err := dumpComments(c.NetNS, family, name)
	if err != nil {
		return nil, "", err
	}
	for ch, comments := range rules {
		cs, ok := s[ch]
		if !ok {
			return nil, "", fmt.Errorf("nftables: table %s changed while read (rules of chain %s, which was not listed)", name, ch)
		}
		cs.comments = comments
		s[ch] = cs
	}
	return s, digest, nil
}

// verdictOf decodes a verdict map element's data as the kernel returns
// it (google/nftables hands it over undecoded): NFTA_VERDICT_CODE, and
// NFTA_VERDICT_CHAIN for a jump or goto.
func verdictOf(b []byte) (int32, string) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return 0, ""
	}
	ad.ByteOrder = binary.BigEndian
	var kind int32
	var chain string
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			kind = int32(ad.Uint32())
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	return kind, chain
}

// sameChains reports whether a and b have the same chains, alike defined.
func sameChains(a, b shape) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.key != v.key {
			return false
		}
	}
	return true
}

// dumpComments reads the comments of every rule of the table name, by
// chain, in order, in one netlink dump (google/nftables dumps one chain
// at a time). netNS is the namespace's file descriptor as
// nftables.Conn.NetNS holds it (0: the calling thread's).
func dumpComments(netNS int, family nftables.TableFamily, name string) (map[string][]string, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netNS})
	if err != nil {
		return nil, fmt.Errorf("nftables: dump rules of %s: %w", name, err)
	}
	defer conn.Close()
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_RULE_TABLE, Data: []byte(name + "\x00")}})
	if err != nil {
		return nil, err
	}
	msgs, err := conn.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		// struct nfgenmsg: family, version, resource id.
		Data: append([]byte{byte(family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return nil, fmt.Errorf("nftables: dump rules of %s: %w", name, err)
	}
	out := map[string][]string{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return nil, fmt.Errorf("nftables: dump rules of %s: %w", name, err)
		}
		var chain string
		var ud []byte
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_USERDATA:
				ud = ad.Bytes()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("nftables: dump rules of %s: %w", name, err)
		}
		comment, _ := userdata.GetString(ud, userdata.TypeComment)
		out[chain] = append(out[chain], comment)
	}
	return out, nil
}

// ipsDstNAT is conntrack's IPS_DST_NAT status bit (linux/netfilter/nf_conntrack_common.h).
const ipsDstNAT = 1 << 5

// Header offsets of IPv4 and TCP/UDP fields.
const (
	offSaddr = 12
	offDaddr = 16
	offDport = 2
)

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func meta(key expr.MetaKey, want []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: want},
	}
}

// ipv4 is the dependency nft adds before any IPv4 match in an inet table.
func ipv4() []expr.Any { return meta(expr.MetaKeyNFPROTO, []byte{unix.NFPROTO_IPV4}) }

// l4 matches the transport protocol.
func l4(proto byte) []expr.Any { return meta(expr.MetaKeyL4PROTO, []byte{proto}) }

// ifname matches an interface name exactly: padded to IFNAMSIZ with NULs,
// as nft does (unpadded, "euca-br0" would also match "euca-br01").
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

// addr matches the IPv4 source or destination against a prefix as nft
// does: a byte-aligned prefix loads only its bytes, any other loads the
// whole address and masks it.
func addr(offset uint32, op expr.CmpOp, p netip.Prefix) []expr.Any {
	p = p.Masked()
	if p.Bits() == 0 {
		return nil // 0.0.0.0/0 matches every address
	}
	n := p.Bits() / 8
	if p.Bits()%8 != 0 {
		n = 4
	}
	a := p.Addr().As4()
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(n)}}
	if p.Bits()%8 != 0 {
		mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
	}
	return append(e, &expr.Cmp{Op: op, Register: 1, Data: a[:n]})
}

// port matches a transport header port, one value or a range.
func port(offset uint32, from, to int) []expr.Any {
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2}}
	if from == to {
		return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(from))})
	}
	return append(e,
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(from))},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(to))})
}

func payload(base expr.PayloadBase, offset uint32, want []byte, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: uint32(len(want))},
		&expr.Cmp{Op: op, Register: 1, Data: want},
	}
}

// payloadBits matches a header field having any of the bits of mask.
func payloadBits(base expr.PayloadBase, offset uint32, mask []byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: uint32(len(mask))},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, len(mask))},
	}
}

// ctBits matches conntrack state or status having any of bits.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// markSet matches packets whose mark has every bit of bits.
func markSet(bits uint32) []expr.Any {
	b := binaryutil.NativeEndian.PutUint32(bits)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: b, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// markOr adds bits to the packet's mark, keeping its others.
func markOr(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^bits), Xor: binaryutil.NativeEndian.PutUint32(bits)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}
}

func verdict(kind expr.VerdictKind, chain ...string) []expr.Any {
	v := &expr.Verdict{Kind: kind}
	if len(chain) > 0 {
		v.Chain = chain[0]
	}
	return []expr.Any{v}
}

// dnat rewrites the destination to to (and its port, when not 0).
func dnat(to netip.AddrPort) []expr.Any {
	a := to.Addr().As4()
	e := []expr.Any{&expr.Immediate{Register: 1, Data: a[:]}}
	n := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
	if to.Port() != 0 {
		e = append(e, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(to.Port())})
		n.RegProtoMin, n.Specified = 2, true
	}
	return append(e, n)
}

// snat rewrites the source to to.
func snat(to netip.Addr) []expr.Any {
	a := to.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	}
}
