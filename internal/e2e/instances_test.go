package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/netmode"
)

// guestDir is where make guest-image leaves the test guest.
func guestDir(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "build", "guest")
}

// needInstances skips (or fails under CI) where real guests cannot run:
// they need root (bridge, nftables), libvirtd and the test guest.
func needInstances(t *testing.T) {
	t.Helper()
	Need(t, "aws")
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "instances need root (bridge, nftables, libvirt)"
	case !exists("/var/run/libvirt/libvirt-sock"):
		why = "libvirtd is not running (make libvirt)"
	case !exists(filepath.Join(guestDir(t), "root.img")):
		why = "no test guest (make guest-image)"
	}
	Missing(t, why)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// registerGuest bundles, uploads and registers the test guest's kernel,
// ramdisk and root disk the way a Eucalyptus user would, returning the
// machine image's id.
func registerGuest(t *testing.T, c *Cloud) string {
	t.Helper()
	g := guestDir(t)
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := Run(t, c.Env, name, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, tail(c.Log(), 20))
		}
		return strings.TrimSpace(out)
	}
	register := func(prefix string, bundleArgs ...string) string {
		t.Helper()
		run(c.Bin, append([]string{"bundle-image", "-i", filepath.Join(g, bundleArgs[0]), "-d", dir, "-p", prefix}, bundleArgs[1:]...)...)
		run(c.Bin, "upload-bundle", "-b", "guest", "-m", filepath.Join(dir, prefix+".manifest.xml"))
		return run("aws", "--endpoint-url", Getenv(c.Env, "EC2_URL"), "ec2", "register-image",
			"--image-location", "guest/"+prefix+".manifest.xml", "--name", prefix, "--query", "ImageId", "--output", "text")
	}
	eki := register("kernel", "vmlinuz", "--kernel", "true")
	eri := register("ramdisk", "initrd.img", "--ramdisk", "true")
	return register("root", "root.img", "--kernel", eki, "--ramdisk", eri)
}

// TestInstances launches the test guest with the AWS CLI on a cloud of
// every role: libvirt under QEMU, the cluster's bridge, DHCP and NAT, the
// metadata service. The guest prints what it read from 169.254.169.254 on
// its console, which GetConsoleOutput returns.
func TestInstances(t *testing.T) {
	needInstances(t)
	c := Start(t, "all", `HYPERVISOR="qemu"`)
	// A stop leaves the cluster's bridge and nftables table on the host
	// for the guests that outlive it; once the guest is gone the test
	// removes them as an operator would, so it leaves nothing behind.
	t.Cleanup(func() {
		c.Stop(t)
		if out, err := c.Euca(t, "network", "flush"); err != nil {
			t.Errorf("euca network flush: %v\n%s", err, out)
		}
		if _, err := net.InterfaceByName(netmode.DefaultBridge); err == nil {
			t.Errorf("%s is still on the host after euca network flush", netmode.DefaultBridge)
		}
	})
	env := c.Env
	text := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := c.AWS(t, env, append(args, "--output", "text")...)
		if err != nil {
			t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 30))
		}
		return strings.TrimSpace(out)
	}
	emi := registerGuest(t, c)
	text(t, "ec2", "create-key-pair", "--key-name", "guest-key", "--query", "KeyPairId")
	text(t, "ec2", "create-security-group", "--group-name", "web", "--description", "web")
	text(t, "ec2", "authorize-security-group-ingress", "--group-name", "web", "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")

	if got := text(t, "ec2", "describe-availability-zones", "--zone-names", "verbose", "--query", "AvailabilityZones[?ZoneName=='|- m1.small'].State"); !regexp.MustCompile(`^0*[1-9]\d* / \d+`).MatchString(got) {
		t.Fatalf("no room for m1.small before the launch: %q", got)
	}

	id := text(t, "ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small", "--key-name", "guest-key",
		"--security-groups", "web", "--user-data", "hello from the test", "--client-token", "launch-1",
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=guest}]", "--query", "Instances[0].InstanceId")
	if !strings.HasPrefix(id, "i-") {
		t.Fatalf("run-instances said %q", id)
	}
	// The same client token gives back the same instance, not a second one.
	if again := text(t, "ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small", "--key-name", "guest-key",
		"--security-groups", "web", "--user-data", "hello from the test", "--client-token", "launch-1",
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=guest}]", "--query", "Instances[0].InstanceId"); again != id {
		t.Errorf("client token retry gave %q, want %q", again, id)
	}
	text(t, "ec2", "wait", "instance-running", "--instance-ids", id)
	ip := text(t, "ec2", "describe-instances", "--instance-ids", id, "--query", "Reservations[0].Instances[0].PrivateIpAddress")

	console := waitConsole(t, c, id, "EUCA-READY", 3*time.Minute)
	for _, want := range []string{
		"EUCA-LEASE ip=" + ip,
		"EUCA-META instance-id=" + id,
		"EUCA-META public-key=ssh-rsa ",
		"hello from the test",
		// The block-device-mapping names the disks the guest has, as
		// cloud-init maps them (sdb is vdb): m1.small's 2 GiB ephemeral
		// disk and SWAP_SIZE's 512 MiB, each the disk made for that use.
		"EUCA-BDM ephemeral0=sdb dev=/dev/vdb bytes=2147483648 ok",
		"EUCA-BDM swap=sdc dev=/dev/vdc bytes=536870912 ok",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, console)
		}
	}

	// The guest serves HTTP; its group admits port 80.
	body := httpGet(t, "http://"+ip+"/")
	if !strings.Contains(body, id) {
		t.Errorf("guest's web page %q does not name %s", body, id)
	}

	if got := text(t, "ec2", "describe-instance-status", "--instance-ids", id, "--query", "InstanceStatuses[0].InstanceState.Name"); got != "running" {
		t.Errorf("instance status %q", got)
	}
	if got := text(t, "ec2", "describe-instances", "--filters", "Name=tag:Name,Values=guest", "--query", "Reservations[].Instances[].InstanceId"); got != id {
		t.Errorf("tag filter found %q", got)
	}

	// Termination protection holds until lifted.
	text(t, "ec2", "modify-instance-attribute", "--instance-id", id, "--disable-api-termination")
	if _, err := c.AWS(t, env, "ec2", "terminate-instances", "--instance-ids", id); err == nil || !strings.Contains(err.Error(), "OperationNotPermitted") {
		t.Errorf("terminate of a protected instance: %v", err)
	}
	text(t, "ec2", "modify-instance-attribute", "--instance-id", id, "--no-disable-api-termination")

	// A reboot boots the guest again on the same console.
	text(t, "ec2", "reboot-instances", "--instance-ids", id)
	deadline := time.Now().Add(3 * time.Minute)
	for strings.Count(consoleOf(t, c, id), "EUCA-READY") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second boot after reboot:\n%s", consoleOf(t, c, id))
		}
		time.Sleep(2 * time.Second)
	}

	// What does not fit is refused, and nothing is left behind.
	if _, err := c.AWS(t, env, "ec2", "run-instances", "--image-id", emi, "--instance-type", "c1.xlarge", "--count", "50"); err == nil ||
		!strings.Contains(err.Error(), "InsufficientInstanceCapacity") {
		t.Errorf("50 c1.xlarge: %v", err)
	}
	if got := text(t, "ec2", "describe-instances", "--query", "length(Reservations[].Instances[])"); got != "1" {
		t.Errorf("instances after a refused launch: %s", got)
	}

	text(t, "ec2", "terminate-instances", "--instance-ids", id)
	text(t, "ec2", "wait", "instance-terminated", "--instance-ids", id)
}

func consoleOf(t *testing.T, c *Cloud, id string) string {
	t.Helper()
	out, err := c.AWS(t, c.Env, "ec2", "get-console-output", "--instance-id", id, "--query", "Output", "--output", "text")
	if err != nil {
		t.Fatalf("get-console-output: %v", err)
	}
	return out
}

func waitConsole(t *testing.T, c *Cloud, id, marker string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out := consoleOf(t, c, id)
		if strings.Contains(out, marker) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("console of %s never showed %s:\n%s\n--- euca log:\n%s", id, marker, out, tail(c.Log(), 30))
		}
		time.Sleep(2 * time.Second)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if ctx.Err() != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(time.Second)
	}
}
