package walrus

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// errDoc is the S3 error document, with the fields these tests look at.
type errDoc struct {
	Code, Message, HeadersNotSigned string
}

func (r resp) errDoc(t *testing.T) errDoc {
	t.Helper()
	var d errDoc
	if err := xml.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("error document: %v: %s", err, r.body)
	}
	return d
}

// A presigned PUT for one key must not become, by headers added to it, a
// copy of another object or a grant to the world or to another account.
func TestUnsignedAmzHeadersRefused(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/priv", nil), 200)
	e.must(e.do(a, "PUT", "/priv/secret", []byte("secret-data")), 200)
	e.must(e.do(a, "PUT", "/upload", nil), 200)

	for _, extra := range [][]string{
		{"X-Amz-Copy-Source", "/priv/secret", "X-Amz-Acl", "public-read"},
		{"X-Amz-Grant-Full-Control", "id=" + e.bob.account},
		{"X-Amz-Meta-Note", "hello"},
	} {
		r, err := http.NewRequest("PUT", e.presignV4(e.alice, "PUT", "/upload/k", 300), strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := 0; i < len(extra); i += 2 {
			r.Header.Set(extra[i], extra[i+1])
			names = append(names, strings.ToLower(extra[i]))
		}
		sort.Strings(names)
		got := e.send(r)
		e.wantErr(got, 403, "AccessDenied")
		d := got.errDoc(t)
		if d.Message != "There were headers present in the request which were not signed" || d.HeadersNotSigned != strings.Join(names, ", ") {
			t.Errorf("%v: %+v", extra, d)
		}
		e.wantErr(e.do(a, "GET", "/upload/k", nil), 404, "NoSuchKey")
	}
	// The presigned URL itself still works, and the source was never
	// touched nor published.
	r, _ := http.NewRequest("PUT", e.presignV4(e.alice, "PUT", "/upload/k", 300), strings.NewReader("own data"))
	e.must(e.send(r), 200)
	if got := e.must(e.do(a, "GET", "/upload/k", nil), 200); string(got.body) != "own data" {
		t.Errorf("uploaded %q", got.body)
	}
	e.wantErr(e.do(anon, "GET", "/priv/secret", nil), 403, "AccessDenied")

	// A header-signed request: a header added after signing is refused.
	signThenAdd := func(r *http.Request, body []byte) {
		a(r, body)
		r.Header.Set("X-Amz-Acl", "public-read")
	}
	e.wantErr(e.do(signThenAdd, "PUT", "/upload/k2", []byte("x")), 403, "AccessDenied")
	e.wantErr(e.do(a, "GET", "/upload/k2", nil), 404, "NoSuchKey")
}

// v4For signs like v4, with the credential scope of another service.
func v4For(c cred, service string) signer {
	return func(r *http.Request, body []byte) {
		amzDate := time.Now().UTC().Format("20060102T150405Z")
		r.Header.Set("X-Amz-Date", amzDate)
		r.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
		_, signed, _ := v4Sign(c, r, amzDate, sha256Hex(body))
		// v4Sign signs for s3; redo the last steps for service.
		var ch strings.Builder
		for _, n := range strings.Split(signed, ";") {
			v := r.Host
			if n != "host" {
				v = strings.TrimSpace(r.Header.Get(n))
			}
			ch.WriteString(n + ":" + v + "\n")
		}
		creq := strings.Join([]string{r.Method, r.URL.EscapedPath(), "", ch.String(), signed, sha256Hex(body)}, "\n")
		scope := amzDate[:8] + "/us-euca-1/" + service + "/aws4_request"
		k := hmacSHA256([]byte("AWS4"+c.secret), amzDate[:8])
		k = hmacSHA256(hmacSHA256(hmacSHA256(k, "us-euca-1"), service), "aws4_request")
		sig := hex.EncodeToString(hmacSHA256(k, "AWS4-HMAC-SHA256\n"+amzDate+"\n"+scope+"\n"+sha256Hex([]byte(creq))))
		r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", c.akid, scope, signed, sig))
	}
}

// A request signed for another service is not S3's to accept.
func TestScopeOfAnotherServiceRefused(t *testing.T) {
	e := newEnv(t)
	e.must(e.do(v4For(e.alice, "s3"), "PUT", "/photos", nil), 200)
	for _, svc := range []string{"ec2", "sts", "iam"} {
		r := e.do(v4For(e.alice, svc), "PUT", "/photos/k", []byte("x"))
		e.wantErr(r, 400, "AuthorizationHeaderMalformed")
		if d := r.errDoc(t); d.Message != fmt.Sprintf("The authorization header is malformed; incorrect service %q. This endpoint belongs to \"s3\".", svc) {
			t.Errorf("%s: %q", svc, d.Message)
		}
	}
	e.wantErr(e.do(v4(e.alice, ""), "GET", "/photos/k", nil), 404, "NoSuchKey")
}

// euca2oolsV2 signs as euca2ools 3.x does (requestbuilder's HmacV1Auth):
// the resource is the request path less the endpoint's path, as sent, so a
// bucket-level request signs "/BUCKET" without the slash; the Date is
// email.utils.formatdate()'s "-0000" form.
func euca2oolsV2(c cred, endpointPath string) signer {
	return func(r *http.Request, body []byte) {
		date := time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 -0000")
		r.Header.Set("Date", date)
		resource := strings.TrimPrefix(r.URL.Path, endpointPath)
		if resource == "" {
			resource = "/"
		}
		var subs []string
		for k, vs := range r.URL.Query() {
			switch k {
			case "acl", "location", "logging", "policy", "uploadId", "uploads", "versioning":
				if vs[0] == "" {
					subs = append(subs, k)
				} else {
					subs = append(subs, k+"="+vs[0])
				}
			}
		}
		sort.Strings(subs)
		if len(subs) > 0 {
			resource += "?" + strings.Join(subs, "&")
		}
		sts := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" + date + "\n" + resource
		h := hmac.New(sha1.New, []byte(c.secret))
		h.Write([]byte(sts))
		r.Header.Set("Authorization", "AWS "+c.akid+":"+base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
}

// euca-upload-bundle, euca-bundle-and-upload-image and euca-delete-bundle
// --clear: their bucket-level requests under /services/Walrus sign the
// resource "/BUCKET", without the slash Walrus used to add.
func TestEuca2oolsBucketRequests(t *testing.T) {
	e := newEnv(t)
	eu := euca2oolsV2(e.alice, "/services/Walrus")
	e.wantErr(e.do(eu, "GET", "/services/Walrus/bundles?max-keys=0", nil), 404, "NoSuchBucket")
	e.must(e.do(eu, "PUT", "/services/Walrus/bundles", nil), 200)
	e.must(e.do(eu, "GET", "/services/Walrus/bundles?max-keys=0", nil), 200)
	e.must(e.do(eu, "GET", "/services/Walrus/bundles?acl", nil), 200)
	e.must(e.do(eu, "PUT", "/services/Walrus/bundles/img.part.0", []byte("part")), 200)
	e.must(e.do(eu, "DELETE", "/services/Walrus/bundles/img.part.0", nil), 204)
	// Against an endpoint without the service path, path style.
	root := euca2oolsV2(e.alice, "")
	e.must(e.do(root, "GET", "/bundles?max-keys=0", nil), 200)

	// A wrong signature is still refused: another secret, or the
	// signature of another bucket.
	otherBucket := func(r *http.Request, body []byte) {
		o := r.Clone(r.Context())
		o.URL.Path += "x"
		eu(o, body)
		r.Header = o.Header
	}
	for _, wrong := range []signer{euca2oolsV2(cred{akid: e.alice.akid, secret: "wrong"}, "/services/Walrus"), otherBucket} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			e.wantErr(e.do(wrong, m, "/services/Walrus/bundles?max-keys=0", nil), 403, "SignatureDoesNotMatch")
		}
	}
	e.must(e.do(eu, "DELETE", "/services/Walrus/bundles", nil), 204)
	e.wantErr(e.do(v4(e.alice, ""), "HEAD", "/bundles", nil), 404, "")
}

// A missing, empty or unreadable date, and an empty Content-MD5, are
// refused with S3's codes.
func TestBadDateAndDigest(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/bkt", nil), 200)

	const noDate = "AWS authentication requires a valid Date or x-amz-date header"
	withDate := func(s signer, name, value string) signer {
		return func(r *http.Request, body []byte) {
			s(r, body)
			r.Header[name] = []string{value}
		}
	}
	for name, s := range map[string]signer{
		"sigv2 empty Date":          withDate(v2(e.alice), "Date", ""),
		"sigv2 Date garbage":        withDate(v2(e.alice), "Date", "tomorrow"),
		"sigv2 empty x-amz-date":    withDate(v2(e.alice), "X-Amz-Date", ""),
		"sigv4 empty x-amz-date":    withDate(a, "X-Amz-Date", ""),
		"sigv4 x-amz-date extended": withDate(a, "X-Amz-Date", "2026-11-25T01:32:24Z"),
	} {
		r := e.do(s, "PUT", "/bkt/k", []byte("data"))
		e.wantErr(r, 403, "AccessDenied")
		if d := r.errDoc(t); d.Message != noDate {
			t.Errorf("%s: %q", name, d.Message)
		}
	}
	for _, md5 := range []string{"", "not base64!", "YWJj"} {
		e.wantErr(e.do(a, "PUT", "/bkt/k", []byte("data"), "Content-MD5", md5), 400, "InvalidDigest")
		e.wantErr(e.do(v2(e.alice), "PUT", "/bkt/k", []byte("data"), "Content-MD5", md5), 400, "InvalidDigest")
	}
	e.wantErr(e.do(a, "GET", "/bkt/k", nil), 404, "NoSuchKey")
	e.must(e.do(a, "PUT", "/bkt/k", []byte("data"), "Content-MD5", md5b64([]byte("data"))), 200)
}
