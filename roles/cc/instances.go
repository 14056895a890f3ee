package cc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/cc/sched"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// RunInstances places the whole request with the SCHEDPOLICY and starts
// each instance on its node, or starts none: a request that does not fit is
// refused before anything starts, and when a node refuses its part, the
// instances already started are terminated again.
//
// An id this CC already knows (a launch retried after a lost answer) goes
// back to the node that has it, since a node's RunInstance is harmless twice.
func (c *Cluster) RunInstances(ctx context.Context, reqs []ccapi.InstanceRequest) ([]ccapi.Placement, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	dup := map[string]bool{}
	for _, r := range reqs {
		if r.ID == "" || dup[r.ID] {
			return nil, fmt.Errorf("cc: run instances: %w: empty or repeated instance id %q", ccapi.ErrBadRequest, r.ID)
		}
		dup[r.ID] = true
	}
	c.ensurePolled(ctx)
	c.mu.Lock()
	for _, r := range reqs {
		delete(c.stopped, r.ID) // started again (StartInstances)
	}
	c.mu.Unlock()

	assign, records, err := c.placeAwake(ctx, reqs)
	if err != nil {
		return nil, err
	}
	if err := c.st.PutCCPlacements(ctx, records); err != nil {
		c.forget(reqs)
		return nil, err
	}

	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			nr := r.InstanceRequest
			nr.Bridge = c.net.Bridge(r.ID)
			n := c.node(assign[i])
			if n == nil {
				errs[i] = fmt.Errorf("start %s on node %s: %w", r.ID, assign[i], errNotConnected)
				return
			}
			c.readyNode(ctx, assign[i], n)
			if err := n.RunInstance(ctx, nr); err != nil {
				errs[i] = fmt.Errorf("start %s on node %s: %w", r.ID, assign[i], err)
				return
			}
			c.mu.Lock()
			if p := c.placed[r.ID]; p != nil && p.started.IsZero() {
				p.started = c.now()
			}
			c.mu.Unlock()
		})
	}
	wg.Wait()
	defer c.changedNow()

	if err := errors.Join(errs...); err != nil {
		c.log.WarnContext(ctx, "cc: launch failed; terminating its instances", "err", err)
		c.rollback(ctx, reqs, assign)
		for _, e := range errs {
			if errors.Is(e, ncapi.ErrNoCapacity) {
				// The node had less room than its last poll said.
				return nil, fmt.Errorf("%w: %w", ccapi.ErrInsufficientCapacity, err)
			}
		}
		return nil, err
	}
	out := make([]ccapi.Placement, len(reqs))
	for i, r := range reqs {
		out[i] = ccapi.Placement{ID: r.ID, Node: assign[i]}
		c.log.InfoContext(ctx, "cc: instance started", "instance", r.ID, "node", assign[i], "type", r.VMType)
	}
	return out, nil
}

// placeAwake plans reqs and, when the plan uses sleeping nodes (POWERSAVE),
// wakes them and waits for them to answer before anything starts. A node
// counted out meanwhile (no answer within POWER_WAKETHRESH) is down, so
// the request is planned again without it; each round loses a node, so
// this ends.
func (c *Cluster) placeAwake(ctx context.Context, reqs []ccapi.InstanceRequest) ([]string, []store.CCPlacement, error) {
	for {
		assign, records, woken, waiting, err := c.plan(reqs)
		if err != nil || len(waiting) == 0 {
			return assign, records, err
		}
		var wg sync.WaitGroup
		errs := make([]error, len(waiting))
		for i, name := range waiting {
			wg.Go(func() {
				if woken[name] {
					if err := c.wake(ctx, name); err != nil {
						errs[i] = err
						return
					}
				}
				errs[i] = c.awaitAwake(ctx, name)
			})
		}
		wg.Wait()
		err = errors.Join(errs...)
		if err == nil {
			return assign, records, nil
		}
		c.forget(reqs)
		if ctx.Err() != nil {
			return nil, nil, err
		}
		c.log.WarnContext(ctx, "cc: a woken node is not back; placing the launch again", "err", err)
	}
}

// wake sends a node the plan woke its wake-up; a failure counts it out.
func (c *Cluster) wake(ctx context.Context, name string) error {
	c.mu.Lock()
	sw := c.power
	c.mu.Unlock()
	err := errors.New("no power control")
	if sw != nil {
		err = sw.Wake(ctx, name)
	}
	if err == nil {
		c.log.InfoContext(ctx, "cc: waking a sleeping node for a launch", "node", name, "wake_thresh", c.wakeThresh)
		return nil
	}
	c.mu.Lock()
	if s := c.state[name]; s != nil {
		s.waking, s.info.Up, s.info.Error = time.Time{}, false, "wake: "+err.Error()
	}
	c.mu.Unlock()
	c.log.WarnContext(ctx, "cc: sleeping node not woken: down", "node", name, "err", err)
	return fmt.Errorf("wake node %s: %w", name, err)
}

// plan chooses a node for each request and records the placements in
// memory, so the next plan sees their room taken. It returns the node of
// each request and the placements to store, and the nodes the placements
// need awake first: waiting, the plan's nodes that are waking, and woken,
// those of them this plan woke (it marks them waking, so that a concurrent
// plan waits for them rather than waking them again).
func (c *Cluster) plan(reqs []ccapi.InstanceRequest) (assign []string, records []store.CCPlacement, woken map[string]bool, waiting []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	assign = make([]string, len(reqs))
	var todo []sched.Request
	var todoIdx []int
	pinned := map[string]ncapi.Resources{} // what this call puts on each chosen node
	for i, r := range reqs {
		if r.Node != "" {
			// Chosen by the cloud controller (its volumes are exported
			// there): that node or none.
			s := c.state[r.Node]
			if s == nil || !s.info.Up || s.poweringOff || s.asleep {
				return nil, nil, nil, nil, fmt.Errorf("%w: node %s is not up", ccapi.ErrInsufficientCapacity, r.Node)
			}
			free, _ := c.roomLocked(r.Node)
			if _, ok := c.placed[r.ID]; !ok && !free.Sub(pinned[r.Node]).Fits(r.Holds) {
				return nil, nil, nil, nil, fmt.Errorf("%w: node %s has no room for %s", ccapi.ErrInsufficientCapacity, r.Node, r.ID)
			}
			pinned[r.Node] = ncapi.Resources{Cores: pinned[r.Node].Cores + r.Holds.Cores,
				MemoryMiB: pinned[r.Node].MemoryMiB + r.Holds.MemoryMiB, DiskGiB: pinned[r.Node].DiskGiB + r.Holds.DiskGiB}
			assign[i] = r.Node
			continue
		}
		if node, _ := c.locateLocked(r.ID); node != "" {
			assign[i] = node
			continue
		}
		todo = append(todo, sched.Request{ID: r.ID, Needs: r.Holds})
		todoIdx = append(todoIdx, i)
	}
	if len(todo) > 0 {
		snap := sched.Snapshot{Last: c.last}
		for _, name := range c.order {
			free, _ := c.roomLocked(name)
			s := c.state[name]
			snap.Nodes = append(snap.Nodes, sched.Node{Name: name, Up: s.info.Up && !s.poweringOff, Free: free, Asleep: s.asleep})
		}
		plan, err := c.policy(snap, todo)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		for k, a := range plan.Assign {
			assign[todoIdx[k]] = a.Node
		}
		c.last = plan.Last
		woken = map[string]bool{}
		for _, name := range plan.Wake {
			s := c.state[name]
			s.asleep, s.info.Up, s.waking, s.idleSince = false, true, c.now(), time.Time{}
			woken[name] = true
		}
	}
	inPlan := map[string]bool{}
	for _, name := range assign {
		if s := c.state[name]; !inPlan[name] && s != nil && !s.waking.IsZero() {
			waiting = append(waiting, name)
		}
		inPlan[name] = true
	}
	now := c.now()
	for i, r := range reqs {
		if p, ok := c.placed[r.ID]; ok && p.node == assign[i] {
			continue // a retry of a launch still unresolved
		}
		_, polled := c.locateLocked(r.ID)
		// An instance a poll already lists is counted in its node's Free.
		c.placed[r.ID] = &placement{node: assign[i], holds: r.Holds, seen: polled}
		records = append(records, store.CCPlacement{
			InstanceID: r.ID, Zone: c.zone, Node: assign[i],
			Cores: r.Holds.Cores, MemoryMiB: r.Holds.MemoryMiB, DiskGiB: r.Holds.DiskGiB,
			CreatedMS: now.UnixMilli(),
		})
	}
	return assign, records, woken, waiting, nil
}

// forget drops the placements of reqs that have not started.
func (c *Cluster) forget(reqs []ccapi.InstanceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range reqs {
		if p := c.placed[r.ID]; p != nil && p.started.IsZero() {
			delete(c.placed, r.ID)
		}
	}
}

// rollback terminates every instance of a failed launch, even if ctx is
// done (the caller gave up; the instances must not stay). Placements whose
// termination the node confirmed are forgotten; the others are left for the
// polls to resolve, and logged.
func (c *Cluster) rollback(ctx context.Context, reqs []ccapi.InstanceRequest, assign []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var done []string
	for i, r := range reqs {
		wg.Go(func() {
			err := errNotConnected
			if n := c.node(assign[i]); n != nil {
				err = n.TerminateInstance(ctx, r.ID)
			}
			if err != nil && !errors.Is(err, ncapi.ErrNoSuchInstance) {
				c.log.ErrorContext(ctx, "cc: rollback: instance may be left on its node", "instance", r.ID, "node", assign[i], "err", err)
				c.mu.Lock()
				if p := c.placed[r.ID]; p != nil && p.started.IsZero() {
					p.started = c.now()
				}
				c.mu.Unlock()
				return
			}
			mu.Lock()
			done = append(done, r.ID)
			mu.Unlock()
		})
	}
	wg.Wait()
	c.mu.Lock()
	for _, id := range done {
		delete(c.placed, id)
	}
	c.mu.Unlock()
	if err := c.st.DeleteCCPlacements(ctx, done); err != nil {
		c.log.WarnContext(ctx, "cc: rollback: forget placements", "err", err)
	}
}

// errNodeDown: the instance's node did not answer its last poll.
var errNodeDown = errors.New("its node is down")

// errNotRegistered: the instance's node is no longer registered.
var errNotRegistered = errors.New("node not registered in the cluster")

// locateLocked is the node holding id: its placement, else the node whose
// last poll lists it; polled says the latter. c.mu is held.
func (c *Cluster) locateLocked(id string) (node string, polled bool) {
	if p, ok := c.placed[id]; ok {
		return p.node, p.seen
	}
	for _, name := range c.order {
		for _, in := range c.state[name].instances {
			if in.ID == id {
				return name, true
			}
		}
	}
	return "", false
}

// TerminateInstances stops instances on the nodes that hold them. An id no
// node knows is not an error; a node that cannot be reached is.
func (c *Cluster) TerminateInstances(ctx context.Context, ids []string) error {
	defer c.changedNow()
	return c.each(ctx, ids, func(ctx context.Context, id string) error {
		// A node's TerminateInstance takes an unknown id quietly, so an
		// instance nobody placed is terminated on every node.
		err := c.route(ctx, id, true, func(n ncapi.Node) error { return n.TerminateInstance(ctx, id) })
		switch {
		case errors.Is(err, ccapi.ErrNoSuchInstance):
			return nil
		case errors.Is(err, errNotRegistered):
			// Its node left the cluster: nothing here can stop it, and
			// the cluster stops reporting it. Registering the node again
			// shows it, and the cloud controller stops what it no longer
			// wants.
			c.log.WarnContext(ctx, "cc: terminate: the instance's node is not registered; the instance is forgotten", "instance", id, "err", err)
			c.mu.Lock()
			delete(c.placed, id)
			c.mu.Unlock()
			return c.st.DeleteCCPlacements(ctx, []string{id})
		}
		return err
	})
}

// RebootInstances resets instances; an id no node knows is
// ccapi.ErrNoSuchInstance.
func (c *Cluster) RebootInstances(ctx context.Context, ids []string) error {
	defer c.changedNow()
	return c.each(ctx, ids, func(ctx context.Context, id string) error {
		return c.route(ctx, id, false, func(n ncapi.Node) error { return n.RebootInstance(ctx, id) })
	})
}

// ConsoleOutput is the end of an instance's console, from its node.
func (c *Cluster) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := c.route(ctx, id, false, func(n ncapi.Node) error {
		b, err := n.ConsoleOutput(ctx, id)
		out = b
		return err
	})
	return out, err
}

// each runs fn for every distinct id at once and joins the errors.
func (c *Cluster) each(ctx context.Context, ids []string, fn func(context.Context, string) error) error {
	c.ensurePolled(ctx)
	seen := map[string]bool{}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		wg.Go(func() { errs[i] = fn(ctx, id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// route calls fn on the node holding id. When no placement or poll says
// where it is, every node that is up is asked in turn until one has it, or
// (everywhere) all of them. A node's ErrNoSuchInstance becomes
// ccapi.ErrNoSuchInstance.
func (c *Cluster) route(ctx context.Context, id string, everywhere bool, fn func(ncapi.Node) error) error {
	c.ensurePolled(ctx)
	c.mu.Lock()
	node, _ := c.locateLocked(id)
	if node != "" && c.state[node] == nil {
		c.mu.Unlock()
		return fmt.Errorf("instance %s on node %s: %w", id, node, errNotRegistered)
	}
	if why, _ := c.unreachableLocked(node); node != "" && why != "" {
		// Down at its last poll: refused at once rather than after a
		// connection timeout, so that a caller that retries (the cloud
		// controller's reconcile) is not held up by a dead host. The
		// next poll that finds it up lets the call through.
		c.mu.Unlock()
		return fmt.Errorf("instance %s: %w: %s", id, errNodeDown, why)
	}
	var candidates []string
	var clients []ncapi.Node
	if node != "" {
		candidates, clients = []string{node}, []ncapi.Node{c.nodes[node]}
	} else {
		for _, name := range c.order {
			if c.state[name].info.Up {
				candidates, clients = append(candidates, name), append(clients, c.nodes[name])
			}
		}
	}
	c.mu.Unlock()

	var errs []error
	for i, name := range candidates {
		err := errNotConnected
		if clients[i] != nil {
			err = fn(clients[i])
		}
		if err == nil && !everywhere {
			return nil
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, ncapi.ErrNoSuchInstance) {
			errs = append(errs, fmt.Errorf("instance %s on node %s: %w", id, name, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if everywhere && len(candidates) > 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ccapi.ErrNoSuchInstance, id)
}
