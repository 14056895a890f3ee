package nstest

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// What a guest does, played from a namespace: lease an address by DHCP,
// configure it, connect, ping.

// Lease runs a DHCP exchange from iface in ns, as a guest's udhcpc would
// (hw, when not nil, is the client hardware address it claims).
func Lease(ns netns.NsHandle, iface string, hw net.HardwareAddr, tries int) (*nclient4.Lease, error) {
	var l *nclient4.Lease
	err := Do(ns, func() error {
		opts := []nclient4.ClientOpt{nclient4.WithTimeout(500 * time.Millisecond), nclient4.WithRetry(tries)}
		if hw != nil {
			opts = append(opts, nclient4.WithHWAddr(hw))
		}
		c, err := nclient4.New(iface, opts...)
		if err != nil {
			return err
		}
		defer c.Close()
		l, err = c.Request(context.Background())
		return err
	})
	return l, err
}

// LeaseMTU is the interface MTU a lease offers (option 26), 0 when none.
func LeaseMTU(ack *dhcpv4.DHCPv4) int {
	b := ack.Options.Get(dhcpv4.OptionInterfaceMTU)
	if len(b) != 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

// Configure gives ns the leased address, default route and MTU (when the
// lease offers one), as a DHCP client's script does.
func Configure(t testing.TB, ns netns.NsHandle, iface string, ack *dhcpv4.DHCPv4) {
	t.Helper()
	ones, _ := ack.SubnetMask().Size()
	Addr(t, ns, iface, fmt.Sprintf("%s/%d", ack.YourIPAddr, ones))
	DefaultRoute(t, ns, ack.Router()[0])
	if mtu := LeaseMTU(ack); mtu > 0 {
		SetMTU(t, ns, iface, mtu)
	}
}

// SetMTU sets the MTU of link name in ns.
func SetMTU(t testing.TB, ns netns.NsHandle, name string, mtu int) {
	t.Helper()
	MustDo(t, ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkSetMTU(l, mtu)
	})
}

// Serve listens on addr in ns and hands each connection to handle, on a
// goroutine of its own, until the test ends.
func Serve(t testing.TB, ns netns.NsHandle, addr string, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	MustDo(t, ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// ServeWho listens on addr in ns and tells each connection the address it
// came from, as the server sees it, until the test ends.
func ServeWho(t testing.TB, ns netns.NsHandle, addr string) {
	t.Helper()
	Serve(t, ns, addr, func(c net.Conn) {
		defer c.Close()
		fmt.Fprintln(c, c.RemoteAddr().(*net.TCPAddr).IP)
	})
}

// Who connects from ns to addr (a ServeWho listener) and returns the
// source address the server saw, or an error when the connection fails.
func Who(ns netns.NsHandle, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Ping sends one ICMP echo request of size bytes (the whole IPv4 packet)
// from ns to dst with Don't Fragment set, and waits up to timeout for its
// reply: a packet larger than some link on the way is lost, not split.
func Ping(ns netns.NsHandle, dst string, size int, timeout time.Duration) error {
	const hdr = 20 + 8 // IPv4 and ICMP headers
	if size < hdr {
		return fmt.Errorf("ping: size %d below the headers' %d", size, hdr)
	}
	var c net.PacketConn
	if err := Do(ns, func() (err error) {
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	raw, err := c.(*net.IPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	}); err != nil || serr != nil {
		return fmt.Errorf("ping: don't fragment: %v %v", err, serr)
	}
	id, seq := uint16(time.Now().UnixNano()), uint16(1)
	msg := make([]byte, size-20)
	msg[0] = 8 // echo request
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	for i := 8; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
		return fmt.Errorf("ping %s (%d bytes): %w", dst, size, err)
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %s (%d bytes): no reply: %w", dst, size, err)
		}
		// The raw socket hands over ICMP without the IPv4 header.
		if n >= 8 && buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id && from.String() == dst {
			if n != len(msg) {
				return fmt.Errorf("ping %s: reply of %d bytes, sent %d", dst, n, len(msg))
			}
			return nil
		}
	}
}

// Checksum is the Internet checksum of b (RFC 1071), for the headers and
// messages a test forges.
func Checksum(b []byte) uint16 { return checksum(b) }

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// MustWho fails t unless ns connects to addr and the server sees want.
func MustWho(t testing.TB, ns netns.NsHandle, addr, want string) {
	t.Helper()
	got, err := Who(ns, addr, 3*time.Second)
	if err != nil {
		t.Errorf("connect to %s: %v", addr, err)
	} else if got != want {
		t.Errorf("connect to %s: server saw %s, want %s", addr, got, want)
	}
}

// Refused is how long a connection that must fail is given: a filter
// drops silently, so failure is a timeout.
const Refused = 400 * time.Millisecond

// MustNotConnect fails t if ns connects to addr within Refused.
func MustNotConnect(t testing.TB, ns netns.NsHandle, addr string) {
	t.Helper()
	if got, err := Who(ns, addr, Refused); err == nil {
		t.Errorf("connect to %s succeeded (seen as %s); the filter should drop it", addr, got)
	}
}
