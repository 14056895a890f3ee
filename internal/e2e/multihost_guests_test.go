package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
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
	needLAN(t)
	// Each host starts a libvirtd of its own: the machine's need not run.
	Need(t, "aws", "unzip", "bash", "libvirtd", "virtlogd", "qemu-system-x86_64")
	if !exists(filepath.Join(guestDir(t), "root.img")) {
		Missing(t, "no test guest (make guest-image)")
	}
	l := newLAN(t, "10.251.10")
	fe := l.host("fe", `SCHEDPOLICY="ROUNDROBIN"`)
	nodeConf := []string{`HYPERVISOR="qemu"`}
	n1, n2 := l.host("n1", nodeConf...), l.host("n2", nodeConf...)

	front := fe.start("--roles=clc,walrus,cc")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	_, aws := lanAWS(t, fe, env, func() string { return front.log.String() })
	server := fe.IP + ":8773"
	nc1 := n1.startWithHypervisor("--roles=nc", "--join", lanToken(t, fe), "--server", server)
	nc2 := n2.startWithHypervisor("--roles=nc", "--join", lanToken(t, fe), "--server", server)
	nc1.waitListening(8775)
	nc2.waitListening(8775)
	if out, err := fe.euca("node", "register", n1.IP, n2.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "both nodes up", time.Minute, func() error { return nodesUp(fe, n1.IP, n2.IP) })

	g := guestDir(t)
	eki := lanRegister(t, fe, env, aws, filepath.Join(g, "vmlinuz"), "kernel", "--kernel", "true")
	eri := lanRegister(t, fe, env, aws, filepath.Join(g, "initrd.img"), "ramdisk", "--ramdisk", "true")
	emi := lanRegister(t, fe, env, aws, filepath.Join(g, "root.img"), "root", "--kernel", eki, "--ramdisk", eri)

	// The server admits port 80 from members of "clients" only.
	group := func(name string) string {
		var id string
		jsonField(t, aws("ec2", "create-security-group", "--group-name", name, "--description", name, "--query", "GroupId"), &id)
		return id
	}
	srv, clients, others := group("server"), group("clients"), group("others")
	aws("ec2", "authorize-security-group-ingress", "--group-id", srv, "--ip-permissions",
		fmt.Sprintf(`[{"IpProtocol":"tcp","FromPort":80,"ToPort":80,"UserIdGroupPairs":[{"GroupId":"%s"}]}]`, clients))

	launch := func(groupID, userData string) (id, ip string) {
		t.Helper()
		args := []string{"ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small", "--security-group-ids", groupID}
		if userData != "" {
			args = append(args, "--user-data", userData)
		}
		var out struct {
			Instances []struct{ InstanceId, PrivateIpAddress string }
		}
		if err := json.Unmarshal([]byte(aws(args...)), &out); err != nil || len(out.Instances) != 1 {
			t.Fatalf("run-instances: %v %+v", err, out)
		}
		return out.Instances[0].InstanceId, out.Instances[0].PrivateIpAddress
	}
	server, serverIP := launch(srv, "")
	fetch := "EUCA-FETCH http://" + serverIP + "/\n"
	client, _ := launch(clients, fetch)
	stranger, _ := launch(others, fetch)

	// ROUNDROBIN: n1, n2, n1 — so the client reaches the server across
	// hosts and the stranger tries from the server's own host.
	eventually(t, "placement n1, n2, n1", time.Minute, func() error {
		on1, on2 := countIn(nc1, []string{server, stranger}), countIn(nc2, []string{client})
		if on1 != 2 || on2 != 1 || countIn(nc2, []string{server, stranger}) != 0 {
			return fmt.Errorf("server and stranger on n1: %d of 2; client on n2: %d", on1, on2)
		}
		return nil
	})

	console := func(id string) string {
		var out string
		jsonField(t, aws("ec2", "get-console-output", "--instance-id", id, "--latest", "--query", "Output"), &out)
		if b, err := base64.StdEncoding.DecodeString(out); err == nil {
			return string(b)
		}
		return out
	}
	// waitFor waits for a line beginning with one of the markers.
	waitFor := func(id string, markers ...string) string {
		t.Helper()
		var last string
		eventually(t, id+" prints "+strings.Join(markers, " or "), 6*time.Minute, func() error {
			last = console(id)
			for _, m := range markers {
				if strings.Contains("\n"+last, "\n"+m) {
					return nil
				}
			}
			return fmt.Errorf("not yet; console ends:\n%s", tail(last, 8))
		})
		return last
	}
	for _, id := range []string{server, client, stranger} {
		out := waitFor(id, "EUCA-READY")
		if !strings.Contains(out, "EUCA-LEASE ip=") || !strings.Contains(out, "EUCA-META instance-id="+id) {
			t.Errorf("%s has no lease or no metadata of its own:\n%s", id, tail(out, 20))
		}
	}
	if out := waitFor(client, "EUCA-FETCHED", "EUCA-FETCH-FAIL"); !strings.Contains(out, "EUCA-FETCHED url=http://"+serverIP+"/ body="+server) {
		t.Errorf("a member of clients on n2 cannot reach the server on n1:\n%s", tail(out, 10))
	}
	if out := waitFor(stranger, "EUCA-FETCHED", "EUCA-FETCH-FAIL"); !strings.Contains(out, "EUCA-FETCH-FAIL url=http://"+serverIP+"/") {
		t.Errorf("a guest outside clients reaches the server from the same host:\n%s", tail(out, 10))
	}
	aws("ec2", "terminate-instances", "--instance-ids", server, client, stranger)
	eventually(t, "guests terminated", 2*time.Minute, func() error {
		return wantStates(aws, []string{server, client, stranger}, "terminated", 3)
	})
}
