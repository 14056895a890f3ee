package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/euca-cloud/euca/store"
)

// Run uploads pending snapshots (resumed ones first) until ctx ends, and
// collects the chunks no snapshot refers to any more: at start, then every
// GCInterval. It returns nil once ctx is done and the uploads it started
// have stopped; a snapshot stopped half-way stays pending and resumes at
// the next Run (of this engine or of a new one).
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("snapshot: engine already running")
	}
	e.running = true
	e.mu.Unlock()
	defer func() {
		e.workers.Wait()
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()
	e.redoDeletes(ctx)
	e.collectGarbage(ctx)
	tick := time.NewTicker(e.gcEvery)
	defer tick.Stop()
	for {
		e.startUploads(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-tick.C:
			e.redoDeletes(ctx)
			e.collectGarbage(ctx)
		}
	}
}

// startUploads starts an uploader for every pending snapshot without one.
func (e *Engine) startUploads(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.pending {
		if p.started || e.deleting[p.id] {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p.started, p.cancel, p.finished = true, cancel, make(chan struct{})
		e.workers.Add(1)
		go func(p *pending, finished chan struct{}) {
			defer e.workers.Done()
			defer close(finished)
			defer cancel()
			select {
			case e.uploads <- struct{}{}:
				e.upload(pctx, p)
				<-e.uploads
			case <-pctx.Done():
			}
			e.mu.Lock()
			p.started = false
			e.mu.Unlock()
		}(p, p.finished)
	}
}

// retries is how many times a failed chunk upload is tried again before
// its snapshot fails.
const retries = 4

// upload records every chunk of p from its next one, then completes it.
// It returns when done, failed, or ctx ends (the snapshot stays pending).
func (e *Engine) upload(ctx context.Context, p *pending) {
	sn, err := e.st.SCSnapshot(ctx, p.id)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("snapshot upload: read its row", "snapshot", p.id, "err", err)
		}
		return
	}
	if sn.State != store.SCSnapPending {
		return
	}
	start := time.Now()
	src, err := e.source(ctx, p, sn.NextChunk)
	if err != nil {
		_ = e.fail(ctx, p, err.Error())
		return
	}
	if err := e.record(ctx, p, src, sn.NextChunk); err != nil {
		if ctx.Err() == nil && !errors.Is(err, store.ErrSCSnapState) {
			e.log.Error("snapshot failed", "snapshot", p.id, "err", err)
			_ = e.fail(ctx, p, err.Error())
		}
		return
	}
	if err := e.finish(ctx, p); err != nil {
		if ctx.Err() == nil && !errors.Is(err, store.ErrSCSnapState) {
			e.log.Error("snapshot failed", "snapshot", p.id, "err", err)
			_ = e.fail(ctx, p, err.Error())
		}
		return
	}
	done, _ := e.st.SCSnapshot(ctx, p.id)
	e.log.InfoContext(ctx, "snapshot completed", "snapshot", p.id, "volume", p.volumeID, "chunks", done.DataChunks,
		"new_chunks", done.NewChunks, "new_bytes", done.NewBytes, "ms", time.Since(start).Milliseconds())
}

// source is the volume to read p from, opened again after a restart; nil
// when nothing is left to read.
func (e *Engine) source(ctx context.Context, p *pending, next int) (Volume, error) {
	e.mu.Lock()
	src := p.src
	e.mu.Unlock()
	if src != nil || next >= p.count {
		return src, nil
	}
	if e.open == nil {
		return nil, fmt.Errorf("volume %s cannot be opened again to resume", p.volumeID)
	}
	src, err := e.open(ctx, p.volumeID)
	if err != nil {
		return nil, fmt.Errorf("open volume %s to resume: %w", p.volumeID, err)
	}
	if src.Size() < p.size {
		closeVolume(src)
		return nil, fmt.Errorf("volume %s is %d bytes, smaller than the %d snapshotted", p.volumeID, src.Size(), p.size)
	}
	e.mu.Lock()
	p.src = src
	e.mu.Unlock()
	return src, nil
}

// sparseOf returns how to find src's data, nil when it cannot tell.
func sparseOf(src Volume) Sparse {
	if s, ok := src.(Sparse); ok {
		return s
	}
	return nil
}

// File is a volume kept in a file (raw, maybe sparse): its size is the
// file's when opened, and its holes are found with lseek(SEEK_DATA)
// instead of being read.
type File struct {
	*os.File
	size int64
}

// NewFile makes a Volume of an open file; closing the Volume closes f.
func NewFile(f *os.File) (*File, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &File{File: f, size: fi.Size()}, nil
}

// OpenFile opens the file at path as a Volume, read only.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	v, err := NewFile(f)
	if err != nil {
		f.Close()
	}
	return v, err
}

// Size is the file's size when it was opened.
func (f *File) Size() int64 { return f.size }

const seekData = 3 // SEEK_DATA (Linux, and the BSDs)

// NextData implements Sparse. The file offset moves, which ReadAt
// (pread) ignores.
func (f *File) NextData(off int64) (int64, error) {
	n, err := f.Seek(off, seekData)
	var pe *os.PathError
	switch {
	case errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENXIO):
		return f.size, nil // no data at or after off
	case errors.As(err, &pe) && errors.Is(pe.Err, syscall.EINVAL):
		return off, nil // a file system without SEEK_DATA: read everything
	case err != nil:
		return 0, err
	}
	return n, nil
}

// piece is what the reader of a snapshot found at chunk i: data (with
// its hash), or holes up to j.
type piece struct {
	i, j int
	data []byte
	hash string
	buf  *[]byte // data's buffer, back to bufPool once recorded
	err  error

	// put carries the end of the chunk's upload (prepare); nil for holes.
	put      chan error
	pinned   bool // prepare pinned hash: collect leaves it alone
	uploaded bool // prepare stored the object (it was not in Walrus)
}

// parallelPuts is how many chunks of a snapshot are stored in Walrus at
// once: each is a file written and synced twice (data, directory), and
// the file system overlaps concurrent syncs.
const parallelPuts = 4

// record records p's chunks from next on, in three stages: a reader reads
// and hashes the chunks ahead, up to parallelPuts of them are stored in
// Walrus at once, and each is recorded in order (next_chunk is a
// watermark: every chunk below it is recorded).
func (e *Engine) record(ctx context.Context, p *pending, src Volume, next int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pieces := make(chan *piece, 2)
	go func() {
		defer close(pieces)
		sparse := sparseOf(src)
		for i := next; i < p.count && ctx.Err() == nil; {
			pc := e.read(p, src, sparse, i)
			pieces <- pc // the next stage reads until this closes
			if pc.err != nil {
				return
			}
			i = pc.j
		}
	}()
	ordered := make(chan *piece, parallelPuts)
	go func() {
		defer close(ordered)
		sem := make(chan struct{}, parallelPuts)
		for pc := range pieces {
			if pc.err == nil && pc.data != nil {
				pc.put = make(chan error, 1)
				select {
				case sem <- struct{}{}:
					go func() {
						pc.put <- e.prepare(ctx, pc)
						<-sem
					}()
				case <-ctx.Done():
					pc.put <- ctx.Err()
				}
			}
			ordered <- pc // the committer reads until this closes
		}
	}()
	defer func() {
		cancel()
		for pc := range ordered {
			if pc.put != nil {
				<-pc.put
			}
			e.unpin(pc)
			pc.release()
		}
	}()
	for pc := range ordered {
		err := pc.err
		if pc.put != nil {
			if perr := <-pc.put; err == nil {
				err = perr
			}
			pc.put = nil
		}
		if err == nil {
			err = ctx.Err()
		}
		if err == nil && pc.data == nil {
			err = e.st.SkipSCSnapshotChunks(ctx, p.id, pc.j)
		} else if err == nil {
			err = e.st.AddSCSnapshotChunk(ctx, p.id, pc.i, pc.hash, int64(len(pc.data)), pc.uploaded)
		}
		e.unpin(pc)
		pc.release()
		if err != nil {
			return err
		}
		p.markDone(pc.i, pc.j)
	}
	return ctx.Err()
}

func (pc *piece) release() {
	if pc.buf != nil {
		bufPool.Put(pc.buf)
		pc.buf = nil
	}
}

// prepare makes sure chunk pc is in Walrus: unless a snapshot already
// holds it, its row is written (unreferenced: garbage until recorded) and
// its object stored. The hash stays pinned until the chunk is recorded,
// so that a collection meanwhile does not take the object for garbage.
func (e *Engine) prepare(ctx context.Context, pc *piece) error {
	size := int64(len(pc.data))
	unlock := e.lockHash(pc.hash)
	stored, err := e.st.IntendSCChunk(ctx, pc.hash, size)
	if err == nil {
		e.pinMu.Lock()
		e.pinned[pc.hash]++
		e.pinMu.Unlock()
		pc.pinned = true
	}
	unlock()
	if err != nil || stored {
		return err
	}
	err = retry(ctx, func() error { return e.obj.Put(ctx, chunkKey(pc.hash), bytes.NewReader(pc.data), size) })
	if err != nil {
		return fmt.Errorf("store chunk %d: %w", pc.i, err)
	}
	pc.uploaded = true
	return nil
}

// unpin lets collections see pc's chunk again.
func (e *Engine) unpin(pc *piece) {
	if !pc.pinned {
		return
	}
	pc.pinned = false
	e.pinMu.Lock()
	if e.pinned[pc.hash]--; e.pinned[pc.hash] <= 0 {
		delete(e.pinned, pc.hash)
	}
	e.pinMu.Unlock()
}

// isPinned reports a chunk an upload is storing. Under its hash lock.
func (e *Engine) isPinned(hash string) bool {
	e.pinMu.Lock()
	defer e.pinMu.Unlock()
	return e.pinned[hash] > 0
}

// read reads chunk i of p's point in time (its pre-image, or the volume),
// or the run of holes from i.
func (e *Engine) read(p *pending, src Volume, sparse Sparse, i int) *piece {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pre[i] == preZero {
		j := i + 1
		for j < p.count && p.pre[j] == preZero {
			j++
		}
		return &piece{i: i, j: j}
	}
	if p.pre[i] == preNone && sparse != nil {
		d, err := sparse.NextData(int64(i) * ChunkSize)
		if err != nil {
			return &piece{i: i, err: fmt.Errorf("find data of volume %s: %w", p.volumeID, err)}
		}
		j := min(p.count, int(d/ChunkSize))
		for k := i + 1; k < j; k++ {
			if p.pre[k] == preData {
				j = k
				break
			}
		}
		if j > i {
			// No data now and none saved: holes at the point in time too
			// (a write there since would have saved a pre-image).
			return &piece{i: i, j: j}
		}
	}
	bp := bufPool.Get().(*[]byte)
	pc := &piece{i: i, j: i + 1, buf: bp, data: (*bp)[:p.chunkLen(i)]}
	if p.pre[i] == preData {
		pc.err = readPreImage(p.preImage(i), pc.data)
	} else if err := readFull(src, pc.data, int64(i)*ChunkSize); err != nil {
		pc.err = fmt.Errorf("read chunk %d of volume %s: %w", i, p.volumeID, err)
	}
	switch {
	case pc.err != nil:
	case isZero(pc.data):
		pc.data = nil
	default:
		sum := sha256.Sum256(pc.data)
		pc.hash = hex.EncodeToString(sum[:])
	}
	if pc.data == nil {
		pc.release()
	}
	return pc
}

// readPreImage reads a pre-image into data.
func readPreImage(path string, data []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pre-image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pre-image: %w", err)
	}
	switch fi.Size() {
	case int64(len(data)):
		if _, err := io.ReadFull(f, data); err != nil {
			return fmt.Errorf("pre-image %s: %w", path, err)
		}
		return nil
	}
	return fmt.Errorf("pre-image %s is %d bytes, not %d", path, fi.Size(), len(data))
}

// markDone notes chunks [i, j) recorded: later writes to them need no
// pre-image, and pre-images saved for them are not needed any more.
func (p *pending) markDone(i, j int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := i; k < j; k++ {
		p.done[k] = true
		if p.pre[k] == preData {
			_ = os.Remove(p.preImage(k))
		}
	}
}

// retry runs fn until it succeeds, ctx ends, or it failed retries+1 times.
func retry(ctx context.Context, fn func() error) error {
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt == retries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// Manifest is a snapshot's manifest object.
type Manifest struct {
	SnapshotID string `json:"snapshot_id"`
	VolumeID   string `json:"volume_id"`
	VolumeSize int64  `json:"volume_size"`
	ChunkSize  int64  `json:"chunk_size"`
	// Chunks has an entry per chunk index: the SHA-256 (hex) of its data,
	// "" for a hole.
	Chunks  []string  `json:"chunks"`
	Created time.Time `json:"created"`
}

// finish writes p's manifest, then marks it completed.
func (e *Engine) finish(ctx context.Context, p *pending) error {
	sn, err := e.st.SCSnapshot(ctx, p.id)
	if err != nil {
		return err
	}
	chunks, err := e.st.SCSnapshotChunks(ctx, p.id)
	if err != nil {
		return err
	}
	m := Manifest{SnapshotID: sn.ID, VolumeID: sn.VolumeID, VolumeSize: sn.SizeBytes, ChunkSize: sn.ChunkSize,
		Chunks: make([]string, sn.ChunkCount), Created: store.Time(sn.StartedMS)}
	for _, c := range chunks {
		m.Chunks[c.Idx] = c.Hash
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := retry(ctx, func() error { return e.obj.Put(ctx, manifestKey(p.id), bytes.NewReader(body), int64(len(body))) }); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	if err := e.st.CompleteSCSnapshot(ctx, p.id); err != nil {
		return err
	}
	e.release(p)
	return nil
}

// release forgets a snapshot that is no longer pending: no more copy on
// write, its pre-images and its volume handle let go.
func (e *Engine) release(p *pending) {
	e.mu.Lock()
	e.unregister(p)
	src := p.src
	p.src = nil
	e.mu.Unlock()
	closeVolume(src)
	if err := os.RemoveAll(p.dir); err != nil {
		e.log.Warn("remove pre-images", "snapshot", p.id, "err", err)
	}
}

// fail puts p in the error state and stops its upload.
func (e *Engine) fail(ctx context.Context, p *pending, reason string) error {
	err := e.st.FailSCSnapshot(context.WithoutCancel(ctx), p.id, reason)
	if err != nil && !errors.Is(err, store.ErrSCSnapState) && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("snapshot: fail %s: %w", p.id, err)
	}
	e.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	e.mu.Unlock()
	e.release(p)
	return nil
}

// readLimited reads r whole, failing past max bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("longer than %d bytes", max)
	}
	return b, nil
}
