package walrus

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
)

// pattern is a large object made on the fly, never held in memory.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		x := p.off + int64(i)
		b[i] = byte(x ^ x>>9 ^ x>>17)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// TestLargeObjectStreams moves a large object through PUT and GET and
// checks that memory did not grow with it: 256 MiB normally,
// WALRUS_BIG_MB=2048 for the 2 GiB run.
func TestLargeObjectStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large object")
	}
	size := int64(256) << 20
	if v := os.Getenv("WALRUS_BIG_MB"); v != "" {
		mb, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		size = mb << 20
	}
	e := newEnv(t)
	e.must(e.do(v4(e.alice, ""), "PUT", "/large", nil), 200)
	want := sha256.New()
	if _, err := io.Copy(want, &pattern{n: size}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	r, err := http.NewRequest("PUT", e.srv.URL+"/large/big", &pattern{n: size})
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = size
	v4(e.alice, awsauth.UnsignedPayload)(r, nil)
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PUT: %s", res.Status)
	}
	r, _ = http.NewRequest("GET", e.srv.URL+"/large/big", nil)
	v4(e.alice, "")(r, nil)
	res, err = http.DefaultTransport.RoundTrip(r)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.CopyBuffer(got, res.Body, make([]byte, 256<<10))
	res.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("GET: %d bytes, %v, digest matches: %v", n, err, string(got.Sum(nil)) == string(want.Sum(nil)))
	}
	// Buffers are a few MiB whatever the size; the object is not held.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("moving %d MiB allocated %d MiB: not streaming", size>>20, grew>>20)
	}
}

// blobFiles lists the files under the bucket's directory.
func blobFiles(t *testing.T, e *testEnv, bucket string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(e.cfg.WalrusBucketsPath, bucket)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, root+"/"))
		}
		return nil
	})
	return out
}

// TestInterruptedUploadKeepsOld: a client that goes away half way through
// a PUT leaves the old object, and no file behind.
func TestInterruptedUploadKeepsOld(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/cut", nil), 200)
	e.must(e.do(a, "PUT", "/cut/o", []byte("old")), 200)
	filesBefore := blobFiles(t, e, "cut")

	r, _ := http.NewRequest("PUT", e.srv.URL+"/cut/o", nil)
	r.ContentLength = 1 << 20
	v4(e.alice, awsauth.UnsignedPayload)(r, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /cut/o HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.Host, 1<<20)
	for k, v := range r.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprintf(conn, "\r\n%s", strings.Repeat("n", 100<<10))
	conn.Close()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), "IncompleteBody") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(e.logs.String(), "code=IncompleteBody") {
		t.Errorf("no IncompleteBody in the log:\n%s", e.logs.String())
	}
	if r := e.must(e.do(a, "GET", "/cut/o", nil), 200); string(r.body) != "old" {
		t.Errorf("object after an interrupted upload: %q", r.body)
	}
	if after := blobFiles(t, e, "cut"); strings.Join(after, ",") != strings.Join(filesBefore, ",") {
		t.Errorf("files %v, before %v", after, filesBefore)
	}
}

// TestSweepAtStart: what a crash leaves (a write never committed, a
// temporary file) is removed when Walrus starts, and the objects stay.
func TestSweepAtStart(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/crash", nil), 200)
	e.must(e.do(a, "PUT", "/crash/o", []byte("committed")), 200)
	ctx := context.Background()
	// A blob written but never pointed at, as if the process died between
	// the write and the commit, and a half-written temporary file.
	orphan, err := e.w.be.Write(ctx, "crash", strings.NewReader("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(e.cfg.WalrusBucketsPath, "crash", orphan.ID[:2], ".tmp-"+orphan.ID+"-1")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Options{Conf: e.cfg, Store: e.st, Keys: storeKeys{e.st}}); err != nil {
		t.Fatal(err)
	}
	if files := blobFiles(t, e, "crash"); len(files) != 1 {
		t.Errorf("after the sweep: %v", files)
	}
	if r := e.must(e.do(a, "GET", "/crash/o", nil), 200); string(r.body) != "committed" {
		t.Errorf("object after the sweep: %q", r.body)
	}
}
