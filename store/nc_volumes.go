package store

import (
	"context"
	"database/sql"
)

// NCVolume is a volume a node controller holds for an instance. Attachment
// is a JSON document the NC owns (ncapi.VolumeAttachment).
type NCVolume struct {
	InstanceID string
	VolumeID   string
	Attachment string
	State      string
	UpdatedMS  int64
}

// NCPutVolume records a volume's attachment and state (new, or replacing
// the row of that instance and volume), stamping UpdatedMS with now.
func (s *Store) NCPutVolume(ctx context.Context, v NCVolume) error {
	v.UpdatedMS = now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO nc_volumes (instance_id, volume_id, attachment, state, updated_ms) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (instance_id, volume_id) DO UPDATE SET attachment = excluded.attachment, state = excluded.state, updated_ms = excluded.updated_ms`,
			v.InstanceID, v.VolumeID, v.Attachment, v.State, v.UpdatedMS)
		return err
	})
}

// NCVolumes returns every volume the node holds, by instance then volume.
func (s *Store) NCVolumes(ctx context.Context) ([]NCVolume, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT instance_id, volume_id, attachment, state, updated_ms FROM nc_volumes ORDER BY instance_id, volume_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NCVolume
	for rows.Next() {
		var v NCVolume
		if err := rows.Scan(&v.InstanceID, &v.VolumeID, &v.Attachment, &v.State, &v.UpdatedMS); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// NCDeleteVolume forgets one volume of an instance; a missing one is not an
// error.
func (s *Store) NCDeleteVolume(ctx context.Context, instanceID, volumeID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM nc_volumes WHERE instance_id = ? AND volume_id = ?`, instanceID, volumeID)
		return err
	})
}

// NCDeleteVolumes forgets every volume of an instance.
func (s *Store) NCDeleteVolumes(ctx context.Context, instanceID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM nc_volumes WHERE instance_id = ?`, instanceID)
		return err
	})
}
