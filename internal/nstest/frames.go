package nstest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Broadcast is the Ethernet broadcast address: frames to it are flooded
// to every port of a bridge, learned or not.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// UDPFrame is an Ethernet frame from src (MAC and IPv4 address) to dst
// carrying a UDP datagram, with correct IPv4 and no UDP checksum: what a
// guest could send on its NIC whatever its own address is.
func UDPFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	udp = append(udp, payload...)
	return EtherFrame(srcMAC, dstMAC, 0x0800, IPv4Packet(src, dst, unix.IPPROTO_UDP, udp))
}

// IPv4Packet is an IPv4 header (TTL 64, checksummed) before payload.
func IPv4Packet(src, dst netip.Addr, proto byte, payload []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

// ARPFrame is an ARP request for tpa from sha/spa, broadcast, with marker
// in the frame's padding (ARP's 28 bytes leave room in a 60-byte frame).
func ARPFrame(etherSrc, sha net.HardwareAddr, spa, tpa netip.Addr, marker string) []byte {
	a := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	a = append(a, sha...)
	s, d := spa.As4(), tpa.As4()
	a = append(a, s[:]...)
	a = append(a, 0, 0, 0, 0, 0, 0)
	a = append(a, d[:]...)
	return EtherFrame(etherSrc, Broadcast, 0x0806, append(a, marker...))
}

// EtherFrame is an Ethernet II frame.
func EtherFrame(src, dst net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst...), src...), byte(etherType>>8), byte(etherType))
	return append(f, payload...)
}

// SendFrames writes each frame as it is on link ifname of ns (a packet
// socket: the kernel adds nothing).
func SendFrames(ns netns.NsHandle, ifname string, frames ...[]byte) error {
	return Do(ns, func() error {
		l, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: l.Index, Halen: 6}); err != nil {
				return fmt.Errorf("send on %s: %w", ifname, err)
			}
		}
		return nil
	})
}

// Capture collects the frames arriving on one link.
type Capture struct {
	fd     int
	mu     sync.Mutex
	frames [][]byte
	done   chan struct{}
}

// Listen captures every frame on link ifname of ns until the test ends.
func Listen(t testing.TB, ns netns.NsHandle, ifname string) *Capture {
	t.Helper()
	c := &Capture{done: make(chan struct{})}
	MustDo(t, ns, func() error {
		l, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		// A blocked read is not woken by close: wake every 50 ms to see
		// whether the test ended.
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Index})
	})
	stop := make(chan struct{})
	go func() {
		defer close(c.done)
		buf := make([]byte, 2048)
		for {
			n, _, err := unix.Recvfrom(c.fd, buf, 0)
			select {
			case <-stop:
				return
			default:
			}
			if err != nil {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, bytes.Clone(buf[:n]))
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-c.done
		unix.Close(c.fd)
	})
	return c
}

// Seen reports whether a frame holding marker has arrived.
func (c *Capture) Seen(marker string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if bytes.Contains(f, []byte(marker)) {
			return true
		}
	}
	return false
}

// WaitFor waits until a frame holding marker has arrived, failing t after
// timeout. Frames sent earlier on the same path that pass arrive before it.
func (c *Capture) WaitFor(t testing.TB, marker string, timeout time.Duration) {
	t.Helper()
	for end := time.Now().Add(timeout); !c.Seen(marker); {
		if time.Now().After(end) {
			t.Fatalf("no frame %q arrived", marker)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
