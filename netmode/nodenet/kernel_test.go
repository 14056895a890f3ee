package nodenet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var (
	ma  = netip.MustParseAddr
	mp  = netip.MustParsePrefix
	mac = func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
)

// allOut is the egress rule a new group gets: everything, anywhere.
var allOut = []netmode.Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// hosts is the test's machines: a LAN, a cluster controller on it with
// the way out, two nodes, and guests on the nodes.
//
//	out 10.99.0.2 ── pub0 10.99.0.1 [cc 192.0.2.1, euca-br0 10.210.0.1/16, DHCP, NAT, metadata]
//	                                    │ lan0 (bridge in ns lan), VXLAN VNI 1 over it
//	              n1 192.0.2.2 [euca-br0] ─┴─ n2 192.0.2.3 [euca-br0]
//	              ├ g1 i-web (sg-web)          └ g2 i-cli (sg-cli)
//	              └ g3 i-db  (sg-cli)
type hosts struct {
	lan, cc, n1, n2, g1, g2, g3, out netns.NsHandle
}

func lanBridge(t *testing.T, ns netns.NsHandle, ports ...string) {
	t.Helper()
	nstest.Bridge(t, ns, "lan0", ports...)
}

// metadata GETs a path of 169.254.169.254 from ns and checks the metadata
// server (on the controller's loopback) saw the instance's own address.
func metadata(t *testing.T, ns netns.NsHandle, want string) {
	t.Helper()
	body, err := nstest.Metadata(ns, 3*time.Second)
	if err != nil {
		t.Errorf("GET 169.254.169.254 from %s: %v", want, err)
	} else if body != "/latest/meta-data/instance-id "+want {
		t.Errorf("metadata server saw %q, want the request from %s", body, want)
	}
}

func links(t *testing.T, ns netns.NsHandle, kind string) []string {
	t.Helper()
	var out []string
	nstest.MustDo(t, ns, func() error {
		ls, err := link.List(kind)
		for _, l := range ls {
			out = append(out, l.Attrs().Name)
		}
		return err
	})
	return out
}

// TestKernelAcrossHosts: guests on two nodes lease from the cluster
// controller across VXLAN, reach its metadata redirect and its NAT, send
// full-size packets at the MTU the lease gives, and reach each other, on
// one node and across nodes, only as their groups allow; then the
// segments are reconciled away and nothing is left.
func TestKernelAcrossHosts(t *testing.T) {
	h := hosts{}
	for _, p := range []*netns.NsHandle{&h.lan, &h.cc, &h.n1, &h.n2, &h.g1, &h.g2, &h.g3, &h.out} {
		*p = nstest.New(t)
	}
	nstest.Veth(t, h.cc, "eth0", h.lan, "pcc", nil)
	nstest.Veth(t, h.n1, "eth0", h.lan, "pn1", nil)
	nstest.Veth(t, h.n2, "eth0", h.lan, "pn2", nil)
	lanBridge(t, h.lan, "pcc", "pn1", "pn2")
	ccIP, n1IP, n2IP := ma("192.0.2.1"), ma("192.0.2.2"), ma("192.0.2.3")
	nstest.Addr(t, h.cc, "eth0", "192.0.2.1/24")
	nstest.Addr(t, h.n1, "eth0", "192.0.2.2/24")
	nstest.Addr(t, h.n2, "eth0", "192.0.2.3/24")
	nstest.Veth(t, h.cc, "pub0", h.out, "eth0", nil)
	nstest.Addr(t, h.cc, "pub0", "10.99.0.1/24")
	nstest.Addr(t, h.out, "eth0", "10.99.0.2/24")
	nstest.DefaultRoute(t, h.cc, net.ParseIP("10.99.0.2"))

	mac1, mac2, mac3 := mac("d0:0d:0a:d2:00:02"), mac("d0:0d:0a:d2:00:03"), mac("d0:0d:0a:d2:00:04")
	nstest.Veth(t, h.n1, "v1", h.g1, "eth0", mac1)
	nstest.Veth(t, h.n2, "v2", h.g2, "eth0", mac2)
	nstest.Veth(t, h.n1, "v3", h.g3, "eth0", mac3)

	// The metadata service: on the controller's loopback, as the CLC's is.
	var mdLn net.Listener
	nstest.MustDo(t, h.cc, func() (err error) { mdLn, err = net.Listen("tcp4", "127.0.0.1:0"); return err })
	t.Cleanup(func() { mdLn.Close() })
	go http.Serve(mdLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s", r.URL.Path, host)
	}))

	ctx := context.Background()
	mode, err := netmode.New(netmode.Config{Mode: netmode.ManagedNoVLAN, Subnet: mp("10.210.0.0/16"),
		DNS: []netip.Addr{ma("10.255.255.53")}}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Do(h.cc, func() error { return mode.Close(ctx) }) })
	instances := []netmode.Instance{
		{ID: "i-web", MAC: mac1, PrivateIP: ma("10.210.0.2"), Groups: []string{"sg-web"}},
		{ID: "i-cli", MAC: mac2, PrivateIP: ma("10.210.0.3"), Groups: []string{"sg-cli"}},
		{ID: "i-db", MAC: mac3, PrivateIP: ma("10.210.0.4"), Groups: []string{"sg-cli"}},
	}
	groups := []netmode.Group{
		// sg-web: TCP 8080 from sg-cli. sg-cli: ICMP echo from sg-web.
		{ID: "sg-web", Ingress: []netmode.Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, PeerGroup: "sg-cli"}}, Egress: allOut},
		{ID: "sg-cli", Ingress: []netmode.Rule{{Protocol: "icmp", FromPort: 8, ToPort: -1, PeerGroup: "sg-web"}}, Egress: allOut},
	}
	st := netmode.State{Metadata: netip.AddrPortFrom(ma("127.0.0.1"), uint16(mdLn.Addr().(*net.TCPAddr).Port)),
		Instances: instances, Groups: groups, Peers: []netip.Addr{n1IP, n2IP}}
	nstest.MustDo(t, h.cc, func() error { return mode.Set(ctx, st) })

	seg := func(remotes ...netip.Addr) Segment {
		return Segment{Bridge: mode.Bridge(0), VNI: mode.VNI(0), Gateway: ma("10.210.0.1"), Remotes: remotes}
	}
	nodeNet := func(remotes ...netip.Addr) Network {
		return Network{Segments: []Segment{seg(remotes...)}, Subnet: mp("10.210.0.0/16"), Instances: instances, Groups: groups}
	}
	a1, err := New(Config{}, testLog()) // the underlay by route
	if err != nil {
		t.Fatal(err)
	}
	a2, err := New(Config{PrivInterface: "eth0", LocalIP: n2IP}, testLog()) // named
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nstest.Do(h.n1, func() error { return a1.Close(ctx) })
		nstest.Do(h.n2, func() error { return a2.Close(ctx) })
	})
	// Each node is handed the controller first and every node of the
	// cluster (itself included, as the controller sends one list to all).
	nstest.MustDo(t, h.n1, func() error { return a1.Set(ctx, nodeNet(ccIP, n1IP, n2IP)) })
	nstest.MustDo(t, h.n2, func() error { return a2.Set(ctx, nodeNet(ccIP, n1IP, n2IP)) })
	nstest.Attach(t, h.n1, "v1", "euca-br0")
	nstest.Attach(t, h.n2, "v2", "euca-br0")
	nstest.Attach(t, h.n1, "v3", "euca-br0")

	t.Run("segments", func(t *testing.T) {
		nstest.MustDo(t, h.n1, func() error {
			if got, err := link.FDB(link.VXLANName(1)); err != nil || !slices.Equal(got, []netip.Addr{ccIP, n2IP}) {
				t.Errorf("n1 floods to %v, %v: want the controller and n2, not itself", got, err)
			}
			l := nstest.MustLink(t, link.VXLANName(1))
			if l.Attrs().MTU != 1450 || l.Attrs().Alias != Alias || masterOf(l) != "euca-br0" {
				t.Errorf("n1 tunnel %+v", l.Attrs())
			}
			if ps, _ := link.Addrs(nstest.MustLink(t, "euca-br0")); len(ps) != 0 {
				t.Errorf("a node's bridge has addresses %v", ps)
			}
			return nil
		})
		nstest.MustDo(t, h.cc, func() error {
			if got, err := link.FDB(link.VXLANName(1)); err != nil || !slices.Equal(got, []netip.Addr{n1IP, n2IP}) {
				t.Errorf("cc floods to %v, %v", got, err)
			}
			return nil
		})
	})

	t.Run("leases from the controller across the tunnel", func(t *testing.T) {
		for _, g := range []struct {
			ns   netns.NsHandle
			want string
		}{{h.g1, "10.210.0.2"}, {h.g2, "10.210.0.3"}, {h.g3, "10.210.0.4"}} {
			l, err := nstest.Lease(g.ns, "eth0", nil, 4)
			if err != nil {
				t.Fatalf("lease for %s: %v", g.want, err)
			}
			if l.ACK.YourIPAddr.String() != g.want || l.ACK.Router()[0].String() != "10.210.0.1" {
				t.Errorf("lease %s", l.ACK.Summary())
			}
			// The tunnel's MTU is offered (option 26): 1500 less 50.
			if got := nstest.LeaseMTU(l.ACK); got != 1450 {
				t.Errorf("lease for %s offers MTU %d, want 1450", g.want, got)
			}
			nstest.Configure(t, g.ns, "eth0", l.ACK)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	nstest.ServeWho(t, h.out, "10.99.0.2:7000")
	nstest.ServeWho(t, h.g1, "0.0.0.0:8080")
	nstest.ServeWho(t, h.g1, "0.0.0.0:2222")
	nstest.ServeWho(t, h.g2, "0.0.0.0:5000")
	nstest.ServeWho(t, h.g3, "0.0.0.0:5000")
	nstest.ServeWho(t, h.cc, "10.210.0.1:7001")

	t.Run("metadata and NAT at the controller", func(t *testing.T) {
		metadata(t, h.g1, "10.210.0.2")
		metadata(t, h.g2, "10.210.0.3")
		nstest.MustWho(t, h.g2, "10.99.0.2:7000", "10.99.0.1")
	})

	t.Run("groups hold on one node and across nodes", func(t *testing.T) {
		nstest.MustWho(t, h.g2, "10.210.0.2:8080", "10.210.0.3") // n2 -> n1, sg-cli -> sg-web 8080
		nstest.MustWho(t, h.g3, "10.210.0.2:8080", "10.210.0.4") // on n1, bridged there only
		nstest.MustNotConnect(t, h.g2, "10.210.0.2:2222")        // across nodes, no rule
		nstest.MustNotConnect(t, h.g3, "10.210.0.2:2222")        // on one node, no rule
		nstest.MustNotConnect(t, h.g1, "10.210.0.4:5000")        // on one node: sg-cli admits no TCP
		nstest.MustNotConnect(t, h.g1, "10.210.0.3:5000")        // across nodes
		nstest.MustNotConnect(t, h.g3, "10.210.0.3:5000")        // sg-cli to sg-cli across nodes
	})

	t.Run("egress holds on the nodes", func(t *testing.T) {
		// The nodes alone are told that sg-cli may send nothing: what its
		// members send is dropped on their own node, across nodes, on one
		// node and out through the controller, while the metadata
		// service, the cloud's own, still answers. Then restored.
		shut := slices.Clone(groups)
		shut[1].Egress = nil
		set := func(gs []netmode.Group) {
			n := nodeNet(ccIP, n1IP, n2IP)
			n.Groups = gs
			nstest.MustDo(t, h.n1, func() error { return a1.Set(ctx, n) })
			nstest.MustDo(t, h.n2, func() error { return a2.Set(ctx, n) })
		}
		set(shut)
		nstest.MustNotConnect(t, h.g2, "10.210.0.2:8080") // n2 -> n1
		nstest.MustNotConnect(t, h.g3, "10.210.0.2:8080") // on n1
		nstest.MustNotConnect(t, h.g2, "10.99.0.2:7000")  // out through the controller
		metadata(t, h.g2, "10.210.0.3")
		set(groups)
		nstest.MustWho(t, h.g2, "10.210.0.2:8080", "10.210.0.3")
		nstest.MustWho(t, h.g3, "10.210.0.2:8080", "10.210.0.4")
		nstest.MustWho(t, h.g2, "10.99.0.2:7000", "10.99.0.1")
	})

	t.Run("no broadcast or multicast past the groups", func(t *testing.T) {
		// Neither is an instance's address, so no ingress rule sees them:
		// a guest's broadcast and multicast must not reach the guests of
		// a group that does not admit it (sg-cli admits only ICMP from
		// sg-web), on its own node or across the tunnel. (The leases
		// above are DHCP's broadcasts, which pass.)
		g2, g3 := nstest.Listen(t, h.g2, "eth0"), nstest.Listen(t, h.g3, "eth0")
		nstest.MustDo(t, h.g1, func() error {
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := setBroadcast(c); err != nil {
				return err
			}
			for _, to := range []string{"255.255.255.255:5353", "224.0.0.251:5353"} {
				if _, err := c.WriteToUDPAddrPort([]byte("NSR-CAST-"+to), netip.MustParseAddrPort(to)); err != nil {
					return fmt.Errorf("to %s: %w", to, err)
				}
			}
			return nil
		})
		for end := time.Now().Add(nstest.Refused); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		}
		for _, to := range []string{"255.255.255.255:5353", "224.0.0.251:5353"} {
			if g3.Seen("NSR-CAST-" + to) {
				t.Errorf("sg-web's %s reached sg-cli on its node", to)
			}
			if g2.Seen("NSR-CAST-" + to) {
				t.Errorf("sg-web's %s reached sg-cli across the tunnel", to)
			}
		}
	})

	t.Run("no instance's address from outside", func(t *testing.T) {
		// A host on the controller's public side sends, routed through
		// the controller, an ICMP echo as i-web (sg-web) to i-db (sg-cli,
		// which admits ICMP echo from sg-web): a source of the cloud's
		// subnet that did not come in on the cloud's bridges is forged,
		// and must not be taken for the instance that holds it.
		g3 := nstest.Listen(t, h.g3, "eth0")
		var pubMAC, outMAC net.HardwareAddr
		nstest.MustDo(t, h.cc, func() error { pubMAC = nstest.MustLink(t, "pub0").Attrs().HardwareAddr; return nil })
		nstest.MustDo(t, h.out, func() error { outMAC = nstest.MustLink(t, "eth0").Attrs().HardwareAddr; return nil })
		echo := append([]byte{8, 0, 0, 0, 0x12, 0x34, 0, 1}, "NSR-FORGED-ECHO."...)
		sum := nstest.Checksum(echo)
		echo[2], echo[3] = byte(sum>>8), byte(sum)
		frame := nstest.EtherFrame(outMAC, pubMAC, 0x0800, nstest.IPv4Packet(ma("10.210.0.2"), ma("10.210.0.4"), 1, echo))
		if err := nstest.SendFrames(h.out, "eth0", frame); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(nstest.Refused); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		}
		if g3.Seen("NSR-FORGED-ECHO.") {
			t.Error("an echo forged from outside as i-web reached i-db")
		}
	})

	t.Run("no guest speaks the tunnel", func(t *testing.T) {
		// VXLAN has no authentication: a datagram to a host's tunnel port
		// puts its inner frame on the segment of the VNI it names, past
		// the guest ports' checks and from any source. A guest sends one
		// to the controller's underlay address (its gateway routes it
		// there) and to n2's (routed and masqueraded by the controller,
		// so it comes from a tunnel peer): neither frame may arrive. Nor
		// one from a host that is no tunnel peer (out, on the controller's
		// public side).
		gw := nstest.Listen(t, h.cc, "euca-br0")
		g2 := nstest.Listen(t, h.g2, "eth0")
		inject := func(from netns.NsHandle, to netip.Addr, marker string) {
			frame := nstest.EtherFrame(mac("02:00:00:00:00:99"), nstest.Broadcast, 0x88b5, []byte(marker))
			vx := append([]byte{0x08, 0, 0, 0, 0, 0, byte(mode.VNI(0)), 0}, frame...)
			nstest.MustDo(t, from, func() error {
				c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, link.VXLANPort)))
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write(vx)
				return err
			})
		}
		inject(h.g1, ccIP, "NSR-INJECT-CC.")
		inject(h.g1, n2IP, "NSR-INJECT-N2.")
		inject(h.out, ma("10.99.0.1"), "NSR-INJECT-OUT.")
		for end := time.Now().Add(nstest.Refused); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		}
		if gw.Seen("NSR-INJECT-CC.") {
			t.Error("a guest's datagram to the controller's tunnel port put a frame on its segment")
		}
		if g2.Seen("NSR-INJECT-N2.") {
			t.Error("a guest's datagram to n2's tunnel port put a frame on the segment there")
		}
		if gw.Seen("NSR-INJECT-OUT.") {
			t.Error("a datagram from a host that is no tunnel peer put a frame on the controller's segment")
		}
	})

	t.Run("the gateway's own traffic is the host's, as on its own host", func(t *testing.T) {
		// A guest reaches the controller's address on the segment (its DNS,
		// when VNET_DNS names none): the node lets the gateway's traffic
		// through, as the controller's host takes it as its own. The
		// controller's host reaching a guest is no member of any group:
		// the guest's ingress rules decide there (sg-cli admits no TCP),
		// before the node sees it.
		nstest.MustWho(t, h.g2, "10.210.0.1:7001", "10.210.0.3")
		nstest.MustNotConnect(t, h.cc, "10.210.0.3:5000")
	})

	t.Run("full-size packets cross the tunnel at the leased MTU", func(t *testing.T) {
		if err := nstest.Ping(h.g1, "10.210.0.3", 1450, 3*time.Second); err != nil {
			t.Errorf("across nodes: %v", err)
		}
		if err := nstest.Ping(h.g1, "10.210.0.4", 1450, 3*time.Second); err != nil {
			t.Errorf("on one node: %v", err)
		}
		if err := nstest.Ping(h.g3, "10.210.0.3", 100, nstest.Refused); err == nil {
			t.Error("sg-cli answered a ping from sg-cli: it admits only sg-web's")
		}
		// Why the lease carries the MTU: a guest that kept Ethernet's 1500
		// has its full-size packets dropped silently at the tunnel.
		nstest.SetMTU(t, h.g1, "eth0", 1500)
		if err := nstest.Ping(h.g1, "10.210.0.3", 1500, nstest.Refused); err == nil {
			t.Error("a 1500-byte packet crossed a 1450-byte tunnel")
		}
		nstest.SetMTU(t, h.g1, "eth0", 1450)
	})

	t.Run("set twice changes nothing", func(t *testing.T) {
		before := nstest.RuleHandles(t, h.n1, nft.NodeTableName)
		if len(before) == 0 {
			t.Fatal("no node table")
		}
		idx := linkIndex(t, h.n1, link.VXLANName(1))
		nstest.MustDo(t, h.n1, func() error { return a1.Set(ctx, nodeNet(ccIP, n1IP, n2IP)) })
		after := nstest.RuleHandles(t, h.n1, nft.NodeTableName)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("rule %s remade", k)
			}
		}
		if linkIndex(t, h.n1, link.VXLANName(1)) != idx {
			t.Error("tunnel remade")
		}
	})

	t.Run("a node on the controller's host leaves it alone", func(t *testing.T) {
		a, _ := New(Config{}, testLog())
		nstest.MustDo(t, h.cc, func() error { return a.Set(ctx, nodeNet(ccIP, n1IP, n2IP)) })
		if got := nstest.RuleHandles(t, h.cc, nft.NodeTableName); len(got) != 0 {
			t.Errorf("node table on the controller's host: %v", got)
		}
		nstest.MustDo(t, h.cc, func() error { return a.Close(ctx) })
		if got := links(t, h.cc, link.KindBridge); !slices.Equal(got, []string{"euca-br0"}) {
			t.Errorf("controller's bridges after a node agent's Close: %v", got)
		}
	})

	t.Run("reconciled away", func(t *testing.T) {
		// n2 leaves the cluster: n1 stops flooding to it.
		nstest.MustDo(t, h.n1, func() error { return a1.Set(ctx, nodeNet(ccIP, n1IP)) })
		nstest.MustDo(t, h.n1, func() error {
			if got, _ := link.FDB(link.VXLANName(1)); !slices.Equal(got, []netip.Addr{ccIP}) {
				t.Errorf("n1 floods to %v after n2 left", got)
			}
			return nil
		})
		// No segments: the node's bridge, tunnel and table go; a bridge
		// not of the agent's making stays.
		nstest.MustDo(t, h.n1, func() error { _, _, err := link.EnsureBridge("euca-other", nil); return err })
		nstest.MustDo(t, h.n1, func() error { return a1.Set(ctx, Network{}) })
		if got := links(t, h.n1, link.KindBridge); !slices.Equal(got, []string{"euca-other"}) {
			t.Errorf("n1 bridges %v", got)
		}
		if got := links(t, h.n1, link.KindVXLAN); len(got) != 0 {
			t.Errorf("n1 tunnels %v", got)
		}
		if got := nstest.RuleHandles(t, h.n1, nft.NodeTableName); len(got) != 0 {
			t.Errorf("n1 table left: %d rules", len(got))
		}
		// The controller without peers: no tunnel, no MTU offered.
		st.Peers = nil
		nstest.MustDo(t, h.cc, func() error { return mode.Set(ctx, st) })
		if got := links(t, h.cc, link.KindVXLAN); len(got) != 0 {
			t.Errorf("cc tunnels %v without peers", got)
		}
		// `euca network flush` on a node (the network mode's Close) takes
		// the node's segments and table away too.
		flush, err := netmode.New(netmode.Config{Mode: netmode.ManagedNoVLAN, Subnet: mp("10.210.0.0/16")}, testLog())
		if err != nil {
			t.Fatal(err)
		}
		nstest.MustDo(t, h.n2, func() error { return flush.Close(ctx) })
		if got := append(links(t, h.n2, link.KindBridge), links(t, h.n2, link.KindVXLAN)...); len(got) != 0 {
			t.Errorf("n2 links after a flush: %v", got)
		}
		if got := nstest.RuleHandles(t, h.n2, nft.NodeTableName); len(got) != 0 {
			t.Errorf("n2 table left by a flush: %d rules", len(got))
		}
		nstest.MustDo(t, h.cc, func() error { return mode.Close(ctx) })
		if got := links(t, h.cc, link.KindBridge); len(got) != 0 {
			t.Errorf("cc bridges after Close: %v", got)
		}
	})
}

func masterOf(l netlink.Link) string {
	m, err := netlink.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		return ""
	}
	return m.Attrs().Name
}

func linkIndex(t *testing.T, ns netns.NsHandle, name string) int {
	t.Helper()
	idx := 0
	nstest.MustDo(t, ns, func() error {
		idx = nstest.MustLink(t, name).Attrs().Index
		return nil
	})
	return idx
}

// TestKernelManagedSegments: in MANAGED each security group's segment is
// its own bridge and VNI (its VLAN tag); a node joins both segments and a
// guest on each leases from that segment's gateway on the controller.
func TestKernelManagedSegments(t *testing.T) {
	lan, cc, n1, ga, gb := nstest.New(t), nstest.New(t), nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Veth(t, cc, "eth0", lan, "pcc", nil)
	nstest.Veth(t, n1, "eth0", lan, "pn1", nil)
	lanBridge(t, lan, "pcc", "pn1")
	nstest.Addr(t, cc, "eth0", "192.0.2.1/24")
	nstest.Addr(t, n1, "eth0", "192.0.2.2/24")
	macA, macB := mac("d0:0d:0a:d3:00:02"), mac("d0:0d:0a:d3:00:22")
	nstest.Veth(t, n1, "va", ga, "eth0", macA)
	nstest.Veth(t, n1, "vb", gb, "eth0", macB)

	ctx := context.Background()
	mode, err := netmode.New(netmode.Config{Mode: netmode.Managed, Subnet: mp("10.211.0.0/16"), AddrsPerNet: 32, PrivInterface: "eth0"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Do(cc, func() error { return mode.Close(ctx) }) })
	st := netmode.State{
		Instances: []netmode.Instance{
			{ID: "i-a", MAC: macA, PrivateIP: ma("10.211.0.2"), Groups: []string{"sg-a"}},
			{ID: "i-b", MAC: macB, PrivateIP: ma("10.211.0.34"), Groups: []string{"sg-b"}},
		},
		Groups: []netmode.Group{{ID: "sg-a", Segment: 0, Egress: allOut}, {ID: "sg-b", Segment: 1, Egress: allOut}},
		Peers:  []netip.Addr{ma("192.0.2.2")},
	}
	// With peers, the segments go over VXLAN: no 802.1Q is needed.
	nstest.MustDo(t, cc, func() error { return mode.Set(ctx, st) })
	var segs []Segment
	for _, s := range []int{0, 1} {
		segs = append(segs, Segment{Bridge: mode.Bridge(s), VNI: mode.VNI(s), Gateway: mode.Gateway(s), Remotes: []netip.Addr{ma("192.0.2.1")}})
	}
	a, err := New(Config{PrivInterface: "eth0"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Do(n1, func() error { return a.Close(ctx) }) })
	nstest.MustDo(t, n1, func() error {
		return a.Set(ctx, Network{Segments: segs, Subnet: mp("10.211.0.0/16"), Instances: st.Instances, Groups: st.Groups})
	})
	nstest.Attach(t, n1, "va", segs[0].Bridge)
	nstest.Attach(t, n1, "vb", segs[1].Bridge)
	if got := links(t, cc, link.KindVXLAN); !slices.Equal(got, []string{"euca-vx2", "euca-vx3"}) {
		t.Errorf("controller's tunnels %v", got)
	}
	for _, g := range []struct {
		ns     netns.NsHandle
		ip, gw string
	}{{ga, "10.211.0.2", "10.211.0.1"}, {gb, "10.211.0.34", "10.211.0.33"}} {
		l, err := nstest.Lease(g.ns, "eth0", nil, 4)
		if err != nil {
			t.Fatalf("lease for %s: %v", g.ip, err)
		}
		if l.ACK.YourIPAddr.String() != g.ip || l.ACK.Router()[0].String() != g.gw || nstest.LeaseMTU(l.ACK) != 1450 {
			t.Errorf("lease %s", l.ACK.Summary())
		}
	}
	// The segments stay apart: i-b's MAC asking on sg-a's segment is not
	// answered (its lease is served on its own segment only).
	if l, err := nstest.Lease(ga, "eth0", macB, 1); err == nil {
		t.Errorf("i-b's MAC leased %s on another segment", l.ACK.YourIPAddr)
	}
}

// TestKernelOperatorBridge: a segment on an operator's bridge (VNET_BRIDGE
// without the project's prefix) gets the tunnel plugged in, is refused
// with a message naming it when missing, and is never removed.
func TestKernelOperatorBridge(t *testing.T) {
	n1 := nstest.New(t)
	nstest.Veth(t, n1, "eth0", nstest.New(t), "peer", nil)
	nstest.Addr(t, n1, "eth0", "192.0.2.2/24")
	ctx := context.Background()
	a, err := New(Config{}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Do(n1, func() error { return a.Close(ctx) }) })
	n := Network{Subnet: mp("10.212.0.0/16"), Segments: []Segment{{Bridge: "br-op", VNI: 1, Gateway: ma("10.212.0.1"), Remotes: []netip.Addr{ma("192.0.2.1")}}}}
	err = nstest.Do(n1, func() error { return a.Set(ctx, n) })
	if err == nil || !strings.Contains(err.Error(), "br-op") || !strings.Contains(err.Error(), "VNET_BRIDGE") {
		t.Errorf("a missing operator's bridge: %v", err)
	}
	nstest.MustDo(t, n1, func() error {
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-op"}})
	})
	nstest.MustDo(t, n1, func() error { return a.Set(ctx, n) })
	nstest.MustDo(t, n1, func() error {
		if l := nstest.MustLink(t, link.VXLANName(1)); masterOf(l) != "br-op" {
			t.Errorf("the tunnel is on %q, not the operator's bridge", masterOf(l))
		}
		return nil
	})
	nstest.MustDo(t, n1, func() error { return a.Set(ctx, Network{}) })
	nstest.MustDo(t, n1, func() error {
		if !link.Exists("br-op") || link.Exists(link.VXLANName(1)) {
			t.Error("the operator's bridge must stay and the tunnel go")
		}
		return nil
	})
}

// setBroadcast lets c send to 255.255.255.255.
func setBroadcast(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	}); err != nil {
		return err
	}
	return serr
}
