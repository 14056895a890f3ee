package guestport

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode/dhcp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	guestMAC = net.HardwareAddr{0xd2, 0x43, 0, 0, 0, 0x0a}
	otherMAC = net.HardwareAddr{0xd2, 0x43, 0, 0, 0, 0x66}
	server   = netip.MustParseAddr("10.243.3.1")
	leased   = netip.MustParseAddr("10.243.3.10")
)

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// reply is a DHCP server's answer of type mt to chaddr giving yiaddr, as
// the frame that goes out of the guest's port.
func reply(t testing.TB, mt dhcpv4.MessageType, chaddr net.HardwareAddr, yiaddr netip.Addr) []byte {
	t.Helper()
	m, err := dhcpv4.New(dhcpv4.WithReply(&dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootRequest, ClientHWAddr: chaddr, HWType: 1}),
		dhcpv4.WithMessageType(mt), dhcpv4.WithYourIP(net.IP(yiaddr.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(server.AsSlice()))),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))))
	if err != nil {
		t.Fatal(err)
	}
	return nstest.UDPFrame(net.HardwareAddr{0x02, 0, 0, 0, 0, 1}, chaddr, server, yiaddr, 67, 68, m.ToBytes())
}

func TestParseACK(t *testing.T) {
	ack := reply(t, dhcpv4.MessageTypeAck, guestMAC, leased)
	padded := append(append([]byte{}, ack...), make([]byte, 30)...) // Ethernet padding
	fragment := append([]byte{}, ack...)
	fragment[14+6] = 0x20 // more fragments
	ports := append([]byte{}, ack...)
	ports[14+20+3] = 69 // to port 69
	broadcast := append([]byte{}, ack...)
	copy(broadcast, nstest.Broadcast)
	for _, c := range []struct {
		name  string
		frame []byte
		want  netip.Addr
	}{
		{"ack", ack, leased},
		{"padded", padded, leased},
		{"broadcast", broadcast, leased},
		{"another client's", reply(t, dhcpv4.MessageTypeAck, otherMAC, leased), netip.Addr{}},
		{"offer", reply(t, dhcpv4.MessageTypeOffer, guestMAC, leased), netip.Addr{}},
		{"no address", reply(t, dhcpv4.MessageTypeAck, guestMAC, netip.MustParseAddr("0.0.0.0")), netip.Addr{}},
		{"fragment", fragment, netip.Addr{}},
		{"other port", ports, netip.Addr{}},
		{"truncated", ack[:len(ack)-100], netip.Addr{}},
		{"headers only", ack[:14+20+8], netip.Addr{}},
		{"empty", nil, netip.Addr{}},
	} {
		l, ok := ParseACK(c.frame, guestMAC)
		if ok != c.want.IsValid() || l.Addr != c.want {
			t.Errorf("%s: ParseACK = %v, %v; want %v", c.name, l.Addr, ok, c.want)
		}
	}
}

// FuzzParseACK: no frame makes the parser panic, and what it accepts is a
// usable address. Seeds in testdata/fuzz/FuzzParseACK (an ACK, an OFFER,
// a padded ACK) and below.
func FuzzParseACK(f *testing.F) {
	f.Add(reply(f, dhcpv4.MessageTypeAck, guestMAC, leased))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		l, ok := ParseACK(frame, guestMAC)
		if ok && !usable(l.Addr) {
			t.Fatalf("accepted unusable address %v", l.Addr)
		}
	})
}

// TestKernelLearn: a guest on a bridge leases its address from a DHCP
// server outside the cloud (the LAN); the node learns it from the port,
// and not from an ACK the guest forges itself. Until then the guest's
// traffic from that address does not pass; once the node sets the port
// with it, it does.
//
//	guest eth0 ── stsg ─ stsbr ─ stsl ── lan eth0 10.243.3.1 (DHCP server)
func TestKernelLearn(t *testing.T) {
	host, guest, lan := nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Veth(t, host, "stsg", guest, "eth0", guestMAC)
	nstest.Veth(t, host, "stsl", lan, "eth0", nil)
	nstest.Bridge(t, host, "stsbr", "stsg", "stsl")
	nstest.Addr(t, lan, "eth0", "10.243.3.1/24")
	var srv *dhcp.Server
	nstest.MustDo(t, lan, func() (err error) {
		srv, err = dhcp.Listen("eth0", dhcp.Config{ServerIP: server, Subnet: netip.MustParsePrefix("10.243.3.0/24"), Router: server},
			[]dhcp.Lease{{MAC: guestMAC, IP: leased}}, testLog())
		return err
	})
	defer srv.Close()

	var mu sync.Mutex
	var learned []netip.Addr
	got := make(chan struct{}, 16)
	g := New(func(id string, l Lease) {
		if id != "i-g" {
			t.Errorf("lease for %s", id)
		}
		mu.Lock()
		learned = append(learned, l.Addr)
		mu.Unlock()
		got <- struct{}{}
	}, testLog())
	port := Port{ID: "i-g", Name: "stsg", MAC: guestMAC, Learn: true}
	nstest.MustDo(t, host, func() error { return g.Set([]Port{port}) })
	defer nstest.MustDo(t, host, g.Close)

	// The guest claims an address with an ACK of its own making, then
	// leases one.
	forged := reply(t, dhcpv4.MessageTypeAck, guestMAC, netip.MustParseAddr("10.243.3.66"))
	if err := nstest.SendFrames(guest, "eth0", forged); err != nil {
		t.Fatal(err)
	}
	l, err := nstest.Lease(guest, "eth0", nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l.ACK.YourIPAddr.String() != leased.String() {
		t.Fatalf("leased %v", l.ACK.YourIPAddr)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the node learned nothing from the guest's DHCP")
	}
	mu.Lock()
	first := learned[0]
	mu.Unlock()
	if first != leased {
		t.Fatalf("learned %v first, want the lease %v (not the guest's own ACK)", first, leased)
	}

	// Until the port has the address, the guest cannot use it.
	nstest.Configure(t, guest, "eth0", l.ACK)
	if err := nstest.Ping(guest, "10.243.3.1", 56, time.Second); err == nil {
		t.Error("a guest sent from an address its port does not have yet")
	}
	port.Addr = leased
	nstest.MustDo(t, host, func() error { return g.Set([]Port{port}) })
	if err := nstest.Ping(guest, "10.243.3.1", 56, 5*time.Second); err != nil {
		t.Errorf("the guest cannot use its learned address: %v", err)
	}
	nstest.MustDo(t, host, func() error { return g.Set(nil) })
	g.mu.Lock()
	if len(g.watchers) != 0 {
		t.Errorf("%d watchers left with no ports", len(g.watchers))
	}
	g.mu.Unlock()
}
