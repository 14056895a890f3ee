package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
)

var twoHostsCalls atomic.Int32

// twoHosts makes two network namespaces joined by a veth link, as two
// hosts on a LAN: the first at 10.252.0.1, the second at 10.252.0.2.
func twoHosts(t *testing.T) (a, b string) {
	t.Helper()
	// Tests using it run in parallel: each call its own names.
	n := twoHostsCalls.Add(1)
	a, b = fmt.Sprintf("euca-za-%d-%d", os.Getpid(), n), fmt.Sprintf("euca-zb-%d-%d", os.Getpid(), n)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	for _, ns := range []string{a, b} {
		sh("ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh("ip", "-n", ns, "link", "set", "lo", "up")
	}
	va, vb := fmt.Sprintf("ezva%d-%d", os.Getpid()%100000, n), fmt.Sprintf("ezvb%d-%d", os.Getpid()%100000, n)
	sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
	sh("ip", "link", "set", va, "netns", a)
	sh("ip", "link", "set", vb, "netns", b)
	sh("ip", "-n", a, "link", "set", va, "name", "eth0")
	sh("ip", "-n", b, "link", "set", vb, "name", "eth0")
	sh("ip", "-n", a, "addr", "add", "10.252.0.1/24", "dev", "eth0")
	sh("ip", "-n", b, "addr", "add", "10.252.0.2/24", "dev", "eth0")
	sh("ip", "-n", a, "link", "set", "eth0", "up")
	sh("ip", "-n", b, "link", "set", "eth0", "up")
	return a, b
}

// TestClustersAsZones: two clusters under one cloud controller, as
// separate processes on two hosts (network namespaces on one link): the
// front-end runs every role with the sim driver and serves us-east-1a; the
// second host joins with a token made for a cluster controller and runs
// its cluster (us-east-1b) with a node beside it; `euca cluster register`
// makes it a zone. The AWS CLI then sees both zones, launches into the one
// Placement.AvailabilityZone names and, without one, into the zone with
// more room; the second cluster stopped shows its zone unavailable;
// deregistered, the zone goes.
func TestClustersAsZones(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	Need(t, "ip", "aws", "unzip")
	if os.Geteuid() != 0 {
		Missing(t, "two hosts (network namespaces joined by a veth link) need root")
	}
	nsA, nsB := twoHosts(t)
	cloudPort, ccPort := freePort(t), freePort(t)
	fe := newHost(t, nsA, "fe", "CLOUD_PORT=\""+strconv.Itoa(cloudPort)+"\"", "METADATA_PORT=\""+strconv.Itoa(freePort(t))+"\"",
		`VNET_PRIVINTERFACE="eth0"`, `VNET_CLOUDIP="10.252.0.1"`)
	fe.start("--roles=clc,walrus,cc,nc", "--driver", "sim")
	server := "10.252.0.1:" + strconv.Itoa(cloudPort)

	out, err := fe.run("token", "create", "--role", "cc")
	tok := tokenLine.FindString(out)
	if err != nil || tok == "" {
		t.Fatalf("euca token create --role cc: %v\n%s", err, out)
	}
	cc2 := newHost(t, nsB, "cc2", `CLUSTER_NAME="us-east-1b"`, "CC_PORT=\""+strconv.Itoa(ccPort)+"\"",
		"NC_PORT=\""+strconv.Itoa(freePort(t))+"\"", `VNET_PRIVINTERFACE="eth0"`)
	cc2.start("--roles=cc,nc", "--driver", "sim", "--join", tok, "--server", server)
	if strings.Contains(cc2.Log(), tok[len(tok)-64:]) || strings.Contains(fe.Log(), tok[len(tok)-64:]) {
		t.Error("the token's secret is in a log")
	}
	if out, err := fe.run("cluster", "register", "us-east-1b", "10.252.0.2:"+strconv.Itoa(ccPort)); err != nil {
		t.Fatalf("euca cluster register: %v\n%s", err, out)
	}
	if out, err := fe.run("cluster", "list"); err != nil || !strings.Contains(out, "us-east-1b") {
		t.Fatalf("euca cluster list: %v\n%s", err, out)
	}

	// The admin's credentials, and the AWS CLI on the front-end's host.
	env := append(cleanEnv(), fe.credentials(t, "10.252.0.1")...)
	inA := func(name string, args ...string) (string, error) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", nsA, name}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	ec2 := func(args ...string) string {
		t.Helper()
		out, err := inA("aws", append([]string{"--endpoint-url", Getenv(env, "EC2_URL"), "ec2"}, append(args, "--output", "text")...)...)
		if err != nil {
			t.Fatalf("aws ec2 %v: %v\n%s\n--- front-end:\n%s\n--- cc2:\n%s", args, err, out, tail(fe.Log(), 30), tail(cc2.Log(), 30))
		}
		return out
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s\n--- front-end:\n%s\n--- cc2:\n%s", what, tail(fe.Log(), 40), tail(cc2.Log(), 40))
			}
			time.Sleep(time.Second)
		}
	}
	zoneStates := func() string {
		return ec2("describe-availability-zones", "--query", "AvailabilityZones[].[ZoneName,State]")
	}
	eventually("both zones available", func() bool {
		s := zoneStates()
		return strings.Contains(s, "us-east-1a\tavailable") && strings.Contains(s, "us-east-1b\tavailable")
	})
	verbose := ec2("describe-availability-zones", "--zone-names", "verbose")
	if !strings.Contains(verbose, "us-east-1b") || strings.Count(verbose, "|- m1.small") != 2 {
		t.Errorf("verbose:\n%s", verbose)
	}
	subnets := ec2("describe-subnets", "--filters", "Name=default-for-az,Values=true", "--query", "Subnets[].[AvailabilityZone,CidrBlock]")
	if !strings.Contains(subnets, "us-east-1b\t172.31.128.0/17") {
		t.Errorf("default subnets:\n%s", subnets)
	}

	// An image of random bytes (the sim driver boots nothing), bundled,
	// uploaded and registered as a user does.
	bdir := t.TempDir()
	img := func(name string, size int) string {
		p := filepath.Join(bdir, name)
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	register := func(prefix, file string, extra ...string) string {
		t.Helper()
		if out, err := inA(fe.bin, append([]string{"bundle-image", "-i", file, "-d", bdir, "-p", prefix}, extra...)...); err != nil {
			t.Fatalf("bundle-image: %v\n%s", err, out)
		}
		if out, err := inA(fe.bin, "upload-bundle", "-b", "zones", "-m", filepath.Join(bdir, prefix+".manifest.xml")); err != nil {
			t.Fatalf("upload-bundle: %v\n%s", err, out)
		}
		return ec2("register-image", "--image-location", "zones/"+prefix+".manifest.xml", "--name", prefix, "--query", "ImageId")
	}
	eki := register("kernel", img("vmlinuz", 65536), "--kernel", "true")
	eri := register("ramdisk", img("initrd", 65536), "--ramdisk", "true")
	emi := register("machine", img("root.img", 1<<20), "--kernel", eki, "--ramdisk", eri)

	run := func(args ...string) (id, zone string) {
		t.Helper()
		out := ec2(append([]string{"run-instances", "--image-id", emi, "--instance-type", "m1.small",
			"--query", "Instances[0].[InstanceId,Placement.AvailabilityZone]"}, args...)...)
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("run-instances: %q", out)
		}
		return f[0], f[1]
	}
	idB, zone := run("--placement", "AvailabilityZone=us-east-1b")
	if zone != "us-east-1b" {
		t.Fatalf("placed in %s, asked for us-east-1b", zone)
	}
	eventually("the instance in us-east-1b runs on the second host", func() bool {
		return ec2("describe-instances", "--instance-ids", idB, "--query", "Reservations[0].Instances[0].State.Name") == "running"
	})
	if !strings.Contains(cc2.Log(), idB) {
		t.Errorf("the second host's log does not name %s", idB)
	}
	// A guest of us-east-1b (a namespace on the second host's bridge with
	// the instance's MAC) leases its address from its cluster and reads its
	// own instance id from 169.254.169.254: the cluster's relay asks the
	// front-end for it over the internal TLS.
	nic := strings.Fields(ec2("describe-instances", "--instance-ids", idB, "--query",
		"Reservations[0].Instances[0].[PrivateIpAddress,NetworkInterfaces[0].MacAddress]"))
	if len(nic) != 2 {
		t.Fatalf("the instance's address and MAC: %q", nic)
	}
	guest := plugGuestInto(t, nsB, fmt.Sprintf("euca-zg-%d", os.Getpid()), "zg0", nic[1])
	lease, err := nstest.Lease(guest, "eth0", nil, 10)
	if err != nil {
		t.Fatalf("no lease in us-east-1b: %v\n--- cc2:\n%s", err, tail(cc2.Log(), 30))
	}
	if lease.ACK.YourIPAddr.String() != nic[0] {
		t.Errorf("leased %s, the instance has %s", lease.ACK.YourIPAddr, nic[0])
	}
	nstest.Configure(t, guest, "eth0", lease.ACK)
	if got, err := instanceID(guest); err != nil || got != idB {
		t.Errorf("a guest of us-east-1b reads instance-id %q, %v; want %s\n--- front-end:\n%s\n--- cc2:\n%s", got, err, idB, tail(fe.Log(), 20), tail(cc2.Log(), 20))
	}
	// The two hosts are alike; the second now holds an instance more.
	idA, zone := run()
	if zone != "us-east-1a" {
		t.Errorf("without a zone, placed in %s: want us-east-1a, the one with more room", zone)
	}
	eventually("the instance in us-east-1a runs", func() bool {
		return ec2("describe-instances", "--instance-ids", idA, "--query", "Reservations[0].Instances[0].State.Name") == "running"
	})
	if strings.Contains(cc2.Log(), idA) {
		t.Errorf("the second host started %s, placed in us-east-1a", idA)
	}
	if out, err := inA("aws", "--endpoint-url", Getenv(env, "EC2_URL"), "ec2", "run-instances", "--image-id", emi,
		"--placement", "AvailabilityZone=us-east-1z"); err == nil || !strings.Contains(out, "InvalidParameterValue") {
		t.Errorf("an unknown zone: %v\n%s", err, out)
	}

	// The second cluster stops answering: its zone is unavailable.
	cc2.stop()
	eventually("us-east-1b unavailable", func() bool { return strings.Contains(zoneStates(), "us-east-1b\tunavailable") })
	if s := zoneStates(); !strings.Contains(s, "us-east-1a\tavailable") {
		t.Errorf("the first zone: %s", s)
	}

	if out, err := fe.run("cluster", "deregister", "us-east-1b"); err != nil {
		t.Fatalf("euca cluster deregister: %v\n%s", err, out)
	}
	eventually("us-east-1b gone", func() bool { return !strings.Contains(zoneStates(), "us-east-1b") })
}
