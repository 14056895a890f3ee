package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFoundation drives the EC2 core of a clc with the AWS CLI and boto3:
// identity, credentials, signatures, errors and account isolation.
func TestFoundation(t *testing.T) {
	Need(t, "aws", "python3")
	c := Start(t, "clc")
	env := c.Env

	mustAWS := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := c.AWS(t, env, args...)
		if err != nil {
			t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 30))
		}
		return out
	}

	t.Run("eucarc", func(t *testing.T) {
		for _, k := range []string{"EC2_URL", "S3_URL", "EC2_ACCESS_KEY", "EC2_SECRET_KEY", "EC2_PRIVATE_KEY", "EC2_CERT", "EUCALYPTUS_CERT", "EC2_USER_ID", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"} {
			if Getenv(env, k) == "" {
				t.Errorf("eucarc does not set %s", k)
			}
		}
		for _, k := range []string{"EC2_PRIVATE_KEY", "EC2_CERT", "EUCALYPTUS_CERT"} {
			if _, err := os.Stat(Getenv(env, k)); err != nil {
				t.Errorf("%s: %v", k, err)
			}
		}
	})

	// The metadata service trusts the caller's address, so nothing but the
	// network's redirect may reach it: it listens on loopback only, and
	// answers nobody that is not a running instance.
	t.Run("metadata listener on loopback only", func(t *testing.T) {
		want := fmt.Sprintf("listener=METADATA_PORT addr=127.0.0.1:%d", c.MetadataPort)
		if !strings.Contains(c.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, tail(c.Log(), 30))
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/latest/meta-data/instance-id", c.MetadataPort))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("a caller that is no instance: %s", resp.Status)
		}
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			ip, ok := a.(*net.IPNet)
			if !ok || ip.IP.IsLoopback() || ip.IP.To4() == nil {
				continue
			}
			hp := net.JoinHostPort(ip.IP.String(), strconv.Itoa(c.MetadataPort))
			if conn, err := net.DialTimeout("tcp", hp, 2*time.Second); err == nil {
				conn.Close()
				t.Errorf("metadata port reached at %s", hp)
			}
		}
	})

	t.Run("sts and iam identity", func(t *testing.T) {
		root := strings.TrimSuffix(Getenv(env, "EC2_URL"), "/services/Eucalyptus")
		out, err := Run(t, env, "aws", "--endpoint-url", root, "sts", "get-caller-identity", "--query", "Account", "--output", "text")
		if err != nil {
			t.Fatal(err)
		}
		if acct := strings.TrimSpace(out); !regexp.MustCompile(`^[0-9]{12}$`).MatchString(acct) || acct != Getenv(env, "EC2_USER_ID") {
			t.Errorf("caller account %q, want EC2_USER_ID %q", acct, Getenv(env, "EC2_USER_ID"))
		}
		out, err = Run(t, env, "aws", "--endpoint-url", root, "iam", "get-user", "--query", "User.Arn", "--output", "text")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, Getenv(env, "EC2_USER_ID")) {
			t.Errorf("iam get-user arn %q lacks the account id", out)
		}
	})

	t.Run("bad secret refused", func(t *testing.T) {
		bad := append(append([]string{}, env...), "AWS_SECRET_ACCESS_KEY=wrong"+Getenv(env, "AWS_SECRET_ACCESS_KEY"))
		_, err := c.AWS(t, bad, "ec2", "describe-regions")
		if err == nil || !strings.Contains(err.Error(), "AuthFailure") {
			t.Errorf("wrong secret: %v, want AuthFailure", err)
		}
		bad = append(append([]string{}, env...), "AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000")
		_, err = c.AWS(t, bad, "ec2", "describe-regions")
		if err == nil || !strings.Contains(err.Error(), "AuthFailure") {
			t.Errorf("unknown key: %v, want AuthFailure", err)
		}
	})

	t.Run("sigv2", func(t *testing.T) {
		out, err := c.Python(t, env, `
import boto3, os
from botocore.config import Config
c = boto3.client('ec2', endpoint_url=os.environ['EC2_URL'], config=Config(signature_version='v2'))
print(c.describe_regions()['Regions'][0]['RegionName'])
`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != Getenv(env, "AWS_DEFAULT_REGION") {
			t.Errorf("sigv2 describe-regions said %q", out)
		}
	})

	t.Run("unknown action", func(t *testing.T) {
		resp, err := http.Get(Getenv(env, "EC2_URL") + "?Action=NoSuchAction&Version=2016-11-15")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Errors []struct{ Code string } `xml:"Errors>Error"`
		}
		if err := decodeXML(resp, &doc); err != nil || len(doc.Errors) == 0 || doc.Errors[0].Code != "InvalidAction" {
			t.Errorf("unknown action: status %d, %+v, %v", resp.StatusCode, doc, err)
		}
	})

	t.Run("unsigned request", func(t *testing.T) {
		resp, err := http.Get(Getenv(env, "EC2_URL") + "?Action=DescribeRegions&Version=2016-11-15")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("unsigned DescribeRegions answered %d", resp.StatusCode)
		}
	})

	t.Run("garbage survives", func(t *testing.T) {
		junk := make([]byte, 200000)
		for i := range junk {
			junk[i] = byte(i*7 + i/3)
		}
		resp, err := http.Post(Getenv(env, "EC2_URL"), "application/x-www-form-urlencoded", strings.NewReader(string(junk)))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("garbage answered %d", resp.StatusCode)
			}
		}
		mustAWS(t, "ec2", "describe-regions")
	})

	t.Run("accounts are isolated", func(t *testing.T) {
		if out, err := c.Euca(t, "account", "create", "bob"); err != nil {
			t.Fatalf("account create: %v %s", err, out)
		}
		if out, err := c.Euca(t, "account", "create", "bob"); err == nil {
			t.Errorf("second account create bob succeeded: %s", out)
		}
		bob := c.Credentials(t, "bob")
		if Getenv(bob, "EC2_USER_ID") == Getenv(env, "EC2_USER_ID") {
			t.Fatal("bob has admin's account id")
		}
		mustAWS(t, "ec2", "create-key-pair", "--key-name", "admins-key")
		out, err := c.AWS(t, bob, "ec2", "describe-key-pairs")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "admins-key") {
			t.Errorf("bob sees admin's key pair: %s", out)
		}
		mustAWS(t, "ec2", "create-security-group", "--group-name", "admins-group", "--description", "x")
		if _, err := c.AWS(t, bob, "ec2", "delete-security-group", "--group-name", "admins-group"); err == nil || !strings.Contains(err.Error(), "InvalidGroup.NotFound") {
			t.Errorf("bob deleting admin's group: %v", err)
		}
	})
}

// TestConfCheck runs `euca conf check` on configurations as an operator
// would: the Eucalyptus documentation's blocks pass with warnings, an
// impossible value fails naming the key, the value and the line.
func TestConfCheck(t *testing.T) {
	bin := Binary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("VNET_MODE=\u201dSYSTEM\u201d\nVNET_BRIDGE=\u201dvirbr0\u201d\n"), 0o644)
	out, err := exec.Command(bin, "conf", "check", good).CombinedOutput()
	if err != nil {
		t.Fatalf("conf check of typographic quotes failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "VNET_MODE") || !strings.Contains(string(out), "SYSTEM") {
		t.Errorf("report lacks VNET_MODE=SYSTEM:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("# a comment\nVNET_MODE=\"BOGUS\"\n"), 0o644)
	out, err = exec.Command(bin, "conf", "check", bad).CombinedOutput()
	if err == nil {
		t.Fatalf("conf check accepted VNET_MODE=BOGUS:\n%s", out)
	}
	for _, want := range []string{"VNET_MODE", "BOGUS", "2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error report lacks %q:\n%s", want, out)
		}
	}
	// The same refusal stops start-up.
	out, err = exec.Command(bin, "--roles=clc", "--conf", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "BOGUS") {
		t.Errorf("start with a bad conf: %v\n%s", err, out)
	}
}

// TestUnbuiltRoleRefused: a role that cannot run here says so instead of
// pretending to run.
func TestUnbuiltRoleRefused(t *testing.T) {
	bin := Binary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("EUCALYPTUS=%q\n", dir)), 0o644)
	// The storage controller runs beside the cloud controller only.
	out, err := exec.Command(bin, "--roles=sc", "--conf", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "role sc needs role clc") {
		t.Errorf("--roles=sc: %v\n%s", err, out)
	}
	// A node on its own must join first, and says how.
	out, err = exec.Command(bin, "--roles=nc", "--driver", "sim", "--conf", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "has not joined the cloud") || !strings.Contains(string(out), "--join TOKEN") {
		t.Errorf("--roles=nc alone, never joined: %v\n%s", err, out)
	}
	// So must a cluster host (a cluster controller, with a node beside it).
	out, err = exec.Command(bin, "--roles=nc,cc", "--driver", "sim", "--conf", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "has not joined the cloud") || !strings.Contains(string(out), "--role cc") {
		t.Errorf("--roles=nc,cc, never joined: %v\n%s", err, out)
	}
	// A node beside the cloud controller needs the cluster controller
	// that would place its instances.
	out, err = exec.Command(bin, "--roles=clc,nc", "--conf", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs role cc") {
		t.Errorf("--roles=clc,nc: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--roles=bogus", "--conf", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown role") {
		t.Errorf("--roles=bogus: %v\n%s", err, out)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// jsonField decodes the AWS CLI's JSON output.
func jsonField(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
}
