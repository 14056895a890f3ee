package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWalrusOnItsOwnHost: Walrus runs on a host of its own (a network
// namespace joined to the front-end's by a veth link), joined with a token
// made for Walrus; it checks the AWS CLI's signatures against the cloud
// controller's accounts over the internal API, names the owner in an ACL,
// refuses a wrong secret and an unknown key as S3 does, and no secret key
// reaches either host's log.
func TestWalrusOnItsOwnHost(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	Need(t, "ip", "aws", "unzip")
	if os.Geteuid() != 0 {
		Missing(t, "two hosts (network namespaces joined by a veth link) need root")
	}
	nsA, nsB := twoHosts(t)
	cloudPort, walrusPort := freePort(t), freePort(t)
	fe := newHost(t, nsA, "fe", "CLOUD_PORT=\""+strconv.Itoa(cloudPort)+"\"", "METADATA_PORT=\""+strconv.Itoa(freePort(t))+"\"")
	fe.start("--roles=clc")
	out, err := fe.run("token", "create", "--role", "walrus")
	tok := tokenLine.FindString(out)
	if err != nil || tok == "" {
		t.Fatalf("euca token create --role walrus: %v\n%s", err, out)
	}
	w := newHost(t, nsB, "walrus", "CLOUD_PORT=\""+strconv.Itoa(walrusPort)+"\"")
	w.start("--roles=walrus", "--join", tok, "--server", "10.252.0.1:"+strconv.Itoa(cloudPort))

	env := append(cleanEnv(), fe.credentials(t, "10.252.0.2")...)
	secret := Getenv(env, "AWS_SECRET_ACCESS_KEY")
	if secret == "" {
		t.Fatal("no secret key in the eucarc")
	}
	endpoint := "http://10.252.0.2:" + strconv.Itoa(walrusPort)
	s3 := func(extraEnv []string, args ...string) (string, error) {
		cmd := exec.Command("ip", append([]string{"netns", "exec", nsA, "aws", "--endpoint-url", endpoint, "s3api"}, append(args, "--output", "text")...)...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := s3(nil, args...)
		if err != nil {
			t.Fatalf("aws s3api %v: %v\n%s\n--- walrus:\n%s\n--- front-end:\n%s", args, err, out, tail(w.Log(), 30), tail(fe.Log(), 30))
		}
		return out
	}
	must("create-bucket", "--bucket", "far")
	body := filepath.Join(t.TempDir(), "body")
	os.WriteFile(body, []byte("stored on another host"), 0o644)
	must("put-object", "--bucket", "far", "--key", "k", "--body", body)
	got := filepath.Join(t.TempDir(), "got")
	must("get-object", "--bucket", "far", "--key", "k", got)
	if b, _ := os.ReadFile(got); string(b) != "stored on another host" {
		t.Errorf("object %q", b)
	}
	if owner := must("get-bucket-acl", "--bucket", "far", "--query", "Owner.DisplayName"); owner != "admin" {
		t.Errorf("owner %q, want the account's name", owner)
	}
	if out, err := s3([]string{"AWS_SECRET_ACCESS_KEY=" + strings.Repeat("x", 40)}, "list-objects-v2", "--bucket", "far"); err == nil || !strings.Contains(out, "SignatureDoesNotMatch") {
		t.Errorf("a wrong secret: %v\n%s", err, out)
	}
	if out, err := s3([]string{"AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000"}, "list-objects-v2", "--bucket", "far"); err == nil || !strings.Contains(out, "InvalidAccessKeyId") {
		t.Errorf("an unknown key: %v\n%s", err, out)
	}
	if strings.Contains(w.Log(), secret) || strings.Contains(fe.Log(), secret) {
		t.Error("a secret key is in a log")
	}
}
