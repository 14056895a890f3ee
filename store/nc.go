package store

import (
	"context"
	"database/sql"
	"fmt"
)

// NCInstance is one instance as its node controller records it. Request and
// Spec are JSON documents the NC owns (ncapi.InstanceRequest and
// hypervisor.InstanceSpec); the store keeps them opaque, since it imports no
// role.
type NCInstance struct {
	ID         string
	Request    string
	State      string
	Reason     string
	Dir        string
	Spec       string
	CreatedMS  int64
	LaunchedMS int64
	UpdatedMS  int64
}

const ncCols = `id, request, state, reason, dir, spec, created_ms, launched_ms, updated_ms`

func scanNCInstance(sc interface{ Scan(...any) error }) (NCInstance, error) {
	var in NCInstance
	err := sc.Scan(&in.ID, &in.Request, &in.State, &in.Reason, &in.Dir, &in.Spec,
		&in.CreatedMS, &in.LaunchedMS, &in.UpdatedMS)
	return in, err
}

// NCCreateInstance records a newly accepted instance; ErrConflict when the
// id is already known. Zero timestamps are set to now.
func (s *Store) NCCreateInstance(ctx context.Context, in NCInstance) error {
	t := now()
	if in.CreatedMS == 0 {
		in.CreatedMS = t
	}
	if in.UpdatedMS == 0 {
		in.UpdatedMS = t
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO nc_instances (`+ncCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.ID, in.Request, in.State, in.Reason, in.Dir, in.Spec, in.CreatedMS, in.LaunchedMS, in.UpdatedMS)
		return conflict(err, "instance "+in.ID)
	})
}

// NCUpdateInstance writes an instance's request (which changes only by
// the address a node learns in SYSTEM mode), state, reason, spec and launch
// time (its directory and creation time never change) and stamps
// UpdatedMS with now, which it returns; ErrNotFound for an unknown id.
func (s *Store) NCUpdateInstance(ctx context.Context, in NCInstance) (int64, error) {
	t := now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nc_instances SET request = ?, state = ?, reason = ?, spec = ?, launched_ms = ?, updated_ms = ? WHERE id = ?`,
			in.Request, in.State, in.Reason, in.Spec, in.LaunchedMS, t, in.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("instance %s: %w", in.ID, ErrNotFound)
		}
		return nil
	})
	return t, err
}

// NCInstance returns one instance; ErrNotFound for an unknown id.
func (s *Store) NCInstance(ctx context.Context, id string) (NCInstance, error) {
	in, err := scanNCInstance(s.r.QueryRowContext(ctx, `SELECT `+ncCols+` FROM nc_instances WHERE id = ?`, id))
	return in, notFound(err, "instance "+id)
}

// NCInstances returns every instance the node knows, oldest first.
func (s *Store) NCInstances(ctx context.Context) ([]NCInstance, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+ncCols+` FROM nc_instances ORDER BY created_ms, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NCInstance
	for rows.Next() {
		in, err := scanNCInstance(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// NCDeleteInstance forgets an instance; a missing one is not an error.
func (s *Store) NCDeleteInstance(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM nc_instances WHERE id = ?`, id)
		return err
	})
}
