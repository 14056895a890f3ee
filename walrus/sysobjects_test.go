package walrus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSystemBucket: objects written in process are S3 objects their
// owner reads over HTTP, and no one else does.
func TestSystemBucket(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b, err := e.w.SystemBucket(ctx, "euca-snapshots", e.alice.account)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.w.SystemBucket(ctx, "euca-snapshots", e.alice.account); err != nil {
		t.Fatalf("second open: %v", err)
	}
	if _, err := e.w.SystemBucket(ctx, "euca-snapshots", e.bob.account); err == nil {
		t.Fatal("another account opened alice's bucket as its own")
	}
	data := bytes.Repeat([]byte("chunk of data "), 1000)
	if err := b.Put(ctx, "chunks/abc", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "manifests/snap-1.json", strings.NewReader(`{"x":1}`), 7); err != nil {
		t.Fatal(err)
	}

	r := e.must(e.do(v4(e.alice, ""), http.MethodGet, "/euca-snapshots/chunks/abc", nil), http.StatusOK)
	if !bytes.Equal(r.body, data) {
		t.Fatalf("GET over S3 returned %d bytes, not the %d put", len(r.body), len(data))
	}
	if ct := e.must(e.do(v4(e.alice, ""), http.MethodHead, "/euca-snapshots/manifests/snap-1.json", nil), http.StatusOK).header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("manifest content type %q", ct)
	}
	list := e.must(e.do(v4(e.alice, ""), http.MethodGet, "/euca-snapshots?list-type=2", nil), http.StatusOK)
	if !bytes.Contains(list.body, []byte("<Key>chunks/abc</Key>")) || !bytes.Contains(list.body, []byte("<Key>manifests/snap-1.json</Key>")) {
		t.Fatalf("listing lacks the objects: %s", list.body)
	}
	e.wantErr(e.do(v4(e.bob, ""), http.MethodGet, "/euca-snapshots/chunks/abc", nil), http.StatusForbidden, "AccessDenied")

	rc, err := b.Get(ctx, "chunks/abc")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	keys, err := b.Keys(ctx, "chunks/")
	if err != nil || !reflect.DeepEqual(keys, []string{"chunks/abc"}) {
		t.Fatalf("Keys = %v, %v", keys, err)
	}

	// A source shorter or longer than declared stores nothing.
	if err := b.Put(ctx, "chunks/short", bytes.NewReader(data), int64(len(data))+1); err == nil {
		t.Fatal("a short source was stored")
	}
	if err := b.Put(ctx, "chunks/long", bytes.NewReader(data), int64(len(data))-1); err == nil {
		t.Fatal("a long source was stored")
	}
	if _, err := b.Get(ctx, "chunks/short"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get of a refused put: %v, want fs.ErrNotExist", err)
	}

	// Replacing and deleting leave no blob behind.
	if err := b.Put(ctx, "chunks/abc", bytes.NewReader(data[:10]), 10); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"chunks/abc", "manifests/snap-1.json", "chunks/never"} {
		if err := b.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	e.wantErr(e.do(v4(e.alice, ""), http.MethodGet, "/euca-snapshots/chunks/abc", nil), http.StatusNotFound, "NoSuchKey")
	var blobs []string
	filepath.WalkDir(filepath.Join(e.cfg.WalrusBucketsPath, "euca-snapshots"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs = append(blobs, p)
		}
		return nil
	})
	if len(blobs) != 0 {
		t.Fatalf("blobs left: %v", blobs)
	}
	bk, err := e.st.WalrusBucket(ctx, "euca-snapshots")
	if err != nil || bk.Objects != 0 || bk.SizeBytes != 0 {
		t.Fatalf("bucket after deletes: %+v %v", bk, err)
	}

	// Its owner deletes it with an S3 client: the next write makes it again.
	e.must(e.do(v4(e.alice, ""), http.MethodDelete, "/euca-snapshots", nil), http.StatusNoContent)
	if err := b.Put(ctx, "chunks/again", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put after the bucket was deleted: %v", err)
	}
	if bk, err := e.st.WalrusBucket(ctx, "euca-snapshots"); err != nil || bk.AccountID != e.alice.account || bk.Objects != 1 {
		t.Fatalf("bucket made again: %+v %v", bk, err)
	}
}
