package sc_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/scapi"
)

// gatedSnapshots is slowSnapshots whose Restore waits for release before
// it starts (the engine has not yet counted the restore: the window
// between CreateVolume's answer and the background job, or a restarted
// SC's recovery) and which counts Deletes that reach the engine.
type gatedSnapshots struct {
	slowSnapshots
	release chan struct{}
	deletes *atomic.Int32
}

func (g gatedSnapshots) Restore(ctx context.Context, id string, dst sc.SnapshotDest) error {
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.slowSnapshots.Restore(ctx, id, dst)
}

func (g gatedSnapshots) Delete(context.Context, string) error {
	g.deletes.Add(1)
	return nil
}

// TestDeleteSnapshotWhileVolumeCreating: a snapshot a volume is still
// being made of is in use (ErrInUse), even before the snapshot engine
// began reading it; once the volume is made it may go.
func TestDeleteSnapshotWhileVolumeCreating(t *testing.T) {
	ctx := context.Background()
	g := gatedSnapshots{release: make(chan struct{}), deletes: new(atomic.Int32)}
	s, st, _ := openWith(t, t.TempDir(), g)
	defer st.Close()
	defer s.Close()
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-fromsnap", SizeBytes: 4 << 20, SnapshotID: "snap-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshot(ctx, "snap-1"); !errors.Is(err, scapi.ErrInUse) {
		t.Fatalf("DeleteSnapshot while a volume is made of it: %v, want ErrInUse", err)
	}
	if n := g.deletes.Load(); n != 0 {
		t.Fatalf("the engine was asked to delete the snapshot %d times", n)
	}
	close(g.release)
	waitState(t, s, "vol-fromsnap", scapi.VolumeAvailable)
	if err := s.DeleteSnapshot(ctx, "snap-1"); err != nil {
		t.Fatalf("DeleteSnapshot once the volume is made: %v", err)
	}
}
