package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Walrus end to end: the S3 API of a clc,walrus cloud driven by the AWS
// CLI (aws s3 and aws s3api), boto3 and s3cmd, as a user would.

// s3Root is the S3 endpoint without Eucalyptus's legacy path.
func s3Root(env []string) string {
	return strings.TrimSuffix(Getenv(env, "S3_URL"), "/services/Walrus")
}

// walrusCloud starts clc and walrus with room for the tests' buckets.
func walrusCloud(t *testing.T) *Cloud {
	t.Helper()
	return Start(t, "clc,walrus", `WALRUS_MAX_BUCKETS="20"`)
}

func randomFile(t *testing.T, dir, name string, size int) string {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
		t.Errorf("%s and %s differ (%v %v)", a, b, err1, err2)
	}
}

// awsS3 is the AWS CLI (JSON output) as env against root: run answers its
// output or error; must fails the test on an error, with euca's log; fails
// checks that the call is refused with code.
func awsS3(t *testing.T, c *Cloud, env []string, root string) (run func(args ...string) (string, error), must func(args ...string) string, fails func(code string, args ...string)) {
	run = func(args ...string) (string, error) {
		return Run(t, env, "aws", append([]string{"--endpoint-url", root, "--output", "json"}, args...)...)
	}
	must = func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 20))
		}
		return out
	}
	fails = func(code string, args ...string) {
		t.Helper()
		_, err := run(args...)
		if err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("aws %s: %v, want %s", strings.Join(args, " "), err, code)
		}
	}
	return run, must, fails
}

func TestWalrusAWSCLI(t *testing.T) {
	Need(t, "aws")
	c := walrusCloud(t)
	env := c.Env
	root := s3Root(env)
	dir := t.TempDir()
	_, must, fails := awsS3(t, c, env, root)

	// aws s3: the high-level commands.
	small := randomFile(t, dir, "small", 5000)
	big := randomFile(t, dir, "big", 20<<20) // multipart at the CLI's 8 MiB threshold
	must("s3", "mb", "s3://cli-bucket")
	must("s3", "cp", small, "s3://cli-bucket/dir/small")
	must("s3", "cp", big, "s3://cli-bucket/big")
	if out := must("s3", "ls", "s3://cli-bucket/dir/"); !strings.Contains(out, "small") {
		t.Errorf("s3 ls: %s", out)
	}
	if out := must("s3", "ls", "s3://cli-bucket", "--recursive"); !strings.Contains(out, "dir/small") || !strings.Contains(out, "big") {
		t.Errorf("s3 ls --recursive: %s", out)
	}
	must("s3", "cp", "s3://cli-bucket/big", filepath.Join(dir, "big.back"))
	sameFile(t, big, filepath.Join(dir, "big.back"))
	must("s3", "cp", "s3://cli-bucket/dir/small", filepath.Join(dir, "small.back"))
	sameFile(t, small, filepath.Join(dir, "small.back"))
	var head struct {
		ETag          string
		ContentLength int64
		ContentType   string
	}
	jsonField(t, must("s3api", "head-object", "--bucket", "cli-bucket", "--key", "big"), &head)
	if !strings.HasSuffix(head.ETag, `-3"`) || head.ContentLength != 20<<20 {
		t.Errorf("multipart object: %+v", head)
	}
	// The eucarc's AWS_ENDPOINT_URL_S3 is the legacy /services/Walrus path.
	if out, err := Run(t, env, "aws", "s3", "ls"); err != nil || !strings.Contains(out, "cli-bucket") {
		t.Errorf("aws s3 ls through /services/Walrus: %v %s", err, out)
	}
	url := strings.TrimSpace(must("s3", "presign", "s3://cli-bucket/dir/small", "--expires-in", "300"))
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want, _ := os.ReadFile(small); res.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Errorf("presigned GET: %d, %d bytes", res.StatusCode, len(body))
	}
	must("s3", "sync", dir, "s3://cli-bucket/sync/")
	must("s3", "rm", "s3://cli-bucket/sync/", "--recursive")
	fails("BucketNotEmpty", "s3api", "delete-bucket", "--bucket", "cli-bucket")

	// aws s3api: each operation and its common failures.
	must("s3api", "create-bucket", "--bucket", "cli-api", "--create-bucket-configuration", "LocationConstraint="+Getenv(env, "AWS_DEFAULT_REGION"))
	fails("BucketAlreadyOwnedByYou", "s3api", "create-bucket", "--bucket", "cli-api")
	fails("InvalidBucketName", "s3api", "create-bucket", "--bucket", "Bad_Bucket")
	fails("InvalidLocationConstraint", "s3api", "create-bucket", "--bucket", "cli-elsewhere", "--create-bucket-configuration", "LocationConstraint=eu-west-1")
	must("s3api", "head-bucket", "--bucket", "cli-api")
	fails("404", "s3api", "head-bucket", "--bucket", "cli-nosuch")
	if out := must("s3api", "get-bucket-location", "--bucket", "cli-api"); !strings.Contains(out, Getenv(env, "AWS_DEFAULT_REGION")) {
		t.Errorf("location: %s", out)
	}
	must("s3api", "put-object", "--bucket", "cli-api", "--key", "a.txt", "--body", small, "--content-type", "text/plain", "--metadata", "color=blue", "--cache-control", "no-cache")
	jsonField(t, must("s3api", "head-object", "--bucket", "cli-api", "--key", "a.txt"), &head)
	if head.ContentType != "text/plain" || head.ContentLength != 5000 {
		t.Errorf("head-object: %+v", head)
	}
	must("s3api", "get-object", "--bucket", "cli-api", "--key", "a.txt", "--range", "bytes=10-19", filepath.Join(dir, "range"))
	if fi, err := os.Stat(filepath.Join(dir, "range")); err != nil || fi.Size() != 10 {
		t.Errorf("ranged get: %v %v", fi, err)
	}
	fails("InvalidRange", "s3api", "get-object", "--bucket", "cli-api", "--key", "a.txt", "--range", "bytes=9000-", filepath.Join(dir, "x"))
	fails("PreconditionFailed", "s3api", "get-object", "--bucket", "cli-api", "--key", "a.txt", "--if-match", `"0"`, filepath.Join(dir, "x"))
	fails("NoSuchKey", "s3api", "get-object", "--bucket", "cli-api", "--key", "nope", filepath.Join(dir, "x"))
	fails("404", "s3api", "head-object", "--bucket", "cli-api", "--key", "nope")
	fails("NoSuchBucket", "s3api", "list-objects-v2", "--bucket", "cli-nosuch")
	fails("BadDigest", "s3api", "put-object", "--bucket", "cli-api", "--key", "bad", "--body", small, "--content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")
	must("s3api", "copy-object", "--bucket", "cli-api", "--key", "b.txt", "--copy-source", "cli-api/a.txt")
	must("s3api", "copy-object", "--bucket", "cli-api", "--key", "c.txt", "--copy-source", "cli-api/a.txt", "--metadata-directive", "REPLACE", "--content-type", "text/x-replaced")
	jsonField(t, must("s3api", "head-object", "--bucket", "cli-api", "--key", "c.txt"), &head)
	if head.ContentType != "text/x-replaced" {
		t.Errorf("copy REPLACE: %+v", head)
	}
	fails("InvalidRequest", "s3api", "copy-object", "--bucket", "cli-api", "--key", "a.txt", "--copy-source", "cli-api/a.txt")
	var list struct {
		Contents       []struct{ Key string }
		CommonPrefixes []struct{ Prefix string }
		KeyCount       int
	}
	jsonField(t, must("s3api", "list-objects", "--bucket", "cli-api"), &list)
	if len(list.Contents) != 3 {
		t.Errorf("list-objects: %+v", list)
	}
	jsonField(t, must("s3api", "list-objects-v2", "--bucket", "cli-bucket", "--delimiter", "/", "--no-paginate"), &list)
	if len(list.CommonPrefixes) != 1 || list.CommonPrefixes[0].Prefix != "dir/" || list.KeyCount != 2 {
		t.Errorf("list-objects-v2 with delimiter: %+v", list)
	}
	must("s3api", "put-object-tagging", "--bucket", "cli-api", "--key", "a.txt", "--tagging", "TagSet=[{Key=k,Value=v}]")
	if out := must("s3api", "get-object-tagging", "--bucket", "cli-api", "--key", "a.txt"); !strings.Contains(out, `"Value": "v"`) {
		t.Errorf("object tagging: %s", out)
	}
	must("s3api", "delete-object-tagging", "--bucket", "cli-api", "--key", "a.txt")
	must("s3api", "put-object-acl", "--bucket", "cli-api", "--key", "a.txt", "--acl", "public-read")
	if out := must("s3api", "get-object-acl", "--bucket", "cli-api", "--key", "a.txt"); !strings.Contains(out, "AllUsers") {
		t.Errorf("object acl: %s", out)
	}
	res, err = http.Get(root + "/cli-api/a.txt")
	if err != nil || res.StatusCode != 200 {
		t.Errorf("anonymous GET of a public-read object: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	res, err = http.Get(root + "/cli-api/b.txt")
	if err != nil || res.StatusCode != 403 {
		t.Errorf("anonymous GET of a private object: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	must("s3api", "put-bucket-acl", "--bucket", "cli-api", "--acl", "public-read")
	if out := must("s3api", "get-bucket-acl", "--bucket", "cli-api"); !strings.Contains(out, "AllUsers") || !strings.Contains(out, Getenv(env, "EC2_USER_ID")) {
		t.Errorf("bucket acl: %s", out)
	}
	// What Terraform reads of a bucket on every refresh.
	for sub, code := range map[string]string{
		"get-bucket-policy": "NoSuchBucketPolicy", "get-bucket-cors": "NoSuchCORSConfiguration",
		"get-bucket-website": "NoSuchWebsiteConfiguration", "get-bucket-lifecycle-configuration": "NoSuchLifecycleConfiguration",
		"get-bucket-replication": "ReplicationConfigurationNotFoundError", "get-bucket-encryption": "ServerSideEncryptionConfigurationNotFoundError",
		"get-object-lock-configuration": "ObjectLockConfigurationNotFoundError", "get-bucket-tagging": "NoSuchTagSet",
	} {
		fails(code, "s3api", sub, "--bucket", "cli-api")
	}
	for _, sub := range []string{"get-bucket-versioning", "get-bucket-accelerate-configuration", "get-bucket-request-payment", "get-bucket-logging"} {
		must("s3api", sub, "--bucket", "cli-api")
	}
	must("s3api", "put-bucket-tagging", "--bucket", "cli-api", "--tagging", "TagSet=[{Key=env,Value=test}]")
	if out := must("s3api", "get-bucket-tagging", "--bucket", "cli-api"); !strings.Contains(out, "env") {
		t.Errorf("bucket tagging: %s", out)
	}
	must("s3api", "delete-bucket-tagging", "--bucket", "cli-api")
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cli-api/*"}]}`
	must("s3api", "put-bucket-policy", "--bucket", "cli-api", "--policy", policy)
	if out := must("s3api", "get-bucket-policy", "--bucket", "cli-api", "--query", "Policy", "--output", "text"); strings.TrimSpace(out) != policy {
		t.Errorf("policy: %s", out)
	}
	must("s3api", "delete-bucket-policy", "--bucket", "cli-api")
	must("s3api", "put-bucket-versioning", "--bucket", "cli-api", "--versioning-configuration", "Status=Enabled")
	if out := must("s3api", "get-bucket-versioning", "--bucket", "cli-api"); !strings.Contains(out, "Enabled") {
		t.Errorf("versioning: %s", out)
	}

	// Multipart by hand.
	var up struct{ UploadId string }
	jsonField(t, must("s3api", "create-multipart-upload", "--bucket", "cli-api", "--key", "mp"), &up)
	part1 := randomFile(t, dir, "part1", 5<<20)
	var pr struct{ ETag string }
	jsonField(t, must("s3api", "upload-part", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--part-number", "1", "--body", part1), &pr)
	var pr2 struct{ CopyPartResult struct{ ETag string } }
	jsonField(t, must("s3api", "upload-part-copy", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--part-number", "2", "--copy-source", "cli-api/a.txt", "--copy-source-range", "bytes=0-99"), &pr2)
	must("s3api", "upload-part-copy", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--part-number", "3", "--copy-source", "cli-api/a.txt", "--copy-source-range", "bytes=0-99")
	if out := must("s3api", "list-parts", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId); strings.Count(out, "PartNumber") != 3 {
		t.Errorf("list-parts: %s", out)
	}
	if out := must("s3api", "list-multipart-uploads", "--bucket", "cli-api"); !strings.Contains(out, up.UploadId) {
		t.Errorf("list-multipart-uploads: %s", out)
	}
	parts := func(ps ...string) string {
		b, _ := json.Marshal(map[string]any{"Parts": func() []map[string]any {
			var out []map[string]any
			for i := 0; i+1 < len(ps); i += 2 {
				var n int
				fmt.Sscan(ps[i], &n)
				out = append(out, map[string]any{"PartNumber": n, "ETag": ps[i+1]})
			}
			return out
		}()})
		return string(b)
	}
	fails("InvalidPartOrder", "s3api", "complete-multipart-upload", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--multipart-upload", parts("2", pr2.CopyPartResult.ETag, "1", pr.ETag))
	fails("InvalidPart", "s3api", "complete-multipart-upload", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--multipart-upload", parts("1", `"00"`))
	fails("InvalidPart", "s3api", "complete-multipart-upload", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--multipart-upload", parts("1", pr.ETag, "4", pr.ETag))
	fails("EntityTooSmall", "s3api", "complete-multipart-upload", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--multipart-upload", parts("2", pr2.CopyPartResult.ETag, "3", pr2.CopyPartResult.ETag))
	must("s3api", "complete-multipart-upload", "--bucket", "cli-api", "--key", "mp", "--upload-id", up.UploadId, "--multipart-upload", parts("1", pr.ETag, "2", pr2.CopyPartResult.ETag))
	jsonField(t, must("s3api", "head-object", "--bucket", "cli-api", "--key", "mp"), &head)
	if head.ContentLength != 5<<20+100 || !strings.HasSuffix(head.ETag, `-2"`) {
		t.Errorf("completed upload: %+v", head)
	}
	jsonField(t, must("s3api", "create-multipart-upload", "--bucket", "cli-api", "--key", "aborted"), &up)
	must("s3api", "abort-multipart-upload", "--bucket", "cli-api", "--key", "aborted", "--upload-id", up.UploadId)
	fails("NoSuchUpload", "s3api", "list-parts", "--bucket", "cli-api", "--key", "aborted", "--upload-id", up.UploadId)

	// Another account, and bad credentials.
	if out, err := c.Euca(t, "account", "create", "walrus-bob"); err != nil {
		t.Fatalf("account create: %v %s", err, out)
	}
	bob := c.Credentials(t, "walrus-bob")
	if _, err := Run(t, bob, "aws", "--endpoint-url", root, "s3api", "create-bucket", "--bucket", "cli-api"); err == nil || !strings.Contains(err.Error(), "BucketAlreadyExists") {
		t.Errorf("another account's bucket name: %v", err)
	}
	if _, err := Run(t, bob, "aws", "--endpoint-url", root, "s3api", "put-object", "--bucket", "cli-api", "--key", "x", "--body", small); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("write into another account's bucket: %v", err)
	}
	bad := append(append([]string{}, env...), "AWS_SECRET_ACCESS_KEY=wrong")
	if _, err := Run(t, bad, "aws", "--endpoint-url", root, "s3", "ls"); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %v", err)
	}
	bad = append(append([]string{}, env...), "AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000")
	if _, err := Run(t, bad, "aws", "--endpoint-url", root, "s3", "ls"); err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Errorf("unknown key: %v", err)
	}

	// Delete everything.
	var del struct{ Deleted []struct{ Key string } }
	jsonField(t, must("s3api", "delete-objects", "--bucket", "cli-api", "--delete", `{"Objects":[{"Key":"a.txt"},{"Key":"b.txt"},{"Key":"c.txt"},{"Key":"mp"}]}`), &del)
	if len(del.Deleted) != 4 {
		t.Errorf("delete-objects: %+v", del)
	}
	must("s3api", "delete-object", "--bucket", "cli-api", "--key", "never-was")
	must("s3api", "delete-bucket", "--bucket", "cli-api")
	must("s3", "rb", "s3://cli-bucket", "--force")
	if out := must("s3api", "list-buckets"); strings.Contains(out, "cli-") {
		t.Errorf("buckets left: %s", out)
	}
}

func TestWalrusBoto3(t *testing.T) {
	Need(t, "python3")
	c := walrusCloud(t)
	if out, err := c.Euca(t, "account", "create", "boto-bob"); err != nil {
		t.Fatalf("account create: %v %s", err, out)
	}
	bob := c.Credentials(t, "boto-bob")
	env := append(append([]string{}, c.Env...), "BOB_KEY="+Getenv(bob, "AWS_ACCESS_KEY_ID"),
		"BOB_SECRET="+Getenv(bob, "AWS_SECRET_ACCESS_KEY"), "BOB_ID="+Getenv(bob, "EC2_USER_ID"))
	out, err := c.Python(t, env, boto3WalrusScript)
	if err != nil || strings.TrimSpace(out) != "OK" {
		t.Fatalf("boto3: %v\n%s\n--- euca log:\n%s", err, out, tail(c.Log(), 30))
	}
}

// TestWalrusS3cmd drives s3cmd configured for path style, with SigV4 and
// with SigV2.
func TestWalrusS3cmd(t *testing.T) {
	Need(t, "s3cmd")
	c := walrusCloud(t)
	env := c.Env
	dir := t.TempDir()
	file := randomFile(t, dir, "f", 12<<20)
	small := randomFile(t, dir, "s", 100)
	for _, v2 := range []bool{false, true} {
		name := map[bool]string{false: "v4", true: "v2"}[v2]
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(dir, "s3cfg-"+name)
			hostport := strings.TrimPrefix(s3Root(env), "http://")
			conf := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = %s\nbucket_location = %s\n",
				Getenv(env, "AWS_ACCESS_KEY_ID"), Getenv(env, "AWS_SECRET_ACCESS_KEY"), hostport, hostport,
				map[bool]string{false: "False", true: "True"}[v2], Getenv(env, "AWS_DEFAULT_REGION"))
			if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			b := "s3://s3cmd-" + name
			s3cmd := func(args ...string) string {
				t.Helper()
				out, err := Run(t, nil, "s3cmd", append([]string{"-c", cfg}, args...)...)
				if err != nil {
					t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 20))
				}
				return out
			}
			s3cmd("mb", b)
			s3cmd("put", file, b+"/dir/f", "--multipart-chunk-size-mb=5")
			s3cmd("put", small, b+"/s")
			if out := s3cmd("ls", b+"/"); !strings.Contains(out, b+"/dir/") || !strings.Contains(out, b+"/s") {
				t.Errorf("ls: %s", out)
			}
			if out := s3cmd("ls", "--recursive", b); !strings.Contains(out, b+"/dir/f") {
				t.Errorf("ls --recursive: %s", out)
			}
			back := filepath.Join(dir, "back-"+name)
			s3cmd("get", "--force", b+"/dir/f", back)
			sameFile(t, file, back)
			if out := s3cmd("info", b+"/s"); !strings.Contains(out, "100") {
				t.Errorf("info: %s", out)
			}
			s3cmd("setacl", "--acl-public", b+"/s")
			res, err := http.Get(s3Root(env) + "/s3cmd-" + name + "/s")
			if err != nil || res.StatusCode != 200 {
				t.Errorf("public object after setacl: %v %v", res, err)
			} else {
				res.Body.Close()
			}
			s3cmd("cp", b+"/s", b+"/s2")
			s3cmd("del", b+"/s")
			if out := s3cmd("ls", b+"/"); strings.Contains(out, b+"/s\n") {
				t.Errorf("deleted object listed: %s", out)
			}
			s3cmd("del", "--recursive", "--force", b+"/")
			s3cmd("rb", b)
		})
	}
}

// TestWalrusAloneMustJoin: Walrus on a host of its own checks signatures
// against the front-end's accounts, so it must have joined the cloud first;
// never joined, it stops and says how.
func TestWalrusAloneMustJoin(t *testing.T) {
	bin := Binary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("EUCALYPTUS=%q\nCLOUD_PORT=\"%d\"\n", dir, freePort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--roles=walrus", "--conf", conf)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("--roles=walrus kept running")
	}
	if err == nil || !strings.Contains(string(out), "has not joined the cloud") || !strings.Contains(string(out), "--role walrus") {
		t.Errorf("--roles=walrus, never joined: %v\n%s", err, out)
	}
}

// boto3WalrusScript exercises every operation with boto3: the transfer
// manager's multipart upload, presigned URLs fetched with urllib, aws-chunked
// uploads with a trailing checksum, SigV2 under the legacy path, ACLs,
// anonymous access, the bucket sub-resources, and the errors.
const boto3WalrusScript = `
import base64, hashlib, io, os, urllib.parse, urllib.request, urllib.error, uuid
import boto3, botocore
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from boto3.s3.transfer import TransferConfig

root = os.environ['S3_URL'].split('/services/Walrus')[0]
legacy = os.environ['S3_URL']
path_style = {'addressing_style': 'path'}


def client(endpoint=root, sig=None, key=None, secret=None, **kw):
    cfg = Config(s3=path_style, signature_version=sig, retries={'max_attempts': 1}, **kw)
    return boto3.client('s3', endpoint_url=endpoint, config=cfg,
                        aws_access_key_id=key or os.environ['AWS_ACCESS_KEY_ID'],
                        aws_secret_access_key=secret or os.environ['AWS_SECRET_ACCESS_KEY'])


s3 = client()
bob = client(key=os.environ['BOB_KEY'], secret=os.environ['BOB_SECRET'])
anon = boto3.client('s3', endpoint_url=root, config=Config(s3=path_style, signature_version=UNSIGNED, retries={'max_attempts': 1}))


def fails(code, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ClientError as e:
        got = e.response['Error']['Code']
        assert got == code, f'{fn.__name__}: got {got}, want {code}: {e}'
        return e
    raise AssertionError(f'{fn.__name__} succeeded, want {code}')


B = 'boto-' + uuid.uuid4().hex[:8]
s3.create_bucket(Bucket=B, CreateBucketConfiguration={'LocationConstraint': os.environ['AWS_DEFAULT_REGION']})
fails('BucketAlreadyOwnedByYou', s3.create_bucket, Bucket=B)
fails('BucketAlreadyExists', bob.create_bucket, Bucket=B)
fails('InvalidBucketName', s3.create_bucket, Bucket='Bad_Name')
fails('InvalidLocationConstraint', s3.create_bucket, Bucket=B + '-x', CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})
s3.head_bucket(Bucket=B)
fails('404', s3.head_bucket, Bucket=B + '-none')
assert s3.get_bucket_location(Bucket=B)['LocationConstraint'] == os.environ['AWS_DEFAULT_REGION']
assert B in [b['Name'] for b in s3.list_buckets()['Buckets']]
assert B not in [b['Name'] for b in bob.list_buckets()['Buckets']]

# Objects, metadata and stored headers.
r = s3.put_object(Bucket=B, Key='dir/a.txt', Body=b'hello', ContentType='text/plain', Metadata={'color': 'blue'},
                  CacheControl='no-cache', ContentDisposition='inline', ContentLanguage='en', ContentEncoding='identity')
assert r['ETag'] == '"%s"' % hashlib.md5(b'hello').hexdigest(), r['ETag']
h = s3.head_object(Bucket=B, Key='dir/a.txt')
assert h['ContentType'] == 'text/plain' and h['Metadata'] == {'color': 'blue'} and h['CacheControl'] == 'no-cache', h
assert h['ContentDisposition'] == 'inline' and h['ContentLanguage'] == 'en' and h['ContentLength'] == 5, h
g = s3.get_object(Bucket=B, Key='dir/a.txt', Range='bytes=1-3')
assert g['Body'].read() == b'ell' and g['ContentRange'] == 'bytes 1-3/5', g
fails('InvalidRange', s3.get_object, Bucket=B, Key='dir/a.txt', Range='bytes=10-')
fails('PreconditionFailed', s3.get_object, Bucket=B, Key='dir/a.txt', IfMatch='"nope"')
fails('304', s3.get_object, Bucket=B, Key='dir/a.txt', IfNoneMatch=r['ETag'])
g = s3.get_object(Bucket=B, Key='dir/a.txt', ResponseContentType='application/x-over')
assert g['ContentType'] == 'application/x-over'
fails('NoSuchKey', s3.get_object, Bucket=B, Key='missing')
fails('404', s3.head_object, Bucket=B, Key='missing')
fails('NoSuchBucket', s3.get_object, Bucket=B + '-none', Key='x')
fails('BadDigest', s3.put_object, Bucket=B, Key='bad', Body=b'x', ContentMD5=base64.b64encode(hashlib.md5(b'y').digest()).decode())
fails('InvalidDigest', s3.put_object, Bucket=B, Key='bad', Body=b'x', ContentMD5='notmd5')
# Every checksum the SDK offers is computed and checked.
for algo in ['CRC32', 'SHA1', 'SHA256']:  # CRC32C and CRC64NVME need awscrt
    s3.put_object(Bucket=B, Key='ck-' + algo, Body=b'checksummed', ChecksumAlgorithm=algo)
fails('BadDigest', s3.put_object, Bucket=B, Key='ck-bad', Body=b'x', ChecksumCRC32='AAAAAA==')
fails('NoSuchKey', s3.get_object, Bucket=B, Key='ck-bad')

# aws-chunked with a trailing checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER):
# botocore sends it only over TLS; make it believe this endpoint is.
import botocore.httpchecksum as hc
real = hc.urlparse
hc.urlparse = lambda u: real(u.replace('http://', 'https://', 1))
try:
    data = os.urandom(300000)
    s3.put_object(Bucket=B, Key='chunked', Body=io.BytesIO(data), ChecksumAlgorithm='CRC32')
    s3.put_object(Bucket=B, Key='chunked-sha', Body=data, ChecksumAlgorithm='SHA256')
finally:
    hc.urlparse = real
assert s3.get_object(Bucket=B, Key='chunked')['Body'].read() == data
assert s3.get_object(Bucket=B, Key='chunked-sha')['Body'].read() == data

# Copy, with COPY and REPLACE metadata.
s3.copy_object(Bucket=B, Key='copy', CopySource={'Bucket': B, 'Key': 'dir/a.txt'})
assert s3.head_object(Bucket=B, Key='copy')['Metadata'] == {'color': 'blue'}
s3.copy_object(Bucket=B, Key='copy2', CopySource=B + '/dir/a.txt', MetadataDirective='REPLACE', Metadata={'x': 'y'}, ContentType='text/x')
h = s3.head_object(Bucket=B, Key='copy2')
assert h['Metadata'] == {'x': 'y'} and h['ContentType'] == 'text/x', h
fails('InvalidRequest', s3.copy_object, Bucket=B, Key='copy', CopySource={'Bucket': B, 'Key': 'copy'})

# Listing, v1 and v2, with the SDK's paginators.
for i in range(7):
    s3.put_object(Bucket=B, Key=f'page/{i:02d}', Body=b'p')
keys = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket=B, Prefix='page/', PaginationConfig={'PageSize': 2}) for o in p.get('Contents', [])]
assert keys == [f'page/{i:02d}' for i in range(7)], keys
keys = [o['Key'] for p in s3.get_paginator('list_objects').paginate(Bucket=B, Prefix='page/', PaginationConfig={'PageSize': 3}) for o in p.get('Contents', [])]
assert len(keys) == 7, keys
r = s3.list_objects_v2(Bucket=B, Delimiter='/')
assert [p['Prefix'] for p in r['CommonPrefixes']] == ['dir/', 'page/'], r['CommonPrefixes']
s3.put_object(Bucket=B, Key='sp ace+plus', Body=b'')
# botocore asks for encoding-type=url itself and decodes; asked for by the
# caller, the keys stay encoded.
assert s3.list_objects(Bucket=B, Prefix='sp')['Contents'][0]['Key'] == 'sp ace+plus'
r = s3.list_objects_v2(Bucket=B, Prefix='sp', EncodingType='url')
assert urllib.parse.unquote_plus(r['Contents'][0]['Key']) == 'sp ace+plus', r['Contents']

# Multipart through the transfer manager, and by hand.
big = os.urandom(17 * 1024 * 1024 + 3)
tc = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=4)
s3.upload_fileobj(io.BytesIO(big), B, 'big', Config=tc)
h = s3.head_object(Bucket=B, Key='big')
assert h['ETag'].endswith('-4"') and h['ContentLength'] == len(big), h
out = io.BytesIO()
s3.download_fileobj(B, 'big', out, Config=tc)
assert out.getvalue() == big
u = s3.create_multipart_upload(Bucket=B, Key='mp', ContentType='application/x-mp')['UploadId']
p1 = s3.upload_part(Bucket=B, Key='mp', UploadId=u, PartNumber=1, Body=big[:5 * 1024 * 1024])['ETag']
p2 = s3.upload_part_copy(Bucket=B, Key='mp', UploadId=u, PartNumber=2, CopySource={'Bucket': B, 'Key': 'dir/a.txt'}, CopySourceRange='bytes=0-1')['CopyPartResult']['ETag']
assert [p['PartNumber'] for p in s3.list_parts(Bucket=B, Key='mp', UploadId=u)['Parts']] == [1, 2]
assert u in [x['UploadId'] for x in s3.list_multipart_uploads(Bucket=B)['Uploads']]
fails('InvalidPartOrder', s3.complete_multipart_upload, Bucket=B, Key='mp', UploadId=u, MultipartUpload={'Parts': [{'PartNumber': 2, 'ETag': p2}, {'PartNumber': 1, 'ETag': p1}]})
fails('InvalidPart', s3.complete_multipart_upload, Bucket=B, Key='mp', UploadId=u, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': '"00"'}]})
r = s3.complete_multipart_upload(Bucket=B, Key='mp', UploadId=u, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': p1}, {'PartNumber': 2, 'ETag': p2}]})
assert r['ETag'].endswith('-2"'), r
assert s3.get_object(Bucket=B, Key='mp')['Body'].read() == big[:5 * 1024 * 1024] + b'he'
assert s3.head_object(Bucket=B, Key='mp')['ContentType'] == 'application/x-mp'
fails('NoSuchUpload', s3.list_parts, Bucket=B, Key='mp', UploadId=u)
u = s3.create_multipart_upload(Bucket=B, Key='small')['UploadId']
q1 = s3.upload_part(Bucket=B, Key='small', UploadId=u, PartNumber=1, Body=b'tiny')['ETag']
q2 = s3.upload_part(Bucket=B, Key='small', UploadId=u, PartNumber=2, Body=b'tiny')['ETag']
fails('EntityTooSmall', s3.complete_multipart_upload, Bucket=B, Key='small', UploadId=u, MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': q1}, {'PartNumber': 2, 'ETag': q2}]})
s3.abort_multipart_upload(Bucket=B, Key='small', UploadId=u)
fails('NoSuchUpload', s3.abort_multipart_upload, Bucket=B, Key='small', UploadId=u)

# Presigned URLs, fetched without any SDK. SigV4: in us-east-1 botocore
# presigns SigV2 unless told, which signs the Content-Type urllib adds.
v4 = client(sig='s3v4')
url = v4.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'dir/a.txt'}, ExpiresIn=300)
assert urllib.request.urlopen(url).read() == b'hello'
url = v4.generate_presigned_url('put_object', Params={'Bucket': B, 'Key': 'presigned-put'}, ExpiresIn=300)
assert 'X-Amz-Signature=' in url, url
urllib.request.urlopen(urllib.request.Request(url, data=b'via url', method='PUT')).read()
assert s3.get_object(Bucket=B, Key='presigned-put')['Body'].read() == b'via url'
try:
    urllib.request.urlopen(url.replace('Signature=', 'Signature=0'))
    raise AssertionError('tampered presigned URL accepted')
except urllib.error.HTTPError as e:
    assert e.code in (400, 403), e.code
v2 = client(sig='s3')
url = v2.generate_presigned_url('get_object', Params={'Bucket': B, 'Key': 'dir/a.txt'}, ExpiresIn=300)
assert urllib.request.urlopen(url).read() == b'hello'

# SigV2 (as euca2ools signs), under the legacy prefix, with aws-exec-read.
v2legacy = client(endpoint=legacy, sig='s3')
v2legacy.put_object(Bucket=B, Key='bundle/part.0', Body=b'part', ACL='aws-exec-read')
assert v2legacy.get_object(Bucket=B, Key='bundle/part.0')['Body'].read() == b'part'
acl = s3.get_object_acl(Bucket=B, Key='bundle/part.0')
assert {(g['Grantee'].get('ID'), g['Permission']) for g in acl['Grants']} == {(acl['Owner']['ID'], 'FULL_CONTROL'), ('eucalyptus', 'READ')}, acl
assert client(endpoint=legacy).list_objects_v2(Bucket=B, Prefix='bundle/')['KeyCount'] == 1

# Virtual-host addressing: bucket.localhost:port (the resolver is taught
# that *.localhost is this machine, as systemd-resolved does).
import socket
real_gai = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **kw: real_gai('127.0.0.1' if str(host).endswith('.localhost') else host, *a, **kw)
try:
    vroot = root.replace('127.0.0.1', 'localhost')
    for sig in (None, 's3'):
        vh = boto3.client('s3', endpoint_url=vroot, config=Config(s3={'addressing_style': 'virtual'}, signature_version=sig, retries={'max_attempts': 1}))
        vh.put_object(Bucket=B, Key='vhost/%s' % sig, Body=b'virtual')
        assert vh.get_object(Bucket=B, Key='vhost/%s' % sig)['Body'].read() == b'virtual'
        assert vh.list_objects_v2(Bucket=B, Prefix='vhost/%s' % sig)['KeyCount'] == 1
finally:
    socket.getaddrinfo = real_gai

# ACLs and anonymous access.
fails('AccessDenied', anon.get_object, Bucket=B, Key='dir/a.txt')
fails('AccessDenied', bob.get_object, Bucket=B, Key='dir/a.txt')
s3.put_object_acl(Bucket=B, Key='dir/a.txt', ACL='public-read')
assert anon.get_object(Bucket=B, Key='dir/a.txt')['Body'].read() == b'hello'
acl = s3.get_object_acl(Bucket=B, Key='dir/a.txt')
assert any(g['Grantee'].get('URI', '').endswith('AllUsers') for g in acl['Grants']), acl
owner = acl['Owner']
s3.put_object_acl(Bucket=B, Key='dir/a.txt', AccessControlPolicy={'Owner': owner, 'Grants': [
    {'Grantee': {'Type': 'CanonicalUser', 'ID': owner['ID']}, 'Permission': 'FULL_CONTROL'},
    {'Grantee': {'Type': 'CanonicalUser', 'ID': os.environ['BOB_ID']}, 'Permission': 'READ'}]})
assert bob.get_object(Bucket=B, Key='dir/a.txt')['Body'].read() == b'hello'
fails('AccessDenied', anon.get_object, Bucket=B, Key='dir/a.txt')
fails('AccessDenied', anon.list_objects, Bucket=B)
s3.put_bucket_acl(Bucket=B, ACL='public-read')
assert anon.list_objects(Bucket=B, MaxKeys=1)['MaxKeys'] == 1
assert s3.get_bucket_acl(Bucket=B)['Owner']['ID'] == owner['ID']
s3.put_bucket_acl(Bucket=B, ACL='private')
fails('AccessDenied', bob.put_object, Bucket=B, Key='intruder', Body=b'x')
fails('AccessDenied', bob.delete_bucket, Bucket=B)

# The sub-resources Terraform reads, and tagging.
for fn, code in [(s3.get_bucket_policy, 'NoSuchBucketPolicy'), (s3.get_bucket_cors, 'NoSuchCORSConfiguration'),
                 (s3.get_bucket_website, 'NoSuchWebsiteConfiguration'), (s3.get_bucket_lifecycle_configuration, 'NoSuchLifecycleConfiguration'),
                 (s3.get_bucket_replication, 'ReplicationConfigurationNotFoundError'),
                 (s3.get_bucket_encryption, 'ServerSideEncryptionConfigurationNotFoundError'),
                 (s3.get_object_lock_configuration, 'ObjectLockConfigurationNotFoundError'), (s3.get_bucket_tagging, 'NoSuchTagSet')]:
    fails(code, fn, Bucket=B)
assert 'Status' not in s3.get_bucket_versioning(Bucket=B)
assert 'Status' not in s3.get_bucket_accelerate_configuration(Bucket=B)
assert s3.get_bucket_request_payment(Bucket=B)['Payer'] == 'BucketOwner'
assert 'LoggingEnabled' not in s3.get_bucket_logging(Bucket=B)
policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}' % B
s3.put_bucket_policy(Bucket=B, Policy=policy)
assert s3.get_bucket_policy(Bucket=B)['Policy'] == policy
s3.delete_bucket_policy(Bucket=B)
s3.put_bucket_cors(Bucket=B, CORSConfiguration={'CORSRules': [{'AllowedMethods': ['GET'], 'AllowedOrigins': ['*']}]})
assert s3.get_bucket_cors(Bucket=B)['CORSRules'][0]['AllowedMethods'] == ['GET']
s3.delete_bucket_cors(Bucket=B)
s3.put_bucket_versioning(Bucket=B, VersioningConfiguration={'Status': 'Enabled'})
assert s3.get_bucket_versioning(Bucket=B)['Status'] == 'Enabled'
s3.put_bucket_lifecycle_configuration(Bucket=B, LifecycleConfiguration={'Rules': [{'ID': 'r', 'Status': 'Enabled', 'Filter': {'Prefix': 'tmp/'}, 'Expiration': {'Days': 1}}]})
assert s3.get_bucket_lifecycle_configuration(Bucket=B)['Rules'][0]['ID'] == 'r'
s3.put_bucket_website(Bucket=B, WebsiteConfiguration={'IndexDocument': {'Suffix': 'index.html'}})
assert s3.get_bucket_website(Bucket=B)['IndexDocument']['Suffix'] == 'index.html'
s3.put_bucket_tagging(Bucket=B, Tagging={'TagSet': [{'Key': 'env', 'Value': 'test'}]})
assert s3.get_bucket_tagging(Bucket=B)['TagSet'] == [{'Key': 'env', 'Value': 'test'}]
s3.delete_bucket_tagging(Bucket=B)
fails('NoSuchTagSet', s3.get_bucket_tagging, Bucket=B)
fails('NotImplemented', s3.put_bucket_replication, Bucket=B, ReplicationConfiguration={'Role': 'r', 'Rules': [{'Status': 'Enabled', 'Destination': {'Bucket': 'arn:aws:s3:::x'}, 'Prefix': ''}]})
s3.put_object_tagging(Bucket=B, Key='copy', Tagging={'TagSet': [{'Key': 'k', 'Value': 'v'}]})
assert s3.get_object_tagging(Bucket=B, Key='copy')['TagSet'] == [{'Key': 'k', 'Value': 'v'}]
s3.delete_object_tagging(Bucket=B, Key='copy')
assert s3.get_object_tagging(Bucket=B, Key='copy')['TagSet'] == []
fails('InvalidTag', s3.put_object_tagging, Bucket=B, Key='copy', Tagging={'TagSet': [{'Key': 'k%d' % i, 'Value': 'v'} for i in range(11)]})

# Signatures refused.
fails('SignatureDoesNotMatch', client(secret='wrong').list_objects, Bucket=B)
fails('InvalidAccessKeyId', client(key='AKIANOSUCHKEY0000000').list_objects, Bucket=B)
fails('SignatureDoesNotMatch', client(sig='s3', secret='wrong').list_objects, Bucket=B)

# Empty the bucket (with the versions listing Terraform's force_destroy
# uses), then delete it.
fails('BucketNotEmpty', s3.delete_bucket, Bucket=B)
while True:
    r = s3.list_object_versions(Bucket=B)
    objs = [{'Key': v['Key'], 'VersionId': v['VersionId']} for v in r.get('Versions', [])]
    if not objs:
        break
    d = s3.delete_objects(Bucket=B, Delete={'Objects': objs, 'Quiet': False})
    assert not d.get('Errors'), d
s3.delete_object(Bucket=B, Key='never-there')
s3.delete_bucket(Bucket=B)
fails('NoSuchBucket', s3.delete_bucket, Bucket=B)
print('OK')
`
