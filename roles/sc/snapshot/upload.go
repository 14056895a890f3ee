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
}

// record records p's chunks from next on. A reader reads and hashes the
// chunks ahead while the chunk before is stored, so that hashing overlaps
// Walrus's write and sync; chunks are recorded in order (next_chunk is a
// watermark).
func (e *Engine) record(ctx context.Context, p *pending, src Volume, next int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pieces := make(chan piece, 2)
	go func() {
		defer close(pieces)
		sparse := sparseOf(src)
		for i := next; i < p.count && ctx.Err() == nil; {
			pc := e.read(p, src, sparse, i)
			select {
			case pieces <- pc:
			case <-ctx.Done():
				pc.release()
				return
			}
			if pc.err != nil {
				return
			}
			i = pc.j
		}
	}()
	defer func() {
		cancel()
		for pc := range pieces {
			pc.release()
		}
	}()
	for pc := range pieces {
		err := pc.err
		if err == nil {
			err = ctx.Err()
		}
		if err == nil && pc.data == nil {
			err = e.st.SkipSCSnapshotChunks(ctx, p.id, pc.j)
		} else if err == nil {
			err = e.putChunk(ctx, p.id, pc.i, pc.hash, pc.data)
		}
		pc.release()
		if err != nil {
			return err
		}
		p.markDone(pc.i, pc.j)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

func (pc piece) release() {
	if pc.buf != nil {
		bufPool.Put(pc.buf)
	}
}

// read reads chunk i of p's point in time (its pre-image, or the volume),
// or the run of holes from i.
func (e *Engine) read(p *pending, src Volume, sparse Sparse, i int) piece {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.saved[i] && sparse != nil {
		d, err := sparse.NextData(int64(i) * ChunkSize)
		if err != nil {
			return piece{i: i, err: fmt.Errorf("find data of volume %s: %w", p.volumeID, err)}
		}
		j := min(p.count, int(d/ChunkSize))
		for k := i + 1; k < j; k++ {
			if p.saved[k] {
				j = k
				break
			}
		}
		if j > i {
			// No data now and none saved: holes at the point in time too
			// (a write there since would have saved a pre-image).
			return piece{i: i, j: j}
		}
	}
	bp := bufPool.Get().(*[]byte)
	pc := piece{i: i, j: i + 1, buf: bp, data: (*bp)[:p.chunkLen(i)]}
	if p.saved[i] {
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
		pc.buf = nil
	}
	return pc
}

// readPreImage reads a pre-image into data: the chunk's bytes, or none
// for a chunk of zeros.
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
	case 0:
		clear(data)
		return nil
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
		if p.saved[k] {
			_ = os.Remove(p.preImage(k))
		}
	}
}

// putChunk stores chunk idx of snapshot id, uploading its data unless a
// snapshot already holds it.
func (e *Engine) putChunk(ctx context.Context, id string, idx int, hash string, data []byte) error {
	unlock := e.lockHash(hash)
	defer unlock()
	size := int64(len(data))
	stored, err := e.st.IntendSCChunk(ctx, hash, size)
	if err != nil {
		return err
	}
	if !stored {
		err := retry(ctx, func() error { return e.obj.Put(ctx, chunkKey(hash), bytes.NewReader(data), size) })
		if err != nil {
			return fmt.Errorf("store chunk %d: %w", idx, err)
		}
	}
	return e.st.AddSCSnapshotChunk(ctx, id, idx, hash, size, !stored)
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
