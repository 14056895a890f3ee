package nft

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// PortsTableName is the table of a node's guest ports, in the bridge
// family: anti-spoofing, in every network mode.
//
// A guest may send only frames from its own MAC; IPv4 only from its own
// address, or from 0.0.0.0 to a DHCP server (udp 68 to 67: DISCOVER and
// REQUEST before it has an address), never as a DHCP server (udp from
// port 67) nor as another DHCP client (a message naming another hardware
// address, or in fragments); ARP only for IPv4 over Ethernet, with
// its own MAC as sender and its own address (or 0.0.0.0: a probe) as the
// sender address. Everything else it sends drops: IPv6 (instances have no
// IPv6 addresses the cloud could vouch for), VLAN tags (which would carry
// a frame past these matches) and other protocols. A port without an
// address yet (SYSTEM mode, before the node learned the lease) may send
// DHCP and ARP probes only.
//
// The bridge family has no connection tracking here (nf_conntrack_bridge
// is not in this kernel), and needs none: these checks are of each frame
// alone. They run at the bridge's prerouting hook (priority -200), before
// br_netfilter hands bridged IPv4 to the inet hooks, so the security
// groups (the inet tables), the metadata service and the DHCP server all
// see only sources that are true.
const PortsTableName = "euca"

// PortsMetadataMark is the bit of the packet mark a guest's own request
// to the metadata service (169.254.169.254, TCP 80, from its address)
// leaves the port table with. The mark is the skb's, so it reaches the
// inet hooks br_netfilter runs next, where a node's redirect to its own
// metadata relay (STATIC, SYSTEM: Spec.MetadataMark) matches it: the port
// is the one thing that tells a guest of this node from a LAN host
// crossing the same bridge with a source address of its choosing. The
// mark's other bits are kept.
const PortsMetadataMark uint32 = 0x00e0ca00

// Bridge-family chain names.
const ChainPorts = "ports"

// PortChain names a guest port's chain.
func PortChain(id string) string { return "port-" + id }

// Port is one guest's NIC as a bridge port.
type Port struct {
	ID   string           // the instance id
	Name string           // the bridge port (the tap) the guest's frames enter by
	MAC  net.HardwareAddr // the guest's MAC
	Addr netip.Addr       // the guest's IPv4 address; invalid: none yet
}

// Ethernet types and ARP's fixed header for IPv4 over Ethernet (htype 1,
// ptype 0x0800, hlen 6, plen 4).
var (
	etherARP  = []byte{0x08, 0x06}
	etherIPv4 = []byte{0x08, 0x00}
	arpIPv4   = []byte{0x00, 0x01, 0x08, 0x00, 0x06, 0x04}
	zero4     = []byte{0, 0, 0, 0}
)

// Where a DHCP message's client hardware address (chaddr) is: after the
// UDP header, at offset 28 of the BOOTP header.
const (
	udpHeaderLen     = 8
	dhcpChaddrOffset = 28
)

// BuildPorts makes the bridge table of ports. Equal lists give identical
// rulesets whatever their order.
func BuildPorts(ports []Port) (*Ruleset, error) {
	t := &nftables.Table{Family: nftables.TableFamilyBridge, Name: PortsTableName}
	rs := &Ruleset{Table: t}
	base := &nftables.Chain{Name: ChainPorts, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityConntrack, Policy: &policyAccept}
	rs.Chains = append(rs.Chains, base)
	ps := slices.Clone(ports)
	slices.SortFunc(ps, func(a, b Port) int { return strings.Compare(a.Name, b.Name) })
	for i, p := range ps {
		if p.ID == "" || p.Name == "" || len(p.Name) >= unix.IFNAMSIZ {
			return nil, fmt.Errorf("nft: port %q of %q: not an instance's interface", p.Name, p.ID)
		}
		if len(p.MAC) != 6 {
			return nil, fmt.Errorf("nft: port %s of %s: MAC %q is not an Ethernet address", p.Name, p.ID, p.MAC)
		}
		if p.Addr.IsValid() && (!p.Addr.Is4() || p.Addr.IsUnspecified()) {
			return nil, fmt.Errorf("nft: port %s of %s: address %v is not an IPv4 host address", p.Name, p.ID, p.Addr)
		}
		if i > 0 && ps[i-1].Name == p.Name {
			return nil, fmt.Errorf("nft: instances %s and %s share port %s", ps[i-1].ID, p.ID, p.Name)
		}
		c := &nftables.Chain{Name: PortChain(p.ID), Table: t}
		rs.Chains = append(rs.Chains, c)
		rs.portRules(c, p)
		rs.add(base, fmt.Sprintf("from %s %s", p.ID, p.Name),
			concat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, p.Name), verdict(expr.VerdictJump, c.Name)))
	}
	return rs, nil
}

// portRules fills a port's chain; every frame leaves it accepted or
// dropped.
func (rs *Ruleset) portRules(c *nftables.Chain, p Port) {
	mac := []byte(p.MAC)
	rs.add(c, "not from "+p.MAC.String(),
		concat(payload(expr.PayloadBaseLLHeader, 6, mac, expr.CmpOpNeq), verdict(expr.VerdictDrop)))
	arpFrom := func(spa []byte) []expr.Any {
		return concat(payload(expr.PayloadBaseLLHeader, 12, etherARP, expr.CmpOpEq),
			payload(expr.PayloadBaseNetworkHeader, 0, arpIPv4, expr.CmpOpEq),
			payload(expr.PayloadBaseNetworkHeader, 8, mac, expr.CmpOpEq),
			payload(expr.PayloadBaseNetworkHeader, 14, spa, expr.CmpOpEq),
			verdict(expr.VerdictAccept))
	}
	ipv4From := func(src []byte) []expr.Any {
		return concat(payload(expr.PayloadBaseLLHeader, 12, etherIPv4, expr.CmpOpEq),
			payload(expr.PayloadBaseNetworkHeader, 12, src, expr.CmpOpEq))
	}
	// No guest answers DHCP: a forged answer to another guest would
	// have that guest's node learn an address of the forger's choosing
	// (SYSTEM), and mislead the guest itself.
	rs.add(c, "no dhcp answers", concat(payload(expr.PayloadBaseLLHeader, 12, etherIPv4, expr.CmpOpEq),
		payload(expr.PayloadBaseNetworkHeader, 9, []byte{unix.IPPROTO_UDP}, expr.CmpOpEq),
		port(0, 67, 67), verdict(expr.VerdictDrop)))
	// A guest speaks DHCP for itself only: a message to a server naming
	// another client's hardware address (a release forged on its behalf,
	// which frees its address for the forger to lease; a request in its
	// name) drops, and so does a first fragment to a server, whose client
	// address a later fragment could carry past this check. (The client
	// identifier option, which a server may prefer, sits at no fixed
	// offset: the node's learner refuses an address another instance
	// holds instead.)
	toServer := concat(payload(expr.PayloadBaseLLHeader, 12, etherIPv4, expr.CmpOpEq),
		payload(expr.PayloadBaseNetworkHeader, 9, []byte{unix.IPPROTO_UDP}, expr.CmpOpEq),
		port(offDport, 67, 67))
	rs.add(c, "dhcp as another client", concat(toServer,
		payload(expr.PayloadBaseTransportHeader, udpHeaderLen+dhcpChaddrOffset, mac, expr.CmpOpNeq), verdict(expr.VerdictDrop)))
	rs.add(c, "dhcp in fragments", concat(toServer,
		payloadBits(expr.PayloadBaseNetworkHeader, 6, []byte{0x20, 0x00}), verdict(expr.VerdictDrop)))
	if p.Addr.IsValid() {
		a := p.Addr.As4()
		rs.add(c, "arp as "+p.Addr.String(), arpFrom(a[:]))
		rs.add(c, "metadata from "+p.Addr.String(), concat(ipv4From(a[:]),
			payload(expr.PayloadBaseNetworkHeader, 16, MetadataAddr.AsSlice(), expr.CmpOpEq),
			payload(expr.PayloadBaseNetworkHeader, 9, []byte{unix.IPPROTO_TCP}, expr.CmpOpEq),
			port(offDport, 80, 80), markOr(PortsMetadataMark), verdict(expr.VerdictAccept)))
		rs.add(c, "ipv4 from "+p.Addr.String(), concat(ipv4From(a[:]), verdict(expr.VerdictAccept)))
	}
	rs.add(c, "arp probe", arpFrom(zero4))
	rs.add(c, "dhcp from 0.0.0.0", concat(ipv4From(zero4),
		payload(expr.PayloadBaseNetworkHeader, 9, []byte{unix.IPPROTO_UDP}, expr.CmpOpEq),
		port(0, 68, 68), port(offDport, 67, 67), verdict(expr.VerdictAccept)))
	rs.add(c, "nothing else", verdict(expr.VerdictDrop))
}

// SyncPorts builds the bridge table of ports and applies it to this
// network namespace's kernel, reporting whether it changed. No ports
// removes the table.
func SyncPorts(ports []Port) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	if len(ports) == 0 {
		had, err := exists(c, nftables.TableFamilyBridge, PortsTableName)
		if err != nil || !had {
			return false, err
		}
		return true, removeTable(c, nftables.TableFamilyBridge, PortsTableName)
	}
	rs, err := BuildPorts(ports)
	if err != nil {
		return false, err
	}
	return Apply(c, rs)
}

// RemovePorts deletes the bridge table of ports; a missing one is not an
// error.
func RemovePorts(c *nftables.Conn) error {
	return removeTable(c, nftables.TableFamilyBridge, PortsTableName)
}
