package nc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Reasons an instance ends without being asked to.
const (
	reasonLost     = "the hypervisor lost the guest"
	reasonShutdown = "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
	reasonCrashed  = "the guest crashed"
	reasonBadRow   = "unreadable instance record"
)

// recover is the reconcile at start: the store's instances against the
// domains Driver.Recover returns (see the package comment).
func (n *Node) recover(ctx context.Context) error {
	doms, err := n.drv.Recover(ctx)
	if err != nil {
		return fmt.Errorf("nc: recover domains: %w", err)
	}
	recs, err := n.st.NCInstances(ctx)
	if err != nil {
		return fmt.Errorf("nc: read instances: %w", err)
	}
	byID := map[string]hypervisor.Domain{}
	for _, d := range doms {
		byID[d.ID] = d
	}
	var resume, finish []*instance
	n.mu.Lock()
	for _, rec := range recs {
		req, err := request(rec)
		in := &instance{id: rec.ID, dir: rec.Dir, req: req, rec: rec}
		if err != nil {
			n.log.ErrorContext(ctx, "unreadable instance record", "instance", rec.ID, "error", err)
			if holds(rec.State) {
				if err := n.setStateLocked(ctx, in, ncapi.StateFailed, reasonBadRow); err != nil {
					n.mu.Unlock()
					return err
				}
			}
		}
		n.insts[rec.ID] = in
		d, has := byID[rec.ID]
		switch in.rec.State {
		case ncapi.StatePending, ncapi.StateRunning:
			if has && d.State.Active() {
				if err := n.adoptLocked(ctx, in, d); err != nil {
					n.mu.Unlock()
					return err
				}
			} else if in.rec.State == ncapi.StatePending {
				resume = append(resume, in)
			} else {
				finish = append(finish, in) // ran, and runs no more: decided below
			}
		case ncapi.StateShuttingDown:
			finish = append(finish, in)
		default: // terminated, failed: their domains go below, their files with the directories
		}
	}
	if err := n.recoverVolumesLocked(ctx); err != nil {
		n.mu.Unlock()
		return err
	}
	n.mu.Unlock()

	for _, in := range finish {
		d, has := byID[in.id]
		if err := n.ended(ctx, in, d, has); err != nil {
			n.log.ErrorContext(ctx, "finishing an instance at start", "instance", in.id, "error", err)
		}
	}
	n.destroyUnwanted(ctx, doms)
	n.cleanDirs(ctx)
	n.mu.Lock()
	for _, in := range resume {
		n.log.InfoContext(ctx, "resuming an interrupted launch", "instance", in.id)
		n.startLaunchLocked(ctx, in)
	}
	n.mu.Unlock()
	n.reconcileVolumes(ctx) // the adopted guests' volumes are served again
	n.log.InfoContext(ctx, "node reconciled", "instances", len(recs), "domains", len(doms),
		"resumed", len(resume), "driver", n.drv.Name())
	return nil
}

// adoptLocked takes over a running domain as it is: its images are pinned
// and the instance is running; the caller holds n.mu.
func (n *Node) adoptLocked(ctx context.Context, in *instance, d hypervisor.Domain) error {
	refs := []*ncapi.ImageRef{&in.req.Image, in.req.Kernel, in.req.Ramdisk}
	for _, r := range refs {
		if r == nil || r.ID == "" || !n.cache.Enabled() { // "": an EBS-backed instance boots from a volume
			continue
		}
		if h, ok := n.cache.Pin(*r); ok {
			in.pins = append(in.pins, h)
		} else {
			n.log.WarnContext(ctx, "an adopted instance's image is not in the cache", "instance", in.id, "image", r.ID)
		}
	}
	if in.rec.State != ncapi.StateRunning {
		rec := in.rec
		rec.State = ncapi.StateRunning
		if !d.StartedAt.IsZero() {
			rec.LaunchedMS = d.StartedAt.UnixMilli()
		}
		if rec.Spec == "" {
			if js, err := jsonSpec(d.Spec); err == nil {
				rec.Spec = js
			}
		}
		if err := n.writeLocked(ctx, in, rec); err != nil {
			return err
		}
	}
	n.log.InfoContext(ctx, "instance adopted", "instance", in.id, "state", d.State, "started", d.StartedAt)
	return nil
}

// ended settles an instance the store has as running or shutting-down
// whose guest no longer runs (d, if has, is its domain): a termination
// under way is finished; a guest that powered itself off is terminated; a
// guest gone or crashed is failed. Files go either way.
func (n *Node) ended(ctx context.Context, in *instance, d hypervisor.Domain, has bool) error {
	in.op.Lock()
	defer in.op.Unlock()
	return n.endedOp(ctx, in, d, has)
}

func (n *Node) endedOp(ctx context.Context, in *instance, d hypervisor.Domain, has bool) error {
	id := in.id
	switch st := n.state(in); {
	case st == ncapi.StateShuttingDown:
		return n.finishTerminateOp(ctx, in, "")
	case st != ncapi.StateRunning:
		return nil
	}
	if has && d.State == hypervisor.Shutoff {
		n.log.InfoContext(ctx, "the guest powered itself off: terminating", "instance", id)
		if err := n.setState(ctx, in, ncapi.StateShuttingDown, reasonShutdown); err != nil {
			return err
		}
		return n.finishTerminateOp(ctx, in, "")
	}
	reason := reasonLost
	if has && d.State == hypervisor.Crashed {
		reason = reasonCrashed
	}
	n.log.WarnContext(ctx, "instance failed", "instance", id, "reason", reason)
	if err := n.teardown(ctx, in); err != nil {
		return err
	}
	return n.setState(ctx, in, ncapi.StateFailed, reason)
}

// destroyUnwanted destroys the domains no instance wants: unknown to the
// store, or of an instance terminated or failed.
func (n *Node) destroyUnwanted(ctx context.Context, doms []hypervisor.Domain) {
	for _, d := range doms {
		n.mu.Lock()
		in := n.insts[d.ID]
		want := in != nil && holds(in.rec.State)
		n.mu.Unlock()
		if want {
			continue
		}
		n.log.WarnContext(ctx, "destroying a domain no instance wants", "domain", d.Name, "state", d.State)
		if err := n.drv.Destroy(ctx, d.ID); err != nil {
			n.log.ErrorContext(ctx, "destroy an unwanted domain", "domain", d.Name, "error", err)
		}
	}
}

// cleanDirs removes the instance directories under INSTANCE_PATH that no
// live instance owns (respecting MANUAL_INSTANCES_CLEANUP).
func (n *Node) cleanDirs(ctx context.Context) {
	ents, err := os.ReadDir(n.dir)
	if err != nil {
		n.log.WarnContext(ctx, "reading INSTANCE_PATH", "error", err)
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !instanceIDRE.MatchString(e.Name()) {
			continue // the cache, and anything not ours
		}
		n.mu.Lock()
		in := n.insts[e.Name()]
		live := in != nil && holds(in.rec.State)
		n.mu.Unlock()
		if live {
			continue
		}
		if err := n.removeDir(ctx, e.Name(), filepath.Join(n.dir, e.Name())); err != nil {
			n.log.WarnContext(ctx, "cleaning a leftover instance directory", "error", err)
		}
	}
}

// Reconcile compares the hypervisor with the store once: instances whose
// guest stopped running end (ended), a termination that failed is tried
// again, domains no instance wants are destroyed, instances finished for
// longer than Retention are forgotten, and the host's capacity is re-read.
// Run calls it periodically; it is harmless at any time.
func (n *Node) Reconcile(ctx context.Context) error {
	doms, err := n.drv.List(ctx)
	if err != nil {
		return fmt.Errorf("list domains: %w", err)
	}
	byID := map[string]hypervisor.Domain{}
	for _, d := range doms {
		byID[d.ID] = d
	}
	n.mu.Lock()
	insts := n.sortedLocked()
	n.mu.Unlock()
	cutoff := n.now().Add(-n.retention).UnixMilli()
	for _, in := range insts {
		n.mu.Lock()
		st, updated := in.rec.State, in.rec.UpdatedMS
		n.mu.Unlock()
		switch st {
		case ncapi.StateRunning, ncapi.StateShuttingDown:
			if d, has := byID[in.id]; st == ncapi.StateRunning && has && d.State.Active() {
				continue
			}
			if !in.op.TryLock() {
				continue // a step is under way (a reboot, a termination): next time
			}
			// The listing may predate a step that just finished: ask again.
			var d hypervisor.Domain
			s, err := n.drv.State(ctx, in.id)
			has := err == nil
			if err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
				in.op.Unlock()
				n.log.WarnContext(ctx, "domain state", "instance", in.id, "error", err)
				continue
			}
			d.State = s
			if !(n.state(in) == ncapi.StateRunning && has && s.Active()) {
				if err := n.endedOp(ctx, in, d, has); err != nil {
					n.log.WarnContext(ctx, "reconcile instance", "instance", in.id, "error", err)
				}
			}
			in.op.Unlock()
		case ncapi.StateTerminated, ncapi.StateFailed:
			if updated < cutoff {
				n.forget(ctx, in)
			}
		}
	}
	n.destroyUnwanted(ctx, doms)
	return n.refreshCapacity(ctx)
}

// forget drops a finished instance from the store and from memory.
func (n *Node) forget(ctx context.Context, in *instance) {
	id := in.id
	if err := n.st.NCDeleteInstance(ctx, id); err != nil {
		n.log.WarnContext(ctx, "forgetting an instance", "instance", id, "error", err)
		return
	}
	n.mu.Lock()
	if n.insts[id] == in {
		delete(n.insts, id)
	}
	n.mu.Unlock()
	n.log.DebugContext(ctx, "instance forgotten", "instance", id)
}

func jsonSpec(s hypervisor.InstanceSpec) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}
