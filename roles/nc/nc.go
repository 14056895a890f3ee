// Package nc is the node controller: one per compute host, it runs the
// instances its cluster controller places there, through a hypervisor.Driver,
// and implements ncapi.Node.
//
// The store (table nc_instances) is the truth about this node's instances;
// the hypervisor's domains and the files under INSTANCE_PATH are brought
// towards it. The life of an instance:
//
//	RunInstance     validate; refuse what does not fit (MAX_CORES, MAX_MEM,
//	                MAX_DISK cap the host) with nothing written; record it
//	                pending; return. In the background:
//	  launch        fetch kernel, ramdisk and machine image through the image
//	                cache (pinned while the instance lives), and in parallel make
//	                INSTANCE_PATH/<id>/: root.qcow2 (a copy-on-write overlay of
//	                the cached image, never a copy), ephemeral.img (Holds.DiskGiB),
//	                swap.img (SWAP_SIZE); record the spec (the files); Driver.Start
//	                with one NIC on the request's bridge and MAC; running.
//	                Any failure: failed, with the reason, and nothing left behind.
//	AttachVolume    serve the volume on a unix socket in the instance's
//	DetachVolume    directory (a proxy to its storage controller), then
//	                hot-plug it; unplug, then stop serving (volumes.go).
//	StopInstance    as TerminateInstance, with the guest asked to power off
//	                first, and then forgotten: an EBS-backed instance's id
//	                may run again, here or on another node.
//	TerminateInstance  shutting-down; the launch in progress is cancelled;
//	                Driver.Destroy; the console kept in memory; images unpinned;
//	                the directory removed (kept with MANUAL_INSTANCES_CLEANUP=1);
//	                terminated. Terminated and failed instances are reported
//	                for Retention, then forgotten.
//
// Reconcile, at start (New) and every ReconcileInterval (Run), adopts what
// runs, in the manner of nomad's RecoverTask: a domain the store wants is
// taken over as it is, never restarted or duplicated; a domain it does not
// want is destroyed; an instance recorded running whose domain is gone is
// failed (as EC2 does, an instance its host lost is gone: the cloud does
// not silently boot a fresh copy of a disk the guest may have half written);
// one the guest powered off itself is terminated (instance-store
// semantics); a launch cut short by a restart is resumed (its files are made
// idempotently, Driver.Start is harmless twice); a termination cut short is
// finished; leftover directories of instances gone are removed.
package nc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/nc/imagecache"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// ImageSource gives the plain (decrypted) bytes of an image the node must
// boot from: Walrus in-process when the roles share a process, its HTTP
// client otherwise. The node verifies what it reads against ref.SHA256.
type ImageSource interface {
	Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error)
}

// ImageSourceFunc adapts a function to ImageSource, so the roles' wiring
// can hand Walrus's image service over without a type of its own.
type ImageSourceFunc func(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error)

func (f ImageSourceFunc) Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
	return f(ctx, ref)
}

// Retention is how long terminated and failed instances are still reported
// before they are forgotten.
const Retention = time.Hour

// ReconcileInterval is how often Run compares the hypervisor with the store.
const ReconcileInterval = 5 * time.Second

// CacheDir is the image cache's directory inside INSTANCE_PATH; instance
// directories are named after instance ids ("i-…"), so it cannot clash.
const CacheDir = "cache"

// Files of an instance directory.
const (
	rootFile      = "root.qcow2"
	ephemeralFile = "ephemeral.img"
	swapFile      = "swap.img"
	consoleFile   = "console.log"
)

// Node is a node controller. It implements ncapi.Node.
type Node struct {
	cfg   *conf.Config
	st    *store.Store
	drv   hypervisor.Driver
	cache *imagecache.Cache
	log   *slog.Logger
	dir   string // INSTANCE_PATH
	host  string

	version atomic.Pointer[string] // the euca version, reported in Describe

	// Launches run under bg, so a RunInstance call that returns does not
	// cancel its launch; Run cancels it when it stops.
	bg     context.Context
	stopBG context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	insts map[string]*instance
	max   ncapi.Resources

	volTLS     *tls.Config   // how the node reaches storage controllers (volumes.go)
	proxyRetry time.Duration // how long a volume's request is retried (0: nbd's default)

	network nodeNetwork // the cluster's network on this host (network.go)
	ports   nodePorts   // its guests' ports (ports.go)

	// Tests replace these.
	now       func() time.Time
	retention time.Duration
	interval  time.Duration
}

// instance is one instance in memory, mirroring its row.
type instance struct {
	id, dir string // never change: read without a lock
	req     ncapi.InstanceRequest

	// rec, cancel and console are guarded by Node.mu.
	rec     store.NCInstance
	cancel  context.CancelFunc // the launch in progress, if any
	console []byte             // the console's end, kept when the files go
	learned netip.Addr         // the address its DHCP server gave it (SYSTEM); the record's request holds it too
	vols    map[string]*volume // its EBS volumes, by id (volumes.go)

	// op serializes the steps that touch the guest and its files (launch,
	// teardown, reboot); pins is guarded by it.
	op   sync.Mutex
	pins []*imagecache.Handle
}

var _ ncapi.Node = (*Node)(nil)

// New opens the node: its image cache under INSTANCE_PATH/cache, its
// instances from the store, and reconciles the hypervisor with them (see the
// package comment). Launches it resumes start at once; call Run for the
// periodic reconcile and to stop background work cleanly.
func New(ctx context.Context, cfg *conf.Config, st *store.Store, drv hypervisor.Driver, images ImageSource, log *slog.Logger) (*Node, error) {
	if images == nil {
		return nil, errors.New("nc: no image source")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.InstancePath == "" || !filepath.IsAbs(cfg.InstancePath) {
		return nil, fmt.Errorf("nc: INSTANCE_PATH %q: want an absolute path", cfg.InstancePath)
	}
	if err := os.MkdirAll(cfg.InstancePath, 0o755); err != nil {
		return nil, fmt.Errorf("nc: INSTANCE_PATH: %w", err)
	}
	cache, err := imagecache.Open(ctx, imagecache.Options{
		Dir:    filepath.Join(cfg.InstancePath, CacheDir),
		Limit:  int64(cfg.NCCacheSizeMB) << 20,
		Source: images,
		Log:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("nc: %w", err)
	}
	host, _ := os.Hostname()
	n := &Node{cfg: cfg, st: st, drv: drv, cache: cache, log: log, dir: cfg.InstancePath, host: host,
		insts: map[string]*instance{}, now: time.Now, retention: Retention, interval: ReconcileInterval}
	n.bg, n.stopBG = context.WithCancel(context.WithoutCancel(ctx))
	if err := n.refreshCapacity(ctx); err != nil {
		cache.Close()
		return nil, err
	}
	if !cache.Enabled() {
		log.InfoContext(ctx, "image cache disabled (NC_CACHE_SIZE=0): each instance gets its own copy")
	}
	if err := n.recover(ctx); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// Run reconciles every ReconcileInterval until ctx ends, then cancels the
// launches in progress (they resume at the next start), waits for them and
// closes the image cache. Guests keep running. Call it once.
func (n *Node) Run(ctx context.Context) error {
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			n.stop()
			return nil
		case <-t.C:
			if n.awake() != nil {
				continue // asleep: nothing runs on a host that is off
			}
			if err := n.Reconcile(ctx); err != nil {
				n.log.WarnContext(ctx, "reconcile", "error", err)
			}
			n.reconcileVolumes(ctx)
			n.syncPorts(ctx) // a failure is logged; tried again next round
			n.reapplyNetwork(ctx)
		}
	}
}

func (n *Node) stop() {
	n.once.Do(func() {
		n.mu.Lock()
		n.stopBG() // under mu: no launch is added once Wait may run
		n.mu.Unlock()
		n.wg.Wait()
		n.cache.Close()
		// The volumes' sockets go with the process, as they would with
		// its exit; the guests keep running, and the next start serves
		// their volumes again.
		n.mu.Lock()
		var vols []*volume
		for _, in := range n.insts {
			vols = append(vols, volumesOf(in)...)
		}
		n.mu.Unlock()
		for _, v := range vols {
			n.unserve(v)
		}
	})
}

// refreshCapacity reads the host's capacity and applies the caps.
func (n *Node) refreshCapacity(ctx context.Context) error {
	h, err := n.drv.Capacity(ctx)
	if err != nil {
		return fmt.Errorf("nc: host capacity: %w", err)
	}
	m := capped(h, n.cfg)
	n.mu.Lock()
	n.max = m
	n.mu.Unlock()
	return nil
}

// capped is what the node offers: the host, lowered by MAX_CORES, MAX_MEM
// and MAX_DISK where they are set (0: the whole host).
func capped(h hypervisor.Resources, cfg *conf.Config) ncapi.Resources {
	r := ncapi.Resources{Cores: h.Cores, MemoryMiB: h.MemoryMiB, DiskGiB: h.DiskGiB}
	lower := func(v *int, limit int) {
		if limit > 0 && limit < *v {
			*v = limit
		}
	}
	lower(&r.Cores, cfg.MaxCores)
	lower(&r.MemoryMiB, cfg.MaxMemMB)
	lower(&r.DiskGiB, cfg.MaxDiskGB)
	return r
}

// holds reports whether an instance in state s holds capacity: from
// acceptance until its guest and files are gone.
func holds(s string) bool {
	return s == ncapi.StatePending || s == ncapi.StateRunning || s == ncapi.StateShuttingDown
}

// usedLocked sums what the instances hold; the caller holds n.mu.
func (n *Node) usedLocked() ncapi.Resources {
	var u ncapi.Resources
	for _, in := range n.insts {
		if holds(in.rec.State) {
			u.Cores += in.req.Holds.Cores
			u.MemoryMiB += in.req.Holds.MemoryMiB
			u.DiskGiB += in.req.Holds.DiskGiB
		}
	}
	return u
}

// awake fails with hypervisor.ErrAsleep while the host is powered down
// (a hypervisor.Sleeper asleep): a host that is off answers no call, so
// the node's API answers none either.
func (n *Node) awake() error {
	if s, ok := n.drv.(hypervisor.Sleeper); ok && s.Asleep() {
		return fmt.Errorf("node %s: %w", n.host, hypervisor.ErrAsleep)
	}
	return nil
}

// SetVersion sets the euca version the node reports in Describe (main's,
// which the roles pass down), for `euca node list`.
func (n *Node) SetVersion(v string) { n.version.Store(&v) }

var _ ncapi.PowerDowner = (*Node)(nil)

// PowerDown puts the host to sleep, as the cluster asks of an idle node
// under POWERSAVE (Eucalyptus's ncPowerDown), when the driver can: the sim
// driver's host can; a real host cannot yet (ncapi.ErrUnsupported). A host
// with an instance that holds resources is never put to sleep.
func (n *Node) PowerDown(ctx context.Context) error {
	s, ok := n.drv.(hypervisor.Sleeper)
	if !ok {
		return fmt.Errorf("%w: the %s driver cannot power this host down", ncapi.ErrUnsupported, n.drv.Name())
	}
	if err := n.awake(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock() // held: no instance is accepted meanwhile
	for _, in := range n.insts {
		if holds(in.rec.State) {
			return fmt.Errorf("%w: instance %s is %s", ncapi.ErrIncorrectState, in.id, in.rec.State)
		}
	}
	if err := s.PowerOff(); err != nil {
		return fmt.Errorf("power down: %w", err)
	}
	n.log.InfoContext(ctx, "host powered down for POWERSAVE: answering nothing until woken")
	return nil
}

// Describe reports capacity and every instance the node knows, oldest first.
func (n *Node) Describe(ctx context.Context) (ncapi.NodeStatus, error) {
	if err := n.awake(); err != nil {
		return ncapi.NodeStatus{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s := ncapi.NodeStatus{Host: n.host, Driver: n.drv.Name(), Max: n.max, Free: n.max.Sub(n.usedLocked()),
		Instances: []ncapi.InstanceStatus{}, Network: n.networkVersion()}
	if v := n.version.Load(); v != nil {
		s.Version = *v
	}
	for _, in := range n.sortedLocked() {
		is := ncapi.InstanceStatus{ID: in.rec.ID, State: in.rec.State, Reason: in.rec.Reason, Holds: in.req.Holds, PrivateIP: in.addrLocked(),
			Volumes: volumeStatusesLocked(in)}
		if in.rec.LaunchedMS > 0 {
			is.LaunchedAt = store.Time(in.rec.LaunchedMS)
		}
		s.Instances = append(s.Instances, is)
	}
	return s, nil
}

func (n *Node) sortedLocked() []*instance {
	out := make([]*instance, 0, len(n.insts))
	for _, in := range n.insts {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].rec.CreatedMS != out[j].rec.CreatedMS {
			return out[i].rec.CreatedMS < out[j].rec.CreatedMS
		}
		return out[i].rec.ID < out[j].rec.ID
	})
	return out
}

// setState records a new state (and reason, when not "") in the store and
// then in memory; the caller holds n.mu. Store writes are not cancelled
// with the request that caused them.
func (n *Node) setStateLocked(ctx context.Context, in *instance, state, reason string) error {
	rec := in.rec
	rec.State = state
	if reason != "" {
		rec.Reason = reason
	}
	return n.writeLocked(ctx, in, rec)
}

func (n *Node) writeLocked(ctx context.Context, in *instance, rec store.NCInstance) error {
	t, err := n.st.NCUpdateInstance(context.WithoutCancel(ctx), rec)
	if err != nil {
		return fmt.Errorf("record instance %s %s: %w", rec.ID, rec.State, err)
	}
	rec.UpdatedMS = t
	in.rec = rec
	return nil
}

func (n *Node) setState(ctx context.Context, in *instance, state, reason string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.setStateLocked(ctx, in, state, reason)
}

func (n *Node) state(in *instance) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return in.rec.State
}

// request decodes a stored request.
func request(rec store.NCInstance) (ncapi.InstanceRequest, error) {
	var r ncapi.InstanceRequest
	err := json.Unmarshal([]byte(rec.Request), &r)
	return r, err
}
