package e2e

import (
	"strings"
	"testing"
)

// Bucket policies, ownership controls and public access blocks, set with
// the AWS CLI and tested with anonymous reads over plain HTTP (Python's
// urllib), as a user would check them.

// anonStatus is the HTTP status of an anonymous request, by urllib.
func anonStatus(t *testing.T, c *Cloud, method, url string) string {
	t.Helper()
	out, err := Run(t, c.Env, "python3", "-c", `
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url, method=method, data=b"x" if method == "PUT" else None)
try:
    print(urllib.request.urlopen(req, timeout=30).status)
except urllib.error.HTTPError as e:
    print(e.code)
`, method, url)
	if err != nil {
		t.Fatalf("urllib %s %s: %v", method, url, err)
	}
	return strings.TrimSpace(out)
}

func TestWalrusBucketPolicyCLI(t *testing.T) {
	Need(t, "aws")
	c := walrusCloud(t)
	env := c.Env
	root := s3Root(env)
	s3, must, fails := awsS3(t, c, env, root)
	status := func(method, path string, want string) {
		t.Helper()
		if got := anonStatus(t, c, method, root+path); got != want {
			t.Errorf("anonymous %s %s: %s, want %s", method, path, got, want)
		}
	}
	body := randomFile(t, t.TempDir(), "body", 100)

	// A Deny refuses what a public-read ACL grants.
	must("s3api", "create-bucket", "--bucket", "pol-up")
	must("s3api", "put-object", "--bucket", "pol-up", "--key", "pub", "--body", body, "--acl", "public-read")
	status("GET", "/pol-up/pub", "200")
	must("s3api", "put-bucket-policy", "--bucket", "pol-up", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol-up/pub"}]}`)
	status("GET", "/pol-up/pub", "403")
	fails("AccessDenied", "s3api", "get-object", "--bucket", "pol-up", "--key", "pub", t.TempDir()+"/out")

	// An Allow grants what the ACL does not.
	must("s3api", "create-bucket", "--bucket", "pol-priv")
	must("s3api", "put-object", "--bucket", "pol-priv", "--key", "secret", "--body", body)
	status("GET", "/pol-priv/secret", "403")
	must("s3api", "put-bucket-policy", "--bucket", "pol-priv", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol-priv/*"}]}`)
	status("GET", "/pol-priv/secret", "200")
	status("PUT", "/pol-priv/new", "403")
	if out := must("s3api", "get-bucket-policy-status", "--bucket", "pol-priv"); !strings.Contains(out, `"IsPublic": true`) {
		t.Errorf("policy status: %s", out)
	}

	// A malformed policy is refused, naming the problem, and the stored
	// one stays.
	_, err := s3("s3api", "put-bucket-policy", "--bucket", "pol-priv", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}]}`)
	if err == nil || !strings.Contains(err.Error(), "MalformedPolicy") || !strings.Contains(err.Error(), "invalid resource") {
		t.Errorf("policy on another bucket: %v", err)
	}
	status("GET", "/pol-priv/secret", "200")

	// Ownership controls: BucketOwnerEnforced disables ACLs.
	must("s3api", "put-bucket-ownership-controls", "--bucket", "pol-up", "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerEnforced}]")
	if out := must("s3api", "get-bucket-ownership-controls", "--bucket", "pol-up"); !strings.Contains(out, "BucketOwnerEnforced") {
		t.Errorf("ownership controls: %s", out)
	}
	fails("AccessControlListNotSupported", "s3api", "put-object-acl", "--bucket", "pol-up", "--key", "pub", "--acl", "public-read")
	fails("AccessControlListNotSupported", "s3api", "put-object", "--bucket", "pol-up", "--key", "k", "--body", body, "--acl", "public-read")
	must("s3api", "put-object", "--bucket", "pol-up", "--key", "k", "--body", body, "--acl", "bucket-owner-full-control")
	must("s3api", "delete-bucket-ownership-controls", "--bucket", "pol-up")
	fails("OwnershipControlsNotFoundError", "s3api", "get-bucket-ownership-controls", "--bucket", "pol-up")

	// Public access block: a public-read PUT is refused.
	must("s3api", "put-public-access-block", "--bucket", "pol-priv", "--public-access-block-configuration",
		"BlockPublicAcls=true,IgnorePublicAcls=false,BlockPublicPolicy=true,RestrictPublicBuckets=false")
	if out := must("s3api", "get-public-access-block", "--bucket", "pol-priv"); !strings.Contains(out, `"BlockPublicAcls": true`) {
		t.Errorf("public access block: %s", out)
	}
	fails("AccessDenied", "s3api", "put-object", "--bucket", "pol-priv", "--key", "p", "--body", body, "--acl", "public-read")
	must("s3api", "put-object", "--bucket", "pol-priv", "--key", "p", "--body", body)
	fails("AccessDenied", "s3api", "put-bucket-policy", "--bucket", "pol-priv", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pol-priv/*"}]}`)
	must("s3api", "put-public-access-block", "--bucket", "pol-priv", "--public-access-block-configuration", "RestrictPublicBuckets=true")
	status("GET", "/pol-priv/secret", "403")
	must("s3api", "delete-public-access-block", "--bucket", "pol-priv")
	fails("NoSuchPublicAccessBlockConfiguration", "s3api", "get-public-access-block", "--bucket", "pol-priv")
	status("GET", "/pol-priv/secret", "200")

	must("s3api", "delete-bucket-policy", "--bucket", "pol-priv")
	status("GET", "/pol-priv/secret", "403")
}
