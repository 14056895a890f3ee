package awsauth

import "errors"

// Kind classifies a refused request so that each API can map it to its own
// error code (EC2: AuthFailure, RequestExpired, ...; S3: AccessDenied,
// SignatureDoesNotMatch, RequestTimeTooSkewed, ...).
type Kind int

const (
	// KindMissing: the request carries no authentication at all. S3 may
	// treat it as anonymous; the Query APIs refuse it.
	KindMissing Kind = iota + 1
	// KindMalformed: authentication is present but cannot be parsed or
	// lacks a required element (EC2 IncompleteSignature, S3
	// AuthorizationHeaderMalformed / AuthorizationQueryParametersError).
	KindMalformed
	// KindUnknownKey: the access key ID is not known (EC2 AuthFailure, S3
	// InvalidAccessKeyId).
	KindUnknownKey
	// KindBadSignature: the signature, a chunk signature or the declared
	// payload hash does not match (EC2 AuthFailure, S3
	// SignatureDoesNotMatch / XAmzContentSHA256Mismatch).
	KindBadSignature
	// KindExpired: the request date is too far from now (Error.Skewed; S3
	// RequestTimeTooSkewed, EC2 RequestExpired) or a presigned URL has
	// expired (S3 AccessDenied "Request has expired").
	KindExpired
	// KindUnsupported: a signing scheme this server does not implement
	// (SigV0/V1, SigV4A/ECDSA, an unknown algorithm).
	KindUnsupported
	// KindUnsignedHeaders: an S3 request carries x-amz-* headers that its
	// SigV4 signature does not cover (S3 AccessDenied, "There were headers
	// present in the request which were not signed"); Error.Headers names
	// them. Such a header changes what the request does (x-amz-copy-source
	// turns an upload into a copy, x-amz-acl publishes it), so a signature
	// that leaves it out does not authorise it.
	KindUnsignedHeaders
)

var kindNames = map[Kind]string{
	KindMissing:         "missing",
	KindMalformed:       "malformed",
	KindUnknownKey:      "unknown-key",
	KindBadSignature:    "bad-signature",
	KindExpired:         "expired",
	KindUnsupported:     "unsupported",
	KindUnsignedHeaders: "unsigned-headers",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Error is a refused authentication. Msg is a public message that may be
// returned to the client as is: it never contains the secret key, the
// signing key or the signature the server computed.
type Error struct {
	Kind Kind
	Msg  string
	// Skewed is set with KindExpired when the request's own date is more
	// than the allowed skew away from the server clock (S3 maps this to
	// RequestTimeTooSkewed), as opposed to a presigned URL past its expiry.
	Skewed bool
	// NoDate is set with KindMalformed when the request's date (X-Amz-Date,
	// or Date) is missing, empty or not a date. S3 answers AccessDenied
	// "AWS authentication requires a valid Date or x-amz-date header"; the
	// Query APIs IncompleteSignature.
	NoDate bool
	// Headers are the lower-case names of the unsigned headers, sorted,
	// with KindUnsignedHeaders.
	Headers []string
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is an *Error of the same Kind, so that
// errors.Is(err, ErrBadSignature) holds for every bad-signature error
// whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind
}

// Sentinels, one per common case. Compare with errors.Is, which matches on
// Kind only; use KindOf or errors.As for the details.
var (
	ErrMissing = &Error{Kind: KindMissing,
		Msg: "Request is missing Authentication Token"}
	// ErrUnknownKey is also what a SecretLookup returns for a key it does
	// not know.
	ErrUnknownKey = &Error{Kind: KindUnknownKey,
		Msg: "The AWS Access Key Id you provided does not exist in our records."}
	ErrBadSignature = &Error{Kind: KindBadSignature,
		Msg: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	ErrRequestExpired = &Error{Kind: KindExpired, Skewed: true,
		Msg: "The difference between the request time and the current time is too large."}
)

var (
	errPresignExpired  = &Error{Kind: KindExpired, Msg: "Request has expired"}
	errPresignNotYet   = &Error{Kind: KindExpired, Skewed: true, Msg: "Request is not valid yet"}
	errPayloadMismatch = &Error{Kind: KindBadSignature,
		Msg: "The provided 'x-amz-content-sha256' header does not match what was computed."}
)

// KindOf returns the Kind of an *Error in err's chain, or 0 when err is nil
// or not an authentication refusal (a failing SecretLookup, an I/O error):
// those are internal errors, not the client's fault.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// noDate refuses a request without a usable date; msg says which.
func noDate(msg string) error { return &Error{Kind: KindMalformed, NoDate: true, Msg: msg} }

func malformed(msg string) error { return &Error{Kind: KindMalformed, Msg: msg} }

func unsupported(msg string) error { return &Error{Kind: KindUnsupported, Msg: msg} }
