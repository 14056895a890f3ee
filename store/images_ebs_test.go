package store

import (
	"context"
	"database/sql"
	"slices"
	"testing"
)

// TestEBSImageRoundTrip: an EBS-backed image keeps its root device type
// and its mappings' snapshots, sizes and flags, and SnapshotImages finds
// it by any of its snapshots until it is deregistered.
func TestEBSImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openAtVersion(t, SchemaVersion())
	if err := s.tx(ctx, func(tx *sql.Tx) error {
		return execAll(`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1)`)(ctx, tx)
	}); err != nil {
		t.Fatal(err)
	}
	bdm := []ImageBlockDevice{
		{Device: "/dev/xvda", EBS: true, SnapshotID: "snap-00000000000000001", VolumeSize: 2, VolumeType: "gp2", DeleteOnTermination: true},
		{Device: "/dev/sdf", EBS: true, SnapshotID: "snap-00000000000000002"},
		{Device: "/dev/sdb", Virtual: "ephemeral0"},
	}
	im := Image{ID: "emi-00000000000000001", AccountID: "111122223333", Kind: ImageMachine, Name: "ebs", Architecture: "x86_64",
		State: ImagePending, RootDeviceType: RootEBS, RootDeviceName: "/dev/xvda", BlockDevices: bdm}
	if err := s.CreateImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	other := Image{ID: "emi-00000000000000002", AccountID: "111122223333", Kind: ImageMachine, Name: "store", Location: "b/m.manifest.xml",
		Architecture: "x86_64", State: ImageAvailable}
	if err := s.CreateImage(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.ImageByID(ctx, im.ID)
	if err != nil || !got.EBS() || got.RootDeviceName != "/dev/xvda" || !slices.Equal(got.BlockDevices, bdm) {
		t.Fatalf("read %+v (%v)", got, err)
	}
	if got, err := s.ImageByID(ctx, other.ID); err != nil || got.EBS() || got.RootDeviceType != RootInstanceStore {
		t.Fatalf("instance-store image read as %+v (%v)", got, err)
	}
	for snap, want := range map[string][]string{"snap-00000000000000001": {im.ID}, "snap-00000000000000002": {im.ID}, "snap-00000000000000003": nil} {
		if got, err := s.SnapshotImages(ctx, snap); err != nil || !slices.Equal(got, want) {
			t.Errorf("images of %s: %v (%v), want %v", snap, got, err, want)
		}
	}
	if err := s.DeleteImage(ctx, im.AccountID, im.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SnapshotImages(ctx, "snap-00000000000000001"); err != nil || len(got) != 0 {
		t.Errorf("deregistered image still holds its snapshot: %v (%v)", got, err)
	}
}
