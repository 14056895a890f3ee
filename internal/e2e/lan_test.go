package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/logbuf"
)

// A lan is hosts on one LAN, made of network namespaces: a namespace that
// plays the switch (a bridge) and one namespace per host, each joined to
// the switch by a veth pair with its own address on subnet/24. Traffic
// stays inside them; Cleanup removes every namespace, which removes its
// links, bridges and nftables tables with it.
type lan struct {
	t      *testing.T
	prefix string // namespace names: prefix-switch, prefix-NAME
	subnet string // "10.251.7": hosts get subnet.1, subnet.2, ...
	hosts  []*lanHost
}

// lanHost is one machine of a lan.
type lanHost struct {
	lan  *lan
	Name string
	NS   string // its network namespace
	IP   string // its address on the LAN (eth0)
	Dir  string // its disk: EUCALYPTUS and the conf live here
	Conf string // its eucalyptus.conf
}

// needLAN skips (or fails under CI) when namespaces cannot be made.
func needLAN(t *testing.T) {
	t.Helper()
	Need(t, "ip")
	why := ""
	if os.Geteuid() != 0 {
		why = "hosts in network namespaces need root"
	}
	Missing(t, why)
}

// newLAN makes the switch; subnet is the first three octets of the LAN's
// /24, distinct per test so tests may run side by side.
func newLAN(t *testing.T, subnet string) *lan {
	t.Helper()
	return newLANNamed(t, "eu", subnet)
}

// newLANNamed is newLAN whose namespaces and links begin with prefix (at
// most 4 characters: a link's name is at most 15).
func newLANNamed(t *testing.T, prefix, subnet string) *lan {
	t.Helper()
	l := &lan{t: t, prefix: fmt.Sprintf("%s%d%s", prefix, os.Getpid()%100000, strings.ReplaceAll(subnet, ".", "")[3:]), subnet: subnet}
	sw := l.prefix + "-sw"
	l.ip("netns", "add", sw)
	t.Cleanup(func() {
		for _, h := range l.hosts {
			// What a host started that outlives its euca process (its
			// libvirtd, virtlogd and guests) goes with the host.
			if out, err := exec.Command("ip", "netns", "pids", h.NS).Output(); err == nil {
				for _, pid := range strings.Fields(string(out)) {
					if n, err := strconv.Atoi(pid); err == nil {
						_ = syscall.Kill(n, syscall.SIGKILL)
					}
				}
			}
			exec.Command("ip", "netns", "del", h.NS).Run()
		}
		exec.Command("ip", "netns", "del", sw).Run()
	})
	l.ip("-n", sw, "link", "add", "br0", "type", "bridge")
	l.ip("-n", sw, "link", "set", "br0", "up")
	l.ip("-n", sw, "link", "set", "lo", "up")
	return l
}

func (l *lan) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// host adds a machine to the LAN with the next address and a conf file
// holding EUCALYPTUS, LOGLEVEL, VNET_PRIVINTERFACE and lines.
func (l *lan) host(name string, lines ...string) *lanHost {
	l.t.Helper()
	n := len(l.hosts) + 1
	h := &lanHost{lan: l, Name: name, NS: l.prefix + "-" + name, IP: fmt.Sprintf("%s.%d", l.subnet, n), Dir: l.t.TempDir()}
	l.hosts = append(l.hosts, h)
	a, b := fmt.Sprintf("%s-%da", l.prefix, n), fmt.Sprintf("%s-%db", l.prefix, n)
	l.ip("netns", "add", h.NS)
	l.ip("-n", h.NS, "link", "set", "lo", "up")
	l.ip("link", "add", a, "type", "veth", "peer", "name", b)
	l.ip("link", "set", a, "netns", h.NS)
	l.ip("link", "set", b, "netns", l.prefix+"-sw")
	l.ip("-n", h.NS, "link", "set", a, "name", "eth0")
	l.ip("-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
	l.ip("-n", h.NS, "link", "set", "eth0", "up")
	l.ip("-n", l.prefix+"-sw", "link", "set", b, "master", "br0")
	l.ip("-n", l.prefix+"-sw", "link", "set", b, "up")
	h.Conf = filepath.Join(h.Dir, "eucalyptus.conf")
	conf := fmt.Sprintf("EUCALYPTUS=%q\nLOGLEVEL=\"DEBUG\"\nVNET_PRIVINTERFACE=\"eth0\"\n%s\n", filepath.Join(h.Dir, "euca"), strings.Join(lines, "\n"))
	if err := os.WriteFile(h.Conf, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return h
}

// setConf replaces (or adds) one key of the host's conf.
func (h *lanHost) setConf(key, value string) {
	h.lan.t.Helper()
	raw, err := os.ReadFile(h.Conf)
	if err != nil {
		h.lan.t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		if !strings.HasPrefix(line, key+"=") {
			out = append(out, line)
		}
	}
	out = append(out, fmt.Sprintf("%s=%q", key, value))
	if err := os.WriteFile(h.Conf, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		h.lan.t.Fatal(err)
	}
}

// cmd is a command run on the host (in its namespace).
func (h *lanHost) cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// run runs a command on the host with env added to a clean environment,
// returning stdout and stderr together.
func (h *lanHost) run(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s on %s: %w: %s", name, strings.Join(args, " "), h.Name, err, out)
	}
	return string(out), nil
}

// euca runs an admin command of the binary on the host against its conf.
func (h *lanHost) euca(args ...string) (string, error) {
	return h.run(nil, Binary(h.lan.t), append([]string{"--conf", h.Conf}, args...)...)
}

// lanProc is a euca process on a host.
type lanProc struct {
	host *lanHost
	cmd  *exec.Cmd
	log  *logbuf.Buffer
	done chan error
}

// start runs `euca args... --conf CONF` on the host; Cleanup stops it.
func (h *lanHost) start(args ...string) *lanProc {
	h.lan.t.Helper()
	return h.startCmd(h.cmd(Binary(h.lan.t), append(args, "--conf", h.Conf)...))
}

// startCmd starts cmd, a command on the host, as a lanProc.
func (h *lanHost) startCmd(cmd *exec.Cmd) *lanProc {
	h.lan.t.Helper()
	p := &lanProc{host: h, cmd: cmd, log: &logbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// Its own process group, so that a kill reaches euca and not only
	// `ip netns exec` (which execs it anyway).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		h.lan.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	h.lan.t.Cleanup(func() { p.stop() })
	return p
}

// hypervisorScript gives a host a libvirtd of its own, as a real compute
// host has: in a mount namespace of its own (fresh /run, /var/lib/libvirt
// and /var/cache/libvirt), so its socket, pid files and domain state are
// not the machine's libvirtd's, and in the host's network namespace, so
// the taps it makes join the host's bridges. Then it runs the command.
const hypervisorScript = `set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/libvirt /run/lock
mount -t tmpfs tmpfs /var/lib/libvirt
mkdir -p /var/lib/libvirt/qemu
mount -t tmpfs tmpfs /var/cache/libvirt
virtlogd -d </dev/null
libvirtd -d </dev/null
i=0
while [ ! -S /run/libvirt/libvirt-sock ]; do
  i=$((i + 1)); [ $i -lt 300 ] || { echo "libvirtd did not start" >&2; exit 1; }
  sleep 0.1
done
exec "$@"`

// startWithHypervisor is start with the host's own libvirtd (see
// hypervisorScript); the lan's cleanup ends it and its guests.
func (h *lanHost) startWithHypervisor(args ...string) *lanProc {
	h.lan.t.Helper()
	Need(h.lan.t, "unshare", "libvirtd", "virtlogd")
	full := append([]string{"-m", "--propagation", "private", "bash", "-c", hypervisorScript, "bash", Binary(h.lan.t)}, args...)
	return h.startCmd(h.cmd("unshare", append(full, "--conf", h.Conf)...))
}

// stop interrupts the process and waits (a kill after 20 s).
func (p *lanProc) stop() error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		err := <-p.done
		p.done <- err
		return fmt.Errorf("%s did not stop within 20 s of SIGINT", p.host.Name)
	}
}

// kill ends the process with SIGKILL, as a host losing power would.
func (p *lanProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// exited reports whether the process has ended, and how.
func (p *lanProc) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// waitListening waits until the host accepts TCP on port, or fails with the
// process's log.
func (p *lanProc) waitListening(port int) {
	t := p.host.lan.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		probe := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", p.host.IP, port)
		if p.host.cmd("bash", "-c", probe).Run() == nil {
			return
		}
		if done, err := p.exited(); done {
			t.Fatalf("%s exited (%v) before listening on %d:\n%s", p.host.Name, err, port, tail(p.log.String(), 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %d after 60 s:\n%s", p.host.Name, port, tail(p.log.String(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// eventually retries f every interval until it returns nil, failing with
// its last error after limit.
func eventually(t *testing.T, what string, limit time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(time.Second)
	}
}
