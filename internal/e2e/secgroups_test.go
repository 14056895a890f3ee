package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/vishvananda/netns"
)

// TestSecurityGroupsGuests checks the security groups on real packets
// between test guests and a client outside the cloud, on one host: the
// cloud (every role, a libvirtd of its own, MANAGED-NOVLAN) in one network
// namespace, the client in another on the same LAN, routing the cloud's
// private subnet through the cloud's host as an office network would.
// The steps are sgScenario's.
func TestSecurityGroupsGuests(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needSGGuests(t)
	l := newLANNamed(t, "sge", "10.244.1")
	cloud := l.host("cloud", `HYPERVISOR="qemu"`, `VNET_MODE="MANAGED-NOVLAN"`,
		`VNET_SUBNET="10.244.101.0"`, `VNET_NETMASK="255.255.255.0"`)
	client := l.host("client")
	sgScenario(t, startGuestLAN(t, cloud), client, "10.244.101.0/24", nil)
}

// TestSecurityGroupsAcrossHosts is TestSecurityGroupsGuests with the two
// guests on two compute hosts (each a network namespace with its own
// libvirtd) behind a front-end on a third, the cluster's network carried
// between them over VXLAN: the same group checks, between guests on
// different nodes and from the client to a guest on a node.
func TestSecurityGroupsAcrossHosts(t *testing.T) {
	t.Parallel()
	needSGGuests(t)
	l := newLANNamed(t, "sge", "10.244.2")
	fe := l.host("fe", `SCHEDPOLICY="ROUNDROBIN"`, `VNET_MODE="MANAGED-NOVLAN"`,
		`VNET_SUBNET="10.244.102.0"`, `VNET_NETMASK="255.255.255.0"`)
	nodeConf := []string{`HYPERVISOR="qemu"`}
	n1, n2 := l.host("n1", nodeConf...), l.host("n2", nodeConf...)
	client := l.host("client")
	g := startGuestLAN(t, fe, n1, n2)
	nc1, nc2 := g.nodes[0], g.nodes[1]
	sgScenario(t, g, client, "10.244.102.0/24", func(server, member string) error {
		// ROUNDROBIN: one guest on each node, whichever goes first.
		a, b := countIn(nc1, []string{server}), countIn(nc2, []string{member})
		c, d := countIn(nc2, []string{server}), countIn(nc1, []string{member})
		if a+b != 2 && c+d != 2 {
			return fmt.Errorf("%s and %s are not on different nodes (n1 names %d, n2 %d of them)", server, member, a+d, b+c)
		}
		return nil
	})
}

// needSGGuests skips (or fails under CI) where the guests cannot run.
func needSGGuests(t *testing.T) {
	t.Helper()
	needGuestLAN(t)
	Need(t, "curl", "python3")
}

// sgScenario: two guests, "server" in groups srv and team and "member" in
// cli and team; the member polls the server's web page and a web page the
// client serves outside the cloud, every second (the guest's EUCA-POLL),
// and prints each change of outcome on its console. Then, each change
// made with the AWS CLI and awaited by polling (the time it took is
// logged, never asserted):
//
//  1. from the client: the server's port 80 and 8080 (both served) are
//     closed; srv opens 80 to the client's address: 80 answers, 8080 not;
//     the rule revoked (after an unrelated change), 80 no longer answers
//     but a download begun before both changes goes on to its end;
//  2. from the member: it got no answer from the server all along (its
//     groups are not admitted); srv admits port 80 from cli (a referenced
//     group): it does; revoked: it does not; team admits port 80 from team
//     (a group referencing itself): it does; revoked: it does not;
//  3. the member reaches the client's page (new groups allow all egress);
//     its groups' allow-all egress rules revoked, it does not; restored on
//     one of them, it does.
//
// client is a host of the LAN outside the cloud, subnet the cloud's
// private one, placed (when not nil) checks that the two guests run on
// different nodes.
func sgScenario(t *testing.T, g *guestLAN, client *lanHost, subnet string, placed func(server, member string) error) {
	aws := g.aws

	// The client routes the cloud's private subnet through the front-end
	// and serves a page of its own for the guests' outbound traffic.
	if out, err := client.run(nil, "ip", "route", "add", subnet, "via", g.fe.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	client.startCmd(client.cmd("python3", "-m", "http.server", "--bind", client.IP, "--directory", www, "8000"))
	outside := "http://" + client.IP + ":8000/"
	eventually(t, "the client's web server", 30*time.Second, func() error {
		_, err := client.run(nil, "curl", "-sSf", "-m", "3", outside)
		return err
	})

	srv, cli, team := g.group("srv"), g.group("cli"), g.group("team")
	// Two launches, one right after the other (the guests boot together):
	// the member's user data names the server's address, known at launch.
	server, serverIP := g.launchIn([]string{srv, team}, "")
	serverURL := "http://" + serverIP + "/"
	member, _ := g.launchIn([]string{cli, team}, "EUCA-POLL "+serverURL+"\nEUCA-POLL "+outside+"\n")
	if placed != nil {
		eventually(t, "placement", time.Minute, func() error { return placed(server, member) })
	}
	for _, id := range []string{server, member} {
		out := g.waitFor(id, 1, "EUCA-READY")
		if !strings.Contains(out, "EUCA-HTTPD port=8080") {
			t.Fatalf("%s serves no second port:\n%s", id, tail(out, 20))
		}
	}

	// timed polls until ok, logging when the check that first saw the
	// change began, counted from the API's answer: for the client's own
	// probes, a bound on the time the change took to be in force.
	timed := func(what string, ok func() error) {
		t.Helper()
		start := time.Now()
		for {
			began := time.Since(start)
			err := ok()
			if err == nil {
				t.Logf("%s: seen by a check begun %v after the change", what, began.Round(10*time.Millisecond))
				return
			}
			if began > time.Minute {
				t.Fatalf("%s: not within a minute: %v", what, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	perm := func(proto string, port int, from string) string {
		src := fmt.Sprintf(`"IpRanges":[{"CidrIp":%q}]`, from)
		if strings.HasPrefix(from, "sg-") {
			src = fmt.Sprintf(`"UserIdGroupPairs":[{"GroupId":%q}]`, from)
		}
		return fmt.Sprintf(`[{"IpProtocol":%q,"FromPort":%d,"ToPort":%d,%s}]`, proto, port, port, src)
	}

	// get fetches url from the client within limit seconds: a short
	// limit where an answer is awaited (a probe sent before the change
	// is in force is dropped, and holds the next one up), a longer one
	// where none is expected (so a slow answer is not taken for none).
	get := func(url, limit string) (string, error) {
		out, err := client.run(nil, "curl", "-sSf", "-m", limit, url)
		return strings.TrimSpace(out), err
	}
	answers := func(url string) func() error {
		return func() error {
			body, err := get(url, "1")
			if err != nil {
				return err
			}
			if body != server {
				return fmt.Errorf("%s answered %q, not the server's id %s", url, body, server)
			}
			return nil
		}
	}
	silent := func(url string) func() error {
		return func() error {
			if body, err := get(url, "3"); err == nil {
				return fmt.Errorf("%s answered %q", url, body)
			}
			return nil
		}
	}
	// 1. From the client, outside the cloud.
	port8080 := "http://" + serverIP + ":8080/"
	{
		for _, url := range []string{serverURL, port8080} {
			if err := silent(url)(); err != nil {
				t.Errorf("a port srv never opened: %v", err)
			}
		}
		clientCIDR := client.IP + "/32"
		aws("ec2", "authorize-security-group-ingress", "--group-id", srv, "--ip-permissions", perm("tcp", 80, clientCIDR))
		timed("port 80 opened to the client", answers(serverURL))
		if err := silent(port8080)(); err != nil {
			t.Errorf("port 8080 with only 80 open: %v", err)
		}
		// A download begun now is held open (the client reads its first
		// part only) across an unrelated change and the revoking of the
		// rule that let it start: EC2 keeps such a tracked flow, and
		// refuses new ones.
		flow := startDownload(t, client, serverIP+":80", "/big")
		aws("ec2", "authorize-security-group-ingress", "--group-id", team, "--ip-permissions", perm("tcp", 22, "10.244.250.0/24"))
		aws("ec2", "revoke-security-group-ingress", "--group-id", srv, "--ip-permissions", perm("tcp", 80, clientCIDR))
		timed("port 80 revoked from the client", silent(serverURL))
		if err := flow.finish(); err != nil {
			t.Errorf("a download begun before the changes: %v", err)
		}
	}

	// 2. From the member, a guest of other groups.
	state := func(url string) string { return lastPoll(g.console(member), url) }
	becomes := func(url, want string) func() error {
		return func() error {
			if got := state(url); got != want {
				return fmt.Errorf("the member's last poll of %s: %q, want %q", url, got, want)
			}
			return nil
		}
	}
	reached, blocked := "OK "+server, "FAIL"
	{
		// The member polled the server all through step 1 and was never
		// let in: the server's groups admitted only the client.
		eventually(t, "the member's first poll of the server", time.Minute, func() error {
			if state(serverURL) == "" {
				return fmt.Errorf("no EUCA-POLL line for %s yet", serverURL)
			}
			return nil
		})
		if out := g.console(member); strings.Contains(out, "EUCA-POLL-OK url="+serverURL+" ") {
			t.Errorf("a guest of groups srv does not admit reached the server:\n%s", tail(out, 10))
		}
		if got := state(serverURL); got != blocked {
			t.Errorf("the member's poll of the server before any rule: %q", got)
		}
		aws("ec2", "authorize-security-group-ingress", "--group-id", srv, "--ip-permissions", perm("tcp", 80, cli))
		timed("srv admits cli", becomes(serverURL, reached))
		aws("ec2", "revoke-security-group-ingress", "--group-id", srv, "--ip-permissions", perm("tcp", 80, cli))
		timed("srv no longer admits cli", becomes(serverURL, blocked))
		aws("ec2", "authorize-security-group-ingress", "--group-id", team, "--ip-permissions", perm("tcp", 80, team))
		timed("team admits itself", becomes(serverURL, reached))
		aws("ec2", "revoke-security-group-ingress", "--group-id", team, "--ip-permissions", perm("tcp", 80, team))
		timed("team no longer admits itself", becomes(serverURL, blocked))
	}

	// 3. The member's outbound traffic, to the client's page.
	{
		out := "OK outside"
		timed("the member reaches the client (new groups allow all egress)", becomes(outside, out))
		all := `[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}]`
		// Each of the member's groups lets it out: both rules go.
		aws("ec2", "revoke-security-group-egress", "--group-id", cli, "--ip-permissions", all)
		aws("ec2", "revoke-security-group-egress", "--group-id", team, "--ip-permissions", all)
		timed("allow-all egress revoked", becomes(outside, blocked))
		aws("ec2", "authorize-security-group-egress", "--group-id", cli, "--ip-permissions", all)
		timed("allow-all egress restored on one group", becomes(outside, out))
	}
	g.terminate(server, member)
}

// lastPoll is the last outcome a guest's console shows for EUCA-POLL url:
// "OK body", "FAIL", or "" before the first.
func lastPoll(console, url string) string {
	last := ""
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimRight(line, "\r")
		if i := strings.Index(line, "EUCA-POLL-OK url="+url+" body="); i >= 0 {
			last = "OK " + strings.TrimSpace(line[i+len("EUCA-POLL-OK url="+url+" body="):])
		} else if i := strings.Index(line, "EUCA-POLL-FAIL url="+url); i >= 0 && strings.TrimSpace(line[i+len("EUCA-POLL-FAIL url="+url):]) == "" {
			last = "FAIL"
		}
	}
	return last
}

// download is a GET held open from a host of the LAN: its headers and the
// first part of its body read, the rest waiting in the connection.
type download struct {
	conn net.Conn
	body io.Reader
	want int64 // the body's length, from Content-Length
	got  int64
}

// startDownload connects from the host's namespace to addr, asks for
// path and reads the headers and 64 KiB of the body. The small receive
// buffer keeps most of the body unsent until finish reads it.
func startDownload(t *testing.T, h *lanHost, addr, path string) *download {
	t.Helper()
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	d := &download{}
	err = nstest.Do(ns, func() (err error) {
		d.conn, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("download from %s: %v", addr, err)
	}
	t.Cleanup(func() { d.conn.Close() })
	d.conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	d.conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(d.conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(d.conn), nil)
	if err != nil {
		t.Fatalf("download from %s: %v", addr, err)
	}
	const first = 64 << 10
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 2*first {
		t.Fatalf("download from %s%s: %s, %d bytes: too short to hold open", addr, path, resp.Status, resp.ContentLength)
	}
	d.body, d.want = resp.Body, resp.ContentLength
	n, err := io.ReadFull(d.body, make([]byte, first))
	d.got = int64(n)
	if err != nil {
		t.Fatalf("download from %s: the first %d bytes: %v", addr, first, err)
	}
	d.conn.SetDeadline(time.Time{})
	return d
}

// finish reads the rest of the body: nil when all of it came.
func (d *download) finish() error {
	d.conn.SetDeadline(time.Now().Add(time.Minute))
	n, err := io.Copy(io.Discard, d.body)
	d.got += n
	if err != nil {
		return fmt.Errorf("cut after %d of %d bytes: %w", d.got, d.want, err)
	}
	if d.got != d.want {
		return fmt.Errorf("ended after %d of %d bytes", d.got, d.want)
	}
	return nil
}
