// Package imagecache keeps the images a node controller boots instances from:
// machine images (EMI), kernels (EKI) and ramdisks (ERI), fetched from Walrus
// as plain bytes, verified against their SHA-256, and kept on local disk in
// least-recently-used order under a size limit (NC_CACHE_SIZE).
//
// A launch asks for an image with Get and holds the returned Handle until its
// instance is gone. The pipeline of a Get:
//
//	hit      the entry is pinned (its reference count goes up) and its path returned
//	miss     one download per image, however many launches wait for it: the first
//	         Get starts it, later ones join it (single flight); the bytes stream
//	         through SHA-256 into a temporary file, which is renamed into place
//	         only when digest and size match, so the cache never holds a half or
//	         a wrong file; a mismatch fails every waiter and caches nothing
//	admit    least recently used entries that no instance holds are evicted until
//	         the total fits the limit; entries in use are never evicted, so an
//	         image that cannot fit is still served and the cache shrinks back
//	         when instances release what they hold
//
// The download belongs to the cache, not to one launch: a launch that gives
// up stops waiting, and the image is still cached for the next one.
//
// Layout of Dir: each entry is "<image id>-<sha256>.img" (read-only) beside
// "<image id>-<sha256>.json", which records that the file was verified (its
// digest, size and modification time) and when it was last used (the LRU
// order survives restarts). Open rebuilds the index from the directory: it
// removes temporary files and every image without a sidecar that matches it.
//
// A limit of 0 disables the cache, as NC_CACHE_SIZE=0 did in Eucalyptus:
// each Get fetches and verifies its own copy into the directory the caller
// names (the instance's), and the caller removes it with the instance.
package imagecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/internal/reqid"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Source gives an image's plain (decrypted) bytes. The node controller's
// ImageSource (Walrus in-process, or its HTTP client) is one. The reader
// must end when ctx does (as an HTTP response body does): Close waits for
// the downloads in progress.
type Source interface {
	Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error)
}

// Errors of Get, wrapped with the image id.
var (
	ErrDigest = errors.New("image digest mismatch")
	ErrSize   = errors.New("image size mismatch")
	ErrBadRef = errors.New("invalid image reference")
)

// Options configure a cache.
type Options struct {
	Dir    string // where entries are kept; required unless Limit is 0
	Limit  int64  // bytes; 0 disables the cache
	Source Source
	Log    *slog.Logger // nil: discard
}

// Cache is a node's image cache. Safe for concurrent use.
type Cache struct {
	o      Options
	ctx    context.Context // downloads run under it, not under a waiter's
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry  // by key
	flights map[string]*flight // downloads in progress, by key
	total   int64              // bytes of entries plus reservations of flights
	seq     uint64             // orders uses within one millisecond

	now func() time.Time // the clock of the LRU order; tests replace it
}

type entry struct {
	key  string
	meta sidecar
	refs int    // handles not yet released
	seq  uint64 // tie-break of meta.UsedMS
}

// sidecar is the JSON file beside each cached image.
type sidecar struct {
	ID      string `json:"id"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	MTimeNS int64  `json:"mtime_ns"` // the image file's, when it was verified
	UsedMS  int64  `json:"used_ms"`
}

type flight struct {
	done     chan struct{}
	err      error
	e        *entry
	waiters  int   // each is counted in e.refs when the flight lands
	reserved int64 // counted in total until the flight lands
}

// Handle is a pinned image: its file stays until Release.
type Handle struct {
	Path   string // absolute path of the verified image
	Cached bool   // false: a private copy the caller removes with its instance
	c      *Cache
	e      *entry
	once   sync.Once
}

// Release unpins the image. Harmless twice.
func (h *Handle) Release() {
	if h == nil || h.e == nil {
		return
	}
	h.once.Do(func() { h.c.release(h.e) })
}

// Open opens the cache in o.Dir, rebuilding its index from the files there.
// It evicts nothing: the node controller first pins what its running
// instances use (Pin).
func Open(ctx context.Context, o Options) (*Cache, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Source == nil {
		return nil, errors.New("imagecache: no image source")
	}
	if o.Limit < 0 {
		return nil, fmt.Errorf("imagecache: negative limit %d", o.Limit)
	}
	c := &Cache{o: o, entries: map[string]*entry{}, flights: map[string]*flight{}, now: time.Now}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if o.Limit == 0 {
		return c, nil
	}
	if o.Dir == "" || !filepath.IsAbs(o.Dir) {
		return nil, fmt.Errorf("imagecache: directory %q: want an absolute path", o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("imagecache: %w", err)
	}
	if err := c.rebuild(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Enabled reports whether images are cached (the limit is not 0).
func (c *Cache) Enabled() bool { return c.o.Limit > 0 }

// Close stops downloads in progress; waiters get an error. Cached entries
// stay on disk for the next Open.
func (c *Cache) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// Stats is what the cache holds.
type Stats struct {
	Entries int
	Bytes   int64 // of entries, and of downloads in progress that reserved their size
	Pinned  int   // entries some handle holds
}

func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Entries: len(c.entries), Bytes: c.total}
	for _, e := range c.entries {
		if e.refs > 0 {
			s.Pinned++
		}
	}
	return s
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
var hexRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckRef reports what is wrong with ref (wrapping ErrBadRef), so a request
// can be refused before anything is accepted.
func CheckRef(ref ncapi.ImageRef) error {
	if !idRE.MatchString(ref.ID) {
		return fmt.Errorf("%w: image id %q", ErrBadRef, ref.ID)
	}
	if !hexRE.MatchString(strings.ToLower(ref.SHA256)) {
		return fmt.Errorf("%w: image %s: sha256 %q: want 64 hex digits", ErrBadRef, ref.ID, ref.SHA256)
	}
	if ref.Size < 0 {
		return fmt.Errorf("%w: image %s: size %d", ErrBadRef, ref.ID, ref.Size)
	}
	return nil
}

func key(id, sum string) string { return id + "-" + sum }

func (c *Cache) imagePath(k string) string { return filepath.Join(c.o.Dir, k+".img") }
func (c *Cache) metaPath(k string) string  { return filepath.Join(c.o.Dir, k+".json") }

// tmpPrefix starts every file that is not yet (or no longer) an entry.
const tmpPrefix = ".tmp-"

// Get returns the verified image ref, pinned until the handle is released.
// With the cache disabled it fetches a private copy into privateDir (which
// must exist), named "<image id>.img"; a copy already there was verified
// when it was made (it is renamed into place only then) and is reused.
func (c *Cache) Get(ctx context.Context, ref ncapi.ImageRef, privateDir string) (*Handle, error) {
	if err := CheckRef(ref); err != nil {
		return nil, err
	}
	ref.SHA256 = strings.ToLower(ref.SHA256)
	if !c.Enabled() {
		return c.private(ctx, ref, privateDir)
	}
	k := key(ref.ID, ref.SHA256)
	c.mu.Lock()
	if e := c.entries[k]; e != nil {
		e.refs++
		c.touch(e)
		c.mu.Unlock()
		return &Handle{Path: c.imagePath(k), Cached: true, c: c, e: e}, nil
	}
	f := c.flights[k]
	if f == nil {
		f = &flight{done: make(chan struct{}), reserved: ref.Size}
		c.evict(ref.Size) // make room before the bytes arrive
		c.total += f.reserved
		c.flights[k] = f
		c.wg.Add(1)
		go c.download(reqid.With(c.ctx, reqid.From(ctx)), k, ref, f)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return &Handle{Path: c.imagePath(k), Cached: true, c: c, e: f.e}, nil
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-f.done: // landed meanwhile, counting this waiter
			if f.err == nil {
				c.releaseLocked(f.e)
			}
		default:
			f.waiters--
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Pin pins an entry already cached, without fetching: what a restarted node
// controller does for the instances it adopts. ok is false when the cache is
// disabled or does not hold ref.
func (c *Cache) Pin(ref ncapi.ImageRef) (h *Handle, ok bool) {
	if !c.Enabled() || CheckRef(ref) != nil {
		return nil, false
	}
	k := key(ref.ID, strings.ToLower(ref.SHA256))
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil {
		return nil, false
	}
	e.refs++
	return &Handle{Path: c.imagePath(k), Cached: true, c: c, e: e}, true
}

// download fetches one image for a flight and lands it.
func (c *Cache) download(ctx context.Context, k string, ref ncapi.ImageRef, f *flight) {
	defer c.wg.Done()
	start := time.Now()
	meta, err := c.fetch(ctx, ref, c.o.Dir, k+".img", true)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, k)
	c.total -= f.reserved
	if err != nil {
		f.err = err
		close(f.done)
		c.o.Log.WarnContext(ctx, "image fetch failed", "image", ref.ID, "error", err)
		return
	}
	e := &entry{key: k, meta: meta, refs: f.waiters}
	c.entries[k] = e
	c.total += meta.Size
	c.touch(e)
	c.evict(0)
	f.e = e
	close(f.done)
	c.o.Log.InfoContext(ctx, "image cached", "image", ref.ID, "bytes", meta.Size,
		"took", time.Since(start).Round(time.Millisecond), "cache_bytes", c.total, "limit", c.o.Limit)
}

// private fetches a copy of ref into dir for one instance (cache disabled).
func (c *Cache) private(ctx context.Context, ref ncapi.ImageRef, dir string) (*Handle, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("image %s: private directory %q: want an absolute path", ref.ID, dir)
	}
	name := ref.ID + ".img"
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return &Handle{Path: p}, nil
	}
	if _, err := c.fetch(ctx, ref, dir, name, false); err != nil {
		return nil, err
	}
	return &Handle{Path: p}, nil
}

// fetch streams ref from the source through SHA-256 into a temporary file in
// dir and renames it to name once digest and size match; with a sidecar, the
// sidecar is written first under a temporary name and renamed after the
// image, so an image never has a name without having been verified, and a
// crash between the two renames leaves an image that Open drops.
func (c *Cache) fetch(ctx context.Context, ref ncapi.ImageRef, dir, name string, withMeta bool) (sidecar, error) {
	fail := func(err error) (sidecar, error) { return sidecar{}, fmt.Errorf("image %s: %w", ref.ID, err) }
	rc, err := c.o.Source.Open(ctx, ref)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, tmpPrefix+name+".*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	var r io.Reader = rc
	if ref.Size > 0 { // read one byte more than announced, to see a longer image
		r = io.LimitReader(rc, ref.Size+1)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err == nil {
		err = f.Sync() // the name is the commit: the bytes must be on disk first
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if ref.Size > 0 && n != ref.Size {
		return fail(fmt.Errorf("%w: got %d bytes or more, want %d", ErrSize, n, ref.Size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.SHA256 {
		return fail(fmt.Errorf("%w: got sha256 %s, want %s", ErrDigest, got, ref.SHA256))
	}
	if err := os.Chmod(tmp, 0o444); err != nil { // read-only: overlays read through it
		return fail(err)
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return fail(err)
	}
	meta := sidecar{ID: ref.ID, SHA256: ref.SHA256, Size: n, MTimeNS: fi.ModTime().UnixNano()}
	final := filepath.Join(dir, name)
	if !withMeta {
		if err := os.Rename(tmp, final); err != nil {
			return fail(err)
		}
		return meta, nil
	}
	mtmp, err := writeTemp(dir, meta)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(mtmp)
	k := strings.TrimSuffix(name, ".img")
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := os.Rename(mtmp, c.metaPath(k)); err != nil {
		os.Remove(final)
		return fail(err)
	}
	return meta, nil
}

// ctxReader stops a copy when ctx ends, between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func writeTemp(dir string, meta sidecar) (string, error) {
	b, err := json.Marshal(meta)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"meta.*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// touch marks e used now; the caller holds c.mu. The sidecar is rewritten
// so the order survives a restart; failing that only loses LRU precision.
func (c *Cache) touch(e *entry) {
	c.seq++
	e.seq = c.seq
	e.meta.UsedMS = c.now().UnixMilli()
	if tmp, err := writeTemp(c.o.Dir, e.meta); err == nil {
		if err := os.Rename(tmp, c.metaPath(e.key)); err != nil {
			os.Remove(tmp)
		}
	}
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(e)
}

func (c *Cache) releaseLocked(e *entry) {
	e.refs--
	if c.entries[e.key] != e {
		return
	}
	c.touch(e)
	if e.refs == 0 && c.total > c.o.Limit {
		c.evict(0)
	}
}

// evict removes unpinned entries, least recently used first, until need
// more bytes fit under the limit or nothing more can go; the caller holds
// c.mu.
func (c *Cache) evict(need int64) {
	if c.total+need <= c.o.Limit {
		return
	}
	var free []*entry
	for _, e := range c.entries {
		if e.refs == 0 {
			free = append(free, e)
		}
	}
	sort.Slice(free, func(i, j int) bool {
		if free[i].meta.UsedMS != free[j].meta.UsedMS {
			return free[i].meta.UsedMS < free[j].meta.UsedMS
		}
		return free[i].seq < free[j].seq
	})
	for _, e := range free {
		if c.total+need <= c.o.Limit {
			return
		}
		c.remove(e)
		c.o.Log.Info("image evicted", "image", e.meta.ID, "bytes", e.meta.Size, "cache_bytes", c.total, "limit", c.o.Limit)
	}
}

// remove drops e: the sidecar first, so a crash in between leaves an image
// without a sidecar, which Open drops.
func (c *Cache) remove(e *entry) {
	os.Remove(c.metaPath(e.key))
	os.Remove(c.imagePath(e.key))
	delete(c.entries, e.key)
	c.total -= e.meta.Size
}

// rebuild reads the index back from Dir.
func (c *Cache) rebuild(ctx context.Context) error {
	ents, err := os.ReadDir(c.o.Dir)
	if err != nil {
		return fmt.Errorf("imagecache: %w", err)
	}
	drop := func(name, why string) {
		c.o.Log.WarnContext(ctx, "image cache: dropping file", "file", filepath.Join(c.o.Dir, name), "why", why)
		if err := os.Remove(filepath.Join(c.o.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.o.Log.WarnContext(ctx, "image cache: cannot remove", "error", err)
		}
	}
	for _, de := range ents {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			drop(name, "an unfinished download")
		case strings.HasSuffix(name, ".json"):
			k := strings.TrimSuffix(name, ".json")
			meta, err := readSidecar(c.metaPath(k))
			if err != nil || key(meta.ID, meta.SHA256) != k || CheckRef(ncapi.ImageRef{ID: meta.ID, SHA256: meta.SHA256}) != nil {
				drop(name, "an unreadable or misnamed sidecar")
				continue
			}
			fi, err := os.Stat(c.imagePath(k))
			if err != nil || !fi.Mode().IsRegular() || fi.Size() != meta.Size || fi.ModTime().UnixNano() != meta.MTimeNS {
				drop(name, "its image is missing or changed since it was verified")
				if err == nil {
					drop(k+".img", "changed since it was verified")
				}
				continue
			}
			c.entries[k] = &entry{key: k, meta: meta}
			c.total += meta.Size
		}
	}
	for _, de := range ents { // images whose sidecar did not vouch for them
		name := de.Name()
		if strings.HasSuffix(name, ".img") && !strings.HasPrefix(name, tmpPrefix) && c.entries[strings.TrimSuffix(name, ".img")] == nil {
			if _, err := os.Lstat(filepath.Join(c.o.Dir, name)); err == nil {
				drop(name, "not verified (no sidecar)")
			}
		}
	}
	c.o.Log.InfoContext(ctx, "image cache open", "dir", c.o.Dir, "entries", len(c.entries), "bytes", c.total, "limit", c.o.Limit)
	return nil
}

func readSidecar(p string) (sidecar, error) {
	var m sidecar
	b, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(b, &m)
	return m, err
}
