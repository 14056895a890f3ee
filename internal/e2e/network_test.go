package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/sim"
)

// TestNetworkFlush: a stopped cloud leaves its bridge and nftables table
// (guests outlive a stop), and `euca network flush` removes them, refusing
// while an instance of this host runs. The cloud runs in a network
// namespace of its own, so its euca-br0 and table inet euca are the test's.
func TestNetworkFlush(t *testing.T) {
	Need(t, "ip", "nft")
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "the cluster network needs root"
	case !exists("/var/run/libvirt/libvirt-sock"):
		why = "libvirtd is not running (make libvirt)"
	}
	Missing(t, why)
	bin := Binary(t)
	ns := fmt.Sprintf("netflush-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	in := func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	present := func() (bridge, table bool) {
		return in("ip", "link", "show", "euca-br0").Run() == nil, in("nft", "list", "table", "inet", "euca").Run() == nil
	}
	in("ip", "link", "set", "lo", "up").Run()

	dir := t.TempDir()
	instances := filepath.Join(dir, "instances")
	conf := filepath.Join(dir, "eucalyptus.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("EUCALYPTUS=%q\nINSTANCE_PATH=%q\nCLOUD_PORT=\"%d\"\nMETADATA_PORT=\"%d\"\nLOGLEVEL=\"DEBUG\"\n",
		filepath.Join(dir, "euca"), instances, freePort(t), freePort(t))), 0o644)

	// The cloud's cluster controller makes the network at start.
	var log strings.Builder
	cloud := in(bin, "--roles=clc,cc", "--conf", conf)
	cloud.Stdout, cloud.Stderr = &log, &log
	if err := cloud.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cloud.Wait() }()
	t.Cleanup(func() { cloud.Process.Kill() })
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if b, tb := present(); b && tb {
			break
		}
		if time.Now().After(deadline) {
			cloud.Process.Kill()
			<-done
			t.Fatalf("no euca-br0 and table inet euca in the cloud's namespace:\n%s", log.String())
		}
	}
	// A stop (SIGINT, as Ctrl-C) exits 0 and leaves them.
	cloud.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("euca after SIGINT: %v\n%s", err, log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("euca did not stop on SIGINT:\n%s", log.String())
	}
	if b, tb := present(); !b || !tb {
		t.Fatalf("after a stop: bridge %v, table %v; both should stay for the guests", b, tb)
	}

	// An instance of this host runs (a simulated host's guest, kept under
	// INSTANCE_PATH as the NC with --driver sim keeps it): refused.
	ctx := context.Background()
	host, err := sim.New(ctx, sim.Options{Dir: filepath.Join(instances, ".sim-host")})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(instances, "i-0123abcd", "root.img")
	os.MkdirAll(filepath.Dir(root), 0o755)
	os.WriteFile(root, nil, 0o644)
	if _, err := host.Start(ctx, hypervisor.InstanceSpec{ID: "i-0123abcd", Cores: 1, MemoryMiB: 128,
		RootDisk: hypervisor.Disk{Path: root}, ConsoleLog: filepath.Join(filepath.Dir(root), "console.log")}); err != nil {
		t.Fatal(err)
	}
	out, err := in(bin, "--driver", "sim", "--conf", conf, "network", "flush").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") || !strings.Contains(string(out), "i-0123abcd") {
		t.Fatalf("flush with a running instance: %v\n%s", err, out)
	}
	if b, tb := present(); !b || !tb {
		t.Fatalf("a refused flush removed something: bridge %v, table %v", b, tb)
	}
	if err := host.Destroy(ctx, "i-0123abcd"); err != nil {
		t.Fatal(err)
	}
	host.Close()

	// No instance runs (libvirtd has none under this INSTANCE_PATH): both go.
	if out, err := in(bin, "--conf", conf, "network", "flush").CombinedOutput(); err != nil {
		t.Fatalf("network flush: %v\n%s", err, out)
	}
	if b, tb := present(); b || tb {
		t.Fatalf("after network flush: bridge %v, table %v", b, tb)
	}
	// Again: nothing left to remove is not an error.
	if out, err := in(bin, "--conf", conf, "network", "flush").CombinedOutput(); err != nil {
		t.Fatalf("second network flush: %v\n%s", err, out)
	}
}
