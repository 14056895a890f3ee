// Package dhcp is the cluster's DHCP server: it answers the instances on one
// bridge with the fixed address the store gave each MAC, and nothing to
// anyone else. It is built on github.com/insomniacslk/dhcp's dhcpv4/server4
// (coredhcp, which wraps it, is not available), bound to the bridge.
//
// A lease is fixed, so the server keeps no lease database: DISCOVER gets an
// OFFER and REQUEST an ACK carrying the MAC's address, the router, the DNS
// servers, the subnet mask and broadcast address, the lease time and the
// server identifier (option 54, set explicitly: server4 only fills siaddr,
// and busybox's udhcpc ignores an offer without it). No classless static
// routes (option 121): a client that gets them must ignore the router
// option, and the default route is all an instance needs (169.254.169.254
// included). A REQUEST for another address gets a NAK so the client starts
// over; a REQUEST naming another server, and anything from an unknown MAC,
// gets no answer at all.
package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// DefaultLeaseTime is offered when Config.LeaseTime is zero. Clients renew
// at half of it, so a restarted server is asked again within 30 minutes.
const DefaultLeaseTime = time.Hour

// Config is what every lease on one network carries.
type Config struct {
	ServerIP  netip.Addr   // the host's address on the network: option 54
	Subnet    netip.Prefix // options 1 (mask) and 28 (broadcast)
	Broadcast netip.Addr   // option 28 when set (VNET_BROADCAST); invalid: the subnet's last address
	Router    netip.Addr   // option 3; invalid: none
	DNS       []netip.Addr // option 6
	LeaseTime time.Duration
	// MTU, when set, is option 26 (interface MTU): a network carried
	// between hosts over VXLAN has room for 50 bytes less than the
	// Ethernet a guest assumes, and a guest sending full 1500-byte frames
	// would have them dropped silently at the tunnel.
	MTU int
}

// Lease is one instance's fixed address.
type Lease struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

// Server answers DHCP on one interface.
type Server struct {
	log  *slog.Logger
	srv  *server4.Server
	done chan struct{}

	mu     sync.RWMutex
	cfg    Config
	leases map[string]netip.Addr // by MAC, as net.HardwareAddr.String()
}

// Listen serves DHCP on the interface ifname (bound to it, port 67). The
// socket lives in the calling thread's network namespace.
func Listen(ifname string, cfg Config, leases []Lease, log *slog.Logger) (*Server, error) {
	conn, err := server4.NewIPv4UDPConn(ifname, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s: %w", ifname, err)
	}
	return Serve(conn, cfg, leases, log.With("iface", ifname))
}

// Serve answers DHCP on conn (Listen's socket, or any UDP socket in tests).
func Serve(conn net.PacketConn, cfg Config, leases []Lease, log *slog.Logger) (*Server, error) {
	if err := cfg.check(); err != nil {
		conn.Close()
		return nil, err
	}
	s := &Server{log: log, done: make(chan struct{})}
	s.Update(cfg, leases)
	srv, err := server4.NewServer("", nil, s.handle, server4.WithConn(conn))
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.srv = srv
	go func() {
		defer close(s.done)
		_ = srv.Serve() // returns when Close closes the socket
	}()
	return s, nil
}

func (c Config) check() error {
	if !c.ServerIP.Is4() {
		return fmt.Errorf("dhcp: server address %v is not IPv4", c.ServerIP)
	}
	if !c.Subnet.Addr().Is4() {
		return fmt.Errorf("dhcp: subnet %v is not IPv4", c.Subnet)
	}
	return nil
}

// Update replaces the configuration and the leases; later requests see the
// new ones.
func (s *Server) Update(cfg Config, leases []Lease) {
	m := make(map[string]netip.Addr, len(leases))
	for _, l := range leases {
		m[l.MAC.String()] = l.IP
	}
	s.mu.Lock()
	s.cfg, s.leases = cfg, m
	s.mu.Unlock()
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) handle(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
	s.mu.RLock()
	cfg := s.cfg
	ip, known := s.leases[req.ClientHWAddr.String()]
	s.mu.RUnlock()
	if !known {
		s.log.Debug("dhcp: unknown MAC ignored", "mac", req.ClientHWAddr.String(), "type", req.MessageType())
		return
	}
	resp := Reply(cfg, ip, req)
	if resp == nil {
		return
	}
	if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
		s.log.Warn("dhcp: reply failed", "mac", req.ClientHWAddr.String(), "peer", peer, "err", err)
		return
	}
	s.log.Debug("dhcp: replied", "mac", req.ClientHWAddr.String(), "type", resp.MessageType(), "ip", ip, "peer", peer)
}

// Reply is the answer to req from a client whose fixed address is ip, or
// nil when none is due.
func Reply(cfg Config, ip netip.Addr, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	if req == nil || req.OpCode != dhcpv4.OpcodeBootRequest || !ip.Is4() {
		return nil
	}
	server := net.IP(cfg.ServerIP.AsSlice())
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(server) {
			return nil // the client chose another server's offer
		}
		want := req.RequestedIPAddress() // SELECTING, INIT-REBOOT
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr // RENEWING, REBINDING
		}
		if want != nil && !want.IsUnspecified() && !want.Equal(net.IP(ip.AsSlice())) {
			nak, err := dhcpv4.NewReplyFromRequest(req,
				dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
				dhcpv4.WithOption(dhcpv4.OptMessage("address not assigned to this MAC")))
			if err != nil {
				return nil
			}
			return nak
		}
		typ = dhcpv4.MessageTypeAck
	case dhcpv4.MessageTypeInform:
		// RFC 2131 4.3.5: configuration only, no address, no lease time.
		ack, err := dhcpv4.NewReplyFromRequest(req,
			append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
				dhcpv4.WithClientIP(req.ClientIPAddr)}, cfg.options(false)...)...)
		if err != nil {
			return nil
		}
		return ack
	default: // RELEASE, DECLINE: nothing to free, the address stays the MAC's
		return nil
	}
	resp, err := dhcpv4.NewReplyFromRequest(req,
		append([]dhcpv4.Modifier{dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(net.IP(ip.AsSlice()))},
			cfg.options(true)...)...)
	if err != nil {
		return nil
	}
	return resp
}

// options are the modifiers every OFFER and ACK carries.
func (c Config) options(lease bool) []dhcpv4.Modifier {
	mask := net.CIDRMask(c.Subnet.Bits(), 32)
	m := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(c.ServerIP.AsSlice()))),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(mask)),
	}
	if c.Broadcast.Is4() {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(net.IP(c.Broadcast.AsSlice()))))
	} else {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptBroadcastAddress(broadcast(c.Subnet))))
	}
	if lease {
		lt := c.LeaseTime
		if lt <= 0 {
			lt = DefaultLeaseTime
		}
		m = append(m, dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lt)))
	}
	if c.MTU > 0 {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, binary.BigEndian.AppendUint16(nil, uint16(c.MTU)))))
	}
	if c.Router.Is4() {
		m = append(m, dhcpv4.WithOption(dhcpv4.OptRouter(net.IP(c.Router.AsSlice()))))
	}
	if len(c.DNS) > 0 {
		var dns []net.IP
		for _, a := range c.DNS {
			if a.Is4() {
				dns = append(dns, net.IP(a.AsSlice()))
			}
		}
		if len(dns) > 0 {
			m = append(m, dhcpv4.WithOption(dhcpv4.OptDNS(dns...)))
		}
	}
	return m
}

func broadcast(p netip.Prefix) net.IP {
	a := p.Masked().Addr().As4()
	host := ^uint32(0) >> p.Bits()
	for i := 0; i < 4; i++ {
		a[i] |= byte(host >> (24 - 8*i))
	}
	return net.IP(a[:])
}

// String summarises c for logs.
func (c Config) String() string {
	var dns []string
	for _, a := range c.DNS {
		dns = append(dns, a.String())
	}
	s := fmt.Sprintf("server %s subnet %s router %s dns [%s]", c.ServerIP, c.Subnet, c.Router, strings.Join(dns, " "))
	if c.MTU > 0 {
		s += fmt.Sprintf(" mtu %d", c.MTU)
	}
	return s
}
