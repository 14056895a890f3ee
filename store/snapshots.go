package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// TypeSnapshot is the tag resource type of snapshots.
const TypeSnapshot = "snapshot"

// Snapshot states. SnapshotDeleting is the cloud's own: the record waits
// for the storage controller to remove the data, and EC2 no longer shows it.
const (
	SnapshotPending   = "pending"
	SnapshotCompleted = "completed"
	SnapshotError     = "error"
	SnapshotDeleting  = "deleting"
)

// Snapshot is an EBS snapshot as the cloud controller records it.
type Snapshot struct {
	ID            string
	AccountID     string
	Zone          string // the storage controller holding it
	VolumeID      string
	VolumeSizeGiB int
	SourceID      string // CopySnapshot's source
	State         string
	Progress      int
	Description   string
	Error         string
	StartMS       int64
	CompletedMS   int64
	// Public and Permissions are its createVolumePermission: the group
	// all, and the other accounts that may make volumes of it.
	Public      bool
	Permissions []string
	Tags        []Tag
}

// SnapshotStateError says a snapshot is not in a state the change allows.
type SnapshotStateError struct{ ID, State string }

func (e *SnapshotStateError) Error() string { return "store: snapshot " + e.ID + " is " + e.State }

// ErrSnapshotLimit: the account holds as many snapshots as allowed.
var ErrSnapshotLimit = errors.New("store: snapshot limit exceeded")

const snapshotColumns = `id, account_id, zone, volume_id, volume_size_gib, source_id, state, progress, description, error,
	public, start_ms, completed_ms`

func querySnapshots(ctx context.Context, q queryer, where string, args ...any) ([]Snapshot, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+snapshotColumns+` FROM snapshots `+where+` ORDER BY start_ms, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: snapshots: %w", err)
	}
	defer rows.Close()
	var out []Snapshot
	for rows.Next() {
		var s Snapshot
		if err := rows.Scan(&s.ID, &s.AccountID, &s.Zone, &s.VolumeID, &s.VolumeSizeGiB, &s.SourceID, &s.State, &s.Progress,
			&s.Description, &s.Error, &s.Public, &s.StartMS, &s.CompletedMS); err != nil {
			return nil, fmt.Errorf("store: snapshots: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// withSnapshotDetails fills each snapshot's permissions and (its owner's)
// tags.
func withSnapshotDetails(ctx context.Context, q queryer, snaps []Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	idx := map[string]int{}
	byAccount := map[string][]string{}
	for i, s := range snaps {
		idx[s.ID] = i
		byAccount[s.AccountID] = append(byAccount[s.AccountID], s.ID)
	}
	for acct, list := range byAccount {
		for len(list) > 0 {
			n := min(len(list), 500)
			m, err := tagsOf(ctx, q, acct, TypeSnapshot, list[:n])
			if err != nil {
				return err
			}
			for id, tags := range m {
				snaps[idx[id]].Tags = tags
			}
			args := make([]any, n)
			for i, id := range list[:n] {
				args[i] = id
			}
			rows, err := q.QueryContext(ctx, `SELECT snapshot_id, account_id FROM snapshot_permissions WHERE snapshot_id IN (?`+
				strings.Repeat(`, ?`, n-1)+`) ORDER BY snapshot_id, account_id`, args...)
			if err != nil {
				return fmt.Errorf("store: snapshot permissions: %w", err)
			}
			for rows.Next() {
				var id, who string
				if err := rows.Scan(&id, &who); err != nil {
					rows.Close()
					return err
				}
				snaps[idx[id]].Permissions = append(snaps[idx[id]].Permissions, who)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			list = list[n:]
		}
	}
	return nil
}

// CreateSnapshot records a new snapshot (pending, or as s.State says) with
// its tags; limit (0: none) bounds the snapshots one account holds.
func (s *Store) CreateSnapshot(ctx context.Context, snap Snapshot, tags []Tag, limit int) error {
	if snap.StartMS == 0 {
		snap.StartMS = now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if limit > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM snapshots WHERE account_id = ?`, snap.AccountID).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return fmt.Errorf("%d snapshots: %w", n, ErrSnapshotLimit)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO snapshots (id, account_id, zone, volume_id, volume_size_gib, source_id, state,
			progress, description, start_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, snap.ID, snap.AccountID, snap.Zone, snap.VolumeID,
			snap.VolumeSizeGiB, snap.SourceID, snap.State, snap.Progress, snap.Description, snap.StartMS); err != nil {
			return conflict(err, "snapshot "+snap.ID)
		}
		return putTags(ctx, tx, snap.AccountID, snap.ID, TypeSnapshot, tags)
	})
}

// SnapshotsVisibleTo lists the snapshots an account may see: its own, the
// public ones and those it was given createVolumePermission on; not those
// being deleted. Another account's snapshot shows none of its owner's tags
// (tags are per account, as images'), and of its permissions only the
// caller's own: whom else the owner shared it with is the owner's business.
func (s *Store) SnapshotsVisibleTo(ctx context.Context, accountID string) ([]Snapshot, error) {
	snaps, err := querySnapshots(ctx, s.r, `WHERE state != 'deleting' AND (account_id = ? OR public = 1
		OR id IN (SELECT snapshot_id FROM snapshot_permissions WHERE account_id = ?))`, accountID, accountID)
	if err != nil {
		return nil, err
	}
	if err := withSnapshotDetails(ctx, s.r, snaps); err != nil {
		return nil, err
	}
	for i := range snaps {
		if snaps[i].AccountID == accountID {
			continue
		}
		snaps[i].Tags = nil
		var mine []string
		if slices.Contains(snaps[i].Permissions, accountID) {
			mine = []string{accountID}
		}
		snaps[i].Permissions = mine
	}
	return snaps, nil
}

// SnapshotByID is a snapshot whoever owns it, deleting ones too;
// ErrNotFound when there is none.
func (s *Store) SnapshotByID(ctx context.Context, id string) (Snapshot, error) {
	snaps, err := querySnapshots(ctx, s.r, `WHERE id = ?`, id)
	if err != nil {
		return Snapshot{}, err
	}
	if len(snaps) == 0 {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	}
	return snaps[0], withSnapshotDetails(ctx, s.r, snaps)
}

// SnapshotsToDrive lists the snapshots the cloud controller's loop must
// follow: pending and deleting ones.
func (s *Store) SnapshotsToDrive(ctx context.Context) ([]Snapshot, error) {
	return querySnapshots(ctx, s.r, `WHERE state IN ('pending', 'deleting')`)
}

// SetSnapshotProgress records what the storage controller reports of a
// pending snapshot (state pending, completed or error); changed is false
// when the snapshot is no longer pending.
func (s *Store) SetSnapshotProgress(ctx context.Context, id, state string, progress int, completedMS int64, why string) (changed bool, err error) {
	res, err := s.w.ExecContext(ctx, `UPDATE snapshots SET state = ?, progress = ?, completed_ms = ?, error = ? WHERE id = ? AND state = 'pending'`,
		state, progress, completedMS, why, id)
	if err != nil {
		return false, fmt.Errorf("store: snapshot %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// StartDeleteSnapshot moves an account's snapshot to deleting before the
// storage controller is asked to remove it. Errors: ErrNotFound (also for
// one already deleting); a *SnapshotStateError while it is pending.
func (s *Store) StartDeleteSnapshot(ctx context.Context, accountID, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		snaps, err := querySnapshots(ctx, tx, `WHERE account_id = ? AND id = ? AND state != 'deleting'`, accountID, id)
		if err != nil {
			return err
		}
		if len(snaps) == 0 {
			return &MissingResourceError{ID: id}
		}
		if snaps[0].State == SnapshotPending {
			return &SnapshotStateError{ID: id, State: SnapshotPending}
		}
		_, err = tx.ExecContext(ctx, `UPDATE snapshots SET state = 'deleting' WHERE id = ?`, id)
		return err
	})
}

// SetSnapshotState moves a snapshot from state from to state (a delete the
// storage controller refused goes back to completed).
func (s *Store) SetSnapshotState(ctx context.Context, id, from, state string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE snapshots SET state = ? WHERE id = ? AND state = ?`, state, id, from)
	return err
}

// DeleteSnapshotRecord removes a snapshot the storage controller deleted,
// with its tags and permissions (only one in state deleting).
func (s *Store) DeleteSnapshotRecord(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM snapshots WHERE id = ? AND state = 'deleting'`, id)
		if err != nil {
			return fmt.Errorf("store: delete snapshot %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return deleteAllTags(ctx, tx, id)
	})
}

// SnapshotPermissionUpdate changes a snapshot's createVolumePermission:
// Reset first removes every grant (public too), then Add and Remove apply;
// Public, when not nil, sets the group all.
type SnapshotPermissionUpdate struct {
	Reset       bool
	Public      *bool
	Add, Remove []string
}

// UpdateSnapshotPermissions changes an account's own snapshot's
// permissions (ErrNotFound when the account does not own it).
func (s *Store) UpdateSnapshotPermissions(ctx context.Context, accountID, id string, u SnapshotPermissionUpdate) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		snaps, err := querySnapshots(ctx, tx, `WHERE account_id = ? AND id = ? AND state != 'deleting'`, accountID, id)
		if err != nil {
			return err
		}
		if len(snaps) == 0 {
			return &MissingResourceError{ID: id}
		}
		if u.Reset {
			if _, err := tx.ExecContext(ctx, `DELETE FROM snapshot_permissions WHERE snapshot_id = ?`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE snapshots SET public = 0 WHERE id = ?`, id); err != nil {
				return err
			}
		}
		if u.Public != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE snapshots SET public = ? WHERE id = ?`, *u.Public, id); err != nil {
				return err
			}
		}
		add := append([]string(nil), u.Add...)
		sort.Strings(add)
		for _, who := range add {
			if who == accountID {
				continue // the owner may anyway
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO snapshot_permissions (snapshot_id, account_id) VALUES (?, ?)`, id, who); err != nil {
				return err
			}
		}
		for _, who := range u.Remove {
			if _, err := tx.ExecContext(ctx, `DELETE FROM snapshot_permissions WHERE snapshot_id = ? AND account_id = ?`, id, who); err != nil {
				return err
			}
		}
		return nil
	})
}
