package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestManyHostsGuests runs real guests on two compute hosts, each a network
// namespace with a libvirtd of its own (QEMU under TCG), joined to a
// front-end in a third by tokens. The cluster's network spans the hosts
// over VXLAN: every guest gets its lease from the front-end's DHCP and
// reads its own metadata through the front-end's redirect; and the
// security groups hold between guests on different hosts and between two
// guests on one host. Under ROUNDROBIN, three launches land on n1, n2, n1.
func TestManyHostsGuests(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needGuestLAN(t)
	l := newLAN(t, "10.251.10")
	fe := l.host("fe", `SCHEDPOLICY="ROUNDROBIN"`)
	nodeConf := []string{`HYPERVISOR="qemu"`}
	g := startGuestLAN(t, fe, l.host("n1", nodeConf...), l.host("n2", nodeConf...))
	nc1, nc2 := g.nodes[0], g.nodes[1]

	// The server admits port 80 from members of "clients" only.
	srv, clients, others := g.group("server"), g.group("clients"), g.group("others")
	g.aws("ec2", "authorize-security-group-ingress", "--group-id", srv, "--ip-permissions",
		fmt.Sprintf(`[{"IpProtocol":"tcp","FromPort":80,"ToPort":80,"UserIdGroupPairs":[{"GroupId":"%s"}]}]`, clients))

	server, serverIP := g.launch(srv, "")
	fetch := "EUCA-FETCH http://" + serverIP + "/\n"
	client, _ := g.launch(clients, fetch)
	stranger, _ := g.launch(others, fetch)

	// ROUNDROBIN: n1, n2, n1 — so the client reaches the server across
	// hosts and the stranger tries from the server's own host.
	eventually(t, "placement n1, n2, n1", time.Minute, func() error {
		on1, on2 := countIn(nc1, []string{server, stranger}), countIn(nc2, []string{client})
		if on1 != 2 || on2 != 1 || countIn(nc2, []string{server, stranger}) != 0 {
			return fmt.Errorf("server and stranger on n1: %d of 2; client on n2: %d", on1, on2)
		}
		return nil
	})

	for _, id := range []string{server, client, stranger} {
		out := g.waitFor(id, 1, "EUCA-READY")
		if !strings.Contains(out, "EUCA-LEASE ip=") || !strings.Contains(out, "EUCA-META instance-id="+id) {
			t.Errorf("%s has no lease or no metadata of its own:\n%s", id, tail(out, 20))
		}
	}
	if out := g.waitFor(client, 1, "EUCA-FETCHED", "EUCA-FETCH-FAIL"); !strings.Contains(out, "EUCA-FETCHED url=http://"+serverIP+"/ body="+server) {
		t.Errorf("a member of clients on n2 cannot reach the server on n1:\n%s", tail(out, 10))
	}
	if out := g.waitFor(stranger, 1, "EUCA-FETCHED", "EUCA-FETCH-FAIL"); !strings.Contains(out, "EUCA-FETCH-FAIL url=http://"+serverIP+"/") {
		t.Errorf("a guest outside clients reaches the server from the same host:\n%s", tail(out, 10))
	}
	g.terminate(server, client, stranger)
}
