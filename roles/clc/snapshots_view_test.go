package clc

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/store"
)

// TestSharedSnapshotOwnersView: an account a snapshot is shared with
// (or that sees it public) sees neither its owner's tags (tags are per
// account, as EC2 has them and as images do here) nor whom else the owner
// shared it with (createVolumePermission is the owner's attribute): only
// itself, when listed.
func TestSharedSnapshotOwnersView(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	v := f.newVolume(t, 1)
	s, err := f.c.CreateSnapshot(ctx, f.alice, v.ID, "", []store.Tag{{Key: "project", Value: "secret-merger"}})
	if err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	const carol = "123456789012"
	if err := f.c.ModifySnapshotPermissions(ctx, f.alice, s.ID, store.SnapshotPermissionUpdate{Add: []string{f.bob, carol}}); err != nil {
		t.Fatal(err)
	}
	got, err := f.c.DescribeSnapshots(ctx, f.bob, []string{s.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Tags) != 0 || len(got[0].Permissions) != 1 || got[0].Permissions[0] != f.bob {
		t.Fatalf("bob sees alice's view: tags %v, permissions %v", got[0].Tags, got[0].Permissions)
	}
	pub := true
	if err := f.c.ModifySnapshotPermissions(ctx, f.alice, s.ID, store.SnapshotPermissionUpdate{Reset: true, Public: &pub}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.ModifySnapshotPermissions(ctx, f.alice, s.ID, store.SnapshotPermissionUpdate{Add: []string{carol}}); err != nil {
		t.Fatal(err)
	}
	got, _ = f.c.DescribeSnapshots(ctx, f.bob, nil)
	for _, g := range got {
		if g.ID == s.ID && (len(g.Tags) != 0 || len(g.Permissions) != 0) {
			t.Fatalf("public: bob sees alice's view: tags %v, permissions %v", g.Tags, g.Permissions)
		}
	}
	own, _ := f.c.DescribeSnapshots(ctx, f.alice, []string{s.ID})
	if len(own[0].Tags) != 1 || len(own[0].Permissions) != 1 {
		t.Fatalf("alice's own view: tags %v, permissions %v", own[0].Tags, own[0].Permissions)
	}
}

// TestSharedSnapshotImageDoesNotPinIt: an image another account made of a
// snapshot shared with it does not keep the snapshot's owner from
// deleting it (InvalidSnapshot.InUse, naming that account's image); the
// owner's own image does.
func TestSharedSnapshotImageDoesNotPinIt(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	v := f.newVolume(t, 1)
	s, err := f.c.CreateSnapshot(ctx, f.alice, v.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if err := f.c.ModifySnapshotPermissions(ctx, f.alice, s.ID, store.SnapshotPermissionUpdate{Add: []string{f.bob}}); err != nil {
		t.Fatal(err)
	}
	image := func(id, owner string) store.Image {
		return store.Image{ID: id, AccountID: owner, Kind: store.ImageMachine, Name: "ebs-" + id, Architecture: "x86_64",
			State: store.ImageAvailable, RootDeviceType: store.RootEBS, RootDeviceName: "/dev/sda1",
			BlockDevices: []store.ImageBlockDevice{{Device: "/dev/sda1", EBS: true, SnapshotID: s.ID, VolumeSize: 1}}}
	}
	if err := f.c.store.CreateImage(ctx, image("emi-000000000000000b0", f.bob)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.store.CreateImage(ctx, image("emi-000000000000000a0", f.alice)); err != nil {
		t.Fatal(err)
	}
	err = f.c.DeleteSnapshot(ctx, f.alice, s.ID)
	wantAWS(t, "alice's own image", err, "InvalidSnapshot.InUse", "emi-000000000000000a0")
	if err := f.c.store.DeleteImage(ctx, f.alice, "emi-000000000000000a0"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.DeleteSnapshot(ctx, f.alice, s.ID); err != nil {
		t.Fatalf("bob's image pins alice's snapshot: %v", err)
	}
}
