// Package awsauth verifies the signatures of AWS-style requests on the
// server side. The EC2 Query API and the S3 API (walrus) both call Verify;
// nothing here knows about either API beyond the Style of a request.
//
// # What a request may carry
//
// Verify looks for exactly one authentication mechanism, and refuses a
// request that carries two:
//
//   - SigV4 in the Authorization header ("AWS4-HMAC-SHA256 Credential=AKID/
//     date/region/service/aws4_request, SignedHeaders=..., Signature=...").
//     Every SDK since 2014 signs this way.
//   - SigV4 presigned in the query (X-Amz-Algorithm, X-Amz-Credential,
//     X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature): S3
//     URLs handed to browsers and curl.
//   - SigV2 for the Query APIs (AWSAccessKeyId, SignatureVersion=2,
//     SignatureMethod, Timestamp or Expires, Signature): euca2ools and old
//     boto, which Eucalyptus clouds have always been driven with.
//   - SigV2 for S3: "Authorization: AWS AKID:signature" and its presigned
//     form (AWSAccessKeyId, Expires, Signature): s3cmd, old boto.
//
// A request with none of them is anonymous: Verify returns
// Result{Anonymous: true} together with ErrMissing, so that a caller that
// forgets to look at Anonymous still refuses it. S3 may serve it for a
// public bucket; the Query APIs refuse it.
//
// # SigV4, step by step
//
// The server rebuilds the client's canonical request from what arrived:
//
//  1. The method.
//  2. The canonical URI. S3 signs the path as it went on the wire (the
//     client has already encoded each key segment); every other service
//     normalises the path and encodes the escaped path once more, which the
//     AWS documents call double encoding ("/%20" signs as "/%2520").
//  3. The canonical query: every parameter (for a presigned URL, all but
//     X-Amz-Signature) decoded, re-encoded with only A-Z a-z 0-9 - _ . ~
//     left bare and space as %20, sorted by key then value.
//  4. The signed headers, in the order the client listed them, each with
//     its values trimmed, inner white space folded and joined by commas.
//     Host must be signed, and so must the date header used and
//     X-Amz-Content-Sha256 when present: unsigned, they could be replaced.
//     An S3 request must sign every x-amz-* header it carries, as S3
//     demands (KindUnsignedHeaders): one added to a presigned URL could
//     otherwise turn an upload into a copy (x-amz-copy-source) or publish
//     it (x-amz-acl). A presigned URL alone may bring x-amz-content-sha256
//     unsigned, which is then ignored.
//  5. The payload hash: X-Amz-Content-Sha256 when sent (S3 may sign
//     UNSIGNED-PAYLOAD or a STREAMING-* value instead of a hash), else the
//     SHA-256 of the body the caller read; UNSIGNED-PAYLOAD for S3
//     presigned URLs. The Query APIs carry their parameters in the body,
//     so for them only a real hash is accepted. A hash that the signature
//     covers but the body does not match is refused as well.
//
// The credential scope's service must be the API's that answers
// (Request.Service): a signature made for S3 is no good for EC2, STS or
// IAM, nor the reverse, even with the same key on the same endpoint.
//
// The string to sign is the algorithm, the timestamp, the credential scope
// and the hex SHA-256 of the canonical request; the key is derived from
// the secret through the date, region and service of the scope; the
// signature is HMAC-SHA256 of the two. The signing key and the verified
// signature are returned in Result so that NewChunkedReader can check an
// aws-chunked body: each chunk's signature chains from the previous one,
// starting at the seed signature of the headers, so chunks can be neither
// altered, reordered nor dropped.
//
// # SigV2
//
// The Query variant signs METHOD, the lower-cased Host (with its port when
// the Host header has one), the path and the sorted, RFC 3986 encoded
// parameters, with HMAC-SHA256 or HMAC-SHA1. The S3 variant signs with
// HMAC-SHA1 the method, Content-MD5, Content-Type, the Date (empty when
// x-amz-date is sent, the Expires value when presigned), the x-amz-*
// headers and the resource: "/bucket" for a virtual-host request, the
// path, and the sub-resources (?acl, ?uploadId=...) that select what the
// request acts on. Every x-amz-* header is signed by construction. A
// path-style request on a bucket itself sent as "/bucket" is accepted
// signed with the resource "/bucket/" (botocore, s3cmd) or "/bucket"
// (euca2ools), as S3 accepts both.
//
// A request whose date (X-Amz-Date, or Date) is missing, empty or not a
// date is refused with Error.NoDate set.
//
// # Time
//
// A request dated more than MaxSkew (15 minutes) from the server clock is
// refused with KindExpired and Error.Skewed set, which limits how long a
// captured request can be replayed; S3 reports it as RequestTimeTooSkewed.
// Presigned requests are bounded by their expiry instead (at most a week
// for SigV4). The clock is a parameter, so tests never read the wall clock.
//
// # Secrets
//
// Signatures are compared with hmac.Equal. Errors carry a public message
// only: never the secret, the derived key or the signature the server
// computed, which would let a client forge a request by asking for it.
package awsauth
