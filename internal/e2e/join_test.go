package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// host is one euca process of a many-host test, in the test's network
// namespace when the test runs as root (so the front-end's bridge and NAT
// stay out of the machine's own network), else beside the test.
type host struct {
	t    *testing.T
	ns   string
	bin  string
	conf string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	mu   sync.Mutex
	log  bytes.Buffer
}

// joinNetns makes a network namespace with loopback up for the test, or
// returns "" when not root (the processes then set up no network anyway).
func joinNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return ""
	}
	ns := fmt.Sprintf("euca-join-%d-%s", os.Getpid(), strings.ToLower(t.Name()))
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	return ns
}

func (h *host) command(args ...string) *exec.Cmd {
	args = append([]string{h.bin, "--conf", h.conf}, args...)
	if h.ns != "" {
		return exec.Command("ip", append([]string{"netns", "exec", h.ns}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

// newHost writes a host's configuration under dir/name.
func newHost(t *testing.T, ns, name string, lines ...string) *host {
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, ns: ns, bin: Binary(t), conf: filepath.Join(dir, "eucalyptus.conf")}
	text := fmt.Sprintf("EUCALYPTUS=%q\nLOGLEVEL=\"DEBUG\"\n%s\n", filepath.Join(dir, "euca"), strings.Join(lines, "\n"))
	if err := os.WriteFile(h.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// start runs euca with args and waits until it says it runs.
func (h *host) start(args ...string) {
	h.t.Helper()
	h.mu.Lock()
	h.log.Reset()
	h.mu.Unlock()
	h.cmd = h.command(args...)
	w := &lockedWriter{&h.mu, &h.log}
	h.cmd.Stdout, h.cmd.Stderr = w, w
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	h.done = done
	go func() { h.cmd.Wait(); close(done) }()
	cmd := h.cmd
	h.t.Cleanup(func() { stopHost(h.t, cmd, done) })
	deadline := time.After(60 * time.Second)
	for !strings.Contains(h.Log(), "euca running") {
		select {
		case <-done:
			h.t.Fatalf("euca %v exited:\n%s", args, h.Log())
		case <-deadline:
			h.t.Fatalf("euca %v did not start:\n%s", args, h.Log())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop stops the running process with SIGINT.
func (h *host) stop() { stopHost(h.t, h.cmd, h.done) }

func stopHost(t *testing.T, cmd *exec.Cmd, done chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("euca did not stop within 20s of SIGINT")
	}
}

func (h *host) Log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.String()
}

// run runs a one-shot euca command on the host.
func (h *host) run(args ...string) (string, error) {
	out, err := h.command(args...).CombinedOutput()
	return string(out), err
}

// client runs a client program on the host (in its namespace) with env
// (a sourced eucarc), returning its standard output.
func (h *host) client(env []string, name string, args ...string) (string, error) {
	if h.ns != "" {
		args = append([]string{"netns", "exec", h.ns, name}, args...)
		name = "ip"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// credentials takes the admin's credentials on the front-end as a user
// would (euca credentials, unzip, source eucarc), its URLs naming addr.
func (h *host) credentials(t *testing.T, addr string) []string {
	t.Helper()
	return credentialsFromZip(t, filepath.Join(filepath.Dir(h.conf), "cred"), func(zipPath string) (string, error) {
		return h.run("credentials", "--account", "admin", "--zip", zipPath, "--host", addr)
	})
}

// launchOnNode registers a small image through bundles and launches it
// with the AWS CLI; the sim driver boots nothing, but the node fetches the
// image from the front-end's internal TLS side before it reports running.
func launchOnNode(t *testing.T, fe, node *host) {
	t.Helper()
	Need(t, "aws")
	env := fe.credentials(t, "127.0.0.1")
	dir := t.TempDir()
	for name, size := range map[string]int{"k": 64 << 10, "r": 64 << 10, "root.img": 4 << 20} {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte(name[:1]), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n--- front-end:\n%s", err, tail(fe.Log(), 20))
		}
		return out
	}
	ec2 := []string{"--endpoint-url", Getenv(env, "EC2_URL"), "ec2"}
	register := func(file, prefix string, args ...string) string {
		t.Helper()
		must(fe.client(env, fe.bin, append([]string{"bundle-image", "-i", filepath.Join(dir, file), "-d", dir, "-p", prefix, "-r", "x86_64"}, args...)...))
		must(fe.client(env, fe.bin, "upload-bundle", "-b", "joined", "-m", filepath.Join(dir, prefix+".manifest.xml")))
		return must(fe.client(env, "aws", append(ec2, "register-image", "--image-location", "joined/"+prefix+".manifest.xml", "--name", prefix, "--query", "ImageId", "--output", "text")...))
	}
	eki := register("k", "kernel", "--kernel", "true")
	eri := register("r", "ramdisk", "--ramdisk", "true")
	emi := register("root.img", "root", "--kernel", eki, "--ramdisk", eri)
	id := must(fe.client(env, "aws", append(ec2, "run-instances", "--image-id", emi, "--instance-type", "m1.small", "--query", "Instances[0].InstanceId", "--output", "text")...))
	deadline := time.Now().Add(90 * time.Second)
	for {
		state := must(fe.client(env, "aws", append(ec2, "describe-instances", "--instance-ids", id, "--query", "Reservations[0].Instances[0].State.Name", "--output", "text")...))
		if state == "running" && strings.Contains(node.Log(), id) {
			return
		}
		if state == "terminated" || time.Now().After(deadline) {
			t.Fatalf("instance %s is %s:\n--- front-end:\n%s\n--- node:\n%s", id, state, tail(fe.Log(), 20), tail(node.Log(), 20))
		}
		time.Sleep(time.Second)
	}
}

var tokenLine = regexp.MustCompile(`(?m)^EUCA10[^[:space:]]+$`)

// TestJoinNode: a compute host joins the front-end with a token, as
// separate processes (the front-end's roles, and the node controller
// alone with the sim driver): the cluster controller then reaches its node
// API over mutual TLS, and an instance launched with the AWS CLI runs there
// on an image the node fetched from the front-end over mutual TLS. The
// node later starts without the token; a used,
// a forged and another cloud's token are refused, each saying which.
func TestJoinNode(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	ns := joinNetns(t)
	cloudPort, ncPort := freePort(t), freePort(t)
	fe := newHost(t, ns, "fe", "CLOUD_PORT=\""+strconv.Itoa(cloudPort)+"\"", "METADATA_PORT=\""+strconv.Itoa(freePort(t))+"\"")
	fe.start("--roles=clc,walrus,cc")
	server := "127.0.0.1:" + strconv.Itoa(cloudPort)

	out, err := fe.run("token", "create", "--role", "nc")
	tok := tokenLine.FindString(out)
	if err != nil || tok == "" {
		t.Fatalf("euca token create: %v\n%s", err, out)
	}
	nodeConf := []string{"NC_PORT=\"" + strconv.Itoa(ncPort) + "\"", "CLOUD_PORT=\"" + strconv.Itoa(freePort(t)) + "\""}
	n1 := newHost(t, ns, "n1", nodeConf...)
	n1.start("--roles=nc", "--driver", "sim", "--join", tok, "--server", server)
	if strings.Contains(n1.Log(), tok[len(tok)-64:]) || strings.Contains(fe.Log(), tok[len(tok)-64:]) {
		t.Error("the token's secret is in a log")
	}
	identity := filepath.Join(filepath.Dir(n1.conf), "euca/var/lib/eucalyptus/identity/nc")
	if fi, err := os.Stat(filepath.Join(identity, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the node's key: %v %v", fi, err)
	}

	if out, err := fe.run("node", "register", "127.0.0.1:"+strconv.Itoa(ncPort)); err != nil {
		t.Fatalf("euca node register: %v\n%s", err, out)
	}
	nodeUp := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, err := fe.run("node", "list")
			if err == nil && regexp.MustCompile(`localhost:`+strconv.Itoa(ncPort)+` +up `).MatchString(out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the node is not up over mutual TLS:\n%s\n--- front-end:\n%s\n--- node:\n%s", what, out, tail(fe.Log(), 20), tail(n1.Log(), 20))
			}
			time.Sleep(time.Second)
		}
	}
	nodeUp("joined")
	launchOnNode(t, fe, n1)

	// The node's certificate and key, presented from another address (on
	// one machine, 127.0.0.2 stands for another host), are refused at the
	// front-end as another host's; from the node's own address they reach
	// Walrus's images (which have no such image), and without them nothing
	// internal answers.
	Need(t, "curl")
	images := "https://127.0.0.1:" + strconv.Itoa(cloudPort) + "/internal/v1/walrus/images/emi-00000000000000000?sha256=" + strings.Repeat("0", 64)
	curl := func(args ...string) string {
		t.Helper()
		out, err := fe.client(nil, "curl", append([]string{"-sS", "-o", "-", "-w", " %{http_code}", "--cacert", filepath.Join(identity, "ca.pem")}, args...)...)
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		return out
	}
	withCert := []string{"--cert", filepath.Join(identity, "cert.pem"), "--key", filepath.Join(identity, "key.pem")}
	if out := curl(append(withCert, "--interface", "127.0.0.2", images)...); !strings.HasSuffix(out, " 403") || !strings.Contains(out, "presented by another host") {
		t.Errorf("the node's certificate from another address: %s", out)
	}
	if out := curl(append(withCert, "--interface", "127.0.0.1", images)...); !strings.HasSuffix(out, " 404") || !strings.Contains(out, "NoSuchImage") {
		t.Errorf("the node's certificate from its own address: %s", out)
	}
	if out := curl(images); !strings.HasSuffix(out, " 403") {
		t.Errorf("no certificate: %s", out)
	}

	// Refusals, each with its reason, from a host that has not joined.
	refused := func(token, want string) {
		t.Helper()
		h := newHost(t, ns, "n-refused", "NC_PORT=\""+strconv.Itoa(freePort(t))+"\"")
		out, err := h.run("--roles=nc", "--driver", "sim", "--join", token, "--server", server)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("join with %s: %v, want %q in:\n%s", token[:16], err, want, out)
		}
	}
	refused(tok, "already used")
	pin := regexp.MustCompile(`^EUCA10([0-9a-f]{64})::`).FindStringSubmatch(tok)[1]
	refused("EUCA10"+pin+"::"+strings.Repeat("f", 64), "unknown to this cloud")
	refused("EUCA10"+strings.Repeat("0", 64)+"::"+strings.Repeat("f", 64), "the server's CA does not match the token's pin")

	// A later start needs no token, nor the server's address.
	n1.stop()
	n1.start("--roles=nc", "--driver", "sim")
	if !strings.Contains(n1.Log(), "identity loaded") {
		t.Errorf("restarted node:\n%s", n1.Log())
	}
	nodeUp("restarted without a token")
}

// TestNodeWithoutWSSecurity: with ENABLE_WS_SECURITY="N" a compute host
// needs no token; it and the front-end speak plain HTTP and say so at
// every start, and a token given is ignored with a warning; the node
// fetches its images from the front-end in plain HTTP.
func TestNodeWithoutWSSecurity(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	ns := joinNetns(t)
	cloudPort, ncPort := freePort(t), freePort(t)
	fe := newHost(t, ns, "fe", "ENABLE_WS_SECURITY=\"N\"", "CLOUD_PORT=\""+strconv.Itoa(cloudPort)+"\"", "METADATA_PORT=\""+strconv.Itoa(freePort(t))+"\"")
	fe.start("--roles=clc,walrus,cc")
	if !strings.Contains(fe.Log(), "ENABLE_WS_SECURITY=N") {
		t.Errorf("the front-end does not warn:\n%s", fe.Log())
	}
	n1 := newHost(t, ns, "n1", "ENABLE_WS_SECURITY=\"N\"", "NC_PORT=\""+strconv.Itoa(ncPort)+"\"")
	n1.start("--roles=nc", "--driver", "sim", "--join", "EUCA10"+strings.Repeat("0", 64)+"::"+strings.Repeat("f", 64), "--server", "127.0.0.1:"+strconv.Itoa(cloudPort))
	if !strings.Contains(n1.Log(), "PLAIN HTTP") || !strings.Contains(n1.Log(), "join token is ignored") {
		t.Errorf("the node does not warn:\n%s", n1.Log())
	}
	if out, err := fe.run("node", "register", "127.0.0.1:"+strconv.Itoa(ncPort)); err != nil {
		t.Fatalf("euca node register: %v\n%s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := fe.run("node", "list")
		if err == nil && regexp.MustCompile(`localhost:`+strconv.Itoa(ncPort)+` +up `).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node is not up over plain HTTP:\n%s\n--- front-end:\n%s", out, tail(fe.Log(), 20))
		}
		time.Sleep(time.Second)
	}
	launchOnNode(t, fe, n1)
}
