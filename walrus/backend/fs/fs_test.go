package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/euca-cloud/euca/walrus/backend"
)

func newFS(t *testing.T) *FS {
	t.Helper()
	b, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBucket(context.Background(), "bkt"); err != nil {
		t.Fatal(err)
	}
	return b
}

func readBlob(t *testing.T, b *FS, id string) []byte {
	t.Helper()
	r, size, err := b.Open(context.Background(), "bkt", id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("size %d, read %d", size, len(data))
	}
	return data
}

// files lists every file under the bucket, relative to it.
func files(t *testing.T, b *FS) []string {
	t.Helper()
	var out []string
	root := filepath.Join(b.Root(), "bkt")
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteOpenDelete(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	blob, err := b.Write(ctx, "bkt", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if blob.Size != 5 || !validID(blob.ID) {
		t.Fatalf("blob %+v", blob)
	}
	if got := readBlob(t, b, blob.ID); string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	if got := files(t, b); len(got) != 1 || got[0] != filepath.Join(blob.ID[:2], blob.ID) {
		t.Fatalf("files %v", got)
	}
	if err := b.Delete(ctx, "bkt", blob.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "bkt", blob.ID); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, _, err := b.Open(ctx, "bkt", blob.ID); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("open deleted: %v", err)
	}
	if _, _, err := b.Open(ctx, "bkt", "../../etc/passwd"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("open bad id: %v", err)
	}
	if _, err := b.Write(ctx, "nobucket", strings.NewReader("x")); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("write to missing bucket: %v", err)
	}
	if _, err := b.Write(ctx, "../x", strings.NewReader("x")); err == nil {
		t.Fatal("bucket name escaping the root accepted")
	}
}

// failingReader delivers some data, then fails: a client that went away,
// or a digest that did not match.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	old, err := b.Write(ctx, "bkt", strings.NewReader("old object"))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("BadDigest")
	_, err = b.Write(ctx, "bkt", &failingReader{data: bytes.Repeat([]byte("n"), 3<<20), err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("write error %v, want the reader's", err)
	}
	// A cancelled request stops the write too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Write(cctx, "bkt", strings.NewReader("never")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v", err)
	}
	if got := files(t, b); len(got) != 1 {
		t.Fatalf("files after failed writes: %v", got)
	}
	if got := readBlob(t, b, old.ID); string(got) != "old object" {
		t.Fatalf("old blob now %q", got)
	}
}

// TestWriteInvisibleUntilDone: while a write is in flight no file with a
// blob's name exists, so nothing can open it half written.
func TestWriteInvisibleUntilDone(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	pr, pw := io.Pipe()
	done := make(chan backend.Blob)
	go func() {
		blob, err := b.Write(ctx, "bkt", pr)
		if err != nil {
			t.Error(err)
		}
		done <- blob
	}()
	if _, err := pw.Write(bytes.Repeat([]byte("a"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	for _, f := range files(t, b) {
		if validID(filepath.Base(f)) {
			t.Fatalf("blob %s visible before its write finished", f)
		}
	}
	pw.Close()
	blob := <-done
	if len(readBlob(t, b, blob.ID)) != 1<<20 {
		t.Fatal("blob incomplete")
	}
}

func TestConcurrentReadersOfDeletedBlob(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	blob, err := b.Write(ctx, "bkt", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	readers := make([]backend.Reader, 8)
	for i := range readers {
		if readers[i], _, err = b.Open(ctx, "bkt", blob.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Replaced and deleted while the readers are open: each still reads
	// the whole blob.
	if err := b.Delete(ctx, "bkt", blob.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("reader got %d bytes, err %v", len(got), err)
			}
		}()
	}
	wg.Wait()
}

func TestConcat(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	var ids []string
	var want []byte
	for i, s := range []string{"first part ", "second ", "", "third"} {
		p := []byte(strings.Repeat(s, i+1))
		blob, err := b.Write(ctx, "bkt", bytes.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, blob.ID)
		want = append(want, p...)
	}
	blob, err := b.Concat(ctx, "bkt", ids)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, b, blob.ID); !bytes.Equal(got, want) || blob.Size != int64(len(want)) {
		t.Fatalf("concat %q (size %d), want %q", got, blob.Size, want)
	}
	// A missing source fails the whole concatenation and leaves no blob.
	before := len(files(t, b))
	if _, err := b.Concat(ctx, "bkt", []string{ids[0], newID()}); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("concat with a missing part: %v", err)
	}
	if after := len(files(t, b)); after != before {
		t.Fatalf("failed concat left %d files", after-before)
	}
}

func TestSweep(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	keep, err := b.Write(ctx, "bkt", strings.NewReader("kept"))
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := b.Write(ctx, "bkt", strings.NewReader("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of a write leaves.
	tmp := filepath.Join(b.Root(), "bkt", keep.ID[:2], tmpPrefix+newID()+"-123")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Sweep(ctx, "bkt", func(id string) bool { return id == keep.ID }); err != nil {
		t.Fatal(err)
	}
	got := files(t, b)
	if len(got) != 1 || filepath.Base(got[0]) != keep.ID {
		t.Fatalf("after sweep: %v (orphan %s)", got, orphan.ID)
	}
}

func TestDeleteBucket(t *testing.T) {
	ctx := context.Background()
	b := newFS(t)
	if _, err := b.Write(ctx, "bkt", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteBucket(ctx, "bkt"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	entries, err := os.ReadDir(b.Root())
	if err != nil || len(entries) != 0 {
		t.Fatalf("root after delete: %v %v", entries, err)
	}
	if err := b.SweepTrash(ctx); err != nil {
		t.Fatal(err)
	}
}

// pattern is a large object made on the fly: n bytes of a repeating
// pattern, never held in memory.
type pattern struct {
	n, off int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestStreamingBoundedMemory writes and reads back a large object and
// checks that memory did not grow with it. 256 MiB by default; set
// WALRUS_BIG_MB=2048 for the 2 GiB run.
func TestStreamingBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large object test")
	}
	size := int64(256) << 20
	if v := os.Getenv("WALRUS_BIG_MB"); v != "" {
		var mb int64
		for _, c := range v {
			mb = mb*10 + int64(c-'0')
		}
		size = mb << 20
	}
	ctx := context.Background()
	b := newFS(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	wantSum := sha256.New()
	blob, err := b.Write(ctx, "bkt", io.TeeReader(&pattern{n: size}, wantSum))
	if err != nil {
		t.Fatal(err)
	}
	r, n, err := b.Open(ctx, "bkt", blob.ID)
	if err != nil {
		t.Fatal(err)
	}
	gotSum := sha256.New()
	if _, err := io.CopyBuffer(gotSum, r, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	runtime.ReadMemStats(&after)
	if n != size || !bytes.Equal(gotSum.Sum(nil), wantSum.Sum(nil)) {
		t.Fatalf("read back %d bytes, digest mismatch", n)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("moving %d MiB allocated %d MiB: not streaming", size>>20, grew>>20)
	}
}
