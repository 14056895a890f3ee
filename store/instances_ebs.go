package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Root device types, as EC2 names them (DeviceType).
const (
	RootInstanceStore = "instance-store"
	RootEBS           = "ebs"
)

// DefaultRootDeviceName is the root device of an instance-store instance
// (the manifest's ami/root mapping, as Eucalyptus named it).
const DefaultRootDeviceName = "/dev/sda1"

// schemaInstanceRootDevice records each instance's root device: where its
// root is (instance-store, or an EBS volume: only those stop and start)
// and the device name its image gave it. Instances recorded before are
// instance-store on /dev/sda1, as DescribeInstances always said they were.
var schemaInstanceRootDevice = []string{
	`ALTER TABLE instances ADD COLUMN root_device_type TEXT NOT NULL DEFAULT 'instance-store'`,
	`ALTER TABLE instances ADD COLUMN root_device_name TEXT NOT NULL DEFAULT '/dev/sda1'`,
}

// EBS reports whether the instance's root device is an EBS volume.
func (i Instance) EBS() bool { return i.RootDeviceType == RootEBS }

// NotEBSError names an instance-store instance a call that needs an EBS
// root (StopInstances) was made on.
type NotEBSError struct{ ID string }

func (e *NotEBSError) Error() string { return "store: instance " + e.ID + " has no EBS root device" }

// StopProtectedError names an instance whose stop protection
// (disableApiStop) refused a StopInstances.
type StopProtectedError struct{ ID string }

func (e *StopProtectedError) Error() string {
	return "store: instance " + e.ID + " is protected from stopping"
}

// StopInstances moves an account's running EBS-backed instances to
// stopping, all or none: an id the account does not have fails the call
// with a *MissingResourceError, an instance-store one with a *NotEBSError,
// one with stop protection with a *StopProtectedError, one pending, shutting
// down or terminated with an *InstanceStateError. Instances stopping or
// stopped already stay as they are. reason is EC2's transition reason.
func (s *Store) StopInstances(ctx context.Context, accountID string, ids []string, reason string) ([]InstanceTransition, error) {
	var out []InstanceTransition
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, id := range ids {
			var state, root string
			var protected bool
			err := tx.QueryRowContext(ctx, `SELECT state, root_device_type, disable_api_stop FROM instances WHERE id = ? AND account_id = ?`,
				id, accountID).Scan(&state, &root, &protected)
			if errors.Is(err, sql.ErrNoRows) {
				return &MissingResourceError{ID: id}
			}
			if err != nil {
				return err
			}
			if root != RootEBS {
				return &NotEBSError{ID: id}
			}
			t := InstanceTransition{ID: id, Previous: state, Current: state}
			switch state {
			case InstanceStopping, InstanceStopped:
			case InstanceRunning:
				if protected {
					return &StopProtectedError{ID: id}
				}
				if _, err := setState(ctx, tx, id, []string{state}, StateChange{State: InstanceStopping,
					ReasonCode: "Client.UserInitiatedShutdown", ReasonMessage: "Client.UserInitiatedShutdown: User initiated shutdown",
					TransitionReason: reason}); err != nil {
					return err
				}
				t.Current = InstanceStopping
			default:
				return &InstanceStateError{ID: id, State: state}
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// StartInstances moves an account's stopped instances to pending, all or
// none: an unknown id fails with a *MissingResourceError, an instance
// stopping, shutting down or terminated with an *InstanceStateError.
// Pending and running instances stay as they are (EC2 answers their state).
// A started instance has no node until its cluster places it again.
func (s *Store) StartInstances(ctx context.Context, accountID string, ids []string) ([]InstanceTransition, error) {
	var out []InstanceTransition
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, id := range ids {
			var state string
			err := tx.QueryRowContext(ctx, `SELECT state FROM instances WHERE id = ? AND account_id = ?`, id, accountID).Scan(&state)
			if errors.Is(err, sql.ErrNoRows) {
				return &MissingResourceError{ID: id}
			}
			if err != nil {
				return err
			}
			t := InstanceTransition{ID: id, Previous: state, Current: state}
			switch state {
			case InstancePending, InstanceRunning:
			case InstanceStopped:
				if _, err := setState(ctx, tx, id, []string{state}, StateChange{State: InstancePending}); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE instances SET node = '', state_reason_code = '', state_reason_message = '',
					transition_reason = '' WHERE id = ?`, id); err != nil {
					return fmt.Errorf("store: start %s: %w", id, err)
				}
				t.Current = InstancePending
			default:
				return &InstanceStateError{ID: id, State: state}
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

func rootDeviceType(in Instance) string {
	if in.RootDeviceType == "" {
		return RootInstanceStore
	}
	return in.RootDeviceType
}

func rootDeviceName(in Instance) string {
	if in.RootDeviceName == "" {
		return DefaultRootDeviceName
	}
	return in.RootDeviceName
}

// InstanceBlockDevice is an EBS volume attached to an instance, as
// DescribeInstances shows it (blockDeviceMapping).
type InstanceBlockDevice struct {
	Device              string
	VolumeID            string
	State               string // attaching | attached | detaching
	AttachMS            int64
	DeleteOnTermination bool
}

// instanceBlockDevices loads the volumes attached to the instances where
// selects (over instances i), in the order they were attached (those at
// boot first, in their order).
func instanceBlockDevices(ctx context.Context, q queryer, out []Instance, where string, args ...any) error {
	index := make(map[string]int, len(out))
	for k, in := range out {
		index[in.ID] = k
	}
	rows, err := q.QueryContext(ctx, `SELECT a.instance_id, a.device, a.volume_id, a.state, a.attach_ms, a.delete_on_termination
		FROM volume_attachments a JOIN instances i ON i.id = a.instance_id
		WHERE `+where+` ORDER BY a.instance_id, a.at_boot DESC, a.boot_index, a.attach_ms, a.volume_id`, args...)
	if err != nil {
		return fmt.Errorf("store: instance volumes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b InstanceBlockDevice
		if err := rows.Scan(&id, &b.Device, &b.VolumeID, &b.State, &b.AttachMS, &b.DeleteOnTermination); err != nil {
			return err
		}
		if k, ok := index[id]; ok {
			out[k].BlockDevices = append(out[k].BlockDevices, b)
		}
	}
	return rows.Err()
}

// InstanceByID returns an instance of any account, with its groups and
// volumes (not its tags): the cloud controller's loops work from it.
func (s *Store) InstanceByID(ctx context.Context, id string) (Instance, error) {
	out, err := instances(ctx, s.r, `i.id = ?`, id)
	if err != nil {
		return Instance{}, err
	}
	if len(out) == 0 {
		return Instance{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return out[0], nil
}
