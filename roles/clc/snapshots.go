package clc

// EBS snapshots. The record (store: snapshots) is written pending before
// the storage controller of the volume's zone is asked to take it; the
// storage loop polls scapi.Storage.Snapshots and records progress until it
// is completed or error. A snapshot is deleted like a volume: the record
// says deleting (EC2 no longer shows it), the storage controller removes
// the chunks no other snapshot holds, then the record goes.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// MaxSnapshots bounds the snapshots of one account (EC2's default quota
// per region).
const MaxSnapshots = 100000

func snapshotNotFound(id string) error {
	return awserr.New("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
}

// snapshotError maps the store's answers about a snapshot to EC2's codes.
func snapshotError(id string, err error) error {
	var st *store.SnapshotStateError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &st):
		return awserr.New("IncorrectState", "Snapshot '%s' is in the '%s' state.", st.ID, st.State)
	case errors.Is(err, store.ErrNotFound):
		return snapshotNotFound(id)
	case errors.Is(err, store.ErrSnapshotLimit):
		return awserr.New("SnapshotLimitExceeded", "The maximum number of snapshots (%d) has been reached.", MaxSnapshots)
	}
	return fmt.Errorf("snapshot %s: %w", id, err)
}

// mayUse says whether an account may make volumes of (and copy) a
// snapshot: its owner, anyone when public, or an account given
// createVolumePermission.
func mayUse(s store.Snapshot, accountID string) bool {
	if s.AccountID == accountID || s.Public {
		return true
	}
	for _, p := range s.Permissions {
		if p == accountID {
			return true
		}
	}
	return false
}

// usableSnapshot is a snapshot the account may make volumes of;
// InvalidSnapshot.NotFound for any other.
func (c *Cloud) usableSnapshot(ctx context.Context, accountID, id string) (store.Snapshot, error) {
	s, err := c.store.SnapshotByID(ctx, id)
	if err != nil || s.State == store.SnapshotDeleting || !mayUse(s, accountID) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Snapshot{}, fmt.Errorf("snapshot %s: %w", id, err)
		}
		return store.Snapshot{}, snapshotNotFound(id)
	}
	return s, nil
}

// CreateSnapshot records a snapshot of the account's volume (pending) and
// has the volume's storage controller take it.
func (c *Cloud) CreateSnapshot(ctx context.Context, accountID, volumeID, description string, tags []store.Tag) (store.Snapshot, error) {
	v, err := c.store.Volume(ctx, accountID, volumeID)
	if err != nil {
		return store.Snapshot{}, volumeError(volumeID, err)
	}
	if v.State != store.VolumeAvailable {
		return store.Snapshot{}, volumeStateError(v.ID, v.State)
	}
	sc := c.storageOf(v.Zone)
	if sc == nil {
		return store.Snapshot{}, awserr.New("Unsupported", "Snapshots are not available in zone '%s': no storage controller serves it.", v.Zone)
	}
	s := store.Snapshot{ID: ids.New("snap"), AccountID: accountID, Zone: v.Zone, VolumeID: v.ID, VolumeSizeGiB: v.SizeGiB,
		State: store.SnapshotPending, Description: description}
	if err := c.store.CreateSnapshot(ctx, s, tags, MaxSnapshots); err != nil {
		return store.Snapshot{}, snapshotError(s.ID, err)
	}
	s.Tags = tags
	err = sc.CreateSnapshot(ctx, scapi.CreateSnapshotRequest{ID: s.ID, VolumeID: v.ID})
	switch {
	case errors.Is(err, scapi.ErrNoSuchVolume), errors.Is(err, scapi.ErrIncorrectState), errors.Is(err, scapi.ErrBadRequest):
		c.dropSnapshot(ctx, s)
		return store.Snapshot{}, volumeStateError(v.ID, v.State).(*awserr.Error).WithCause(err)
	case err != nil:
		c.log.Warn("create snapshot: storage controller", "snapshot", s.ID, "zone", v.Zone, "err", err)
	}
	c.kickStorage()
	return s, nil
}

// dropSnapshot removes the record of a snapshot the storage controller
// refused.
func (c *Cloud) dropSnapshot(ctx context.Context, s store.Snapshot) {
	if err := c.store.SetSnapshotState(ctx, s.ID, store.SnapshotPending, store.SnapshotDeleting); err != nil {
		c.log.Warn("drop snapshot", "snapshot", s.ID, "err", err)
		return
	}
	if sc := c.storageOf(s.Zone); sc != nil {
		_ = sc.DeleteSnapshot(ctx, s.ID)
	}
	if err := c.store.DeleteSnapshotRecord(ctx, s.ID); err != nil {
		c.log.Warn("drop snapshot", "snapshot", s.ID, "err", err)
	}
}

// CopySnapshot records a copy of a completed snapshot the account may use
// (in this region: there is one) as the account's, and has the storage
// controller that holds the source make it.
func (c *Cloud) CopySnapshot(ctx context.Context, accountID, sourceID, description string, tags []store.Tag) (store.Snapshot, error) {
	src, err := c.usableSnapshot(ctx, accountID, sourceID)
	if err != nil {
		return store.Snapshot{}, err
	}
	if src.State != store.SnapshotCompleted {
		return store.Snapshot{}, awserr.New("IncorrectState", "Snapshot '%s' is in the '%s' state.", src.ID, src.State)
	}
	sc := c.storageOf(src.Zone)
	if sc == nil {
		return store.Snapshot{}, awserr.New("Unsupported", "Snapshots are not available in zone '%s': no storage controller serves it.", src.Zone)
	}
	s := store.Snapshot{ID: ids.New("snap"), AccountID: accountID, Zone: src.Zone, VolumeID: src.VolumeID, VolumeSizeGiB: src.VolumeSizeGiB,
		SourceID: src.ID, State: store.SnapshotPending, Description: description}
	if err := c.store.CreateSnapshot(ctx, s, tags, MaxSnapshots); err != nil {
		return store.Snapshot{}, snapshotError(s.ID, err)
	}
	s.Tags = tags
	err = sc.CopySnapshot(ctx, scapi.CopySnapshotRequest{ID: s.ID, SourceID: src.ID})
	switch {
	case errors.Is(err, scapi.ErrNoSuchSnapshot), errors.Is(err, scapi.ErrIncorrectState), errors.Is(err, scapi.ErrBadRequest):
		c.dropSnapshot(ctx, s)
		return store.Snapshot{}, awserr.New("IncorrectState", "Snapshot '%s' cannot be copied: %v", src.ID, err).WithCause(err)
	case err != nil:
		c.log.Warn("copy snapshot: storage controller", "snapshot", s.ID, "err", err)
	}
	c.kickStorage()
	return s, nil
}

// DescribeSnapshots lists the snapshots the account may see (its own, the
// public ones, those shared with it); with ids, exactly those.
func (c *Cloud) DescribeSnapshots(ctx context.Context, accountID string, snapshotIDs []string) ([]store.Snapshot, error) {
	all, err := c.store.SnapshotsVisibleTo(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	if len(snapshotIDs) == 0 {
		return all, nil
	}
	byID := map[string]store.Snapshot{}
	for _, s := range all {
		byID[s.ID] = s
	}
	var out []store.Snapshot
	var missing []string
	seen := map[string]bool{}
	for _, id := range snapshotIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if s, ok := byID[id]; ok {
			out = append(out, s)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, snapshotNotFound(strings.Join(missing, ", "))
	}
	return out, nil
}

// DeleteSnapshot records the account's snapshot deleting and has its
// storage controller remove it. IncorrectState while it is pending,
// InvalidSnapshot.InUse while a volume is being made of it.
func (c *Cloud) DeleteSnapshot(ctx context.Context, accountID, snapshotID string) error {
	// An image of the owner's that makes volumes of it holds it
	// (images_ebs.go). Another account's image of it (shared with it)
	// does not: that account could otherwise keep the owner from ever
	// deleting it; its launches fail once the snapshot is gone.
	if imgs, err := c.store.SnapshotImages(ctx, snapshotID); err != nil {
		return snapshotError(snapshotID, err)
	} else if len(imgs) > 0 {
		if _, err := c.OwnSnapshot(ctx, accountID, snapshotID); err != nil {
			return err
		}
		for _, id := range imgs {
			if im, err := c.store.ImageByID(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("snapshot %s: image %s: %w", snapshotID, id, err)
			} else if err == nil && im.AccountID == accountID {
				return awserr.New("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", snapshotID, id)
			}
		}
	}
	if err := c.store.StartDeleteSnapshot(ctx, accountID, snapshotID); err != nil {
		return snapshotError(snapshotID, err)
	}
	s, err := c.store.SnapshotByID(ctx, snapshotID)
	if err != nil {
		return snapshotError(snapshotID, err)
	}
	if err := c.finishDeleteSnapshot(ctx, s); errors.Is(err, scapi.ErrInUse) {
		return awserr.New("InvalidSnapshot.InUse", "The snapshot %s is currently in use.", snapshotID).WithCause(err)
	}
	return nil
}

// finishDeleteSnapshot asks the storage controller to delete a snapshot in
// state deleting and removes its record once it did; a snapshot in use
// goes back to completed.
func (c *Cloud) finishDeleteSnapshot(ctx context.Context, s store.Snapshot) error {
	sc := c.storageOf(s.Zone)
	if sc == nil {
		return nil
	}
	err := sc.DeleteSnapshot(ctx, s.ID)
	switch {
	case errors.Is(err, scapi.ErrInUse):
		if e := c.store.SetSnapshotState(ctx, s.ID, store.SnapshotDeleting, store.SnapshotCompleted); e != nil {
			c.log.Warn("delete snapshot", "snapshot", s.ID, "err", e)
		}
		return err
	case err != nil:
		c.log.Warn("delete snapshot: storage controller", "snapshot", s.ID, "err", err)
		c.kickStorage()
		return nil
	}
	if err := c.store.DeleteSnapshotRecord(ctx, s.ID); err != nil {
		c.log.Warn("delete snapshot record", "snapshot", s.ID, "err", err)
	}
	return nil
}

// ModifySnapshotPermissions changes who may make volumes of the account's
// snapshot (createVolumePermission; Reset: nobody but its owner).
func (c *Cloud) ModifySnapshotPermissions(ctx context.Context, accountID, snapshotID string, u store.SnapshotPermissionUpdate) error {
	if err := c.store.UpdateSnapshotPermissions(ctx, accountID, snapshotID, u); err != nil {
		return snapshotError(snapshotID, err)
	}
	return nil
}

// OwnSnapshot is one of the account's own snapshots (its attributes are
// its owner's business).
func (c *Cloud) OwnSnapshot(ctx context.Context, accountID, snapshotID string) (store.Snapshot, error) {
	s, err := c.store.SnapshotByID(ctx, snapshotID)
	if err != nil || s.AccountID != accountID || s.State == store.SnapshotDeleting {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Snapshot{}, fmt.Errorf("snapshot %s: %w", snapshotID, err)
		}
		return store.Snapshot{}, snapshotNotFound(snapshotID)
	}
	return s, nil
}

// reconcileSnapshots is the snapshots' part of the storage loop: pending
// ones are polled (and asked for again when their storage controller lost
// them), deleting ones deleted.
func (c *Cloud) reconcileSnapshots(ctx context.Context) (busy bool, err error) {
	snaps, err := c.store.SnapshotsToDrive(ctx)
	if err != nil {
		return false, err
	}
	pending := map[string][]store.Snapshot{}
	for _, s := range snaps {
		busy = true
		switch s.State {
		case store.SnapshotPending:
			pending[s.Zone] = append(pending[s.Zone], s)
		case store.SnapshotDeleting:
			if c.claim(s.ID) {
				_ = c.finishDeleteSnapshot(ctx, s)
				c.release(s.ID)
			}
		}
	}
	for zone, list := range pending {
		c.pollSnapshots(ctx, zone, list)
	}
	return busy, nil
}

func (c *Cloud) pollSnapshots(ctx context.Context, zone string, list []store.Snapshot) {
	sc := c.storageOf(zone)
	if sc == nil {
		return
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	got, err := sc.Snapshots(ctx, ids...)
	if err != nil {
		c.log.Warn("poll snapshots", "zone", zone, "err", err)
		return
	}
	byID := map[string]scapi.Snapshot{}
	for _, ss := range got {
		byID[ss.ID] = ss
	}
	for _, s := range list {
		ss, ok := byID[s.ID]
		if !ok {
			var err error
			if s.SourceID != "" {
				err = sc.CopySnapshot(ctx, scapi.CopySnapshotRequest{ID: s.ID, SourceID: s.SourceID})
			} else {
				err = sc.CreateSnapshot(ctx, scapi.CreateSnapshotRequest{ID: s.ID, VolumeID: s.VolumeID})
			}
			if err != nil {
				c.log.Warn("snapshot asked again", "snapshot", s.ID, "err", err)
				if errors.Is(err, scapi.ErrNoSuchVolume) || errors.Is(err, scapi.ErrNoSuchSnapshot) || errors.Is(err, scapi.ErrBadRequest) {
					_, _ = c.store.SetSnapshotProgress(ctx, s.ID, store.SnapshotError, s.Progress, 0, err.Error())
				}
			}
			continue
		}
		var completed int64
		if !ss.Completed.IsZero() {
			completed = ss.Completed.UnixMilli()
		}
		switch ss.State {
		case scapi.SnapshotCompleted:
			if completed == 0 {
				completed = timeNow().UnixMilli()
			}
			if ok, err := c.store.SetSnapshotProgress(ctx, s.ID, store.SnapshotCompleted, 100, completed, ""); err == nil && ok {
				c.log.Info("snapshot completed", "snapshot", s.ID, "chunks", ss.Chunks, "new_chunks", ss.NewChunks, "new_bytes", ss.NewBytes)
			}
		case scapi.SnapshotError:
			if ok, err := c.store.SetSnapshotProgress(ctx, s.ID, store.SnapshotError, ss.Progress, completed, ss.Error); err == nil && ok {
				c.log.Warn("snapshot failed", "snapshot", s.ID, "why", ss.Error)
			}
		default:
			if ss.Progress != s.Progress {
				_, _ = c.store.SetSnapshotProgress(ctx, s.ID, store.SnapshotPending, ss.Progress, 0, "")
			}
		}
	}
}
