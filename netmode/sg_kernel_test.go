package netmode

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
	"github.com/vishvananda/netns"
)

// sgLab is MANAGED-NOVLAN in a fresh "host" namespace with guests a, b
// and c (namespaces on veths attached to the bridge, addresses set by
// hand) and a host outside on the public side:
//
//	a 10.241.0.2, b 10.241.0.3, c 10.241.0.4 ── euca-br0 [10.241.0.1/17] ── pub0 10.241.128.1 ── out 10.241.128.2
type sgLab struct {
	t       *testing.T
	m       Mode
	host    netns.NsHandle
	a, b, c netns.NsHandle
	out     netns.NsHandle
	st      State
}

var sgAddrs = map[string]string{"a": "10.241.0.2", "b": "10.241.0.3", "c": "10.241.0.4"}

func newSGLab(t *testing.T) *sgLab {
	l := &sgLab{t: t, host: nstest.New(t), a: nstest.New(t), b: nstest.New(t), c: nstest.New(t), out: nstest.New(t)}
	nstest.Veth(t, l.host, "pub0", l.out, "eth0", nil)
	nstest.Addr(t, l.host, "pub0", "10.241.128.1/24")
	nstest.Addr(t, l.out, "eth0", "10.241.128.2/24")
	nstest.DefaultRoute(t, l.host, net.ParseIP("10.241.128.2"))
	var err error
	l.m, err = New(Config{Mode: ManagedNoVLAN, Subnet: mp("10.241.0.0/17"), DNS: []netip.Addr{ma("10.241.0.1")}}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nstest.Do(l.host, func() error { return l.m.Close(context.Background()) }) })
	l.st = State{Instances: []Instance{
		{ID: "i-a", MAC: mac("d0:0d:0a:f1:00:02"), PrivateIP: ma(sgAddrs["a"]), Groups: []string{"sg-a"}},
		{ID: "i-b", MAC: mac("d0:0d:0a:f1:00:03"), PrivateIP: ma(sgAddrs["b"]), Groups: []string{"sg-b"}},
		{ID: "i-c", MAC: mac("d0:0d:0a:f1:00:04"), PrivateIP: ma(sgAddrs["c"]), Groups: []string{"sg-c"}},
	}, Groups: []Group{{ID: "sg-a", Egress: allOut}, {ID: "sg-b", Egress: allOut}, {ID: "sg-c", Egress: allOut}}}
	l.set()
	for i, g := range []netns.NsHandle{l.a, l.b, l.c} {
		name := string(rune('a' + i))
		nstest.Veth(t, l.host, "v"+name, g, "eth0", l.st.Instances[i].MAC)
		nstest.Attach(t, l.host, "v"+name, "euca-br0")
		nstest.Addr(t, g, "eth0", sgAddrs[name]+"/17")
		nstest.DefaultRoute(t, g, net.ParseIP("10.241.0.1"))
	}
	return l
}

// set applies l.st.
func (l *sgLab) set() {
	l.t.Helper()
	nstest.MustDo(l.t, l.host, func() error { return l.m.Set(context.Background(), l.st) })
}

// group replaces group id's rules and applies the state.
func (l *sgLab) group(id string, ingress, egress []Rule) {
	l.t.Helper()
	for i := range l.st.Groups {
		if l.st.Groups[i].ID == id {
			l.st.Groups[i].Ingress, l.st.Groups[i].Egress = ingress, egress
			l.set()
			return
		}
	}
	l.t.Fatalf("no group %s", id)
}

func tcpIn(from, to int, cidr string) Rule {
	return Rule{Protocol: "tcp", FromPort: from, ToPort: to, CIDR: mp(cidr)}
}

// chains are the names of the chains of the table in the host.
func (l *sgLab) chains() []string {
	l.t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(l.host)))
	if err != nil {
		l.t.Fatal(err)
	}
	chs, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, ch := range chs {
		if ch.Table.Name == nft.TableName {
			out = append(out, ch.Name)
		}
	}
	return out
}

// TestKernelSecurityGroups: the groups' rules against real flows between
// namespaces standing in for guests, both ways, with every kind of rule.
func TestKernelSecurityGroups(t *testing.T) {
	l := newSGLab(t)
	for _, name := range []string{"a", "b", "c"} {
		ns := map[string]netns.NsHandle{"a": l.a, "b": l.b, "c": l.c}[name]
		for _, p := range []int{7999, 8000, 8001, 8002, 8003} {
			nstest.ServeWho(t, ns, fmt.Sprintf("0.0.0.0:%d", p))
		}
	}
	nstest.ServeWho(t, l.out, "10.241.128.2:7000")
	nstest.ServeWho(t, l.out, "10.241.128.2:7001")
	b8000 := sgAddrs["b"] + ":8000"

	t.Run("a new group admits nothing and lets everything out", func(t *testing.T) {
		nstest.MustNotConnect(t, l.a, b8000)
		nstest.MustWho(t, l.a, "10.241.128.2:7000", "10.241.128.1") // masqueraded
	})

	t.Run("the host is no member: the ingress rules decide its flows too", func(t *testing.T) {
		nstest.MustNotConnect(t, l.host, b8000)
		l.group("sg-b", []Rule{tcpIn(8000, 8000, "10.241.0.1/32")}, allOut)
		nstest.MustWho(t, l.host, b8000, "10.241.0.1")
		// What the host must send passes whatever the groups say: its
		// DHCP server's answers.
		if _, err := nstest.Lease(l.c, "eth0", nil, 3); err != nil {
			t.Errorf("lease: %v", err)
		}
	})

	t.Run("tcp port range edges", func(t *testing.T) {
		l.group("sg-b", []Rule{tcpIn(8000, 8002, "10.241.0.2/32")}, allOut)
		for _, p := range []int{8000, 8001, 8002} {
			nstest.MustWho(t, l.a, fmt.Sprintf("%s:%d", sgAddrs["b"], p), sgAddrs["a"])
		}
		for _, p := range []int{7999, 8003} {
			nstest.MustNotConnect(t, l.a, fmt.Sprintf("%s:%d", sgAddrs["b"], p))
		}
		nstest.MustNotConnect(t, l.c, b8000) // the CIDR is a's alone
	})

	t.Run("return traffic passes whatever the rules of its direction say", func(t *testing.T) {
		// b lets nothing out, yet answers a's allowed connection; a admits
		// nothing, yet gets the answers of its own connections.
		l.group("sg-b", []Rule{tcpIn(8000, 8000, "10.241.0.0/17")}, nil)
		nstest.MustWho(t, l.a, b8000, sgAddrs["a"])
		nstest.MustNotConnect(t, l.b, sgAddrs["a"]+":8000")
	})

	t.Run("egress blocked, allowed by port and restored", func(t *testing.T) {
		l.group("sg-b", []Rule{tcpIn(8000, 8000, "10.241.0.0/17")}, allOut)
		l.group("sg-a", nil, nil) // the allow-all egress rule revoked
		nstest.MustNotConnect(t, l.a, "10.241.128.2:7000")
		nstest.MustNotConnect(t, l.a, b8000) // b would admit it: a may not send it
		l.group("sg-a", nil, []Rule{{Protocol: "tcp", FromPort: 7000, ToPort: 7000, CIDR: mp("10.241.128.0/24")}})
		nstest.MustWho(t, l.a, "10.241.128.2:7000", "10.241.128.1")
		nstest.MustNotConnect(t, l.a, "10.241.128.2:7001")
		nstest.MustNotConnect(t, l.a, b8000)
		// An egress rule naming a group: its members are the destinations.
		l.group("sg-a", nil, []Rule{{Protocol: "tcp", FromPort: 8000, ToPort: 8000, PeerGroup: "sg-b"}})
		nstest.MustWho(t, l.a, b8000, sgAddrs["a"])
		nstest.MustNotConnect(t, l.a, "10.241.128.2:7000")
		l.group("sg-a", nil, allOut)
		nstest.MustWho(t, l.a, "10.241.128.2:7000", "10.241.128.1")
	})

	t.Run("peer groups, a group naming itself", func(t *testing.T) {
		// a and c in sg-self, which admits its own members: they reach
		// each other, b (not a member) reaches neither.
		l.st.Instances[0].Groups = []string{"sg-a", "sg-self"}
		l.st.Instances[2].Groups = []string{"sg-c", "sg-self"}
		l.st.Groups = append(l.st.Groups, Group{ID: "sg-self", Ingress: []Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroup: "sg-self"}}})
		l.set()
		nstest.MustWho(t, l.a, sgAddrs["c"]+":7999", sgAddrs["a"])
		nstest.MustWho(t, l.c, sgAddrs["a"]+":7999", sgAddrs["c"])
		nstest.MustNotConnect(t, l.b, sgAddrs["a"]+":7999")
		nstest.MustNotConnect(t, l.b, sgAddrs["c"]+":7999")
	})

	t.Run("a deleted group leaves nothing", func(t *testing.T) {
		if !strings.Contains(strings.Join(l.chains(), " "), "sg-self") {
			t.Fatalf("sg-self has no chain to remove: %v", l.chains())
		}
		l.st.Instances[0].Groups = []string{"sg-a"}
		l.st.Instances[2].Groups = []string{"sg-c"}
		l.st.Groups = l.st.Groups[:3]
		l.set()
		for _, ch := range l.chains() {
			if strings.Contains(ch, "sg-self") {
				t.Errorf("chain %s of a deleted group", ch)
			}
		}
		for k := range ruleHandles(t, l.host) {
			if strings.Contains(k, "sg-self") {
				t.Errorf("rule %s of a deleted group", k)
			}
		}
		nstest.MustNotConnect(t, l.a, sgAddrs["c"]+":7999")
	})

	t.Run("icmp type and code", func(t *testing.T) {
		ping := func() error { return nstest.Ping(l.a, sgAddrs["c"], 64, nstest.Refused) }
		for _, tc := range []struct {
			typ, code int
			pass      bool
		}{{8, 0, true}, {8, -1, true}, {-1, -1, true}, {8, 1, false}, {0, -1, false}} {
			l.group("sg-c", []Rule{{Protocol: "icmp", FromPort: tc.typ, ToPort: tc.code, CIDR: mp("10.241.0.0/17")}}, allOut)
			if err := ping(); (err == nil) != tc.pass {
				t.Errorf("icmp type %d code %d: echo request passed %v, want %v (%v)", tc.typ, tc.code, err == nil, tc.pass, err)
			}
		}
	})

	t.Run("other protocols by number, and all", func(t *testing.T) {
		for _, tc := range []struct {
			proto string
			pass  bool
		}{{"47", true}, {"-1", true}, {"132", false}, {"tcp", false}} {
			l.group("sg-c", []Rule{{Protocol: tc.proto, FromPort: -1, ToPort: -1, CIDR: mp("10.241.0.2/32")}}, allOut)
			if err := sendProto(l.a, l.c, 47, sgAddrs["c"]); (err == nil) != tc.pass {
				t.Errorf("protocol rule %s: GRE passed %v, want %v (%v)", tc.proto, err == nil, tc.pass, err)
			}
		}
		l.group("sg-c", []Rule{{Protocol: "udp", FromPort: 5000, ToPort: 5001, CIDR: mp("10.241.0.0/17")}}, allOut)
		if err := sendUDP(l.a, l.c, sgAddrs["c"], 5001); err != nil {
			t.Errorf("udp 5001 within 5000-5001: %v", err)
		}
		if err := sendUDP(l.a, l.c, sgAddrs["c"], 5002); err == nil {
			t.Error("udp 5002 outside 5000-5001 passed")
		}
	})
}

// sendProto sends one datagram of IP protocol proto from ns to dst and
// reports whether it reached a raw socket in to within nstest.Refused.
func sendProto(from, to netns.NsHandle, proto int, dst string) error {
	var rc net.PacketConn
	network := fmt.Sprintf("ip4:%d", proto)
	if err := nstest.Do(to, func() (err error) { rc, err = net.ListenPacket(network, "0.0.0.0"); return err }); err != nil {
		return err
	}
	defer rc.Close()
	return sendAndWait(from, rc, func() (net.Conn, error) { return net.Dial(network, dst) })
}

// sendUDP sends one datagram from ns to dst:port and reports whether it
// arrived within nstest.Refused.
func sendUDP(from, to netns.NsHandle, dst string, port int) error {
	var rc net.PacketConn
	if err := nstest.Do(to, func() (err error) { rc, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port)); return err }); err != nil {
		return err
	}
	defer rc.Close()
	return sendAndWait(from, rc, func() (net.Conn, error) { return net.Dial("udp4", net.JoinHostPort(dst, fmt.Sprint(port))) })
}

func sendAndWait(from netns.NsHandle, rc net.PacketConn, dial func() (net.Conn, error)) error {
	var c net.Conn
	if err := nstest.Do(from, func() (err error) { c, err = dial(); return err }); err != nil {
		return err
	}
	defer c.Close()
	const mark = "sgf-probe"
	buf := make([]byte, 2048)
	rc.SetReadDeadline(time.Now().Add(nstest.Refused))
	if _, err := c.Write([]byte(mark)); err != nil {
		return err
	}
	for {
		n, _, err := rc.ReadFrom(buf)
		if err != nil {
			return err
		}
		if strings.Contains(string(buf[:n]), mark) {
			return nil
		}
	}
}

// echoConn is a TCP connection to an echo server: each line sent comes
// back.
type echoConn struct {
	c net.Conn
	r *bufio.Reader
}

func serveEcho(t *testing.T, ns netns.NsHandle, addr string) {
	t.Helper()
	nstest.Serve(t, ns, addr, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(line)); err != nil {
				return
			}
		}
	})
}

func dialEcho(t *testing.T, ns netns.NsHandle, addr string) *echoConn {
	t.Helper()
	var c net.Conn
	nstest.MustDo(t, ns, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 3*time.Second); return err })
	t.Cleanup(func() { c.Close() })
	return &echoConn{c: c, r: bufio.NewReader(c)}
}

// echo sends a line and returns an error unless it comes back.
func (e *echoConn) echo(line string) error {
	e.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(e.c, line); err != nil {
		return err
	}
	got, err := e.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != line {
		return fmt.Errorf("echo %q, got %q", line, got)
	}
	return nil
}

// TestKernelSecurityGroupsEstablished: the table is replaced whole on a
// change, and an established flow keeps flowing across it: across an
// unrelated change, and (EC2's tracked connections) across the revoking
// of the rule that let it start, which refuses new flows only. A
// restarted process adopts the table it finds.
func TestKernelSecurityGroupsEstablished(t *testing.T) {
	l := newSGLab(t)
	serveEcho(t, l.b, "0.0.0.0:9000")
	l.group("sg-b", []Rule{tcpIn(9000, 9000, "10.241.0.2/32")}, allOut)
	conn := dialEcho(t, l.a, sgAddrs["b"]+":9000")
	if err := conn.echo("before"); err != nil {
		t.Fatal(err)
	}

	t.Run("an unrelated change replaces the table; the flow goes on", func(t *testing.T) {
		l.group("sg-c", []Rule{tcpIn(22, 22, "10.241.128.0/24")}, allOut)
		if _, ok := ruleHandles(t, l.host)[nft.GroupChain("sg-c")+"/tcp 22-22 from 10.241.128.0/24"]; !ok {
			t.Fatal("the change is not in the kernel")
		}
		if err := conn.echo("after an unrelated change"); err != nil {
			t.Error(err)
		}
	})

	t.Run("revoking the rule refuses new flows, not the established one", func(t *testing.T) {
		l.group("sg-b", nil, allOut)
		if err := conn.echo("after the revoke"); err != nil {
			t.Error(err)
		}
		nstest.MustNotConnect(t, l.a, sgAddrs["b"]+":9000")
	})

	t.Run("a restarted process adopts the table", func(t *testing.T) {
		var logs strings.Builder
		m2, err := New(Config{Mode: ManagedNoVLAN, Subnet: mp("10.241.0.0/17"), DNS: []netip.Addr{ma("10.241.0.1")}},
			slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		l.m.(*managed).dhcp.close() // the old process is gone: its DHCP server with it
		l.m = m2
		l.set()
		if strings.Contains(logs.String(), "nftables table replaced") {
			t.Errorf("the restarted process replaced the table it should have adopted:\n%s", logs.String())
		}
		if err := conn.echo("after the restart"); err != nil {
			t.Error(err)
		}
		// And reconciles what it finds stale: a change goes in.
		l.group("sg-b", []Rule{tcpIn(9000, 9000, "10.241.0.2/32")}, allOut)
		if !strings.Contains(logs.String(), "nftables table replaced") {
			t.Error("a change after the restart did not replace the table")
		}
		dialEcho(t, l.a, sgAddrs["b"]+":9000")
	})
}
