// Command sched measures placement and the cluster's answers at scale, over
// a cloud of simulated hosts in this process (internal/simcloud: a cloud
// controller, its cluster controller, and -hosts node controllers over the
// sim driver, each on its own mutual-TLS endpoint). A benchmark, not a
// test: nothing here asserts on time. Each figure comes with a baseline
// measured in the same run:
//
//   - placements per second of each SCHEDPOLICY, -instances m1.small one
//     at a time over -hosts nodes: the policy alone (roles/cc/sched on the
//     cluster's snapshot, the cursor carried as the cluster controller
//     carries it; the median of five interleaved rounds), against
//     GREEDY's rate;
//   - launches through the cloud controller's RunInstances until
//     -instances run, in requests of -batch from -clients at once: placed
//     instances per second end to end (records, network, placement, the
//     nodes' RunInstance over mutual TLS), against the policy alone;
//   - DescribeInstances of all of them, p50 and p99 of -n calls, against
//     the store's own read of the same rows;
//   - RunInstances to running on a remote node (over the node API with
//     mutual TLS, as a joined host is reached; here on loopback) against
//     the same on the front-end's own node (held in process), medians of
//     -rounds, in a cloud of just those two;
//   - from a node controller dying (its listener and connections closed)
//     to the zone's capacity without it, for -kills nodes one after the
//     other, against the cluster controller's poll interval at rest (the
//     deaths come once the fast polling that follows a launch is over).
//
// bench/sched/run.sh (make bench-sched) runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/simcloud"
	"github.com/euca-cloud/euca/roles/cc"
	"github.com/euca-cloud/euca/roles/cc/sched"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

func main() {
	hosts := flag.Int("hosts", 1000, "simulated hosts")
	instances := flag.Int("instances", 10000, "instances to place and launch")
	perHost := flag.Int("per-host", 0, "m1.small a host holds (0: instances/hosts rounded up, plus one)")
	batch := flag.Int("batch", 100, "instances per RunInstances")
	clients := flag.Int("clients", 4, "concurrent RunInstances")
	n := flag.Int("n", 50, "DescribeInstances calls")
	kills := flag.Int("kills", 5, "node controllers killed, one after the other")
	work := flag.String("work", "", "working directory (default: a temporary one, removed)")
	policyOnly := flag.Bool("policy-only", false, "measure the policies alone, start no cloud")
	rounds := flag.Int("rounds", 7, "launches on each of the local and the remote node")
	flag.Parse()
	if *perHost == 0 {
		*perHost = (*instances+*hosts-1) / *hosts + 1
	}
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "euca-bench-sched-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if !*policyOnly && *rounds > 0 {
		if err := localRemote(filepath.Join(dir, "local-remote"), *rounds); err != nil {
			log.Fatal(err)
		}
	}
	if err := run(filepath.Join(dir, "scale"), *hosts, *instances, *perHost, *batch, *clients, *n, *kills, *policyOnly); err != nil {
		log.Fatal(err)
	}
}

var small = ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2} // m1.small

func run(dir string, hosts, instances, perHost, batch, clients, n, kills int, policyOnly bool) error {
	ctx := context.Background()
	fmt.Printf("bench-sched: %d hosts of %d m1.small, %d instances\n\n", hosts, perHost, instances)

	// 1. The policies alone.
	fmt.Println("| policy | placements/s, the policy alone | vs GREEDY |")
	fmt.Println("|---|---|---|")
	var greedy float64
	rates := map[string]float64{}
	policies := []string{"GREEDY", "ROUNDROBIN", "POWERSAVE"}
	all := map[string][]float64{}
	for range 5 { // interleaved rounds, the median of each: the machine is shared
		for _, name := range policies {
			r, err := policyRate(name, hosts, perHost, instances)
			if err != nil {
				return err
			}
			all[name] = append(all[name], r)
		}
	}
	for _, name := range policies {
		slices.Sort(all[name])
		rates[name] = all[name][len(all[name])/2]
	}
	greedy = rates["GREEDY"]
	for _, name := range policies {
		fmt.Printf("| %s | %.0f | %.2f |\n", name, rates[name], rates[name]/greedy)
	}
	fmt.Println()
	if policyOnly {
		return nil
	}

	// 2. Launches end to end.
	t0 := time.Now()
	c, err := simcloud.Start(ctx, simcloud.Options{Dir: dir, Nodes: hosts, Policy: "GREEDY",
		Host: hypervisor.Resources{Cores: perHost * small.Cores, MemoryMiB: perHost * small.MemoryMiB, DiskGiB: perHost * small.DiskGiB}})
	if err != nil {
		return err
	}
	defer c.Close()
	zone := c.CLC.Zones()[0]
	capacity := func() store.VMTypeCapacity {
		all, _, err := c.CLC.ZoneCapacity(ctx, c.Admin)
		if err != nil {
			log.Fatal(err)
		}
		return all[zone]["m1.small"]
	}
	for capacity().Max != hosts*perHost {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("cloud of %d hosts up and polled in %v\n\n", hosts, time.Since(t0).Round(time.Second))

	t0 = time.Now()
	var mu sync.Mutex
	launched := 0
	var errs []error
	var wg sync.WaitGroup
	next := make(chan int)
	go func() {
		for left := instances; left > 0; left -= batch {
			next <- min(batch, left)
		}
		close(next)
	}()
	for range clients {
		wg.Go(func() {
			for k := range next {
				insts, err := c.CLC.RunInstances(ctx, c.Admin, store.LaunchSpec{ImageID: c.Image, InstanceType: "m1.small", MinCount: k, MaxCount: k})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				launched += len(insts)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e2e := float64(launched) / took.Seconds()
	fmt.Println("| measurement | euca | baseline | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| %d launches through RunInstances (batches of %d, %d clients), instances placed/s, vs GREEDY alone | %.0f | %.0f | %.4f |\n",
		launched, batch, clients, e2e, greedy, e2e/greedy)

	// Every instance running, so the listing below is of a settled cloud.
	for {
		insts, err := c.CLC.DescribeInstances(ctx, c.Admin, nil)
		if err != nil {
			return err
		}
		running := 0
		for _, in := range insts {
			if in.State == store.InstanceRunning {
				running++
			}
		}
		if running == launched {
			break
		}
		time.Sleep(time.Second)
	}

	// 3. DescribeInstances against the store's read.
	var svc, raw []time.Duration
	for range n {
		t := time.Now()
		insts, err := c.CLC.DescribeInstances(ctx, c.Admin, nil)
		if err != nil {
			return err
		}
		svc = append(svc, time.Since(t))
		if len(insts) != launched {
			return fmt.Errorf("DescribeInstances lists %d, want %d", len(insts), launched)
		}
		t = time.Now()
		if _, err := c.Store.Instances(ctx, c.Admin); err != nil {
			return err
		}
		raw = append(raw, time.Since(t))
	}
	fmt.Printf("| DescribeInstances of %d, p50 (%d calls), vs the store's read of them | %v | %v | %.2f |\n",
		launched, n, pct(svc, 50), pct(raw, 50), ratio(pct(svc, 50), pct(raw, 50)))
	fmt.Printf("| the same, p99 | %v | %v | %.2f |\n", pct(svc, 99), pct(raw, 99), ratio(pct(svc, 99), pct(raw, 99)))

	// 4. A node dying, to capacity without it. The cluster polls fast for
	// 30 s after a launch; the deaths come once it polls at rest.
	if kills < 1 {
		return nil
	}
	time.Sleep(31 * time.Second)
	var lost []time.Duration
	left := capacity().Max
	for k := range kills {
		h := c.Hosts[(k*hosts)/max(kills, 1)]
		t := time.Now()
		h.Kill()
		for capacity().Max > left-perHost {
			time.Sleep(5 * time.Millisecond)
		}
		lost = append(lost, time.Since(t))
		left -= perHost
	}
	poll := 5 * time.Second // cc's defaultInterval: a cluster at rest
	fmt.Printf("| from a node controller dying to the zone's max without it, median of %d, vs the poll interval at rest | %v | %v | %.2f |\n",
		kills, pct(lost, 50), poll, ratio(pct(lost, 50), poll))
	fmt.Printf("\n(all %d deaths: %s)\n", kills, durations(lost))
	return nil
}

// localRemote launches one instance at a time on the front-end's own node
// and on a remote one (GREEDY over [local, remote], each with room for
// one: the first launch of a round takes the local node, the second the
// remote), and prints the medians from RunInstances to running.
func localRemote(dir string, rounds int) error {
	ctx := context.Background()
	c, err := simcloud.Start(ctx, simcloud.Options{Dir: dir, Nodes: 2, Local: true, Policy: "GREEDY",
		Host: hypervisor.Resources{Cores: small.Cores, MemoryMiB: small.MemoryMiB, DiskGiB: small.DiskGiB}})
	if err != nil {
		return err
	}
	defer c.Close()
	zone := c.CLC.Zones()[0]
	free := func() int {
		all, _, err := c.CLC.ZoneCapacity(ctx, c.Admin)
		if err != nil {
			log.Fatal(err)
		}
		return all[zone]["m1.small"].Free
	}
	launch := func() (string, time.Duration, error) {
		t := time.Now()
		insts, err := c.CLC.RunInstances(ctx, c.Admin, store.LaunchSpec{ImageID: c.Image, InstanceType: "m1.small", MinCount: 1, MaxCount: 1})
		if err != nil {
			return "", 0, err
		}
		for {
			got, err := c.CLC.DescribeInstances(ctx, c.Admin, []string{insts[0].ID})
			if err != nil {
				return "", 0, err
			}
			if len(got) == 1 && got[0].State == store.InstanceRunning {
				return got[0].Node, time.Since(t), nil
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var local, remote []time.Duration
	for range rounds {
		for free() != 2 {
			time.Sleep(20 * time.Millisecond)
		}
		node, d, err := launch()
		if err != nil {
			return err
		}
		if node != cc.LocalNode {
			return fmt.Errorf("first launch of a round on %q, want the local node", node)
		}
		local = append(local, d)
		node, d, err = launch()
		if err != nil {
			return err
		}
		if node != c.Hosts[1].Name {
			return fmt.Errorf("second launch of a round on %q, want %s", node, c.Hosts[1].Name)
		}
		remote = append(remote, d)
		all, err := c.CLC.DescribeInstances(ctx, c.Admin, nil)
		if err != nil {
			return err
		}
		var ids []string
		for _, in := range all {
			if in.State != store.InstanceTerminated {
				ids = append(ids, in.ID)
			}
		}
		if _, err := c.CLC.TerminateInstances(ctx, c.Admin, ids); err != nil {
			return err
		}
	}
	fmt.Println("| measurement | euca | baseline | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| RunInstances to running on a remote node (node API, mutual TLS, loopback), vs on the front-end's own node, medians of %d | %v | %v | %.2f |\n\n",
		rounds, pct(remote, 50), pct(local, 50), ratio(pct(remote, 50), pct(local, 50)))
	fmt.Printf("(remote: %s; local: %s)\n\n", durations(remote), durations(local))
	return nil
}

// policyRate places instances one request at a time on a snapshot of hosts
// nodes, as the cluster controller calls a policy, and returns placements
// per second.
func policyRate(name string, hosts, perHost, instances int) (float64, error) {
	policy, err := sched.Lookup(name)
	if err != nil {
		return 0, err
	}
	room := ncapi.Resources{Cores: perHost * small.Cores, MemoryMiB: perHost * small.MemoryMiB, DiskGiB: perHost * small.DiskGiB}
	snap := sched.Snapshot{Nodes: make([]sched.Node, hosts)}
	for i := range snap.Nodes {
		snap.Nodes[i] = sched.Node{Name: fmt.Sprintf("sim-%04d", i), Up: true, Free: room}
	}
	index := map[string]int{}
	for i, nd := range snap.Nodes {
		index[nd.Name] = i
	}
	t := time.Now()
	for i := range instances {
		p, err := policy(snap, []sched.Request{{ID: fmt.Sprintf("i-%d", i), Needs: small}})
		if err != nil {
			return 0, err
		}
		k := index[p.Assign[0].Node]
		snap.Nodes[k].Free = snap.Nodes[k].Free.Sub(small)
		snap.Last = p.Last
	}
	return float64(instances) / time.Since(t).Seconds(), nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i, len(s))-1)].Round(time.Millisecond / 10)
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func durations(d []time.Duration) string {
	var s []string
	for _, x := range d {
		s = append(s, x.Round(time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}
