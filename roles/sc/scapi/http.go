package scapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/euca-cloud/euca/internal/rpc"
)

// Errors is the SC API's error table: the sentinels the HTTP transport
// carries by name, so errors.Is holds on the cloud controller's side
// whether the storage controller is in its process or not.
var Errors = rpc.Errors{
	{Code: "NoSuchVolume", Status: http.StatusNotFound, Err: ErrNoSuchVolume},
	{Code: "NoSuchSnapshot", Status: http.StatusNotFound, Err: ErrNoSuchSnapshot},
	{Code: "InUse", Status: http.StatusConflict, Err: ErrInUse},
	{Code: "IncorrectState", Status: http.StatusConflict, Err: ErrIncorrectState},
	{Code: "InsufficientStorage", Status: http.StatusInsufficientStorage, Err: ErrNoSpace},
	{Code: "WrongZone", Status: http.StatusMisdirectedRequest, Err: ErrWrongZone},
	{Code: rpc.CodeBadRequest, Status: http.StatusBadRequest, Err: ErrBadRequest},
}

// The SC API's calls, one row each. All are idempotent except Export,
// which makes a new export name at each call: one that got no answer is
// not sent again (the cloud controller's attach fails and is retried as a
// whole; an export left unused is withdrawn by its Unexport).
var calls = map[string]rpc.Policy{
	pathCreateVolume:   rpc.Idempotent,
	pathDeleteVolume:   rpc.Idempotent,
	pathResizeVolume:   rpc.Idempotent,
	pathVolumes:        rpc.Idempotent,
	pathExport:         rpc.Once,
	pathUnexport:       rpc.Idempotent,
	pathCreateSnapshot: rpc.Idempotent,
	pathCopySnapshot:   rpc.Idempotent,
	pathDeleteSnapshot: rpc.Idempotent,
	pathSnapshots:      rpc.Idempotent,
}

const (
	pathCreateVolume   = "/sc/v1/create-volume"
	pathDeleteVolume   = "/sc/v1/delete-volume"
	pathResizeVolume   = "/sc/v1/resize-volume"
	pathVolumes        = "/sc/v1/volumes"
	pathExport         = "/sc/v1/export"
	pathUnexport       = "/sc/v1/unexport"
	pathCreateSnapshot = "/sc/v1/create-snapshot"
	pathCopySnapshot   = "/sc/v1/copy-snapshot"
	pathDeleteSnapshot = "/sc/v1/delete-snapshot"
	pathSnapshots      = "/sc/v1/snapshots"
)

// zoneOf is part of every call: the zone the caller believes it talks to,
// so that a storage controller serving another zone refuses rather than
// holding a volume in the wrong one.
type zoneOf struct {
	Zone string `json:"zone"`
}

type createVolumeIn struct {
	zoneOf
	Request CreateVolumeRequest `json:"request"`
}

type idIn struct {
	zoneOf
	ID string `json:"id"`
}

type idsIn struct {
	zoneOf
	IDs []string `json:"ids"`
}

type resizeIn struct {
	zoneOf
	ID        string `json:"id"`
	SizeBytes int64  `json:"size_bytes"`
}

type exportIn struct {
	zoneOf
	Request ExportRequest `json:"request"`
}

type unexportIn struct {
	zoneOf
	VolumeID string `json:"volume_id"`
	Export   string `json:"export"`
}

type createSnapshotIn struct {
	zoneOf
	Request CreateSnapshotRequest `json:"request"`
}

type copySnapshotIn struct {
	zoneOf
	Request CopySnapshotRequest `json:"request"`
}

type volumesOut struct {
	Volumes []Volume `json:"volumes"`
}

type snapshotsOut struct {
	Snapshots []Snapshot `json:"snapshots"`
}

type none struct{}

// NewHandler serves s to the cloud controller elsewhere (mount it on the
// SC's internal listener, rpc.NewServer).
func NewHandler(s Storage, log *slog.Logger) http.Handler {
	m := rpc.NewMux(Errors, log)
	m.AllowRoles("clc") // only the cloud controller drives a storage controller
	zone := s.Zone()
	check := func(z zoneOf) error {
		if z.Zone != zone {
			return fmt.Errorf("%w: this storage controller serves %s (CLUSTER_NAME), the cloud asked for %s", ErrWrongZone, zone, z.Zone)
		}
		return nil
	}
	rpc.Func(m, "POST "+pathCreateVolume, func(ctx context.Context, in createVolumeIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.CreateVolume(ctx, in.Request)
	})
	rpc.Func(m, "POST "+pathDeleteVolume, func(ctx context.Context, in idIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.DeleteVolume(ctx, in.ID)
	})
	rpc.Func(m, "POST "+pathResizeVolume, func(ctx context.Context, in resizeIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.ResizeVolume(ctx, in.ID, in.SizeBytes)
	})
	rpc.Func(m, "POST "+pathVolumes, func(ctx context.Context, in idsIn) (volumesOut, error) {
		if err := check(in.zoneOf); err != nil {
			return volumesOut{}, err
		}
		v, err := s.Volumes(ctx, in.IDs...)
		return volumesOut{v}, err
	})
	rpc.Func(m, "POST "+pathExport, func(ctx context.Context, in exportIn) (Target, error) {
		if err := check(in.zoneOf); err != nil {
			return Target{}, err
		}
		return s.Export(ctx, in.Request)
	})
	rpc.Func(m, "POST "+pathUnexport, func(ctx context.Context, in unexportIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.Unexport(ctx, in.VolumeID, in.Export)
	})
	rpc.Func(m, "POST "+pathCreateSnapshot, func(ctx context.Context, in createSnapshotIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.CreateSnapshot(ctx, in.Request)
	})
	rpc.Func(m, "POST "+pathCopySnapshot, func(ctx context.Context, in copySnapshotIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.CopySnapshot(ctx, in.Request)
	})
	rpc.Func(m, "POST "+pathDeleteSnapshot, func(ctx context.Context, in idIn) (none, error) {
		if err := check(in.zoneOf); err != nil {
			return none{}, err
		}
		return none{}, s.DeleteSnapshot(ctx, in.ID)
	})
	rpc.Func(m, "POST "+pathSnapshots, func(ctx context.Context, in idsIn) (snapshotsOut, error) {
		if err := check(in.zoneOf); err != nil {
			return snapshotsOut{}, err
		}
		sn, err := s.Snapshots(ctx, in.IDs...)
		return snapshotsOut{sn}, err
	})
	return m
}

// NewClient is the storage controller of zone reached through c (its
// internal listener), which every call names.
func NewClient(c *rpc.Client, zone string) Storage { return client{c, zoneOf{zone}} }

type client struct {
	c    *rpc.Client
	zone zoneOf
}

func (c client) call(ctx context.Context, path string, in, out any) error {
	return calls[path].Do(ctx, func(ctx context.Context) error {
		return Errors.Decode(c.c.Call(ctx, http.MethodPost, path, in, out))
	})
}

func (c client) Zone() string { return c.zone.Zone }

func (c client) CreateVolume(ctx context.Context, req CreateVolumeRequest) error {
	return c.call(ctx, pathCreateVolume, createVolumeIn{c.zone, req}, nil)
}

func (c client) DeleteVolume(ctx context.Context, id string) error {
	return c.call(ctx, pathDeleteVolume, idIn{c.zone, id}, nil)
}

func (c client) ResizeVolume(ctx context.Context, id string, size int64) error {
	return c.call(ctx, pathResizeVolume, resizeIn{c.zone, id, size}, nil)
}

func (c client) Volumes(ctx context.Context, ids ...string) ([]Volume, error) {
	var out volumesOut
	err := c.call(ctx, pathVolumes, idsIn{c.zone, ids}, &out)
	return out.Volumes, err
}

func (c client) Export(ctx context.Context, req ExportRequest) (Target, error) {
	var t Target
	err := c.call(ctx, pathExport, exportIn{c.zone, req}, &t)
	return t, err
}

func (c client) Unexport(ctx context.Context, volumeID, export string) error {
	return c.call(ctx, pathUnexport, unexportIn{c.zone, volumeID, export}, nil)
}

func (c client) CreateSnapshot(ctx context.Context, req CreateSnapshotRequest) error {
	return c.call(ctx, pathCreateSnapshot, createSnapshotIn{c.zone, req}, nil)
}

func (c client) CopySnapshot(ctx context.Context, req CopySnapshotRequest) error {
	return c.call(ctx, pathCopySnapshot, copySnapshotIn{c.zone, req}, nil)
}

func (c client) DeleteSnapshot(ctx context.Context, id string) error {
	return c.call(ctx, pathDeleteSnapshot, idIn{c.zone, id}, nil)
}

func (c client) Snapshots(ctx context.Context, ids ...string) ([]Snapshot, error) {
	var out snapshotsOut
	err := c.call(ctx, pathSnapshots, idsIn{c.zone, ids}, &out)
	return out.Snapshots, err
}
