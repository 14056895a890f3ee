package imagecache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// fakeSource serves images from memory and counts opens.
type fakeSource struct {
	mu     sync.Mutex
	images map[string][]byte // by id
	opens  map[string]int
	gate   chan struct{} // when not nil, reads wait for it to close
	total  atomic.Int64
}

func newFakeSource() *fakeSource {
	return &fakeSource{images: map[string][]byte{}, opens: map[string]int{}}
}

// add makes an image of n bytes and returns its reference.
func (s *fakeSource) add(id string, n int) ncapi.ImageRef {
	b := bytes.Repeat([]byte(id), n/len(id)+1)[:n]
	s.mu.Lock()
	s.images[id] = b
	s.mu.Unlock()
	sum := sha256.Sum256(b)
	return ncapi.ImageRef{ID: id, SHA256: hex.EncodeToString(sum[:]), Size: int64(n)}
}

func (s *fakeSource) Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.images[ref.ID]
	if !ok {
		return nil, fmt.Errorf("no image %s", ref.ID)
	}
	s.opens[ref.ID]++
	s.total.Add(1)
	var r io.Reader = bytes.NewReader(b)
	if s.gate != nil {
		r = &gated{gate: s.gate, r: r}
	}
	return io.NopCloser(r), nil
}

func (s *fakeSource) opened(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[id]
}

type gated struct {
	gate chan struct{}
	r    io.Reader
}

func (g *gated) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}

// clock is a fake clock that advances a millisecond a reading, so the LRU
// order never depends on how fast the test runs.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time { return time.UnixMilli(c.t.Add(1) + 1_700_000_000_000) }

func open(t *testing.T, dir string, limit int64, src Source) *Cache {
	t.Helper()
	c, err := Open(context.Background(), Options{Dir: dir, Limit: limit, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	var clk clock
	c.now = clk.now
	t.Cleanup(func() { c.Close() })
	return c
}

// files lists the names in dir, sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func has(c *Cache, ref ncapi.ImageRef) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key(ref.ID, ref.SHA256)] != nil
}

func TestConcurrentFirstLaunchesDownloadOnce(t *testing.T) {
	src := newFakeSource()
	src.gate = make(chan struct{})
	ref := src.add("emi-00000001", 64<<10)
	c := open(t, t.TempDir(), 1<<30, src)
	const n = 16
	var wg sync.WaitGroup
	handles := make([]*Handle, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handles[i], errs[i] = c.Get(context.Background(), ref, "")
		}()
	}
	close(src.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if got := src.opened(ref.ID); got != 1 {
		t.Fatalf("%d concurrent launches opened the image %d times, want 1", n, got)
	}
	b, err := os.ReadFile(handles[0].Path)
	if err != nil || int64(len(b)) != ref.Size {
		t.Fatalf("cached file: %d bytes, %v", len(b), err)
	}
	if s := c.Stats(); s.Entries != 1 || s.Pinned != 1 || s.Bytes != ref.Size {
		t.Fatalf("stats %+v", s)
	}
	c.mu.Lock()
	refs := c.entries[key(ref.ID, ref.SHA256)].refs
	c.mu.Unlock()
	if refs != n {
		t.Fatalf("refs %d, want %d", refs, n)
	}
	for _, h := range handles {
		h.Release()
		h.Release() // harmless twice
	}
	if s := c.Stats(); s.Pinned != 0 {
		t.Fatalf("after release: %+v", s)
	}
	// A warm launch opens nothing.
	h, err := c.Get(context.Background(), ref, "")
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if got := src.opened(ref.ID); got != 1 {
		t.Fatalf("a warm launch opened the image again (%d)", got)
	}
}

func TestMismatchCachesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(ref ncapi.ImageRef) ncapi.ImageRef
		want error
	}{
		{"digest", func(r ncapi.ImageRef) ncapi.ImageRef { r.SHA256 = fmt.Sprintf("%064x", 7); return r }, ErrDigest},
		{"shorter", func(r ncapi.ImageRef) ncapi.ImageRef { r.Size++; return r }, ErrSize},
		{"longer", func(r ncapi.ImageRef) ncapi.ImageRef { r.Size--; return r }, ErrSize},
		{"digest-unknown-size", func(r ncapi.ImageRef) ncapi.ImageRef { r.Size = 0; r.SHA256 = fmt.Sprintf("%064x", 9); return r }, ErrDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeSource()
			ref := tc.bad(src.add("emi-00000002", 10000))
			dir := t.TempDir()
			c := open(t, dir, 1<<30, src)
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := c.Get(context.Background(), ref, ""); !errors.Is(err, tc.want) {
						t.Errorf("get: %v, want %v", err, tc.want)
					}
				}()
			}
			wg.Wait()
			if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
				t.Fatalf("stats after refusal: %+v", s)
			}
			if f := files(t, dir); len(f) != 0 {
				t.Fatalf("files left: %v", f)
			}
			// With the cache off, the private copy is refused the same way.
			priv := t.TempDir()
			off := open(t, "", 0, src)
			if _, err := off.Get(context.Background(), ref, priv); !errors.Is(err, tc.want) {
				t.Fatalf("private: %v, want %v", err, tc.want)
			}
			if f := files(t, priv); len(f) != 0 {
				t.Fatalf("private files left: %v", f)
			}
		})
	}
}

func TestBadRefs(t *testing.T) {
	src := newFakeSource()
	ok := src.add("emi-00000003", 100)
	c := open(t, t.TempDir(), 1<<20, src)
	for _, r := range []ncapi.ImageRef{
		{ID: "", SHA256: ok.SHA256},
		{ID: "../etc", SHA256: ok.SHA256},
		{ID: "a/b", SHA256: ok.SHA256},
		{ID: ok.ID, SHA256: "abc"},
		{ID: ok.ID, SHA256: ok.SHA256, Size: -1},
	} {
		if _, err := c.Get(context.Background(), r, ""); !errors.Is(err, ErrBadRef) {
			t.Errorf("%+v: %v, want ErrBadRef", r, err)
		}
	}
	// Upper-case digests are the same image.
	up := ok
	up.SHA256 = string(bytes.ToUpper([]byte(ok.SHA256)))
	h, err := c.Get(context.Background(), up, "")
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
}

func TestLRUEviction(t *testing.T) {
	src := newFakeSource()
	a, b, cc, d := src.add("emi-0000000a", 1000), src.add("emi-0000000b", 1000), src.add("emi-0000000c", 1000), src.add("emi-0000000d", 1000)
	dir := t.TempDir()
	c := open(t, dir, 2500, src)
	use := func(ref ncapi.ImageRef) {
		t.Helper()
		h, err := c.Get(context.Background(), ref, "")
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	use(a)
	use(b)
	use(a) // a is now more recent than b
	use(cc)
	if !has(c, a) || has(c, b) || !has(c, cc) {
		t.Fatalf("after a, b, a, c under 2500 bytes: a=%v b=%v c=%v; want b evicted", has(c, a), has(c, b), has(c, cc))
	}
	use(d) // a is now the oldest
	if has(c, a) || !has(c, cc) || !has(c, d) {
		t.Fatalf("after d: a=%v c=%v d=%v; want a evicted", has(c, a), has(c, cc), has(c, d))
	}
	if s := c.Stats(); s.Bytes > 2500 || s.Entries != 2 {
		t.Fatalf("stats %+v", s)
	}
	// Files follow the index: two images, two sidecars.
	if f := files(t, dir); len(f) != 4 {
		t.Fatalf("files %v", f)
	}
	if src.opened(b.ID) != 1 {
		t.Fatal("b fetched more than once before eviction")
	}
	use(b) // evicted: fetched again
	if src.opened(b.ID) != 2 {
		t.Fatalf("b opened %d times, want 2", src.opened(b.ID))
	}
}

func TestPinnedNeverEvicted(t *testing.T) {
	src := newFakeSource()
	a, b, cc := src.add("emi-0000000a", 1000), src.add("emi-0000000b", 1000), src.add("emi-0000000c", 1000)
	dir := t.TempDir()
	c := open(t, dir, 1500, src)
	ha, err := c.Get(context.Background(), a, "")
	if err != nil {
		t.Fatal(err)
	}
	hb, err := c.Get(context.Background(), b, "") // does not fit beside a, but a is in use
	if err != nil {
		t.Fatal(err)
	}
	if !has(c, a) || !has(c, b) {
		t.Fatal("an image in use was evicted")
	}
	if _, err := os.Stat(ha.Path); err != nil {
		t.Fatalf("pinned file: %v", err)
	}
	hc, err := c.Get(context.Background(), cc, "")
	if err != nil {
		t.Fatal(err)
	}
	if !has(c, a) || !has(c, b) || !has(c, cc) {
		t.Fatal("an image in use was evicted")
	}
	if s := c.Stats(); s.Pinned != 3 || s.Bytes != 3000 {
		t.Fatalf("stats %+v", s)
	}
	// Released images go as soon as they are the ones over the limit.
	hb.Release()
	if has(c, b) {
		t.Fatal("b released over the limit but kept")
	}
	hc.Release()
	if has(c, cc) || !has(c, a) {
		t.Fatalf("c released: a=%v c=%v", has(c, a), has(c, cc))
	}
	ha.Release()
	if !has(c, a) {
		t.Fatal("a fits the limit alone but was evicted")
	}
	if s := c.Stats(); s.Bytes != 1000 || s.Pinned != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Pin takes an entry only if cached.
	if h, ok := c.Pin(a); !ok {
		t.Fatal("pin of a cached image refused")
	} else {
		h.Release()
	}
	if _, ok := c.Pin(b); ok {
		t.Fatal("pin of an evicted image accepted")
	}
}

func TestDisabled(t *testing.T) {
	src := newFakeSource()
	ref := src.add("emi-0000000e", 5000)
	c := open(t, "", 0, src)
	if c.Enabled() {
		t.Fatal("limit 0 is enabled")
	}
	d1, d2 := t.TempDir(), t.TempDir()
	h1, err := c.Get(context.Background(), ref, d1)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c.Get(context.Background(), ref, d2)
	if err != nil {
		t.Fatal(err)
	}
	if h1.Cached || h2.Cached || filepath.Dir(h1.Path) != d1 || filepath.Dir(h2.Path) != d2 {
		t.Fatalf("handles %+v %+v", h1, h2)
	}
	if src.opened(ref.ID) != 2 {
		t.Fatalf("opens %d, want one per instance", src.opened(ref.ID))
	}
	for _, d := range []string{d1, d2} {
		if f := files(t, d); len(f) != 1 || f[0] != ref.ID+".img" {
			t.Fatalf("%s: %v", d, f)
		}
	}
	// A copy already made (a restarted launch) is reused.
	if _, err := c.Get(context.Background(), ref, d1); err != nil || src.opened(ref.ID) != 2 {
		t.Fatalf("reuse: %v, opens %d", err, src.opened(ref.ID))
	}
	if _, ok := c.Pin(ref); ok {
		t.Fatal("pin with the cache off")
	}
	if s := c.Stats(); s.Entries != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestWaiterGivesUpDownloadCarriesOn(t *testing.T) {
	src := newFakeSource()
	src.gate = make(chan struct{})
	ref := src.add("emi-0000000f", 3000)
	c := open(t, t.TempDir(), 1<<20, src)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := c.Get(ctx, ref, "")
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("get: %v", err)
	}
	close(src.gate)
	h, err := c.Get(context.Background(), ref, "") // joins the flight or hits the entry
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if src.opened(ref.ID) != 1 {
		t.Fatalf("opened %d times", src.opened(ref.ID))
	}
	if s := c.Stats(); s.Pinned != 0 || s.Entries != 1 {
		t.Fatalf("stats %+v: the waiter that gave up still pins", s)
	}
}

func TestRestartRebuild(t *testing.T) {
	src := newFakeSource()
	a, b, x := src.add("emi-0000000a", 1000), src.add("emi-0000000b", 1000), src.add("emi-00000010", 1000)
	dir := t.TempDir()
	c := open(t, dir, 10000, src)
	for _, r := range []ncapi.ImageRef{b, a, x} { // b is the least recently used
		h, err := c.Get(context.Background(), r, "")
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	c.Close()

	// Debris of a crash and of tampering.
	junk := map[string]string{
		".tmp-emi-00000011-x.img.123":          "half a download",
		".tmp-meta.456":                        "{",
		key("emi-00000012", a.SHA256) + ".img": "an image with no sidecar",
	}
	for n, body := range junk {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// x's image changed after it was verified.
	xp := filepath.Join(dir, key(x.ID, x.SHA256)+".img")
	os.Chmod(xp, 0o644)
	if err := os.WriteFile(xp, bytes.Repeat([]byte("z"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	// A sidecar whose image is gone.
	os.WriteFile(filepath.Join(dir, key("emi-00000013", b.SHA256)+".json"),
		[]byte(`{"id":"emi-00000013","sha256":"`+b.SHA256+`","size":1000}`), 0o644)

	c2 := open(t, dir, 2500, src)
	if !has(c2, a) || !has(c2, b) || has(c2, x) {
		t.Fatalf("rebuilt: a=%v b=%v x=%v; want a and b only", has(c2, a), has(c2, b), has(c2, x))
	}
	want := []string{key(a.ID, a.SHA256) + ".img", key(a.ID, a.SHA256) + ".json", key(b.ID, b.SHA256) + ".img", key(b.ID, b.SHA256) + ".json"}
	sort.Strings(want)
	if got := files(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files after rebuild:\n got %v\nwant %v", got, want)
	}
	if s := c2.Stats(); s.Bytes != 2000 {
		t.Fatalf("stats %+v", s)
	}
	opens := src.total.Load()
	// The LRU order survived: fetching x again makes room by evicting b,
	// used before a.
	hx, err := c2.Get(context.Background(), x, "")
	if err != nil {
		t.Fatal(err)
	}
	if src.total.Load() != opens+1 {
		t.Fatal("x not fetched again")
	}
	if has(c2, b) || !has(c2, a) {
		t.Fatalf("after x: a=%v b=%v; want b evicted", has(c2, a), has(c2, b))
	}
	hx.Release()
	if h, ok := c2.Pin(a); !ok { // what a restarted node does for adopted instances
		t.Fatal("pin after restart")
	} else {
		h.Release()
	}
}

// TestOpenEvictsNothing: a limit lowered across a restart does not remove
// images before the node controller has pinned those its instances use.
func TestOpenEvictsNothing(t *testing.T) {
	src := newFakeSource()
	a := src.add("emi-0000000a", 1000)
	dir := t.TempDir()
	c := open(t, dir, 10000, src)
	h, err := c.Get(context.Background(), a, "")
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	c.Close()
	c2 := open(t, dir, 10, src)
	if !has(c2, a) {
		t.Fatal("evicted at open")
	}
	h2, ok := c2.Pin(a)
	if !ok {
		t.Fatal("pin")
	}
	h2.Release() // now it goes: over the limit and unused
	if has(c2, a) {
		t.Fatal("kept over the limit after release")
	}
}
