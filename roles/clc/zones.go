package clc

// Zones. Each availability zone is one cluster controller: the one of this
// process serves CLUSTER_NAME (SetCluster); the others are registered in
// the store (`euca cluster register NAME HOST[:PORT]`, as Eucalyptus's
// console added clusters) and reached over the network. WatchClusters
// follows the register: a cluster registered while the cloud runs becomes
// a zone within seconds, with its default subnet in every account's
// default VPC; one deregistered stops being one.
//
// The zones' order is CLUSTER_NAME, then the registered clusters oldest
// first. It numbers the zone ids (use1-az1, ...) and the slices of the
// private space (VNET_SUBNET) the zones' default subnets get: one zone has
// the whole space; n zones split it into the next power of two of equal
// slices. A default subnet made before the split is narrowed to its slice
// while it holds no instance; one in use keeps its range (and its zone's
// network spans it) until its instances end.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/store"
)

const (
	// watchClustersEvery is how often WatchClusters reads the register.
	watchClustersEvery = 3 * time.Second
	// zoneAskTimeout bounds asking a zone's cluster for its state or room
	// on behalf of an API call: a cluster that does not answer in time is
	// counted out of that answer rather than holding it.
	zoneAskTimeout = 5 * time.Second
)

// Zone states as DescribeAvailabilityZones shows them.
const (
	ZoneAvailable   = "available"
	ZoneUnavailable = "unavailable"
)

// Zones are the availability zones: CLUSTER_NAME, then the registered
// clusters' oldest first.
func (c *Cloud) Zones() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.zones) == 0 {
		return []string{c.cfg.ClusterName}
	}
	return slices.Clone(c.zones)
}

// zonesOf is the zone list of a register.
func zonesOf(local string, reg []store.Cluster) []string {
	out := []string{local}
	for _, cl := range reg {
		if cl.Name != local {
			out = append(out, cl.Name)
		}
	}
	return out
}

// loadZones reads the register; changed says whether the zones differ from
// those known before.
func (c *Cloud) loadZones(ctx context.Context) (reg []store.Cluster, changed bool, err error) {
	reg, err = c.store.Clusters(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("clc: clusters: %w", err)
	}
	zones := zonesOf(c.cfg.ClusterName, reg)
	c.mu.Lock()
	defer c.mu.Unlock()
	changed = !slices.Equal(zones, c.zones)
	c.zones = zones
	return reg, changed, nil
}

// DialCluster makes the client of a registered cluster.
type DialCluster func(store.Cluster) (ccapi.Cluster, error)

// remoteCluster is a registered cluster the cloud holds a client of.
type remoteCluster struct {
	reg store.Cluster
	cl  ccapi.Cluster
}

// WatchClusters follows the register of clusters until ctx ends: it
// connects the clusters registered (through dial) and drops those
// deregistered, and gives every account its default subnet in a new zone.
// A registered cluster named as the zone of a cluster in this process
// (SetCluster) is left out, with a warning: the zone is served here.
func (c *Cloud) WatchClusters(ctx context.Context, dial DialCluster) error {
	t := time.NewTicker(watchClustersEvery)
	defer t.Stop()
	for {
		if err := c.syncClusters(ctx, dial); err != nil && ctx.Err() == nil {
			c.log.Warn("clusters", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// syncClusters is one pass of WatchClusters.
func (c *Cloud) syncClusters(ctx context.Context, dial DialCluster) error {
	reg, changed, err := c.loadZones(ctx)
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, r := range reg {
		seen[r.Name] = true
		if c.inst.isLocal(r.Name) {
			if c.warnOnce("local:" + r.Name) {
				c.log.Warn("a registered cluster names the zone of the cluster in this process; the one here serves it", "zone", r.Name, "host", r.Host)
			}
			continue
		}
		c.remoteMu.Lock()
		have, ok := c.remote[r.Name]
		c.remoteMu.Unlock()
		if ok && have.reg.Host == r.Host && have.reg.Port == r.Port {
			continue
		}
		cl, err := dial(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s at %s:%d: %w", r.Name, r.Host, r.Port, err))
			continue
		}
		c.remoteMu.Lock()
		if c.remote == nil {
			c.remote = map[string]remoteCluster{}
		}
		c.remote[r.Name] = remoteCluster{reg: r, cl: cl}
		c.remoteMu.Unlock()
		c.inst.setCluster(cl)
		c.log.Info("cluster connected", "zone", r.Name, "host", r.Host, "port", r.Port)
	}
	c.remoteMu.Lock()
	for zone := range c.remote {
		if !seen[zone] {
			delete(c.remote, zone)
			c.inst.dropCluster(zone)
			c.log.Info("cluster deregistered", "zone", zone)
		}
	}
	c.remoteMu.Unlock()
	if changed {
		if err := c.ensureAllAccountDefaults(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// warnOnce reports whether the warning key is new.
func (c *Cloud) warnOnce(key string) bool {
	c.remoteMu.Lock()
	defer c.remoteMu.Unlock()
	if c.warned == nil {
		c.warned = map[string]bool{}
	}
	if c.warned[key] {
		return false
	}
	c.warned[key] = true
	return true
}

// ensureAllAccountDefaults gives every account what ensureAccountDefaults
// gives one: after a zone appears, its default subnets.
func (c *Cloud) ensureAllAccountDefaults(ctx context.Context) error {
	accts, err := c.store.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("clc: accounts: %w", err)
	}
	var errs []error
	for _, a := range accts {
		if err := c.ensureAccountDefaults(ctx, a.ID); err != nil {
			errs = append(errs, fmt.Errorf("defaults of account %s: %w", a.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *instanceRuntime) isLocal(zone string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.local[zone]
}

func (r *instanceRuntime) dropCluster(zone string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.clusters, zone)
}

// ---- what each zone's cluster says

// zoneReport is a zone's cluster's answer to Describe, or why there is
// none.
type zoneReport struct {
	status ccapi.Status
	err    error
}

// askZones asks every zone's cluster to Describe, at once, each within
// zoneAskTimeout; a zone without a cluster reports errNoCluster.
func (c *Cloud) askZones(ctx context.Context) map[string]zoneReport {
	types, err := c.ccTypes(ctx)
	zones := c.Zones()
	out := make(map[string]zoneReport, len(zones))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, z := range zones {
		cl := c.inst.cluster(z)
		if cl == nil || err != nil {
			out[z] = zoneReport{err: cmpErr(err, errNoCluster)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, zoneAskTimeout)
			defer cancel()
			st, err := cl.Describe(ctx, types)
			mu.Lock()
			out[z] = zoneReport{status: st, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

var errNoCluster = errors.New("no cluster controller serves this zone")

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ZoneStates are the zones' states, with a message saying what is wrong:
// unavailable when no cluster serves the zone, its cluster controller does
// not answer or none of its nodes does; available, with a message, while
// some of its nodes answer.
func (c *Cloud) ZoneStates(ctx context.Context) (states, messages map[string]string) {
	states, messages = map[string]string{}, map[string]string{}
	for z, r := range c.askZones(ctx) {
		switch {
		case r.err != nil:
			states[z], messages[z] = ZoneUnavailable, "The cluster controller does not answer: "+r.err.Error()
		default:
			down := 0
			for _, n := range r.status.Nodes {
				if !n.Up && !n.Asleep { // a node POWERSAVE put to sleep is not lost
					down++
				}
			}
			switch {
			case down > 0 && down == len(r.status.Nodes):
				states[z], messages[z] = ZoneUnavailable, fmt.Sprintf("None of its %d nodes answers", down)
			case down > 0:
				// Still placing on the nodes that answer: available, saying
				// what is missing.
				states[z], messages[z] = ZoneAvailable, fmt.Sprintf("%d of %d nodes do not answer", down, len(r.status.Nodes))
			default:
				states[z] = ZoneAvailable
			}
		}
	}
	return states, messages
}

// clusterCapacity is the Capacity of the zones' clusters, asked at each
// call so that an administrator's change of a VM type, or a node lost,
// shows at once. A zone whose cluster does not answer reads as no room.
type clusterCapacity struct{ c *Cloud }

func (cc clusterCapacity) Capacity(ctx context.Context) (map[string]map[string]store.VMTypeCapacity, error) {
	out := map[string]map[string]store.VMTypeCapacity{}
	for z, r := range cc.c.askZones(ctx) {
		if r.err != nil {
			if !errors.Is(r.err, errNoCluster) {
				cc.c.log.WarnContext(ctx, "cluster did not report its capacity", "zone", z, "err", r.err)
			}
			continue
		}
		m := make(map[string]store.VMTypeCapacity, len(r.status.Capacity))
		for name, cp := range r.status.Capacity {
			m[name] = store.VMTypeCapacity{Free: cp.Free, Max: cp.Max}
		}
		out[z] = m
	}
	return out, nil
}

// pickZone is the zone a launch without a zone or subnet goes to: the one
// whose cluster has the most room for the type (so launches spread over
// the zones as they fill), the zones' order breaking ties. With no room
// anywhere it is the first zone a cluster serves, whose refusal then names
// it.
func (c *Cloud) pickZone(ctx context.Context, vmType string) string {
	zones := c.Zones()
	reports := c.askZones(ctx)
	best, bestFree := "", 0
	for _, z := range zones {
		r := reports[z]
		if r.err != nil {
			continue
		}
		if free := r.status.Capacity[vmType].Free; free > bestFree {
			best, bestFree = z, free
		}
	}
	if best != "" {
		return best
	}
	for _, z := range zones {
		if c.inst.cluster(z) != nil {
			return z
		}
	}
	return zones[0]
}

// zonePrefix is the private space of a zone: its slice of VNET_SUBNET, or
// the range of a default subnet of the zone made before the split and
// still in use, which holds it.
func (c *Cloud) zonePrefix(ctx context.Context, zone string) netip.Prefix {
	p := c.cfg.VNetSubnet.Masked()
	zones := c.Zones()
	for i, z := range zones {
		if z == zone {
			p = carve(c.cfg.VNetSubnet.Masked(), i, len(zones))
		}
	}
	cidrs, err := c.store.DefaultSubnetCIDRs(ctx, zone)
	if err != nil {
		c.log.Warn("default subnets", "zone", zone, "err", err)
		return p
	}
	for _, s := range cidrs {
		if wide, err := netip.ParsePrefix(s); err == nil && wide.Bits() < p.Bits() && wide.Contains(p.Addr()) {
			p = wide.Masked()
		}
	}
	return p
}

// resizeDefaultSubnet narrows (or widens) a default subnet to its zone's
// slice when it holds no instance.
func (c *Cloud) resizeDefaultSubnet(ctx context.Context, sn store.Subnet, want netip.Prefix) error {
	if sn.CIDR == want.String() {
		return nil
	}
	ok, err := c.store.ResizeDefaultSubnet(ctx, sn.ID, want.String())
	if err != nil {
		return err
	}
	if ok {
		c.log.Info("default subnet resized to its zone's slice", "subnet", sn.ID, "zone", sn.Zone, "from", sn.CIDR, "to", want.String())
	} else if c.warnOnce("resize:" + sn.ID) {
		c.log.Warn("a default subnet keeps its range while instances are in it; zones made after it share that range",
			"subnet", sn.ID, "zone", sn.Zone, "cidr", sn.CIDR, "slice", want.String())
	}
	return nil
}

// zoneMetadata is where a zone's cluster redirects 169.254.169.254:80. A
// loopback address means this host's: a cluster on another host gets no
// redirect rather than one to a port of its own loopback, which guests
// must never reach.
func (c *Cloud) zoneMetadata(zone string, md netip.AddrPort) netip.AddrPort {
	if md.IsValid() && md.Addr().IsLoopback() && !c.inst.isLocal(zone) {
		return netip.AddrPort{}
	}
	return md
}
