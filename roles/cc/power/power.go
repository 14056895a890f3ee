// Package power puts a cluster's nodes to sleep and wakes them, for
// SCHEDPOLICY="POWERSAVE" as Eucalyptus 1.5 ran it: the cluster controller
// powers down a node that has been idle for POWER_IDLETHRESH seconds, and
// wakes one when no awake node has room for a launch, counting it out if it
// does not answer within POWER_WAKETHRESH. This package is only the switch;
// when to use it is the cluster controller's (package cc).
//
// Two switches: Hosts, for hosts in this process (the sim driver models a
// host that sleeps: it answers no polls until woken), and WakeOnLAN, which
// wakes a real host with a magic packet to its MAC address, as Eucalyptus's
// powerwake did. Eucalyptus powered a host down by asking its node
// controller (ncPowerDown); WakeOnLAN takes that as a function, since the
// node API has no such call yet.
package power

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Switch powers a cluster's nodes, named as in NODES.
type Switch interface {
	// PowerOff puts the node's host to sleep; it returns once the host
	// has taken the request.
	PowerOff(ctx context.Context, node string) error
	// Wake asks the node's host to come back. It returns once the request
	// is sent, not when the host answers: the cluster controller waits for
	// the node's answer, POWER_WAKETHRESH at most.
	Wake(ctx context.Context, node string) error
}

// ErrUnknownNode: the switch has no way to reach that node's power.
var ErrUnknownNode = errors.New("power: no power control for this node")

// ErrNoPowerOff: the switch can wake hosts but not put them to sleep.
var ErrNoPowerOff = errors.New("power: this switch cannot power hosts down")

// Host is a host in this process that can sleep and be woken (the sim
// driver's simulated host).
type Host interface {
	PowerOff() error
	Wake() error
}

// Hosts switches hosts in this process, by node name.
type Hosts map[string]Host

func (h Hosts) PowerOff(ctx context.Context, node string) error {
	host, ok := h[node]
	if !ok {
		return fmt.Errorf("power off %s: %w", node, ErrUnknownNode)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return host.PowerOff()
}

func (h Hosts) Wake(ctx context.Context, node string) error {
	host, ok := h[node]
	if !ok {
		return fmt.Errorf("wake %s: %w", node, ErrUnknownNode)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return host.Wake()
}

// WakeOnLAN wakes hosts with a magic packet to their MAC address.
type WakeOnLAN struct {
	// MAC is the address of a node's network card (Eucalyptus read it
	// from the ARP table while the node was up: ARPMAC does).
	MAC func(node string) (net.HardwareAddr, error)
	// Addr is where the packets go; "" is the broadcast address of the
	// local network the node is on (as Eucalyptus's powerwake did), port 9,
	// or 255.255.255.255:9 when no interface is on the node's network.
	Addr string
	// Off powers a host down; nil: PowerOff returns ErrNoPowerOff.
	Off func(ctx context.Context, node string) error
}

func (w WakeOnLAN) PowerOff(ctx context.Context, node string) error {
	if w.Off == nil {
		return fmt.Errorf("power off %s: %w", node, ErrNoPowerOff)
	}
	return w.Off(ctx, node)
}

func (w WakeOnLAN) Wake(ctx context.Context, node string) error {
	if w.MAC == nil {
		return fmt.Errorf("wake %s: %w", node, ErrUnknownNode)
	}
	mac, err := w.MAC(node)
	if err != nil {
		return fmt.Errorf("wake %s: %w", node, err)
	}
	addr := w.Addr
	if addr == "" {
		addr = net.JoinHostPort(broadcastFor(node).String(), strconv.Itoa(WakePort))
	}
	if err := SendMagicPacket(ctx, addr, mac); err != nil {
		return fmt.Errorf("wake %s: %w", node, err)
	}
	return nil
}

// broadcastFor is the broadcast address of this host's network that holds
// node's address, else the limited broadcast (which a host without a
// default route cannot send to).
func broadcastFor(node string) netip.Addr {
	host := node
	if h, _, err := net.SplitHostPort(node); err == nil {
		host = h
	}
	ips, _ := net.LookupIP(host)
	addrs, _ := net.InterfaceAddrs()
	return broadcastIn(ips, addrs)
}

// broadcastIn is the broadcast address of the first of addrs (this host's)
// whose network holds one of ips, else 255.255.255.255.
func broadcastIn(ips []net.IP, addrs []net.Addr) netip.Addr {
	for _, ip := range ips {
		if ip.To4() == nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.To4() == nil || !n.Contains(ip) {
				continue
			}
			var b [4]byte
			for i := range b {
				b[i] = n.IP.To4()[i] | ^n.Mask[len(n.Mask)-4+i]
			}
			return netip.AddrFrom4(b)
		}
	}
	return netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// MagicPacket is the Wake-on-LAN frame payload for mac: six 0xff bytes,
// then the 6-byte address sixteen times.
func MagicPacket(mac net.HardwareAddr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("power: MAC %q: want a 6-byte Ethernet address", mac)
	}
	b := make([]byte, 0, 102)
	for range 6 {
		b = append(b, 0xff)
	}
	for range 16 {
		b = append(b, mac...)
	}
	return b, nil
}

// SendMagicPacket sends mac's magic packet as one UDP datagram to addr
// (host:port; a broadcast address is allowed).
func SendMagicPacket(ctx context.Context, addr string, mac net.HardwareAddr) error {
	pkt, err := MagicPacket(mac)
	if err != nil {
		return err
	}
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return fmt.Errorf("power: %w", err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		})
		return errors.Join(err, serr)
	}}
	conn, err := lc.ListenPacket(ctx, "udp4", ":0")
	if err != nil {
		return fmt.Errorf("power: %w", err)
	}
	defer conn.Close()
	if _, err := conn.WriteTo(pkt, to); err != nil {
		return fmt.Errorf("power: send magic packet to %s: %w", addr, err)
	}
	return nil
}
