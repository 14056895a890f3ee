// Package scapi is the storage controller's API: what the cloud controller
// asks of the storage controller of each availability zone (one per
// cluster, as Eucalyptus had it). Like ccapi and ncapi, one interface with
// two transports (in-process, or JSON over mutual TLS).
//
// The cloud controller owns the records EC2 shows (volumes, attachments,
// snapshots, their accounts and tags); the storage controller owns the
// bytes: volume files on its host, their export to nodes over NBD with TLS,
// and snapshots as chunks in Walrus. Calls that take time (making a volume,
// a snapshot) return at once; Volumes and Snapshots report how they went,
// and the cloud controller polls them, as Eucalyptus's CLC polled its SCs.
// Every call is harmless twice.
package scapi

import (
	"context"
	"errors"
	"time"
)

// Storage is one storage controller (one availability zone).
type Storage interface {
	// Zone is the availability zone the storage controller serves.
	Zone() string

	// CreateVolume starts making a volume: empty, or holding a snapshot's
	// data (SnapshotID). It returns once the volume is recorded
	// (VolumeCreating); Volumes reports it available or failed. A second
	// call for an id already known changes nothing.
	CreateVolume(ctx context.Context, req CreateVolumeRequest) error
	// DeleteVolume removes a volume and its data; an unknown id is not an
	// error. ErrInUse while it is exported.
	DeleteVolume(ctx context.Context, id string) error
	// ResizeVolume grows a volume to size bytes (never shrinks it:
	// ErrBadRequest).
	ResizeVolume(ctx context.Context, id string, size int64) error
	// Volumes reports the volumes named (all of them when none is named);
	// unknown ids are left out.
	Volumes(ctx context.Context, ids ...string) ([]Volume, error)

	// Export lets the node named reach a volume over NBD and says where.
	// Each call makes a new export name (it carries a secret nonce), so a
	// connection left from an earlier attachment is never taken for this
	// one.
	Export(ctx context.Context, req ExportRequest) (Target, error)
	// Unexport withdraws an export and closes its connections (the fence
	// of a forced detach); an unknown export is not an error.
	Unexport(ctx context.Context, volumeID, export string) error

	// CreateSnapshot starts a snapshot of a volume as it is at the call:
	// writes acknowledged before it are in the snapshot, later ones are
	// not. It returns once the point in time is fixed (SnapshotPending);
	// Snapshots reports progress and the end.
	CreateSnapshot(ctx context.Context, req CreateSnapshotRequest) error
	// CopySnapshot makes snapshot req.ID hold the same data as the
	// completed snapshot req.SourceID (no chunk is copied).
	CopySnapshot(ctx context.Context, req CopySnapshotRequest) error
	// DeleteSnapshot removes a snapshot; chunks no other snapshot holds
	// are removed from Walrus. An unknown id is not an error.
	DeleteSnapshot(ctx context.Context, id string) error
	// Snapshots reports the snapshots named (all when none is named);
	// unknown ids are left out.
	Snapshots(ctx context.Context, ids ...string) ([]Snapshot, error)
}

// Errors carried across transports by name.
var (
	ErrNoSuchVolume   = errors.New("scapi: no such volume")
	ErrNoSuchSnapshot = errors.New("scapi: no such snapshot")
	// ErrInUse: the volume is exported to a node (attached), or the
	// snapshot is being read to make a volume.
	ErrInUse = errors.New("scapi: in use")
	// ErrIncorrectState: the volume or snapshot is not in a state that
	// allows the call (a snapshot of a volume still being made).
	ErrIncorrectState = errors.New("scapi: incorrect state")
	ErrBadRequest     = errors.New("scapi: bad request")
	// ErrNoSpace: the storage controller's disk cannot hold the volume.
	ErrNoSpace   = errors.New("scapi: insufficient storage")
	ErrWrongZone = errors.New("scapi: the storage controller serves another zone")
)

// Volume states (EC2's VolumeState, as far as the storage controller
// knows them: attachment is the cloud controller's business).
const (
	VolumeCreating  = "creating"
	VolumeAvailable = "available"
	VolumeDeleting  = "deleting"
	VolumeError     = "error"
)

// Snapshot states (EC2's SnapshotState).
const (
	SnapshotPending   = "pending"
	SnapshotCompleted = "completed"
	SnapshotError     = "error"
)

// CreateVolumeRequest is a volume to make.
type CreateVolumeRequest struct {
	ID         string `json:"id"`                    // vol-...
	SizeBytes  int64  `json:"size_bytes"`            // at least the snapshot's size
	SnapshotID string `json:"snapshot_id,omitempty"` // a completed snapshot of this storage controller
}

// Volume is a volume as the storage controller holds it.
type Volume struct {
	ID        string    `json:"id"`
	State     string    `json:"state"`
	SizeBytes int64     `json:"size_bytes"`
	Created   time.Time `json:"created,omitzero"`
	// Exports are the live export names (one per attachment).
	Exports []string `json:"exports,omitempty"`
	Error   string   `json:"error,omitempty"` // why it is in VolumeError
}

// ExportRequest names a volume and the node that will attach it.
type ExportRequest struct {
	VolumeID string `json:"volume_id"`
	// Node is the host the instance runs on as its cluster reports it
	// (ccapi.InstanceStatus.Node): only that node's certificate may
	// connect to the export.
	Node string `json:"node"`
}

// Target is where a node's QEMU finds an exported volume.
type Target struct {
	Host      string `json:"host"` // an address in the storage controller's certificate
	Port      int    `json:"port"`
	Export    string `json:"export"`
	SizeBytes int64  `json:"size_bytes"`
}

// CreateSnapshotRequest is a snapshot to take.
type CreateSnapshotRequest struct {
	ID       string `json:"id"` // snap-...
	VolumeID string `json:"volume_id"`
}

// CopySnapshotRequest is a snapshot to copy.
type CopySnapshotRequest struct {
	ID       string `json:"id"`
	SourceID string `json:"source_id"`
}

// Snapshot is a snapshot as the storage controller holds it.
type Snapshot struct {
	ID        string `json:"id"`
	VolumeID  string `json:"volume_id"`
	State     string `json:"state"`
	Progress  int    `json:"progress"` // percent
	SizeBytes int64  `json:"size_bytes"`
	// Chunks is how many chunks hold data; NewChunks how many of them this
	// snapshot stored (the others were already in Walrus), and NewBytes
	// their size: a second snapshot of a volume stores only what changed.
	Chunks    int       `json:"chunks"`
	NewChunks int       `json:"new_chunks"`
	NewBytes  int64     `json:"new_bytes"`
	Started   time.Time `json:"started,omitzero"`
	Completed time.Time `json:"completed,omitzero"`
	Error     string    `json:"error,omitempty"`
}
