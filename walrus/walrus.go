package walrus

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/edge"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/reqid"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/backend"
	"github.com/euca-cloud/euca/walrus/backend/fs"
)

// Keys is what Walrus needs of the cloud's accounts, which the cloud
// controller owns: in its process, or over its internal API when Walrus runs
// on a host of its own (roles/clc/clcapi).
type Keys interface {
	// LookupAccessKey resolves an access key to its owner and secret (the
	// same shape as queryapi.Keys); an unknown key is awsauth.ErrUnknownKey.
	LookupAccessKey(ctx context.Context, accessKeyID string) (principal.Principal, string, error)
	// AccountName is an account's name (an ACL's display name); an
	// unknown account is store.ErrNotFound.
	AccountName(ctx context.Context, accountID string) (string, error)
}

// Options configure New.
type Options struct {
	Conf  *conf.Config
	Store *store.Store
	Keys  Keys
	Log   *slog.Logger
	// Backend keeps object data; nil means the filesystem under
	// Conf.WalrusBucketsPath.
	Backend backend.Backend
	// Now is the clock signatures are checked against (tests pin it).
	Now func() time.Time
	// Hostname is this machine's host name for virtual-host addressing;
	// "" means os.Hostname().
	Hostname string
}

// Walrus serves the S3 API.
type Walrus struct {
	cfg   *conf.Config
	st    *store.Store
	be    backend.Backend
	keys  Keys
	log   *slog.Logger
	now   func() time.Time
	short string // this machine's short host name, lower case
}

// New returns the S3 handler, after sweeping what an earlier crash left in
// the backend.
func New(ctx context.Context, o Options) (*Walrus, error) {
	w := &Walrus{cfg: o.Conf, st: o.Store, be: o.Backend, keys: o.Keys, log: o.Log, now: o.Now}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.be == nil {
		b, err := fs.New(o.Conf.WalrusBucketsPath)
		if err != nil {
			return nil, fmt.Errorf("walrus: %w", err)
		}
		if err := b.SweepTrash(ctx); err != nil {
			return nil, fmt.Errorf("walrus: %w", err)
		}
		w.be = b
	}
	host := o.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	w.short, _, _ = strings.Cut(strings.ToLower(host), ".")
	if err := w.sweep(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// sweep makes sure every bucket has its space in the backend and removes
// blobs no row refers to: writes a crash interrupted, or replaced blobs
// whose deletion it prevented.
func (w *Walrus) sweep(ctx context.Context) error {
	buckets, err := w.st.WalrusBuckets(ctx, "")
	if err != nil {
		return fmt.Errorf("walrus: %w", err)
	}
	for _, b := range buckets {
		if err := w.be.CreateBucket(ctx, b.Name); err != nil {
			return fmt.Errorf("walrus: bucket %s: %w", b.Name, err)
		}
		keep, err := w.st.WalrusBlobs(ctx, b.Name)
		if err != nil {
			return fmt.Errorf("walrus: %w", err)
		}
		if err := w.be.Sweep(ctx, b.Name, func(id string) bool { return keep[id] }); err != nil {
			return fmt.Errorf("walrus: sweep bucket %s: %w", b.Name, err)
		}
	}
	return nil
}

// request is one S3 request as the handlers see it.
type request struct {
	http   *http.Request
	id     string
	op     string
	bucket string
	key    string
	vhost  bool
	// legacy: the path came under /services/Walrus.
	legacy bool
	query  url.Values
	// caller is the verified principal; anonymous when no signature came.
	caller    principal.Principal
	anonymous bool
	auth      awsauth.Result
	// body is the raw body of routes that take a small XML document,
	// read before the signature check; payload decodes it.
	body    []byte
	decoded []byte
	// bytesIn counts object data received, for the log.
	bytesIn int64
}

// callerID is the caller's canonical id (its account id), "" when anonymous.
func (r *request) callerID() string {
	if r.anonymous {
		return ""
	}
	return r.caller.AccountID
}

// response is what a handler returns; write sends it.
type response struct {
	status int
	header http.Header
	// doc is an XML document, encoded with the XML declaration.
	doc any
	// raw is a body sent as is (a bucket policy).
	raw []byte
	// body streams object data of length bytes; closer is closed after.
	body   io.Reader
	closer io.Closer
	length int64
}

func newResponse(status int) *response {
	return &response{status: status, header: http.Header{}}
}

func xmlResponse(doc any) *response {
	r := newResponse(http.StatusOK)
	r.doc = doc
	return r
}

// s3NS is the namespace of S3's XML documents.
const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

func (w *Walrus) ServeHTTP(rw http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	id := reqid.New()
	ctx := reqid.With(hr.Context(), id)
	r := &request{http: hr, id: id}
	resp, err := w.serve(ctx, r)
	w.applyCORS(ctx, rw.Header(), r)
	status, sent := w.write(ctx, rw, r, resp, err)
	attrs := []any{"op", r.op, "method", hr.Method, "bucket", r.bucket, "key", r.key, "status", status,
		"in", r.bytesIn, "out", sent, "ms", time.Since(start).Milliseconds(), "remote", hr.RemoteAddr}
	if r.anonymous {
		attrs = append(attrs, "account", "anonymous")
	} else if r.caller.AccountID != "" {
		attrs = append(attrs, "account", r.caller.AccountID)
	}
	if err != nil {
		e := awserr.From(err)
		attrs = append(attrs, "code", e.Code)
		if e.Cause != nil {
			attrs = append(attrs, "cause", e.Cause.Error())
		}
		if status >= 500 && status != http.StatusNotImplemented {
			w.log.ErrorContext(ctx, "request failed", attrs...)
			return
		}
	}
	w.log.InfoContext(ctx, "request", attrs...)
}

func (w *Walrus) serve(ctx context.Context, r *request) (*response, error) {
	if err := w.parseTarget(r); err != nil {
		return nil, err
	}
	rt, err := route(r)
	if err != nil {
		return nil, err
	}
	r.op = rt.op
	if rt.body == bodyXML {
		if err := r.readBody(); err != nil {
			return nil, err
		}
	}
	if err := w.authenticate(ctx, r); err != nil {
		return nil, err
	}
	if err := checkContentMD5(r.http.Header); err != nil {
		return nil, err
	}
	if !r.anonymous {
		ctx = principal.With(ctx, r.caller)
	}
	return rt.handler(w, ctx, r)
}

// parseTarget finds the bucket and key a request addresses.
func (w *Walrus) parseTarget(r *request) error {
	hr := r.http
	p := hr.URL.Path
	if rest, ok := strings.CutPrefix(p, edge.PathS3); ok && (rest == "" || rest[0] == '/') {
		p = rest
		r.legacy = true
	}
	p = strings.TrimPrefix(p, "/")
	if b := w.virtualHostBucket(hr.Host); b != "" {
		r.bucket, r.key, r.vhost = b, p, true
	} else {
		r.bucket, r.key, _ = strings.Cut(p, "/")
	}
	q, err := url.ParseQuery(hr.URL.RawQuery)
	if err != nil {
		return s3Errorf("InvalidArgument", "The query string is malformed.")
	}
	r.query = q
	return nil
}

// virtualHostBucket returns the bucket a Host header names, "" for the
// bare host (see the package documentation).
func (w *Walrus) virtualHostBucket(host string) string {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil || h == "" {
		return ""
	}
	if w.isServiceHost(h) {
		return ""
	}
	for i := 0; i < len(h); i++ {
		if h[i] == '.' && w.isServiceHost(h[i+1:]) {
			return h[:i]
		}
	}
	return ""
}

func (w *Walrus) isServiceHost(h string) bool {
	if h == "localhost" {
		return true
	}
	first, _, _ := strings.Cut(h, ".")
	return w.short != "" && first == w.short
}

// maxXMLBody bounds the XML documents requests carry (a DeleteObjects of
// 1000 keys of 1024 bytes is the largest).
const maxXMLBody = 2 << 20

// readBody reads the document of a route that takes one. It is read before
// the signature is checked, so it is bounded in size (a larger declared
// length is refused unread), in time (a body that stops coming ends with
// RequestTimeout) and, with the other documents in flight, in memory
// (SlowDown): see internal/httplimit.
func (r *request) readBody() error {
	b, err := httplimit.ReadDocument(r.http, maxXMLBody)
	switch {
	case errors.Is(err, httplimit.ErrTooLarge):
		return s3Error("MaxMessageLengthExceeded")
	case errors.Is(err, httplimit.ErrBusy):
		return s3Error("SlowDown").WithCause(err)
	case errors.Is(err, httplimit.ErrBodyTimeout):
		return s3Error("RequestTimeout").WithCause(err)
	case err != nil:
		return s3Errorf("IncompleteBody", "The request body could not be read.").WithCause(err)
	}
	r.body = b
	return nil
}

// authenticate verifies the signature and finds the caller. A request
// without any is anonymous; handlers check what an ACL grants it.
func (w *Walrus) authenticate(ctx context.Context, r *request) error {
	lookup := func(ctx context.Context, akid string) (string, error) {
		p, secret, err := w.keys.LookupAccessKey(ctx, akid)
		if err != nil {
			return "", err
		}
		r.caller = p
		return secret, nil
	}
	req := awsauth.Request{HTTP: r.http, Style: awsauth.StyleS3, Body: r.body}
	if r.vhost {
		req.Bucket = r.bucket
	}
	res, err := awsauth.Verify(ctx, req, lookup, w.now())
	if r.legacy && isSigV2(r.http) && awsauth.KindOf(err) == awsauth.KindBadSignature {
		// SigV2 clients of Eucalyptus (boto 2, euca2ools 3, botocore's
		// "s3" signer) sign the resource without the service path: try
		// it without /services/Walrus.
		req.HTTP = withoutLegacyPrefix(r.http)
		if res2, err2 := awsauth.Verify(ctx, req, lookup, w.now()); err2 == nil {
			res, err = res2, nil
		}
	}
	if res.Anonymous && errors.Is(err, awsauth.ErrMissing) {
		r.anonymous = true
		r.caller = principal.Principal{}
		return nil
	}
	if err != nil {
		r.caller = principal.Principal{}
		return authError(err, r.http)
	}
	r.auth = res
	return nil
}

// checkContentMD5 refuses a Content-MD5 that is not the base64 of an MD5,
// an empty one included, as S3 does (InvalidDigest): a client that sent the
// header meant its body to be checked, and an empty value must not pass for
// no check at all.
func checkContentMD5(h http.Header) error {
	vs, ok := h["Content-Md5"]
	if !ok {
		return nil
	}
	if len(vs) != 1 {
		return s3Error("InvalidDigest")
	}
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(vs[0]))
	if err != nil || len(sum) != md5.Size {
		return s3Error("InvalidDigest")
	}
	return nil
}

// isSigV2 reports an S3 SigV2 request: the "AWS" Authorization header or
// its presigned form.
func isSigV2(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		return strings.HasPrefix(h, "AWS ")
	}
	q := r.URL.Query()
	return q.Has("AWSAccessKeyId") && q.Has("Signature")
}

// withoutLegacyPrefix is a shallow copy of r whose path lacks
// /services/Walrus.
func withoutLegacyPrefix(r *http.Request) *http.Request {
	c := *r
	u := *r.URL
	u.Path = strings.TrimPrefix(u.Path, edge.PathS3)
	u.RawPath = strings.TrimPrefix(u.RawPath, edge.PathS3)
	if u.Path == "" {
		u.Path = "/"
	}
	c.URL = &u
	return &c
}

// write sends a response or an error document; it returns the status and
// the bytes of object data sent.
func (w *Walrus) write(ctx context.Context, rw http.ResponseWriter, r *request, resp *response, err error) (int, int64) {
	h := rw.Header()
	h.Set(reqid.Header, r.id)
	h.Set("x-amz-id-2", r.id)
	h.Set("Server", "Walrus")
	if err == nil && resp != nil && resp.closer != nil {
		defer resp.closer.Close()
	}
	if err != nil {
		return w.writeError(rw, r, err), 0
	}
	for k, v := range resp.header {
		h[k] = v
	}
	status := resp.status
	if status == 0 {
		status = http.StatusOK
	}
	var body []byte
	switch {
	case resp.doc != nil:
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		if e := xml.NewEncoder(&buf).Encode(resp.doc); e != nil {
			return w.writeError(rw, r, awserr.Internal(fmt.Errorf("encode %s: %w", r.op, e))), 0
		}
		body = buf.Bytes()
		h.Set("Content-Type", "application/xml")
	case resp.raw != nil:
		body = resp.raw
	}
	if resp.body != nil {
		h.Set("Content-Length", strconv.FormatInt(resp.length, 10))
		rw.WriteHeader(status)
		if r.http.Method == http.MethodHead {
			return status, 0
		}
		n, e := io.Copy(rw, resp.body)
		if e != nil {
			w.log.WarnContext(ctx, "sending object data", "bucket", r.bucket, "key", r.key, "sent", n, "err", e)
		}
		return status, n
	}
	noBody := status == http.StatusNoContent || status == http.StatusNotModified
	if (r.http.Method != http.MethodHead || body != nil) && !noBody {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	rw.WriteHeader(status)
	if r.http.Method != http.MethodHead && !noBody {
		_, _ = rw.Write(body)
	}
	return status, 0
}

// errorDoc is S3's error document.
type errorDoc struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	BucketName string `xml:",omitempty"`
	Key        string `xml:",omitempty"`
	Resource   string
	// HeadersNotSigned names the x-amz-* headers a signature left out.
	HeadersNotSigned string `xml:",omitempty"`
	RequestID        string `xml:"RequestId"`
	HostID           string `xml:"HostId"`
}

func (w *Walrus) writeError(rw http.ResponseWriter, r *request, err error) int {
	e := awserr.From(err)
	h := rw.Header()
	doc := errorDoc{Code: e.Code, Message: e.Message, Resource: r.http.URL.Path, RequestID: r.id, HostID: r.id}
	switch e.Code {
	case "NoSuchBucket":
		doc.BucketName = r.bucket
	case "NoSuchKey":
		doc.Key = r.key
	}
	var ae *awsauth.Error
	if errors.As(err, &ae) && ae.Kind == awsauth.KindUnsignedHeaders {
		doc.HeadersNotSigned = strings.Join(ae.Headers, ", ")
	}
	if e.Status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, PUT, POST, DELETE, HEAD")
	}
	// HEAD answers carry no body, errors included: the code is all a
	// client gets (botocore maps 404 to NotFound).
	if r.http.Method == http.MethodHead {
		rw.WriteHeader(e.Status)
		return e.Status
	}
	out, mErr := xml.Marshal(doc)
	if mErr != nil { // a fixed shape of strings
		out = nil
	}
	body := append([]byte(xml.Header), out...)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(e.Status)
	_, _ = rw.Write(body)
	return e.Status
}

// internal wraps an unexpected failure; its cause is logged, never sent.
func internal(format string, args ...any) *awserr.Error {
	return awserr.Internal(fmt.Errorf(format, args...))
}
