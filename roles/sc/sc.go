// Package sc is the storage controller: EBS volumes of one availability
// zone, kept by a backend (roles/sc/backend: sparse files on this host),
// served to the nodes that attach them over NBD with TLS from the cloud's
// CA (internal/nbd), and snapshotted into Walrus by the snapshot engine
// (roles/sc/snapshot). The cloud controller drives it through
// scapi.Storage, in process or over the SC API (scapi/http.go).
//
// Every change is recorded in the store before it is made (intent), and
// every step is harmless twice, so a storage controller killed at any
// point finishes the job when it starts again (recover.go):
//
//	CreateVolume: row "creating" -> answer -> backend file made (.tmp,
//	              filled from the snapshot, synced, renamed) -> "available"
//	DeleteVolume: row "deleting" (refused while exported) -> answer ->
//	              file removed -> row removed
//	Export:       row in sc_exports (a fresh name with a random nonce) ->
//	              answer; a node's NBD connection names it, and Lookup
//	              (nbd.go) lets only that node's certificate in
//	Unexport:     row removed (no new connection) -> the export's
//	              connections dropped (no write of theirs lands after)
//
// Writes through an export pass the snapshot engine's copy-on-write hook
// first, so a pending snapshot keeps the bytes it was taken with.
package sc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/roles/sc/snapshot"
	"github.com/euca-cloud/euca/store"
)

// Options configure New.
type Options struct {
	Zone    string // the availability zone (CLUSTER_NAME)
	Store   *store.Store
	Backend backend.Backend
	// Host and Port are where nodes reach the NBD listener: an address in
	// its certificate, and SC_NBD_PORT.
	Host string
	Port int
	// Snapshots is the snapshot engine; nil answers the snapshot calls
	// with an error saying so.
	Snapshots Snapshots
	Log       *slog.Logger
	// Plain lets NBD clients in without TLS, knowing only an export's
	// name (ENABLE_WS_SECURITY="N", for debugging: said loudly).
	Plain bool
}

// Snapshots is what the storage controller needs of the snapshot engine
// (roles/sc/snapshot.Engine).
type Snapshots interface {
	// Create starts a snapshot of src (a handle of its own, which the
	// engine closes when done) as it is at the call.
	Create(ctx context.Context, req scapi.CreateSnapshotRequest, src SnapshotSource) error
	// BeforeWrite keeps, for pending snapshots of the volume, the bytes a
	// write of n bytes at off is about to replace (src: the volume now).
	BeforeWrite(volumeID string, src io.ReaderAt, off, n int64) error
	// Restore writes a completed snapshot's data into dst (all zero).
	Restore(ctx context.Context, snapshotID string, dst SnapshotDest) error
	Copy(ctx context.Context, req scapi.CopySnapshotRequest) error
	Delete(ctx context.Context, id string) error
	Snapshots(ctx context.Context, ids ...string) ([]scapi.Snapshot, error)
}

// SnapshotSource is a volume a snapshot reads (the engine's own type, so
// that *snapshot.Engine is a Snapshots).
type SnapshotSource = snapshot.Volume

// SnapshotDest is a volume being made from a snapshot.
type SnapshotDest = snapshot.Dest

// Dropper closes an export's NBD connections (nbd.Server.Drop).
type Dropper interface{ Drop(name string) }

// SC is one storage controller.
type SC struct {
	zone   string
	st     *store.Store
	be     backend.Backend
	host   string
	port   int
	snaps  Snapshots
	log    *slog.Logger
	plain  bool
	ctx    context.Context // the background jobs' (cancelled by Close)
	cancel context.CancelFunc
	jobs   sync.WaitGroup

	mu      sync.Mutex
	dropper Dropper
	// running are the volumes a job (create, delete) works on, with the
	// job's cancel: one job per volume at a time, and a delete stops a
	// creation.
	running map[string]*job
}

type job struct {
	cancel context.CancelFunc
	done   chan struct{}
}

var _ scapi.Storage = (*SC)(nil)

// New opens the storage controller over its store and backend and brings
// the backend to what the store says (recover.go): interrupted creations
// and deletions are taken up again in the background. Close stops them.
func New(ctx context.Context, o Options) (*SC, error) {
	if o.Store == nil || o.Backend == nil || o.Zone == "" {
		return nil, errors.New("sc: Store, Backend and Zone are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &SC{zone: o.Zone, st: o.Store, be: o.Backend, host: o.Host, port: o.Port, snaps: o.Snapshots, log: o.Log,
		plain: o.Plain, running: map[string]*job{}}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.recover(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the background jobs and waits for them. An interrupted job's
// volume stays as its row says ("creating", "deleting"); the next New
// takes it up again.
func (s *SC) Close() {
	s.cancel()
	s.jobs.Wait()
}

// Run holds the storage controller until ctx ends, then closes it.
func (s *SC) Run(ctx context.Context) error {
	<-ctx.Done()
	s.Close()
	return nil
}

// SetDropper gives the storage controller its NBD server, whose export
// connections Unexport closes.
func (s *SC) SetDropper(d Dropper) {
	s.mu.Lock()
	s.dropper = d
	s.mu.Unlock()
}

func (s *SC) Zone() string { return s.zone }

// start runs f as the one job of volume id, after any job of it already
// running (stopped first when stop is set).
func (s *SC) start(id string, stop bool, f func(ctx context.Context)) {
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		for {
			s.mu.Lock()
			prev := s.running[id]
			if prev == nil {
				ctx, cancel := context.WithCancel(s.ctx)
				j := &job{cancel: cancel, done: make(chan struct{})}
				s.running[id] = j
				s.mu.Unlock()
				defer func() {
					s.mu.Lock()
					delete(s.running, id)
					s.mu.Unlock()
					cancel()
					close(j.done)
				}()
				if s.ctx.Err() == nil {
					f(ctx)
				}
				return
			}
			s.mu.Unlock()
			if stop {
				prev.cancel()
			}
			select {
			case <-prev.done:
			case <-s.ctx.Done():
				return
			}
		}
	}()
}

// CreateVolume records the volume and makes it in the background.
func (s *SC) CreateVolume(ctx context.Context, req scapi.CreateVolumeRequest) error {
	if err := backend.CheckID(req.ID); err != nil {
		return fmt.Errorf("%w: volume id %q", scapi.ErrBadRequest, req.ID)
	}
	if req.SizeBytes <= 0 || req.SizeBytes > backend.MaxSize {
		return fmt.Errorf("%w: volume size %d bytes out of range (1 byte to 16 TiB)", scapi.ErrBadRequest, req.SizeBytes)
	}
	if req.SnapshotID != "" {
		if err := s.checkSource(ctx, req); err != nil {
			return err
		}
	}
	v, created, err := s.st.SCCreateVolume(ctx, store.SCVolume{ID: req.ID, SizeBytes: req.SizeBytes, SnapshotID: req.SnapshotID})
	if err != nil {
		return fmt.Errorf("sc: create %s: %w", req.ID, err)
	}
	if !created {
		switch {
		case v.State == store.SCVolumeDeleting:
			return fmt.Errorf("%w: volume %s is being deleted", scapi.ErrIncorrectState, req.ID)
		case v.SizeBytes != req.SizeBytes || v.SnapshotID != req.SnapshotID:
			return fmt.Errorf("%w: volume %s exists with another size or snapshot", scapi.ErrBadRequest, req.ID)
		}
		return nil
	}
	s.log.InfoContext(ctx, "volume creating", "volume", req.ID, "bytes", req.SizeBytes, "snapshot", req.SnapshotID)
	s.start(req.ID, false, func(ctx context.Context) { s.make(ctx, req.ID) })
	return nil
}

// checkSource refuses a volume from a snapshot that is not there, not
// completed, or larger than the volume.
func (s *SC) checkSource(ctx context.Context, req scapi.CreateVolumeRequest) error {
	if s.snaps == nil {
		return errNoSnapshots
	}
	sn, err := s.snaps.Snapshots(ctx, req.SnapshotID)
	if err != nil {
		return fmt.Errorf("sc: snapshot %s: %w", req.SnapshotID, err)
	}
	switch {
	case len(sn) == 0:
		return fmt.Errorf("%w: %s", scapi.ErrNoSuchSnapshot, req.SnapshotID)
	case sn[0].State != scapi.SnapshotCompleted:
		return fmt.Errorf("%w: snapshot %s is %s", scapi.ErrIncorrectState, req.SnapshotID, sn[0].State)
	case req.SizeBytes < sn[0].SizeBytes:
		return fmt.Errorf("%w: volume of %d bytes is smaller than snapshot %s (%d bytes)", scapi.ErrBadRequest, req.SizeBytes, req.SnapshotID, sn[0].SizeBytes)
	}
	return nil
}

var errNoSnapshots = fmt.Errorf("%w: snapshots are not wired to this storage controller yet", scapi.ErrBadRequest)

// make makes the file of a volume the store says is creating, and records
// the outcome. Stopped (shutdown, a delete), it records nothing: the row
// tells the next start or the delete what to do.
func (s *SC) make(ctx context.Context, id string) {
	v, err := s.st.SCVolume(ctx, id)
	if err != nil || v.State != store.SCVolumeCreating {
		if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			s.log.Error("volume create: read its record", "volume", id, "err", err)
		}
		return
	}
	if v.SnapshotID == "" {
		err = s.be.Create(ctx, id, v.SizeBytes)
	} else if s.snaps == nil {
		err = errNoSnapshots
	} else {
		err = s.be.CreateFrom(ctx, id, v.SizeBytes, func(ctx context.Context, d backend.Device) error {
			return s.snaps.Restore(ctx, v.SnapshotID, d)
		})
	}
	if ctx.Err() != nil {
		return
	}
	state, why := store.SCVolumeAvailable, ""
	if err != nil {
		state, why = store.SCVolumeError, err.Error()
		s.log.Error("volume create failed", "volume", id, "err", err)
	}
	// Only from creating: a delete that came meanwhile wins.
	if err := s.st.SCSetVolumeState(context.WithoutCancel(ctx), id, state, why, store.SCVolumeCreating); err != nil {
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("volume create: record the outcome", "volume", id, "err", err)
		}
		return
	}
	if state == store.SCVolumeAvailable {
		s.log.Info("volume available", "volume", id, "bytes", v.SizeBytes)
	}
}

// DeleteVolume marks the volume deleting and removes it in the background.
func (s *SC) DeleteVolume(ctx context.Context, id string) error {
	err := s.st.SCStartDeleteVolume(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case errors.Is(err, store.ErrSCExported):
		return fmt.Errorf("%w: volume %s is exported to a node", scapi.ErrInUse, id)
	case err != nil:
		return fmt.Errorf("sc: delete %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "volume deleting", "volume", id)
	s.start(id, true, func(ctx context.Context) { s.remove(ctx, id) })
	return nil
}

// remove deletes the data of a volume the store says is deleting, then
// its row.
func (s *SC) remove(ctx context.Context, id string) {
	v, err := s.st.SCVolume(ctx, id)
	if err != nil || v.State != store.SCVolumeDeleting {
		return
	}
	if err := s.be.Delete(id); err != nil {
		s.log.Error("volume delete failed; retried at the next start", "volume", id, "err", err)
		return
	}
	if err := s.st.SCDeleteVolume(ctx, id); err != nil && ctx.Err() == nil {
		s.log.Error("volume delete: forget its record", "volume", id, "err", err)
		return
	}
	s.log.Info("volume deleted", "volume", id)
}

// ResizeVolume grows a volume: the new size is recorded first, then the
// backend grows (a restart grows it if it was killed between the two).
func (s *SC) ResizeVolume(ctx context.Context, id string, size int64) error {
	if size <= 0 || size > backend.MaxSize {
		return fmt.Errorf("%w: volume size %d bytes out of range (1 byte to 16 TiB)", scapi.ErrBadRequest, size)
	}
	v, err := s.st.SCVolume(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", scapi.ErrNoSuchVolume, id)
	}
	if err != nil {
		return fmt.Errorf("sc: resize %s: %w", id, err)
	}
	switch {
	case v.State != store.SCVolumeAvailable:
		return fmt.Errorf("%w: volume %s is %s", scapi.ErrIncorrectState, id, v.State)
	case size < v.SizeBytes:
		return fmt.Errorf("%w: volume %s holds %d bytes; it cannot shrink to %d", scapi.ErrBadRequest, id, v.SizeBytes, size)
	}
	if size > v.SizeBytes {
		if err := s.st.SCSetVolumeSize(ctx, id, size); err != nil {
			return fmt.Errorf("sc: resize %s: %w", id, err)
		}
	}
	if err := s.be.Resize(id, size); err != nil {
		return fmt.Errorf("sc: resize %s: %w", id, backendErr(err))
	}
	return nil
}

// backendErr gives a backend's error the SC API's meaning.
func backendErr(err error) error {
	switch {
	case errors.Is(err, backend.ErrNoSpace):
		return fmt.Errorf("%w: %w", scapi.ErrNoSpace, err)
	case errors.Is(err, backend.ErrNotFound):
		return fmt.Errorf("%w: %w", scapi.ErrNoSuchVolume, err)
	}
	return err
}

// Volumes reports volumes as the store has them.
func (s *SC) Volumes(ctx context.Context, ids ...string) ([]scapi.Volume, error) {
	rows, err := s.st.SCVolumes(ctx, ids...)
	if err != nil {
		return nil, fmt.Errorf("sc: volumes: %w", err)
	}
	out := make([]scapi.Volume, 0, len(rows))
	for _, v := range rows {
		out = append(out, scapi.Volume{ID: v.ID, State: v.State, SizeBytes: v.SizeBytes, Created: store.Time(v.CreatedMS),
			Exports: v.Exports, Error: v.Error})
	}
	return out, nil
}

// Export records a new export of an available volume for a node.
func (s *SC) Export(ctx context.Context, req scapi.ExportRequest) (scapi.Target, error) {
	if req.Node == "" {
		return scapi.Target{}, fmt.Errorf("%w: export of %s names no node", scapi.ErrBadRequest, req.VolumeID)
	}
	v, err := s.st.SCVolume(ctx, req.VolumeID)
	if errors.Is(err, store.ErrNotFound) {
		return scapi.Target{}, fmt.Errorf("%w: %s", scapi.ErrNoSuchVolume, req.VolumeID)
	}
	if err != nil {
		return scapi.Target{}, fmt.Errorf("sc: export %s: %w", req.VolumeID, err)
	}
	if v.State != store.SCVolumeAvailable {
		return scapi.Target{}, fmt.Errorf("%w: volume %s is %s", scapi.ErrIncorrectState, req.VolumeID, v.State)
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return scapi.Target{}, fmt.Errorf("sc: export %s: %w", req.VolumeID, err)
	}
	name := req.VolumeID + "/" + hex.EncodeToString(nonce[:])
	err = s.st.SCAddExport(ctx, store.SCExport{Name: name, VolumeID: req.VolumeID, Node: req.Node})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return scapi.Target{}, fmt.Errorf("%w: %s", scapi.ErrNoSuchVolume, req.VolumeID)
	case errors.Is(err, store.ErrConflict): // deleted or failed meanwhile
		return scapi.Target{}, fmt.Errorf("%w: volume %s is no longer available", scapi.ErrIncorrectState, req.VolumeID)
	case err != nil:
		return scapi.Target{}, fmt.Errorf("sc: export %s: %w", req.VolumeID, err)
	}
	s.log.InfoContext(ctx, "volume exported", "volume", req.VolumeID, "node", req.Node)
	return scapi.Target{Host: s.host, Port: s.port, Export: name, SizeBytes: v.SizeBytes}, nil
}

// Unexport withdraws an export: no new connection is let in, then those
// open are closed, and it returns once no write of theirs can land.
func (s *SC) Unexport(ctx context.Context, volumeID, export string) error {
	if err := s.st.SCDeleteExport(ctx, volumeID, export); err != nil {
		return fmt.Errorf("sc: unexport %s: %w", export, err)
	}
	if vol, _, ok := cutExport(export); ok && vol == volumeID {
		s.mu.Lock()
		d := s.dropper
		s.mu.Unlock()
		if d != nil {
			d.Drop(export)
		}
	}
	return nil
}

// CreateSnapshot hands the snapshot engine a handle of its own on the
// volume.
func (s *SC) CreateSnapshot(ctx context.Context, req scapi.CreateSnapshotRequest) error {
	if s.snaps == nil {
		return errNoSnapshots
	}
	v, err := s.st.SCVolume(ctx, req.VolumeID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", scapi.ErrNoSuchVolume, req.VolumeID)
	}
	if err != nil {
		return fmt.Errorf("sc: snapshot of %s: %w", req.VolumeID, err)
	}
	if v.State != store.SCVolumeAvailable {
		return fmt.Errorf("%w: volume %s is %s", scapi.ErrIncorrectState, req.VolumeID, v.State)
	}
	dev, err := s.be.Open(req.VolumeID)
	if err != nil {
		return fmt.Errorf("sc: snapshot of %s: %w", req.VolumeID, backendErr(err))
	}
	return s.snaps.Create(ctx, req, dev) // the engine closes dev
}

func (s *SC) CopySnapshot(ctx context.Context, req scapi.CopySnapshotRequest) error {
	if s.snaps == nil {
		return errNoSnapshots
	}
	return s.snaps.Copy(ctx, req)
}

// DeleteSnapshot deletes a snapshot no volume is being made of (ErrInUse
// otherwise): the engine only knows of a restore once it runs, and a
// volume recorded creating from the snapshot (its job not started yet, or
// a restarted controller's recovery) would fail after the delete.
func (s *SC) DeleteSnapshot(ctx context.Context, id string) error {
	if s.snaps == nil {
		return errNoSnapshots
	}
	vols, err := s.st.SCVolumes(ctx)
	if err != nil {
		return fmt.Errorf("sc: delete snapshot %s: %w", id, err)
	}
	for _, v := range vols {
		if v.SnapshotID == id && v.State == store.SCVolumeCreating {
			return fmt.Errorf("%w: volume %s is being made of snapshot %s", scapi.ErrInUse, v.ID, id)
		}
	}
	return s.snaps.Delete(ctx, id)
}

func (s *SC) Snapshots(ctx context.Context, ids ...string) ([]scapi.Snapshot, error) {
	if s.snaps == nil {
		return []scapi.Snapshot{}, nil
	}
	return s.snaps.Snapshots(ctx, ids...)
}
