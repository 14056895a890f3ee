// Package netmode is the cluster's network: it brings the host's kernel to
// the network the store describes, in one of Eucalyptus's four modes
// (VNET_MODE):
//
//   - MANAGED-NOVLAN (the default): one bridge (euca-br0, or VNET_BRIDGE)
//     carrying the whole private subnet, the host's gateway address on it,
//     a DHCP server handing each instance's MAC its fixed address, outbound
//     masquerade, elastic IPs as 1:1 NAT, the metadata redirect, and
//     isolation by filtering on the instances' security groups.
//   - MANAGED: the same, but each security group is its own segment (an
//     addrs-per-net slice of the subnet) on its own bridge, carried between
//     hosts by a VLAN on VNET_PRIVINTERFACE (or by VXLAN, below).
//
// Across hosts (State.Peers, the underlay addresses of the cluster's nodes
// on other hosts), each managed network's bridge also carries a VXLAN
// device (euca-vx<VNI>: VNI 1 for MANAGED-NOVLAN, a segment's VLAN tag in
// MANAGED) with one flood entry per peer: unicast VXLAN, no multicast and
// no VLAN-capable switch needed. The nodes join it with package nodenet;
// DHCP, the metadata redirect and NAT stay on this host for them all, and
// the DHCP server offers the tunnel's MTU (option 26: the underlay's less
// 50 bytes) so that guests do not send frames the tunnel would drop.
//   - STATIC: the operator's bridge (VNET_BRIDGE; on a front-end without
//     guests, VNET_INTERFACE) and DHCP of the VNET_MACMAP pairs, the
//     metadata redirect, no NAT.
//   - SYSTEM: the operator's bridge, random locally administered MACs, and
//     nothing on the cluster controller's side: an outside DHCP server
//     gives the addresses.
//
// In STATIC and SYSTEM no host of the cloud is on the guests' path (their
// router is the operator's), so each node filters its own guests by their
// security groups (package nodenet, Network.Filter), and learns SYSTEM
// guests' addresses from their DHCP (package guestport), which also holds
// every guest, in every mode, to its own MAC and address.
//
// A Mode reconciles: Set takes the whole desired State (every instance and
// security group), makes what is missing, changes what differs and removes
// what it made and no longer wants; Set with the same State twice changes
// nothing. Everything it makes carries the project's names (links "euca-…",
// the nftables table "euca"), so a restarted process adopts it and Close
// finds and removes all of it. Set acts in the network namespace of the
// calling thread (the tests run it inside fresh namespaces).
//
// The pieces are in subpackages: ipam (pure address allocation), link
// (netlink), nft (nftables rules) and dhcp (the DHCP server).
package netmode

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/netmode/ipam"
	"github.com/euca-cloud/euca/netmode/link"
	"golang.org/x/sys/unix"
)

// Mode names, as VNET_MODE spells them.
const (
	System        = "SYSTEM"
	Static        = "STATIC"
	Managed       = "MANAGED"
	ManagedNoVLAN = "MANAGED-NOVLAN"
)

// DefaultBridge is MANAGED-NOVLAN's bridge when VNET_BRIDGE is unset.
const DefaultBridge = "euca-br0"

// Mode is one network mode, reconciling the host with the desired state.
type Mode interface {
	// Name is the VNET_MODE value.
	Name() string
	// Set brings the kernel to st; harmless when repeated.
	Set(ctx context.Context, st State) error
	// Close removes everything the mode made (taps, bridges it owns,
	// addresses, the nftables table) and stops its DHCP servers.
	// ip_forward is left on: other software may rely on it.
	Close(ctx context.Context) error
	// Allocate picks a new instance's MAC and private address. used is
	// every private address the store holds; segment is the instance's
	// security group's segment (MANAGED only). In SYSTEM the address is
	// invalid: the outside DHCP server decides.
	Allocate(used []netip.Addr, segment int) (Address, error)
	// Bridge is the bridge the NIC of an instance in segment attaches to.
	Bridge(segment int) string
	// Segments is how many security-group segments the subnet holds
	// (MANAGED); 0 when groups share one network.
	Segments() int
	// VNI is the VXLAN network identifier carrying segment between hosts
	// (see State.Peers); 0 when the mode has no network of its own to
	// carry (SYSTEM, STATIC: the operator's bridge spans the hosts).
	VNI(segment int) int
	// Gateway is this host's address on segment's network (invalid when
	// the mode has none: SYSTEM, STATIC).
	Gateway(segment int) netip.Addr
}

// State is the whole desired network: what the store says now.
type State struct {
	// Metadata is the CLC's metadata listener; 169.254.169.254:80 from an
	// instance is DNATed there, keeping the instance's address as source.
	// The cloud's is on loopback, which nothing but that redirect reaches.
	// Invalid: no redirect.
	Metadata  netip.AddrPort
	Instances []Instance
	Groups    []Group
	// Peers are the underlay addresses of the cluster's nodes on other
	// hosts. With peers, each network's bridge also carries a VXLAN device
	// (VNI) towards them, one flood entry per peer, so instances on those
	// hosts share the network (DHCP, metadata, NAT, the gateway) with
	// this host's; and the DHCP server offers the tunnel's smaller MTU.
	// None: the network stays on this host, as a cluster on one host has it.
	Peers []netip.Addr
}

// Instance is one instance's network identity.
type Instance struct {
	ID        string
	MAC       net.HardwareAddr
	PrivateIP netip.Addr // invalid in SYSTEM mode
	PublicIP  netip.Addr // elastic IP; invalid: none
	Groups    []string   // security group ids; the first decides the MANAGED segment
	// Tap, when set, is a tap Set makes and attaches to the instance's
	// bridge for the hypervisor to open (link.TapName(ID) gives the
	// project's name); empty when the hypervisor makes its own port.
	Tap string
}

// Group is a security group's rules, both ways. A group without egress
// rules lets its members send nothing (the store gives a new group EC2's
// allow-all egress rule).
type Group struct {
	ID      string
	Segment int // MANAGED: the group's segment (ipam.Segment; the cloud controller assigns it)
	Ingress []Rule
	Egress  []Rule
}

// Rule is one permission, as the store keeps it.
type Rule struct {
	Protocol  string       // "-1", "tcp", "udp", "icmp", or an IP protocol number
	FromPort  int          // -1 when the protocol has no ports; ICMP: the type
	ToPort    int          // ICMP: the code
	CIDR      netip.Prefix // the source (ingress) or destination (egress); invalid for a peer-group rule
	PeerGroup string       // the source or destination: every instance of this group
}

// Address is what Allocate picks.
type Address struct {
	MAC       net.HardwareAddr
	PrivateIP netip.Addr
}

// Config is what a mode is built from: eucalyptus.conf's VNET_* keys with
// their defaults resolved.
type Config struct {
	Mode          string
	Bridge        string       // VNET_BRIDGE
	Subnet        netip.Prefix // VNET_SUBNET/VNET_NETMASK
	Router        netip.Addr   // VNET_ROUTER: STATIC's router
	Broadcast     netip.Addr   // VNET_BROADCAST: STATIC's broadcast address; invalid: the subnet's
	DNS           []netip.Addr // VNET_DNS, else the host's resolvers
	PubInterface  string       // VNET_PUBINTERFACE; "": the default route's, looked up at each Set
	PrivInterface string       // VNET_PRIVINTERFACE: the VXLAN underlay, MANAGED's VLAN parent; "": by route, no VLAN devices
	LocalIP       netip.Addr   // VNET_LOCALIP: this host's underlay address; invalid: by route
	AddrsPerNet   int          // VNET_ADDRSPERNET
	MACMap        []conf.MACIP // VNET_MACMAP
	PublicIPs     []netip.Addr // VNET_PUBLICIPS: the elastic-IP pool
	LeaseTime     time.Duration
}

// ResolvConf is where the host's resolvers are read from.
var ResolvConf = "/etc/resolv.conf"

// ConfigFrom reads a mode's configuration from the cloud's. Without
// VNET_DNS the instances get the host's resolvers, leaving out loopback
// ones they cannot reach (the modes fall back to the gateway).
func ConfigFrom(c *conf.Config) Config {
	cfg := Config{
		Mode:          c.VNetMode,
		Bridge:        c.VNetBridge,
		Subnet:        c.VNetSubnet,
		Router:        c.VNetRouter,
		Broadcast:     c.VNetBroadcast,
		DNS:           c.VNetDNS,
		PubInterface:  c.VNetPubInterface,
		PrivInterface: c.VNetPrivInterface,
		LocalIP:       c.VNetLocalIP,
		AddrsPerNet:   c.VNetAddrsPerNet,
		MACMap:        c.VNetMACMap,
		PublicIPs:     c.VNetPublicIPs,
	}
	if len(cfg.DNS) == 0 {
		cfg.DNS = hostResolvers(ResolvConf)
	}
	return cfg
}

// hostResolvers are the IPv4, non-loopback nameservers of a resolv.conf.
func hostResolvers(path string) []netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err == nil && a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

// modes is every mode this build has, by VNET_MODE.
var modes = map[string]func(Config, *slog.Logger) (Mode, error){
	System:        newSystem,
	Static:        newStatic,
	Managed:       newManaged,
	ManagedNoVLAN: newManaged,
}

// New builds the mode cfg.Mode names. It touches nothing: Set does.
func New(cfg Config, log *slog.Logger) (Mode, error) {
	if cfg.Mode == "" {
		cfg.Mode = ManagedNoVLAN
	}
	mk, ok := modes[cfg.Mode]
	if !ok {
		return nil, fmt.Errorf("VNET_MODE %q: not a network mode (SYSTEM, STATIC, MANAGED or MANAGED-NOVLAN)", cfg.Mode)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return mk(cfg, log.With("netmode", cfg.Mode))
}

// FromConf builds the mode eucalyptus.conf configures.
func FromConf(c *conf.Config, log *slog.Logger) (Mode, error) {
	return New(ConfigFrom(c), log)
}

// protocol turns a stored protocol into an IP protocol number (-1: all).
// ok is false for protocols the IPv4 rules cannot express (ICMPv6).
func protocol(p string) (n int, ok bool, err error) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return -1, true, nil
	case "tcp":
		return unix.IPPROTO_TCP, true, nil
	case "udp":
		return unix.IPPROTO_UDP, true, nil
	case "icmp":
		return unix.IPPROTO_ICMP, true, nil
	case "icmpv6", "58":
		return 0, false, nil
	}
	n, err = strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return 0, false, fmt.Errorf("protocol %q: not tcp, udp, icmp, -1 or 0-255", p)
	}
	return n, true, nil
}

// checkTap validates an instance's tap name: ours to make and remove.
func checkTap(in Instance) error {
	if in.Tap == "" {
		return nil
	}
	if err := link.CheckName(in.Tap); err != nil {
		return fmt.Errorf("instance %s: tap: %w", in.ID, err)
	}
	if !link.Owned(in.Tap) {
		return fmt.Errorf("instance %s: tap %q lacks the %q prefix", in.ID, in.Tap, link.Prefix)
	}
	return nil
}

// checkInstances validates what every mode needs: ids, MACs, taps, and no
// two instances sharing a MAC, address or tap.
func checkInstances(ins []Instance, needIP bool) error {
	macs, ips, taps := map[string]string{}, map[netip.Addr]string{}, map[string]string{}
	for _, in := range ins {
		if in.ID == "" {
			return fmt.Errorf("an instance without an id")
		}
		if len(in.MAC) != 6 {
			return fmt.Errorf("instance %s: MAC %q is not an Ethernet address", in.ID, in.MAC)
		}
		if other, dup := macs[in.MAC.String()]; dup {
			return fmt.Errorf("instances %s and %s share MAC %s", other, in.ID, in.MAC)
		}
		macs[in.MAC.String()] = in.ID
		if needIP {
			if !in.PrivateIP.Is4() {
				return fmt.Errorf("instance %s: private address %v is not IPv4", in.ID, in.PrivateIP)
			}
			if other, dup := ips[in.PrivateIP]; dup {
				return fmt.Errorf("instances %s and %s share %s", other, in.ID, in.PrivateIP)
			}
			ips[in.PrivateIP] = in.ID
		}
		if err := checkTap(in); err != nil {
			return err
		}
		if in.Tap != "" {
			if other, dup := taps[in.Tap]; dup {
				return fmt.Errorf("instances %s and %s share tap %s", other, in.ID, in.Tap)
			}
			taps[in.Tap] = in.ID
		}
	}
	return nil
}

// allocateFrom picks the lowest free address of p and its MAC.
func allocateFrom(p netip.Prefix, used []netip.Addr) (Address, error) {
	ip, err := ipam.Next(p, used)
	if err != nil {
		return Address{}, err
	}
	return Address{MAC: ipam.MAC(ip), PrivateIP: ip}, nil
}
