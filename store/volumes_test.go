package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
)

func init() {
	tableSeeds["volumes"] = []string{
		`INSERT INTO volumes (id, account_id, zone, size_gib, volume_type, state, created_ms) VALUES
			('vol-0123456789abcdef0', '111122223333', 'us-euca-1a', 1, 'gp2', 'available', 20),
			('vol-0123456789abcdef1', '444455556666', 'us-euca-1a', 2, 'standard', 'creating', 21)`,
		`INSERT INTO volume_attachments (volume_id, instance_id, device, slot, state, attach_ms) VALUES
			('vol-0123456789abcdef0', 'i-0123456789abcdef0', '/dev/sdf', 'f', 'attached', 22)`,
		`INSERT INTO snapshots (id, account_id, zone, volume_id, volume_size_gib, state, start_ms) VALUES
			('snap-0123456789abcdef0', '111122223333', 'us-euca-1a', 'vol-0123456789abcdef0', 1, 'completed', 23)`,
		`INSERT INTO snapshot_permissions (snapshot_id, account_id) VALUES ('snap-0123456789abcdef0', '444455556666')`,
	}
}

func volumeStore(t *testing.T) *Store {
	t.Helper()
	s := openAtVersion(t, SchemaVersion())
	if err := s.tx(context.Background(), func(tx *sql.Tx) error {
		return execAll(`INSERT INTO accounts (id, name, created_ms) VALUES ('444455556666', 'alice', 2), ('777788889999', 'bob', 3)`)(context.Background(), tx)
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVolumeRecords(t *testing.T) {
	ctx := context.Background()
	s := volumeStore(t)
	acct, other := "444455556666", "777788889999"

	v := Volume{ID: "vol-00000000000000001", AccountID: acct, Zone: "z1", SizeGiB: 5, Type: "gp2", State: VolumeCreating, ClientToken: "tok"}
	got, existed, err := s.CreateVolume(ctx, v, []Tag{{"Name", "data"}}, 10)
	if err != nil || existed || got.ID != v.ID {
		t.Fatalf("create: %v %v %+v", err, existed, got)
	}
	// The same client token gives the same volume back.
	again, existed, err := s.CreateVolume(ctx, Volume{ID: "vol-00000000000000002", AccountID: acct, Zone: "z1", SizeGiB: 5, Type: "gp2",
		State: VolumeCreating, ClientToken: "tok"}, nil, 10)
	if err != nil || !existed || again.ID != v.ID || len(again.Tags) != 1 {
		t.Fatalf("token: %v %v %+v", err, existed, again)
	}
	// The storage limit counts every volume of the account.
	if _, _, err := s.CreateVolume(ctx, Volume{ID: "vol-00000000000000003", AccountID: acct, Zone: "z1", SizeGiB: 6, Type: "gp2", State: VolumeCreating}, nil, 10); !errors.Is(err, ErrVolumeLimit) {
		t.Fatalf("limit: %v", err)
	}
	if _, err := s.Volume(ctx, other, v.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other account sees it: %v", err)
	}
	if _, err := s.Resource(ctx, acct, v.ID); err != nil {
		t.Fatalf("taggable: %v", err)
	}

	// Attach needs an available volume; one slot per instance.
	att := VolumeAttachment{VolumeID: v.ID, InstanceID: "i-1", Device: "/dev/sdf", Slot: "f", State: AttachmentAttaching}
	var se *VolumeStateError
	if _, err := s.AttachVolume(ctx, acct, att); !errors.As(err, &se) {
		t.Fatalf("attach creating: %v", err)
	}
	if ok, err := s.SetVolumeState(ctx, v.ID, []string{VolumeCreating}, VolumeAvailable, ""); !ok || err != nil {
		t.Fatalf("available: %v %v", ok, err)
	}
	if _, err := s.AttachVolume(ctx, acct, att); err != nil {
		t.Fatal(err)
	}
	v2 := Volume{ID: "vol-00000000000000004", AccountID: acct, Zone: "z1", SizeGiB: 1, Type: "gp2", State: VolumeAvailable}
	if _, _, err := s.CreateVolume(ctx, v2, nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AttachVolume(ctx, acct, VolumeAttachment{VolumeID: v2.ID, InstanceID: "i-1", Device: "/dev/xvdf", Slot: "f", State: AttachmentAttaching}); !errors.Is(err, ErrDeviceInUse) {
		t.Fatalf("slot taken: %v", err)
	}
	var inUse *VolumeInUseError
	if _, err := s.AttachVolume(ctx, acct, VolumeAttachment{VolumeID: v.ID, InstanceID: "i-2", Device: "/dev/sdg", Slot: "g", State: AttachmentAttaching}); !errors.As(err, &inUse) {
		t.Fatalf("attached twice: %v", err)
	}
	if err := s.StartDeleteVolume(ctx, acct, v.ID); !errors.As(err, &inUse) || inUse.Instance != "i-1" {
		t.Fatalf("delete attached: %v", err)
	}
	got, _ = s.Volume(ctx, acct, v.ID)
	if got.EC2State() != VolumeInUse || got.Attachment.State != AttachmentAttaching {
		t.Fatalf("attached: %+v", got)
	}
	drive, err := s.VolumesToDrive(ctx)
	if err != nil || len(drive) != 1 || drive[0].ID != v.ID {
		t.Fatalf("to drive: %v %+v", err, drive)
	}
	if ok, _ := s.SetAttachment(ctx, v.ID, []string{AttachmentAttaching}, AttachmentAttached); !ok {
		t.Fatal("attached")
	}
	if err := s.SetAttachmentBoot(ctx, "i-1", []string{v.ID}); err != nil {
		t.Fatal(err)
	}
	was, err := s.StartDetach(ctx, v.ID, true)
	if err != nil || was.State != AttachmentAttached || !was.AtBoot {
		t.Fatalf("detach: %v %+v", err, was)
	}
	got, _ = s.Volume(ctx, acct, v.ID)
	if got.Attachment.State != AttachmentDetaching || !got.Attachment.Force {
		t.Fatalf("detaching: %+v", got.Attachment)
	}
	if err := s.EndAttachment(ctx, v.ID, false); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Volume(ctx, acct, v.ID)
	if got.EC2State() != VolumeAvailable {
		t.Fatalf("after detach: %+v", got)
	}

	// Modification: grow.
	if _, err := s.StartModifyVolume(ctx, acct, v.ID, VolumeModification{TargetSize: 8, TargetType: "gp3"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartModifyVolume(ctx, acct, v.ID, VolumeModification{TargetSize: 9, TargetType: "gp3"}, 0); !errors.As(err, &se) {
		t.Fatalf("second modification: %v", err)
	}
	if err := s.EndModifyVolume(ctx, v.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Volume(ctx, acct, v.ID)
	if got.SizeGiB != 8 || got.Type != "gp3" || got.Mod.State != "completed" || got.Mod.OrigSize != 5 {
		t.Fatalf("modified: %+v", got)
	}

	if err := s.StartDeleteVolume(ctx, acct, v.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVolumeRecord(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Volume(ctx, acct, v.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	if tags, _ := s.Tags(ctx, acct); len(tags) != 0 {
		t.Fatalf("tags left: %v", tags)
	}
}

func TestSnapshotRecords(t *testing.T) {
	ctx := context.Background()
	s := volumeStore(t)
	acct, other := "444455556666", "777788889999"
	snap := Snapshot{ID: "snap-00000000000000001", AccountID: acct, Zone: "z1", VolumeID: "vol-00000000000000001", VolumeSizeGiB: 1, State: SnapshotPending}
	if err := s.CreateSnapshot(ctx, snap, []Tag{{"k", "v"}}, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSnapshot(ctx, Snapshot{ID: "snap-00000000000000002", AccountID: acct, Zone: "z1", VolumeSizeGiB: 1, State: SnapshotPending}, nil, 1); !errors.Is(err, ErrSnapshotLimit) {
		t.Fatalf("limit: %v", err)
	}
	var se *SnapshotStateError
	if err := s.StartDeleteSnapshot(ctx, acct, snap.ID); !errors.As(err, &se) {
		t.Fatalf("delete pending: %v", err)
	}
	if ok, err := s.SetSnapshotProgress(ctx, snap.ID, SnapshotCompleted, 100, 5, ""); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if vis, _ := s.SnapshotsVisibleTo(ctx, other); len(vis) != 0 {
		t.Fatalf("bob sees %+v", vis)
	}
	if err := s.UpdateSnapshotPermissions(ctx, other, snap.ID, SnapshotPermissionUpdate{Add: []string{other}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob modifies: %v", err)
	}
	if err := s.UpdateSnapshotPermissions(ctx, acct, snap.ID, SnapshotPermissionUpdate{Add: []string{other}}); err != nil {
		t.Fatal(err)
	}
	vis, _ := s.SnapshotsVisibleTo(ctx, other)
	if len(vis) != 1 || len(vis[0].Permissions) != 1 || len(vis[0].Tags) != 0 { // alice's tags are hers
		t.Fatalf("bob sees %+v", vis)
	}
	if err := s.UpdateSnapshotPermissions(ctx, acct, snap.ID, SnapshotPermissionUpdate{Reset: true}); err != nil {
		t.Fatal(err)
	}
	pub := true
	if err := s.UpdateSnapshotPermissions(ctx, acct, snap.ID, SnapshotPermissionUpdate{Public: &pub}); err != nil {
		t.Fatal(err)
	}
	if vis, _ := s.SnapshotsVisibleTo(ctx, other); len(vis) != 1 || !vis[0].Public || len(vis[0].Permissions) != 0 {
		t.Fatalf("public: %+v", vis)
	}
	if err := s.StartDeleteSnapshot(ctx, acct, snap.ID); err != nil {
		t.Fatal(err)
	}
	if vis, _ := s.SnapshotsVisibleTo(ctx, acct); len(vis) != 0 {
		t.Fatalf("deleting shown: %+v", vis)
	}
	if d, _ := s.SnapshotsToDrive(ctx); len(d) != 1 {
		t.Fatalf("to drive %+v", d)
	}
	if err := s.DeleteSnapshotRecord(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SnapshotByID(ctx, snap.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}
