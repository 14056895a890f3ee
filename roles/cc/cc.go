// Package cc is the cluster controller: one per availability zone
// (CLUSTER_NAME), between the cloud controller and the node controllers of
// its registered nodes (NODES, `euca node register`: registry.go). It
// implements ccapi.Cluster.
//
// What it knows of its nodes comes from polls, never from its own
// bookkeeping alone (DESIGN's reconcile rule): Run asks every node for its
// Describe every few seconds (every second while something is changing),
// and keeps each node's last answer, whether it answered (up/down, the
// error, when it was last seen), its resources and its instances.
//
// A node that does not answer is down: its capacity leaves the totals at
// once, and its last known instances are reported with Unreachable set
// (the cloud controller shows them impaired), not as gone. When it answers
// again, what it still lists is adopted as it is; an instance it held (by
// its last answer, or by a placement made before the poll began) that it
// no longer lists is reported terminated with Lost set, for lostKeep, so
// the cloud controller ends it at once rather than after its own timeout.
//
// A launch walks this path:
//
//  1. RunInstances takes a snapshot of the nodes that are up, with the room
//     each has left: the last poll's free resources less the instances
//     started since that poll began (placements not yet seen in a poll).
//  2. The SCHEDPOLICY (package sched) turns the snapshot into a plan, all or
//     nothing; a request that does not fit whole is refused with
//     ccapi.ErrInsufficientCapacity before anything starts.
//  3. The placements are recorded (in memory and in the store, so a
//     restarted CC still routes to them and counts their room), and each
//     node is asked to RunInstance, its NIC on the network's bridge.
//  4. If any node refuses, every instance of the request is terminated
//     again, and the error returned: nothing is left half-started.
//  5. Later polls see the instances; a placement lasts until its node's
//     poll, begun after the placement was made, no longer lists it.
//
// Under SCHEDPOLICY="POWERSAVE", with a power switch (SetPower), nodes sleep
// as in Eucalyptus 1.5: a node whose polls have shown it idle (no instance,
// none being placed) for POWER_IDLETHRESH is powered down, and is no longer
// polled; its room still counts in free/max, since it can be woken. When a
// plan puts an instance on a sleeping node (no awake node has room), the
// node is woken before anything starts, and the launch waits for it to
// answer a poll; one that has not answered within POWER_WAKETHRESH is down,
// counted out of the totals, and the launch is planned again without it.
//
// Terminate, reboot and console requests go to the node that holds the
// instance (from the placements, then the last polls); an instance nobody
// knows is asked of every node.
//
// The network (VNET_MODE) is realised by a Network (package netmode through
// NetworkOf): SetNetwork records the whole desired state the cloud
// controller hands over and applies it; Run applies the recorded state again
// at start and retries while an apply is failing.
package cc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/cc/power"
	"github.com/euca-cloud/euca/roles/cc/sched"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// Poll timing. A node that takes longer than pollTimeout to answer is down
// for this round.
const (
	defaultInterval = 5 * time.Second
	fastInterval    = 250 * time.Millisecond // nodes in the same process answer in microseconds
	fastFor         = 30 * time.Second       // after a change, poll fast this long
	pollTimeout     = 10 * time.Second
	cleanupTimeout  = 30 * time.Second // rolling back a failed launch
)

// Cluster is one cluster controller.
type Cluster struct {
	zone   string
	log    *slog.Logger
	st     *store.Store
	net    Network
	policy sched.Policy
	dial   Dialer

	// confNodes are the hosts of NODES, in order: the order of c.order
	// before the nodes registered at run time.
	confNodes []string

	// POWERSAVE: nodes are powered down through power after idleThresh
	// idle, and counted out when a wake is not answered within wakeThresh.
	powersave              bool
	power                  power.Switch // nil: nothing is powered down
	idleThresh, wakeThresh time.Duration

	interval, fast, fastFor time.Duration // tests shorten them
	now                     func() time.Time
	kick                    chan struct{} // asks Run to poll now

	pollMu sync.Mutex // one poll round at a time

	mu      sync.Mutex
	order   []string                      // registered nodes: NODES order, then by registration
	nodes   map[string]ncapi.Node         // by name; nil: not connected (retried each round)
	ports   map[string]int                // the port each of nodes was dialled on
	synced  bool                          // the registry was read once
	polled  bool                          // a poll round has finished
	state   map[string]*nodeState         // by name, for each of order
	written map[string]store.CCNodeStatus // the status last stored, by name
	lost    map[string]lostInstance       // instances a returned node no longer has
	placed  map[string]*placement         // by instance id
	stopped map[string]time.Time          // instances stopped lately (volumes.go), by id
	last    string                        // ROUNDROBIN's cursor
	changed time.Time                     // last launch, terminate or reboot

	ov overlay // the network across hosts (overlay.go)

	netMu   sync.Mutex // one apply at a time, in order
	desired ccapi.Network
	applied bool // desired is what the Network last accepted
}

// nodeState is a node as its polls left it.
type nodeState struct {
	info      ccapi.NodeInfo // Free here is as the node reported it
	instances []ncapi.InstanceStatus
	polled    bool      // a poll round has finished for it
	dials     int       // how many times it was dialled: a poll of an older dial is dropped
	downSince time.Time // the first poll it did not answer, since it last did

	// POWERSAVE (times from c.now).
	idleSince   time.Time // its polls have shown it idle since; zero: busy
	poweringOff bool      // PowerOff under way: it takes no instance
	asleep      bool      // powered down: not polled, woken for a launch
	waking      time.Time // woken then, not yet answering; zero: not waking
}

// lostInstance is an instance its node was found not to have any more.
type lostInstance struct {
	node   string
	holds  ncapi.Resources
	at     time.Time
	reason string
}

// placement is an instance this CC started.
type placement struct {
	node  string
	holds ncapi.Resources
	// started is when the node accepted it; zero while RunInstance is under
	// way, so that a poll racing the start cannot take it for gone.
	started time.Time
	seen    bool // a poll of its node has listed it: the node's Free counts it
}

// New builds the cluster controller of cfg.ClusterName over the nodes of
// its registry, which it first seeds from NODES (on NC_PORT unless a node
// names its port); dial connects to each. net realises the zone's network;
// nil means no network of the CC's own (instances' NICs go on VNET_BRIDGE,
// as SYSTEM mode does). New starts nothing: Run polls.
func New(ctx context.Context, cfg *conf.Config, st *store.Store, dial Dialer, net Network, log *slog.Logger) (*Cluster, error) {
	policy, err := sched.Lookup(cfg.SchedPolicy)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if net == nil {
		net = noNetwork{bridge: cfg.VNetBridge}
	}
	c := &Cluster{
		zone: cfg.ClusterName, log: log, st: st, net: net, policy: policy,
		dial: dial, interval: defaultInterval, fast: fastInterval, fastFor: fastFor,
		now: time.Now, kick: make(chan struct{}, 1),
		nodes: map[string]ncapi.Node{}, ports: map[string]int{}, state: map[string]*nodeState{},
		written: map[string]store.CCNodeStatus{}, lost: map[string]lostInstance{}, placed: map[string]*placement{}, stopped: map[string]time.Time{},
		desired: ccapi.Network{Subnet: cfg.VNetSubnet},
		ov:      overlay{priv: cfg.VNetPrivInterface, local: cfg.VNetLocalIP},
	}
	if err := c.seedNodes(ctx, cfg.Nodes, cfg.NCPort); err != nil {
		return nil, err
	}
	if _, err := c.syncNodes(ctx); err != nil {
		return nil, err
	}
	if len(c.order) == 0 {
		log.Warn("cc: no nodes: every launch will be refused for capacity (set NODES, euca node register, or run the nc role here)")
	}
	c.powersave = strings.EqualFold(strings.TrimSpace(cfg.SchedPolicy), "POWERSAVE")
	c.idleThresh, c.wakeThresh = cfg.PowerIdleThresh, cfg.PowerWakeThresh
	if c.powersave {
		if err := c.restoreAsleep(ctx); err != nil {
			return nil, err
		}
	}

	// What the store remembers: placements not yet resolved by a poll, and
	// the desired network.
	ps, err := st.CCPlacements(ctx, c.zone)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		c.placed[p.InstanceID] = &placement{
			node:    p.Node,
			holds:   ncapi.Resources{Cores: p.Cores, MemoryMiB: p.MemoryMiB, DiskGiB: p.DiskGiB},
			started: store.Time(p.CreatedMS),
		}
	}
	doc, err := st.CCNetwork(ctx, c.zone)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(doc, &c.desired); err != nil {
			return nil, fmt.Errorf("cc: stored network of %s: %w", c.zone, err)
		}
	}
	return c, nil
}

// restoreAsleep takes back, at start, the nodes the store's status says
// POWERSAVE left asleep: they stay asleep (a poll would find them silent
// and count them down, and nothing would wake them), with the room they had.
func (c *Cluster) restoreAsleep(ctx context.Context) error {
	rows, err := c.st.CCNodeStatuses(ctx, c.zone)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, r := range rows {
		s := c.state[key.Host]
		if s == nil || r.Up || r.Error != store.CCNodeAsleep {
			continue
		}
		s.asleep, s.polled = true, true
		s.info.Max = ncapi.Resources{Cores: r.CoresMax, MemoryMiB: r.MemoryMax, DiskGiB: r.DiskMax}
		s.info.Free = ncapi.Resources{Cores: r.CoresFree, MemoryMiB: r.MemoryFree, DiskGiB: r.DiskFree}
		if r.LastSeenMS > 0 {
			s.info.LastSeen = store.Time(r.LastSeenMS)
		}
		c.written[key.Host] = r
		c.log.Info("cc: node left asleep by POWERSAVE before a restart: still asleep", "node", key.Host)
	}
	return nil
}

// Zone is the availability zone the cluster serves.
func (c *Cluster) Zone() string { return c.zone }

// SetPower gives the cluster the switch its nodes' power goes through
// (POWERSAVE powers idle nodes down and wakes them when needed). Call it
// before Run; without one, POWERSAVE only places, and powers nothing.
func (c *Cluster) SetPower(sw power.Switch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.power = sw
}

var _ ccapi.Cluster = (*Cluster)(nil)

// Run applies the recorded network, then polls the nodes until ctx ends.
// It returns nil once stopped. It leaves the network as it is when it
// returns: running instances keep their network across a restart, and
// Teardown removes it on purpose.
func (c *Cluster) Run(ctx context.Context) error {
	c.mu.Lock()
	c.log.Info("cc: running", "zone", c.zone, "nodes", c.order)
	c.mu.Unlock()
	if c.powersave {
		c.mu.Lock()
		sw := c.power
		c.mu.Unlock()
		if sw == nil {
			c.log.Warn("cc: POWERSAVE without power control for these nodes: none is powered down or woken (POWER_IDLETHRESH, POWER_WAKETHRESH have no effect)")
		} else {
			c.log.Info("cc: POWERSAVE powers idle nodes down", "idle_thresh", c.idleThresh, "wake_thresh", c.wakeThresh)
		}
	}
	if err := c.apply(ctx); err != nil && ctx.Err() == nil {
		c.log.Error("cc: network not applied; retrying at each poll", "err", err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.log.Info("cc: stopped", "zone", c.zone)
			return nil
		case <-timer.C:
		case <-c.kick:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		c.poll(ctx)
		c.retryApply(ctx)
		timer.Reset(c.nextPoll())
	}
}

// Teardown removes the zone's network from this host (bridges, rules,
// DHCP). Not part of a normal stop: instances would lose their network.
func (c *Cluster) Teardown(ctx context.Context) error {
	c.netMu.Lock()
	defer c.netMu.Unlock()
	c.applied = false
	return c.net.Close(ctx)
}

// changedNow notes a change and asks Run for an early poll.
func (c *Cluster) changedNow() {
	c.mu.Lock()
	c.changed = c.now()
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// nextPoll is the fast interval while something is in flux: just after a
// change, or while an instance is pending or shutting down.
func (c *Cluster) nextPoll() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Sub(c.changed) < c.fastFor {
		return c.fast
	}
	for _, p := range c.placed {
		if !p.seen && c.state[p.node] != nil && c.state[p.node].info.Up {
			return c.fast
		}
	}
	for _, s := range c.state {
		for _, in := range s.instances {
			if in.State == ncapi.StatePending || in.State == ncapi.StateShuttingDown {
				return c.fast
			}
		}
	}
	return c.interval
}

// poll re-reads the registry, asks every node at once and records the
// answers.
func (c *Cluster) poll(ctx context.Context) {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if _, err := c.syncNodes(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("cc: read the node registry; polling the nodes known", "err", err)
	}
	c.mu.Lock()
	var order []string
	var clients []ncapi.Node
	var gens []int
	for _, name := range c.order {
		if s := c.state[name]; !s.asleep { // a sleeping host answers nothing
			order, clients, gens = append(order, name), append(clients, c.nodes[name]), append(gens, s.dials)
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	var gone []string
	var goneMu sync.Mutex
	for i, name := range order {
		wg.Go(func() {
			g := c.pollNode(ctx, name, clients[i], gens[i])
			goneMu.Lock()
			gone = append(gone, g...)
			goneMu.Unlock()
		})
	}
	wg.Wait()
	c.mu.Lock()
	c.polled = true
	for id, l := range c.lost {
		if c.now().Sub(l.at) > lostKeep {
			delete(c.lost, id)
		}
	}
	c.mu.Unlock()
	c.forgetGone(ctx, gone)
	c.powerDownIdle(ctx)
	c.saveStatus(ctx)
}

// forgetGone drops from the store the placements polls resolved as gone.
func (c *Cluster) forgetGone(ctx context.Context, gone []string) {
	if len(gone) > 0 {
		if err := c.st.DeleteCCPlacements(ctx, gone); err != nil && ctx.Err() == nil {
			c.log.Warn("cc: forget placements", "ids", gone, "err", err)
		}
	}
}

// pollOne polls one node outside a round (a node being woken).
func (c *Cluster) pollOne(ctx context.Context, name string) []string {
	c.mu.Lock()
	s := c.state[name]
	if s == nil {
		c.mu.Unlock()
		return nil
	}
	n, gen := c.nodes[name], s.dials
	c.mu.Unlock()
	return c.pollNode(ctx, name, n, gen)
}

// pollNode polls one node (n, of its gen'th dial; nil when it could not be
// dialled) and returns the placements its answer resolved as gone.
func (c *Cluster) pollNode(ctx context.Context, name string, n ncapi.Node, gen int) (gone []string) {
	began := c.now()
	var st ncapi.NodeStatus
	err := errNotConnected
	if n != nil {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		st, err = n.Describe(pctx)
		cancel()
	}
	if err != nil && ctx.Err() != nil {
		return nil // stopping: not the node's fault
	}
	if err == nil {
		c.joinNode(ctx, name, n, st.Network)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state[name]
	if s == nil || s.dials != gen {
		return nil // deregistered (or moved) while the poll was under way
	}
	wasUp, first := s.info.Up, !s.polled
	s.polled = true
	if err != nil {
		if !s.waking.IsZero() && c.now().Sub(s.waking) < c.wakeThresh {
			return nil // still waking up: not down until POWER_WAKETHRESH
		}
		if !s.waking.IsZero() {
			c.log.Warn("cc: woken node did not answer within POWER_WAKETHRESH: down", "node", name, "wake_thresh", c.wakeThresh, "err", err)
			wasUp, first = false, false // logged here
		}
		s.waking, s.idleSince = time.Time{}, time.Time{}
		if n != nil || s.info.Error == "" {
			s.info.Error = err.Error()
		}
		s.info.Up = false
		if s.downSince.IsZero() {
			s.downSince = c.now()
		}
		if wasUp || first {
			c.log.Warn("cc: node down: its capacity leaves the cluster; its instances are unreachable", "node", name, "err", s.info.Error)
		}
		return nil
	}
	before := s.instances
	// An instance stopped since the node answered is not its any more.
	st.Instances = slices.DeleteFunc(slices.Clone(st.Instances), func(in ncapi.InstanceStatus) bool { return c.stoppedLocked(in.ID) })
	s.downSince = time.Time{}
	s.info = ccapi.NodeInfo{Host: name, Port: s.info.Port, Driver: st.Driver, Version: st.Version, Max: st.Max, Free: st.Free, Up: true, LastSeen: c.now()}
	s.instances = st.Instances
	if !wasUp || !s.waking.IsZero() {
		c.log.Info("cc: node up", "node", name, "driver", st.Driver, "version", st.Version, "max", st.Max, "free", st.Free, "instances", len(st.Instances), "woken", !s.waking.IsZero())
	}
	s.waking = time.Time{}
	listed := make(map[string]bool, len(st.Instances))
	for _, in := range st.Instances {
		listed[in.ID] = true
		delete(c.lost, in.ID)
	}
	// What the node held by its last answer and no longer lists, it lost
	// (a host that restarted, a node whose records went): a node lists an
	// instance it ended, as terminated, for a while.
	for _, in := range before {
		if !listed[in.ID] && live(in.State) {
			c.loseLocked(in.ID, name, in.Holds)
		}
	}
	for id, p := range c.placed {
		if p.node != name {
			continue
		}
		switch {
		case listed[id]:
			p.seen = true
		case !p.started.IsZero() && p.started.Before(began):
			// Started before this poll began, and the node no longer
			// has it: it is gone (or never really started).
			delete(c.placed, id)
			gone = append(gone, id)
			if !slices.ContainsFunc(before, func(in ncapi.InstanceStatus) bool { return in.ID == id && !live(in.State) }) {
				c.loseLocked(id, name, p.holds)
			}
		}
	}
	if _, busy := c.roomLocked(name); busy {
		s.idleSince = time.Time{}
	} else if s.idleSince.IsZero() {
		s.idleSince = c.now()
	}
	return gone
}

// loseLocked records that node no longer has instance id. c.mu is held.
func (c *Cluster) loseLocked(id, node string, holds ncapi.Resources) {
	if _, ok := c.lost[id]; ok || c.stoppedLocked(id) {
		return
	}
	c.log.Warn("cc: node no longer has the instance: it is lost", "node", node, "instance", id)
	c.lost[id] = lostInstance{node: node, holds: holds, at: c.now(),
		reason: fmt.Sprintf("node %s no longer has the instance (the host restarted or lost it)", node)}
}

// errNotConnected is a node's error while its dial fails.
var errNotConnected = errors.New("not connected")

// powerDownIdle powers down, under POWERSAVE, the nodes whose polls have
// shown them idle for longer than POWER_IDLETHRESH (Eucalyptus's
// refresh_instances and powerDown). A node being powered down takes no
// instance; one whose PowerOff fails stays up and waits another threshold.
func (c *Cluster) powerDownIdle(ctx context.Context) {
	c.mu.Lock()
	sw := c.power
	var idle []string
	if c.powersave && sw != nil {
		now := c.now()
		for _, name := range c.order {
			s := c.state[name]
			if !s.info.Up || s.asleep || s.poweringOff || !s.waking.IsZero() || s.idleSince.IsZero() || now.Sub(s.idleSince) <= c.idleThresh {
				continue
			}
			if _, busy := c.roomLocked(name); busy {
				continue
			}
			s.poweringOff = true
			idle = append(idle, name)
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, name := range idle {
		wg.Go(func() {
			err := sw.PowerOff(ctx, name)
			if errors.Is(err, power.ErrNoPowerOff) && name != LocalNode {
				// A switch that only wakes (Wake-on-LAN): the node
				// powers its own host down, as Eucalyptus's did. The
				// front-end's own host runs the controllers: never.
				c.mu.Lock()
				client := c.nodes[name]
				c.mu.Unlock()
				if pd, ok := client.(ncapi.PowerDowner); ok {
					err = pd.PowerDown(ctx)
				}
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			s := c.state[name]
			if s == nil {
				return // deregistered meanwhile
			}
			s.poweringOff = false
			if err != nil {
				s.idleSince = c.now()
				c.log.Warn("cc: idle node not powered down", "node", name, "err", err)
				return
			}
			s.asleep, s.info.Up, s.idleSince = true, false, time.Time{}
			c.log.Info("cc: idle node powered down", "node", name, "idle_thresh", c.idleThresh)
		})
	}
	wg.Wait()
}

// awaitAwake waits until a node woken for a launch answers a poll (nil),
// or is counted out: it has not answered within POWER_WAKETHRESH, or its
// wake failed.
func (c *Cluster) awaitAwake(ctx context.Context, name string) error {
	backoff := c.fast / 4 // the node answers within a poll or two of its wake
	for {
		c.mu.Lock()
		s := c.state[name]
		if s == nil {
			c.mu.Unlock()
			return fmt.Errorf("node %s: %w", name, errNotRegistered)
		}
		waking, up, msg := s.waking, s.info.Up, s.info.Error
		c.mu.Unlock()
		if waking.IsZero() {
			if up {
				return nil
			}
			return fmt.Errorf("node %s was woken and did not come back: %s", name, msg)
		}
		c.forgetGone(ctx, c.pollOne(ctx, name))
		c.mu.Lock()
		still := c.state[name] != nil && !c.state[name].waking.IsZero()
		c.mu.Unlock()
		if !still {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 8*c.fast)
	}
}

// ensurePolled polls once if no poll round has finished, so that a request
// arriving before Run's first round sees the nodes. A node registered later
// is polled by Run, which a registration kicks.
func (c *Cluster) ensurePolled(ctx context.Context) {
	c.mu.Lock()
	need := !c.polled
	c.mu.Unlock()
	if need {
		c.poll(ctx)
	}
}

// refresh re-reads the registry between polls, so that a deregistered node
// leaves the totals at once and a registered one is polled at once.
func (c *Cluster) refresh(ctx context.Context) {
	added, err := c.syncNodes(ctx)
	if err != nil {
		c.log.Warn("cc: read the node registry", "err", err)
	}
	if added {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// node is the client of a registered node; nil when it is not registered
// or not connected.
func (c *Cluster) node(name string) ncapi.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[name]
}

// roomLocked is a node's room: the poll's free resources less what the
// placements it has not reported yet hold. c.mu is held.
func (c *Cluster) roomLocked(name string) (free ncapi.Resources, busy bool) {
	s := c.state[name]
	free = s.info.Free
	for _, in := range s.instances {
		if in.State != ncapi.StateTerminated && in.State != ncapi.StateFailed {
			busy = true
		}
	}
	for _, p := range c.placed {
		if p.node == name && !p.seen {
			free = free.Sub(p.holds)
			busy = true
		}
	}
	return free, busy
}

// Describe reports the nodes, the capacity per VM type of the nodes that
// are up, and every instance: as the nodes last reported them (a node that
// is down keeps its last known instances, marked unreachable: it is
// unreachable, not empty), plus the instances started since, as pending,
// the instances of deregistered nodes, unreachable, and the instances
// found lost, terminated.
func (c *Cluster) Describe(ctx context.Context, types []ccapi.VMType) (ccapi.Status, error) {
	c.refresh(ctx)
	c.ensurePolled(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := ccapi.Status{Zone: c.zone, Nodes: []ccapi.NodeInfo{}, Capacity: map[string]ccapi.Capacity{}, Instances: []ccapi.InstanceStatus{}}
	seen := map[string]bool{}
	for _, name := range c.order {
		s := c.state[name]
		info := s.info
		info.Free, _ = c.roomLocked(name)
		info.Asleep = s.asleep
		out.Nodes = append(out.Nodes, info)
		for _, in := range s.instances {
			if !seen[in.ID] {
				seen[in.ID] = true
				is := ccapi.InstanceStatus{InstanceStatus: in, Node: name}
				is.Unreachable, is.UnreachableSince = c.unreachableLocked(name)
				out.Instances = append(out.Instances, is)
			}
		}
	}
	var rest []ccapi.InstanceStatus
	for id, p := range c.placed {
		if !seen[id] {
			seen[id] = true
			is := ccapi.InstanceStatus{
				InstanceStatus: ncapi.InstanceStatus{ID: id, State: ncapi.StatePending, Holds: p.holds},
				Node:           p.node,
			}
			is.Unreachable, is.UnreachableSince = c.unreachableLocked(p.node)
			rest = append(rest, is)
		}
	}
	for id, l := range c.lost {
		if !seen[id] {
			rest = append(rest, ccapi.InstanceStatus{
				InstanceStatus: ncapi.InstanceStatus{ID: id, State: ncapi.StateTerminated, Reason: l.reason, Holds: l.holds},
				Node:           l.node, Lost: true,
			})
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].ID < rest[j].ID })
	out.Instances = append(out.Instances, rest...)
	out.Capacity = capacity(out.Nodes, types)
	return out, nil
}

// unreachableLocked says why the instances of node cannot be reached, and
// since when; "" when they can (or the node was not polled yet). c.mu is
// held.
func (c *Cluster) unreachableLocked(node string) (string, time.Time) {
	s := c.state[node]
	switch {
	case s == nil:
		return fmt.Sprintf("node %s is not registered in %s", node, c.zone), time.Time{}
	case s.polled && !s.info.Up && !s.asleep: // POWERSAVE sleeps only idle nodes
		msg := fmt.Sprintf("node %s does not answer", node)
		if !s.info.LastSeen.IsZero() {
			msg += " (last seen " + s.info.LastSeen.UTC().Format(time.RFC3339) + ")"
		}
		if s.info.Error != "" {
			msg += ": " + s.info.Error
		}
		return msg, s.downSince
	}
	return "", time.Time{}
}

// capacity is, per VM type, how many fit on the nodes that are up or asleep
// (they can be woken): now (in each node's room) and on empty nodes (in
// each node's Max), summed over nodes, as Eucalyptus's free/max. An
// instance never spans nodes, so each node's count is its own.
func capacity(nodes []ccapi.NodeInfo, types []ccapi.VMType) map[string]ccapi.Capacity {
	out := make(map[string]ccapi.Capacity, len(types))
	for _, t := range types {
		need := ncapi.Resources{Cores: t.Cores, MemoryMiB: t.MemoryMiB, DiskGiB: t.DiskGiB}
		var c ccapi.Capacity
		for _, n := range nodes {
			if n.Up || n.Asleep {
				c.Free += sched.Count(n.Free, need)
				c.Max += sched.Count(n.Max, need)
			}
		}
		out[t.Name] = c
	}
	return out
}
