package awsauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const algoV4 = "AWS4-HMAC-SHA256"

// Payload hash values a SigV4 request may sign in place of the SHA-256 of
// its body (X-Amz-Content-Sha256).
const (
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// StreamingPayload: aws-chunked body, each chunk signed.
	StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// StreamingPayloadTrailer: signed chunks followed by signed trailers.
	StreamingPayloadTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	// StreamingUnsignedTrailer: unsigned chunks followed by trailers
	// (a checksum); only valid over TLS in AWS, accepted here as sent.
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// EmptySHA256 is the hex SHA-256 of an empty body.
	EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// credential is the Credential= / X-Amz-Credential value:
// AKID/yyyymmdd/region/service/aws4_request.
type credential struct {
	accessKey, date, region, service string
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/aws4_request"
}

func parseCredential(s string) (credential, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return credential{}, malformed("The credential must have the form ACCESS-KEY/yyyymmdd/region/service/aws4_request.")
	}
	for _, p := range parts {
		if p == "" {
			return credential{}, malformed("The credential must have the form ACCESS-KEY/yyyymmdd/region/service/aws4_request.")
		}
	}
	if _, err := time.Parse("20060102", parts[1]); err != nil {
		return credential{}, malformed("The credential date must be yyyymmdd.")
	}
	return credential{parts[0], parts[1], parts[2], parts[3]}, nil
}

// v4Auth is a parsed SigV4 Authorization header.
type v4Auth struct {
	cred          credential
	signedHeaders []string
	signature     []byte
}

// parseV4Authorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex
//
// The three components may come in any order, with or without spaces
// after the commas; each must appear exactly once.
func parseV4Authorization(h string) (v4Auth, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), algoV4+" ")
	if !ok {
		return v4Auth{}, malformed("The authorization header must start with " + algoV4 + ".")
	}
	var a v4Auth
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return v4Auth{}, malformed("The authorization header is malformed; each component must be key=value.")
		}
		var err error
		switch {
		case k == "Credential" && !haveCred:
			haveCred = true
			a.cred, err = parseCredential(v)
		case k == "SignedHeaders" && !haveSigned:
			haveSigned = true
			a.signedHeaders, err = parseSignedHeaders(v)
		case k == "Signature" && !haveSig:
			haveSig = true
			a.signature, err = parseHexSignature(v)
		default:
			return v4Auth{}, malformed("The authorization header is malformed; unexpected or repeated component.")
		}
		if err != nil {
			return v4Auth{}, err
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return v4Auth{}, malformed("The authorization header is malformed; Credential, SignedHeaders and Signature are required.")
	}
	return a, nil
}

// parseSignedHeaders splits "host;x-amz-date". The order is kept: it is
// the order the client canonicalised in (sorted, for every real client).
func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, malformed("SignedHeaders must not be empty.")
	}
	names := strings.Split(s, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n, " \t:") || slices.Contains(names[:i], n) {
			return nil, malformed("SignedHeaders must be a list of distinct lower-case header names separated by ';'.")
		}
	}
	if !slices.Contains(names, "host") {
		return nil, malformed("The host header must be signed.")
	}
	return names, nil
}

func parseHexSignature(s string) ([]byte, error) {
	if len(s) != 2*sha256.Size {
		return nil, malformed("The signature must be 64 hexadecimal digits.")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, malformed("The signature must be 64 hexadecimal digits.")
	}
	return b, nil
}

// isPayloadHash reports whether v may stand in the canonical request as the
// payload hash.
func isPayloadHash(v string) bool {
	switch v {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return true
	}
	if len(v) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// v4Check is everything the SigV4 computation needs once the request is
// parsed.
type v4Check struct {
	cred          credential
	signedHeaders []string
	signature     []byte
	amzDate       string // ISO 8601 basic, UTC
	canonQuery    string
	payloadHash   string
}

func verifyV4Header(ctx context.Context, req Request, h string, lookup SecretLookup, now time.Time) (Result, error) {
	r := req.HTTP
	a, err := parseV4Authorization(h)
	if err != nil {
		return Result{}, err
	}
	if err := checkScopeService(req, a.cred.service, false); err != nil {
		return Result{}, err
	}
	if err := checkAmzHeadersSigned(req, a.signedHeaders, false); err != nil {
		return Result{}, err
	}
	// The date is X-Amz-Date, or the Date header when there is none; the
	// one used must be signed, or it could be replayed with a fresh date.
	// An X-Amz-Date that is present counts even when empty: falling back
	// to Date would sign a request with a date its sender did not mean.
	var t time.Time
	if vs := r.Header.Values("X-Amz-Date"); len(vs) > 0 {
		if t, err = time.Parse(iso8601Basic, vs[0]); err != nil || len(vs) > 1 {
			return Result{}, noDate("X-Amz-Date must be one date in ISO 8601 basic format (yyyyMMddTHHmmssZ).")
		}
		if !slices.Contains(a.signedHeaders, "x-amz-date") {
			return Result{}, malformed("The x-amz-date header must be signed.")
		}
	} else if vs := r.Header.Values("Date"); len(vs) > 0 {
		var ok bool
		if t, ok = parseHTTPDate(vs[0]); !ok || len(vs) > 1 {
			return Result{}, noDate("The Date header is not a valid HTTP date.")
		}
		if !slices.Contains(a.signedHeaders, "date") {
			return Result{}, malformed("The date header must be signed.")
		}
	} else {
		return Result{}, noDate("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	amzDate := t.UTC().Format(iso8601Basic)
	if a.cred.date != amzDate[:8] {
		return Result{}, malformed("The date in the credential scope does not match the request date.")
	}

	// The payload hash: the X-Amz-Content-Sha256 header when present (S3
	// always sends it; it may be UNSIGNED-PAYLOAD or STREAMING-*),
	// otherwise the hash of the body the caller read.
	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload != "":
		if !isPayloadHash(payload) {
			return Result{}, malformed("x-amz-content-sha256 must be a hex SHA-256 or one of UNSIGNED-PAYLOAD, STREAMING-*.")
		}
		if !slices.Contains(a.signedHeaders, "x-amz-content-sha256") {
			return Result{}, malformed("The x-amz-content-sha256 header must be signed.")
		}
		// The Query APIs carry their parameters in the body: a body the
		// signature does not cover could be rewritten in flight.
		if req.Style != StyleS3 && len(payload) != 2*sha256.Size {
			return Result{}, unsupported("This API requires a signed payload.")
		}
	default:
		payload = sha256Hex(req.Body)
	}
	pairs, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return Result{}, err
	}
	c := v4Check{
		cred:          a.cred,
		signedHeaders: a.signedHeaders,
		signature:     a.signature,
		amzDate:       amzDate,
		canonQuery:    canonicalQueryV4(pairs, ""),
		payloadHash:   payload,
	}
	if err := checkSkew(t, now); err != nil {
		return Result{}, err
	}
	res, err := c.verify(ctx, req, lookup)
	if err != nil {
		return Result{}, err
	}
	// The signature covers the declared hash; the body must match it.
	if req.Body != nil && len(payload) == 2*sha256.Size && payload != sha256Hex(req.Body) {
		return Result{}, errPayloadMismatch
	}
	return res, nil
}

func verifyV4Query(ctx context.Context, req Request, pairs []queryPair, lookup SecretLookup, now time.Time) (Result, error) {
	r := req.HTTP
	params := map[string]string{}
	for _, p := range pairs {
		if strings.HasPrefix(p.key, "X-Amz-") {
			if _, dup := params[p.key]; dup {
				return Result{}, malformed("Query parameter " + p.key + " must appear only once.")
			}
			params[p.key] = p.value
		}
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if _, ok := params[k]; !ok {
			return Result{}, malformed("Query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	if params["X-Amz-Algorithm"] != algoV4 {
		return Result{}, unsupported("X-Amz-Algorithm only supports " + algoV4 + ".")
	}
	cred, err := parseCredential(params["X-Amz-Credential"])
	if err != nil {
		return Result{}, err
	}
	if err := checkScopeService(req, cred.service, true); err != nil {
		return Result{}, err
	}
	t, err := time.Parse(iso8601Basic, params["X-Amz-Date"])
	if err != nil {
		return Result{}, malformed(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	if cred.date != params["X-Amz-Date"][:8] {
		return Result{}, malformed("The date in the credential scope does not match X-Amz-Date.")
	}
	exp, err := strconv.Atoi(params["X-Amz-Expires"])
	if err != nil || exp < 1 {
		return Result{}, malformed("X-Amz-Expires must be a positive number of seconds.")
	}
	if time.Duration(exp)*time.Second > MaxPresignExpires {
		return Result{}, malformed("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds.")
	}
	signed, err := parseSignedHeaders(params["X-Amz-SignedHeaders"])
	if err != nil {
		return Result{}, err
	}
	if err := checkAmzHeadersSigned(req, signed, true); err != nil {
		return Result{}, err
	}
	sig, err := parseHexSignature(params["X-Amz-Signature"])
	if err != nil {
		return Result{}, err
	}

	// A presigned URL is made before the body exists: S3 signs
	// UNSIGNED-PAYLOAD unless the URL itself carries a hash; other
	// services hash the (usually empty) body.
	payload := params["X-Amz-Content-Sha256"]
	switch {
	case payload != "":
		if !isPayloadHash(payload) {
			return Result{}, malformed("X-Amz-Content-Sha256 must be a hex SHA-256 or UNSIGNED-PAYLOAD.")
		}
	case req.Style == StyleS3:
		payload = UnsignedPayload
		if v := r.Header.Get("X-Amz-Content-Sha256"); v != "" && slices.Contains(signed, "x-amz-content-sha256") && isPayloadHash(v) {
			payload = v
		}
	default:
		payload = sha256Hex(req.Body)
	}
	if req.Style != StyleS3 && len(payload) != 2*sha256.Size {
		return Result{}, unsupported("This API requires a signed payload.")
	}

	// Presigned URLs are bounded by their expiry, not by clock skew, but
	// one dated in the future is refused as S3 does.
	switch {
	case t.Sub(now) > MaxSkew:
		return Result{}, errPresignNotYet
	case now.After(t.Add(time.Duration(exp) * time.Second)):
		return Result{}, errPresignExpired
	}
	c := v4Check{
		cred:          cred,
		signedHeaders: signed,
		signature:     sig,
		amzDate:       params["X-Amz-Date"],
		canonQuery:    canonicalQueryV4(pairs, "X-Amz-Signature"),
		payloadHash:   payload,
	}
	res, err := c.verify(ctx, req, lookup)
	if err != nil {
		return Result{}, err
	}
	if req.Body != nil && len(payload) == 2*sha256.Size && payload != sha256Hex(req.Body) {
		return Result{}, errPayloadMismatch
	}
	res.Presigned = true
	return res, nil
}

// checkScopeService refuses a credential scoped to another service than
// the API that answers: a signature made for S3 must not be accepted by EC2
// (nor the reverse) just because both share a key and an endpoint. S3
// reports it as a malformed header or query (AuthorizationHeaderMalformed,
// AuthorizationQueryParametersError); the Query APIs as a signature that
// does not match (EC2 AuthFailure, STS and IAM SignatureDoesNotMatch),
// with AWS's own words.
func checkScopeService(req Request, got string, presigned bool) error {
	want, err := req.scopeService()
	if err != nil {
		return err
	}
	if got == want {
		return nil
	}
	if req.Style != StyleS3 {
		return &Error{Kind: KindBadSignature, Msg: "Credential should be scoped to correct service: '" + want + "'."}
	}
	msg := fmt.Sprintf("incorrect service %q. This endpoint belongs to %q.", got, want)
	if presigned {
		return malformed("Error parsing the X-Amz-Credential parameter; " + msg)
	}
	return malformed("The authorization header is malformed; " + msg)
}

// checkAmzHeadersSigned refuses an S3 request that carries an x-amz-*
// header its signature does not list, as S3 does. Unsigned, such a header
// could be added to a captured request or a presigned URL and change what
// it does: x-amz-copy-source turns an upload into a copy of an object the
// signer can read, x-amz-acl or x-amz-grant-* give it away. A presigned
// URL may carry x-amz-content-sha256 unsigned (S3 accepts it there): it is
// then ignored, the payload hash being UNSIGNED-PAYLOAD or the query's.
// The Query APIs take their parameters from the signed query or body, not
// from x-amz-* headers, and AWS does not apply the rule to them.
func checkAmzHeadersSigned(req Request, signed []string, presigned bool) error {
	if req.Style != StyleS3 {
		return nil
	}
	var unsigned []string
	for name := range req.HTTP.Header {
		lk := strings.ToLower(name)
		if !strings.HasPrefix(lk, "x-amz-") || slices.Contains(signed, lk) {
			continue
		}
		if presigned && lk == "x-amz-content-sha256" {
			continue
		}
		unsigned = append(unsigned, lk)
	}
	if len(unsigned) == 0 {
		return nil
	}
	slices.Sort(unsigned)
	return &Error{Kind: KindUnsignedHeaders, Headers: unsigned,
		Msg: "There were headers present in the request which were not signed"}
}

// verify looks the secret up, recomputes the signature and compares it.
func (c v4Check) verify(ctx context.Context, req Request, lookup SecretLookup) (Result, error) {
	secret, err := lookupSecret(ctx, lookup, c.cred.accessKey)
	if err != nil {
		return Result{}, err
	}
	key := signingKey(secret, c.cred.date, c.cred.region, c.cred.service)
	creq := canonicalRequestV4(req.HTTP, req.Style, c.canonQuery, c.signedHeaders, c.payloadHash)
	sts := stringToSignV4(c.amzDate, c.cred.scope(), creq)
	want := hmacSHA256(key, sts)
	if !hmac.Equal(want, c.signature) {
		return Result{}, ErrBadSignature
	}
	return Result{
		AccessKeyID: c.cred.accessKey,
		Version:     4,
		Region:      c.cred.region,
		Service:     c.cred.service,
		Date:        c.amzDate,
		Signature:   hex.EncodeToString(want),
		SigningKey:  key,
		PayloadHash: c.payloadHash,
	}, nil
}

// canonicalRequestV4 is
//
//	Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
//
// with one "name:value\n" line per signed header.
func canonicalRequestV4(r *http.Request, style Style, canonQuery string, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURIV4(r.URL.EscapedPath(), style))
	b.WriteByte('\n')
	b.WriteString(canonQuery)
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalHeaderValue is a header's values, each trimmed with inner runs
// of white space folded to one space, joined by commas. Go's server moves
// Host to r.Host and Transfer-Encoding to r.TransferEncoding, and a test
// request may carry Content-Length only in r.ContentLength: they are read
// back from there. A signed header that is absent signs as empty, so the
// signature simply fails to match.
func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		h := r.Host
		if h == "" {
			h = r.URL.Host
		}
		vals = []string{h}
	case "transfer-encoding":
		vals = r.Header.Values("Transfer-Encoding")
		if len(vals) == 0 {
			vals = r.TransferEncoding
		}
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		vals = r.Header.Values(name)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func stringToSignV4(amzDate, scope, canonicalRequest string) string {
	h := sha256.Sum256([]byte(canonicalRequest))
	return algoV4 + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

// signingKey derives the SigV4 key: HMAC chained over date, region,
// service and "aws4_request", starting from "AWS4"+secret.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
