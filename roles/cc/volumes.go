package cc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// stoppedFor is how long a stopped instance's id is kept out of what the
// polls report: a poll whose answer predates the stop would otherwise show
// it running again, and the next one find it lost.
const stoppedFor = 2 * time.Minute

// AttachVolume hot-plugs an EBS volume into an instance on whichever node
// runs it; ccapi.ErrNoSuchInstance when no node has it.
func (c *Cluster) AttachVolume(ctx context.Context, instanceID string, v ncapi.VolumeAttachment) error {
	defer c.changedNow() // the node's next answer describes the volume
	err := c.route(ctx, instanceID, false, func(n ncapi.Node) error { return n.AttachVolume(ctx, instanceID, v) })
	return badRequest(err)
}

// DetachVolume unplugs a volume from an instance; an instance no node has
// is not an error (it has no volume to let go).
func (c *Cluster) DetachVolume(ctx context.Context, instanceID, volumeID string, force bool) error {
	defer c.changedNow()
	err := c.route(ctx, instanceID, false, func(n ncapi.Node) error { return n.DetachVolume(ctx, instanceID, volumeID, force) })
	if errors.Is(err, ccapi.ErrNoSuchInstance) {
		return nil
	}
	return badRequest(err)
}

// badRequest carries a node's ErrBadRequest as the cluster API's.
func badRequest(err error) error {
	if errors.Is(err, ncapi.ErrBadRequest) && !errors.Is(err, ccapi.ErrBadRequest) {
		return fmt.Errorf("%w: %w", ccapi.ErrBadRequest, err)
	}
	return err
}

// StopInstances powers EBS-backed instances off on the nodes that hold
// them (the node forgets each, so its id may be placed again, on any node:
// StartInstances is a RunInstances of the same id), and forgets their
// placements. Unknown ids are not errors.
func (c *Cluster) StopInstances(ctx context.Context, ids []string) error {
	defer c.changedNow()
	c.mu.Lock()
	for _, id := range ids {
		c.stopped[id] = c.now()
	}
	c.mu.Unlock()
	return c.each(ctx, ids, func(ctx context.Context, id string) error {
		err := c.route(ctx, id, false, func(n ncapi.Node) error { return n.StopInstance(ctx, id) })
		if err != nil && !errors.Is(err, ccapi.ErrNoSuchInstance) && !errors.Is(err, errNotRegistered) {
			return err
		}
		c.mu.Lock()
		c.stopped[id] = c.now()
		delete(c.placed, id)
		delete(c.lost, id)
		for _, s := range c.state {
			s.instances = slices.DeleteFunc(s.instances, func(in ncapi.InstanceStatus) bool { return in.ID == id })
		}
		c.mu.Unlock()
		c.log.InfoContext(ctx, "cc: instance stopped", "instance", id)
		return c.st.DeleteCCPlacements(ctx, []string{id})
	})
}

// stoppedLocked says whether id was stopped lately (and forgets the ids
// stopped long ago). c.mu is held.
func (c *Cluster) stoppedLocked(id string) bool {
	at, ok := c.stopped[id]
	if ok && c.now().Sub(at) > stoppedFor {
		delete(c.stopped, id)
		return false
	}
	return ok
}
