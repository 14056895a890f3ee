package store

import (
	"context"
	"database/sql"
	"fmt"
)

// SnapshotImages lists the images (any account's) whose block device
// mappings make volumes from a snapshot: while one does, the snapshot may
// not be deleted (EC2's InvalidSnapshot.InUse). Deregistering an image
// leaves its snapshots, as EC2 does.
func (s *Store) SnapshotImages(ctx context.Context, snapshotID string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT i.id FROM images i, json_each(i.manifest_info, '$.block_devices') b
		WHERE json_extract(b.value, '$.snapshot_id') = ? ORDER BY i.id`, snapshotID)
	if err != nil {
		return nil, fmt.Errorf("store: images of snapshot %s: %w", snapshotID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// SetImageBlockDevices replaces an image's block device mappings (the
// snapshots CreateImage took).
func (s *Store) SetImageBlockDevices(ctx context.Context, id string, bdm []ImageBlockDevice) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		im, err := scanImage(tx.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE id = ?`, id))
		if err != nil {
			return notFound(err, "image "+id)
		}
		im.BlockDevices = bdm
		_, err = tx.ExecContext(ctx, `UPDATE images SET manifest_info = ? WHERE id = ?`, im.info(), id)
		return err
	})
}

// PendingEBSImages lists the EBS-backed images (any account's) that wait
// for their snapshots.
func (s *Store) PendingEBSImages(ctx context.Context) ([]Image, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+imageCols+` FROM images
		WHERE state = 'pending' AND json_extract(manifest_info, '$.root_device_type') = 'ebs' ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("store: pending images: %w", err)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, rows.Err()
}

// CreateImageSpec is a CreateImage request as the API decoded it (here,
// beside Image, so that the API and the cloud controller share it).
type CreateImageSpec struct {
	InstanceID   string
	Name         string
	Description  string
	NoReboot     bool
	BlockDevices []ImageBlockDevice // on top of the instance's volumes
	ImageTags    []Tag
	SnapshotTags []Tag
}
