// Package backend is the seam between Walrus's S3 API and the place object
// data lives. The API layer keeps every piece of metadata (names, sizes,
// ETags, ACLs) in the store; a Backend only keeps blobs: immutable byte
// streams, named by an id the backend chooses, grouped by bucket.
//
// Because blobs are immutable and every write makes a new one, replacing an
// object is "write a new blob, then point the object's metadata at it, then
// delete the old blob": a reader that opened the old blob keeps reading it
// whole, and a crash at any step leaves the old object or the new one,
// never a mixture. A crash can leave an unreferenced blob behind; Sweep
// removes those at start-up.
//
// The local filesystem (package fs) is the only backend today. An external
// S3-compatible store (Ceph RGW, as Eucalyptus 4 supported) is meant to be
// added beside it: embed NotImplemented and fill in the methods.
package backend

import (
	"context"
	"errors"
	"io"
)

// Errors a Backend returns; the API layer maps them to S3 codes.
var (
	// ErrNotFound: no such blob (or bucket).
	ErrNotFound = errors.New("backend: not found")
	// ErrNotImplemented: the backend does not support the operation.
	ErrNotImplemented = errors.New("backend: not implemented")
)

// Blob describes a stored blob.
type Blob struct {
	ID   string
	Size int64
}

// Reader is an open blob. It is a snapshot: the blob it reads cannot change
// or disappear under it. The filesystem backend returns an *os.File, which
// lets the HTTP server send it with sendfile(2).
type Reader interface {
	io.ReadSeekCloser
}

// Backend stores blobs. Every method is safe for concurrent use.
type Backend interface {
	// CreateBucket prepares the space of a bucket; harmless twice.
	CreateBucket(ctx context.Context, bucket string) error
	// DeleteBucket removes a bucket's space and every blob left in it;
	// harmless when it is already gone.
	DeleteBucket(ctx context.Context, bucket string) error

	// Write streams r into a new blob and returns it once it is complete
	// and durable. The data is read until r returns io.EOF: r decides
	// whether what it delivered is acceptable (a digest or signature check
	// fails as an error instead of io.EOF), and on any error from r (or
	// from the disk) nothing is left behind.
	Write(ctx context.Context, bucket string, r io.Reader) (Blob, error)
	// Concat makes a new blob of the given blobs one after another (the
	// completion of a multipart upload). The sources are left as they are.
	Concat(ctx context.Context, bucket string, ids []string) (Blob, error)
	// Open opens a blob for reading, with its size. ErrNotFound when it
	// does not exist.
	Open(ctx context.Context, bucket, id string) (Reader, int64, error)
	// Delete removes a blob; harmless when it is already gone. Readers
	// that opened it keep reading it.
	Delete(ctx context.Context, bucket, id string) error

	// Sweep removes what a crash left: unfinished writes, and blobs of the
	// bucket for which keep returns false. Call it only while no write to
	// the bucket is in flight (at start-up).
	Sweep(ctx context.Context, bucket string, keep func(id string) bool) error
}

// NotImplemented answers every method with ErrNotImplemented. A new backend
// embeds it, so that it compiles while it grows and any method it has not
// written yet fails loudly rather than silently.
type NotImplemented struct{}

var _ Backend = NotImplemented{}

func (NotImplemented) CreateBucket(context.Context, string) error { return ErrNotImplemented }
func (NotImplemented) DeleteBucket(context.Context, string) error { return ErrNotImplemented }
func (NotImplemented) Write(context.Context, string, io.Reader) (Blob, error) {
	return Blob{}, ErrNotImplemented
}
func (NotImplemented) Concat(context.Context, string, []string) (Blob, error) {
	return Blob{}, ErrNotImplemented
}
func (NotImplemented) Open(context.Context, string, string) (Reader, int64, error) {
	return nil, 0, ErrNotImplemented
}
func (NotImplemented) Delete(context.Context, string, string) error { return ErrNotImplemented }
func (NotImplemented) Sweep(context.Context, string, func(string) bool) error {
	return ErrNotImplemented
}
