package clc

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/store"
)

// TestModifyVolumeStorageLimit: growing a volume counts against the
// account's volume storage limit as making one does, so small volumes
// grown afterwards cannot hold more than MaxVolumeStorageGiB.
func TestModifyVolumeStorageLimit(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	for i := 0; i < 3; i++ { // 48 TiB
		if _, err := f.c.CreateVolume(ctx, f.bob, store.VolumeSpec{Zone: f.zone, SizeGiB: 16384}); err != nil {
			t.Fatal(err)
		}
	}
	small, err := f.c.CreateVolume(ctx, f.bob, store.VolumeSpec{Zone: f.zone, SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.c.waitVolume(ctx, small)
	_, err = f.c.ModifyVolume(ctx, f.bob, small.ID, store.VolumeModification{TargetSize: 16384})
	wantAWS(t, "grow past the limit", err, "VolumeLimitExceeded", "")
	if got, err := f.c.ModifyVolume(ctx, f.bob, small.ID, store.VolumeModification{TargetSize: 2}); err != nil || got.SizeGiB != 2 {
		t.Fatalf("grow within the limit: %v %+v", err, got)
	}
}
