package store

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaLaunchVolumes records, for an instance launched with a block
// device mapping, the volumes made for it until it boots: a volume is
// attached only once it exists, so until then nothing else links it to
// its instance, and a cloud controller restarted meanwhile resumes the
// launch from these rows (roles/clc/instances_resume.go). The rows are
// taken (deleted) by whoever goes on to boot the instance: that delete
// is the launch's lock.
var schemaLaunchVolumes = []string{
	`CREATE TABLE launch_volumes (
		volume_id             TEXT PRIMARY KEY,
		instance_id           TEXT NOT NULL,
		device                TEXT NOT NULL,
		delete_on_termination INTEGER NOT NULL,
		boot_index            INTEGER NOT NULL
	)`,
	`CREATE INDEX launch_volumes_instance ON launch_volumes(instance_id)`,
}

// LaunchVolume is a volume made for a launched instance that has not
// booted yet: the mapping's device, DeleteOnTermination and order.
type LaunchVolume struct {
	VolumeID            string
	InstanceID          string
	Device              string
	DeleteOnTermination bool
	BootIndex           int
}

// RecordLaunchVolumes records the volumes made for launched instances, in
// one transaction.
func (s *Store) RecordLaunchVolumes(ctx context.Context, vols []LaunchVolume) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, v := range vols {
			if _, err := tx.ExecContext(ctx, `INSERT INTO launch_volumes (volume_id, instance_id, device, delete_on_termination, boot_index)
				VALUES (?, ?, ?, ?, ?)`, v.VolumeID, v.InstanceID, v.Device, v.DeleteOnTermination, v.BootIndex); err != nil {
				return fmt.Errorf("store: launch volume %s of %s: %w", v.VolumeID, v.InstanceID, err)
			}
		}
		return nil
	})
}

// LaunchVolumes returns the launches not taken yet, by instance, each
// instance's volumes in their mapping's order.
func (s *Store) LaunchVolumes(ctx context.Context) (map[string][]LaunchVolume, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT volume_id, instance_id, device, delete_on_termination, boot_index
		FROM launch_volumes ORDER BY instance_id, boot_index`)
	if err != nil {
		return nil, fmt.Errorf("store: launch volumes: %w", err)
	}
	defer rows.Close()
	out := map[string][]LaunchVolume{}
	for rows.Next() {
		var v LaunchVolume
		if err := rows.Scan(&v.VolumeID, &v.InstanceID, &v.Device, &v.DeleteOnTermination, &v.BootIndex); err != nil {
			return nil, fmt.Errorf("store: launch volumes: %w", err)
		}
		out[v.InstanceID] = append(out[v.InstanceID], v)
	}
	return out, rows.Err()
}

// TakeLaunch takes an instance's launch: it deletes its launch volumes
// and reports whether this call did (false: another took it first, and
// only the one that took it boots the instance).
func (s *Store) TakeLaunch(ctx context.Context, instanceID string) (bool, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM launch_volumes WHERE instance_id = ?`, instanceID)
	if err != nil {
		return false, fmt.Errorf("store: take launch of %s: %w", instanceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: take launch of %s: %w", instanceID, err)
	}
	return n > 0, nil
}
