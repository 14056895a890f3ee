package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// TypeImage is the tag resource type of images.
const TypeImage = "image"

// Image kinds, as manifests name them.
const (
	ImageMachine = "machine"
	ImageKernel  = "kernel"
	ImageRamdisk = "ramdisk"
)

// Image states.
const (
	ImagePending      = "pending"
	ImageAvailable    = "available"
	ImageFailed       = "failed"
	ImageDeregistered = "deregistered"
)

// Image is a registered image.
type Image struct {
	ID           string
	AccountID    string
	Kind         string
	Name         string
	Description  string
	Location     string
	Architecture string
	KernelID     string
	RamdiskID    string
	State        string
	StateReason  string
	Public       bool
	SizeBytes    int64
	SHA256       string
	CreatedMS    int64
	Tags         []Tag
	// LaunchPermissions are the accounts other than the owner that may
	// launch it (loaded by the reads that list images).
	LaunchPermissions []string

	// What the manifest (or RegisterImage's overrides) declares beside the
	// image: the root device, the block device mappings of an
	// instance-store image (ami, root, ephemeral0, swap), product codes.
	RootDeviceName string
	BlockDevices   []ImageBlockDevice
	ProductCodes   []string
	// RootDeviceType is RootEBS or RootInstanceStore.
	RootDeviceType string
}

// EBS reports whether the image's root device is an EBS snapshot.
func (im Image) EBS() bool { return im.RootDeviceType == RootEBS }

// ImageBlockDevice is one block device mapping of an image: a virtual
// name (ami, root, ephemeral0, swap) and the guest device, or (EBS set) a
// volume made at launch, from SnapshotID or empty, of VolumeSize GiB (0:
// the snapshot's size).
type ImageBlockDevice struct {
	Virtual string `json:"virtual"`
	Device  string `json:"device"`

	EBS                 bool   `json:"ebs,omitempty"`
	SnapshotID          string `json:"snapshot_id,omitempty"`
	VolumeSize          int    `json:"volume_size,omitempty"` // GiB
	VolumeType          string `json:"volume_type,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	// PendingVolume is, in an image CreateImage is making, the volume
	// whose snapshot is not taken yet (SnapshotID is empty until it is).
	PendingVolume string `json:"pending_volume,omitempty"`
}

// imageInfo is the JSON of the manifest_info column.
type imageInfo struct {
	// RootDeviceType is RootEBS for an EBS-backed image ("" is
	// instance-store: images registered from bundles).
	RootDeviceType string             `json:"root_device_type,omitempty"`
	RootDeviceName string             `json:"root_device_name,omitempty"`
	BlockDevices   []ImageBlockDevice `json:"block_devices,omitempty"`
	ProductCodes   []string           `json:"product_codes,omitempty"`
}

// schemaImagesManifest keeps what an image's manifest declares besides the
// image itself (root device, block device mappings, product codes), as one
// JSON document: these are read whole, with the image, and never queried.
var schemaImagesManifest = []string{
	`ALTER TABLE images ADD COLUMN manifest_info TEXT NOT NULL DEFAULT '{}'`,
}

func (im *Image) info() string {
	root := im.RootDeviceType
	if root == RootInstanceStore {
		root = ""
	}
	b, _ := json.Marshal(imageInfo{RootDeviceType: root, RootDeviceName: im.RootDeviceName, BlockDevices: im.BlockDevices, ProductCodes: im.ProductCodes})
	return string(b)
}

const imageCols = `id, account_id, kind, name, description, location, architecture, kernel_id, ramdisk_id, state, state_reason, is_public, size_bytes, sha256, created_ms, manifest_info`

func scanImage(sc interface{ Scan(...any) error }) (Image, error) {
	var im Image
	var info string
	err := sc.Scan(&im.ID, &im.AccountID, &im.Kind, &im.Name, &im.Description, &im.Location, &im.Architecture,
		&im.KernelID, &im.RamdiskID, &im.State, &im.StateReason, &im.Public, &im.SizeBytes, &im.SHA256, &im.CreatedMS, &info)
	if err != nil {
		return im, err
	}
	var ii imageInfo
	if err := json.Unmarshal([]byte(info), &ii); err != nil {
		return im, fmt.Errorf("store: image %s: manifest_info: %w", im.ID, err)
	}
	im.RootDeviceName, im.BlockDevices, im.ProductCodes = ii.RootDeviceName, ii.BlockDevices, ii.ProductCodes
	im.RootDeviceType = ii.RootDeviceType
	if im.RootDeviceType == "" {
		im.RootDeviceType = RootInstanceStore
	}
	return im, nil
}

// CreateImage registers an image with its tags. ErrConflict when the owner
// already has an image of that name.
func (s *Store) CreateImage(ctx context.Context, im Image) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO images (`+imageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			im.ID, im.AccountID, im.Kind, im.Name, im.Description, im.Location, im.Architecture, im.KernelID, im.RamdiskID,
			im.State, im.StateReason, im.Public, im.SizeBytes, im.SHA256, now(), im.info()); err != nil {
			return conflict(err, "image "+im.Name)
		}
		return putTags(ctx, tx, im.AccountID, im.ID, TypeImage, im.Tags)
	})
}

// ImageByID returns an image whoever owns it (callers decide visibility),
// with its launch permissions and its owner's tags.
func (s *Store) ImageByID(ctx context.Context, id string) (Image, error) {
	im, err := scanImage(s.r.QueryRowContext(ctx, `SELECT `+imageCols+` FROM images WHERE id = ?`, id))
	if err != nil {
		return im, notFound(err, "image "+id)
	}
	if im.LaunchPermissions, err = launchPermissions(ctx, s.r, id); err != nil {
		return im, err
	}
	tags, err := tagsByResource(ctx, s.r, im.AccountID, TypeImage)
	im.Tags = tags[im.ID]
	return im, err
}

// ImagesVisibleTo lists the images an account may see: its own, public
// ones, and those it was given launch permission on. Deregistered images
// are left out.
func (s *Store) ImagesVisibleTo(ctx context.Context, accountID string) ([]Image, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+imageCols+` FROM images
		WHERE state != 'deregistered' AND (account_id = ? OR is_public = 1
		   OR id IN (SELECT image_id FROM image_launch_permissions WHERE account_id = ?))
		ORDER BY created_ms, id`, accountID, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: images: %w", err)
	}
	var out []Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, im)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Tags are the caller's own view: only the owner's tags show, as in EC2
	// (tags are per account); other accounts' images show none.
	tags, err := tagsByResource(ctx, s.r, accountID, TypeImage)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Tags = tags[out[i].ID]
		if out[i].LaunchPermissions, err = launchPermissions(ctx, s.r, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func launchPermissions(ctx context.Context, q queryer, imageID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT account_id FROM image_launch_permissions WHERE image_id = ? ORDER BY account_id`, imageID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ImageUpdate changes an image's mutable fields; nil fields stay.
type ImageUpdate struct {
	State       *string
	StateReason *string
	Description *string
	Public      *bool
	SizeBytes   *int64
	SHA256      *string
	// AddLaunch and RemoveLaunch change the launch permissions;
	// ResetLaunch removes them all first.
	AddLaunch, RemoveLaunch []string
	ResetLaunch             bool
}

// UpdateImage applies u to the owner's image (ErrNotFound for anyone else).
func (s *Store) UpdateImage(ctx context.Context, accountID, id string, u ImageUpdate) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var sets []string
		var args []any
		add := func(col string, v any) { sets = append(sets, col+" = ?"); args = append(args, v) }
		if u.State != nil {
			add("state", *u.State)
		}
		if u.StateReason != nil {
			add("state_reason", *u.StateReason)
		}
		if u.Description != nil {
			add("description", *u.Description)
		}
		if u.Public != nil {
			add("is_public", *u.Public)
		}
		if u.SizeBytes != nil {
			add("size_bytes", *u.SizeBytes)
		}
		if u.SHA256 != nil {
			add("sha256", *u.SHA256)
		}
		if len(sets) > 0 {
			res, err := tx.ExecContext(ctx, `UPDATE images SET `+strings.Join(sets, ", ")+` WHERE id = ? AND account_id = ?`, append(args, id, accountID)...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("image %s: %w", id, ErrNotFound)
			}
		} else {
			var owner string
			if err := tx.QueryRowContext(ctx, `SELECT account_id FROM images WHERE id = ?`, id).Scan(&owner); err != nil || owner != accountID {
				return fmt.Errorf("image %s: %w", id, ErrNotFound)
			}
		}
		if u.ResetLaunch {
			if _, err := tx.ExecContext(ctx, `DELETE FROM image_launch_permissions WHERE image_id = ?`, id); err != nil {
				return err
			}
		}
		for _, a := range u.AddLaunch {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO image_launch_permissions (image_id, account_id) VALUES (?, ?)`, id, a); err != nil {
				return err
			}
		}
		for _, a := range u.RemoveLaunch {
			if _, err := tx.ExecContext(ctx, `DELETE FROM image_launch_permissions WHERE image_id = ? AND account_id = ?`, id, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImageNameTaken reports whether an account already has an image of that
// name (RegisterImage checks before the long work of unbundling; the
// UNIQUE constraint still decides at CreateImage).
func (s *Store) ImageNameTaken(ctx context.Context, accountID, name string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM images WHERE account_id = ? AND name = ?`, accountID, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: image name: %w", err)
	}
	return n > 0, nil
}

// DeleteImage removes an image record and its tags (deregistration).
func (s *Store) DeleteImage(ctx context.Context, accountID, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM images WHERE id = ? AND account_id = ?`, id, accountID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("image %s: %w", id, ErrNotFound)
		}
		return deleteAllTags(ctx, tx, id)
	})
}
