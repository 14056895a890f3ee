// Package walrus is the S3 REST API of the cloud: the Walrus role of
// Eucalyptus, where users keep objects and upload image bundles, and from
// where nodes fetch images.
//
// # The request path
//
// Every request goes through the same steps, applied once in ServeHTTP:
//
//	request id -> target (bucket, key; legacy prefix and virtual host) ->
//	route (method + level + sub-resource, one row per S3 operation) ->
//	small XML body read (bounded) -> signature (awsauth, StyleS3) ->
//	handler(ctx, req) (response, error) -> one encoder -> one log line
//
// Handlers never touch the ResponseWriter. They return a response (status,
// headers, an XML document or a stream of object data) or an error: an
// *awserr.Error carrying one of the S3 codes of s3err.go, or anything else,
// which becomes InternalError with its cause logged and never sent.
//
// # Addressing
//
// Path style: /bucket/key, also under Eucalyptus's legacy prefix
// /services/Walrus/bucket/key (the prefix is removed here; SigV4 signs the
// path as sent, prefix included, and awsauth sees the raw request).
//
// Virtual-host style: bucket.HOST/key, where HOST is the name the cloud is
// reached by. There is no configuration key for it: a Host header that is
// not an IP address is split at a dot so that what follows is "localhost"
// or a name whose first label is this machine's short host name (as
// `hostname -s` prints it), and what precedes is the bucket. So with a host
// named "cloud", both "cloud.example.com" and "localhost" are the bare
// host (path style), while "photos.cloud.example.com" and
// "photos.localhost" address the bucket "photos". Any other name is taken
// as path style.
//
// # Authentication and access
//
// SigV4 (header, presigned, aws-chunked streaming) and SigV2 (header,
// presigned) are verified by internal/awsauth against the access keys of
// the cloud controller. Under the legacy prefix, SigV2 clients (boto 2,
// euca2ools 3, botocore's "s3" signer) sign the resource without
// /services/Walrus; it is verified that way first, then as sent. Object
// data is checked as it streams: the SHA-256 the signature covers, each
// aws-chunked chunk signature, Content-MD5 and any x-amz-checksum-* (in a
// header or the chunked trailer); the object is stored only once all held. A request without any signature is anonymous: it
// is served only where an ACL or the bucket policy grants everyone.
// Every handler's permission check is authorize (authorize.go), reached
// through bucket and object. It decides as S3 does: the bucket policy
// (walrus/policy) is evaluated first and its explicit Deny wins, even over
// the owner; its Allow grants; otherwise S3's ACL model decides: READ and
// WRITE on a bucket to list it and to write into it, READ on an object to
// get it, READ_ACP and WRITE_ACP for the ACLs themselves (always held by
// the owner); the bucket's configuration (CORS, ...) is its owner's
// account's unless the policy grants it, and its policy is that account's
// alone, whatever the policy says. Ownership controls (ownership.go) of
// BucketOwnerEnforced disable ACLs; a public access block refuses public
// ACLs and policies, ignores public grants, or restricts a public policy to
// the owner's account. The
// canned ACL aws-exec-read, with which euca2ools uploads bundle parts,
// grants READ to the cloud itself (CloudReaderID), which reads bundles to
// register images, and to the bucket's owner when another account wrote
// the object.
//
// A browser-based POST upload (post.go) is authenticated by its form
// fields instead: the signature (SigV4 or SigV2) of a policy document
// whose expiration and conditions the form must meet; its signer is then
// the caller, checked for WRITE on the bucket as a PUT's. A CORS preflight
// (OPTIONS, cors.go) carries no credentials and is answered from the
// bucket's CORS configuration alone; actual requests that name an Origin
// get the Access-Control-* headers of the rule that allows them.
//
// # Storage
//
// Metadata (buckets, objects, multipart uploads, ACLs, tags,
// configuration documents) lives in the store; object data lives in a
// backend.Backend as immutable blobs (the filesystem under
// WALRUS_BUCKETS_PATH by default). A write streams into a new blob while
// its MD5 (and any SHA-256 or checksum the client declared) is computed,
// and only once the stream has ended and every digest matched is the blob
// committed and the object's row pointed at it; the blob it replaced is
// deleted afterwards. A reader therefore sees the old object or the new
// one, whole; a crash leaves at most an unreferenced blob, swept at the
// next start. Uploads and downloads stream: memory does not grow with the
// object.
//
// Limits from the configuration: WALRUS_MAX_BUCKETS per account
// (TooManyBuckets) and WALRUS_MAX_BUCKET_SIZE_MB per bucket (EntityTooLarge
// with a message naming the limit); 0 means no limit. A refused write
// leaves what was stored as it was. Every limit is checked against the
// declared length (Content-Length, or x-amz-decoded-content-length of an
// aws-chunked body, without which the upload is MissingContentLength)
// before a byte is stored, and a body may not run past it. Bodies that
// stop coming end with RequestTimeout (internal/httplimit, under the
// listener).
package walrus
