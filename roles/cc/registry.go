package cc

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// The node registry. A cluster's nodes are the rows of the store's
// registry for its zone (store.CCNode): seeded from NODES when the CC
// starts, as Eucalyptus's CC read NODES, and changed at run time by `euca
// node register` and `euca node deregister`, which write the store from
// another process. The CC re-reads the registry at every poll round and at
// every Describe (one small query): a node registered is dialled and polled
// at once; a node deregistered leaves the totals at once, and its instances
// are reported unreachable (its placements stay: they are what a later
// registration of the same host reconciles against).

// Dialer connects to a registered node: the node controller in this process
// for the local node, an RPC client for the others. It must not block on
// the network (it makes a client; the first poll connects).
type Dialer func(host string, port int) (ncapi.Node, error)

// LocalNode is the name under which a node controller in the cluster
// controller's own process is registered; loopback addresses in NODES or
// `euca node register` are that node too, so one host is never counted
// twice.
const LocalNode = "localhost"

// statusEvery is how often a node's last-seen time alone is written to the
// store; a change of anything else is written at the poll that sees it.
// With 500 nodes polled every few seconds, the store sees a few hundred
// small rows a minute rather than a write per node per poll.
const statusEvery = 10 * time.Second

// lostKeep is how long an instance a returned node no longer has is
// reported terminated (for the cloud controller to see) after it was found
// missing.
const lostKeep = time.Hour

// ParseNode reads a node as NODES and `euca node register` write it: HOST
// or HOST:PORT ([V6]:PORT); a node without a port is on defPort (NC_PORT).
// A loopback address is LocalNode.
func ParseNode(s string, defPort int) (host string, port int, err error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		return "", 0, fmt.Errorf("node %q: want HOST or HOST:PORT (a host name or an IP address), not a URL", s)
	}
	host, port = s, defPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("node %q: port %q is not a number from 1 to 65535", s, p)
		}
		host, port = h, n
	} else if strings.Count(s, ":") > 1 { // a bare IPv6 address
		host = strings.Trim(s, "[]")
	}
	if host == "" || strings.ContainsAny(host, " \t/@?#\"'") || strings.HasPrefix(host, "-") {
		return "", 0, fmt.Errorf("node %q: want HOST or HOST:PORT (a host name or an IP address)", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.IsLoopback() {
			return LocalNode, port, nil
		}
		host = a.Unmap().String()
	}
	// Host names are case-insensitive: one host, one registration.
	return strings.ToLower(host), port, nil
}

// syncNodes makes the cluster's nodes those of the registry: it dials the
// nodes registered since the last call (and those whose port changed, or
// whose dial failed), and drops those deregistered. It reports whether a
// node was added.
func (c *Cluster) syncNodes(ctx context.Context) (added bool, err error) {
	regs, err := c.st.CCNodes(ctx, c.zone)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	want := make(map[string]int, len(regs))
	for _, r := range regs {
		want[r.Host] = r.Port
	}
	for _, name := range c.order {
		if _, ok := want[name]; !ok {
			n := 0
			for _, in := range c.state[name].instances {
				if live(in.State) {
					n++
				}
			}
			c.log.Warn("cc: node deregistered: its capacity leaves the cluster; its instances are unreachable until it is registered again",
				"node", name, "instances", n)
			delete(c.state, name)
			delete(c.nodes, name)
			delete(c.ports, name)
			delete(c.written, name)
		}
	}
	var order []string
	for _, r := range regs {
		name := r.Host
		order = append(order, name)
		s := c.state[name]
		if s == nil {
			s = &nodeState{info: ccapi.NodeInfo{Host: name, Port: r.Port}}
			c.state[name] = s
			added = true
			if c.synced {
				c.log.Info("cc: node registered", "node", name, "port", r.Port)
			}
		}
		if c.nodes[name] != nil && c.ports[name] == r.Port {
			continue
		}
		if c.nodes[name] != nil {
			c.log.Info("cc: node moved to another port", "node", name, "from", c.ports[name], "to", r.Port)
		}
		s.info.Port = r.Port
		s.dials++
		n, err := c.dial(name, r.Port)
		if err != nil {
			c.nodes[name] = nil
			msg := fmt.Sprintf("cannot connect: %v", err)
			if s.info.Error != msg { // tried again at every look: said once
				c.log.Warn("cc: cannot connect to node", "node", name, "port", r.Port, "err", err)
			}
			s.info.Up, s.info.Error = false, msg
			continue
		}
		c.nodes[name], c.ports[name] = n, r.Port
	}
	// NODES order first (Eucalyptus's order, which GREEDY fills in), then
	// the nodes registered at run time, oldest first.
	var sorted []string
	for _, n := range c.confNodes {
		if slices.Contains(order, n) && !slices.Contains(sorted, n) {
			sorted = append(sorted, n)
		}
	}
	for _, n := range order {
		if !slices.Contains(sorted, n) {
			sorted = append(sorted, n)
		}
	}
	c.order = sorted
	c.synced = true
	return added, nil
}

// seedNodes registers the nodes of NODES (a node registered already keeps
// its registration; a port written in NODES wins).
func (c *Cluster) seedNodes(ctx context.Context, nodes []string, defPort int) error {
	for _, n := range nodes {
		host, port, err := ParseNode(n, defPort)
		if err != nil {
			c.log.Warn("cc: NODES: entry left out", "err", err)
			continue
		}
		if !slices.Contains(c.confNodes, host) {
			c.confNodes = append(c.confNodes, host)
		}
		if _, err := c.st.RegisterCCNode(ctx, c.zone, host, port); err != nil {
			return err
		}
	}
	return nil
}

// saveStatus writes the nodes' polled status to the store where it
// changed (the last-seen time alone at most every statusEvery), for `euca
// node list`. pollMu is held.
func (c *Cluster) saveStatus(ctx context.Context) {
	c.mu.Lock()
	var out []store.CCNodeStatus
	now := c.now()
	for _, name := range c.order {
		s := c.state[name]
		if !s.polled {
			continue
		}
		count := 0
		for _, in := range s.instances {
			if live(in.State) {
				count++
			}
		}
		i := s.info
		row := store.CCNodeStatus{Zone: c.zone, Host: name, Up: i.Up,
			CoresFree: i.Free.Cores, CoresMax: i.Max.Cores, MemoryFree: i.Free.MemoryMiB, MemoryMax: i.Max.MemoryMiB,
			DiskFree: i.Free.DiskGiB, DiskMax: i.Max.DiskGiB, Instances: count, Version: i.Version, Error: i.Error}
		if !i.LastSeen.IsZero() {
			row.LastSeenMS = i.LastSeen.UnixMilli()
		}
		if s.asleep {
			row.Error = store.CCNodeAsleep
		}
		old, ok := c.written[name]
		same := old
		same.LastSeenMS = row.LastSeenMS
		if ok && same == row && now.Sub(store.Time(old.LastSeenMS)) < statusEvery {
			continue
		}
		out = append(out, row)
	}
	c.mu.Unlock()
	if len(out) == 0 {
		return
	}
	if err := c.st.PutCCNodeStatuses(ctx, out); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("cc: record node status", "err", err)
		}
		return
	}
	c.mu.Lock()
	for _, r := range out {
		if c.state[r.Host] != nil {
			c.written[r.Host] = r
		}
	}
	c.mu.Unlock()
}

// live says an instance in state holds its node's resources.
func live(state string) bool {
	return state != ncapi.StateTerminated && state != ncapi.StateFailed
}
