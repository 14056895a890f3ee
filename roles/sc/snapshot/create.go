package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// pending is a snapshot not yet completed: what its uploader and the
// copy-on-write hook share.
type pending struct {
	id, volumeID string
	size         int64
	count        int
	// dir holds the pre-images: <dir>/<index> the bytes of a chunk,
	// <dir>/z<a>-<b> (empty) says chunks [a, b) were zeros.
	dir string

	// Set and read under Engine.mu.
	src      Volume // nil until opened (a resumed snapshot)
	started  bool   // an uploader runs
	cancel   context.CancelFunc
	finished chan struct{} // closed when that uploader returns

	mu   sync.Mutex
	done []bool  // recorded in the store
	pre  []uint8 // the chunk's pre-image on disk: preNone, preData, preZero
}

// What a chunk's pre-image is.
const (
	preNone uint8 = iota
	preData       // the file <dir>/<index>
	preZero       // zeros, within a marker z<a>-<b>
)

func newPending(id, volumeID string, size int64, dir string) *pending {
	count := int((size + ChunkSize - 1) / ChunkSize)
	return &pending{id: id, volumeID: volumeID, size: size, count: count, dir: dir,
		done: make([]bool, count), pre: make([]uint8, count)}
}

// chunkLen is the length of chunk i.
func (p *pending) chunkLen(i int) int64 {
	return min(ChunkSize, p.size-int64(i)*ChunkSize)
}

func (p *pending) preImage(i int) string { return filepath.Join(p.dir, strconv.Itoa(i)) }

// zeroMarker names the marker of zero chunks [a, b).
func (p *pending) zeroMarker(a, b int) string {
	return filepath.Join(p.dir, "z"+strconv.Itoa(a)+"-"+strconv.Itoa(b))
}

// atomicMap is the volume -> pending snapshots map BeforeWrite reads
// without a lock; writers (under Engine.mu) store a new copy.
type atomicMap struct {
	p atomic.Pointer[map[string][]*pending]
}

func (a *atomicMap) load() map[string][]*pending   { return *a.p.Load() }
func (a *atomicMap) store(m map[string][]*pending) { a.p.Store(&m) }

// register makes p known and its volume's writes copied on write. Under mu.
func (e *Engine) register(p *pending, cow bool) {
	e.pending[p.id] = p
	if !cow {
		return
	}
	old := e.byVolume.load()
	m := make(map[string][]*pending, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[p.volumeID] = append(append([]*pending(nil), old[p.volumeID]...), p)
	e.byVolume.store(m)
}

// unregister forgets p. Under mu.
func (e *Engine) unregister(p *pending) {
	if e.pending[p.id] == p {
		delete(e.pending, p.id)
	}
	old := e.byVolume.load()
	m := make(map[string][]*pending, len(old))
	for k, v := range old {
		if k != p.volumeID {
			m[k] = v
			continue
		}
		var keep []*pending
		for _, q := range v {
			if q != p {
				keep = append(keep, q)
			}
		}
		if len(keep) > 0 {
			m[k] = keep
		}
	}
	e.byVolume.store(m)
}

// Create starts a snapshot of src as it is now, and returns once that
// point in time is fixed (the snapshot is pending): from then on,
// BeforeWrite keeps what later writes to the volume would change. The
// chunks are uploaded by Run. The engine keeps src until the upload ends,
// then closes it if it is an io.Closer: pass a handle of its own, not one
// an export uses. A second call for a snapshot already known (of the same
// volume) changes nothing.
func (e *Engine) Create(ctx context.Context, req scapi.CreateSnapshotRequest, src Volume) (err error) {
	defer func() {
		if err != nil {
			closeVolume(src)
		}
	}()
	if req.ID == "" || req.VolumeID == "" || src == nil {
		return fmt.Errorf("snapshot: create %q of %q: %w", req.ID, req.VolumeID, scapi.ErrBadRequest)
	}
	if err := checkID(req.ID); err != nil {
		return err
	}
	size := src.Size()
	if size <= 0 || size > MaxVolumeSize {
		return fmt.Errorf("snapshot: volume %s of %d bytes: %w", req.VolumeID, size, scapi.ErrBadRequest)
	}
	if done, err := e.known(ctx, req); done || err != nil {
		closeVolume(src)
		return err
	}
	dir := filepath.Join(e.dir, req.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("snapshot: create %s: %w", req.ID, err)
	}
	if err := syncDir(e.dir); err != nil {
		return fmt.Errorf("snapshot: create %s: %w", req.ID, err)
	}
	p := newPending(req.ID, req.VolumeID, size, dir)
	p.src = src
	e.mu.Lock()
	if q := e.pending[req.ID]; q != nil {
		e.mu.Unlock()
		if q.volumeID != req.VolumeID {
			return fmt.Errorf("snapshot: %s is of volume %s: %w", req.ID, q.volumeID, scapi.ErrBadRequest)
		}
		closeVolume(src)
		return nil
	}
	// Copy on write from now on, before the row says the snapshot exists:
	// no write may slip between the point in time and its protection.
	e.register(p, true)
	e.mu.Unlock()
	err = e.st.CreateSCSnapshot(ctx, store.SCSnapshot{ID: req.ID, VolumeID: req.VolumeID, SizeBytes: size,
		ChunkSize: ChunkSize, ChunkCount: p.count})
	if err != nil {
		e.mu.Lock()
		e.unregister(p)
		e.mu.Unlock()
		_ = os.RemoveAll(dir)
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("snapshot: %s exists: %w", req.ID, scapi.ErrBadRequest)
		}
		return fmt.Errorf("snapshot: create %s: %w", req.ID, err)
	}
	e.log.InfoContext(ctx, "snapshot started", "snapshot", req.ID, "volume", req.VolumeID, "bytes", size, "chunks", p.count)
	e.poke()
	return nil
}

// known reports whether snapshot req is already recorded (of the same
// volume: done; of another: ErrBadRequest).
func (e *Engine) known(ctx context.Context, req scapi.CreateSnapshotRequest) (bool, error) {
	sn, err := e.st.SCSnapshot(ctx, req.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("snapshot: %w", err)
	case sn.VolumeID != req.VolumeID || sn.State == store.SCSnapDeleting:
		return false, fmt.Errorf("snapshot: %s is of volume %s (%s): %w", req.ID, sn.VolumeID, sn.State, scapi.ErrBadRequest)
	}
	return true, nil
}

// checkID refuses an id that cannot name a directory or an object key.
func checkID(id string) error {
	if len(id) > 64 {
		return fmt.Errorf("snapshot: id %q: %w", id, scapi.ErrBadRequest)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("snapshot: id %q: %w", id, scapi.ErrBadRequest)
		}
	}
	return nil
}

// poke wakes Run to start new uploads.
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// BeforeWrite is the copy-on-write hook: the storage controller calls it
// before applying a write, trim or zeroing of n bytes at off to a volume,
// with the volume's current bytes in src. For every pending snapshot of
// the volume that has neither recorded nor saved a chunk the range
// touches, the chunk's current bytes are saved (and fdatasync'd) before it
// returns. When no snapshot of the volume is pending it is a map lookup.
//
// A pre-image that cannot be saved (the disk full) fails its snapshot
// rather than the write; an error is returned only when even that cannot
// be recorded, and then the write must not be applied.
func (e *Engine) BeforeWrite(volumeID string, src io.ReaderAt, off, n int64) error {
	ps := e.byVolume.load()[volumeID]
	if len(ps) == 0 || n <= 0 {
		return nil
	}
	var errs []error
	for _, p := range ps {
		if err := p.preserve(src, off, n); err != nil {
			e.log.Error("snapshot pre-image failed: the snapshot fails", "snapshot", p.id, "volume", volumeID, "err", err)
			if ferr := e.fail(context.Background(), p, fmt.Sprintf("saving the bytes a write replaced: %v", err)); ferr != nil {
				errs = append(errs, ferr)
			}
		}
	}
	return errors.Join(errs...)
}

// preserve saves the pre-images the range [off, off+n) needs: each chunk
// of data as a file (fdatasync'd, renamed into place), each run of zero
// chunks as one empty marker (found without reading where src is Sparse:
// a guest's discard of a whole sparse volume costs a file, not a copy),
// then the directory synced once.
func (p *pending) preserve(src io.ReaderAt, off, n int64) error {
	if off >= p.size {
		return nil
	}
	lo := int(off / ChunkSize)
	hi := int((min(off+n, p.size) - 1) / ChunkSize)
	sparse, _ := src.(Sparse)
	p.mu.Lock()
	defer p.mu.Unlock()
	dirty := false
	run := -1 // first chunk of the run of zero chunks being gathered
	endRun := func(end int) error {
		if run < 0 {
			return nil
		}
		f, err := os.OpenFile(p.zeroMarker(run, end), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		for k := run; k < end; k++ {
			p.pre[k] = preZero
		}
		run, dirty = -1, true
		return nil
	}
	data := int64(-1) // where src's next data is, from chunk i on
	for i := lo; i <= hi; i++ {
		if p.done[i] || p.pre[i] != preNone {
			if err := endRun(i); err != nil {
				return err
			}
			continue
		}
		start := int64(i) * ChunkSize
		if sparse != nil && data < start {
			d, err := sparse.NextData(start)
			if err != nil {
				sparse = nil // read instead
			}
			data = d
		}
		zero := sparse != nil && data >= start+p.chunkLen(i)
		if !zero {
			var err error
			if zero, err = p.save(src, i); err != nil {
				return err
			}
			if !zero {
				p.pre[i], dirty = preData, true
			}
		}
		if !zero {
			if err := endRun(i); err != nil {
				return err
			}
		} else if run < 0 {
			run = i
		}
	}
	if err := endRun(hi + 1); err != nil {
		return err
	}
	if dirty {
		return syncDir(p.dir)
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// zeros is a chunk of zeros to compare with.
var zeros = make([]byte, ChunkSize)

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// save writes chunk i's current bytes as its pre-image, unless they are
// zeros (it says so): a temporary file, fdatasync'd, renamed into place
// (the caller syncs the directory). Under p.mu.
func (p *pending) save(src io.ReaderAt, i int) (zero bool, err error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:p.chunkLen(i)]
	if err := readFull(src, buf, int64(i)*ChunkSize); err != nil {
		return false, fmt.Errorf("read chunk %d: %w", i, err)
	}
	if isZero(buf) {
		return true, nil
	}
	return false, writeDurable(p.preImage(i), buf)
}

// readFull reads len(b) bytes at off.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// writeDurable writes a file whole or not at all: its data is durable
// once it returns, its name once the directory is synced.
func writeDurable(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
