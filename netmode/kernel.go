package netmode

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/euca-cloud/euca/netmode/dhcp"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// Kernel settings the managed modes need. Both live in the calling
// thread's network namespace.
const (
	// ipForward lets the host route between the bridge and the outside.
	ipForward = "/proc/sys/net/ipv4/ip_forward"
	// bridgeNF makes bridged IPv4/IPv6 (instance to instance on one bridge)
	// pass the inet forward hook, where the security groups are enforced.
	bridgeNF4 = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	bridgeNF6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
)

// enableForwarding turns on routing and br_netfilter's hooks. Without
// br_netfilter (its sysctls absent) instances on one bridge would reach
// each other unfiltered, so that is an error.
func enableForwarding(log *slog.Logger) error {
	for _, p := range []string{ipForward, bridgeNF4, bridgeNF6} {
		changed, err := link.WriteSysctl(p, "1")
		if errors.Is(err, os.ErrNotExist) && p != ipForward {
			return fmt.Errorf("isolation between instances needs br_netfilter (%s missing): load it (modprobe br_netfilter)", p)
		}
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", p, err)
		}
		if changed {
			log.Info("netmode: sysctl set", "path", p, "value", 1)
		}
	}
	return nil
}

// allowLoopbackTarget lets the metadata DNAT reach a CLC listening only on
// 127.0.0.1: the kernel drops packets routed to a loopback address from
// another interface unless that interface has route_localnet. That would
// open every loopback listener of the host to the bridge, and let the
// bridge send from loopback addresses, so the rules then carry a guard
// dropping what arrives there addressed to loopback or from it (nft's
// guard chain) before the DNAT. So it is called only once the rules with
// the guard are in force; and with reset (bridges of the mode's own) a
// target that is not on loopback turns it off again, as the guard goes
// with the loopback target.
func allowLoopbackTarget(md netip.AddrPort, bridges []string, reset bool) error {
	on := md.IsValid() && md.Addr().IsLoopback()
	if !on && !reset {
		return nil
	}
	v := "0"
	if on {
		v = "1"
	}
	var errs []error
	for _, br := range bridges {
		if _, err := link.WriteSysctl("/proc/sys/net/ipv4/conf/"+br+"/route_localnet", v); err != nil {
			errs = append(errs, fmt.Errorf("route_localnet on %s: %w", br, err))
		}
	}
	return errors.Join(errs...)
}

// syncTaps makes the taps of ins on the bridge bridgeOf names and deletes
// the project's taps no instance wants.
func syncTaps(ins []Instance, bridgeOf func(Instance) (netlink.Link, error), log *slog.Logger) error {
	var errs []error
	want := map[string]bool{}
	for _, in := range ins {
		if in.Tap == "" {
			continue
		}
		want[in.Tap] = true
		br, err := bridgeOf(in)
		if err != nil {
			errs = append(errs, fmt.Errorf("instance %s: %w", in.ID, err))
			continue
		}
		if err := link.EnsureTap(in.Tap, br, link.TapMAC(in.MAC)); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: %w", in.ID, err))
		}
	}
	taps, err := link.List(link.KindTap)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, l := range taps {
		if name := l.Attrs().Name; !want[name] {
			if err := link.Delete(name); err != nil {
				errs = append(errs, err)
			} else {
				log.Info("netmode: tap removed", "tap", name)
			}
		}
	}
	return errors.Join(errs...)
}

// removeTaps deletes every tap with the project's prefix.
func removeTaps() error { return syncTaps(nil, nil, slog.New(slog.DiscardHandler)) }

// applyRules reconciles the nftables table with spec.
func applyRules(spec nft.Spec, log *slog.Logger) error {
	rs, changed, err := nft.Sync(spec)
	if err != nil {
		return err
	}
	if changed {
		log.Info("netmode: nftables table replaced", "table", rs.Table.Name, "rules", len(rs.Rules))
	}
	return nil
}

// removeRules deletes the project's nftables tables: the cluster
// controller's, and a node's (package nodenet) should one be here.
func removeRules() error { return removeTables(nft.TableName, nft.NodeTableName) }

// removeTables deletes the inet tables names.
func removeTables(names ...string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, nft.Remove(c, n))
	}
	return errors.Join(errs...)
}

// dhcpServers runs one DHCP server per bridge.
type dhcpServers struct {
	log  *slog.Logger
	byBr map[string]*dhcpServer
}

type dhcpServer struct {
	srv     *dhcp.Server
	ifindex int // a recreated bridge has a new index: the socket is bound to the old
}

// set makes the servers exactly those of want (by bridge name).
func (d *dhcpServers) set(want map[string]dhcpWant) error {
	if d.byBr == nil {
		d.byBr = map[string]*dhcpServer{}
	}
	var errs []error
	for br, s := range d.byBr {
		if w, ok := want[br]; !ok || w.ifindex != s.ifindex {
			if err := s.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("dhcp on %s: %w", br, err))
			}
			delete(d.byBr, br)
			d.log.Info("netmode: dhcp stopped", "bridge", br)
		}
	}
	for br, w := range want {
		if s, ok := d.byBr[br]; ok {
			s.srv.Update(w.cfg, w.leases)
			continue
		}
		srv, err := dhcp.Listen(br, w.cfg, w.leases, d.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.byBr[br] = &dhcpServer{srv: srv, ifindex: w.ifindex}
		d.log.Info("netmode: dhcp serving", "bridge", br, "config", w.cfg.String(), "leases", len(w.leases))
	}
	return errors.Join(errs...)
}

func (d *dhcpServers) close() error { return d.set(nil) }

type dhcpWant struct {
	ifindex int
	cfg     dhcp.Config
	leases  []dhcp.Lease
}

// firstAddr is the bridge's first IPv4 address, preferring one inside
// subnet: STATIC's DHCP server identifier.
func firstAddr(l netlink.Link, subnet netip.Prefix) (netip.Addr, error) {
	ps, err := link.Addrs(l)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, p := range ps {
		if subnet.Contains(p.Addr()) {
			return p.Addr(), nil
		}
	}
	if len(ps) > 0 {
		return ps[0].Addr(), nil
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address for the DHCP server to answer from", l.Attrs().Name)
}
