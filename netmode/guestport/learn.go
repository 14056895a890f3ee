package guestport

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Lease is what the node learns from one frame towards a guest.
type Lease struct {
	Addr netip.Addr // the address the DHCP server gave the guest
}

// Header sizes and offsets of the frames Parse reads.
const (
	etherLen   = 14
	ipv4MinLen = 20
	udpLen     = 8
	// maxFrame bounds what is read of one frame: a DHCP message is at
	// most a few hundred bytes, and larger ones are not worth parsing.
	maxFrame = 2048
)

// ParseACK reads one Ethernet frame sent towards the guest whose MAC is mac
// and returns the address a DHCPACK in it gives that guest. Anything
// else (another message type, another client's ACK, a fragment, a frame
// that does not parse) gives ok false. It never panics and allocates no
// more than the frame's DHCP message.
//
// The caller must only pass frames going to the guest: an ACK the guest
// sends itself is a claim of its own, not the network's answer.
func ParseACK(frame []byte, mac net.HardwareAddr) (l Lease, ok bool) {
	if len(mac) != 6 || len(frame) < etherLen+ipv4MinLen+udpLen || len(frame) > maxFrame {
		return Lease{}, false
	}
	dst := frame[0:6]
	if !bytes.Equal(dst, mac) && !bytes.Equal(dst, broadcastMAC) {
		return Lease{}, false
	}
	if binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
		return Lease{}, false
	}
	ip := frame[etherLen:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < ipv4MinLen || len(ip) < ihl+udpLen {
		return Lease{}, false
	}
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total < ihl+udpLen || total > len(ip) {
		return Lease{}, false
	}
	ip = ip[:total] // Ethernet pads short frames: the padding is not DHCP
	if ip[9] != 17 || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return Lease{}, false // not UDP, or a fragment
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[0:2]) != dhcpv4.ServerPort || binary.BigEndian.Uint16(udp[2:4]) != dhcpv4.ClientPort {
		return Lease{}, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpLen || ulen > len(udp) {
		return Lease{}, false
	}
	msg, err := dhcpv4.FromBytes(udp[udpLen:ulen])
	if err != nil || msg.OpCode != dhcpv4.OpcodeBootReply || msg.MessageType() != dhcpv4.MessageTypeAck {
		return Lease{}, false
	}
	if !bytes.Equal(msg.ClientHWAddr, mac) {
		return Lease{}, false
	}
	a, valid := netip.AddrFromSlice(msg.YourIPAddr.To4())
	if !valid || !usable(a) {
		return Lease{}, false // an ACK to an INFORM carries no address
	}
	return Lease{Addr: a}, true
}

var broadcastMAC = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// usable is a unicast IPv4 address a guest can hold.
func usable(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && !a.IsLinkLocalUnicast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
