// Package ipam allocates the private side of a cluster's network: instance
// addresses from the private subnet, the per-security-group segments MANAGED
// mode carves out of it, and the instances' MAC addresses. It is pure: the
// caller passes in what is already allocated (the store is the source of
// truth), and the same inputs always give the same answer.
package ipam

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/euca-cloud/euca/internal/conf"
)

// ErrExhausted is returned when no address, segment or MAC/IP pair is left.
var ErrExhausted = errors.New("address space exhausted")

// MACPrefix is the first two bytes of every MAC address the cloud makes, as
// Eucalyptus's D0:0D.
var MACPrefix = [2]byte{0xd0, 0x0d}

// Gateway is the network's first usable address: the one the host takes on
// the network's bridge and DHCP hands out as the router.
func Gateway(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}

// Broadcast is the network's last address.
func Broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	return netip.AddrFrom4(fromUint(toUint(a) | host))
}

// Next returns the lowest address of p that is neither the network address,
// the gateway (Gateway(p)), the broadcast address, one of reserved nor in
// used. It walks the network in order, so the answer depends only on the
// inputs.
func Next(p netip.Prefix, used []netip.Addr, reserved ...netip.Addr) (netip.Addr, error) {
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, fmt.Errorf("%s: not an IPv4 network with room for hosts", p)
	}
	taken := make(map[netip.Addr]bool, len(used)+len(reserved)+3)
	for _, a := range used {
		taken[a] = true
	}
	for _, a := range reserved {
		taken[a] = true
	}
	taken[Gateway(p)] = true
	last := Broadcast(p)
	for a := p.Addr().Next(); a.IsValid() && a.Less(last); a = a.Next() {
		if !taken[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s: %w", p, ErrExhausted)
}

// Segments is the number of addrsPerNet-sized networks MANAGED mode carves
// out of p (one per security group).
func Segments(p netip.Prefix, addrsPerNet int) int {
	bits, ok := segmentBits(addrsPerNet)
	if !ok || bits > 32-p.Bits() {
		return 0
	}
	return 1 << (32 - p.Bits() - bits)
}

// Segment returns the i-th addrsPerNet-sized network of p.
func Segment(p netip.Prefix, addrsPerNet, i int) (netip.Prefix, error) {
	n := Segments(p, addrsPerNet)
	if n == 0 {
		return netip.Prefix{}, fmt.Errorf("%s cannot be cut into networks of %d addresses", p, addrsPerNet)
	}
	if i < 0 || i >= n {
		return netip.Prefix{}, fmt.Errorf("segment %d: %s holds %d networks of %d addresses", i, p, n, addrsPerNet)
	}
	bits, _ := segmentBits(addrsPerNet)
	base := toUint(p.Masked().Addr().As4()) + uint32(i)<<bits
	return netip.PrefixFrom(netip.AddrFrom4(fromUint(base)), 32-bits), nil
}

// MaxSegments is the most segments MANAGED mode uses: segment i is carried
// as VLAN i+2 (Eucalyptus's first network was VLAN 2), and 802.1Q ids stop
// at 4094.
const MaxSegments = 4093

// SegmentsIn is the run of p's addrsPerNet-sized segments (first, and how
// many) that lie wholly inside part, a slice of p (a zone's share of the
// private space), at most MaxSegments in all: count is 0 when none does.
func SegmentsIn(p netip.Prefix, addrsPerNet int, part netip.Prefix) (first, count int) {
	p, part = p.Masked(), part.Masked()
	n := min(Segments(p, addrsPerNet), MaxSegments)
	if n == 0 || !part.Addr().Is4() || part.Bits() < p.Bits() || !p.Contains(part.Addr()) {
		return 0, 0
	}
	lo := toUint(part.Addr().As4()) - toUint(p.Addr().As4())
	hi := lo + uint32(1)<<(32-part.Bits()) // one past part's last address, relative to p
	per := uint32(addrsPerNet)
	first, end := int((lo+per-1)/per), min(int(hi/per), n)
	if part.Bits() == 0 { // the whole IPv4 space: hi wrapped
		end = n
	}
	if end <= first {
		return 0, 0
	}
	return first, end - first
}

// segmentBits is log2(addrsPerNet) for a power of two of at least 4.
func segmentBits(addrsPerNet int) (int, bool) {
	if addrsPerNet < 4 || addrsPerNet&(addrsPerNet-1) != 0 {
		return 0, false
	}
	bits := 0
	for 1<<bits < addrsPerNet {
		bits++
	}
	return bits, bits <= 32
}

// MAC is the MAC address of the instance with private address ip:
// d0:0d followed by the address's four bytes, as Eucalyptus's ipdot2macdot.
// (Eucalyptus's other scheme, instId2mac, took the eight hex digits of an
// "i-XXXXXXXX" id; today's ids have 17 digits, so the address is what is
// unique.) Two instances never share a private address, so never a MAC.
func MAC(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{MACPrefix[0], MACPrefix[1], a[0], a[1], a[2], a[3]}
}

// AddrOfMAC is the private address a MAC made by MAC stands for (the
// inverse of MAC); ok is false for a MAC of another scheme.
func AddrOfMAC(m net.HardwareAddr) (ip netip.Addr, ok bool) {
	if len(m) != 6 || m[0] != MACPrefix[0] || m[1] != MACPrefix[1] {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{m[2], m[3], m[4], m[5]}), true
}

// SystemMACPrefix is the first byte of SYSTEM mode's MACs: D0 (the
// cloud's) with the locally-administered bit set, since on the operator's
// LAN a made-up MAC must not pass for a vendor's (unicast: bit 0 clear).
const SystemMACPrefix = 0xd2

// RandomMAC is a locally administered unicast MAC address, SystemMACPrefix
// followed by five random bytes, for SYSTEM mode, where the outside DHCP
// server chooses the address and there is none to derive the MAC from.
// It is not in used (the MACs of the zone's live instances); 40 random
// bits make a clash rare enough that drawing again is all it costs.
func RandomMAC(used ...string) net.HardwareAddr {
	for {
		m := net.HardwareAddr{SystemMACPrefix, 0, 0, 0, 0, 0}
		_, _ = rand.Read(m[1:])
		if !slices.ContainsFunc(used, func(u string) bool { return strings.EqualFold(u, m.String()) }) {
			return m
		}
	}
}

// NextPair returns the first VNET_MACMAP pair whose address is not in used
// (STATIC mode: the operator fixed the pairs).
func NextPair(pairs []conf.MACIP, used []netip.Addr) (conf.MACIP, error) {
	for _, p := range pairs {
		if !slices.Contains(used, p.IP) {
			return p, nil
		}
	}
	return conf.MACIP{}, fmt.Errorf("all %d VNET_MACMAP pairs in use: %w", len(pairs), ErrExhausted)
}

func toUint(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

func fromUint(u uint32) [4]byte {
	return [4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
}
