package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// KindVXLAN is the kind netlink reports for a VXLAN device.
const KindVXLAN = "vxlan"

// VXLANPort is the UDP port VXLAN is carried on (IANA's, RFC 7348).
const VXLANPort = 4789

// VXLANOverhead is what VXLAN over IPv4 adds to each frame: outer IPv4
// (20), UDP (8), VXLAN (8) and the inner Ethernet header (14). A segment
// carried over VXLAN has an MTU this much below its underlay's.
const VXLANOverhead = 50

// MaxVNI is the largest VXLAN network identifier (24 bits).
const MaxVNI = 1<<24 - 1

// VXLANName is the name of the VXLAN device carrying vni ("euca-vx1"; at
// most 15 characters for every 24-bit VNI).
func VXLANName(vni int) string { return fmt.Sprintf("%svx%d", Prefix, vni) }

// CheckVNI reports whether vni is a usable VXLAN network identifier.
func CheckVNI(vni int) error {
	if vni < 1 || vni > MaxVNI {
		return fmt.Errorf("VNI %d outside 1-%d", vni, MaxVNI)
	}
	return nil
}

// VXLAN is one VXLAN device as the cloud wants it.
type VXLAN struct {
	Name string
	VNI  int
	// Local is the underlay address the tunnel is sent from (and the one
	// its peers send to); invalid: the kernel picks by route.
	Local netip.Addr
	// Dev is the underlay interface's index (VNET_PRIVINTERFACE); 0: none.
	Dev int
	// MTU is the device's MTU: the underlay's less VXLANOverhead.
	MTU int
}

// Underlay is the host's side of the network that carries the VXLAN
// tunnels: the interface and address traffic towards a peer leaves by.
type Underlay struct {
	Dev   int // interface index
	Name  string
	MTU   int
	Local netip.Addr
}

// FindUnderlay works out the underlay: the interface dev when one is
// named (VNET_PRIVINTERFACE), and the address local when it is valid
// (VNET_LOCALIP); what is not named comes from the route towards peer
// (the kernel's choice of interface and source address).
func FindUnderlay(dev string, local, peer netip.Addr) (Underlay, error) {
	var u Underlay
	if dev != "" {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return u, fmt.Errorf("underlay interface %s: %w", dev, err)
		}
		u.Dev, u.Name, u.MTU = l.Attrs().Index, dev, l.Attrs().MTU
	}
	u.Local = local
	if u.Dev != 0 && u.Local.IsValid() {
		return u, nil
	}
	if !peer.Is4() {
		return u, fmt.Errorf("underlay: no interface or address given, and no IPv4 peer (%v) to find a route to", peer)
	}
	rs, err := netlink.RouteGet(peer.AsSlice())
	if err != nil || len(rs) == 0 {
		return u, fmt.Errorf("underlay: no route to %s: %v", peer, err)
	}
	if u.Dev == 0 {
		l, err := netlink.LinkByIndex(rs[0].LinkIndex)
		if err != nil {
			return u, fmt.Errorf("underlay: interface of the route to %s: %w", peer, err)
		}
		u.Dev, u.Name, u.MTU = l.Attrs().Index, l.Attrs().Name, l.Attrs().MTU
	}
	if !u.Local.IsValid() {
		src, ok := netip.AddrFromSlice(rs[0].Src)
		if !ok || !src.Unmap().Is4() {
			return u, fmt.Errorf("underlay: the route to %s has no IPv4 source address", peer)
		}
		u.Local = src.Unmap()
	}
	return u, nil
}

// EnsureVXLAN makes the device v describes (remaking one of ours that
// differs: another VNI, local address, underlay or port), attaches it to
// master and brings it up. Unknown destinations are sent to every
// peer SetFDB names (head-end replication: no multicast needed); the
// device learns where each remote MAC is from what arrives.
func EnsureVXLAN(v VXLAN, master netlink.Link) error {
	if err := CheckName(v.Name); err != nil {
		return err
	}
	if err := CheckVNI(v.VNI); err != nil {
		return err
	}
	l, err := netlink.LinkByName(v.Name)
	switch {
	case err == nil:
		cur, ok := l.(*netlink.Vxlan)
		if !ok {
			return fmt.Errorf("%s exists and is a %s, not a VXLAN", v.Name, l.Type())
		}
		if vxlanMatches(cur, v) {
			if v.MTU > 0 && cur.MTU != v.MTU {
				if err := netlink.LinkSetMTU(l, v.MTU); err != nil {
					return fmt.Errorf("%s mtu %d: %w", v.Name, v.MTU, err)
				}
			}
			return attachUp(l, master)
		}
		if err := Delete(v.Name); err != nil {
			return err
		}
	case !isNotFound(err):
		return fmt.Errorf("VXLAN %s: %w", v.Name, err)
	}
	if err := netlink.LinkAdd(vxlanLink(v)); err != nil {
		return fmt.Errorf("add VXLAN %s (VNI %d): %w", v.Name, v.VNI, err)
	}
	if l, err = netlink.LinkByName(v.Name); err != nil {
		return err
	}
	return attachUp(l, master)
}

func vxlanLink(v VXLAN) *netlink.Vxlan {
	x := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: v.Name, MTU: v.MTU},
		VxlanId:      v.VNI,
		VtepDevIndex: v.Dev,
		Port:         VXLANPort,
		Learning:     true,
	}
	if v.Local.Is4() {
		x.SrcAddr = net.IP(v.Local.AsSlice())
	}
	return x
}

func vxlanMatches(cur *netlink.Vxlan, v VXLAN) bool {
	if cur.VxlanId != v.VNI || cur.Port != VXLANPort || cur.VtepDevIndex != v.Dev {
		return false
	}
	have, _ := netip.AddrFromSlice(cur.SrcAddr)
	return have.Unmap() == v.Local || (!v.Local.IsValid() && (cur.SrcAddr == nil || cur.SrcAddr.IsUnspecified()))
}

// zeroMAC is the FDB's "every unknown destination" entry.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// FDB returns the peers the VXLAN device name floods to: the destinations
// of its all-zero FDB entries.
func FDB(name string) ([]netip.Addr, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("VXLAN %s: %w", name, err)
	}
	entries, err := floodEntries(l)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, n := range entries {
		if a, ok := netip.AddrFromSlice(n.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

func floodEntries(l netlink.Link) ([]netlink.Neigh, error) {
	all, err := netlink.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return nil, fmt.Errorf("FDB of %s: %w", l.Attrs().Name, err)
	}
	var out []netlink.Neigh
	for _, n := range all {
		if n.HardwareAddr.String() == zeroMAC.String() && n.IP != nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// SetFDB makes the all-zero FDB entries of the VXLAN device name exactly
// one per peer: broadcast, multicast and unknown unicast (ARP, DHCP) reach
// every peer, and a peer no longer wanted stops getting them.
func SetFDB(name string, peers []netip.Addr) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("VXLAN %s: %w", name, err)
	}
	have, err := floodEntries(l)
	if err != nil {
		return err
	}
	present := map[netip.Addr]bool{}
	var errs []error
	for _, n := range have {
		a, _ := netip.AddrFromSlice(n.IP)
		a = a.Unmap()
		present[a] = true
		if slices.Contains(peers, a) {
			continue
		}
		if err := netlink.NeighDel(fdbEntry(l, a)); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("FDB of %s: remove %s: %w", name, a, err))
		}
	}
	for _, p := range peers {
		if !p.Is4() {
			errs = append(errs, fmt.Errorf("FDB of %s: peer %v is not IPv4", name, p))
			continue
		}
		if present[p] {
			continue
		}
		if err := netlink.NeighAppend(fdbEntry(l, p)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("FDB of %s: add %s: %w", name, p, err))
		}
	}
	return errors.Join(errs...)
}

func fdbEntry(l netlink.Link, dst netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		State:        netlink.NUD_PERMANENT,
		Flags:        netlink.NTF_SELF,
		IP:           net.IP(dst.AsSlice()),
		HardwareAddr: zeroMAC,
	}
}
