package simcloud

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
)

// small is m1.small as the store's defaults make it.
var small = hypervisor.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2}

// scaleSize is the scale test's size: 500 hosts always; 2 instances a host
// (1,000) by default, which CI runs in about a minute on 2 cores, or
// EUCA_SCALE_PER_HOST a host (10 for the 5,000: a few minutes,
// most of them the node controllers making each instance's disks with
// qemu-img and mkfs.ext4, as a real launch does).
func scaleSize(t *testing.T) (hosts, perHost int) {
	hosts, perHost = 500, 2
	if v := os.Getenv("EUCA_SCALE_HOSTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EUCA_SCALE_HOSTS=%q: want a positive number", v)
		}
		hosts = n
	}
	if v := os.Getenv("EUCA_SCALE_PER_HOST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EUCA_SCALE_PER_HOST=%q: want a positive number", v)
		}
		perHost = n
	}
	return hosts, perHost
}

// TestScale fills a cluster of hundreds of simulated hosts, each its own
// node controller on its own mutual-TLS endpoint, through the cloud
// controller's RunInstances, and checks DescribeInstances and the zone's
// free/max (DescribeAvailabilityZones verbose) after every round, the
// MinCount/MaxCount rule at the last free slots, that no host is ever
// over-committed, and that every instance ends running.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("the scale test starts hundreds of node controllers")
	}
	needTools(t)
	hosts, perHost := scaleSize(t)
	total := hosts * perHost
	ctx := context.Background()
	c, err := Start(ctx, Options{Dir: t.TempDir(), Nodes: hosts, Policy: "ROUNDROBIN",
		Host: hypervisor.Resources{Cores: perHost * small.Cores, MemoryMiB: perHost * small.MemoryMiB, DiskGiB: perHost * small.DiskGiB}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	phase := func(what string) { t.Logf("%s: %v", what, time.Since(began).Round(time.Millisecond)) }
	phase("started")
	zone := c.CLC.Zones()[0]

	capacity := func() store.VMTypeCapacity {
		t.Helper()
		all, visible, err := c.CLC.ZoneCapacity(ctx, c.Admin)
		if err != nil || !visible {
			t.Fatalf("zone capacity: %v (visible %v)", err, visible)
		}
		return all[zone]["m1.small"]
	}
	launched := 0
	check := func(when string) {
		t.Helper()
		insts, err := c.CLC.DescribeInstances(ctx, c.Admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(insts) != launched {
			t.Fatalf("%s: DescribeInstances lists %d, want %d", when, len(insts), launched)
		}
		if got := capacity(); got.Max != total || got.Free != total-launched {
			t.Fatalf("%s: m1.small free/max %d/%d, want %d/%d", when, got.Free, got.Max, total-launched, total)
		}
	}
	// The first poll of every host.
	waitFor(t, "every host polled", func() bool { return capacity().Max == total })
	check("before any launch")
	phase("every host polled")

	run := func(minCount, maxCount int) ([]store.Instance, error) {
		return c.CLC.RunInstances(ctx, c.Admin, store.LaunchSpec{ImageID: c.Image, InstanceType: "m1.small", MinCount: minCount, MaxCount: maxCount})
	}
	// Rounds of concurrent launches, up to three short of full.
	const clients, batch = 4, 25
	for launched < total-3 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		left := total - 3 - launched
		for range clients {
			n := min(batch, left)
			left -= n
			if n == 0 {
				break
			}
			wg.Go(func() {
				insts, err := run(n, n)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				launched += len(insts)
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("after %d launched: %v", launched, errs)
		}
		check(fmt.Sprintf("after %d launched", launched))
	}
	// Three slots left: MinCount 5 starts nothing; MaxCount 10 starts the
	// three that fit; then the cluster is full.
	if _, err := run(5, 10); !isCode(err, "InsufficientInstanceCapacity") {
		t.Fatalf("MinCount 5 with 3 free: %v", err)
	}
	check("after a launch refused for MinCount")
	insts, err := run(1, 10)
	if err != nil || len(insts) != 3 {
		t.Fatalf("MaxCount 10 with 3 free: %d started, %v", len(insts), err)
	}
	launched += 3
	check("full")
	phase("full")
	if _, err := run(1, 1); !isCode(err, "InsufficientInstanceCapacity") {
		t.Fatalf("full cluster: %v", err)
	}

	// Every host holds at most what it has, and every instance is one of
	// the cloud's.
	held := 0
	for _, h := range c.Hosts {
		st, err := h.Node.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Free.Cores < 0 || st.Free.MemoryMiB < 0 || st.Free.DiskGiB < 0 {
			t.Fatalf("host %s over-committed: free %+v", h.Name, st.Free)
		}
		held += len(st.Instances)
	}
	if held != total {
		t.Fatalf("the hosts hold %d instances, want %d", held, total)
	}
	waitFor(t, "every instance running", func() bool {
		insts, err := c.CLC.DescribeInstances(ctx, c.Admin, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range insts {
			if in.State != store.InstanceRunning {
				return false
			}
		}
		return len(insts) == total
	})
	check("all running")
	phase("all running")
}

func isCode(err error, code string) bool {
	e, ok := awserr.As(err)
	return ok && e.Code == code
}

// waitFor polls cond; the limit bounds a stuck cloud, it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// needTools skips (fails under CI) without the tools a node makes its
// disks with.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (CI installs qemu-utils, e2fsprogs)", tool)
			}
			t.Skipf("%s is not installed: the node makes its disks with it", tool)
		}
	}
}
