package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/vishvananda/netns"
)

// TestNetworkAcrossHosts: a front-end and two compute hosts (separate
// euca processes in namespaces on one LAN, nodes joined with tokens, the
// sim driver) run three instances in two security groups; a namespace on
// each instance's node, plugged into that node's bridge with the
// instance's MAC, plays its guest. Each leases its address from the
// front-end across VXLAN with the tunnel's MTU, reads its own instance id
// from 169.254.169.254, leaves through the front-end's NAT, sends
// full-size packets, and reaches the others, on its node and on the
// other, only as the groups allow.
func TestNetworkAcrossHosts(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needLAN(t)
	Need(t, "aws", "unzip", "bash")
	l := newLAN(t, "10.251.12")
	fe := l.host("fe", `SCHEDPOLICY="ROUNDROBIN"`)
	nodeConf := []string{`MAX_CORES="2"`, `MAX_MEM="4096"`, `MAX_DISK="100"`}
	n1, n2 := l.host("n1", nodeConf...), l.host("n2", nodeConf...)
	front := fe.start("--roles=clc,walrus,cc")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	mustAWS := func(args ...string) string {
		t.Helper()
		out, err := fe.run(env, "aws", append([]string{"--endpoint-url", Getenv(env, "EC2_URL"), "--output", "json"}, args...)...)
		if err != nil {
			t.Fatalf("%v\n--- front-end log:\n%s", err, tail(front.log.String(), 40))
		}
		return strings.TrimSpace(out)
	}
	var ncs []*lanProc
	for _, n := range []*lanHost{n1, n2} {
		out, err := fe.euca("token", "create", "--role", "nc")
		if err != nil {
			t.Fatal(err)
		}
		p := n.start("--roles=nc", "--driver", "sim", "--join", regexp.MustCompile(`EUCA10\S+`).FindString(out), "--server", fe.IP+":8773")
		p.waitListening(8775)
		ncs = append(ncs, p)
	}
	if out, err := fe.euca("node", "register", n1.IP, n2.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "both nodes up", time.Minute, func() error { return nodesUp(fe, n1.IP, n2.IP) })
	emi := lanTinyImage(t, fe, env, mustAWS)

	// sg-web admits TCP 8080 and ICMP from sg-cli; sg-cli admits nothing.
	group := func(name string) string {
		var id string
		jsonField(t, mustAWS("ec2", "create-security-group", "--group-name", name, "--description", name, "--query", "GroupId"), &id)
		return id
	}
	web, cli := group("web"), group("cli")
	for _, perm := range []string{"IpProtocol=tcp,FromPort=8080,ToPort=8080", "IpProtocol=icmp,FromPort=-1,ToPort=-1"} {
		mustAWS("ec2", "authorize-security-group-ingress", "--group-id", web,
			"--ip-permissions", perm+",UserIdGroupPairs=[{GroupId="+cli+"}]")
	}
	// ROUNDROBIN: web and the second client share a node, the first
	// client is on the other.
	run := func(sg string) string {
		var ids []string
		jsonField(t, mustAWS("ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small",
			"--security-group-ids", sg, "--query", "Instances[].InstanceId"), &ids)
		return ids[0]
	}
	ids := []string{run(web), run(cli), run(cli)}
	eventually(t, "three running", time.Minute, func() error { return wantStates(mustAWS, ids, "running", 3) })
	type guest struct {
		id, ip, mac string
		node        *lanHost
		ns          netns.NsHandle
	}
	var gs []*guest
	for i, id := range ids {
		var got []string
		jsonField(t, mustAWS("ec2", "describe-instances", "--instance-ids", id, "--query",
			"Reservations[0].Instances[0].[PrivateIpAddress,NetworkInterfaces[0].MacAddress]"), &got)
		g := &guest{id: id, ip: got[0], mac: got[1], node: n1}
		if countIn(ncs[1], []string{id}) == 1 {
			g.node = n2
		}
		g.ns = plugGuest(t, g.node, fmt.Sprintf("g%d", i), g.mac)
		gs = append(gs, g)
	}
	webG, cliFar, cliNear := gs[0], gs[1], gs[2]
	if cliNear.node != webG.node || cliFar.node == webG.node {
		t.Fatalf("ROUNDROBIN put web on %s, the clients on %s and %s", webG.node.Name, cliFar.node.Name, cliNear.node.Name)
	}

	for _, g := range gs {
		l, err := nstest.Lease(g.ns, "eth0", nil, 10)
		if err != nil {
			t.Fatalf("%s on %s: no lease across the tunnel: %v\n--- front-end log:\n%s", g.id, g.node.Name, err, tail(front.log.String(), 30))
		}
		if l.ACK.YourIPAddr.String() != g.ip || nstest.LeaseMTU(l.ACK) != 1450 {
			t.Errorf("%s leased %s", g.id, l.ACK.Summary())
		}
		nstest.Configure(t, g.ns, "eth0", l.ACK)
	}
	for _, g := range gs {
		if got, err := instanceID(g.ns); err != nil || got != g.id {
			t.Errorf("%s on %s: metadata instance-id %q, %v", g.id, g.node.Name, got, err)
		}
	}
	// Outbound NAT at the front-end: a LAN host sees the front-end's address.
	n2ns, err := netns.GetFromName(n2.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer n2ns.Close()
	nstest.ServeWho(t, n2ns, n2.IP+":7000")
	nstest.MustWho(t, webG.ns, n2.IP+":7000", fe.IP)

	for _, g := range gs {
		nstest.ServeWho(t, g.ns, "0.0.0.0:8080")
		nstest.ServeWho(t, g.ns, "0.0.0.0:2222")
	}
	nstest.MustWho(t, cliFar.ns, webG.ip+":8080", cliFar.ip)   // across nodes, admitted
	nstest.MustWho(t, cliNear.ns, webG.ip+":8080", cliNear.ip) // on one node, admitted
	nstest.MustNotConnect(t, cliFar.ns, webG.ip+":2222")       // across nodes, no rule
	nstest.MustNotConnect(t, cliNear.ns, webG.ip+":2222")      // on one node, no rule
	nstest.MustNotConnect(t, webG.ns, cliNear.ip+":8080")      // sg-cli admits nothing
	nstest.MustNotConnect(t, webG.ns, cliFar.ip+":8080")
	if err := nstest.Ping(cliFar.ns, webG.ip, 1450, 5*time.Second); err != nil {
		t.Errorf("a full-size ping across nodes: %v", err)
	}
	if err := nstest.Ping(webG.ns, cliFar.ip, 100, nstest.Refused); err == nil {
		t.Error("sg-cli answered a ping it does not admit")
	}
	if done, err := front.exited(); done {
		t.Fatalf("the front-end exited: %v\n%s", err, tail(front.log.String(), 40))
	}
}

// plugGuest makes a namespace playing an instance's guest on node: a veth
// whose node end is on the node's bridge (once the node has made it) and
// whose guest end, eth0, has the instance's MAC. Cleanup removes it.
func plugGuest(t *testing.T, node *lanHost, name, mac string) netns.NsHandle {
	t.Helper()
	return plugGuestInto(t, node.NS, node.lan.prefix+"-"+name, name, mac)
}

// plugGuestInto is plugGuest on the host of namespace hostNS: the guest's
// namespace is ns, the veth's host end name.
func plugGuestInto(t *testing.T, hostNS, ns, name, mac string) netns.NsHandle {
	t.Helper()
	eventually(t, hostNS+"'s bridge", time.Minute, func() error {
		return exec.Command("ip", "-n", hostNS, "link", "show", "euca-br0").Run()
	})
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", hostNS, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns)
	ip("-n", ns, "link", "set", "eth0", "address", mac)
	ip("-n", ns, "link", "set", "eth0", "up")
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", hostNS, "link", "set", name, "master", "euca-br0")
	ip("-n", hostNS, "link", "set", name, "up")
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// instanceID reads the instance id from the metadata service, from ns.
func instanceID(ns netns.NsHandle) (string, error) {
	var c net.Conn
	if err := nstest.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", "169.254.169.254:80", 5*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /latest/meta-data/instance-id HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return strings.TrimSpace(string(b)), err
}
