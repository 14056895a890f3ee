// Package snapshot is the storage controller's snapshot engine: EBS
// snapshots kept in Walrus as 4 MiB chunks addressed by their SHA-256, so
// that a second snapshot of a volume stores only the chunks that changed,
// and volumes made again from them.
//
// # Format
//
// A snapshot of a volume of S bytes has ceil(S / 4 MiB) chunk indexes.
// Chunk i holds bytes [i×4 MiB, (i+1)×4 MiB) (the last may be shorter).
// A chunk of zeros is a hole: nothing is stored. Any other chunk is the
// object chunks/<sha256 hex> of the bucket, stored once however many
// snapshots (or indexes) hold it. When every chunk is stored, the manifest
// manifests/<snap-id>.json is written, and only then is the snapshot
// completed:
//
//	{"snapshot_id": "snap-…", "volume_id": "vol-…", "volume_size": S,
//	 "chunk_size": 4194304, "chunks": ["<sha256>" or "" for a hole, …],
//	 "created": "…"}
//
// The store keeps the same in tables (store/scsnap*.go): the snapshot's row
// with the next chunk index to record, a row per stored chunk with the
// number of references to it, a row per (snapshot, index) of data.
// Deleting a snapshot drops its references in one transaction and deletes
// the chunks left with none after it commits.
//
// # Point in time
//
// Create fixes the snapshot's content at the call and returns; chunks are
// read and uploaded afterwards, while the volume may be written. The
// storage controller calls BeforeWrite before it applies any write, trim
// or zeroing to a volume; while a snapshot of it is pending and a chunk the
// write touches is neither recorded yet nor saved, BeforeWrite copies the
// chunk's bytes to a pre-image file (fdatasync'd, then renamed into place)
// first, or for a run of zero chunks an empty marker naming them. The
// uploader takes a chunk from its pre-image when there is one, from the
// volume otherwise: a chunk without a pre-image has not been written since
// Create.
//
// # Crashes
//
// Every step is recorded before or with its effect, and each is harmless
// twice. A chunk's row is written (unreferenced) before its object is
// uploaded, and referenced in the transaction that records it in the
// snapshot, so an interrupted upload leaves an unreferenced row whose
// object the next garbage collection deletes. After a crash New loads the
// pending snapshots and their pre-images before any write can reach the
// volume, and Run resumes each from its next chunk (a pending snapshot
// whose pre-image directory is gone goes to error: its point in time is
// lost). Nothing half-made is reported completed.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// ChunkSize is the size of a chunk: 4 MiB.
const ChunkSize = 4 << 20

// MaxVolumeSize is the largest volume a snapshot is taken of: 16 TiB, as
// the backend's.
const MaxVolumeSize = 16 << 40

// Volume is a volume to snapshot, read at any offset. A Volume that is
// also Sparse (or an *os.File) lets the engine skip its holes without
// reading them.
type Volume interface {
	io.ReaderAt
	Size() int64
}

// Sparse is what a volume that knows where its data is implements (a
// sparse file: lseek SEEK_DATA).
type Sparse interface {
	// NextData returns the offset of the first byte at or after off that
	// may hold data, or the volume's size when none does.
	NextData(off int64) (int64, error)
}

// Dest is a volume being made from a snapshot. It starts all zero: holes
// are not written.
type Dest interface {
	io.WriterAt
	Sync() error
}

// ObjectStore keeps the chunks and manifests: a bucket of Walrus.
type ObjectStore interface {
	// Put stores exactly size bytes of r as key, replacing any object
	// there; on any error nothing is stored.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get reads key; a missing key is an error that
	// errors.Is(err, fs.ErrNotExist).
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Errors beside scapi's.
var (
	// ErrCorrupt: a chunk or the manifest of a snapshot is missing or does
	// not hash to what was recorded. The snapshot is put in the error
	// state; no data is written from it.
	ErrCorrupt = errors.New("snapshot: data missing or corrupt")
)

// Object keys in the bucket.
func chunkKey(hash string) string  { return "chunks/" + hash }
func manifestKey(id string) string { return "manifests/" + id + ".json" }

// Options configure New.
type Options struct {
	Store   *store.Store
	Objects ObjectStore
	// Dir holds the pre-images of pending snapshots (a directory per
	// snapshot); on the volumes' file system is best, so that saving one
	// is a local copy.
	Dir string
	// OpenVolume opens a volume again to resume a snapshot a crash or a
	// restart interrupted (Create's own Volume is gone by then). The
	// engine closes what it returns (if an io.Closer) when done with it.
	OpenVolume func(ctx context.Context, volumeID string) (Volume, error)
	Log        *slog.Logger
	// Uploads is how many snapshots upload at once; 0 means 2.
	Uploads int
	// GCInterval is how often Run retries deleting chunks no snapshot
	// refers to any more; 0 means a minute.
	GCInterval time.Duration
}

// Engine takes, restores, copies and deletes snapshots.
type Engine struct {
	st      *store.Store
	obj     ObjectStore
	dir     string
	open    func(ctx context.Context, volumeID string) (Volume, error)
	log     *slog.Logger
	uploads chan struct{} // a token per upload allowed at once
	gcEvery time.Duration

	// hashLocks serialise a chunk's intent (row, pin) against its
	// collection (object and row deleted), by hash.
	hashLocks [256]sync.Mutex
	// pinned counts the uploads storing each chunk (from its intent to its
	// record): collections leave those alone.
	pinMu  sync.Mutex
	pinned map[string]int

	mu sync.Mutex
	// byVolume is read on every write to a volume: BeforeWrite loads it
	// without taking mu (a copy is stored on each change).
	byVolume  atomicMap
	pending   map[string]*pending // by snapshot id: not yet completed or failed
	restoring map[string]int      // snapshot id -> restores in progress
	deleting  map[string]bool
	running   bool
	wake      chan struct{}
	workers   sync.WaitGroup
}

// New opens the engine: it loads the pending snapshots and their
// pre-images, so that BeforeWrite protects their points in time from the
// moment it returns. Call it before any volume is written (before the NBD
// exports are served), and Run to upload.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Store == nil || o.Objects == nil || o.Dir == "" {
		return nil, errors.New("snapshot: Store, Objects and Dir are required")
	}
	if !filepath.IsAbs(o.Dir) {
		return nil, fmt.Errorf("snapshot: pre-image directory %q is not absolute", o.Dir)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	n := o.Uploads
	if n <= 0 {
		n = 2
	}
	e := &Engine{st: o.Store, obj: o.Objects, dir: o.Dir, open: o.OpenVolume, log: o.Log,
		uploads: make(chan struct{}, n), gcEvery: o.GCInterval,
		pinned: map[string]int{}, pending: map[string]*pending{}, restoring: map[string]int{}, deleting: map[string]bool{},
		wake: make(chan struct{}, 1)}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.gcEvery <= 0 {
		e.gcEvery = time.Minute
	}
	e.byVolume.store(map[string][]*pending{})
	if err := e.recover(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// lockHash locks the life of chunk hash's object; it returns the unlock.
func (e *Engine) lockHash(hash string) func() {
	var b byte
	if len(hash) >= 2 {
		b = hash[0]*16 + hash[1]
	}
	m := &e.hashLocks[b]
	m.Lock()
	return m.Unlock
}

// closeVolume releases a volume the engine was given.
func closeVolume(v Volume) {
	if c, ok := v.(io.Closer); ok && v != nil {
		_ = c.Close()
	}
}

// toSnapshot is a row as scapi shows it.
func toSnapshot(sn store.SCSnapshot) scapi.Snapshot {
	out := scapi.Snapshot{ID: sn.ID, VolumeID: sn.VolumeID, State: sn.State, SizeBytes: sn.SizeBytes,
		Chunks: sn.DataChunks, NewChunks: sn.NewChunks, NewBytes: sn.NewBytes,
		Started: store.Time(sn.StartedMS), Error: sn.Error}
	switch {
	case sn.State == store.SCSnapCompleted:
		out.Progress = 100
		out.Completed = store.Time(sn.CompletedMS)
	case sn.ChunkCount > 0:
		// Never 100 before it is completed: the manifest is still to come.
		out.Progress = min(99, sn.NextChunk*100/sn.ChunkCount)
	}
	return out
}

// Snapshots reports the snapshots named (every one when none is); unknown
// ids, and snapshots being deleted, are left out.
func (e *Engine) Snapshots(ctx context.Context, ids ...string) ([]scapi.Snapshot, error) {
	rows, err := e.st.SCSnapshots(ctx, ids...)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	out := make([]scapi.Snapshot, 0, len(rows))
	for _, sn := range rows {
		if sn.State == store.SCSnapDeleting {
			continue
		}
		out = append(out, toSnapshot(sn))
	}
	return out, nil
}
