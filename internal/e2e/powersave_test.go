package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPowerSaveAcrossHosts: under SCHEDPOLICY=POWERSAVE a front-end powers
// down a compute host that has been idle for POWER_IDLETHRESH (the node
// API's power-down; a simulated host sleeps and answers nothing), keeps
// its room in free/max, and when a launch needs it wakes it with a
// Wake-on-LAN magic packet to the MAC its ARP table holds, sent to the
// LAN's broadcast address: the instance starts on the woken host.
func TestPowerSaveAcrossHosts(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needLAN(t)
	Need(t, "aws", "unzip", "bash")
	l := newLAN(t, "10.251.31")
	fe := l.host("fe", `SCHEDPOLICY="POWERSAVE"`, `POWER_IDLETHRESH="2"`, `POWER_WAKETHRESH="60"`)
	n1 := l.host("n1", `MAX_CORES="4"`, `MAX_MEM="4096"`, `MAX_DISK="100"`)

	front := fe.start("--roles=clc,walrus,cc")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	_, mustAWS := lanAWS(t, fe, env, func() string { return front.log.String() })
	nc1 := n1.start("--roles=nc", "--driver", "sim", "--join", lanToken(t, fe), "--server", fe.IP+":8773")
	nc1.waitListening(8775)
	if out, err := fe.euca("node", "register", n1.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	state := func() string {
		out, _ := fe.euca("node", "list")
		m := regexp.MustCompile(regexp.QuoteMeta(n1.IP) + `:\d+\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			return ""
		}
		return m[1]
	}
	eventually(t, "n1 up", time.Minute, func() error { return nodesUp(fe, n1.IP) })
	emi := lanTinyImage(t, fe, env, mustAWS)

	eventually(t, "idle n1 powered down", 2*time.Minute, func() error {
		if s := state(); s != "asleep" {
			return fmt.Errorf("n1 is %q\n--- front-end log:\n%s", s, tail(front.log.String(), 20))
		}
		return nil
	})
	if !strings.Contains(nc1.log.String(), "host powered down") {
		t.Fatalf("n1's log does not say it powered down:\n%s", tail(nc1.log.String(), 20))
	}
	// Asleep, its room still counts: it can be woken.
	eventually(t, "a sleeping node's room in free/max", 30*time.Second, func() error { return wantCapacity(mustAWS, "m1.small", 4, 4) })

	var ids []string
	jsonField(t, mustAWS("ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small", "--count", "1",
		"--query", "Instances[].InstanceId"), &ids)
	eventually(t, "the instance running on the woken node", 2*time.Minute, func() error { return wantStates(mustAWS, ids, "running", 1) })
	if countIn(nc1, ids) != 1 {
		t.Fatalf("the instance is not on n1:\n%s", tail(nc1.log.String(), 20))
	}
	if !strings.Contains(nc1.log.String(), "woken on LAN") {
		t.Fatalf("n1's log does not say it was woken on LAN:\n%s", tail(nc1.log.String(), 20))
	}
	if s := state(); s != "up" {
		t.Fatalf("n1 after the launch: %q", s)
	}
}
