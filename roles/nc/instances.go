package nc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/disk"
	"github.com/euca-cloud/euca/internal/reqid"
	"github.com/euca-cloud/euca/netmode/link"
	"github.com/euca-cloud/euca/roles/nc/imagecache"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// instanceIDRE is what an instance id must look like: it names a directory.
var instanceIDRE = regexp.MustCompile(`^i-[0-9a-z]{1,32}$`)

// check reports what is wrong with a request, before anything is accepted.
func check(req ncapi.InstanceRequest) error {
	if !instanceIDRE.MatchString(req.ID) {
		return fmt.Errorf("instance id %q: want i- and up to 32 lower-case letters or digits", req.ID)
	}
	h := req.Holds
	if h.Cores < 1 || h.MemoryMiB < 16 || h.DiskGiB < 0 {
		return fmt.Errorf("instance %s: holds %d cores, %d MiB, %d GiB: want at least 1 core and 16 MiB", req.ID, h.Cores, h.MemoryMiB, h.DiskGiB)
	}
	boot := 0
	seen := map[string]bool{}
	for _, a := range req.Volumes {
		if err := checkAttachment(a); err != nil {
			return fmt.Errorf("instance %s: %w", req.ID, err)
		}
		if seen[a.VolumeID] {
			return fmt.Errorf("instance %s: volume %s given twice", req.ID, a.VolumeID)
		}
		seen[a.VolumeID] = true
		if a.Boot {
			boot++
		}
	}
	switch {
	case boot > 1:
		return fmt.Errorf("instance %s: %d boot volumes: want at most one", req.ID, boot)
	case boot == 1 && req.Image != (ncapi.ImageRef{}):
		return fmt.Errorf("instance %s: both an image and a boot volume", req.ID)
	case boot == 0:
		if err := imagecache.CheckRef(req.Image); err != nil {
			return err
		}
	}
	for _, r := range []*ncapi.ImageRef{req.Kernel, req.Ramdisk} {
		if r != nil {
			if err := imagecache.CheckRef(*r); err != nil {
				return err
			}
		}
	}
	if req.Ramdisk != nil && req.Kernel == nil {
		return fmt.Errorf("instance %s: a ramdisk needs a kernel", req.ID)
	}
	if req.MAC != "" {
		hw, err := net.ParseMAC(req.MAC)
		if err != nil || len(hw) != 6 || hw[0]&1 == 1 {
			return fmt.Errorf("instance %s: mac %q: want a unicast aa:bb:cc:dd:ee:ff", req.ID, req.MAC)
		}
	}
	if len(req.Bridge) > 15 {
		return fmt.Errorf("instance %s: bridge %q: interface names are at most 15 bytes", req.ID, req.Bridge)
	}
	return nil
}

// RunInstance accepts an instance and launches it in the background.
func (n *Node) RunInstance(ctx context.Context, req ncapi.InstanceRequest) error {
	if err := n.awake(); err != nil {
		return err
	}
	if err := check(req); err != nil {
		return fmt.Errorf("%w: %v", ncapi.ErrBadRequest, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if in, ok := n.insts[req.ID]; ok {
		n.log.InfoContext(ctx, "instance already known: nothing started", "instance", req.ID, "state", in.rec.State)
		return nil
	}
	if n.bg.Err() != nil {
		return fmt.Errorf("instance %s: the node controller is stopping", req.ID)
	}
	free := n.max.Sub(n.usedLocked())
	if !free.Fits(req.Holds) {
		return fmt.Errorf("%w: instance %s needs %d cores, %d MiB, %d GiB; free: %d cores, %d MiB, %d GiB",
			ncapi.ErrNoCapacity, req.ID, req.Holds.Cores, req.Holds.MemoryMiB, req.Holds.DiskGiB,
			free.Cores, free.MemoryMiB, free.DiskGiB)
	}
	js, err := json.Marshal(req)
	if err != nil {
		return err
	}
	t := n.now().UnixMilli()
	rec := store.NCInstance{ID: req.ID, Request: string(js), State: ncapi.StatePending,
		Dir: filepath.Join(n.dir, req.ID), CreatedMS: t, UpdatedMS: t}
	if err := n.st.NCCreateInstance(context.WithoutCancel(ctx), rec); err != nil {
		if errors.Is(err, store.ErrConflict) { // recorded but not in memory: cannot happen, but harmless
			return nil
		}
		return fmt.Errorf("instance %s: %w", req.ID, err)
	}
	in := &instance{id: req.ID, dir: rec.Dir, req: req, rec: rec}
	n.insts[req.ID] = in
	n.log.InfoContext(ctx, "instance accepted", "instance", req.ID, "vm_type", req.VMType, "image", req.Image.ID,
		"cores", req.Holds.Cores, "memory_mib", req.Holds.MemoryMiB, "disk_gib", req.Holds.DiskGiB)
	n.startLaunchLocked(ctx, in)
	return nil
}

// startLaunchLocked starts in's launch in the background, carrying the
// request id of ctx; the caller holds n.mu.
func (n *Node) startLaunchLocked(ctx context.Context, in *instance) {
	if n.bg.Err() != nil {
		return // stopping: the launch resumes at the next start
	}
	lctx, cancel := context.WithCancel(reqid.With(n.bg, reqid.From(ctx)))
	in.cancel = cancel
	n.wg.Add(1)
	go n.launch(lctx, cancel, in)
}

// launch prepares in's files and boots it.
func (n *Node) launch(ctx context.Context, cancel context.CancelFunc, in *instance) {
	defer n.wg.Done()
	defer cancel()
	in.op.Lock()
	defer in.op.Unlock()
	defer func() {
		n.mu.Lock()
		in.cancel = nil
		n.mu.Unlock()
	}()
	if n.state(in) != ncapi.StatePending {
		return
	}
	id := in.id
	start := time.Now()
	spec, err := n.prepare(ctx, in)
	if err == nil && len(in.req.Volumes) > 0 {
		// Served before the guest boots: QEMU opens them at once.
		spec.Volumes, err = n.launchVolumes(ctx, in)
	}
	if err == nil {
		err = n.recordSpec(ctx, in, spec)
	}
	var dom hypervisor.Domain
	if err == nil {
		// Its port is guarded before its guest can send a frame, or the
		// guest does not start.
		if err = n.syncPorts(ctx); err == nil {
			dom, err = n.drv.Start(ctx, spec)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// Terminated meanwhile (the terminator tears down) or the node
			// is stopping (the launch resumes at the next start).
			n.unpin(in)
			n.log.InfoContext(ctx, "launch interrupted", "instance", id, "error", err)
			return
		}
		n.fail(ctx, in, err)
		return
	}
	n.launchedVolumes(ctx, in)
	n.mu.Lock()
	defer n.mu.Unlock()
	if in.rec.State != ncapi.StatePending {
		return // being terminated: the domain goes with the teardown
	}
	rec := in.rec
	rec.State = ncapi.StateRunning
	rec.LaunchedMS = dom.StartedAt.UnixMilli()
	if dom.StartedAt.IsZero() {
		rec.LaunchedMS = n.now().UnixMilli()
	}
	if err := n.writeLocked(ctx, in, rec); err != nil {
		n.log.ErrorContext(ctx, "instance running but not recorded", "instance", id, "error", err)
		return
	}
	n.log.InfoContext(ctx, "instance running", "instance", id, "driver", n.drv.Name(), "accel", dom.Spec.Accel,
		"took", time.Since(start).Round(time.Millisecond))
}

// prepare fetches in's images and makes its files, in parallel, and returns
// the spec to boot. Each file is made only if missing, so a launch resumed
// after a restart finishes what the first attempt began.
func (n *Node) prepare(ctx context.Context, in *instance) (hypervisor.InstanceSpec, error) {
	req := in.req
	dir := in.dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return hypervisor.InstanceSpec{}, err
	}
	spec := hypervisor.InstanceSpec{
		ID:            req.ID,
		Cores:         req.Holds.Cores,
		MemoryMiB:     req.Holds.MemoryMiB,
		KernelCmdline: req.KernelCmdline,
		RootDisk:      hypervisor.Disk{Path: filepath.Join(dir, rootFile), Format: hypervisor.QCOW2},
		ConsoleLog:    filepath.Join(dir, consoleFile),
	}
	bootVolume := req.Image == (ncapi.ImageRef{})
	if bootVolume { // an EBS-backed instance boots from its volume (launchVolumes)
		spec.RootDisk = hypervisor.Disk{}
	}
	if br := n.bridge(req); br != "" {
		spec.NICs = []hypervisor.NIC{{Bridge: br, MAC: req.MAC, Tap: link.PortName(req.ID)}}
	}
	if req.Platform == "ec2" {
		spec.SysInfo = ec2SysInfo(req.ID)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	step := func(what string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", what, err)
					cancel() // the other steps are wasted work now
				}
				mu.Unlock()
			}
		}()
	}
	get := func(ref ncapi.ImageRef) (string, error) {
		h, err := n.cache.Get(ctx, ref, dir)
		if err != nil {
			return "", err
		}
		mu.Lock()
		in.pins = append(in.pins, h)
		mu.Unlock()
		return h.Path, nil
	}
	if !bootVolume {
		step("machine image", func() error {
			base, err := get(req.Image)
			if err != nil {
				return err
			}
			return made(disk.NewOverlay(ctx, base, spec.RootDisk.Path))
		})
	}
	if req.Kernel != nil {
		step("kernel", func() (err error) { spec.Kernel, err = get(*req.Kernel); return err })
	}
	if req.Ramdisk != nil {
		step("ramdisk", func() (err error) { spec.Ramdisk, err = get(*req.Ramdisk); return err })
	}
	if req.Holds.DiskGiB > 0 {
		spec.EphemeralDisk = hypervisor.Disk{Path: filepath.Join(dir, ephemeralFile), Format: hypervisor.Raw}
		step("ephemeral disk", func() error {
			return made(disk.NewEphemeral(ctx, spec.EphemeralDisk.Path, req.Holds.DiskGiB))
		})
	}
	if n.cfg.SwapSizeMB > 0 {
		spec.SwapDisk = hypervisor.Disk{Path: filepath.Join(dir, swapFile), Format: hypervisor.Raw}
		step("swap disk", func() error { return made(disk.NewSwap(ctx, spec.SwapDisk.Path, n.cfg.SwapSizeMB)) })
	}
	wg.Wait()
	return spec, first
}

// made treats a file that exists already as made: the disk package writes
// each file whole or not at all, so one that exists is one a previous
// attempt finished.
func made(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// ec2SysInfo makes the guest's SMBIOS say EC2 (cloud-init then uses its EC2
// datasource): the serial is a UUID starting "ec2", derived from the id.
func ec2SysInfo(id string) hypervisor.SysInfo {
	sum := sha256.Sum256([]byte(id))
	h := "ec2" + hex.EncodeToString(sum[:])[3:32]
	return hypervisor.SysInfo{Manufacturer: "Amazon EC2", Product: "euca",
		Serial: h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]}
}

func (n *Node) recordSpec(ctx context.Context, in *instance, spec hypervisor.InstanceSpec) error {
	js, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rec := in.rec
	rec.Spec = string(js)
	return n.writeLocked(ctx, in, rec)
}

// fail ends a launch that could not finish: failed with the reason, the
// guest and files gone; the caller holds in.op.
func (n *Node) fail(ctx context.Context, in *instance, cause error) {
	id := in.id
	n.log.WarnContext(ctx, "instance failed", "instance", id, "error", cause)
	// Torn down first: an instance reported failed holds nothing.
	if err := n.teardown(context.WithoutCancel(ctx), in); err != nil {
		n.log.ErrorContext(ctx, "cleaning up a failed instance", "instance", id, "error", err)
	}
	if err := n.setState(ctx, in, ncapi.StateFailed, cause.Error()); err != nil {
		n.log.ErrorContext(ctx, "recording a failure", "instance", id, "error", err)
	}
}

// teardown destroys in's domain, keeps the end of its console, unpins its
// images and removes its directory (unless MANUAL_INSTANCES_CLEANUP); the
// caller holds in.op. Harmless twice.
func (n *Node) teardown(ctx context.Context, in *instance) error {
	id := in.id
	if err := n.drv.Destroy(ctx, id); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if err := n.releaseVolumes(ctx, in); err != nil {
		return err
	}
	dir := in.dir
	if b, err := hypervisor.ReadConsoleFile(filepath.Join(dir, consoleFile)); err == nil && len(b) > 0 {
		n.mu.Lock()
		in.console = b
		n.mu.Unlock()
	}
	n.unpin(in)
	return n.removeDir(ctx, id, dir)
}

// removeDir removes an instance directory, or says where it was kept.
func (n *Node) removeDir(ctx context.Context, id, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if n.cfg.ManualInstancesCleanup {
		n.log.InfoContext(ctx, "keeping the files of a finished instance (MANUAL_INSTANCES_CLEANUP=1): remove them by hand",
			"instance", id, "dir", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove files of %s: %w", id, err)
	}
	return nil
}

// unpin releases in's images; the caller holds in.op.
func (n *Node) unpin(in *instance) {
	for _, h := range in.pins {
		h.Release()
	}
	in.pins = nil
}

// TerminateInstance stops an instance and frees what it held. It returns
// when the instance is terminated; a failure to destroy leaves it
// shutting-down, and the reconcile loop tries again.
func (n *Node) TerminateInstance(ctx context.Context, id string) error {
	if err := n.awake(); err != nil {
		return err
	}
	n.mu.Lock()
	in := n.insts[id]
	if in == nil || in.rec.State == ncapi.StateTerminated {
		n.mu.Unlock()
		return nil
	}
	if in.rec.State != ncapi.StateShuttingDown {
		if err := n.setStateLocked(ctx, in, ncapi.StateShuttingDown, ""); err != nil {
			n.mu.Unlock()
			return err
		}
	}
	if in.cancel != nil {
		in.cancel() // a launch in progress stops; teardown waits for it below
	}
	n.mu.Unlock()
	n.log.InfoContext(ctx, "terminating instance", "instance", id)
	return n.finishTerminate(context.WithoutCancel(ctx), in)
}

// finishTerminate tears in down and records it terminated.
func (n *Node) finishTerminate(ctx context.Context, in *instance) error {
	in.op.Lock()
	defer in.op.Unlock()
	return n.finishTerminateOp(ctx, in, "")
}

// finishTerminateOp is finishTerminate for a caller that holds in.op.
func (n *Node) finishTerminateOp(ctx context.Context, in *instance, reason string) error {
	if n.state(in) == ncapi.StateTerminated {
		return nil
	}
	if err := n.teardown(ctx, in); err != nil {
		return err
	}
	if err := n.setState(ctx, in, ncapi.StateTerminated, reason); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "instance terminated", "instance", in.id)
	n.syncPorts(ctx) // a failure is logged; the next reconcile tries again
	return nil
}

// RebootInstance resets a running instance's guest.
func (n *Node) RebootInstance(ctx context.Context, id string) error {
	if err := n.awake(); err != nil {
		return err
	}
	in, err := n.get(id)
	if err != nil {
		return err
	}
	// Checked before waiting for in.op too: a pending instance's launch
	// may hold it for a whole download.
	if s := n.state(in); s != ncapi.StateRunning {
		return fmt.Errorf("%w: instance %s is %s", ncapi.ErrIncorrectState, id, s)
	}
	in.op.Lock()
	defer in.op.Unlock()
	if s := n.state(in); s != ncapi.StateRunning {
		return fmt.Errorf("%w: instance %s is %s", ncapi.ErrIncorrectState, id, s)
	}
	if err := n.drv.Reboot(ctx, id); err != nil {
		if errors.Is(err, hypervisor.ErrNotRunning) || errors.Is(err, hypervisor.ErrNotFound) {
			return fmt.Errorf("%w: instance %s: %v", ncapi.ErrIncorrectState, id, err)
		}
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	n.log.InfoContext(ctx, "instance rebooted", "instance", id)
	return nil
}

// ConsoleOutput returns the end of the instance's serial console: from the
// hypervisor while the domain exists, from the file before it does (a
// pending instance), and as kept in memory once the files are gone.
func (n *Node) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	if err := n.awake(); err != nil {
		return nil, err
	}
	in, err := n.get(id)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	kept, dir := in.console, in.dir
	n.mu.Unlock()
	b, err := n.drv.Console(ctx, id)
	if errors.Is(err, hypervisor.ErrNotFound) {
		if b, err = hypervisor.ReadConsoleFile(filepath.Join(dir, consoleFile)); err == nil && len(b) == 0 {
			b = kept
		}
	}
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", id, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (n *Node) get(id string) (*instance, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.insts[id]
	if in == nil {
		return nil, fmt.Errorf("%w: %s", ncapi.ErrNoSuchInstance, id)
	}
	return in, nil
}
