package awsauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// verifyV2Query checks a SigV2 Query API request (EC2 from older clients,
// boto with signature_version='v2'). The string to sign is
//
//	METHOD \n host \n path \n canonical-params
//
// where host is the Host header lower-cased (with its port when it has
// one), and canonical-params are all parameters except Signature, sorted
// by name in byte order, names and values RFC 3986 encoded.
func verifyV2Query(ctx context.Context, req Request, lookup SecretLookup, now time.Time) (Result, error) {
	r, p := req.HTTP, req.Params
	for _, k := range []string{"AWSAccessKeyId", "Signature", "SignatureVersion", "SignatureMethod", "Timestamp", "Expires"} {
		if len(p[k]) > 1 {
			return Result{}, malformed("Parameter " + k + " must appear only once.")
		}
	}
	akid, sig := p.Get("AWSAccessKeyId"), p.Get("Signature")
	if akid == "" || sig == "" {
		return Result{}, malformed("Request must contain a signature that conforms to AWS standards: AWSAccessKeyId and Signature are required.")
	}
	switch v := p.Get("SignatureVersion"); v {
	case "2":
	case "":
		return Result{}, malformed("Request must contain SignatureVersion.")
	default:
		return Result{}, unsupported("SignatureVersion " + strconv.Quote(v) + " is not supported; use 2 or Signature Version 4.")
	}
	var newHash func() hash.Hash
	switch p.Get("SignatureMethod") {
	case "HmacSHA256":
		newHash = sha256.New
	case "HmacSHA1":
		newHash = sha1.New
	case "":
		return Result{}, malformed("Request must contain SignatureMethod.")
	default:
		return Result{}, unsupported("SignatureMethod must be HmacSHA256 or HmacSHA1.")
	}
	ts, exp := p.Get("Timestamp"), p.Get("Expires")
	var date string
	switch {
	case ts != "" && exp != "":
		return Result{}, malformed("Request must contain either a Timestamp or an Expires parameter, not both.")
	case ts != "":
		t, ok := parseISO8601(ts)
		if !ok {
			return Result{}, malformed("Timestamp must be an ISO 8601 date.")
		}
		if err := checkSkew(t, now); err != nil {
			return Result{}, err
		}
		date = ts
	case exp != "":
		t, ok := parseISO8601(exp)
		if !ok {
			return Result{}, malformed("Expires must be an ISO 8601 date.")
		}
		if now.After(t) {
			return Result{}, errPresignExpired
		}
		date = exp
	default:
		return Result{}, malformed("Request must contain a Timestamp or an Expires parameter.")
	}
	given, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return Result{}, ErrBadSignature
	}

	secret, err := lookupSecret(ctx, lookup, akid)
	if err != nil {
		return Result{}, err
	}
	sts := r.Method + "\n" + strings.ToLower(r.Host) + "\n" + escapedPath(r.URL) + "\n" + canonicalParamsV2(p)
	m := hmac.New(newHash, []byte(secret))
	m.Write([]byte(sts))
	if !hmac.Equal(m.Sum(nil), given) {
		return Result{}, ErrBadSignature
	}
	return Result{AccessKeyID: akid, Version: 2, Date: date, Signature: sig}, nil
}

// canonicalParamsV2 sorts the parameters by name (then value, should a
// name repeat) in byte order and encodes them RFC 3986 style.
func canonicalParamsV2(p url.Values) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vals := append([]string(nil), p[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(uriEncode(k, false))
			b.WriteByte('=')
			b.WriteString(uriEncode(v, false))
		}
	}
	return b.String()
}

// s3SubResources are the query parameters that SigV2 signs as part of the
// S3 resource: the AWS list, and those botocore, s3cmd and minio add.
var s3SubResources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true,
	"defaultObjectAcl": true, "delete": true, "encryption": true,
	"inventory": true, "legal-hold": true, "lifecycle": true,
	"location": true, "logging": true, "metrics": true,
	"notification": true, "object-lock": true, "partNumber": true,
	"policy": true, "replication": true, "requestPayment": true,
	"response-cache-control": true, "response-content-disposition": true,
	"response-content-encoding": true, "response-content-language": true,
	"response-content-type": true, "response-expires": true,
	"restore": true, "retention": true, "select": true,
	"select-type": true, "storageClass": true, "tagging": true,
	"torrent": true, "uploadId": true, "uploads": true,
	"versionId": true, "versioning": true, "versions": true,
	"website": true,
}

// verifyV2Header checks "Authorization: AWS AKID:base64(HMAC-SHA1)".
func verifyV2Header(ctx context.Context, req Request, h string, pairs []queryPair, lookup SecretLookup, now time.Time) (Result, error) {
	r := req.HTTP
	cred, ok := strings.CutPrefix(h, "AWS ")
	akid, sig, ok2 := strings.Cut(strings.TrimSpace(cred), ":")
	if !ok || !ok2 || akid == "" || sig == "" {
		return Result{}, malformed("The authorization header must have the form AWS AccessKeyId:Signature.")
	}
	// The date is x-amz-date when present, even empty (and the Date line
	// then signs empty), otherwise Date.
	dateLine := r.Header.Get("Date")
	raw := dateLine
	if vs := r.Header.Values("X-Amz-Date"); len(vs) > 0 {
		raw, dateLine = vs[0], ""
	}
	if raw == "" {
		return Result{}, noDate("AWS authentication requires a valid Date or x-amz-date header")
	}
	t, ok := parseHTTPDate(raw)
	if !ok {
		return Result{}, noDate("AWS authentication requires a valid Date or x-amz-date header")
	}
	if err := checkSkew(t, now); err != nil {
		return Result{}, err
	}
	if err := checkS3V2(ctx, lookup, akid, sig, stringsToSignS3V2(r, req.Bucket, pairs, strings.TrimSpace(dateLine), false)); err != nil {
		return Result{}, err
	}
	return Result{AccessKeyID: akid, Version: 2, Date: raw, Signature: sig}, nil
}

// verifyV2Presigned checks ?AWSAccessKeyId=..&Expires=unix&Signature=..,
// where Expires takes the place of the Date line.
func verifyV2Presigned(ctx context.Context, req Request, pairs []queryPair, lookup SecretLookup, now time.Time) (Result, error) {
	got := map[string]string{}
	for _, p := range pairs {
		switch p.key {
		case "AWSAccessKeyId", "Expires", "Signature":
			if _, dup := got[p.key]; dup {
				return Result{}, malformed("Query parameter " + p.key + " must appear only once.")
			}
			got[p.key] = p.value
		}
	}
	akid, sig, exp := got["AWSAccessKeyId"], got["Signature"], got["Expires"]
	if akid == "" || sig == "" || exp == "" {
		return Result{}, malformed("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters.")
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return Result{}, malformed("Expires must be a number of seconds since the epoch.")
	}
	if now.Unix() > secs {
		return Result{}, errPresignExpired
	}
	if err := checkS3V2(ctx, lookup, akid, sig, stringsToSignS3V2(req.HTTP, req.Bucket, pairs, exp, true)); err != nil {
		return Result{}, err
	}
	return Result{AccessKeyID: akid, Version: 2, Presigned: true, Date: exp, Signature: sig}, nil
}

// checkS3V2 accepts the signature when it signs any of the candidate
// strings to sign.
func checkS3V2(ctx context.Context, lookup SecretLookup, akid, sig string, candidates []string) error {
	// Some old clients leave the '+' of the base64 signature unescaped in
	// a URL, which then decodes as a space.
	given, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(sig, " ", "+"))
	if err != nil {
		return ErrBadSignature
	}
	secret, err := lookupSecret(ctx, lookup, akid)
	if err != nil {
		return err
	}
	ok := false
	for _, sts := range candidates {
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(sts))
		// Every candidate is computed and compared: which one matched
		// must not show in the time taken.
		ok = hmac.Equal(m.Sum(nil), given) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// stringsToSignS3V2 are the strings to sign a client may have used. A
// path-style request on a bucket itself ("/photos", "/photos?acl") is
// signed by some clients with the resource "/photos/" (botocore, s3cmd) and
// by others with "/photos" (euca2ools, boto 2 against an endpoint with a
// path): S3 accepts both, and so does Walrus.
func stringsToSignS3V2(r *http.Request, bucket string, pairs []queryPair, date string, presigned bool) []string {
	slash := stringToSignS3V2(r, bucket, pairs, date, presigned, true)
	bare := stringToSignS3V2(r, bucket, pairs, date, presigned, false)
	if bare == slash {
		return []string{slash}
	}
	return []string{slash, bare}
}

// stringToSignS3V2 is
//
//	VERB \n Content-MD5 \n Content-Type \n Date \n CanonicalizedAmzHeaders CanonicalizedResource
//
// For a presigned URL, clients that cannot set headers (botocore) move
// Content-Type, Content-MD5 and x-amz-* into the query; they are read from
// there when the header is absent.
func stringToSignS3V2(r *http.Request, bucket string, pairs []queryPair, date string, presigned, bucketSlash bool) string {
	var q map[string]string
	if presigned {
		q = map[string]string{}
		for _, p := range pairs {
			if _, seen := q[strings.ToLower(p.key)]; !seen {
				q[strings.ToLower(p.key)] = p.value
			}
		}
	}
	std := func(name string) string {
		if v := r.Header.Get(name); v != "" || !presigned {
			return strings.TrimSpace(v)
		}
		return strings.TrimSpace(q[strings.ToLower(name)])
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(std("Content-MD5"))
	b.WriteByte('\n')
	b.WriteString(std("Content-Type"))
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')

	amz := map[string]string{}
	for name, vals := range r.Header {
		lk := strings.ToLower(name)
		if !strings.HasPrefix(lk, "x-amz-") {
			continue
		}
		trimmed := make([]string, len(vals))
		for i, v := range vals {
			trimmed[i] = strings.TrimSpace(v)
		}
		amz[lk] = strings.Join(trimmed, ",")
	}
	for k, v := range q {
		if _, ok := amz[k]; !ok && strings.HasPrefix(k, "x-amz-") {
			amz[k] = strings.TrimSpace(v)
		}
	}
	names := make([]string, 0, len(amz))
	for k := range amz {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(amz[k])
		b.WriteByte('\n')
	}
	b.WriteString(canonicalResourceS3V2(r, bucket, bucketSlash))
	return b.String()
}

// canonicalResourceS3V2 is "/bucket" for a virtual-host request, then the
// path as sent, then the signed sub-resources sorted by name, their values
// decoded ("?acl", "?partNumber=2&uploadId=xyz"). A path-style request on
// the bucket itself sent as "/bucket" signs "/bucket/" when bucketSlash is
// set and "/bucket" otherwise.
func canonicalResourceS3V2(r *http.Request, bucket string, bucketSlash bool) string {
	var b strings.Builder
	path := escapedPath(r.URL)
	if bucket != "" {
		b.WriteByte('/')
		b.WriteString(bucket)
	} else if bucketSlash && path != "/" && !strings.Contains(path[1:], "/") {
		path += "/"
	}
	b.WriteString(path)
	type sub struct {
		key, value string
		hasValue   bool
	}
	var subs []sub
	for piece := range strings.SplitSeq(r.URL.RawQuery, "&") {
		k, v, hasValue := strings.Cut(piece, "=")
		if !s3SubResources[k] {
			continue
		}
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		subs = append(subs, sub{k, v, hasValue})
	}
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].key < subs[j].key })
	for i, s := range subs {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(s.key)
		if s.hasValue {
			b.WriteByte('=')
			b.WriteString(s.value)
		}
	}
	return b.String()
}
