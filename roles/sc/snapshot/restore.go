package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"

	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// maxManifest bounds a manifest read back: a 16 TiB volume's 4M entries
// of 67 bytes, with room to spare.
const maxManifest = 320 << 20

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseManifest reads a manifest and checks that it is well formed: sizes
// in range, an entry per chunk index, each a SHA-256 in hex or "". It is
// read from a bucket its owner may write with any S3 client, so nothing in
// it is trusted further than that.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest: %w", err)
	}
	switch {
	case m.ChunkSize != ChunkSize:
		return m, fmt.Errorf("manifest: chunk size %d, not %d", m.ChunkSize, ChunkSize)
	case m.VolumeSize <= 0 || m.VolumeSize > MaxVolumeSize:
		return m, fmt.Errorf("manifest: volume size %d out of range", m.VolumeSize)
	case int64(len(m.Chunks)) != (m.VolumeSize+m.ChunkSize-1)/m.ChunkSize:
		return m, fmt.Errorf("manifest: %d chunks for %d bytes", len(m.Chunks), m.VolumeSize)
	}
	for i, h := range m.Chunks {
		if h != "" && !hashPattern.MatchString(h) {
			return m, fmt.Errorf("manifest: chunk %d: %q is not a SHA-256", i, h)
		}
	}
	return m, nil
}

// Restore writes a completed snapshot's data into dst (a new volume of at
// least the snapshot's size, all zero: holes are skipped), then syncs it.
// Every chunk is checked against its hash before it is written; a chunk
// or manifest missing or not as recorded puts the snapshot in the error
// state and returns ErrCorrupt. ErrNoSuchSnapshot, ErrIncorrectState (not
// completed). DeleteSnapshot is refused (ErrInUse) while it runs.
func (e *Engine) Restore(ctx context.Context, snapshotID string, dst Dest) error {
	e.mu.Lock()
	if e.deleting[snapshotID] {
		e.mu.Unlock()
		return fmt.Errorf("snapshot: %s is being deleted: %w", snapshotID, scapi.ErrIncorrectState)
	}
	e.restoring[snapshotID]++
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.restoring[snapshotID]--; e.restoring[snapshotID] == 0 {
			delete(e.restoring, snapshotID)
		}
		e.mu.Unlock()
	}()
	sn, err := e.st.SCSnapshot(ctx, snapshotID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("snapshot: %s: %w", snapshotID, scapi.ErrNoSuchSnapshot)
	case err != nil:
		return fmt.Errorf("snapshot: %w", err)
	case sn.State != store.SCSnapCompleted:
		return fmt.Errorf("snapshot: %s is %s: %w", snapshotID, sn.State, scapi.ErrIncorrectState)
	}
	chunks, err := e.st.SCSnapshotChunks(ctx, snapshotID)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := e.checkManifest(ctx, sn, chunks); errors.Is(err, ErrCorrupt) {
		return e.corrupt(ctx, snapshotID, err)
	} else if err != nil {
		return fmt.Errorf("snapshot: restore %s: %w", snapshotID, err)
	}
	// A fetcher reads and checks the next chunks while the one before is
	// written.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		idx  int
		data []byte
		buf  *[]byte
		err  error
	}
	ch := make(chan fetched, 2)
	go func() {
		defer close(ch)
		for _, c := range chunks {
			bp := bufPool.Get().(*[]byte)
			data, err := e.readChunk(ctx, c, (*bp)[:0:ChunkSize])
			select {
			case ch <- fetched{c.Idx, data, bp, err}:
			case <-ctx.Done():
				bufPool.Put(bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		for f := range ch {
			bufPool.Put(f.buf)
		}
	}()
	for f := range ch {
		err := f.err
		if err == nil {
			_, err = dst.WriteAt(f.data, int64(f.idx)*sn.ChunkSize)
			if err != nil {
				err = fmt.Errorf("write chunk %d: %w", f.idx, err)
			}
		}
		bufPool.Put(f.buf)
		if errors.Is(err, ErrCorrupt) {
			return e.corrupt(ctx, snapshotID, err)
		}
		if err != nil {
			return fmt.Errorf("snapshot: restore %s: %w", snapshotID, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snapshot: restore %s: %w", snapshotID, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("snapshot: restore %s: %w", snapshotID, err)
	}
	return nil
}

// checkManifest reads the snapshot's manifest and checks it says what the
// store says.
func (e *Engine) checkManifest(ctx context.Context, sn store.SCSnapshot, chunks []store.SCSnapshotChunk) error {
	rc, err := e.obj.Get(ctx, manifestKey(sn.ID))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: manifest missing", ErrCorrupt)
	}
	if err != nil {
		return err
	}
	b, err := readLimited(rc, maxManifest)
	rc.Close()
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if m.VolumeSize != sn.SizeBytes || len(m.Chunks) != sn.ChunkCount {
		return fmt.Errorf("%w: manifest of %d bytes in %d chunks, recorded %d in %d", ErrCorrupt, m.VolumeSize, len(m.Chunks), sn.SizeBytes, sn.ChunkCount)
	}
	want := make([]string, sn.ChunkCount)
	for _, c := range chunks {
		want[c.Idx] = c.Hash
	}
	for i := range want {
		if m.Chunks[i] != want[i] {
			return fmt.Errorf("%w: manifest chunk %d is %q, recorded %q", ErrCorrupt, i, m.Chunks[i], want[i])
		}
	}
	return nil
}

// readChunk reads a chunk's object into buf and checks its size and hash.
func (e *Engine) readChunk(ctx context.Context, c store.SCSnapshotChunk, buf []byte) ([]byte, error) {
	rc, err := e.obj.Get(ctx, chunkKey(c.Hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: chunk %d (%s) missing", ErrCorrupt, c.Idx, c.Hash)
	}
	if err != nil {
		return nil, fmt.Errorf("chunk %d: %w", c.Idx, err)
	}
	defer rc.Close()
	n := 0
	for n < cap(buf) {
		m, err := rc.Read(buf[n:cap(buf)])
		n += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("chunk %d: %w", c.Idx, err)
		}
	}
	data := buf[:n]
	sum := sha256.Sum256(data)
	if int64(n) != c.Size || hex.EncodeToString(sum[:]) != c.Hash {
		return nil, fmt.Errorf("%w: chunk %d is %d bytes hashing to %x, not %d bytes of %s", ErrCorrupt, c.Idx, n, sum, c.Size, c.Hash)
	}
	return data, nil
}

// corrupt fails the snapshot for what cause says.
func (e *Engine) corrupt(ctx context.Context, id string, cause error) error {
	e.log.ErrorContext(ctx, "snapshot data corrupt: the snapshot fails", "snapshot", id, "err", cause)
	if err := e.st.FailSCSnapshot(context.WithoutCancel(ctx), id, cause.Error()); err != nil {
		e.log.ErrorContext(ctx, "record snapshot failure", "snapshot", id, "err", err)
	}
	return fmt.Errorf("snapshot: restore %s: %w", id, cause)
}
