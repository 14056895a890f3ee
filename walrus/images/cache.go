package images

import (
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// tmpPrefix marks a file being written; whatever carries it at start-up is
// what a crash left.
const tmpPrefix = ".tmp-"

// cache is the directory of plain images, named by SHA-256, with its LRU
// order and the decryptions in flight.
type cache struct {
	dir   string
	limit int64 // bytes kept once unused; 0 keeps none
	log   *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry // by SHA-256
	lru     list.List         // of *entry, most recently used first
	total   int64             // bytes of the entries
	calls   map[string]*call  // decryptions in flight, by key
}

// entry is one cached image. refs counts the readers (and the callers of
// get that have not released it yet): an entry with refs is never evicted.
type entry struct {
	sum  string
	size int64
	refs int
	elem *list.Element
}

// call is one decryption in flight and the callers waiting for it.
type call struct {
	done    chan struct{}
	waiters int // callers waiting; the flight takes a reference for each
	cancel  context.CancelFunc
	ent     *entry
	err     error
}

// maker produces an image as a temporary file in the cache directory,
// complete and synced, with its SHA-256 and size. It removes the file
// itself when it fails.
type maker func(ctx context.Context) (tmp, sum string, size int64, err error)

// openCache indexes what an earlier run left in dir: temporary files are
// removed, images are kept in the order of their modification times (which
// use refreshes), and the cache is trimmed to limit.
func openCache(dir string, limit int64, log *slog.Logger) (*cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	c := &cache{dir: dir, limit: limit, log: log, entries: map[string]*entry{}, calls: map[string]*call{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	type found struct {
		sum   string
		size  int64
		mtime time.Time
	}
	var files []found
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(dir, name)
		if strings.HasPrefix(name, tmpPrefix) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("image cache: %w", err)
			}
			continue
		}
		if !validSum(name) || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		files = append(files, found{name, fi.Size(), fi.ModTime()})
	}
	// Oldest first, each pushed to the front: the newest ends up in front.
	sort.Slice(files, func(i, j int) bool { return files[i].mtime.Before(files[j].mtime) })
	for _, f := range files {
		e := &entry{sum: f.sum, size: f.size}
		e.elem = c.lru.PushFront(e)
		c.entries[f.sum] = e
		c.total += f.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

// validSum reports whether s is a lower-case hex SHA-256.
func validSum(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (c *cache) path(sum string) string { return filepath.Join(c.dir, sum) }

// get returns the entry for key with one reference held for the caller,
// who must release it. When hit names an image already cached it is
// returned at once. Otherwise mk runs once for every caller asking for
// key at the same time: in the background, so that one caller giving up
// does not fail the others, and cancelled once every caller has given up.
func (c *cache) get(ctx context.Context, key, hit string, mk maker) (*entry, error) {
	c.mu.Lock()
	if hit != "" {
		if e, ok := c.entries[hit]; ok {
			c.acquireLocked(e)
			c.mu.Unlock()
			return e, nil
		}
	}
	cl, ok := c.calls[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cl = &call{done: make(chan struct{}), cancel: cancel}
		c.calls[key] = cl
		go c.fly(fctx, key, cl, mk)
	}
	cl.waiters++
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.ent, cl.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-cl.done:
		// It finished meanwhile, with a reference taken for this caller.
		if cl.ent != nil {
			c.releaseLocked(cl.ent)
		}
	default:
		cl.waiters--
		if cl.waiters == 0 {
			// Nobody wants it any more: stop, and let the next asker start
			// afresh rather than join a cancelled flight.
			cl.cancel()
			if c.calls[key] == cl {
				delete(c.calls, key)
			}
		}
	}
	return nil, ctx.Err()
}

// fly runs one decryption and hands its result to the waiters.
func (c *cache) fly(ctx context.Context, key string, cl *call, mk maker) {
	defer cl.cancel()
	tmp, sum, size, err := mk(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls[key] == cl {
		delete(c.calls, key)
	}
	if err == nil {
		var e *entry
		if e, err = c.insertLocked(tmp, sum, size); err == nil {
			e.refs += cl.waiters
			cl.ent = e
		}
	}
	cl.err = err
	close(cl.done)
	c.evictLocked()
}

// insertLocked renames a finished temporary file into the cache, or drops
// it when the same image is there already.
func (c *cache) insertLocked(tmp, sum string, size int64) (*entry, error) {
	if e, ok := c.entries[sum]; ok {
		os.Remove(tmp)
		c.lru.MoveToFront(e.elem)
		return e, nil
	}
	if err := os.Rename(tmp, c.path(sum)); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("image cache: %w", err)
	}
	if err := syncDir(c.dir); err != nil {
		c.log.Warn("image cache: sync directory", "err", err)
	}
	e := &entry{sum: sum, size: size}
	e.elem = c.lru.PushFront(e)
	c.entries[sum] = e
	c.total += size
	return e, nil
}

func (c *cache) acquireLocked(e *entry) {
	e.refs++
	c.lru.MoveToFront(e.elem)
	// The modification time keeps the order across restarts.
	now := time.Now()
	_ = os.Chtimes(c.path(e.sum), now, now)
}

func (c *cache) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked(e)
}

func (c *cache) releaseLocked(e *entry) {
	e.refs--
	c.evictLocked()
}

// evictLocked removes the least recently used images nobody holds until
// the cache fits its limit.
func (c *cache) evictLocked() {
	c.makeRoomLocked(0)
}

// makeRoomLocked evicts unused images, least recently used first, until n
// more bytes fit within the limit (or nothing more can go).
func (c *cache) makeRoomLocked(n int64) {
	for el := c.lru.Back(); el != nil && c.total+n > c.limit; {
		e := el.Value.(*entry)
		prev := el.Prev()
		if e.refs == 0 {
			if err := os.Remove(c.path(e.sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.log.Warn("image cache: evict", "sha256", e.sum, "err", err)
			} else {
				c.lru.Remove(el)
				delete(c.entries, e.sum)
				c.total -= e.size
				c.log.Debug("image cache: evicted", "sha256", e.sum, "size", e.size)
			}
		}
		el = prev
	}
}

// makeRoom evicts ahead of a decryption of n bytes.
func (c *cache) makeRoom(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.makeRoomLocked(n)
}

// open opens a held entry's file; closing the reader releases the entry.
func (c *cache) open(e *entry) (*Reader, error) {
	f, err := os.Open(c.path(e.sum))
	if err != nil {
		c.release(e)
		return nil, fmt.Errorf("image cache: %w", err)
	}
	return &Reader{File: f, c: c, e: e, SHA256: e.sum, Size: e.size}, nil
}

// Reader is an open plain image. Close it: while it is open the image
// stays in the cache.
type Reader struct {
	*os.File
	SHA256 string
	Size   int64

	c    *cache
	e    *entry
	once sync.Once
}

// Close closes the file and lets the cache evict the image again.
func (r *Reader) Close() error {
	err := r.File.Close()
	r.once.Do(func() { r.c.release(r.e) })
	return err
}

// stats is what the cache holds, for tests and logs.
func (c *cache) stats() (files int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.total
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
