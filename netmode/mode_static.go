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

// static is STATIC mode: instances sit on the operator's bridge
// (VNET_BRIDGE, which must exist, with an address of the host on it; on a
// front-end without guests VNET_INTERFACE, its port towards the nodes) and
// take the VNET_MACMAP pair the CC gave them from this host's DHCP server,
// with VNET_ROUTER as their router. The metadata redirect (with the guard
// that keeps this bridge, the LAN itself here, from the host's loopback) is
// the only rule: no NAT, no elastic IPs, no filtering (Eucalyptus's STATIC
// had none). LAN hosts reach the metadata service through the redirect as
// instances do; it answers running instances' addresses only. It serves
// the guests whose router is this host, or that share its bridge (one
// host); each node on a host of its own redirects its own guests to its
// own relay instead (netmode/nodenet), since their router is the LAN's.
type static struct {
	cfg   Config
	log   *slog.Logger
	iface string // VNET_BRIDGE, else VNET_INTERFACE: where DHCP and the redirect are

	mu   sync.Mutex
	dhcp dhcpServers
}

func newStatic(cfg Config, log *slog.Logger) (Mode, error) {
	// The 1.5 documentation's front-end block names only VNET_INTERFACE,
	// the port towards the nodes: a front-end with no guests of its own
	// serves DHCP and the metadata redirect on that port. The nodes put
	// their guests on their own VNET_BRIDGE.
	iface := cfg.Bridge
	if iface == "" {
		iface = cfg.PrivInterface
	}
	if iface == "" {
		return nil, fmt.Errorf("STATIC needs VNET_BRIDGE (the bridge on the instances' network) or VNET_INTERFACE (the front-end's port towards the nodes)")
	}
	if err := link.CheckName(iface); err != nil {
		return nil, fmt.Errorf("VNET_BRIDGE or VNET_INTERFACE: %w", err)
	}
	if len(cfg.MACMap) == 0 {
		return nil, fmt.Errorf("STATIC needs VNET_MACMAP: the MAC=IP pairs instances take")
	}
	if !cfg.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("STATIC: VNET_SUBNET/VNET_NETMASK %v is not IPv4", cfg.Subnet)
	}
	cfg.Subnet = cfg.Subnet.Masked()
	s := &static{cfg: cfg, log: log, iface: iface}
	s.dhcp.log = log
	return s, nil
}

func (s *static) Name() string           { return Static }
func (s *static) Segments() int          { return 0 }
func (s *static) VNI(int) int            { return 0 }
func (s *static) Gateway(int) netip.Addr { return netip.Addr{} }
func (s *static) Bridge(int) string      { return s.cfg.Bridge }

// Allocate gives the first VNET_MACMAP pair not in use.
func (s *static) Allocate(used []netip.Addr, _ int) (Address, error) {
	p, err := ipam.NextPair(s.cfg.MACMap, used)
	if err != nil {
		return Address{}, err
	}
	return Address{MAC: p.MAC, PrivateIP: p.IP}, nil
}

func (s *static) Set(ctx context.Context, st State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkInstances(st.Instances, true); err != nil {
		return fmt.Errorf("STATIC: %w", err)
	}
	for _, in := range st.Instances {
		if !s.cfg.Subnet.Contains(in.PrivateIP) {
			return fmt.Errorf("STATIC: instance %s: %s outside %s", in.ID, in.PrivateIP, s.cfg.Subnet)
		}
	}
	br, err := netlink.LinkByName(s.iface)
	if err != nil {
		return fmt.Errorf("STATIC: VNET_BRIDGE or VNET_INTERFACE %s: %w", s.iface, err)
	}
	if br.Type() != link.KindBridge && slices.ContainsFunc(st.Instances, func(in Instance) bool { return in.Tap != "" }) {
		return fmt.Errorf("STATIC: %s is a %s: instances' taps need a bridge (VNET_BRIDGE)", s.iface, br.Type())
	}
	server, err := firstAddr(br, s.cfg.Subnet)
	if err != nil {
		return fmt.Errorf("STATIC: %w", err)
	}
	var errs []error
	errs = append(errs, syncTaps(st.Instances, func(Instance) (netlink.Link, error) { return br, nil }, s.log))
	if st.Metadata.IsValid() {
		// The guard first: route_localnet without it would open the
		// host's loopback to the interface.
		if err := applyRules(nft.Spec{Bridges: []string{s.iface}, Subnet: s.cfg.Subnet, Metadata: st.Metadata}, s.log); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, allowLoopbackTarget(st.Metadata, []string{s.iface}, false))
		}
	} else {
		// Only the controller's own: a node on this host filters its
		// guests in its table (package nodenet).
		errs = append(errs, removeTables(nft.TableName))
	}
	w := dhcpWant{ifindex: br.Attrs().Index,
		cfg: dhcp.Config{ServerIP: server, Subnet: s.cfg.Subnet, Broadcast: s.cfg.Broadcast, Router: s.cfg.Router, DNS: s.cfg.DNS, LeaseTime: s.cfg.LeaseTime}}
	if len(w.cfg.DNS) == 0 && s.cfg.Router.IsValid() {
		w.cfg.DNS = []netip.Addr{s.cfg.Router}
	}
	for _, in := range st.Instances {
		w.leases = append(w.leases, dhcp.Lease{MAC: in.MAC, IP: in.PrivateIP})
	}
	errs = append(errs, s.dhcp.set(map[string]dhcpWant{s.iface: w}))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("STATIC: %w", err)
	}
	return nil
}

func (s *static) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := errors.Join(s.dhcp.close(), removeRules(), removeTaps()); err != nil {
		return fmt.Errorf("STATIC close: %w", err)
	}
	return nil
}
