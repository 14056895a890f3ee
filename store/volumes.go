package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// TypeVolume is the tag resource type of volumes.
const TypeVolume = "volume"

// Volume states as the volumes table holds them. EC2's in-use is not
// stored: a volume is in use while it has an attachment (Volume.EC2State).
const (
	VolumeCreating  = "creating"
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
	VolumeDeleting  = "deleting"
	VolumeError     = "error"
)

// Attachment states (EC2's VolumeAttachmentState). A detached attachment
// is not kept: its row goes.
const (
	AttachmentAttaching = "attaching"
	AttachmentAttached  = "attached"
	AttachmentDetaching = "detaching"
)

// Volume is an EBS volume as the cloud controller records it.
type Volume struct {
	ID          string
	AccountID   string
	Zone        string
	SizeGiB     int
	Type        string
	Iops        int
	Throughput  int
	SnapshotID  string
	State       string // VolumeCreating, VolumeAvailable, VolumeDeleting, VolumeError
	ClientToken string
	Error       string
	CreatedMS   int64
	Attachment  *VolumeAttachment // nil when not attached
	Mod         VolumeModification
	Tags        []Tag
}

// EC2State is the volume's state as EC2 shows it: in-use while attached.
func (v Volume) EC2State() string {
	if v.Attachment != nil && v.State == VolumeAvailable {
		return VolumeInUse
	}
	return v.State
}

// VolumeModification is the last ModifyVolume of a volume (State "" when
// none was made).
type VolumeModification struct {
	State                                    string
	Message                                  string
	OrigSize, OrigIops, OrigThroughput       int
	OrigType                                 string
	TargetSize, TargetIops, TargetThroughput int
	TargetType                               string
	StartMS, EndMS                           int64
}

// VolumeAttachment is a volume's attachment to an instance.
type VolumeAttachment struct {
	VolumeID            string
	InstanceID          string
	Device              string
	Slot                string // the device's letters: one volume per slot of an instance
	State               string
	AttachMS            int64
	DeleteOnTermination bool
	Export              string // the storage controller's export name ("" until exported)
	Force               bool   // the detach is forced
	AtBoot              bool   // present at launch or the last start
	BootIndex           int    // order among those at boot
}

// VolumeInUseError says a volume is attached (to Instance) where it must
// not be.
type VolumeInUseError struct{ ID, Instance string }

func (e *VolumeInUseError) Error() string {
	return "store: volume " + e.ID + " is attached to " + e.Instance
}

// VolumeStateError says a volume is not in a state the change allows.
type VolumeStateError struct{ ID, State string }

func (e *VolumeStateError) Error() string {
	return "store: volume " + e.ID + " is " + e.State
}

// ErrVolumeLimit: the account would hold more volume storage than allowed.
var ErrVolumeLimit = errors.New("store: volume storage limit exceeded")

const volumeColumns = `v.id, v.account_id, v.zone, v.size_gib, v.volume_type, v.iops, v.throughput, v.snapshot_id,
	v.state, v.client_token, v.error, v.created_ms,
	v.mod_state, v.mod_message, v.mod_orig_size, v.mod_orig_type, v.mod_orig_iops, v.mod_orig_tput,
	v.mod_target_size, v.mod_target_type, v.mod_target_iops, v.mod_target_tput, v.mod_start_ms, v.mod_end_ms,
	a.instance_id, a.device, a.slot, a.state, a.attach_ms, a.delete_on_termination, a.export, a.force, a.at_boot, a.boot_index`

const volumeFrom = ` FROM volumes v LEFT JOIN volume_attachments a ON a.volume_id = v.id`

func scanVolume(rows interface{ Scan(...any) error }) (Volume, error) {
	var v Volume
	var instance, device, slot, state, export sql.NullString
	var attachMS, dot, force, atBoot, bootIndex sql.NullInt64
	err := rows.Scan(&v.ID, &v.AccountID, &v.Zone, &v.SizeGiB, &v.Type, &v.Iops, &v.Throughput, &v.SnapshotID,
		&v.State, &v.ClientToken, &v.Error, &v.CreatedMS,
		&v.Mod.State, &v.Mod.Message, &v.Mod.OrigSize, &v.Mod.OrigType, &v.Mod.OrigIops, &v.Mod.OrigThroughput,
		&v.Mod.TargetSize, &v.Mod.TargetType, &v.Mod.TargetIops, &v.Mod.TargetThroughput, &v.Mod.StartMS, &v.Mod.EndMS,
		&instance, &device, &slot, &state, &attachMS, &dot, &export, &force, &atBoot, &bootIndex)
	if err != nil {
		return v, err
	}
	if instance.Valid {
		v.Attachment = &VolumeAttachment{VolumeID: v.ID, InstanceID: instance.String, Device: device.String, Slot: slot.String,
			State: state.String, AttachMS: attachMS.Int64, DeleteOnTermination: dot.Int64 != 0, Export: export.String,
			Force: force.Int64 != 0, AtBoot: atBoot.Int64 != 0, BootIndex: int(bootIndex.Int64)}
	}
	return v, nil
}

func queryVolumes(ctx context.Context, q queryer, where string, args ...any) ([]Volume, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+volumeColumns+volumeFrom+` `+where+` ORDER BY v.created_ms, v.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: volumes: %w", err)
	}
	defer rows.Close()
	var out []Volume
	for rows.Next() {
		v, err := scanVolume(rows)
		if err != nil {
			return nil, fmt.Errorf("store: volumes: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// withVolumeTags fills each volume's tags.
func withVolumeTags(ctx context.Context, q queryer, vols []Volume) error {
	byAccount := map[string][]string{}
	for _, v := range vols {
		byAccount[v.AccountID] = append(byAccount[v.AccountID], v.ID)
	}
	tags := map[string][]Tag{}
	for acct, list := range byAccount {
		for len(list) > 0 {
			n := min(len(list), 500)
			m, err := tagsOf(ctx, q, acct, TypeVolume, list[:n])
			if err != nil {
				return err
			}
			for k, v := range m {
				tags[k] = v
			}
			list = list[n:]
		}
	}
	for i := range vols {
		vols[i].Tags = tags[vols[i].ID]
	}
	return nil
}

// CreateVolume records a new volume (state creating) with its tags. A
// client token the account already used returns the volume it made then
// and existed true (nothing is created). limitGiB (0: none) bounds the
// storage of all the account's volumes: ErrVolumeLimit beyond it.
func (s *Store) CreateVolume(ctx context.Context, v Volume, tags []Tag, limitGiB int) (out Volume, existed bool, err error) {
	if v.CreatedMS == 0 {
		v.CreatedMS = now()
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if v.ClientToken != "" {
			list, err := queryVolumes(ctx, tx, `WHERE v.account_id = ? AND v.client_token = ?`, v.AccountID, v.ClientToken)
			if err != nil {
				return err
			}
			if len(list) > 0 {
				err := withVolumeTags(ctx, tx, list[:1])
				out, existed = list[0], true
				return err
			}
		}
		if limitGiB > 0 {
			used, err := volumeStorageUsed(ctx, tx, v.AccountID)
			if err != nil {
				return err
			}
			if used+v.SizeGiB > limitGiB {
				return fmt.Errorf("%d GiB used, %d asked, limit %d: %w", used, v.SizeGiB, limitGiB, ErrVolumeLimit)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO volumes (id, account_id, zone, size_gib, volume_type, iops, throughput,
			snapshot_id, state, client_token, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.AccountID, v.Zone, v.SizeGiB, v.Type, v.Iops, v.Throughput, v.SnapshotID, v.State, v.ClientToken, v.CreatedMS); err != nil {
			return conflict(err, "volume "+v.ID)
		}
		if err := putTags(ctx, tx, v.AccountID, v.ID, TypeVolume, tags); err != nil {
			return err
		}
		out = v
		out.Tags = tags
		return nil
	})
	return out, existed, err
}

// Volumes lists an account's volumes, oldest first.
func (s *Store) Volumes(ctx context.Context, accountID string) ([]Volume, error) {
	vols, err := queryVolumes(ctx, s.r, `WHERE v.account_id = ?`, accountID)
	if err != nil {
		return nil, err
	}
	return vols, withVolumeTags(ctx, s.r, vols)
}

// VolumesByID lists those of an account's volumes named (the others are
// left out).
func (s *Store) VolumesByID(ctx context.Context, accountID string, ids []string) ([]Volume, error) {
	var out []Volume
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := []any{accountID}
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		vols, err := queryVolumes(ctx, s.r, `WHERE v.account_id = ? AND v.id IN (?`+strings.Repeat(`, ?`, n-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, vols...)
		ids = ids[n:]
	}
	return out, withVolumeTags(ctx, s.r, out)
}

// Volume is one of an account's volumes; ErrNotFound when it has none of
// that id.
func (s *Store) Volume(ctx context.Context, accountID, id string) (Volume, error) {
	vols, err := s.VolumesByID(ctx, accountID, []string{id})
	if err != nil {
		return Volume{}, err
	}
	if len(vols) == 0 {
		return Volume{}, fmt.Errorf("volume %s: %w", id, ErrNotFound)
	}
	return vols[0], nil
}

// VolumeByID is a volume whoever owns it (the cloud controller's loop).
func (s *Store) VolumeByID(ctx context.Context, id string) (Volume, error) {
	vols, err := queryVolumes(ctx, s.r, `WHERE v.id = ?`, id)
	if err != nil {
		return Volume{}, err
	}
	if len(vols) == 0 {
		return Volume{}, fmt.Errorf("volume %s: %w", id, ErrNotFound)
	}
	return vols[0], nil
}

// VolumesToDrive lists every volume whose record or attachment is between
// two states (creating, deleting; attaching, detaching) or whose
// modification is not done: what the cloud controller's loop finishes.
func (s *Store) VolumesToDrive(ctx context.Context) ([]Volume, error) {
	return queryVolumes(ctx, s.r, `WHERE v.state IN ('creating', 'deleting') OR v.mod_state IN ('modifying', 'optimizing')
		OR a.state IN ('attaching', 'detaching')`)
}

// AttachedVolumes lists every volume with an attachment (any account).
func (s *Store) AttachedVolumes(ctx context.Context) ([]Volume, error) {
	return queryVolumes(ctx, s.r, `WHERE a.volume_id IS NOT NULL`)
}

// InstanceVolumes lists the volumes attached to an instance, in the order
// they were attached (those at boot first, in their order).
func (s *Store) InstanceVolumes(ctx context.Context, instanceID string) ([]Volume, error) {
	vols, err := queryVolumes(ctx, s.r, `WHERE a.instance_id = ?`, instanceID)
	if err != nil {
		return nil, err
	}
	sortAttached(vols)
	return vols, withVolumeTags(ctx, s.r, vols)
}

// sortAttached orders attached volumes: those at boot by their index, then
// the others by attach time.
func sortAttached(vols []Volume) {
	key := func(v Volume) (int, int64) {
		if v.Attachment.AtBoot {
			return 0, int64(v.Attachment.BootIndex)
		}
		return 1, v.Attachment.AttachMS
	}
	for i := 1; i < len(vols); i++ {
		for j := i; j > 0; j-- {
			a1, b1 := key(vols[j-1])
			a2, b2 := key(vols[j])
			if a1 < a2 || (a1 == a2 && b1 <= b2) {
				break
			}
			vols[j-1], vols[j] = vols[j], vols[j-1]
		}
	}
}

// SetVolumeState moves a volume from one of the states from to state
// (with why, for VolumeError); changed is false when it was in none of
// them.
func (s *Store) SetVolumeState(ctx context.Context, id string, from []string, state, why string) (changed bool, err error) {
	args := []any{state, why, id}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE volumes SET state = ?, error = ? WHERE id = ? AND state IN (?`+strings.Repeat(`, ?`, len(from)-1)+`)`, args...)
	if err != nil {
		return false, fmt.Errorf("store: volume %s state: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// SetVolumeSize records a volume's size as the storage controller made it
// (a volume from a snapshot at least the snapshot's size).
func (s *Store) SetVolumeSize(ctx context.Context, id string, sizeGiB int) error {
	_, err := s.w.ExecContext(ctx, `UPDATE volumes SET size_gib = ? WHERE id = ?`, sizeGiB, id)
	return err
}

// StartDeleteVolume moves an account's volume to deleting, before the
// storage controller is asked to remove it. Errors: ErrNotFound; a
// *VolumeInUseError while it is attached; a *VolumeStateError when it is
// already deleting.
func (s *Store) StartDeleteVolume(ctx context.Context, accountID, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		vols, err := queryVolumes(ctx, tx, `WHERE v.account_id = ? AND v.id = ?`, accountID, id)
		if err != nil {
			return err
		}
		if len(vols) == 0 {
			return &MissingResourceError{ID: id}
		}
		v := vols[0]
		if v.Attachment != nil {
			return &VolumeInUseError{ID: id, Instance: v.Attachment.InstanceID}
		}
		if v.State == VolumeDeleting {
			return &VolumeStateError{ID: id, State: v.State}
		}
		_, err = tx.ExecContext(ctx, `UPDATE volumes SET state = 'deleting' WHERE id = ?`, id)
		return err
	})
}

// DeleteVolumeRecord removes a volume the storage controller deleted, with
// its tags (only a volume in state deleting; otherwise nothing).
func (s *Store) DeleteVolumeRecord(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM volumes WHERE id = ? AND state = 'deleting'`, id)
		if err != nil {
			return fmt.Errorf("store: delete volume %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return deleteAllTags(ctx, tx, id)
	})
}

// ErrDeviceInUse: the instance already has a volume on that device slot.
var ErrDeviceInUse = errors.New("store: device in use")

// AttachVolume records an attachment (state as given: attaching, or
// attached for a stopped instance) of an account's volume. Errors:
// ErrNotFound; a *VolumeInUseError when the volume is attached; a
// *VolumeStateError when it is not available; ErrDeviceInUse when the
// instance has a volume in that slot.
func (s *Store) AttachVolume(ctx context.Context, accountID string, a VolumeAttachment) (Volume, error) {
	if a.AttachMS == 0 {
		a.AttachMS = now()
	}
	var out Volume
	err := s.tx(ctx, func(tx *sql.Tx) error {
		vols, err := queryVolumes(ctx, tx, `WHERE v.account_id = ? AND v.id = ?`, accountID, a.VolumeID)
		if err != nil {
			return err
		}
		if len(vols) == 0 {
			return &MissingResourceError{ID: a.VolumeID}
		}
		v := vols[0]
		if v.Attachment != nil {
			return &VolumeInUseError{ID: v.ID, Instance: v.Attachment.InstanceID}
		}
		if v.State != VolumeAvailable {
			return &VolumeStateError{ID: v.ID, State: v.State}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO volume_attachments (volume_id, instance_id, device, slot, state, attach_ms,
			delete_on_termination, at_boot, boot_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.VolumeID, a.InstanceID, a.Device, a.Slot, a.State, a.AttachMS, a.DeleteOnTermination, a.AtBoot, a.BootIndex); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%s on %s: %w", a.Device, a.InstanceID, ErrDeviceInUse)
			}
			return err
		}
		v.Attachment = &a
		out = v
		return nil
	})
	return out, err
}

// SetAttachment moves a volume's attachment from one of the states from to
// state; changed is false when it has none in those states.
func (s *Store) SetAttachment(ctx context.Context, volumeID string, from []string, state string) (changed bool, err error) {
	args := []any{state, volumeID}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE volume_attachments SET state = ? WHERE volume_id = ? AND state IN (?`+strings.Repeat(`, ?`, len(from)-1)+`)`, args...)
	if err != nil {
		return false, fmt.Errorf("store: attachment of %s: %w", volumeID, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// StartDetach moves a volume's attachment to detaching (force recorded), from
// attaching or attached; it returns the attachment as it was. ErrNotFound
// when the volume has no attachment.
func (s *Store) StartDetach(ctx context.Context, volumeID string, force bool) (VolumeAttachment, error) {
	var out VolumeAttachment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		vols, err := queryVolumes(ctx, tx, `WHERE v.id = ?`, volumeID)
		if err != nil {
			return err
		}
		if len(vols) == 0 || vols[0].Attachment == nil {
			return fmt.Errorf("attachment of %s: %w", volumeID, ErrNotFound)
		}
		out = *vols[0].Attachment
		_, err = tx.ExecContext(ctx, `UPDATE volume_attachments SET state = 'detaching', force = force OR ? WHERE volume_id = ?`, force, volumeID)
		return err
	})
	return out, err
}

// SetAttachmentExport records the export the storage controller made for
// a volume's attachment.
func (s *Store) SetAttachmentExport(ctx context.Context, volumeID, export string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE volume_attachments SET export = ? WHERE volume_id = ?`, export, volumeID)
	return err
}

// SetAttachmentBoot marks which of an instance's volumes were there at its
// launch or last start (metadata's ebsN), in order: every other attachment
// of it is marked not at boot.
func (s *Store) SetAttachmentBoot(ctx context.Context, instanceID string, volumeIDs []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE volume_attachments SET at_boot = 0, boot_index = 0 WHERE instance_id = ?`, instanceID); err != nil {
			return err
		}
		for i, id := range volumeIDs {
			if _, err := tx.ExecContext(ctx, `UPDATE volume_attachments SET at_boot = 1, boot_index = ? WHERE instance_id = ? AND volume_id = ?`, i, instanceID, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetDeleteOnTermination changes an attachment's DeleteOnTermination.
func (s *Store) SetDeleteOnTermination(ctx context.Context, volumeID string, v bool) error {
	_, err := s.w.ExecContext(ctx, `UPDATE volume_attachments SET delete_on_termination = ? WHERE volume_id = ?`, v, volumeID)
	return err
}

// EndAttachment removes a volume's attachment (the volume is available
// again); deleteVolume also moves the volume to deleting in the same
// transaction (DeleteOnTermination).
func (s *Store) EndAttachment(ctx context.Context, volumeID string, deleteVolume bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM volume_attachments WHERE volume_id = ?`, volumeID); err != nil {
			return fmt.Errorf("store: end attachment of %s: %w", volumeID, err)
		}
		if deleteVolume {
			if _, err := tx.ExecContext(ctx, `UPDATE volumes SET state = 'deleting' WHERE id = ?`, volumeID); err != nil {
				return err
			}
		}
		return nil
	})
}

// StartModifyVolume records a modification of an account's volume
// (state modifying) with its targets. Errors: ErrNotFound; a
// *VolumeStateError when the volume is not available or in use, or its
// last modification is not done (State "modifying").
//
// limitGiB (0: none) bounds the storage of all the account's volumes, as
// CreateVolume's does: growing a volume past it is ErrVolumeLimit.
func (s *Store) StartModifyVolume(ctx context.Context, accountID, id string, target VolumeModification, limitGiB int) (Volume, error) {
	var out Volume
	err := s.tx(ctx, func(tx *sql.Tx) error {
		vols, err := queryVolumes(ctx, tx, `WHERE v.account_id = ? AND v.id = ?`, accountID, id)
		if err != nil {
			return err
		}
		if len(vols) == 0 {
			return &MissingResourceError{ID: id}
		}
		v := vols[0]
		if v.State != VolumeAvailable {
			return &VolumeStateError{ID: id, State: v.State}
		}
		if v.Mod.State == "modifying" || v.Mod.State == "optimizing" {
			return &VolumeStateError{ID: id, State: "modifying"}
		}
		if limitGiB > 0 && target.TargetSize > v.SizeGiB {
			used, err := volumeStorageUsed(ctx, tx, accountID)
			if err != nil {
				return err
			}
			if used-v.SizeGiB+target.TargetSize > limitGiB {
				return fmt.Errorf("%d GiB used, %d asked for %s, limit %d: %w", used, target.TargetSize, id, limitGiB, ErrVolumeLimit)
			}
		}
		m := VolumeModification{State: "modifying", OrigSize: v.SizeGiB, OrigType: v.Type, OrigIops: v.Iops, OrigThroughput: v.Throughput,
			TargetSize: target.TargetSize, TargetType: target.TargetType, TargetIops: target.TargetIops, TargetThroughput: target.TargetThroughput,
			StartMS: now()}
		if _, err := tx.ExecContext(ctx, `UPDATE volumes SET mod_state = ?, mod_message = '', mod_orig_size = ?, mod_orig_type = ?,
			mod_orig_iops = ?, mod_orig_tput = ?, mod_target_size = ?, mod_target_type = ?, mod_target_iops = ?, mod_target_tput = ?,
			mod_start_ms = ?, mod_end_ms = 0 WHERE id = ?`, m.State, m.OrigSize, m.OrigType, m.OrigIops, m.OrigThroughput,
			m.TargetSize, m.TargetType, m.TargetIops, m.TargetThroughput, m.StartMS, id); err != nil {
			return err
		}
		v.Mod = m
		out = v
		return nil
	})
	return out, err
}

// volumeStorageUsed is the storage of an account's volumes, in GiB: a
// volume being grown counts at its target size.
func volumeStorageUsed(ctx context.Context, q queryer, accountID string) (int, error) {
	var used int
	err := q.QueryRowContext(ctx, `SELECT coalesce(sum(CASE WHEN mod_state IN ('modifying', 'optimizing') AND mod_target_size > size_gib
		THEN mod_target_size ELSE size_gib END), 0) FROM volumes WHERE account_id = ?`, accountID).Scan(&used)
	return used, err
}

// EndModifyVolume ends a volume's modification: completed applies the
// targets to the volume, failed keeps it as it was (why in the message).
func (s *Store) EndModifyVolume(ctx context.Context, id string, completed bool, why string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		state := "failed"
		if completed {
			state = "completed"
			if _, err := tx.ExecContext(ctx, `UPDATE volumes SET size_gib = mod_target_size, volume_type = mod_target_type,
				iops = mod_target_iops, throughput = mod_target_tput WHERE id = ? AND mod_state IN ('modifying', 'optimizing')`, id); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE volumes SET mod_state = ?, mod_message = ?, mod_end_ms = ? WHERE id = ? AND mod_state IN ('modifying', 'optimizing')`,
			state, why, now(), id)
		return err
	})
}

// VolumeSpec is a CreateVolume request as the API decoded it.
type VolumeSpec struct {
	Zone        string
	SizeGiB     int // 0: the snapshot's size
	SnapshotID  string
	Type        string // "": the default type
	Iops        int
	Throughput  int
	ClientToken string
	Tags        []Tag
}
