package libvirt

// A throwaway network for the guests these tests boot, standing in for the
// network layer (netmode) and the CLC's metadata service, which are not
// this package's: a bridge of the project's prefix, a DHCP server on it
// (insomniacslk/dhcp server4, as netmode's), a metadata server speaking
// IMDSv2 and v1, reached at 169.254.169.254:80 through one nftables DNAT
// rule in a table of its own that only matches traffic from that bridge.
// All of it is removed when the test ends.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
)

// The fake cloud's bridge has a VXLAN-carried network's MTU (bridgeMTU),
// which the driver gives the guest's NIC at boot; its DHCP offers another
// (guestMTU, option 26), which the guest then applies: the two differ so
// the console shows each step.
const (
	bridgeMTU = 1450
	guestMTU  = 1400
)

type fakeCloud struct {
	bridge string
	gw     net.IP
	mask   net.IPMask

	mu     sync.Mutex
	byMAC  map[string]*fakeGuest
	byIP   map[string]*fakeGuest
	next   byte
	tokens map[string]string // token → instance id
}

type fakeGuest struct {
	id, mac, key, userData string
	ip                     net.IP
	noIMDSv2               bool // PUT /latest/api/token is refused, as by an IMDSv1-only service
	tokenGETs, plainGETs   int
}

func newFakeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	b := make([]byte, 2)
	rand.Read(b)
	c := &fakeCloud{
		bridge: "ehvt" + hex.EncodeToString(b), // not euca-: a cloud on this host owns those and removes what it did not make
		gw:     net.IPv4(10, 213, b[0], 1).To4(),
		mask:   net.CIDRMask(24, 32),
		byMAC:  map[string]*fakeGuest{}, byIP: map[string]*fakeGuest{},
		next: 10, tokens: map[string]string{},
	}
	// The bridge.
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: c.bridge, MTU: bridgeMTU}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge %s: %v", c.bridge, err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: c.gw, Mask: c.mask}}
	if err := netlink.AddrAdd(br, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	// The metadata server, on the gateway address.
	ln, err := net.Listen("tcp4", net.JoinHostPort(c.gw.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(c.metadata), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c.dnat(t, uint16(ln.Addr().(*net.TCPAddr).Port))
	// The DHCP server.
	ds, err := server4.NewServer(c.bridge, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, c.dhcp)
	if err != nil {
		t.Fatal(err)
	}
	go ds.Serve()
	t.Cleanup(func() { ds.Close() })
	return c
}

// add registers a guest; its NIC gets the returned MAC.
func (c *fakeCloud) add(id string, noIMDSv2 bool) *fakeGuest {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := make([]byte, 4)
	rand.Read(b)
	g := &fakeGuest{id: id, noIMDSv2: noIMDSv2,
		mac:      fmt.Sprintf("d0:0d:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]),
		ip:       net.IPv4(c.gw[0], c.gw[1], c.gw[2], c.next).To4(),
		key:      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + hex.EncodeToString(b) + " key-of-" + id,
		userData: "#!/bin/sh\necho user data of " + id}
	c.next++
	c.byMAC[g.mac], c.byIP[g.ip.String()] = g, g
	return g
}

func (c *fakeCloud) guest(mac string) *fakeGuest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byMAC[mac]
}

func (c *fakeCloud) dhcp(conn net.PacketConn, _ net.Addr, m *dhcpv4.DHCPv4) {
	g := c.guest(m.ClientHWAddr.String())
	if g == nil {
		return
	}
	var typ dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
	default:
		return
	}
	resp, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(g.ip), dhcpv4.WithServerIP(c.gw),
		dhcpv4.WithNetmask(c.mask), dhcpv4.WithRouter(c.gw), dhcpv4.WithLeaseTime(3600),
		// server4 does not fill option 54; udhcpc wants it.
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(c.gw)),
		// A network carried over VXLAN offers its MTU; the guest applies it.
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{guestMTU >> 8, guestMTU & 0xff})))
	if err != nil {
		return
	}
	conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
}

// metadata serves the few paths the test guest reads, identifying the
// guest by its address, in AWS's "optional" token mode.
func (c *fakeCloud) metadata(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.byIP[host]
	if g == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if g.noIMDSv2 || err != nil || ttl < 1 {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		b := make([]byte, 16)
		rand.Read(b)
		tok := hex.EncodeToString(b)
		c.tokens[tok] = g.id
		io.WriteString(w, tok)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "no", http.StatusMethodNotAllowed)
		return
	}
	if tok := r.Header.Get("X-aws-ec2-metadata-token"); tok != "" {
		if c.tokens[tok] != g.id {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		g.tokenGETs++
	} else {
		g.plainGETs++
	}
	switch r.URL.Path {
	case "/latest/meta-data/instance-id":
		io.WriteString(w, g.id)
	case "/latest/meta-data/public-keys/0/openssh-key":
		io.WriteString(w, g.key+"\n")
	case "/latest/user-data":
		io.WriteString(w, g.userData)
	default:
		http.NotFound(w, r)
	}
}

// dnat sends what enters the bridge for 169.254.169.254:80 to the metadata
// server, in an nftables table of the test's own.
func (c *fakeCloud) dnat(t *testing.T, port uint16) {
	t.Helper()
	nc, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tbl := nc.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: c.bridge})
	ch := nc.AddChain(&nftables.Chain{Name: "prerouting", Table: tbl, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	ifname := make([]byte, 16)
	copy(ifname, c.bridge)
	nc.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net.IPv4(169, 254, 169, 254).To4()},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{syscall.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(80)},
		&expr.Immediate{Register: 1, Data: c.gw},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: 2 /* NFPROTO_IPV4 */, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}})
	if err := nc.Flush(); err != nil {
		t.Fatalf("nftables: %v", err)
	}
	t.Cleanup(func() {
		nc.DelTable(tbl)
		nc.Flush()
	})
}

// get fetches http://ip/ from the host, as the network tests to come will.
func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
