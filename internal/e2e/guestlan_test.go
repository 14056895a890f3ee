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

// guestLAN is a cloud whose guests really boot across hosts: a front-end
// (clc, walrus, cc) and compute hosts, each node with a libvirtd of its
// own in its namespace (QEMU under TCG), joined by tokens and registered,
// with the test guest's kernel, ramdisk and root registered as a user
// does. The caller makes the LAN and the hosts (their confs decide the
// network mode).
type guestLAN struct {
	t     *testing.T
	fe    *lanHost
	front *lanProc
	nodes []*lanProc // in the order of the hosts given
	env   []string
	aws   func(...string) string // the AWS CLI on the front-end, failing the test on an error
	emi   string
}

// needGuestLAN skips (or fails under CI) where guests cannot boot on
// hosts of their own.
func needGuestLAN(t *testing.T) {
	t.Helper()
	needLAN(t)
	// Each host starts a libvirtd of its own: the machine's need not run.
	Need(t, "aws", "unzip", "bash", "libvirtd", "virtlogd", "qemu-system-x86_64")
	if !exists(filepath.Join(guestDir(t), "root.img")) {
		Missing(t, "no test guest (make guest-image)")
	}
}

// startGuestLAN starts the front-end on fe and a node on each of nodes,
// and registers the test guest. With no nodes, the front-end is the node
// too (every role, a libvirtd of its own): a cloud on one host.
func startGuestLAN(t *testing.T, fe *lanHost, nodes ...*lanHost) *guestLAN {
	t.Helper()
	return startGuestLANRoles(t, "clc,walrus,cc", fe, nodes...)
}

// startGuestLANRoles is startGuestLAN whose front-end, when there are
// nodes, runs frontRoles (a storage controller too, say).
func startGuestLANRoles(t *testing.T, frontRoles string, fe *lanHost, nodes ...*lanHost) *guestLAN {
	t.Helper()
	g := &guestLAN{t: t, fe: fe}
	if len(nodes) == 0 {
		g.front = fe.startWithHypervisor("--roles=all")
	} else {
		g.front = fe.start("--roles=" + frontRoles)
	}
	g.front.waitListening(8773)
	g.env = lanCredentials(t, fe)
	_, g.aws = lanAWS(t, fe, g.env, func() string { return g.front.log.String() })
	server := fe.IP + ":8773"
	var ips []string
	for _, h := range nodes {
		g.nodes = append(g.nodes, h.startWithHypervisor("--roles=nc", "--join", lanToken(t, fe), "--server", server))
		ips = append(ips, h.IP)
	}
	for _, p := range g.nodes {
		p.waitListening(8775)
	}
	if len(ips) > 0 {
		if out, err := fe.euca(append([]string{"node", "register"}, ips...)...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		eventually(t, "nodes up", time.Minute, func() error { return nodesUp(fe, ips...) })
	}

	dir := guestDir(t)
	eki := lanRegister(t, fe, g.env, g.aws, filepath.Join(dir, "vmlinuz"), "kernel", "--kernel", "true")
	eri := lanRegister(t, fe, g.env, g.aws, filepath.Join(dir, "initrd.img"), "ramdisk", "--ramdisk", "true")
	g.emi = lanRegister(t, fe, g.env, g.aws, filepath.Join(dir, "root.img"), "root", "--kernel", eki, "--ramdisk", eri)
	return g
}

// group creates a security group and returns its id.
func (g *guestLAN) group(name string) string {
	g.t.Helper()
	var id string
	jsonField(g.t, g.aws("ec2", "create-security-group", "--group-name", name, "--description", name, "--query", "GroupId"), &id)
	return id
}

// launch runs one guest in the group with the user data (none when
// empty), returning its id and private address.
func (g *guestLAN) launch(groupID, userData string) (id, ip string) {
	g.t.Helper()
	return g.launchIn([]string{groupID}, userData)
}

// launchIn is launch with the guest in several groups.
func (g *guestLAN) launchIn(groupIDs []string, userData string) (id, ip string) {
	g.t.Helper()
	args := append([]string{"ec2", "run-instances", "--image-id", g.emi, "--instance-type", "m1.small", "--security-group-ids"}, groupIDs...)
	if userData != "" {
		args = append(args, "--user-data", userData)
	}
	var out struct {
		Instances []struct{ InstanceId, PrivateIpAddress string }
	}
	if err := json.Unmarshal([]byte(g.aws(args...)), &out); err != nil || len(out.Instances) != 1 {
		g.t.Fatalf("run-instances: %v %+v", err, out)
	}
	return out.Instances[0].InstanceId, out.Instances[0].PrivateIpAddress
}

// console is the guest's console output so far.
func (g *guestLAN) console(id string) string {
	g.t.Helper()
	var out string
	jsonField(g.t, g.aws("ec2", "get-console-output", "--instance-id", id, "--latest", "--query", "Output"), &out)
	if b, err := base64.StdEncoding.DecodeString(out); err == nil {
		return string(b)
	}
	return out
}

// waitFor waits until the console holds n lines beginning with one of
// the markers (a reboot prints them again), and returns it.
func (g *guestLAN) waitFor(id string, n int, markers ...string) string {
	g.t.Helper()
	var last string
	eventually(g.t, id+" prints "+strings.Join(markers, " or "), 6*time.Minute, func() error {
		last = g.console(id)
		seen := 0
		for _, m := range markers {
			seen += strings.Count("\n"+last, "\n"+m)
		}
		if seen >= n {
			return nil
		}
		return fmt.Errorf("not yet; console ends:\n%s", tail(last, 8))
	})
	return last
}

// terminate ends the guests and waits until they are.
func (g *guestLAN) terminate(ids ...string) {
	g.t.Helper()
	g.aws(append([]string{"ec2", "terminate-instances", "--instance-ids"}, ids...)...)
	eventually(g.t, "guests terminated", 2*time.Minute, func() error { return wantStates(g.aws, ids, "terminated", len(ids)) })
}
