package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docBlock is a configuration block of the Eucalyptus 1.5 documentation
// (internal/conf/testdata/eucalyptus-1.5-doc), typographic quotes and
// all, with its addresses replaced as the pairs of replace say.
func docBlock(t *testing.T, name string, replace ...string) []string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "internal", "conf", "testdata", "eucalyptus-1.5-doc", name))
	if err != nil {
		t.Fatal(err)
	}
	return Lines(strings.NewReplacer(replace...).Replace(string(raw)))
}

// TestManagedSegments runs MANAGED, configured from the 1.5
// documentation's block, on a front-end and two compute hosts (network
// namespaces, each node with a libvirtd of its own, QEMU under TCG), with
// a client host on the same LAN. Two groups are two segments: "srv" holds
// s1 on n1 and s2 on n2 (one segment spanning the hosts over VXLAN), "cli"
// holds c on n1. Each guest leases its address in its group's segment and
// reads its metadata through its segment's redirect;
// srv admits port 80 from the client host and from its own members: the
// client reaches s1 through the front-end's routing, s2 reaches s1 across
// the hosts, and c, in the other segment, cannot until srv admits cli,
// after which c (polling s1 every second: EUCA-POLL) can.
func TestManagedSegments(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needGuestLAN(t)
	Need(t, "curl")
	const subnet = "10.242.64.0/18"
	l := newLANNamed(t, "mgd", "10.242.9")
	fe := l.host("fe", append(docBlock(t, "managed-frontend.conf",
		"192.168.1.0", "10.242.64.0", "255.255.0.0", "255.255.192.0", "192.168.1.2", "10.242.9.1",
		"10.0.0.0 10.0.0.1", "10.242.8.10 10.242.8.11"), `SCHEDPOLICY="ROUNDROBIN"`)...)
	nodeConf := append(docBlock(t, "managed-node.conf", "peth0", "eth0"), `HYPERVISOR="qemu"`)
	n1, n2 := l.host("n1", nodeConf...), l.host("n2", nodeConf...)
	client := l.host("cl")
	g := startGuestLAN(t, fe, n1, n2)
	nc1, nc2 := g.nodes[0], g.nodes[1]

	srv, cli := g.group("srv"), g.group("cli")
	g.aws("ec2", "authorize-security-group-ingress", "--group-id", srv, "--ip-permissions",
		fmt.Sprintf(`[{"IpProtocol":"tcp","FromPort":80,"ToPort":80,"IpRanges":[{"CidrIp":"%s/32"}],"UserIdGroupPairs":[{"GroupId":"%s"}]}]`, client.IP, srv))

	// ROUNDROBIN: s1 on n1, s2 on n2, c on n1.
	s1, s1IP := g.launch(srv, "")
	fetch := fmt.Sprintf("EUCA-FETCH http://%s/\n", s1IP)
	s2, s2IP := g.launch(srv, fetch)
	poll := "http://" + s1IP + "/"
	c, cIP := g.launch(cli, "EUCA-POLL "+poll+"\n")
	ids, ips := []string{s1, s2, c}, []string{s1IP, s2IP, cIP}

	// Addresses: srv's two in one segment of VNET_ADDRSPERNET=64, cli's
	// in another, all in VNET_SUBNET and in the default subnet shown.
	seg := func(a string) netip.Prefix { return netip.PrefixFrom(netip.MustParseAddr(a), 26).Masked() }
	if seg(s1IP) != seg(s2IP) || seg(cIP) == seg(s1IP) || !netip.MustParsePrefix(subnet).Contains(netip.MustParseAddr(cIP)) {
		t.Errorf("addresses s1 %s, s2 %s, c %s: want srv's two in one /26 of %s and cli's in another", s1IP, s2IP, cIP, subnet)
	}
	var cidrs []string
	jsonField(t, g.aws("ec2", "describe-subnets", "--filters", "Name=default-for-az,Values=true", "--query", "Subnets[].CidrBlock"), &cidrs)
	if len(cidrs) != 1 || !netip.MustParsePrefix(cidrs[0]).Contains(netip.MustParseAddr(s1IP)) || !netip.MustParsePrefix(cidrs[0]).Contains(netip.MustParseAddr(cIP)) {
		t.Errorf("default subnets %v do not hold the instances' addresses", cidrs)
	}
	eventually(t, "placement s1 and c on n1, s2 on n2", time.Minute, func() error {
		if countIn(nc1, []string{s1, c}) != 2 || countIn(nc2, []string{s2}) != 1 || countIn(nc2, []string{s1, c}) != 0 {
			return fmt.Errorf("not yet placed as ROUNDROBIN places")
		}
		return nil
	})
	for i, id := range ids {
		out := g.waitFor(id, 1, "EUCA-READY")
		if !strings.Contains(out, "EUCA-LEASE ip="+ips[i]+" ") || !strings.Contains(out, "EUCA-META instance-id="+id) {
			t.Errorf("%s did not lease %s from its segment's DHCP or read its own metadata:\n%s", id, ips[i], tail(out, 20))
		}
	}

	// The client host reaches s1 on the port srv opens to it, through the
	// front-end's routing; cli opens nothing, so not c.
	if out, err := client.run(nil, "ip", "route", "add", subnet, "via", fe.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "the client reaches s1", time.Minute, func() error {
		out, err := client.run(nil, "curl", "-sS", "-m", "5", "http://"+s1IP+"/")
		if err != nil || !strings.Contains(out, s1) {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	if out, err := client.run(nil, "curl", "-sS", "-m", "3", "http://"+cIP+"/"); err == nil {
		t.Errorf("the client reaches c, whose group opens nothing: %q", out)
	}

	// s2 reaches s1 in their segment across the hosts; c, in cli's, not.
	if out := g.waitFor(s2, 1, "EUCA-FETCHED", "EUCA-FETCH-FAIL"); !strings.Contains(out, "EUCA-FETCHED url=http://"+s1IP+"/ body="+s1) {
		t.Errorf("s2 on n2 cannot reach s1 on n1 in their group's segment:\n%s", tail(out, 10))
	}
	if out := g.waitFor(c, 1, "EUCA-POLL-OK", "EUCA-POLL-FAIL"); lastPoll(out, poll) != "FAIL" {
		t.Fatalf("c reaches s1 before srv admits cli:\n%s", tail(out, 10))
	}
	// srv admits cli: c's next polls get through.
	g.aws("ec2", "authorize-security-group-ingress", "--group-id", srv, "--ip-permissions",
		fmt.Sprintf(`[{"IpProtocol":"tcp","FromPort":80,"ToPort":80,"UserIdGroupPairs":[{"GroupId":"%s"}]}]`, cli))
	eventually(t, "c reaches s1 once srv admits cli", 2*time.Minute, func() error {
		if out := g.console(c); !strings.HasPrefix(lastPoll(out, poll), "OK") || !strings.Contains(lastPoll(out, poll), s1) {
			return fmt.Errorf("last poll %q; console ends:\n%s", lastPoll(out, poll), tail(out, 8))
		}
		return nil
	})
	g.terminate(ids...)
}
