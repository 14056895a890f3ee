package sc

import (
	"context"
	"fmt"

	"github.com/euca-cloud/euca/store"
)

// recover brings the backend to what the store says, at start, before any
// export is served:
//
//   - what interrupted creations left (.tmp files) is removed: a creation
//     starts again from nothing;
//   - a volume "creating" is made again (from its snapshot), "deleting"
//     removed, in the background;
//   - an "available" volume whose data is gone goes to "error" (said
//     loudly); one smaller than its row (killed inside ResizeVolume) grows;
//   - data no row knows (an orphan) is moved aside, never destroyed: the
//     operator decides.
func (s *SC) recover(ctx context.Context) error {
	swept, err := s.be.RemoveIncomplete()
	if err != nil {
		return fmt.Errorf("sc: recover: %w", err)
	}
	for _, id := range swept {
		s.log.Info("removed an interrupted volume creation", "volume", id)
	}
	rows, err := s.st.SCVolumes(ctx)
	if err != nil {
		return fmt.Errorf("sc: recover: %w", err)
	}
	have, err := s.be.List()
	if err != nil {
		return fmt.Errorf("sc: recover: %w", err)
	}
	sizes := map[string]int64{}
	for _, f := range have {
		sizes[f.ID] = f.Size
	}
	known := map[string]bool{}
	for _, v := range rows {
		known[v.ID] = true
		size, present := sizes[v.ID]
		switch v.State {
		case store.SCVolumeCreating:
			s.log.Info("volume creation taken up again", "volume", v.ID)
			s.start(v.ID, false, func(ctx context.Context) { s.make(ctx, v.ID) })
		case store.SCVolumeDeleting:
			s.log.Info("volume deletion taken up again", "volume", v.ID)
			s.start(v.ID, true, func(ctx context.Context) { s.remove(ctx, v.ID) })
		case store.SCVolumeAvailable:
			switch {
			case !present:
				s.log.Error("volume data missing: the volume is in error", "volume", v.ID)
				if err := s.st.SCSetVolumeState(ctx, v.ID, store.SCVolumeError, "the volume's data is missing from the storage controller", store.SCVolumeAvailable); err != nil {
					return fmt.Errorf("sc: recover %s: %w", v.ID, err)
				}
			case size < v.SizeBytes:
				if err := s.be.Resize(v.ID, v.SizeBytes); err != nil {
					return fmt.Errorf("sc: recover %s: %w", v.ID, err)
				}
				s.log.Info("volume resize finished", "volume", v.ID, "bytes", v.SizeBytes)
			}
		}
	}
	for _, f := range have {
		if known[f.ID] {
			continue
		}
		if err := s.be.MoveAside(f.ID); err != nil {
			return fmt.Errorf("sc: recover: %w", err)
		}
		s.log.Warn("volume data no record knows was moved aside (not deleted)", "volume", f.ID, "bytes", f.Size)
	}
	return nil
}
