package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/logbuf"
)

// TestNodeRegistry drives the node registry through the built binary: a
// front-end running every role with the sim driver (in a network namespace
// of its own, so its cluster network is the test's), `euca node register`,
// `deregister` and `list` run beside it as an operator runs them, and the
// AWS CLI's describe-availability-zones verbose showing each change: the
// local node counted once (NODES names it by its loopback address), a
// registered node that does not answer listed down and adding nothing, a
// deregistered node's capacity gone.
func TestNodeRegistry(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	Need(t, "ip", "aws")
	if os.Geteuid() != 0 {
		Missing(t, "the cluster network (in a namespace of the test's) needs root")
	}
	bin := Binary(t)
	ns := fmt.Sprintf("nodes-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	in := func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	in("ip", "link", "set", "lo", "up").Run()

	dir := t.TempDir()
	port := freePort(t)
	c := &Cloud{Bin: bin, Dir: dir, Port: port, Conf: filepath.Join(dir, "eucalyptus.conf")}
	os.WriteFile(c.Conf, []byte(fmt.Sprintf("EUCALYPTUS=%q\nINSTANCE_PATH=%q\nCLOUD_PORT=\"%d\"\nMETADATA_PORT=\"%d\"\nLOGLEVEL=\"DEBUG\"\nNODES=\"127.0.0.1\"\n",
		filepath.Join(dir, "euca"), filepath.Join(dir, "instances"), port, freePort(t))), 0o644)
	var log logbuf.Buffer
	cloud := in(bin, "--roles=all", "--driver", "sim", "--conf", c.Conf)
	cloud.Stdout, cloud.Stderr = &log, &log
	if err := cloud.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cloud.Wait() }()
	t.Cleanup(func() {
		cloud.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cloud.Process.Kill()
			<-done
		}
	})
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; euca's log:\n%s", what, log.String())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	until("the cloud to listen", func() bool {
		return in("bash", "-c", fmt.Sprintf("echo > /dev/tcp/127.0.0.1/%d", port)).Run() == nil
	})
	// Admin commands only open the store: they run beside the cloud, from
	// the host's own namespace.
	env := c.Credentials(t, "admin")
	list := func() string {
		t.Helper()
		out, err := c.Euca(t, "node", "list")
		if err != nil {
			t.Fatalf("node list: %v\n%s", err, out)
		}
		return out
	}
	euca := func(args ...string) string {
		t.Helper()
		out, err := c.Euca(t, args...)
		if err != nil {
			t.Fatalf("euca %v: %v\n%s", args, err, out)
		}
		return out
	}
	zones := func() string {
		t.Helper()
		cmd := in("aws", "--endpoint-url", Getenv(env, "EC2_URL"), "--output", "text", "ec2", "describe-availability-zones", "--zone-names", "verbose")
		cmd.Env = append(cleanEnv(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("describe-availability-zones: %v\n%s", err, out)
		}
		return string(out)
	}
	// As the acceptance check reads it: the m1.small line's free / max.
	small := regexp.MustCompile(`([0-9]{4}) / ([0-9]{4})`)
	maxSmall := func() string {
		for _, l := range strings.Split(zones(), "\n") {
			if m := small.FindStringSubmatch(l); m != nil && strings.Contains(l, "m1.small") {
				return m[2]
			}
		}
		return ""
	}

	// The local node, named in NODES by its loopback address, is one node.
	until("the local node up in node list", func() bool { return regexp.MustCompile(`localhost:8775\s+up\s`).MatchString(list()) })
	if out := list(); strings.Count(out, "\n") != 2 || !strings.Contains(out, " dev") {
		t.Fatalf("node list with the local node (once, with its version):\n%s", out)
	}
	until("capacity of the local node", func() bool { return maxSmall() != "" && maxSmall() != "0000" })
	full := maxSmall()
	if z := zones(); !strings.Contains(z, "|- node localhost:8775") || !strings.Contains(z, "up     cores") {
		t.Fatalf("verbose without the node's line:\n%s", z)
	}

	// A node that does not answer: listed, down, adding nothing.
	if out := euca("node", "register", "10.77.0.9:9999"); !strings.Contains(out, "registered") {
		t.Fatalf("register: %s", out)
	}
	until("the new node down in node list", func() bool { return regexp.MustCompile(`10\.77\.0\.9:9999\s+down\s`).MatchString(list()) })
	until("the new node in the verbose zones", func() bool { return strings.Contains(zones(), "|- node 10.77.0.9:9999") })
	if got := maxSmall(); got != full {
		t.Errorf("a node that does not answer changed the capacity: %s, was %s", got, full)
	}

	// The local node deregistered: its capacity leaves; the zone has no
	// node that answers.
	euca("node", "deregister", "localhost")
	until("the capacity to leave", func() bool { return maxSmall() == "0000" })
	if out := list(); strings.Contains(out, "localhost") {
		t.Errorf("deregistered node still listed:\n%s", out)
	}
	until("the zone to be unavailable", func() bool { return strings.Contains(zones(), "unavailable") })

	// Registered again, it comes back.
	euca("node", "register", "localhost")
	until("the capacity to come back", func() bool { return maxSmall() == full })
	euca("node", "deregister", "10.77.0.9")
	until("the other node to leave", func() bool { return !strings.Contains(zones(), "10.77.0.9") })
	if out, err := c.Euca(t, "node", "deregister", "10.77.0.9"); err == nil || !strings.Contains(out, "not registered") {
		t.Errorf("deregister twice: %v %s", err, out)
	}
}
