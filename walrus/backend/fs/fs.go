// Package fs is Walrus's filesystem backend: each bucket is a directory
// under WALRUS_BUCKETS_PATH, each blob a file in it.
//
// Layout:
//
//	<root>/<bucket>/<id[0:2]>/<id>            a blob (32 hex digits)
//	<root>/<bucket>/<id[0:2]>/.tmp-<id>-*     a write in progress
//
// Object keys never become file names (a key may be 1024 bytes of anything,
// and "a" and "a/b" may both be objects); the store maps keys to blob ids.
// The two hex digits of the id spread blobs over 256 directories so that no
// directory grows huge.
//
// A write goes to a temporary file in the directory of its final name
// (the kernel is asked to start writing it out as it grows), is fsynced, renamed into place, and the directory is fsynced: after a crash
// the blob is either complete or absent, and a leftover temporary file is
// removed by Sweep. Data is streamed through a fixed buffer, so memory does
// not grow with the object; multipart completion copies part files into the
// new blob in the kernel (copy_file_range), without passing through user
// space.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/euca-cloud/euca/walrus/backend"
)

// FS stores blobs under a root directory.
type FS struct {
	root string
}

var _ backend.Backend = (*FS)(nil)

// New returns the backend rooted at dir, creating it if needed.
func New(dir string) (*FS, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("walrus buckets path %q is not absolute", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("walrus buckets path: %w", err)
	}
	return &FS{root: dir}, nil
}

// Root is the directory the backend stores under.
func (b *FS) Root() string { return b.root }

const tmpPrefix = ".tmp-"

// copyBufSize is the buffer a streamed write goes through: large enough to
// keep system calls few, small enough that many concurrent uploads stay
// cheap.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func (b *FS) bucketDir(bucket string) (string, error) {
	// Bucket names are validated by the API; this keeps a bad one from
	// ever escaping the root.
	if bucket == "" || strings.ContainsAny(bucket, "/\\\x00") || strings.HasPrefix(bucket, ".") {
		return "", fmt.Errorf("fs: invalid bucket name %q", bucket)
	}
	return filepath.Join(b.root, bucket), nil
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (b *FS) blobPath(bucket, id string) (string, error) {
	dir, err := b.bucketDir(bucket)
	if err != nil {
		return "", err
	}
	if !validID(id) {
		return "", fmt.Errorf("fs: invalid blob id %q: %w", id, backend.ErrNotFound)
	}
	return filepath.Join(dir, id[:2], id), nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateBucket makes the bucket's directory.
func (b *FS) CreateBucket(ctx context.Context, bucket string) error {
	dir, err := b.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("fs: create bucket: %w", err)
	}
	return syncDir(b.root)
}

// DeleteBucket removes the bucket's directory with whatever it holds. The
// directory is first renamed out of the way, so a bucket of the same name
// created right after starts empty even while the old files are removed.
func (b *FS) DeleteBucket(ctx context.Context, bucket string) error {
	dir, err := b.bucketDir(bucket)
	if err != nil {
		return err
	}
	trash := filepath.Join(b.root, ".trash-"+newID())
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("fs: delete bucket: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("fs: delete bucket: %w", err)
	}
	return nil
}

// tmpFile is a blob being written.
type tmpFile struct {
	f         *os.File
	dir, id   string
	committed bool
}

func (b *FS) create(bucket string) (*tmpFile, error) {
	bdir, err := b.bucketDir(bucket)
	if err != nil {
		return nil, err
	}
	id := newID()
	dir := filepath.Join(bdir, id[:2])
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fs: bucket %s: %w", bucket, backend.ErrNotFound)
		}
		return nil, fmt.Errorf("fs: %w", err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+id+"-*")
	if err != nil {
		return nil, fmt.Errorf("fs: %w", err)
	}
	return &tmpFile{f: f, dir: dir, id: id}, nil
}

// commit makes the temporary file the blob: fsync, rename, fsync the
// directory so the rename survives a crash.
func (t *tmpFile) commit() (backend.Blob, error) {
	st, err := t.f.Stat()
	if err != nil {
		return backend.Blob{}, fmt.Errorf("fs: %w", err)
	}
	if err := datasync(t.f); err != nil {
		return backend.Blob{}, fmt.Errorf("fs: fsync: %w", err)
	}
	if err := t.f.Close(); err != nil {
		return backend.Blob{}, fmt.Errorf("fs: close: %w", err)
	}
	if err := os.Rename(t.f.Name(), filepath.Join(t.dir, t.id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) { // the bucket was deleted meanwhile
			return backend.Blob{}, fmt.Errorf("fs: rename: %v: %w", err, backend.ErrNotFound)
		}
		return backend.Blob{}, fmt.Errorf("fs: rename: %w", err)
	}
	t.committed = true
	if err := syncDir(t.dir); err != nil {
		return backend.Blob{}, err
	}
	return backend.Blob{ID: t.id, Size: st.Size()}, nil
}

// discard removes an uncommitted temporary file; harmless after commit.
func (t *tmpFile) discard() {
	if t.committed {
		return
	}
	_ = t.f.Close()
	_ = os.Remove(t.f.Name())
}

// writebackChunk is how much is written before the kernel is asked to
// start writing it out.
const writebackChunk = 8 << 20

// streamWriter writes to a blob's file, starting writeback every
// writebackChunk bytes. (It also hides *os.File's ReadFrom, so that
// io.CopyBuffer uses our buffer rather than os.File's generic fallback
// for a source that is not a file.)
type streamWriter struct {
	f            *os.File
	off, started int64
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackChunk {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
	return n, err
}

// Write streams r into a new blob.
func (b *FS) Write(ctx context.Context, bucket string, r io.Reader) (backend.Blob, error) {
	t, err := b.create(bucket)
	if err != nil {
		return backend.Blob{}, err
	}
	defer t.discard()
	bp := bufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(&streamWriter{f: t.f}, ctxReader{ctx, r}, *bp)
	bufPool.Put(bp)
	if err != nil {
		return backend.Blob{}, err
	}
	return t.commit()
}

// ctxReader stops a stream when the request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Concat copies the given blobs, in order, into a new blob. The copy
// happens in the kernel (os.File.ReadFrom uses copy_file_range).
func (b *FS) Concat(ctx context.Context, bucket string, ids []string) (backend.Blob, error) {
	t, err := b.create(bucket)
	if err != nil {
		return backend.Blob{}, err
	}
	defer t.discard()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return backend.Blob{}, err
		}
		src, _, err := b.Open(ctx, bucket, id)
		if err != nil {
			return backend.Blob{}, err
		}
		start, _ := t.f.Seek(0, io.SeekCurrent)
		n, err := t.f.ReadFrom(src)
		src.Close()
		if err != nil {
			return backend.Blob{}, fmt.Errorf("fs: concat: %w", err)
		}
		startWriteback(t.f, start, n)
	}
	return t.commit()
}

// Open opens a blob.
func (b *FS) Open(ctx context.Context, bucket, id string) (backend.Reader, int64, error) {
	p, err := b.blobPath(bucket, id)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("fs: blob %s/%s: %w", bucket, id, backend.ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("fs: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("fs: %w", err)
	}
	return f, st.Size(), nil
}

// Delete removes a blob.
func (b *FS) Delete(ctx context.Context, bucket, id string) error {
	p, err := b.blobPath(bucket, id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fs: delete: %w", err)
	}
	return nil
}

// Sweep removes leftover temporary files and the blobs keep rejects.
func (b *FS) Sweep(ctx context.Context, bucket string, keep func(id string) bool) error {
	dir, err := b.bucketDir(bucket)
	if err != nil {
		return err
	}
	shards, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fs: sweep: %w", err)
	}
	for _, sh := range shards {
		if !sh.IsDir() || len(sh.Name()) != 2 {
			continue
		}
		sdir := filepath.Join(dir, sh.Name())
		files, err := os.ReadDir(sdir)
		if err != nil {
			return fmt.Errorf("fs: sweep: %w", err)
		}
		for _, f := range files {
			name := f.Name()
			if strings.HasPrefix(name, tmpPrefix) || (validID(name) && !keep(name)) {
				if err := os.Remove(filepath.Join(sdir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("fs: sweep: %w", err)
				}
			}
		}
	}
	return nil
}

// SweepTrash removes what an interrupted DeleteBucket left.
func (b *FS) SweepTrash(ctx context.Context) error {
	entries, err := os.ReadDir(b.root)
	if err != nil {
		return fmt.Errorf("fs: sweep: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".trash-") {
			if err := os.RemoveAll(filepath.Join(b.root, e.Name())); err != nil {
				return fmt.Errorf("fs: sweep: %w", err)
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fs: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fs: fsync %s: %w", dir, err)
	}
	return nil
}
