package nc

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/euca-cloud/euca/netmode/guestport"
	"github.com/euca-cloud/euca/netmode/ipam"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Ports guards the ports of this host's guests (package
// netmode/guestport): each may send only as itself, and in SYSTEM mode
// the address its DHCP server gives it is learned (Learned).
type Ports interface {
	Set(ports []guestport.Port) error
}

// nodePorts is what the node holds of its guests' ports.
type nodePorts struct {
	mu    sync.Mutex // serializes Set: the kernel's table follows the last call
	ports Ports      // nil: none guarded (a simulated node, or one not run as root)
	last  string     // the last list applied, to log changes once
}

// UsePorts makes the node guard its guests' ports through p.
func (n *Node) UsePorts(p Ports) {
	n.ports.mu.Lock()
	n.ports.ports = p
	n.ports.mu.Unlock()
}

// bridge is the bridge req's NIC joins: in STATIC and SYSTEM the
// operator's, which each host names in its own VNET_BRIDGE (as the 1.5
// documentation's node blocks do), else the one the cluster controller
// names (its network's).
func (n *Node) bridge(req ncapi.InstanceRequest) string {
	if (n.system() || strings.EqualFold(n.cfg.VNetMode, "STATIC")) && n.cfg.VNetBridge != "" {
		return n.cfg.VNetBridge
	}
	return req.Bridge
}

// learns reports whether ports learn their guest's address from its DHCP:
// in SYSTEM mode, the operator's DHCP server gives it (and may give
// another at a renewal); elsewhere only while the cloud gave none.
func (n *Node) learns(addr netip.Addr) bool { return n.system() || !addr.IsValid() }

// system reports whether the node's network mode is SYSTEM.
func (n *Node) system() bool { return strings.EqualFold(n.cfg.VNetMode, "SYSTEM") }

// syncPorts applies the ports of the instances that hold a guest (from
// acceptance until their guest is gone): called when one is accepted,
// before its guest can send a frame, when one goes, when an address is
// learned and at each reconcile. An error says the ports are not
// guarded: a guest must not start then (its frames would be taken for
// whatever source they claim, by the groups and by the metadata service).
func (n *Node) syncPorts(ctx context.Context) error {
	n.ports.mu.Lock()
	defer n.ports.mu.Unlock()
	if n.ports.ports == nil {
		return nil
	}
	n.mu.Lock()
	var ps []guestport.Port
	for _, in := range n.insts {
		if !holds(in.rec.State) || n.bridge(in.req) == "" {
			continue
		}
		mac, err := net.ParseMAC(in.req.MAC)
		if err != nil {
			continue // none given: the hypervisor chose; nothing to hold it to
		}
		addr := in.addrLocked()
		if !addr.IsValid() && !n.system() {
			// Not SYSTEM, and a request from before requests carried the
			// address: the managed modes made the MAC from it.
			addr, _ = ipam.AddrOfMAC(mac)
		}
		ps = append(ps, guestport.Port{ID: in.id, Name: link.PortName(in.id), MAC: mac,
			Addr: addr, Learn: n.learns(addr)})
	}
	n.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	if err := n.ports.ports.Set(ps); err != nil {
		n.log.WarnContext(ctx, "nc: guest ports not guarded", "err", err)
		n.ports.last = ""
		return fmt.Errorf("guest ports not guarded: %w", err)
	}
	if b, _ := json.Marshal(ps); string(b) != n.ports.last {
		n.ports.last = string(b)
		n.log.InfoContext(ctx, "nc: guest ports guarded", "ports", len(ps))
	}
	return nil
}

// Learned records the address instance id's guest got from its DHCP
// server (guestport's watcher calls it): its port may send from it from
// now on, and Describe reports it, for the cloud to show and to know
// the guest by. It is kept in the instance's record, so a restarted node
// still holds the guest to it.
//
// An address another instance holds (a guest of this node, or one the
// cluster's network names) is not learned: an outside DHCP server can be
// talked into handing out a held address again (a release forged on the
// holder's behalf, its client id copied), and the port would then send
// from it and the metadata service, which knows its caller by that
// address, answer with the holder's data.
func (n *Node) Learned(id string, addr netip.Addr) {
	ctx := context.Background()
	holder := n.networkHolder(id, addr)
	n.mu.Lock()
	in, ok := n.insts[id]
	if !ok || !holds(in.rec.State) || in.addrLocked() == addr {
		n.mu.Unlock()
		return
	}
	for oid, o := range n.insts {
		if oid != id && holds(o.rec.State) && o.addrLocked() == addr {
			holder = oid
		}
	}
	if holder != "" {
		n.mu.Unlock()
		n.log.WarnContext(ctx, "nc: learned address refused: another instance holds it", "instance", id, "addr", addr, "holder", holder)
		return
	}
	req := in.req
	req.PrivateIP = addr
	js, err := json.Marshal(req)
	if err == nil {
		rec := in.rec
		rec.Request = string(js)
		err = n.writeLocked(ctx, in, rec)
	}
	if err == nil {
		in.learned = addr
	}
	n.mu.Unlock()
	if err != nil {
		n.log.WarnContext(ctx, "nc: learned address not recorded", "instance", id, "addr", addr, "err", err)
		return
	}
	n.log.InfoContext(ctx, "nc: instance address learned", "instance", id, "addr", addr)
	n.syncPorts(ctx) // a failure is logged; the next reconcile tries again
}

// addrLocked is the guest's address: the one learned, else the request's;
// the caller holds n.mu.
func (in *instance) addrLocked() netip.Addr {
	if in.learned.IsValid() {
		return in.learned
	}
	return in.req.PrivateIP
}

// networkHolder is the instance other than id that the cluster's network
// places at addr, "" when none.
func (n *Node) networkHolder(id string, addr netip.Addr) string {
	n.network.mu.Lock()
	defer n.network.mu.Unlock()
	for _, o := range n.network.last.Instances {
		if o.ID != id && o.PrivateIP == addr {
			return o.ID
		}
	}
	return ""
}

// GuestAt reports whether addr is the address of a guest this node holds
// (from acceptance until its guest is gone): the node's metadata relay
// answers no one else. A SYSTEM guest's address counts once it is learned.
func (n *Node) GuestAt(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, in := range n.insts {
		if holds(in.rec.State) && in.addrLocked() == addr {
			return true
		}
	}
	return false
}
