package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWalrusBrowserAndParts drives what browsers and today's SDKs rely on
// with the real clients: a POST upload from boto3's generate_presigned_post
// (SigV4, and SigV2 with botocore's HmacV1 signer) sent by curl -F; parts
// of an object the AWS CLI uploaded in parts (head-object --part-number,
// get-object-attributes); ListObjects with encoding-type=url as boto3
// decodes it.
func TestWalrusBrowserAndParts(t *testing.T) {
	Need(t, "aws", "curl", "python3")
	c := walrusCloud(t)
	env := c.Env
	root := s3Root(env)
	dir := t.TempDir()
	s3 := func(args ...string) string {
		t.Helper()
		out, err := Run(t, env, "aws", append([]string{"--endpoint-url", root}, args...)...)
		if err != nil {
			t.Fatalf("aws %v: %v\n--- euca log:\n%s", args, err, tail(c.Log(), 20))
		}
		return strings.TrimSpace(out)
	}
	s3("s3", "mb", "s3://browser")

	// partNumber and GetObjectAttributes of a 12 MB object aws s3 cp sent
	// in parts (8 MiB threshold).
	big := randomFile(t, dir, "big", 12_000_000)
	s3("s3", "cp", big, "s3://browser/big", "--quiet")
	if n := s3("s3api", "head-object", "--bucket", "browser", "--key", "big", "--part-number", "1", "--query", "PartsCount", "--output", "text"); n != "2" {
		t.Errorf("PartsCount: %q", n)
	}
	if n := s3("s3api", "head-object", "--bucket", "browser", "--key", "big", "--part-number", "2", "--query", "ContentLength", "--output", "text"); n != "3611392" {
		t.Errorf("part 2 length: %q", n)
	}
	if out := s3("s3api", "get-object-attributes", "--bucket", "browser", "--key", "big", "--object-attributes", "ETag", "ObjectSize", "ObjectParts",
		"--query", "[ObjectSize, ObjectParts.TotalPartsCount, ETag]", "--output", "text"); !strings.HasPrefix(out, "12000000\t2\t") || !strings.HasSuffix(out, "-2") {
		t.Errorf("get-object-attributes: %q", out)
	}

	// POST uploads signed by boto3 and sent by curl.
	for _, sig := range []string{"s3v4", "s3"} {
		out, err := c.Python(t, env, `
import boto3, os, sys
from botocore.config import Config
c = boto3.client('s3', endpoint_url='`+root+`', config=Config(signature_version='`+sig+`', s3={'addressing_style': 'path'}))
p = c.generate_presigned_post('browser', 'posted/`+sig+`/${filename}', Fields={'x-amz-meta-by': 'curl'},
    Conditions=[['content-length-range', 1, 1000], {'x-amz-meta-by': 'curl'}], ExpiresIn=300)
print(p['url'])
for k, v in p['fields'].items():
    print(k + '=' + v)
`)
		if err != nil {
			t.Fatalf("generate_presigned_post (%s): %v", sig, err)
		}
		lines := Lines(out)
		args := []string{"-s", "-o", "/dev/null", "-w", "%{http_code}"}
		for _, l := range lines[1:] {
			args = append(args, "-F", l)
		}
		small := randomFile(t, dir, "small-"+sig+".bin", 500)
		cmd := exec.Command("curl", append(args, "-F", "file=@"+small, lines[0])...)
		code, err := cmd.Output()
		if err != nil || string(code) != "204" {
			t.Fatalf("curl POST (%s): %v %s\n--- euca log:\n%s", sig, err, code, tail(c.Log(), 20))
		}
		back := filepath.Join(dir, "back-"+sig)
		s3("s3", "cp", "s3://browser/posted/"+sig+"/small-"+sig+".bin", back, "--quiet")
		sameFile(t, small, back)
		if m := s3("s3api", "head-object", "--bucket", "browser", "--key", "posted/"+sig+"/small-"+sig+".bin", "--query", "Metadata.by", "--output", "text"); m != "curl" {
			t.Errorf("posted metadata (%s): %q", sig, m)
		}
		// Over the policy's content-length-range: refused, nothing stored.
		tooBig := randomFile(t, dir, "big-"+sig+".bin", 1001)
		code, _ = exec.Command("curl", append(args, "-F", "file=@"+tooBig, lines[0])...).Output()
		if string(code) != "400" {
			t.Errorf("oversized POST (%s): %s", sig, code)
		}
	}

	// CORS: a preflight answered from the configuration put-bucket-cors
	// stored, and refused for an origin no rule allows.
	s3("s3api", "put-bucket-cors", "--bucket", "browser", "--cors-configuration",
		`{"CORSRules":[{"AllowedOrigins":["https://*.example.com"],"AllowedMethods":["PUT","POST"],"AllowedHeaders":["*"],"ExposeHeaders":["ETag"]}]}`)
	preflight := func(origin string) string {
		out, err := exec.Command("curl", "-s", "-i", "-X", "OPTIONS", "-H", "Origin: "+origin, "-H", "Access-Control-Request-Method: PUT",
			"-H", "Access-Control-Request-Headers: content-type, x-amz-date", root+"/browser/upload.bin?uploads").Output()
		if err != nil {
			t.Fatalf("curl OPTIONS: %v", err)
		}
		return strings.ReplaceAll(string(out), "\r", "")
	}
	if out := preflight("https://app.example.com"); !strings.HasPrefix(out, "HTTP/1.1 200") ||
		!strings.Contains(out, "Access-Control-Allow-Origin: https://app.example.com\n") ||
		!strings.Contains(out, "Access-Control-Allow-Methods: PUT, POST\n") ||
		!strings.Contains(out, "Access-Control-Allow-Headers: content-type, x-amz-date\n") {
		t.Errorf("preflight:\n%s", out)
	}
	if out := preflight("https://evil.example.org"); !strings.HasPrefix(out, "HTTP/1.1 403") || !strings.Contains(out, "<Code>AccessForbidden</Code>") {
		t.Errorf("refused preflight:\n%s", out)
	}

	// ListObjects (V1 and V2) with keys that need encoding, as boto3 asks
	// for them (encoding-type=url) and decodes them.
	out, err := c.Python(t, env, `
import boto3
c = boto3.client('s3', endpoint_url='`+root+`')
for k in ['a b/1', 'a b/c+d', 'a b/é', 'a b/x y/z']:
    c.put_object(Bucket='browser', Key=k, Body=b'x')
v1 = c.list_objects(Bucket='browser', Prefix='a b/', Delimiter='/', MaxKeys=2)
assert v1['Prefix'] == 'a b/', v1['Prefix']
assert [o['Key'] for o in v1['Contents']] == ['a b/1', 'a b/c+d'], v1['Contents']
assert v1['NextMarker'] == 'a b/c+d', v1.get('NextMarker')
v1 = c.list_objects(Bucket='browser', Prefix='a b/', Delimiter='/', Marker=v1['NextMarker'])
assert [o['Key'] for o in v1['Contents']] == ['a b/é'] and v1['CommonPrefixes'] == [{'Prefix': 'a b/x y/'}], v1
v2 = c.list_objects_v2(Bucket='browser', Prefix='a b/', Delimiter='/', StartAfter='a b/1')
assert v2['Prefix'] == 'a b/' and v2['StartAfter'] == 'a b/1', v2
assert [o['Key'] for o in v2['Contents']] == ['a b/c+d', 'a b/é'], v2['Contents']
print('OK')
`)
	if err != nil || strings.TrimSpace(out) != "OK" {
		t.Errorf("boto3 listing: %v\n%s", err, out)
	}
}
