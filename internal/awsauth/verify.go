package awsauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SecretLookup returns the secret key of an access key ID, or ErrUnknownKey
// when there is none. Any other error is treated as an internal failure and
// returned wrapped, not as the client's fault.
type SecretLookup func(ctx context.Context, accessKeyID string) (secret string, err error)

// Style says which family of AWS API a request belongs to: it decides how
// the SigV4 path is canonicalised and which SigV2 variant applies.
type Style int

const (
	// StyleQuery: EC2, IAM, STS and the other Query-protocol APIs. SigV4
	// canonical paths are normalised and encoded twice; SigV2 is the Query
	// variant (SignatureVersion=2 parameters).
	StyleQuery Style = iota
	// StyleS3: S3. SigV4 canonical paths are the wire path as is; SigV2 is
	// the "AWS AKID:sig" header and the AWSAccessKeyId/Expires/Signature
	// query.
	StyleS3
)

// Request is what Verify needs of an incoming request.
type Request struct {
	// HTTP is the request as the server received it. Its body is not
	// read; r.Host is the Host header.
	HTTP *http.Request
	// Body is the complete body when the caller has read it (Query APIs,
	// small S3 requests). It is hashed for SigV4 when no
	// X-Amz-Content-Sha256 header gives the hash, and checked against that
	// header when it does. Leave it nil for S3 requests whose body is
	// streamed; the caller then checks the stream against
	// Result.PayloadHash (or decodes it with NewChunkedReader).
	Body []byte
	// Params are the Query API parameters, the URL query merged with the
	// form body, for SigV2 Query requests. They must have been parsed from
	// the same request.
	Params url.Values
	Style  Style
	// Bucket is the bucket named by the Host header of a virtual-host style
	// S3 request ("" for path style). SigV2 signs it as part of the
	// resource.
	Bucket string
	// Service is the SigV4 credential-scope service of the API that
	// answers ("ec2", "sts", "iam"; "" means "s3" for StyleS3 and is an
	// error for StyleQuery). A request scoped to another service is
	// refused, as AWS does: a signature made for one API is not good for
	// another that happens to share the endpoint or the key.
	Service string
}

// scopeService is the credential-scope service req must be signed for.
func (req Request) scopeService() (string, error) {
	switch {
	case req.Service != "":
		return req.Service, nil
	case req.Style == StyleS3:
		return "s3", nil
	}
	return "", errors.New("awsauth: Request.Service is required for a Query API")
}

// Result describes a verified request.
type Result struct {
	AccessKeyID string
	Version     int // 2 or 4
	Presigned   bool
	// Region and Service are the SigV4 credential scope.
	Region, Service string
	// Date is the request's signing time: the SigV4 ISO 8601 basic
	// timestamp, or for SigV2 the Timestamp/Expires/Date value as sent.
	Date string
	// Signature is the verified signature (SigV4: lower-case hex, the seed
	// of a chunked upload; SigV2: base64).
	Signature string
	// SigningKey is the SigV4 derived key (never the secret itself), kept
	// to verify chunk signatures.
	SigningKey []byte
	// Anonymous is set, together with ErrMissing, when the request carries
	// no authentication at all.
	Anonymous bool
	// PayloadHash is the SigV4 payload hash the signature covers: a hex
	// SHA-256, UNSIGNED-PAYLOAD or one of the STREAMING-* values. When it
	// is a hex hash and Request.Body was nil, the caller must check the
	// body against it.
	PayloadHash string
}

// LogValue keeps the signing key out of logs.
func (r Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key_id", r.AccessKeyID),
		slog.Int("version", r.Version),
		slog.Bool("presigned", r.Presigned),
		slog.String("region", r.Region),
		slog.String("service", r.Service),
		slog.String("date", r.Date),
		slog.Bool("anonymous", r.Anonymous),
	)
}

// Verify authenticates req at time now. It recognises, in this order: a
// SigV4 Authorization header, an S3 SigV2 Authorization header, a SigV4
// presigned query, an S3 SigV2 presigned query and SigV2 Query parameters.
// A request with none of them returns Result{Anonymous: true} and
// ErrMissing; the S3 API may then serve it anonymously.
//
// A refused request yields an *Error; a failing lookup yields its own error
// wrapped, which is an internal error.
func Verify(ctx context.Context, req Request, lookup SecretLookup, now time.Time) (Result, error) {
	r := req.HTTP
	if r == nil || r.URL == nil {
		return Result{}, errors.New("awsauth: no HTTP request")
	}
	authz := r.Header.Values("Authorization")
	if len(authz) > 1 {
		return Result{}, malformed("Only one Authorization header is allowed.")
	}
	pairs, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return Result{}, err
	}
	inQuery := func(names ...string) bool {
		for _, p := range pairs {
			for _, n := range names {
				if p.key == n {
					return true
				}
			}
		}
		return false
	}
	if req.Style == StyleQuery && req.Params == nil {
		// A caller that parsed nothing: the URL query is all a GET has.
		req.Params = r.URL.Query()
	}
	presignV4 := inQuery("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
	presignV2 := req.Style == StyleS3 && inQuery("AWSAccessKeyId", "Signature")
	queryV2 := req.Style == StyleQuery && (req.Params.Has("Signature") || req.Params.Has("AWSAccessKeyId"))

	if len(authz) == 1 {
		if presignV4 || presignV2 || queryV2 {
			return Result{}, malformed("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
		}
		h := strings.TrimSpace(authz[0])
		scheme, _, _ := strings.Cut(h, " ")
		switch {
		case scheme == algoV4:
			return verifyV4Header(ctx, req, h, lookup, now)
		case scheme == "AWS" && req.Style == StyleS3:
			return verifyV2Header(ctx, req, h, pairs, lookup, now)
		case h == "":
			return Result{}, malformed("The Authorization header is empty.")
		default:
			return Result{}, unsupported("The authorization mechanism you have provided is not supported.")
		}
	}
	switch {
	case presignV4 && (presignV2 || queryV2):
		return Result{}, malformed("Only one auth mechanism allowed.")
	case presignV4:
		return verifyV4Query(ctx, req, pairs, lookup, now)
	case presignV2:
		return verifyV2Presigned(ctx, req, pairs, lookup, now)
	case queryV2:
		return verifyV2Query(ctx, req, lookup, now)
	}
	return Result{Anonymous: true}, ErrMissing
}

// PeekService returns the credential-scope service of a SigV4 request, from
// the Authorization header or the X-Amz-Credential query parameter, or ""
// when there is none. Nothing is verified: it only routes a request that
// arrived on a shared endpoint to the API that will verify it.
func PeekService(r *http.Request) string {
	var cred string
	if h := strings.TrimSpace(r.Header.Get("Authorization")); strings.HasPrefix(h, algoV4+" ") {
		for part := range strings.SplitSeq(h[len(algoV4)+1:], ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				cred = v
				break
			}
		}
	} else if r.URL != nil {
		cred = r.URL.Query().Get("X-Amz-Credential")
	}
	c, err := parseCredential(cred)
	if err != nil {
		return ""
	}
	return c.service
}

// lookupSecret calls lookup and turns its answer into Verify's errors.
func lookupSecret(ctx context.Context, lookup SecretLookup, akid string) (string, error) {
	secret, err := lookup(ctx, akid)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return "", ErrUnknownKey
	case err != nil:
		return "", fmt.Errorf("awsauth: look up access key %q: %w", akid, err)
	}
	return secret, nil
}
