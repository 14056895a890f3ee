package walrus

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strings"

	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/backend"
)

// SystemBucket is a bucket the cloud itself reads and writes in process,
// without HTTP or signatures: the storage controller keeps its snapshots
// in one. Its objects are ordinary S3 objects, written through the same
// store rows and backend blobs as a PutObject's (write a new blob, then
// point the object's row at it, then delete the blob it replaced), so the
// bucket's owner sees them with any S3 client and a crash leaves the old
// object or the new one.
//
// The bucket is private (its owner's FULL_CONTROL) and not subject to
// WALRUS_MAX_BUCKET_SIZE_MB or WALRUS_MAX_BUCKETS: those limit what users
// store, and a snapshot refused half-way by a user's quota would help no
// one.
type SystemBucket struct {
	w     *Walrus
	name  string
	owner string
}

// SystemBucket opens the bucket name, owned by the account ownerID,
// creating it if it does not exist. It is an error if an account other
// than ownerID owns a bucket of that name. Call it after New, which sweeps
// the backend: a sweep while the bucket is being written would take blobs
// not yet committed for garbage.
func (w *Walrus) SystemBucket(ctx context.Context, name, ownerID string) (*SystemBucket, error) {
	if !validBucketName(name) {
		return nil, fmt.Errorf("walrus: system bucket %q: invalid bucket name", name)
	}
	if ownerID == "" {
		return nil, fmt.Errorf("walrus: system bucket %s: no owner", name)
	}
	b := &SystemBucket{w: w, name: name, owner: ownerID}
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// ensure makes the bucket if it does not exist (its owner may have
// emptied and deleted it with an S3 client).
func (b *SystemBucket) ensure(ctx context.Context) error {
	w, name, ownerID := b.w, b.name, b.owner
	row := store.WalrusBucket{Name: name, AccountID: ownerID, Location: w.cfg.Region,
		ACL: []store.WalrusGrant{userGrant(ownerID, permFull)}}
	err := w.st.CreateWalrusBucket(ctx, row, 0)
	if errors.Is(err, store.ErrConflict) {
		got, gerr := w.st.WalrusBucket(ctx, name)
		switch {
		case gerr != nil:
			return fmt.Errorf("walrus: system bucket %s: %w", name, gerr)
		case got.AccountID != ownerID:
			return fmt.Errorf("walrus: system bucket %s belongs to account %s, not %s", name, got.AccountID, ownerID)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("walrus: system bucket %s: %w", name, err)
	}
	if err := w.be.CreateBucket(ctx, name); err != nil {
		return fmt.Errorf("walrus: system bucket %s: %w", name, err)
	}
	return nil
}

// Name is the bucket's name.
func (b *SystemBucket) Name() string { return b.name }

func validKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("walrus: invalid key %q", key)
	}
	return nil
}

// Put stores the size bytes r delivers as the object key, replacing any
// object there. It fails, storing nothing, unless r delivers exactly size
// bytes.
func (b *SystemBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := validKey(key); err != nil {
		return err
	}
	if size < 0 || size > maxPutSize {
		return fmt.Errorf("walrus: put %s/%s: size %d out of range", b.name, key, size)
	}
	if _, err := b.w.st.WalrusBucket(ctx, b.name); errors.Is(err, store.ErrNotFound) {
		if err := b.ensure(ctx); err != nil {
			return err
		}
	}
	sr := &sizedReader{r: r, left: size, md5: md5.New()}
	blob, err := b.w.be.Write(ctx, b.name, sr)
	if err != nil {
		return fmt.Errorf("walrus: put %s/%s: %w", b.name, key, err)
	}
	ctype := "binary/octet-stream"
	if strings.HasSuffix(key, ".json") {
		ctype = "application/json"
	}
	o := store.WalrusObject{Bucket: b.name, Key: key, Blob: blob.ID, Size: blob.Size, ETag: hex.EncodeToString(sr.md5.Sum(nil)),
		OwnerID: b.owner, ACL: []store.WalrusGrant{userGrant(b.owner, permFull)}, Headers: map[string]string{"content-type": ctype}}
	old, err := b.w.st.PutWalrusObject(ctx, o, store.WalrusPutOptions{})
	if err != nil {
		b.w.deleteBlob(ctx, b.name, blob.ID)
		return fmt.Errorf("walrus: put %s/%s: %w", b.name, key, err)
	}
	if old != "" {
		b.w.deleteBlob(ctx, b.name, old)
	}
	return nil
}

// sizedReader delivers exactly left bytes of r, hashing them, or fails.
type sizedReader struct {
	r    io.Reader
	left int64
	md5  hash.Hash
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		// One byte more would mean the source is longer than declared.
		var one [1]byte
		if n, _ := io.ReadFull(s.r, one[:]); n > 0 {
			return 0, errors.New("walrus: object data longer than its declared size")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	s.md5.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if s.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// Get opens the object key for reading. A missing object is an error
// that errors.Is(err, fs.ErrNotExist).
func (b *SystemBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		o, err := b.w.st.WalrusObject(ctx, b.name, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("walrus: get %s/%s: %w", b.name, key, fs.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("walrus: get %s/%s: %w", b.name, key, err)
		}
		f, _, err := b.w.be.Open(ctx, b.name, o.Blob)
		if errors.Is(err, backend.ErrNotFound) && attempt < 3 {
			continue // replaced between reading its row and opening its blob
		}
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("walrus: get %s/%s: data missing: %w", b.name, key, fs.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("walrus: get %s/%s: %w", b.name, key, err)
		}
		return readCloser{Reader: io.LimitReader(f, o.Size), Closer: f}, nil
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Delete removes the object key; a missing object is not an error.
func (b *SystemBucket) Delete(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	blob, err := b.w.st.DeleteWalrusObject(ctx, b.name, key)
	if err != nil {
		return fmt.Errorf("walrus: delete %s/%s: %w", b.name, key, err)
	}
	if blob != "" {
		b.w.deleteBlob(ctx, b.name, blob)
	}
	return nil
}

// Keys lists the keys of the bucket's objects that start with prefix, in
// order.
func (b *SystemBucket) Keys(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	after := ""
	for {
		objs, err := b.w.st.ListWalrusObjects(ctx, b.name, prefix, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("walrus: list %s: %w", b.name, err)
		}
		for _, o := range objs {
			out = append(out, o.Key)
		}
		if len(objs) < 1000 {
			return out, nil
		}
		after = objs[len(objs)-1].Key
	}
}
