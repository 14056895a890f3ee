// Package s3client is the small S3 client the bundle commands need
// (euca upload-bundle, delete-bundle): check and create a bucket, put a file
// with a canned ACL, get a small object, delete objects. Requests are path
// style against an endpoint that may carry a path (S3_URL is
// http://host:8773/services/Walrus) and signed with SigV4; no AWS SDK is a
// dependency of the project, and this is all the bundle tools use of S3.
package s3client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// Client talks to one S3 endpoint with one access key.
type Client struct {
	endpoint     *url.URL
	accessKey    string
	secretKey    string
	sessionToken string
	region       string
	// HTTP defaults to a client without overall timeout: parts are large.
	HTTP *http.Client
	// Now is the signing clock (tests set it).
	Now func() time.Time
}

// New returns a client for endpoint (http[s]://host[:port][/path]).
// Region is the SigV4 scope's region; "" means us-east-1.
func New(endpoint, accessKey, secretKey, sessionToken, region string) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3: endpoint %q is not an http(s) URL", endpoint)
	}
	if accessKey == "" || secretKey == "" {
		return nil, errors.New("s3: no access key or secret key")
	}
	if region == "" {
		region = "us-east-1"
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return &Client{endpoint: u, accessKey: accessKey, secretKey: secretKey, sessionToken: sessionToken,
		region: region, HTTP: &http.Client{}, Now: time.Now}, nil
}

// Error is an S3 error response.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
}

// IsCode tells whether err is an S3 error with that code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// HeadBucket reports whether the bucket exists (and is visible to us).
func (c *Client) HeadBucket(ctx context.Context, bucket string) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, bucket, "", nil, nil, emptyBody())
	if err != nil {
		if IsCode(err, "NoSuchBucket") {
			return false, nil
		}
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// CreateBucket creates a bucket, with a location constraint when one is
// given.
func (c *Client) CreateBucket(ctx context.Context, bucket, location string) error {
	b := emptyBody()
	if location != "" {
		doc := fmt.Sprintf(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>`, xmlEscape(location))
		b = bytesBody([]byte(doc))
	}
	resp, err := c.do(ctx, http.MethodPut, bucket, "", nil, nil, b)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// DeleteBucket deletes an (empty) bucket.
func (c *Client) DeleteBucket(ctx context.Context, bucket string) error {
	resp, err := c.do(ctx, http.MethodDelete, bucket, "", nil, nil, emptyBody())
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PutFile uploads a file as bucket/key with a canned ACL ("" for none).
// The file is read twice: once for its SHA-256 (which SigV4 signs) and
// MD5 (Content-MD5, which the server checks), once to send it.
func (c *Client) PutFile(ctx context.Context, bucket, key, path, acl string, progress func(done, total int64)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sh, m5 := sha256.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(sh, m5), f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-MD5", base64.StdEncoding.EncodeToString(m5.Sum(nil)))
	if acl != "" {
		h.Set("X-Amz-Acl", acl)
	}
	b := body{
		hash: hex.EncodeToString(sh.Sum(nil)),
		size: st.Size(),
		open: func() io.Reader {
			return &progressReader{r: io.NewSectionReader(f, 0, st.Size()), total: st.Size(), fn: progress}
		},
	}
	resp, err := c.do(ctx, http.MethodPut, bucket, key, nil, h, b)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Get returns a small object (a manifest), refusing more than limit bytes.
func (c *Client) Get(ctx context.Context, bucket, key string, limit int64) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, bucket, key, nil, nil, emptyBody())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("s3: %s/%s is larger than %d bytes", bucket, key, limit)
	}
	return data, nil
}

// Delete deletes bucket/key; deleting what is not there is not an error,
// as in S3.
func (c *Client) Delete(ctx context.Context, bucket, key string) error {
	resp, err := c.do(ctx, http.MethodDelete, bucket, key, nil, nil, emptyBody())
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// body is a request body that can be sent more than once (a redirect, a
// retry) and whose SHA-256 is known before it is sent.
type body struct {
	hash string
	size int64
	open func() io.Reader
}

var emptySHA256 = hex.EncodeToString(func() []byte { s := sha256.Sum256(nil); return s[:] }())

func emptyBody() body {
	return body{hash: emptySHA256, open: func() io.Reader { return http.NoBody }}
}

func bytesBody(b []byte) body {
	s := sha256.Sum256(b)
	return body{hash: hex.EncodeToString(s[:]), size: int64(len(b)), open: func() io.Reader { return bytes.NewReader(b) }}
}

// objectURL is the path-style URL of bucket/key under the endpoint, its
// path escaped as S3 signs it (each segment, unreserved characters bare).
func (c *Client) objectURL(bucket, key string, query url.Values) *url.URL {
	u := *c.endpoint
	p := u.Path + "/" + bucket
	if key != "" {
		p += "/" + key
	}
	u.Path = p
	u.RawPath = escapePath(p)
	u.RawQuery = canonicalQuery(query)
	return &u
}

func (c *Client) do(ctx context.Context, method, bucket, key string, query url.Values, h http.Header, b body) (*http.Response, error) {
	u := c.objectURL(bucket, key, query)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), b.open())
	if err != nil {
		return nil, err
	}
	if b.size > 0 {
		req.ContentLength = b.size
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(b.open()), nil }
	}
	for k, v := range h {
		req.Header[k] = v
	}
	c.sign(req, b.hash)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp, bucket, key)
}

func readError(resp *http.Response, bucket, key string) error {
	e := &Error{Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var doc struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(data, &doc) == nil && doc.Code != "" {
		e.Code, e.Message = doc.Code, doc.Message
		return e
	}
	// HEAD responses have no body: name the usual codes by status.
	switch {
	case resp.StatusCode == http.StatusNotFound && key == "":
		e.Code = "NoSuchBucket"
	case resp.StatusCode == http.StatusNotFound:
		e.Code = "NoSuchKey"
	case resp.StatusCode == http.StatusForbidden:
		e.Code = "AccessDenied"
	default:
		e.Code = http.StatusText(resp.StatusCode)
	}
	return e
}

type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.done, p.total)
	}
	return n, err
}

// sign adds SigV4 headers (Authorization, X-Amz-Date, X-Amz-Content-Sha256)
// to req, whose body has the given hex SHA-256.
func (c *Client) sign(req *http.Request, payloadHash string) {
	now := c.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	day := now.Format("20060102")
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if c.sessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.sessionToken)
	}
	// Sign every header we set, and Host.
	names := []string{"host"}
	values := map[string]string{"host": req.URL.Host}
	for k, v := range req.Header {
		lk := strings.ToLower(k)
		names = append(names, lk)
		values[lk] = strings.Join(trimAll(v), ",")
	}
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		ch.WriteString(n + ":" + values[n] + "\n")
	}
	signed := strings.Join(names, ";")
	canonical := strings.Join([]string{
		req.Method, req.URL.EscapedPath(), req.URL.RawQuery, ch.String(), signed, payloadHash,
	}, "\n")
	scope := day + "/" + c.region + "/s3/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	k := hmacSHA256([]byte("AWS4"+c.secretKey), day)
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, "s3")
	k = hmacSHA256(k, "aws4_request")
	sig := hex.EncodeToString(hmacSHA256(k, toSign))
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		c.accessKey, scope, signed, sig))
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func trimAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return out
}

// escape encodes as SigV4 wants: unreserved characters bare, the rest %XX.
func escape(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'A' <= ch && ch <= 'Z', 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9',
			ch == '-', ch == '_', ch == '.', ch == '~', keepSlash && ch == '/':
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

func escapePath(p string) string { return escape(p, true) }

func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, escape(k, false)+"="+escape(v, false))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
