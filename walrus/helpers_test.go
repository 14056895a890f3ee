package walrus

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/logbuf"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/store"
)

// cred is an account's access key, as a client holds it.
type cred struct {
	account, name string
	akid, secret  string
}

// storeKeys looks access keys up in the store, as the clc does.
type storeKeys struct{ st *store.Store }

func (k storeKeys) LookupAccessKey(ctx context.Context, akid string) (principal.Principal, string, error) {
	key, err := k.st.AccessKeyByID(ctx, akid)
	if errors.Is(err, store.ErrNotFound) {
		return principal.Principal{}, "", awsauth.ErrUnknownKey
	}
	if err != nil {
		return principal.Principal{}, "", err
	}
	a, err := k.st.AccountByID(ctx, key.AccountID)
	if err != nil {
		return principal.Principal{}, "", err
	}
	return principal.Principal{AccountID: a.ID, AccountName: a.Name, UserName: key.UserName, AccessKeyID: key.ID}, key.Secret, nil
}

func (k storeKeys) AccountName(ctx context.Context, id string) (string, error) {
	a, err := k.st.AccountByID(ctx, id)
	return a.Name, err
}

// testEnv is a Walrus over a real store and filesystem, served over HTTP,
// with two accounts.
type testEnv struct {
	t          *testing.T
	cfg        *conf.Config
	st         *store.Store
	w          *Walrus
	srv        *httptest.Server
	alice, bob cred
	logs       *logbuf.Buffer
}

func newEnv(t *testing.T, mutate ...func(*conf.Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	cfg := conf.Defaults()
	cfg.Region = "us-euca-1" // the region the helpers sign for
	cfg.Home = t.TempDir()
	cfg.WalrusBucketsPath = t.TempDir()
	cfg.WalrusMaxBuckets = 0
	cfg.WalrusMaxBucketSizeMB = 0
	for _, m := range mutate {
		m(cfg)
	}
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &testEnv{t: t, cfg: cfg, st: st, logs: &logbuf.Buffer{}}
	for i, c := range []*cred{&e.alice, &e.bob} {
		*c = cred{account: fmt.Sprintf("11112222333%d", i), name: []string{"alice", "bob"}[i],
			akid: fmt.Sprintf("AKIATEST%012d", i), secret: fmt.Sprintf("secret-%d", i)}
		if err := st.CreateAccount(ctx, store.Account{ID: c.account, Name: c.name},
			store.AccessKey{ID: c.akid, AccountID: c.account, UserName: "admin", Secret: c.secret},
			store.UserCert{Fingerprint: fmt.Sprint(i), AccountID: c.account, UserName: "admin", CertPEM: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	e.w, err = New(ctx, Options{Conf: cfg, Store: st, Keys: storeKeys{st}, Log: log, Hostname: "cloud.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.w)
	t.Cleanup(e.srv.Close)
	return e
}

// signer signs a request the way a client would.
type signer func(r *http.Request, body []byte)

// anon sends no signature.
func anon(*http.Request, []byte) {}

func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// v4 signs with SigV4 in the Authorization header. payload is the
// x-amz-content-sha256 to send ("" for the hash of body).
func v4(c cred, payload string) signer {
	return v4At(c, payload, time.Now())
}

func v4At(c cred, payload string, now time.Time) signer {
	return func(r *http.Request, body []byte) {
		payload := payload
		if payload == "" {
			payload = sha256Hex(body)
		}
		amzDate := now.UTC().Format("20060102T150405Z")
		r.Header.Set("X-Amz-Date", amzDate)
		r.Header.Set("X-Amz-Content-Sha256", payload)
		sig, signed, scope := v4Sign(c, r, amzDate, payload)
		r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", c.akid, scope, signed, sig))
	}
}

func v4Key(c cred, date string) []byte {
	k := hmacSHA256([]byte("AWS4"+c.secret), date)
	k = hmacSHA256(k, "us-euca-1")
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

func v4Sign(c cred, r *http.Request, amzDate, payload string) (sig, signedHeaders, scope string) {
	names := []string{"host"}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") || lk == "content-md5" || lk == "content-type" || lk == "range" {
			names = append(names, lk)
		}
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		v := r.Host
		if n != "host" {
			v = strings.TrimSpace(r.Header.Get(n))
		}
		ch.WriteString(n + ":" + v + "\n")
	}
	var qs []string
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			qs = append(qs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(qs)
	signedHeaders = strings.Join(names, ";")
	creq := strings.Join([]string{r.Method, r.URL.EscapedPath(), strings.Join(qs, "&"), ch.String(), signedHeaders, payload}, "\n")
	scope = amzDate[:8] + "/us-euca-1/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(creq))
	return hex.EncodeToString(hmacSHA256(v4Key(c, amzDate[:8]), sts)), signedHeaders, scope
}

// v2 signs with the S3 SigV2 header, dated the way euca2ools dates it.
func v2(c cred) signer {
	return func(r *http.Request, body []byte) {
		date := time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 -0000")
		r.Header.Set("Date", date)
		var amz []string
		for k := range r.Header {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
				amz = append(amz, lk+":"+strings.TrimSpace(r.Header.Get(k))+"\n")
			}
		}
		sort.Strings(amz)
		resource := r.URL.EscapedPath()
		if resource != "/" && !strings.Contains(resource[1:], "/") {
			resource += "/"
		}
		var subs []string
		for k, vs := range r.URL.Query() {
			switch k {
			case "acl", "uploads", "uploadId", "partNumber", "tagging", "delete", "location", "policy", "cors", "versioning":
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
		sts := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" + date + "\n" + strings.Join(amz, "") + resource
		h := hmac.New(sha1.New, []byte(c.secret))
		h.Write([]byte(sts))
		r.Header.Set("Authorization", "AWS "+c.akid+":"+base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
}

// presignV4 returns a presigned GET URL for path.
func (e *testEnv) presignV4(c cred, method, path string, expires int) string {
	now := time.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	u, _ := url.Parse(e.srv.URL + path)
	q := u.Query()
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", c.akid+"/"+amzDate[:8]+"/us-euca-1/s3/aws4_request")
	q.Set("X-Amz-Date", amzDate)
	q.Set("X-Amz-Expires", fmt.Sprint(expires))
	q.Set("X-Amz-SignedHeaders", "host")
	u.RawQuery = q.Encode()
	r := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}}
	var qs []string
	for k, vs := range q {
		qs = append(qs, uriEncode(k)+"="+uriEncode(vs[0]))
	}
	sort.Strings(qs)
	creq := strings.Join([]string{method, u.EscapedPath(), strings.Join(qs, "&"), "host:" + r.Host + "\n", "host", "UNSIGNED-PAYLOAD"}, "\n")
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + amzDate[:8] + "/us-euca-1/s3/aws4_request\n" + sha256Hex([]byte(creq))
	sig := hex.EncodeToString(hmacSHA256(v4Key(c, amzDate[:8]), sts))
	return u.String() + "&X-Amz-Signature=" + sig
}

// resp is an answer, read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// code is the S3 error code of an answer, "" when it has none.
func (r resp) code() string {
	var doc struct {
		Code string `xml:"Code"`
	}
	_ = xml.Unmarshal(r.body, &doc)
	return doc.Code
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends a request; headers are name, value pairs.
func (e *testEnv) do(sign signer, method, path string, body []byte, headers ...string) resp {
	e.t.Helper()
	r, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == nil {
		r.Body = nil
		r.ContentLength = 0
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			r.Host = headers[i+1]
			continue
		}
		r.Header.Set(headers[i], headers[i+1])
	}
	sign(r, body)
	return e.send(r)
}

func (e *testEnv) send(r *http.Request) resp {
	e.t.Helper()
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must fails the test unless the answer has the status.
func (e *testEnv) must(r resp, status int) resp {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// wantErr fails the test unless the answer is the error.
func (e *testEnv) wantErr(r resp, status int, code string) {
	e.t.Helper()
	if r.status != status || r.code() != code {
		e.t.Errorf("got %d %q, want %d %s: %s", r.status, r.code(), status, code, r.body)
	}
}

func md5b64(b []byte) string {
	s := md5sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// smallParts lets a test make multipart uploads of small parts.
func smallParts(t *testing.T) {
	old := minPartSize
	minPartSize = 5
	t.Cleanup(func() { minPartSize = old })
}

func md5sum(b []byte) [16]byte { return md5.Sum(b) }

func crc32b64(b []byte) string {
	h := crc32.NewIEEE()
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
