package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestManyHosts is a cloud of separate hosts: a front-end (clc, walrus,
// cc) and compute hosts (nc, over the sim driver) as separate euca
// processes, each in a network namespace of its own on one LAN. The nodes
// join with tokens the front-end prints and are registered as Eucalyptus
// registered them; the AWS CLI launches across them under ROUNDROBIN and,
// after a restart of the front-end that must lose nothing, under GREEDY;
// the cluster is filled until InsufficientInstanceCapacity; a node is
// killed (capacity and instance status follow) and comes back (its lost
// instances are terminated with a reason); a node is deregistered; a
// forged token and a stolen certificate are refused.
func TestManyHosts(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needLAN(t)
	Need(t, "aws", "unzip", "bash")
	l := newLAN(t, "10.251.9")
	// Small nodes, so that filling the cluster takes a few instances:
	// MAX_CORES caps a simulated host as it caps a real one.
	fe := l.host("fe", `SCHEDPOLICY="ROUNDROBIN"`)
	nodeConf := []string{`MAX_CORES="4"`, `MAX_MEM="4096"`, `MAX_DISK="100"`}
	n1, n2 := l.host("n1", nodeConf...), l.host("n2", nodeConf...)

	front := fe.start("--roles=clc,walrus,cc")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	aws, mustAWS := lanAWS(t, fe, env, func() string { return front.log.String() })
	token := func() string { return lanToken(t, fe) }
	server := fe.IP + ":8773"
	nc1 := n1.start("--roles=nc", "--driver", "sim", "--join", token(), "--server", server)
	nc2 := n2.start("--roles=nc", "--driver", "sim", "--join", token(), "--server", server)
	nc1.waitListening(8775)
	nc2.waitListening(8775)
	if out, err := fe.euca("node", "register", n1.IP, n2.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "both nodes up in euca node list", time.Minute, func() error {
		return nodesUp(fe, n1.IP, n2.IP)
	})
	eventually(t, "capacity of two nodes", 30*time.Second, func() error { return wantCapacity(mustAWS, "m1.small", 8, 8) })

	emi := lanTinyImage(t, fe, env, mustAWS)
	run := func(min, max int) ([]string, error) {
		out, err := aws("ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small",
			"--count", fmt.Sprintf("%d:%d", min, max), "--query", "Instances[].InstanceId")
		if err != nil {
			return nil, err
		}
		var ids []string
		jsonField(t, out, &ids)
		return ids, nil
	}
	mustRun := func(min, max int) []string {
		t.Helper()
		ids, err := run(min, max)
		if err != nil {
			t.Fatalf("%v\n--- front-end log:\n%s", err, tail(front.log.String(), 40))
		}
		return ids
	}

	// ROUNDROBIN: four instances, two on each node.
	first := mustRun(4, 4)
	eventually(t, "round robin spreads 2 and 2", time.Minute, func() error {
		if a, b := countIn(nc1, first), countIn(nc2, first); a != 2 || b != 2 {
			return fmt.Errorf("n1 holds %d, n2 holds %d of %v", a, b, first)
		}
		return nil
	})
	eventually(t, "four running", time.Minute, func() error { return wantStates(mustAWS, first, "running", 4) })

	// A restart of the front-end loses no instance and no placement; the
	// new SCHEDPOLICY applies.
	if err := front.stop(); err != nil {
		t.Fatalf("front-end stop: %v\n%s", err, tail(front.log.String(), 30))
	}
	fe.setConf("SCHEDPOLICY", "GREEDY")
	front = fe.start("--roles=clc,walrus,cc")
	front.waitListening(8773)
	eventually(t, "nodes up after the front-end's restart", time.Minute, func() error { return nodesUp(fe, n1.IP, n2.IP) })
	eventually(t, "four still running after the restart", time.Minute, func() error { return wantStates(mustAWS, first, "running", 4) })
	eventually(t, "capacity after the restart", 30*time.Second, func() error { return wantCapacity(mustAWS, "m1.small", 4, 8) })

	// GREEDY fills the first node that fits: both new instances on one node.
	second := mustRun(2, 2)
	eventually(t, "greedy puts both on one node", time.Minute, func() error {
		if a, b := countIn(nc1, second), countIn(nc2, second); !(a == 2 && b == 0 || a == 0 && b == 2) {
			return fmt.Errorf("n1 holds %d, n2 holds %d of %v", a, b, second)
		}
		return nil
	})

	// Fill the cluster: a request for more than fits starts none; one with
	// a lower MinCount starts what fits; then nothing more fits.
	if _, err := run(3, 3); err == nil || !strings.Contains(err.Error(), "InsufficientInstanceCapacity") {
		t.Fatalf("3 instances with room for 2: %v", err)
	}
	third := mustRun(1, 10)
	if len(third) != 2 {
		t.Fatalf("MinCount 1 MaxCount 10 with room for 2 started %d", len(third))
	}
	if _, err := run(1, 1); err == nil || !strings.Contains(err.Error(), "InsufficientInstanceCapacity") {
		t.Fatalf("a launch into a full cluster: %v", err)
	}
	all := append(append(append([]string{}, first...), second...), third...)
	eventually(t, "eight running", time.Minute, func() error { return wantStates(mustAWS, all, "running", 8) })

	// n2 loses power: its capacity leaves the totals and its instances show
	// impaired instead of passing for running.
	var onN2 []string
	for _, id := range all {
		if countIn(nc2, []string{id}) == 1 {
			onN2 = append(onN2, id)
		}
	}
	if len(onN2) == 0 {
		t.Fatalf("no instance on n2")
	}
	nc2.kill()
	eventually(t, "n2's capacity leaves the totals", 2*time.Minute, func() error { return wantCapacity(mustAWS, "m1.small", 0, 4) })
	eventually(t, "n2's instances impaired", 2*time.Minute, func() error {
		out := mustAWS(append([]string{"ec2", "describe-instance-status", "--include-all-instances", "--instance-ids"}, onN2...)...)
		if n := strings.Count(out, `"impaired"`); n < len(onN2) {
			return fmt.Errorf("%d impaired statuses for %d instances:\n%s", n, len(onN2), out)
		}
		return nil
	})
	if out, err := fe.euca("node", "list"); err != nil || !regexp.MustCompile(regexp.QuoteMeta(n2.IP)+`\b.*\b(down|unreachable)`).MatchString(out) {
		t.Errorf("euca node list does not show n2 down (%v):\n%s", err, out)
	}

	// n2 comes back without its guests (a simulated host lives as long as
	// its process): they are terminated with a reason; n1's run on.
	nc2 = n2.start("--roles=nc", "--driver", "sim")
	eventually(t, "n2's lost instances terminated", 2*time.Minute, func() error { return wantStates(mustAWS, onN2, "terminated", len(onN2)) })
	reason := mustAWS("ec2", "describe-instances", "--instance-ids", onN2[0], "--query", "Reservations[0].Instances[0].StateReason.Message")
	if strings.TrimSpace(reason) == "null" || strings.TrimSpace(reason) == `""` {
		t.Errorf("no state reason for an instance its node lost")
	}
	eventually(t, "n2's capacity back", time.Minute, func() error { return wantCapacity(mustAWS, "m1.small", 4, 8) })

	// Deregistering n1 takes its capacity out of the totals at once.
	if out, err := fe.euca("node", "deregister", n1.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "n1's capacity gone", time.Minute, func() error { return wantCapacity(mustAWS, "m1.small", 4, 4) })

	// A forged token is refused, and the host says so.
	n3 := l.host("n3", nodeConf...)
	forged := "EUCA10" + strings.Repeat("0", 64) + "::" + strings.Repeat("f", 64)
	bad := n3.start("--roles=nc", "--driver", "sim", "--join", forged, "--server", server)
	select {
	case err := <-bad.done:
		bad.done <- err
		if err == nil {
			t.Errorf("a forged token: exit 0")
		}
		if !regexp.MustCompile(`(?i)pin|token`).MatchString(bad.log.String()) {
			t.Errorf("a forged token is refused without saying why:\n%s", tail(bad.log.String(), 10))
		}
	case <-time.After(time.Minute):
		t.Fatalf("a forged token: still running after a minute:\n%s", tail(bad.log.String(), 20))
	}

	// A stolen certificate: n1's identity copied to another host. Its
	// certificate names n1, so the cluster controller refuses to take the
	// host at n3's address for a node.
	stolenFrom := filepath.Join(n1.Dir, "euca")
	if err := exec.Command("cp", "-a", stolenFrom+"/.", filepath.Join(n3.Dir, "euca")).Run(); err != nil {
		t.Fatal(err)
	}
	thief := n3.start("--roles=nc", "--driver", "sim")
	thief.waitListening(8775)
	if out, err := fe.euca("node", "register", n3.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	time.Sleep(5 * time.Second) // a few poll rounds
	if err := nodesUp(fe, n3.IP); err == nil {
		t.Errorf("a host presenting n1's certificate at %s is taken for a node", n3.IP)
	}
	if done, err := front.exited(); done {
		t.Fatalf("the front-end exited: %v\n%s", err, tail(front.log.String(), 40))
	}
}

// lanCredentials writes the admin's credentials zip naming the host's LAN
// address, and returns its eucarc's environment.
func lanCredentials(t *testing.T, h *lanHost) []string {
	t.Helper()
	return credentialsFromZip(t, filepath.Join(h.Dir, "cred-admin"), func(zipPath string) (string, error) {
		return h.euca("credentials", "--account", "admin", "--zip", zipPath, "--host", h.IP)
	})
}

// lanTinyImage registers a small machine image through bundles, as a user
// does: the sim driver boots nothing, so any bytes will do.
func lanTinyImage(t *testing.T, fe *lanHost, env []string, aws func(...string) string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "root.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	return lanRegister(t, fe, env, aws, img, "tiny")
}

// lanRegister bundles file, uploads the bundle to the bucket named prefix
// and registers it, on the front-end host as a user there would, returning
// the image's id; bundleArgs go to bundle-image (--kernel, --ramdisk).
func lanRegister(t *testing.T, fe *lanHost, env []string, aws func(...string) string, file, prefix string, bundleArgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := Binary(t)
	args := append([]string{"bundle-image", "-i", file, "-d", dir, "-p", prefix, "-r", "x86_64", "--no-progress"}, bundleArgs...)
	if out, err := fe.run(env, bin, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	manifest := prefix + ".manifest.xml"
	if out, err := fe.run(env, bin, "upload-bundle", "-b", prefix, "-m", filepath.Join(dir, manifest), "--no-progress"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var id string
	jsonField(t, aws("ec2", "register-image", "--image-location", prefix+"/"+manifest, "--name", prefix, "--query", "ImageId"), &id)
	return id
}

// nodesUp is nil when `euca node list` on the front-end shows every host
// given up.
func nodesUp(fe *lanHost, hosts ...string) error {
	out, err := fe.euca("node", "list")
	if err != nil {
		return err
	}
	for _, h := range hosts {
		ok := false
		for _, line := range Lines(out) {
			f := strings.Fields(line)
			for i := 0; i+1 < len(f); i++ {
				if (f[i] == h || strings.HasPrefix(f[i], h+":")) && strings.EqualFold(f[i+1], "up") {
					ok = true
				}
			}
		}
		if !ok {
			return fmt.Errorf("%s not up in:\n%s", h, out)
		}
	}
	return nil
}

// wantCapacity is nil when DescribeAvailabilityZones verbose shows the VM
// type's free and max as given.
func wantCapacity(aws func(...string) string, vmType string, free, max int) error {
	out := aws("ec2", "describe-availability-zones", "--zone-names", "verbose",
		"--query", fmt.Sprintf("AvailabilityZones[?ZoneName=='|- %s'].State", vmType))
	var states []string
	if err := json.Unmarshal([]byte(out), &states); err != nil || len(states) == 0 {
		return fmt.Errorf("no capacity line for %s in %s", vmType, out)
	}
	m := regexp.MustCompile(`^(\d+) / (\d+)`).FindStringSubmatch(states[0])
	if m == nil {
		return fmt.Errorf("capacity line %q", states[0])
	}
	f, _ := strconv.Atoi(m[1])
	x, _ := strconv.Atoi(m[2])
	if f != free || x != max {
		return fmt.Errorf("%s: %d / %d, want %d / %d", vmType, f, x, free, max)
	}
	return nil
}

// wantStates is nil when n of the instances are in state.
func wantStates(aws func(...string) string, ids []string, state string, n int) error {
	out := aws(append([]string{"ec2", "describe-instances", "--query", "Reservations[].Instances[].State.Name", "--instance-ids"}, ids...)...)
	var states []string
	if err := json.Unmarshal([]byte(out), &states); err != nil {
		return err
	}
	got := 0
	for _, s := range states {
		if s == state {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("%d of %v %s, want %d: %v", got, ids, state, n, states)
	}
	return nil
}

// countIn is how many of ids a node's log names: a node logs each
// instance it runs.
func countIn(p *lanProc, ids []string) int {
	log := p.log.String()
	n := 0
	for _, id := range ids {
		if strings.Contains(log, id) {
			n++
		}
	}
	return n
}

// lanAWS runs the AWS CLI's EC2 commands on the front-end host with env;
// must fails the test with the end of frontLog on an error.
func lanAWS(t *testing.T, fe *lanHost, env []string, frontLog func() string) (aws func(...string) (string, error), must func(...string) string) {
	aws = func(args ...string) (string, error) {
		return fe.run(env, "aws", append([]string{"--endpoint-url", Getenv(env, "EC2_URL"), "--output", "json"}, args...)...)
	}
	must = func(args ...string) string {
		t.Helper()
		out, err := aws(args...)
		if err != nil {
			t.Fatalf("%v\n--- front-end log:\n%s", err, tail(frontLog(), 40))
		}
		return out
	}
	return aws, must
}

// lanToken is a node join token made on the front-end, as an operator
// makes it.
func lanToken(t *testing.T, fe *lanHost) string {
	t.Helper()
	out, err := fe.euca("token", "create", "--role", "nc")
	if err != nil {
		t.Fatal(err)
	}
	tok := regexp.MustCompile(`EUCA10\S+`).FindString(out)
	if tok == "" {
		t.Fatalf("no token in:\n%s", out)
	}
	return tok
}
