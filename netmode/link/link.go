// Package link makes and removes the network devices the cloud owns, over
// netlink (github.com/vishvananda/netlink; never the ip binary): the
// cluster's bridges, the instances' taps, MANAGED mode's VLAN devices, and
// the addresses on them. Everything it creates is named with the project's
// prefix "euca-" so that a later run, or a cleanup after a crash, can find it
// by name. Each function acts in the network namespace of the calling
// thread, which is how the tests run it inside fresh namespaces.
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every device the cloud makes.
const Prefix = "euca-"

// MaxName is the longest Linux interface name (IFNAMSIZ-1).
const MaxName = 15

// Link kinds, as netlink reports them in Type().
const (
	KindBridge = "bridge"
	KindTap    = "tuntap"
	KindVLAN   = "vlan"
)

// ErrNoVLAN is returned when the kernel has no 802.1Q support.
var ErrNoVLAN = errors.New("this kernel has no 802.1Q VLAN support")

// CheckName reports whether name can name a network interface.
func CheckName(name string) error {
	if name == "" || len(name) > MaxName || strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
		return fmt.Errorf("%q is not a network interface name (1 to %d characters, no '/', ':' or spaces)", name, MaxName)
	}
	return nil
}

// Owned reports whether name carries the project's prefix.
func Owned(name string) bool { return strings.HasPrefix(name, Prefix) }

// TapName is the tap device of an instance: the prefix and the first ten
// characters of the id after "i-" ("i-0a1b2c3d4e5f60718" → "euca-0a1b2c3d4e"),
// 15 characters, unique as long as ids differ in their first ten digits
// (random ids: one chance in 2^40).
func TapName(instanceID string) string { return instanceLink(Prefix, instanceID) }

// instanceLink is prefix and as much of the id after "i-" as fits.
func instanceLink(prefix, instanceID string) string {
	id := strings.TrimPrefix(instanceID, "i-")
	if len(id) > MaxName-len(prefix) {
		id = id[:MaxName-len(prefix)]
	}
	return prefix + id
}

// PortPrefix starts the name of the tap a hypervisor makes for a guest's
// NIC on a node (PortName). Not Prefix: the network modes remove the
// project's taps that no instance of theirs wants, and these are the
// hypervisor's to make and remove.
const PortPrefix = "euvm-"

// PortName is the tap the hypervisor makes for instance's NIC: the node
// knows which guest a port is by its name (anti-spoofing and filtering
// per port). PortPrefix and ten characters of the id, as TapName.
func PortName(instanceID string) string { return instanceLink(PortPrefix, instanceID) }

// TapMAC is the host side's MAC for a guest's tap: the guest's with the
// first byte set to 0xfe, as libvirt does, so that the bridge never takes a
// guest's address as its own and never forwards the guest's frames to itself.
func TapMAC(guest net.HardwareAddr) net.HardwareAddr {
	if len(guest) != 6 {
		return nil
	}
	m := append(net.HardwareAddr(nil), guest...)
	m[0] = 0xfe
	return m
}

// BridgeMAC is the fixed MAC given to a bridge the cloud makes, derived from
// its gateway address (locally administered, 02:0d:...), so that it does not
// change as taps come and go: a bridge otherwise takes the lowest MAC among
// its ports, and every change would make instances' ARP caches stale.
func BridgeMAC(gateway netip.Addr) net.HardwareAddr {
	if !gateway.Is4() {
		return nil
	}
	a := gateway.As4()
	return net.HardwareAddr{0x02, 0x0d, a[0], a[1], a[2], a[3]}
}

// VLANName is the name of the VLAN device carrying 802.1Q tag tag.
func VLANName(tag int) string { return fmt.Sprintf("%svl%d", Prefix, tag) }

// CheckVLAN reports whether tag is a usable 802.1Q VLAN id (1 is the
// default VLAN of most switches, 0 and 4095 are reserved).
func CheckVLAN(tag int) error {
	if tag < 2 || tag > 4094 {
		return fmt.Errorf("VLAN %d outside 2-4094", tag)
	}
	return nil
}

// EnsureBridge returns the bridge name, creating it with mac (when not nil)
// if it does not exist, and brings it up. An existing link of another kind
// is an error: it is not ours to change.
func EnsureBridge(name string, mac net.HardwareAddr) (netlink.Link, bool, error) {
	if err := CheckName(name); err != nil {
		return nil, false, err
	}
	l, err := netlink.LinkByName(name)
	created := false
	switch {
	case err == nil:
		if l.Type() != KindBridge {
			return nil, false, fmt.Errorf("%s exists and is a %s, not a bridge", name, l.Type())
		}
	case isNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}
		if err := netlink.LinkAdd(br); err != nil {
			return nil, false, fmt.Errorf("add bridge %s: %w", name, err)
		}
		created = true
		if l, err = netlink.LinkByName(name); err != nil {
			return nil, true, err
		}
	default:
		return nil, false, fmt.Errorf("bridge %s: %w", name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return l, created, fmt.Errorf("bridge %s up: %w", name, err)
		}
	}
	return l, created, nil
}

// Bridge returns the existing bridge name (an operator's VNET_BRIDGE).
func Bridge(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if l.Type() != KindBridge {
		return nil, fmt.Errorf("%s is a %s, not a bridge", name, l.Type())
	}
	return l, nil
}

// EnsureTap makes the persistent tap name (if missing), attaches it to
// master and brings it up. The hypervisor opens it later (libvirt's
// <interface type='ethernet'> with managed='no'); the tap takes the
// multi-queue setting and the vnet header from whoever opens it.
func EnsureTap(name string, master netlink.Link, mac net.HardwareAddr) error {
	if err := CheckName(name); err != nil {
		return err
	}
	l, err := netlink.LinkByName(name)
	switch {
	case err == nil:
		if l.Type() != KindTap {
			return fmt.Errorf("%s exists and is a %s, not a tap", name, l.Type())
		}
	case isNotFound(err):
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: name},
			Mode:      netlink.TUNTAP_MODE_TAP,
			Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR,
		}
		if err := netlink.LinkAdd(tap); err != nil {
			return fmt.Errorf("add tap %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return err
		}
		if mac != nil {
			if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
				return fmt.Errorf("tap %s mac: %w", name, err)
			}
		}
	default:
		return fmt.Errorf("tap %s: %w", name, err)
	}
	return attachUp(l, master)
}

// EnsureVLAN makes the VLAN device name carrying tag on parent (if missing),
// attaches it to master and brings it up. It returns ErrNoVLAN (wrapped)
// when the kernel has no 802.1Q.
func EnsureVLAN(name, parent string, tag int, master netlink.Link) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := CheckVLAN(tag); err != nil {
		return err
	}
	l, err := netlink.LinkByName(name)
	switch {
	case err == nil:
		v, ok := l.(*netlink.Vlan)
		if !ok {
			return fmt.Errorf("%s exists and is a %s, not a VLAN", name, l.Type())
		}
		if v.VlanId != tag {
			return fmt.Errorf("%s carries VLAN %d, not %d", name, v.VlanId, tag)
		}
	case isNotFound(err):
		p, err := netlink.LinkByName(parent)
		if err != nil {
			return fmt.Errorf("VLAN parent %s: %w", parent, err)
		}
		if err := netlink.LinkAdd(VLANLink(name, p.Attrs().Index, tag)); err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || strings.Contains(err.Error(), "not supported") {
				return fmt.Errorf("add %s: %w (%v)", name, ErrNoVLAN, err)
			}
			return fmt.Errorf("add VLAN %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return err
		}
	default:
		return fmt.Errorf("VLAN %s: %w", name, err)
	}
	return attachUp(l, master)
}

// VLANLink is the netlink description of an 802.1Q device.
func VLANLink(name string, parentIndex, tag int) *netlink.Vlan {
	return &netlink.Vlan{
		LinkAttrs:    netlink.LinkAttrs{Name: name, ParentIndex: parentIndex},
		VlanId:       tag,
		VlanProtocol: netlink.VLAN_PROTOCOL_8021Q,
	}
}

func attachUp(l, master netlink.Link) error {
	name := l.Attrs().Name
	if master != nil && l.Attrs().MasterIndex != master.Attrs().Index {
		if err := netlink.LinkSetMaster(l, master); err != nil {
			return fmt.Errorf("attach %s to %s: %w", name, master.Attrs().Name, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up: %w", name, err)
		}
	}
	return nil
}

// List returns the links of the given kind whose names carry the prefix.
func List(kind string) ([]netlink.Link, error) {
	all, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []netlink.Link
	for _, l := range all {
		if Owned(l.Attrs().Name) && l.Type() == kind {
			out = append(out, l)
		}
	}
	return out, nil
}

// Delete removes the link name; a missing one is not an error.
func Delete(name string) error {
	l, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Exists reports whether a link called name exists.
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// SetAddrs makes l's IPv4 addresses include want, and removes those that
// ours says belong to the cloud but are not wanted. Addresses ours does not
// claim (the operator's) are left alone.
func SetAddrs(l netlink.Link, want []netip.Prefix, ours func(netip.Prefix) bool) error {
	have, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	present := map[netip.Prefix]bool{}
	var errs []error
	for _, a := range have {
		p, ok := prefixOf(a.IPNet)
		if !ok {
			continue
		}
		present[p] = true
		if ours != nil && ours(p) && !containsPrefix(want, p) {
			if err := netlink.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove %s from %s: %w", p, l.Attrs().Name, err))
			}
		}
	}
	for _, p := range want {
		if present[p] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
		if err := netlink.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", p, l.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// Addrs returns l's IPv4 addresses.
func Addrs(l netlink.Link) ([]netip.Prefix, error) {
	have, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range have {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), a.Unmap().Is4()
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// DefaultRouteInterface is the name of the interface of the IPv4 default
// route with the lowest metric, or "" when there is none.
func DefaultRouteInterface() (string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("routes: %w", err)
	}
	best, bestPrio := 0, -1
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if r.LinkIndex != 0 && (bestPrio < 0 || r.Priority < bestPrio) {
			best, bestPrio = r.LinkIndex, r.Priority
		}
	}
	if best == 0 {
		return "", nil
	}
	l, err := netlink.LinkByIndex(best)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}

// WriteSysctl sets a /proc/sys file to value unless it already holds it,
// and reports whether it changed anything. /proc/sys/net is per network
// namespace: the calling thread's.
func WriteSysctl(path, value string) (bool, error) {
	cur, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(string(cur)) == value {
		return false, nil
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return err != nil && (errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT))
}
