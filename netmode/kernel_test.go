package netmode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode/dhcp"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// allOut is the egress rule a new group gets: everything, anywhere.
var allOut = []Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// spoofedFromLoopback sends from guest to the host's bridge address
// (10.200.0.1) a UDP datagram from 127.0.0.2 and then one from the guest's
// own address, and checks the host's listener gets the second only: had
// the first passed, it would have arrived before it.
func spoofedFromLoopback(t *testing.T, host, guest netns.NsHandle) {
	t.Helper()
	var ln net.PacketConn
	nstest.MustDo(t, host, func() (err error) {
		ln, err = net.ListenPacket("udp4", "0.0.0.0:18092")
		return err
	})
	defer ln.Close()
	nstest.Addr(t, guest, "eth0", "127.0.0.2/32")
	nstest.MustDo(t, guest, func() error {
		for _, src := range []string{"127.0.0.2", "10.200.0.9"} {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.IPv4(10, 200, 0, 1), Port: 18092})
			if err != nil {
				return err
			}
			_, err = c.Write([]byte(src))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, from, err := ln.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram from the guest's own address: %v", err)
	}
	if got := string(buf[:n]); got != "10.200.0.9" {
		t.Errorf("the host took a datagram from %v (%q): a guest passed for loopback", from, got)
	}
}

// metadata GETs the instance id from 169.254.169.254 in ns and checks the
// metadata server saw the instance's own address.
func metadata(t *testing.T, ns netns.NsHandle, want string) {
	t.Helper()
	body, err := nstest.Metadata(ns, 2*time.Second)
	if err != nil {
		t.Fatalf("GET 169.254.169.254 from %s: %v", want, err)
	}
	if w := "169.254.169.254 /latest/meta-data/instance-id " + want; body != w {
		t.Errorf("metadata server saw %q, want %q", body, w)
	}
}

// ruleHandles is every rule of the euca table by chain and comment.
func ruleHandles(t *testing.T, ns netns.NsHandle) map[string]uint64 {
	t.Helper()
	return nstest.RuleHandles(t, ns, nft.TableName)
}

func linkIndex(t *testing.T, ns netns.NsHandle, name string) int {
	t.Helper()
	idx := 0
	nstest.Do(ns, func() error {
		if l, err := netlink.LinkByName(name); err == nil {
			idx = l.Attrs().Index
		}
		return nil
	})
	return idx
}

func addrsOf(t *testing.T, ns netns.NsHandle, name string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	nstest.MustDo(t, ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		ps, err = link.Addrs(l)
		return err
	})
	return ps
}

// TestKernelManagedNoVLAN builds MANAGED-NOVLAN in a fresh "host"
// namespace and drives it from three others over veths:
//
//	inst1 (i-web, sg-web, elastic IP 10.99.0.100) ─┐
//	inst2 (i-cli, sg-cli)                          ├─ euca-br0 [host 10.200.0.1/16] ── pub0 10.99.0.1 ── out 10.99.0.2
//	tap euca-t3 (i-tap, no namespace)             ─┘
//
// sg-web admits TCP 8080 from 10.99.0.0/24 and TCP 9090 from sg-cli;
// sg-cli admits nothing.
func TestKernelManagedNoVLAN(t *testing.T) {
	host, inst1, inst2, out := nstest.New(t), nstest.New(t), nstest.New(t), nstest.New(t)
	mac1, mac2 := mac("d0:0d:0a:c8:00:02"), mac("d0:0d:0a:c8:00:03")
	nstest.Veth(t, host, "vi1", inst1, "eth0", mac1)
	nstest.Veth(t, host, "vi2", inst2, "eth0", mac2)
	nstest.Veth(t, host, "pub0", out, "eth0", nil)
	nstest.Addr(t, host, "pub0", "10.99.0.1/24")
	nstest.Addr(t, out, "eth0", "10.99.0.2/24")
	nstest.DefaultRoute(t, host, net.ParseIP("10.99.0.2")) // pub0 becomes the public interface

	m, err := New(Config{Mode: ManagedNoVLAN, Subnet: mp("10.200.0.0/16"), DNS: []netip.Addr{ma("10.255.255.53")},
		PublicIPs: []netip.Addr{ma("10.99.0.100"), ma("10.99.0.101")}}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := func(st State) {
		t.Helper()
		nstest.MustDo(t, host, func() error { return m.Set(ctx, st) })
	}
	t.Cleanup(func() { nstest.Do(host, func() error { return m.Close(ctx) }) })

	// The metadata service: a plain HTTP server on the host, where the
	// CLC's listener would be, telling each request its source address.
	var mdLn net.Listener
	nstest.MustDo(t, host, func() (err error) { mdLn, err = net.Listen("tcp4", "0.0.0.0:18080"); return err })
	go http.Serve(mdLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s %s", r.Host, r.URL.Path, host)
	}))
	t.Cleanup(func() { mdLn.Close() })

	st := State{
		Metadata: netip.MustParseAddrPort("10.200.0.1:18080"),
		Instances: []Instance{
			{ID: "i-web", MAC: mac1, PrivateIP: ma("10.200.0.2"), PublicIP: ma("10.99.0.100"), Groups: []string{"sg-web"}},
			{ID: "i-cli", MAC: mac2, PrivateIP: ma("10.200.0.3"), Groups: []string{"sg-cli"}},
			{ID: "i-tap", MAC: mac("d0:0d:0a:c8:00:04"), PrivateIP: ma("10.200.0.4"), Groups: []string{"sg-cli"}, Tap: "euca-t3"},
		},
		Groups: []Group{
			{ID: "sg-web", Ingress: []Rule{
				{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDR: mp("10.99.0.0/24")},
				{Protocol: "tcp", FromPort: 9090, ToPort: 9090, PeerGroup: "sg-cli"},
			}, Egress: allOut},
			{ID: "sg-cli", Egress: allOut},
		},
	}
	set(st)

	t.Run("set builds the bridge, addresses, tap, rules and forwarding", func(t *testing.T) {
		if got := addrsOf(t, host, "euca-br0"); len(got) != 1 || got[0] != mp("10.200.0.1/16") {
			t.Errorf("bridge addresses %v", got)
		}
		if got := addrsOf(t, host, "pub0"); !containsP(got, mp("10.99.0.100/32")) {
			t.Errorf("elastic IP not on pub0: %v", got)
		}
		nstest.MustDo(t, host, func() error {
			tap, err := netlink.LinkByName("euca-t3")
			if err != nil {
				return err
			}
			br, _ := netlink.LinkByName("euca-br0")
			if tap.Attrs().MasterIndex != br.Attrs().Index || tap.Attrs().HardwareAddr.String() != "fe:0d:0a:c8:00:04" {
				t.Errorf("tap %+v", tap.Attrs())
			}
			b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			if strings.TrimSpace(string(b)) != "1" {
				t.Errorf("ip_forward %q", b)
			}
			return nil
		})
		if len(ruleHandles(t, host)) == 0 {
			t.Error("no rules")
		}
	})

	t.Run("set twice changes nothing", func(t *testing.T) {
		before, brIdx, srv := ruleHandles(t, host), linkIndex(t, host, "euca-br0"), m.(*managed).dhcp.byBr["euca-br0"]
		st2 := st
		st2.Instances = []Instance{st.Instances[2], st.Instances[0], st.Instances[1]} // order does not matter
		set(st2)
		after := ruleHandles(t, host)
		if len(after) != len(before) {
			t.Fatalf("%d rules, then %d", len(before), len(after))
		}
		for k, h := range before {
			if after[k] != h {
				t.Errorf("rule %s replaced (handle %d -> %d)", k, h, after[k])
			}
		}
		if linkIndex(t, host, "euca-br0") != brIdx || m.(*managed).dhcp.byBr["euca-br0"] != srv {
			t.Error("bridge or DHCP server remade")
		}
	})

	nstest.Attach(t, host, "vi1", "euca-br0")
	nstest.Attach(t, host, "vi2", "euca-br0")

	t.Run("dhcp gives each MAC its address", func(t *testing.T) {
		for _, tc := range []struct {
			ns   netns.NsHandle
			want string
		}{{inst1, "10.200.0.2"}, {inst2, "10.200.0.3"}} {
			l, err := nstest.Lease(tc.ns, "eth0", nil, 3)
			if err != nil {
				t.Fatalf("lease for %s: %v", tc.want, err)
			}
			ack := l.ACK
			ones, _ := ack.SubnetMask().Size()
			if ack.YourIPAddr.String() != tc.want || ones != 16 || ack.Router()[0].String() != "10.200.0.1" ||
				ack.ServerIdentifier().String() != "10.200.0.1" || len(ack.DNS()) != 1 || ack.DNS()[0].String() != "10.255.255.53" ||
				ack.IPAddressLeaseTime(0) != dhcp.DefaultLeaseTime {
				t.Errorf("lease %s", ack.Summary())
			}
			nstest.Configure(t, tc.ns, "eth0", ack)
		}
		// An unknown MAC, from the same wire: no answer at all.
		if l, err := nstest.Lease(inst2, "eth0", mac("d0:0d:0a:c8:00:99"), 1); err == nil {
			t.Errorf("unknown MAC leased %s", l.ACK.YourIPAddr)
		}
	})
	if t.Failed() {
		t.FailNow() // the rest needs the leases
	}

	nstest.ServeWho(t, out, "10.99.0.2:7000")
	nstest.ServeWho(t, inst1, "0.0.0.0:8080")
	nstest.ServeWho(t, inst1, "0.0.0.0:9090")
	nstest.ServeWho(t, inst1, "0.0.0.0:2222")
	nstest.ServeWho(t, inst2, "0.0.0.0:5000")

	t.Run("metadata DNAT keeps the instance's address", func(t *testing.T) {
		metadata(t, inst1, "10.200.0.2")
		metadata(t, inst2, "10.200.0.3")
		// A CLC listening on loopback only is reached too (route_localnet).
		var lo net.Listener
		nstest.MustDo(t, host, func() (err error) { lo, err = net.Listen("tcp4", "127.0.0.1:18090"); return err })
		defer lo.Close()
		go http.Serve(lo, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "%s %s %s", r.Host, r.URL.Path, host)
		}))
		stLo := st
		stLo.Metadata = netip.MustParseAddrPort("127.0.0.1:18090")
		set(stLo)
		metadata(t, inst1, "10.200.0.2")
		// route_localnet, which that needs on the bridge, must not open
		// the host's loopback to the bridge: a guest routing 127.0.0.0/8
		// to its gateway reaches neither the listener nor anything else
		// there, while the redirect still does.
		rogue := nstest.New(t)
		nstest.Veth(t, host, "vi9", rogue, "eth0", mac("d0:0d:0a:c8:00:09"))
		nstest.Attach(t, host, "vi9", "euca-br0")
		nstest.Addr(t, rogue, "eth0", "10.200.0.9/16")
		nstest.MustDo(t, rogue, func() error {
			// The guest's own kernel lets it send there: no loopback
			// address of its own, 127.0.0.0/8 routed to its gateway, and
			// route_localnet to accept the answers.
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := netlink.AddrDel(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)}}); err != nil {
				return err
			}
			for _, c := range []string{"all", "eth0"} {
				if _, err := link.WriteSysctl("/proc/sys/net/ipv4/conf/"+c+"/route_localnet", "1"); err != nil {
					return err
				}
			}
			eth, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			_, lonet, _ := net.ParseCIDR("127.0.0.0/8")
			return netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: lonet, Gw: net.ParseIP("10.200.0.1")})
		})
		nstest.ServeWho(t, host, "127.0.0.1:18091")
		nstest.MustNotConnect(t, rogue, "127.0.0.1:18090")
		nstest.MustNotConnect(t, rogue, "127.0.0.1:18091")
		// Nor does route_localnet let a guest pass for the host itself:
		// a datagram it sends from a loopback address (127.0.0.2, which
		// the host's kernel would take as the host's own) is dropped,
		// while one from its own address, sent after it, arrives.
		spoofedFromLoopback(t, host, rogue)
		metadata(t, inst1, "10.200.0.2")
		// The target off loopback again: the guard goes with it, and so
		// must route_localnet, or the host's loopback is open to the
		// bridge.
		set(st)
		nstest.MustNotConnect(t, rogue, "127.0.0.1:18091")
	})

	t.Run("outbound NAT", func(t *testing.T) {
		nstest.MustWho(t, inst2, "10.99.0.2:7000", "10.99.0.1")   // masqueraded
		nstest.MustWho(t, inst1, "10.99.0.2:7000", "10.99.0.100") // its elastic IP
	})

	t.Run("security groups filter", func(t *testing.T) {
		nstest.MustWho(t, out, "10.99.0.100:8080", "10.99.0.2")   // DNAT to i-web, CIDR rule, source kept
		nstest.MustNotConnect(t, out, "10.99.0.100:2222")         // no rule
		nstest.MustWho(t, inst2, "10.200.0.2:9090", "10.200.0.3") // peer-group rule, bridged
		nstest.MustNotConnect(t, inst2, "10.200.0.2:8080")        // the CIDR rule is for 10.99.0.0/24
		nstest.MustNotConnect(t, inst1, "10.200.0.3:5000")        // sg-cli admits nothing
	})

	t.Run("set removes what is no longer wanted", func(t *testing.T) {
		st3 := st
		st3.Instances = []Instance{st.Instances[0]}
		st3.Instances[0].PublicIP = netip.Addr{}
		st3.Groups = []Group{st.Groups[0]}
		set(st3)
		nstest.MustDo(t, host, func() error {
			if link.Exists("euca-t3") {
				t.Error("tap of a gone instance kept")
			}
			return nil
		})
		if got := addrsOf(t, host, "pub0"); containsP(got, mp("10.99.0.100/32")) || !containsP(got, mp("10.99.0.1/24")) {
			t.Errorf("pub0 addresses %v: elastic IP should go, the host's stay", got)
		}
		h := ruleHandles(t, host)
		for k := range h {
			if strings.Contains(k, "i-cli") || strings.Contains(k, "elastic") {
				t.Errorf("stale rule %s", k)
			}
		}
		// i-cli's MAC is no longer served.
		if l, err := nstest.Lease(inst2, "eth0", nil, 1); err == nil {
			t.Errorf("gone instance leased %s", l.ACK.YourIPAddr)
		}
		nstest.MustNotConnect(t, out, "10.99.0.100:8080")
	})

	t.Run("close removes everything", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			nstest.MustDo(t, host, func() error { return m.Close(ctx) })
		}
		nstest.MustDo(t, host, func() error {
			for _, kind := range []string{link.KindBridge, link.KindTap, link.KindVLAN} {
				if ls, _ := link.List(kind); len(ls) != 0 {
					t.Errorf("%d %s links left", len(ls), kind)
				}
			}
			c, _ := nftables.New()
			if ok, _ := nft.Exists(c, nft.TableName); ok {
				t.Error("nftables table left")
			}
			// The DHCP port is free again.
			conn, err := net.ListenPacket("udp4", "0.0.0.0:67")
			if err != nil {
				t.Errorf("DHCP server still bound: %v", err)
			} else {
				conn.Close()
			}
			return nil
		})
		if got := addrsOf(t, host, "pub0"); len(got) != 1 {
			t.Errorf("pub0 addresses after Close: %v", got)
		}
	})
}

func containsP(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// TestKernelManaged: MANAGED without VNET_PRIVINTERFACE keeps each
// group's segment on its own bridge on this host (no 802.1Q needed); a
// client on one segment leases from that segment's gateway. With a
// VNET_PRIVINTERFACE the VLAN devices need 802.1Q, which this kernel may
// lack: then that part skips.
func TestKernelManaged(t *testing.T) {
	host, inst := nstest.New(t), nstest.New(t)
	m, err := New(Config{Mode: Managed, Subnet: mp("10.201.0.0/16"), AddrsPerNet: 32}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mac1 := mac("d0:0d:0a:c9:00:22")
	st := State{
		Instances: []Instance{
			{ID: "i-a", MAC: mac("d0:0d:0a:c9:00:02"), PrivateIP: ma("10.201.0.2"), Groups: []string{"sg-a"}},
			{ID: "i-b", MAC: mac1, PrivateIP: ma("10.201.0.34"), Groups: []string{"sg-b"}},
		},
		Groups: []Group{{ID: "sg-a", Segment: 0, Egress: allOut}, {ID: "sg-b", Segment: 1, Egress: allOut}},
	}
	nstest.MustDo(t, host, func() error { return m.Set(ctx, st) })
	defer nstest.Do(host, func() error { return m.Close(ctx) })
	if got := addrsOf(t, host, "euca-br2"); len(got) != 1 || got[0] != mp("10.201.0.1/27") {
		t.Errorf("segment 0 bridge %v", got)
	}
	if got := addrsOf(t, host, "euca-br3"); len(got) != 1 || got[0] != mp("10.201.0.33/27") {
		t.Errorf("segment 1 bridge %v", got)
	}
	nstest.Veth(t, host, "vb", inst, "eth0", mac1)
	nstest.Attach(t, host, "vb", m.Bridge(1))
	l, err := nstest.Lease(inst, "eth0", nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l.ACK.YourIPAddr.String() != "10.201.0.34" || l.ACK.Router()[0].String() != "10.201.0.33" || l.ACK.ServerIdentifier().String() != "10.201.0.33" {
		t.Errorf("segment lease %s", l.ACK.Summary())
	}

	// sg-a's last instance goes: its segment's bridge goes too.
	st.Instances = st.Instances[1:]
	nstest.MustDo(t, host, func() error { return m.Set(ctx, st) })
	nstest.MustDo(t, host, func() error {
		if link.Exists("euca-br2") || !link.Exists("euca-br3") {
			t.Error("segment bridges not reconciled")
		}
		return nil
	})

}

// TestKernelManagedVLAN: with VNET_PRIVINTERFACE, each segment's bridge
// also carries a VLAN device on it. A kernel without 802.1Q (this kind of
// machine's, MACHINE.md) must not stop MANAGED: the segment is built
// untagged; the VLAN device's check then skips, with the kernel's own
// refusal as the reason (a kernel without 802.1Q answers a request for a
// "vlan" link with EOPNOTSUPP, which ip(8) prints as "Unknown device
// type"; any other failure to make one fails the test, under CI too).
func TestKernelManagedVLAN(t *testing.T) {
	host := nstest.New(t)
	ctx := context.Background()
	st := State{
		Instances: []Instance{{ID: "i-b", MAC: mac("d0:0d:0a:c9:00:22"), PrivateIP: ma("10.201.0.34"), Groups: []string{"sg-b"}}},
		Groups:    []Group{{ID: "sg-b", Segment: 1}},
	}
	nstest.Veth(t, host, "priv0", nstest.New(t), "peer", nil)
	mv, err := New(Config{Mode: Managed, Subnet: mp("10.201.0.0/16"), AddrsPerNet: 32, PrivInterface: "priv0"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Do(host, func() error { return mv.Close(ctx) }) })
	if err := nstest.Do(host, func() error { return mv.Set(ctx, st) }); err != nil {
		t.Fatalf("MANAGED with VNET_PRIVINTERFACE: %v", err)
	}
	var tagged bool
	var probe error
	nstest.MustDo(t, host, func() error {
		if !link.Exists("euca-br3") {
			t.Error("no bridge for segment 1")
		}
		if tagged = link.Exists(link.VLANName(3)); tagged {
			if masterName(nstest.MustLink(t, link.VLANName(3))) != "euca-br3" {
				t.Error("VLAN device of segment 1 not on its bridge")
			}
			return nil
		}
		// No VLAN device: only a kernel that refuses 802.1Q excuses it.
		probe = link.EnsureVLAN("mgd-vl9", "priv0", 9, nstest.MustLink(t, "euca-br3"))
		return nil
	})
	if !tagged {
		if errors.Is(probe, link.ErrNoVLAN) {
			t.Skipf("kernel without 802.1Q (see MACHINE.md); the segment was built untagged: %v", probe)
		}
		t.Fatalf("the kernel makes VLAN devices (%v) but MANAGED made none for segment 1", probe)
	}
}

// TestKernelStaticSystem: STATIC serves the VNET_MACMAP pair on the
// operator's bridge with VNET_ROUTER; SYSTEM only attaches taps. Neither
// removes the operator's bridge.
func TestKernelStaticSystem(t *testing.T) {
	host, inst := nstest.New(t), nstest.New(t)
	nstest.MustDo(t, host, func() error {
		_, _, err := link.EnsureBridge("br-lan", nil)
		return err
	})
	nstest.Addr(t, host, "br-lan", "192.168.50.1/24")
	pair := mac("d0:0d:00:00:00:0a")
	nstest.Veth(t, host, "vs", inst, "eth0", pair)
	nstest.Attach(t, host, "vs", "br-lan")
	ctx := context.Background()

	st, err := New(Config{Mode: Static, Bridge: "br-lan", Subnet: mp("192.168.50.0/24"), Router: ma("192.168.50.254"),
		MACMap: []conf.MACIP{{MAC: pair, IP: ma("192.168.50.10")}}}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := st.Allocate(nil, 0)
	state := State{Instances: []Instance{{ID: "i-s", MAC: a.MAC, PrivateIP: a.PrivateIP, Tap: "euca-ts"}},
		Metadata: netip.MustParseAddrPort("127.0.0.1:18081")}
	nstest.MustDo(t, host, func() error { return st.Set(ctx, state) })
	l, err := nstest.Lease(inst, "eth0", nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l.ACK.YourIPAddr.String() != "192.168.50.10" || l.ACK.Router()[0].String() != "192.168.50.254" || l.ACK.ServerIdentifier().String() != "192.168.50.1" {
		t.Errorf("STATIC lease %s", l.ACK.Summary())
	}
	// The metadata redirect only, to the listener on loopback, and the
	// guard that keeps the LAN (this bridge) from the host's loopback, and
	// from passing for it.
	if got := ruleHandles(t, host); len(got) != 4 || got["prerouting/metadata from br-lan to 127.0.0.1:18081"] == 0 ||
		got["guard/nothing to loopback from br-lan"] == 0 || got["guard/nothing from loopback on br-lan"] == 0 {
		t.Errorf("STATIC rules %v: the metadata redirect only", got)
	}
	nstest.MustDo(t, host, func() error { return st.Close(ctx) })

	sy, err := New(Config{Mode: System, Bridge: "br-lan"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	a, _ = sy.Allocate(nil, 0)
	nstest.MustDo(t, host, func() error {
		if err := sy.Set(ctx, State{Instances: []Instance{{ID: "i-y", MAC: a.MAC, Tap: "euca-ty"}}}); err != nil {
			return err
		}
		tap, err := netlink.LinkByName("euca-ty")
		if err != nil {
			return err
		}
		if br, _ := netlink.LinkByName("br-lan"); tap.Attrs().MasterIndex != br.Attrs().Index {
			t.Error("SYSTEM tap not on the bridge")
		}
		if err := sy.Close(ctx); err != nil {
			return err
		}
		if link.Exists("euca-ty") || !link.Exists("br-lan") {
			t.Error("SYSTEM Close: the tap goes, the operator's bridge stays")
		}
		return nil
	})
	if got := addrsOf(t, host, "br-lan"); len(got) != 1 {
		t.Errorf("operator's bridge addresses changed: %v", got)
	}
}

// staticDocBlock is the 1.5 documentation's STATIC front-end block
// (testdata/eucalyptus-1.5-doc/static-frontend.conf, typographic quotes
// and all) on this test's addresses, with the node's VNET_BRIDGE.
const staticDocBlock = `VNET_MODE=”STATIC”
VNET_INTERFACE=”eth0”
VNET_DHCPDAEMON=”/usr/sbin/dhcp3”
VNET_DHCPUSER=”<dhcpusername>”
VNET_SUBNET=”10.243.1.0”
VNET_NETMASK=”255.255.255.0”
VNET_BROADCAST=”10.243.1.255”
VNET_ROUTER=”10.243.1.1”
VNET_DNS=”10.243.1.2”
VNET_MACMAP= ”00:AA:DD:11:CE:FE=10.243.1.3
     00:AA:DD:11:CE:FF=10.243.1.4”
VNET_BRIDGE=”stsbr”
`

// TestKernelStaticLease: a guest of the documentation's STATIC block gets
// its VNET_MACMAP pair from the cluster's DHCP with everything the block
// names: VNET_ROUTER, VNET_DNS, VNET_BROADCAST and the netmask.
func TestKernelStaticLease(t *testing.T) {
	c, diags := conf.Parse(strings.NewReader(staticDocBlock), "static.conf")
	if conf.HasErrors(diags) {
		t.Fatalf("doc block: %v", diags)
	}
	host, guest := nstest.New(t), nstest.New(t)
	nstest.MustDo(t, host, func() error {
		_, _, err := link.EnsureBridge("stsbr", nil)
		return err
	})
	nstest.Addr(t, host, "stsbr", "10.243.1.250/24")
	nstest.Veth(t, host, "stsv", guest, "eth0", mac("00:aa:dd:11:ce:fe"))
	nstest.Attach(t, host, "stsv", "stsbr")
	m, err := FromConf(c, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := m.Allocate(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	nstest.MustDo(t, host, func() error {
		return m.Set(ctx, State{Instances: []Instance{{ID: "i-sts", MAC: a.MAC, PrivateIP: a.PrivateIP}}})
	})
	defer nstest.MustDo(t, host, func() error { return m.Close(ctx) })
	l, err := nstest.Lease(guest, "eth0", nil, 3)
	if err != nil {
		t.Fatal(err)
	}
	ack := l.ACK
	got := fmt.Sprintf("ip=%s router=%v dns=%v broadcast=%v mask=%v server=%v", ack.YourIPAddr, ack.Router(), ack.DNS(),
		ack.BroadcastAddress(), net.IP(ack.SubnetMask()), ack.ServerIdentifier())
	if want := "ip=10.243.1.3 router=[10.243.1.1] dns=[10.243.1.2] broadcast=10.243.1.255 mask=255.255.255.0 server=10.243.1.250"; got != want {
		t.Errorf("STATIC lease\n got %s\nwant %s", got, want)
	}
}
