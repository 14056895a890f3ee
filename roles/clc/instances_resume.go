package clc

// Resuming launches a restarted cloud controller finds half done.
//
// An instance launched with a block device mapping stays pending while its
// volumes are made, then boots (bootLaunched). The volumes made for it are
// recorded with it (store.LaunchVolume) until one bootLaunched takes the
// launch; a cloud controller that stopped meanwhile left them recorded, and
// the next one's reconcile loop starts bootLaunched again for each: it
// waits for the volumes still creating, attaches them, exports them to a
// node and runs the instance there, as the launch would have; one whose
// volumes failed is terminated as a launch that failed. Taking the launch
// is one delete in the store, so however many wait (two passes, or the
// goroutine of a cloud controller that is still alive), one boots it.

import (
	"context"
	"errors"
	"fmt"

	"github.com/euca-cloud/euca/store"
)

// resumeLaunches starts booting the recorded launches no goroutine of this
// cloud controller is booting.
func (c *Cloud) resumeLaunches(ctx context.Context) error {
	launches, err := c.store.LaunchVolumes(ctx)
	if err != nil {
		return fmt.Errorf("resume launches: %w", err)
	}
	if len(launches) == 0 {
		return nil
	}
	var resume []string
	c.inst.mu.Lock()
	if c.inst.booting == nil {
		c.inst.booting = map[string]bool{}
	}
	for id := range launches {
		if !c.inst.booting[id] {
			c.inst.booting[id] = true
			resume = append(resume, id)
		}
	}
	c.inst.mu.Unlock()
	var errs []error
	for _, id := range resume {
		in, err := c.store.InstanceByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			// Its records are gone (terminated long ago): nothing
			// boots; bootLaunched lets its volumes go.
			in = store.Instance{ID: id}
			if vols := launches[id]; len(vols) > 0 {
				if v, verr := c.store.VolumeByID(ctx, vols[0].VolumeID); verr == nil {
					in.AccountID = v.AccountID
				}
			}
			err = nil
		}
		if err != nil {
			c.inst.mu.Lock()
			delete(c.inst.booting, id)
			c.inst.mu.Unlock()
			errs = append(errs, fmt.Errorf("resume launch of %s: %w", id, err))
			continue
		}
		c.log.InfoContext(ctx, "resume launch", "instance", id, "state", in.State, "volumes", len(launches[id]))
		c.inst.boots.Add(1)
		go c.bootLaunched(context.WithoutCancel(ctx), in, launches[id])
	}
	return errors.Join(errs...)
}
