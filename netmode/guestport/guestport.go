// Package guestport is a node's side of its guests' ports (the taps the
// hypervisor plugs each guest's NIC into), in every network mode:
//
//   - Anti-spoofing: the nftables bridge table "euca" (package nft,
//     BuildPorts) lets a guest send only frames from its own MAC, IPv4
//     from its own address or DHCP from 0.0.0.0, and ARP as itself or as a
//     probe. It is the one place that knows which port is which guest, so
//     it is what makes a packet's source address mean something to the
//     security groups and to the metadata service, which identifies its
//     caller by it.
//   - Learning (SYSTEM mode): the operator's DHCP server, not the cloud,
//     gives a guest its address. The node watches the frames going out of
//     the guest's port towards the guest (a packet socket on the tap,
//     filtered in the kernel to UDP towards port 68) and takes the address
//     of each DHCPACK to the guest's MAC, renewals included. Until then
//     the port may send DHCP and ARP probes only, so a guest cannot pick
//     an address for itself (on the operator's LAN it would take a
//     neighbour's) and have the cloud believe it. ARP from the guest is
//     therefore never a source: what it claims is the guest's own word.
//
// Set takes the whole desired list of ports and reconciles: the table is
// replaced only when it differs, a watcher runs per learning port and
// stops when its port goes. Everything runs in the network namespace of
// the thread that called Set.
package guestport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Port is one guest's NIC.
type Port struct {
	ID   string           // the instance id
	Name string           // its tap, as the hypervisor names it
	MAC  net.HardwareAddr // the guest's MAC
	Addr netip.Addr       // its address; invalid: none known yet
	// Learn watches the port for DHCPACKs to the guest (SYSTEM mode, or
	// any port whose address is not known).
	Learn bool
}

// Guard keeps a node's guest ports.
type Guard struct {
	log     *slog.Logger
	onLease func(id string, l Lease)

	mu       sync.Mutex
	watchers map[string]*watcher // by port name
	closed   bool
}

// New makes a guard; onLease is called (from a watcher's goroutine) with
// every DHCPACK a learning port's guest gets.
func New(onLease func(id string, l Lease), log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{log: log.With("netmode", "guestport"), onLease: onLease, watchers: map[string]*watcher{}}
}

// Set brings the ports' table and watchers to ports. Harmless twice.
func (g *Guard) Set(ports []Port) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("guestport: closed")
	}
	var np []nft.Port
	learn := map[string]Port{}
	for _, p := range ports {
		np = append(np, nft.Port{ID: p.ID, Name: p.Name, MAC: p.MAC, Addr: p.Addr})
		if p.Learn {
			learn[p.Name] = p
		}
	}
	changed, err := nft.SyncPorts(np)
	if err != nil {
		return fmt.Errorf("guest ports: %w", err)
	}
	if changed {
		g.log.Info("guestport: anti-spoofing table replaced", "ports", len(np))
	}
	ns := netns.None()
	for name, w := range g.watchers {
		if p, ok := learn[name]; !ok || p.ID != w.id || p.MAC.String() != w.mac.String() {
			w.stop()
			delete(g.watchers, name)
		}
	}
	for name, p := range learn {
		if _, ok := g.watchers[name]; ok {
			continue
		}
		if !ns.IsOpen() {
			if ns, err = netns.Get(); err != nil {
				return fmt.Errorf("guest ports: this thread's namespace: %w", err)
			}
			defer ns.Close()
		}
		w, err := g.watch(ns, p)
		if err != nil {
			return err
		}
		g.watchers[name] = w
	}
	return nil
}

// Close stops the watchers and removes the table.
func (g *Guard) Close() error {
	g.mu.Lock()
	for name, w := range g.watchers {
		w.stop()
		delete(g.watchers, name)
	}
	g.mu.Unlock()
	err := g.Set(nil)
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return err
}

// watcher reads one port's frames towards its guest.
type watcher struct {
	id   string
	name string
	mac  net.HardwareAddr
	ns   netns.NsHandle // a duplicate, closed when the watcher ends
	quit chan struct{}
	done chan struct{}
}

func (w *watcher) stop() {
	close(w.quit)
	<-w.done
}

// Timings of a watcher: how often it looks for a tap not there yet (the
// hypervisor makes it when the guest starts), and how long one read
// waits before it looks whether it should stop.
const (
	retryOpen = time.Second
	readWait  = 200 * time.Millisecond
)

func (g *Guard) watch(ns netns.NsHandle, p Port) (*watcher, error) {
	dup, err := unix.Dup(int(ns))
	if err != nil {
		return nil, fmt.Errorf("guest ports: %w", err)
	}
	w := &watcher{id: p.ID, name: p.Name, mac: append(net.HardwareAddr(nil), p.MAC...), ns: netns.NsHandle(dup),
		quit: make(chan struct{}), done: make(chan struct{})}
	// A port whose tap exists is watched once Set returns: an answer the
	// guest gets right after is not missed while the watcher starts. A tap
	// not made yet is looked for by the watcher.
	fd, err := openIn(w.ns, w.name)
	if err != nil {
		fd = -1
	}
	go w.run(g, fd)
	return w, nil
}

func (w *watcher) run(g *Guard, fd int) {
	defer close(w.done)
	defer w.ns.Close()
	buf := make([]byte, maxFrame)
	last := netip.Addr{}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	for {
		select {
		case <-w.quit:
			return
		default:
		}
		if fd < 0 {
			var err error
			if fd, err = openIn(w.ns, w.name); err != nil {
				fd = -1
				select {
				case <-w.quit:
					return
				case <-time.After(retryOpen):
				}
				continue
			}
		}
		n, from, err := unix.Recvfrom(fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// The tap went (a stopped guest) or was made again: open anew.
			unix.Close(fd)
			fd = -1
			continue
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype != unix.PACKET_OUTGOING || n > len(buf) {
			continue // from the guest, or cut short
		}
		l, ok := ParseACK(buf[:n], w.mac)
		if !ok {
			continue
		}
		if l.Addr != last {
			g.log.Info("guestport: address learned", "instance", w.id, "port", w.name, "addr", l.Addr)
			last = l.Addr
		}
		g.onLease(w.id, l)
	}
}

// ackFilter keeps what may be a DHCP answer: IPv4, UDP, towards port 68.
// Everything else the guest's port carries never leaves the kernel.
var ackFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipFalse: 6},
	bpf.LoadAbsolute{Off: 23, Size: 1},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_UDP, SkipFalse: 4},
	bpf.LoadMemShift{Off: 14},
	bpf.LoadIndirect{Off: 16, Size: 2},
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 68, SkipFalse: 1},
	bpf.RetConstant{Val: maxFrame},
	bpf.RetConstant{Val: 0},
})

func mustAssemble(in []bpf.Instruction) []unix.SockFilter {
	raw, err := bpf.Assemble(in)
	if err != nil {
		panic(err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}

// openIn opens a packet socket on link name of ns, filtered to ackFilter,
// whose reads give up after readWait.
func openIn(ns netns.NsHandle, name string) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return -1, err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return -1, err
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("guestport: cannot return to the original namespace: %v", err))
		}
	}()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return -1, err
	}
	// ETH_P_ALL: only such sockets see frames the host sends (towards the
	// guest). Made with protocol 0, it takes nothing before the filter is
	// on and it is bound to the port.
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	prog := unix.SockFprog{Len: uint16(len(ackFilter)), Filter: &ackFilter[0]}
	tv := unix.NsecToTimeval(readWait.Nanoseconds())
	if err = unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err == nil {
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket on %s: %w", name, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
