package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The storage controller's records (schemaSC): its volumes and their NBD
// exports.

// SC volume states, as the storage controller's API names them.
const (
	SCVolumeCreating  = "creating"
	SCVolumeAvailable = "available"
	SCVolumeDeleting  = "deleting"
	SCVolumeError     = "error"
)

// SCVolume is one volume of the storage controller.
type SCVolume struct {
	ID         string
	SizeBytes  int64
	SnapshotID string
	State      string
	Error      string
	CreatedMS  int64
	UpdatedMS  int64
	Exports    []string // live export names, oldest first (read only)
}

// SCExport is one live export of a volume to a node.
type SCExport struct {
	Name      string
	VolumeID  string
	Node      string
	CreatedMS int64
}

// ErrSCExported: the volume has live exports, so it may not be deleted.
var ErrSCExported = errors.New("store: volume is exported")

const scVolCols = `id, size_bytes, snapshot_id, state, error, created_ms, updated_ms`

// SCCreateVolume records a volume to make, in state creating, unless its
// id is known already: then it changes nothing and returns the row there
// (created false), so that the caller can tell a repeated request from a
// conflicting one.
func (s *Store) SCCreateVolume(ctx context.Context, v SCVolume) (got SCVolume, created bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		got, err = scVolume(ctx, tx, v.ID)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		t := now()
		v.State, v.Error, v.CreatedMS, v.UpdatedMS, v.Exports = SCVolumeCreating, "", t, t, nil
		if _, err := tx.ExecContext(ctx, `INSERT INTO sc_volumes (`+scVolCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.SizeBytes, v.SnapshotID, v.State, v.Error, v.CreatedMS, v.UpdatedMS); err != nil {
			return fmt.Errorf("store: create volume %s: %w", v.ID, err)
		}
		got, created = v, true
		return nil
	})
	return got, created, err
}

// SCVolume is one volume with its exports; ErrNotFound when unknown.
func (s *Store) SCVolume(ctx context.Context, id string) (SCVolume, error) {
	return scVolume(ctx, s.r, id)
}

func scVolume(ctx context.Context, q queryer, id string) (SCVolume, error) {
	vs, err := scVolumes(ctx, q, []string{id})
	if err != nil {
		return SCVolume{}, err
	}
	if len(vs) == 0 {
		return SCVolume{}, fmt.Errorf("volume %s: %w", id, ErrNotFound)
	}
	return vs[0], nil
}

// SCVolumes lists the volumes named (all when none is), by id, each with
// its exports; unknown ids are left out.
func (s *Store) SCVolumes(ctx context.Context, ids ...string) ([]SCVolume, error) {
	return scVolumes(ctx, s.r, ids)
}

func scVolumes(ctx context.Context, q queryer, ids []string) ([]SCVolume, error) {
	where, args := "", []any{}
	if len(ids) > 0 {
		where = ` WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT `+scVolCols+` FROM sc_volumes`+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: volumes: %w", err)
	}
	var out []SCVolume
	index := map[string]int{}
	for rows.Next() {
		var v SCVolume
		if err := rows.Scan(&v.ID, &v.SizeBytes, &v.SnapshotID, &v.State, &v.Error, &v.CreatedMS, &v.UpdatedMS); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: volumes: %w", err)
		}
		index[v.ID] = len(out)
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: volumes: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	exports, err := scExports(ctx, q, "")
	if err != nil {
		return nil, err
	}
	for _, e := range exports {
		if i, ok := index[e.VolumeID]; ok {
			out[i].Exports = append(out[i].Exports, e.Name)
		}
	}
	return out, nil
}

// SCSetVolumeState moves a volume to state (with why, for error) when it
// is in one of from; ErrConflict when it is in another state, ErrNotFound
// when unknown.
func (s *Store) SCSetVolumeState(ctx context.Context, id, state, why string, from ...string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		v, err := scVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(from) > 0 && !slices.Contains(from, v.State) {
			return fmt.Errorf("volume %s is %s, not %s: %w", id, v.State, strings.Join(from, " or "), ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sc_volumes SET state = ?, error = ?, updated_ms = ? WHERE id = ?`, state, why, now(), id); err != nil {
			return fmt.Errorf("store: volume %s: %w", id, err)
		}
		return nil
	})
}

// SCStartDeleteVolume marks a volume deleting, unless it is exported
// (ErrSCExported); ErrNotFound when unknown. A volume deleting already
// stays so.
func (s *Store) SCStartDeleteVolume(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		v, err := scVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(v.Exports) > 0 {
			return fmt.Errorf("volume %s has %d exports: %w", id, len(v.Exports), ErrSCExported)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sc_volumes SET state = ?, updated_ms = ? WHERE id = ?`, SCVolumeDeleting, now(), id); err != nil {
			return fmt.Errorf("store: volume %s: %w", id, err)
		}
		return nil
	})
}

// SCDeleteVolume forgets a volume (its data gone); unknown is no error.
func (s *Store) SCDeleteVolume(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sc_volumes WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete volume %s: %w", id, err)
		}
		return nil
	})
}

// SCSetVolumeSize records a volume's new size (it only grows: a smaller
// size is ErrConflict); ErrNotFound when unknown.
func (s *Store) SCSetVolumeSize(ctx context.Context, id string, size int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		v, err := scVolume(ctx, tx, id)
		if err != nil {
			return err
		}
		if size < v.SizeBytes {
			return fmt.Errorf("volume %s holds %d bytes, asked for %d: %w", id, v.SizeBytes, size, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sc_volumes SET size_bytes = ?, updated_ms = ? WHERE id = ?`, size, now(), id); err != nil {
			return fmt.Errorf("store: volume %s: %w", id, err)
		}
		return nil
	})
}

// SCAddExport records an export of an available volume; ErrNotFound when
// the volume is unknown, ErrConflict when it is not available or the name
// is taken.
func (s *Store) SCAddExport(ctx context.Context, e SCExport) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		v, err := scVolume(ctx, tx, e.VolumeID)
		if err != nil {
			return err
		}
		if v.State != SCVolumeAvailable {
			return fmt.Errorf("volume %s is %s: %w", e.VolumeID, v.State, ErrConflict)
		}
		if e.CreatedMS == 0 {
			e.CreatedMS = now()
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sc_exports (name, volume_id, node, created_ms) VALUES (?, ?, ?, ?)`,
			e.Name, e.VolumeID, e.Node, e.CreatedMS)
		return conflict(err, "export "+e.Name)
	})
}

// SCDeleteExport forgets an export of a volume; unknown is no error.
func (s *Store) SCDeleteExport(ctx context.Context, volumeID, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sc_exports WHERE name = ? AND volume_id = ?`, name, volumeID); err != nil {
			return fmt.Errorf("store: delete export %s: %w", name, err)
		}
		return nil
	})
}

// SCExport is one export by name; ErrNotFound when it is not live.
func (s *Store) SCExport(ctx context.Context, name string) (SCExport, error) {
	var e SCExport
	err := s.r.QueryRowContext(ctx, `SELECT name, volume_id, node, created_ms FROM sc_exports WHERE name = ?`, name).
		Scan(&e.Name, &e.VolumeID, &e.Node, &e.CreatedMS)
	if err != nil {
		return SCExport{}, notFound(err, "export "+name)
	}
	return e, nil
}

// SCExports lists the exports of a volume ("" for all), oldest first.
func (s *Store) SCExports(ctx context.Context, volumeID string) ([]SCExport, error) {
	return scExports(ctx, s.r, volumeID)
}

func scExports(ctx context.Context, q queryer, volumeID string) ([]SCExport, error) {
	query, args := `SELECT name, volume_id, node, created_ms FROM sc_exports`, []any{}
	if volumeID != "" {
		query += ` WHERE volume_id = ?`
		args = append(args, volumeID)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY created_ms, name`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: exports: %w", err)
	}
	defer rows.Close()
	var out []SCExport
	for rows.Next() {
		var e SCExport
		if err := rows.Scan(&e.Name, &e.VolumeID, &e.Node, &e.CreatedMS); err != nil {
			return nil, fmt.Errorf("store: exports: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
