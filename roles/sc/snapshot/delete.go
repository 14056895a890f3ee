package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// Copy makes snapshot req.ID hold the same data as the completed snapshot
// req.SourceID: the same chunks, referenced once more (nothing is copied
// in Walrus). The copy is pending until Run has written its manifest.
// ErrNoSuchSnapshot, ErrIncorrectState (the source is not completed); a
// second call changes nothing.
func (e *Engine) Copy(ctx context.Context, req scapi.CopySnapshotRequest) error {
	if req.ID == "" || req.SourceID == "" {
		return fmt.Errorf("snapshot: copy %q of %q: %w", req.ID, req.SourceID, scapi.ErrBadRequest)
	}
	if err := checkID(req.ID); err != nil {
		return err
	}
	err := e.st.CopySCSnapshot(ctx, req.ID, req.SourceID)
	switch {
	case errors.Is(err, store.ErrConflict):
		if sn, err := e.st.SCSnapshot(ctx, req.ID); err == nil && sn.SourceID == req.SourceID && sn.State != store.SCSnapDeleting {
			return nil
		}
		return fmt.Errorf("snapshot: %s exists: %w", req.ID, scapi.ErrBadRequest)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("snapshot: %s: %w", req.SourceID, scapi.ErrNoSuchSnapshot)
	case errors.Is(err, store.ErrSCSnapState):
		return fmt.Errorf("snapshot: copy of %s: %w", req.SourceID, scapi.ErrIncorrectState)
	case err != nil:
		return fmt.Errorf("snapshot: copy %s: %w", req.SourceID, err)
	}
	sn, err := e.st.SCSnapshot(ctx, req.ID)
	if err != nil {
		return fmt.Errorf("snapshot: copy %s: %w", req.SourceID, err)
	}
	p := newPending(sn.ID, sn.VolumeID, sn.SizeBytes, filepath.Join(e.dir, sn.ID))
	p.markAll()
	e.mu.Lock()
	if e.pending[p.id] == nil {
		e.register(p, false)
	}
	e.mu.Unlock()
	e.poke()
	return nil
}

// markAll notes every chunk recorded (a copy: only the manifest is left).
func (p *pending) markAll() {
	for i := range p.done {
		p.done[i] = true
	}
}

// Delete removes a snapshot: its manifest, its references, and the
// chunks no other snapshot holds. A pending snapshot's upload is stopped
// first. An unknown id is not an error; ErrInUse while a volume is being
// made from it.
func (e *Engine) Delete(ctx context.Context, id string) error {
	e.mu.Lock()
	if e.restoring[id] > 0 {
		e.mu.Unlock()
		return fmt.Errorf("snapshot: %s is being read to make a volume: %w", id, scapi.ErrInUse)
	}
	if e.deleting[id] {
		e.mu.Unlock()
		return nil // another call is at it
	}
	e.deleting[id] = true
	p := e.pending[id]
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.deleting, id)
		e.mu.Unlock()
	}()
	if _, err := e.st.MarkSCSnapshotDeleting(ctx, id); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("snapshot: delete %s: %w", id, err)
	}
	if p != nil {
		e.mu.Lock()
		cancel, finished, started := p.cancel, p.finished, p.started
		e.mu.Unlock()
		if started {
			cancel()
			select {
			case <-finished:
			case <-ctx.Done():
				return fmt.Errorf("snapshot: delete %s: %w", id, ctx.Err())
			}
		}
		e.release(p)
	}
	if err := e.remove(ctx, id); err != nil {
		return err
	}
	if p != nil {
		// The stopped upload may have left a chunk it stored but had not
		// yet recorded.
		e.collectGarbage(ctx)
	}
	return nil
}

// remove does what a snapshot marked deleting still needs: its manifest
// deleted, then its row and references in one transaction, its
// pre-images, and the chunks left without references.
func (e *Engine) remove(ctx context.Context, id string) error {
	if err := e.obj.Delete(ctx, manifestKey(id)); err != nil {
		return fmt.Errorf("snapshot: delete %s: manifest: %w", id, err)
	}
	unused, err := e.st.DeleteSCSnapshot(ctx, id)
	if err != nil {
		return fmt.Errorf("snapshot: delete %s: %w", id, err)
	}
	if err := os.RemoveAll(filepath.Join(e.dir, id)); err != nil {
		e.log.Warn("remove pre-images", "snapshot", id, "err", err)
	}
	for _, h := range unused {
		if err := e.collect(ctx, h); err != nil {
			// The next collection retries it.
			e.log.WarnContext(ctx, "delete unused chunk", "chunk", h, "err", err)
		}
	}
	e.log.InfoContext(ctx, "snapshot deleted", "snapshot", id, "chunks_freed", len(unused))
	return nil
}

// collect deletes a chunk's object and row if no snapshot refers to it.
func (e *Engine) collect(ctx context.Context, hash string) error {
	unlock := e.lockHash(hash)
	defer unlock()
	if e.isPinned(hash) {
		return nil // an upload is storing it; garbage again if it fails
	}
	c, err := e.st.SCChunk(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || c.Refs > 0 {
		return err
	}
	if err := e.obj.Delete(ctx, chunkKey(hash)); err != nil {
		return err
	}
	_, err = e.st.DeleteSCChunk(ctx, hash)
	return err
}

// collectGarbage deletes every chunk no snapshot refers to.
func (e *Engine) collectGarbage(ctx context.Context) {
	hashes, err := e.st.SCGarbageChunks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("list unused chunks", "err", err)
		}
		return
	}
	for _, h := range hashes {
		if err := e.collect(ctx, h); err != nil && ctx.Err() == nil {
			e.log.Warn("delete unused chunk", "chunk", h, "err", err)
		}
	}
}

// redoDeletes finishes deletions a crash or a failure interrupted.
func (e *Engine) redoDeletes(ctx context.Context) {
	rows, err := e.st.SCSnapshots(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("list snapshots", "err", err)
		}
		return
	}
	for _, sn := range rows {
		if sn.State != store.SCSnapDeleting {
			continue
		}
		e.mu.Lock()
		busy := e.deleting[sn.ID]
		e.mu.Unlock()
		if busy {
			continue
		}
		if err := e.remove(ctx, sn.ID); err != nil && ctx.Err() == nil {
			e.log.Warn("delete snapshot again", "snapshot", sn.ID, "err", err)
		}
	}
}

// recover loads what the store says is pending: a snapshot being taken
// gets its pre-images back (and fails if they are gone), a copy its
// manifest still to write. Pre-image directories of snapshots no longer
// pending are removed.
func (e *Engine) recover(ctx context.Context) error {
	rows, err := e.st.SCSnapshots(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	pendingIDs := map[string]bool{}
	for _, sn := range rows {
		if sn.State != store.SCSnapPending {
			continue
		}
		p := newPending(sn.ID, sn.VolumeID, sn.SizeBytes, filepath.Join(e.dir, sn.ID))
		for i := 0; i < sn.NextChunk && i < p.count; i++ {
			p.done[i] = true
		}
		if sn.NextChunk < p.count {
			if err := p.loadPreImages(); err != nil {
				reason := fmt.Sprintf("the pre-images that kept its point in time are lost: %v", err)
				e.log.Error("snapshot cannot resume", "snapshot", sn.ID, "err", err)
				if err := e.st.FailSCSnapshot(ctx, sn.ID, reason); err != nil {
					return fmt.Errorf("snapshot: %w", err)
				}
				continue
			}
		}
		pendingIDs[sn.ID] = true
		e.register(p, sn.NextChunk < p.count)
		e.log.Info("snapshot resumes", "snapshot", sn.ID, "volume", sn.VolumeID, "next_chunk", sn.NextChunk, "chunks", p.count)
	}
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	for _, d := range entries {
		if !pendingIDs[d.Name()] {
			if err := os.RemoveAll(filepath.Join(e.dir, d.Name())); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		}
	}
	return nil
}

// loadPreImages notes the pre-images on disk, removing unfinished ones (a
// write whose pre-image was not saved was not applied either).
func (p *pending) loadPreImages() error {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	for _, d := range entries {
		name := d.Name()
		path := filepath.Join(p.dir, name)
		if strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		if a, b, ok := parseZeroMarker(name); ok {
			for k := max(a, 0); k < min(b, p.count); k++ {
				if !p.done[k] {
					p.pre[k] = preZero
				}
			}
			continue
		}
		i, err := strconv.Atoi(name)
		if err != nil || i < 0 || i >= p.count {
			continue
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() != p.chunkLen(i) {
			return fmt.Errorf("pre-image %s is %d bytes, not %d", path, fi.Size(), p.chunkLen(i))
		}
		if p.done[i] {
			_ = os.Remove(path)
			continue
		}
		p.pre[i] = preData
	}
	return nil
}

// parseZeroMarker reads a marker's name, z<a>-<b>.
func parseZeroMarker(name string) (a, b int, ok bool) {
	rest, ok := strings.CutPrefix(name, "z")
	if !ok {
		return 0, 0, false
	}
	as, bs, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(as)
	b, err2 := strconv.Atoi(bs)
	return a, b, err1 == nil && err2 == nil && a < b
}
