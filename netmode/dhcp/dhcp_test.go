package dhcp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

var (
	known, _   = net.ParseMAC("d0:0d:0a:2a:00:05")
	unknown, _ = net.ParseMAC("d0:0d:0a:2a:00:09")
	cfg        = Config{
		ServerIP:  netip.MustParseAddr("10.42.0.1"),
		Subnet:    netip.MustParsePrefix("10.42.0.0/16"),
		Router:    netip.MustParseAddr("10.42.0.1"),
		DNS:       []netip.Addr{netip.MustParseAddr("10.255.255.53"), netip.MustParseAddr("9.9.9.9")},
		LeaseTime: 20 * time.Minute,
	}
	fixed  = netip.MustParseAddr("10.42.0.5")
	leases = []Lease{{MAC: known, IP: fixed}}
)

func discover(t *testing.T, mac net.HardwareAddr) *dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkLease: the answer carries everything an instance needs, option 54
// included, and no classless routes.
func checkLease(t *testing.T, m *dhcpv4.DHCPv4, typ dhcpv4.MessageType) {
	t.Helper()
	if m == nil {
		t.Fatalf("no %s", typ)
	}
	if m.MessageType() != typ {
		t.Fatalf("type %s, want %s", m.MessageType(), typ)
	}
	if !m.YourIPAddr.Equal(net.ParseIP("10.42.0.5")) {
		t.Errorf("yiaddr %s", m.YourIPAddr)
	}
	if !m.ServerIdentifier().Equal(net.ParseIP("10.42.0.1")) {
		t.Errorf("option 54 %v", m.ServerIdentifier())
	}
	if r := m.Router(); len(r) != 1 || !r[0].Equal(net.ParseIP("10.42.0.1")) {
		t.Errorf("router %v", r)
	}
	if d := m.DNS(); len(d) != 2 || !d[0].Equal(net.ParseIP("10.255.255.53")) || !d[1].Equal(net.ParseIP("9.9.9.9")) {
		t.Errorf("dns %v", d)
	}
	if ones, _ := m.SubnetMask().Size(); ones != 16 {
		t.Errorf("mask /%d", ones)
	}
	if !m.BroadcastAddress().Equal(net.ParseIP("10.42.255.255")) {
		t.Errorf("broadcast %v", m.BroadcastAddress())
	}
	if lt := m.IPAddressLeaseTime(0); lt != 20*time.Minute {
		t.Errorf("lease time %v", lt)
	}
	if m.Options.Has(dhcpv4.OptionClasslessStaticRoute) {
		t.Error("option 121 sent")
	}
}

func TestReply(t *testing.T) {
	d := discover(t, known)
	offer := Reply(cfg, fixed, d)
	checkLease(t, offer, dhcpv4.MessageTypeOffer)
	if offer.TransactionID != d.TransactionID || offer.ClientHWAddr.String() != known.String() {
		t.Error("offer does not answer the discover")
	}

	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	checkLease(t, Reply(cfg, fixed, req), dhcpv4.MessageTypeAck)

	// INIT-REBOOT asking for a stale address: NAK, so the client starts over.
	stale, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.42.0.77"))))
	if nak := Reply(cfg, fixed, stale); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak || !nak.ServerIdentifier().Equal(net.ParseIP("10.42.0.1")) {
		t.Errorf("stale request: %v", nak)
	}

	// RENEWING: ciaddr set, no requested-address option.
	renew, _ := dhcpv4.New(dhcpv4.WithHwAddr(known), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(net.ParseIP("10.42.0.5")))
	checkLease(t, Reply(cfg, fixed, renew), dhcpv4.MessageTypeAck)

	// Another server's offer was chosen: silence.
	other, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.42.0.254"))))
	if r := Reply(cfg, fixed, other); r != nil {
		t.Errorf("answered a request for another server: %v", r.MessageType())
	}

	inform, _ := dhcpv4.NewInform(known, net.ParseIP("10.42.0.5"))
	if ack := Reply(cfg, fixed, inform); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || !ack.YourIPAddr.IsUnspecified() {
		t.Errorf("inform: %v", ack)
	}

	release, _ := dhcpv4.New(dhcpv4.WithHwAddr(known), dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease))
	if r := Reply(cfg, fixed, release); r != nil {
		t.Error("answered a release")
	}
	notReq, _ := dhcpv4.NewReplyFromRequest(d)
	if r := Reply(cfg, fixed, notReq); r != nil {
		t.Error("answered a BOOTREPLY")
	}

	// No router, no DNS: the options are left out rather than empty.
	bare := Config{ServerIP: cfg.ServerIP, Subnet: cfg.Subnet}
	o := Reply(bare, fixed, d)
	if o.Options.Has(dhcpv4.OptionRouter) || o.Options.Has(dhcpv4.OptionDomainNameServer) || o.IPAddressLeaseTime(0) != DefaultLeaseTime {
		t.Errorf("bare offer %s", o.Summary())
	}
}

// serveLoopback runs the server on 127.0.0.1 and returns a client for mac,
// as insomniacslk's own server4 tests do (no root needed).
func serveLoopback(t *testing.T, mac net.HardwareAddr) (*Server, *nclient4.Client) {
	t.Helper()
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	conn, err := server4.NewIPv4UDPConn("", lo)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serve(conn, cfg, leases, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cconn, err := server4.NewIPv4UDPConn("", lo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nclient4.NewWithConn(cconn, mac, nclient4.WithServerAddr(conn.LocalAddr().(*net.UDPAddr)),
		nclient4.WithTimeout(300*time.Millisecond), nclient4.WithRetry(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

func TestServeLoopback(t *testing.T) {
	s, c := serveLoopback(t, known)
	lease, err := c.Request(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkLease(t, lease.Offer, dhcpv4.MessageTypeOffer)
	checkLease(t, lease.ACK, dhcpv4.MessageTypeAck)

	// Update: the MAC now has another address.
	s.Update(cfg, []Lease{{MAC: known, IP: netip.MustParseAddr("10.42.0.6")}})
	lease, err = c.Request(context.Background())
	if err != nil || !lease.ACK.YourIPAddr.Equal(net.ParseIP("10.42.0.6")) {
		t.Fatalf("after Update: %v %v", lease, err)
	}
}

func TestServeUnknownMAC(t *testing.T) {
	_, c := serveLoopback(t, unknown)
	if lease, err := c.Request(context.Background()); err == nil {
		t.Fatalf("unknown MAC got %s", lease.ACK.Summary())
	}
}

// TestKernelListen: the server bound to an interface in one namespace
// answers a raw-socket client (nclient4, as a guest's udhcpc) broadcasting
// from another over a veth.
func TestKernelListen(t *testing.T) {
	srvNS, cliNS := nstest.New(t), nstest.New(t)
	nstest.Veth(t, srvNS, "srv0", cliNS, "eth0", known)
	nstest.Addr(t, srvNS, "srv0", "10.42.0.1/16")
	var s *Server
	nstest.MustDo(t, srvNS, func() (err error) {
		s, err = Listen("srv0", cfg, leases, slog.New(slog.DiscardHandler))
		return err
	})
	defer s.Close()
	var c *nclient4.Client
	nstest.MustDo(t, cliNS, func() (err error) {
		c, err = nclient4.New("eth0", nclient4.WithTimeout(time.Second), nclient4.WithRetry(3))
		return err
	})
	defer c.Close()
	lease, err := c.Request(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkLease(t, lease.ACK, dhcpv4.MessageTypeAck)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("second Close: %v", err)
	}
}

// TestReplyMTU: a network carried over VXLAN offers its smaller MTU
// (option 26); one that is not offers none, so the guest keeps its own.
func TestReplyMTU(t *testing.T) {
	if offer := Reply(cfg, fixed, discover(t, known)); offer.Options.Has(dhcpv4.OptionInterfaceMTU) {
		t.Error("option 26 without an MTU")
	}
	c := cfg
	c.MTU = 1450
	offer := Reply(c, fixed, discover(t, known))
	checkLease(t, offer, dhcpv4.MessageTypeOffer)
	if got := offer.Options.Get(dhcpv4.OptionInterfaceMTU); len(got) != 2 || got[0] != 0x05 || got[1] != 0xaa {
		t.Errorf("option 26 = %x, want 05aa (1450)", got)
	}
}
