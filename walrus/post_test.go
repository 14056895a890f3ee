package walrus

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
)

// postField is one field of a POST form, in order.
type postField struct{ name, value string }

// postFormV4 signs a policy with SigV4 as boto3's generate_presigned_post
// does and returns the form's fields: those given, the policy and the
// signature fields (with their conditions added to the policy).
func postFormV4(c cred, expires time.Time, conds []any, fields ...postField) []postField {
	now := time.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	credential := c.akid + "/" + amzDate[:8] + "/us-euca-1/s3/aws4_request"
	conds = append(conds, map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"}, map[string]string{"x-amz-credential": credential},
		map[string]string{"x-amz-date": amzDate})
	doc, _ := json.Marshal(map[string]any{"expiration": expires.UTC().Format("2006-01-02T15:04:05.000Z"), "conditions": conds})
	policy := base64.StdEncoding.EncodeToString(doc)
	sig := hex.EncodeToString(hmacSHA256(v4Key(c, amzDate[:8]), policy))
	return append(fields, postField{"x-amz-algorithm", "AWS4-HMAC-SHA256"}, postField{"x-amz-credential", credential},
		postField{"x-amz-date", amzDate}, postField{"policy", policy}, postField{"x-amz-signature", sig})
}

// postFormV2 signs with SigV2 (HMAC-SHA1 of the policy).
func postFormV2(c cred, expires time.Time, conds []any, fields ...postField) []postField {
	doc, _ := json.Marshal(map[string]any{"expiration": expires.UTC().Format(time.RFC3339), "conditions": conds})
	policy := base64.StdEncoding.EncodeToString(doc)
	h := hmac.New(sha1.New, []byte(c.secret))
	h.Write([]byte(policy))
	return append(fields, postField{"AWSAccessKeyId", c.akid}, postField{"policy", policy}, postField{"signature", base64.StdEncoding.EncodeToString(h.Sum(nil))})
}

// post sends a form with a file (named filename) after its fields.
func (e *testEnv) post(path string, fields []postField, filename string, data []byte) resp {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fields {
		_ = mw.WriteField(f.name, f.value)
	}
	fw, _ := mw.CreateFormFile("file", filename)
	fw.Write(data)
	mw.Close()
	r, err := http.NewRequest("POST", e.srv.URL+path, &body)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return e.send(r)
}

func TestPostObject(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/posts", nil), 200)
	hour := time.Now().Add(time.Hour)
	conds := []any{map[string]string{"bucket": "posts"}, []any{"starts-with", "$key", "up/"}, []any{"content-length-range", 1, 100}}

	// SigV4, with ${filename}, metadata, Content-Type and the default 204.
	r := e.must(e.post("/posts", postFormV4(e.alice, hour, append(conds, map[string]string{"x-amz-meta-color": "blue"},
		[]any{"starts-with", "$Content-Type", "text/"}),
		postField{"key", "up/${filename}"}, postField{"x-amz-meta-color", "blue"}, postField{"Content-Type", "text/plain"}),
		`C:\docs\hello.txt`, []byte("hello")), 204)
	if r.header.Get("ETag") != `"5d41402abc4b2a76b9719d911017c592"` || !strings.HasSuffix(r.header.Get("Location"), "/posts/up/hello.txt") {
		t.Errorf("204 answer: %v", r.header)
	}
	g := e.must(e.do(a, "GET", "/posts/up/hello.txt", nil), 200)
	if string(g.body) != "hello" || g.header.Get("Content-Type") != "text/plain" || g.header.Get("x-amz-meta-color") != "blue" {
		t.Errorf("posted object: %q %v", g.body, g.header)
	}

	// SigV2, 201 with its document.
	r = e.must(e.post("/posts", postFormV2(e.alice, hour, append(conds, map[string]string{"success_action_status": "201"}),
		postField{"key", "up/v2"}, postField{"success_action_status", "201"}), "f", []byte("v2 data")), 201)
	var doc struct{ Bucket, Key, ETag, Location string }
	if err := xml.Unmarshal(r.body, &doc); err != nil || doc.Bucket != "posts" || doc.Key != "up/v2" || doc.ETag == "" {
		t.Errorf("201 document: %s", r.body)
	}
	e.must(e.post("/posts", postFormV2(e.alice, hour, append(conds, map[string]string{"success_action_status": "200"}),
		postField{"key", "up/v2"}, postField{"success_action_status", "200"}), "f", []byte("v2 data")), 200)

	// A redirect: 303 with bucket, key and etag.
	r = e.must(e.post("/posts", postFormV4(e.alice, hour, append(conds, []any{"starts-with", "$success_action_redirect", "http://app.example/"}),
		postField{"key", "up/r"}, postField{"success_action_redirect", "http://app.example/done?x=1"}), "f", []byte("r")), 303)
	if u, err := url.Parse(r.header.Get("Location")); err != nil || u.Host != "app.example" || u.Query().Get("x") != "1" ||
		u.Query().Get("bucket") != "posts" || u.Query().Get("key") != "up/r" || u.Query().Get("etag") != `"4b43b0aee35624cd95b910189b3dc231"` {
		t.Errorf("redirect: %v", r.header)
	}

	// Refusals; nothing is stored.
	for name, c := range map[string]struct {
		fields []postField
		data   string
		status int
		code   string
	}{
		"condition failed": {postFormV4(e.alice, hour, conds, postField{"key", "other/k"}), "x", 403, "AccessDenied"},
		"extra field":      {postFormV4(e.alice, hour, conds, postField{"key", "up/k"}, postField{"x-amz-meta-a", "1"}), "x", 403, "AccessDenied"},
		"expired":          {postFormV4(e.alice, time.Now().Add(-time.Minute), conds, postField{"key", "up/k"}), "x", 403, "AccessDenied"},
		"too large":        {postFormV4(e.alice, hour, conds, postField{"key", "up/k"}), strings.Repeat("x", 101), 400, "EntityTooLarge"},
		"too small":        {postFormV4(e.alice, hour, conds, postField{"key", "up/k"}), "", 400, "EntityTooSmall"},
		"bad signature":    {postFormV4(e.bob, hour, conds, postField{"key", "up/k"}, postField{"x-amz-signature", "0"}), "x", 400, "InvalidArgument"},
		"other bucket":     {postFormV4(e.alice, hour, []any{map[string]string{"bucket": "elsewhere"}, []any{"starts-with", "$key", ""}}, postField{"key", "up/k"}), "x", 403, "AccessDenied"},
		// A policy for another bucket is not made good for this one by a
		// form field naming that bucket.
		"other bucket field": {postFormV4(e.alice, hour, []any{map[string]string{"bucket": "elsewhere"}, []any{"starts-with", "$key", ""}}, postField{"key", "up/k"}, postField{"bucket", "elsewhere"}), "x", 403, "AccessDenied"},
		"no key":             {postFormV4(e.alice, hour, conds), "x", 400, "InvalidArgument"},
		"not the owner":      {postFormV4(e.bob, hour, conds, postField{"key", "up/k"}), "x", 403, "AccessDenied"},
		"anonymous":          {[]postField{{"key", "up/k"}}, "x", 403, "AccessDenied"},
	} {
		if r := e.post("/posts", c.fields, "f", []byte(c.data)); r.status != c.status || r.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.body, c.status, c.code)
		}
	}
	// A tampered policy fails its signature.
	f := postFormV4(e.alice, hour, conds, postField{"key", "up/k"})
	for i := range f {
		if f[i].name == "x-amz-signature" {
			f[i].value = strings.Repeat("0", 64)
		}
	}
	e.wantErr(e.post("/posts", f, "f", []byte("x")), 403, "SignatureDoesNotMatch")
	e.wantErr(e.do(a, "GET", "/posts/up/k", nil), 404, "NoSuchKey")

	// Not a form.
	e.wantErr(e.do(anon, "POST", "/posts", []byte("key=k"), "Content-Type", "application/x-www-form-urlencoded"), 412, "PreconditionFailed")

	// A bucket everyone may write takes an anonymous form without policy.
	e.must(e.do(a, "PUT", "/open", nil, "x-amz-acl", "public-read-write"), 200)
	e.must(e.post("/open", []postField{{"key", "anon"}}, "f", []byte("anonymous")), 204)
	if g := e.must(e.do(a, "GET", "/open/anon", nil), 200); string(g.body) != "anonymous" {
		t.Errorf("anonymous post: %q", g.body)
	}
}

// TestPostObjectBucketLimit: the bucket's size limit holds while the file
// streams, its length unknown before its end.
func TestPostObjectBucketLimit(t *testing.T) {
	e := newEnv(t, func(c *conf.Config) { c.WalrusMaxBucketSizeMB = 1 })
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/small", nil), 200)
	hour := time.Now().Add(time.Hour)
	conds := []any{map[string]string{"bucket": "small"}, []any{"starts-with", "$key", ""}}
	r := e.post("/small", postFormV4(e.alice, hour, conds, postField{"key", "big"}), "f", bytes.Repeat([]byte("x"), 2<<20))
	e.wantErr(r, 400, "EntityTooLarge")
	if !strings.Contains(string(r.body), "WALRUS_MAX_BUCKET_SIZE_MB") {
		t.Errorf("limit message: %s", r.body)
	}
	e.must(e.post("/small", postFormV4(e.alice, hour, conds, postField{"key", "fits"}), "f", []byte("fits")), 204)
	_ = fmt.Sprint
}

// FuzzPostPolicy: any policy field parses or is refused with an S3 error,
// and a parsed one checks any form without panicking.
func FuzzPostPolicy(f *testing.F) {
	f.Add(`{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","up/"],["content-length-range",1,10]]}`, "up/k")
	f.Add(`{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","$acl","public-read"],["content-length-range","1","x"]]}`, "")
	f.Add(`{"conditions":[]}`, "k")
	f.Fuzz(func(t *testing.T, doc, key string) {
		p, err := parsePostPolicy(base64.StdEncoding.EncodeToString([]byte(doc)))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "InvalidPolicyDocument") && !strings.Contains(err.Error(), "Invalid Policy") {
				t.Fatalf("refusal is not InvalidPolicyDocument: %v", err)
			}
			return
		}
		_ = p.check(map[string]string{"key": key, "acl": "private"}, "b", time.Now())
	})
}

// TestPostObjectPolicyConditions: a POST form's fields that stand for a
// PUT's headers are the bucket policy's condition keys as those headers
// are, so a policy that denies public uploads denies them by POST too.
func TestPostObjectPolicyConditions(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/posts", nil), 200)
	e.must(e.do(a, "PUT", "/posts?policy", policyOf(`{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::posts/*",`+
		`"Condition":{"StringEquals":{"s3:x-amz-acl":["public-read","public-read-write"]}}}`)), 204)
	e.wantErr(e.do(a, "PUT", "/posts/by-put", []byte("x"), "x-amz-acl", "public-read"), 403, "AccessDenied")
	hour := time.Now().Add(time.Hour)
	conds := []any{map[string]string{"bucket": "posts"}, []any{"starts-with", "$key", ""}, []any{"starts-with", "$acl", ""}}
	e.wantErr(e.post("/posts", postFormV4(e.alice, hour, conds, postField{"key", "by-post"}, postField{"acl", "public-read"}), "f", []byte("x")), 403, "AccessDenied")
	e.wantErr(e.do(anon, "GET", "/posts/by-post", nil), 403, "AccessDenied")
	e.must(e.post("/posts", postFormV4(e.alice, hour, conds, postField{"key", "by-post"}, postField{"acl", "private"}), "f", []byte("x")), 204)
}
