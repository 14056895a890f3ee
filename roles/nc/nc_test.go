package nc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/sim"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// fakeImages is an ImageSource serving images from memory; it counts opens
// and can hold reads until a gate closes.
type fakeImages struct {
	mu     sync.Mutex
	images map[string][]byte
	opens  map[string]int
	gate   chan struct{}
}

func newFakeImages() *fakeImages {
	return &fakeImages{images: map[string][]byte{}, opens: map[string]int{}}
}

func (f *fakeImages) add(id string, b []byte) ncapi.ImageRef {
	f.mu.Lock()
	f.images[id] = b
	f.mu.Unlock()
	sum := sha256.Sum256(b)
	return ncapi.ImageRef{ID: id, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

func (f *fakeImages) Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.images[ref.ID]
	if !ok {
		return nil, fmt.Errorf("no image %s", ref.ID)
	}
	f.opens[ref.ID]++
	if g := f.gate; g != nil {
		return io.NopCloser(io.MultiReader(gateReader{ctx, g}, bytes.NewReader(b))), nil
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeImages) opened(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens[id]
}

// gateReader holds the first read until the gate closes, or the download
// is cancelled (as an HTTP body is).
type gateReader struct {
	ctx  context.Context
	gate chan struct{}
}

func (g gateReader) Read(p []byte) (int, error) {
	select {
	case <-g.gate:
		return 0, io.EOF
	case <-g.ctx.Done():
		return 0, g.ctx.Err()
	}
}

// host is one simulated compute host: its store, its hypervisor state and
// its INSTANCE_PATH, which outlive the node controllers started on it.
type host struct {
	t       *testing.T
	cfg     *conf.Config
	st      *store.Store
	simDir  string
	imgs    *fakeImages
	image   ncapi.ImageRef
	kernel  ncapi.ImageRef
	ramdisk ncapi.ImageRef
	drv     *sim.Driver
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "mkfs.ext4", "mkswap"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (CI installs qemu-utils, e2fsprogs, util-linux)", tool)
			}
			t.Skipf("%s is not installed: the node makes its disks with it", tool)
		}
	}
}

func newHost(t *testing.T, edit func(*conf.Config)) *host {
	t.Helper()
	needTools(t)
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	cfg.InstancePath = filepath.Join(cfg.Home, "instances")
	cfg.SwapSizeMB = 16
	if edit != nil {
		edit(cfg)
	}
	st, err := store.Open(context.Background(), filepath.Join(cfg.Home, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &host{t: t, cfg: cfg, st: st, simDir: filepath.Join(cfg.Home, "sim"), imgs: newFakeImages()}
	h.image = h.imgs.add("emi-00000001", bytes.Repeat([]byte("root"), 256<<10)) // 1 MiB
	h.kernel = h.imgs.add("eki-00000001", []byte("a kernel"))
	h.ramdisk = h.imgs.add("eri-00000001", []byte("a ramdisk"))
	return h
}

// start starts a node controller on the host, as a process start would:
// a fresh driver over the same hypervisor state.
func (h *host) start() *Node {
	h.t.Helper()
	drv, err := sim.New(context.Background(), sim.Options{Dir: h.simDir,
		Capacity: hypervisor.Resources{Cores: 8, MemoryMiB: 8192, DiskGiB: 100}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.drv = drv
	n, err := New(context.Background(), h.cfg, h.st, drv, h.imgs, slog.New(slog.DiscardHandler))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(n.stop)
	return n
}

func (h *host) req(id string) ncapi.InstanceRequest {
	k, r := h.kernel, h.ramdisk
	return ncapi.InstanceRequest{ID: id, VMType: "m1.small",
		Holds: ncapi.Resources{Cores: 1, MemoryMiB: 256, DiskGiB: 1},
		Image: h.image, Kernel: &k, Ramdisk: &r,
		MAC: "d0:0d:00:00:00:01", Bridge: "euca-br0"}
}

// running launches req on n and waits until it runs.
func running(t *testing.T, n *Node, req ncapi.InstanceRequest) ncapi.InstanceStatus {
	t.Helper()
	if err := n.RunInstance(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return waitState(t, n, req.ID, ncapi.StateRunning)
}

// waitState waits until id is in state want (a bound on a stuck launch,
// not a timing assertion).
func waitState(t *testing.T, n *Node, id, want string) ncapi.InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := n.Describe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var cur ncapi.InstanceStatus
		for _, is := range st.Instances {
			if is.ID == id {
				cur = is
			}
		}
		if cur.State == want {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s is %q (%s), want %q", id, cur.State, cur.Reason, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(t *testing.T, n *Node) ncapi.NodeStatus {
	t.Helper()
	st, err := n.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func domains(t *testing.T, d hypervisor.Driver) []string {
	t.Helper()
	doms, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range doms {
		ids = append(ids, d.ID)
	}
	sort.Strings(ids)
	return ids
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestRunDescribeRebootConsoleTerminate(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	id := "i-0000000000000001"
	is := running(t, n, h.req(id))
	if is.LaunchedAt.IsZero() || is.Holds.Cores != 1 {
		t.Fatalf("status %+v", is)
	}
	st := status(t, n)
	if st.Driver != "sim" || st.Max != (ncapi.Resources{Cores: 8, MemoryMiB: 8192, DiskGiB: 100}) ||
		st.Free != (ncapi.Resources{Cores: 7, MemoryMiB: 8192 - 256, DiskGiB: 99}) {
		t.Fatalf("node %+v", st)
	}

	// The files: a qcow2 overlay of the cached image (not a copy), sparse
	// ephemeral and swap disks, kernel and ramdisk straight from the cache.
	dir := filepath.Join(h.cfg.InstancePath, id)
	root, err := os.ReadFile(filepath.Join(dir, rootFile))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(h.cfg.InstancePath, CacheDir)
	base := filepath.Join(cacheDir, h.image.ID+"-"+h.image.SHA256+".img")
	if !bytes.HasPrefix(root, []byte("QFI\xfb")) || !bytes.Contains(root, []byte(base)) || len(root) >= int(h.image.Size) {
		t.Fatalf("root disk is not a small qcow2 overlay of %s (%d bytes)", base, len(root))
	}
	for _, f := range []string{ephemeralFile, swapFile} {
		if !exists(filepath.Join(dir, f)) {
			t.Errorf("no %s", f)
		}
	}
	doms, _ := h.drv.List(ctx)
	if len(doms) != 1 {
		t.Fatalf("domains %+v", doms)
	}
	spec := doms[0].Spec
	if filepath.Dir(spec.Kernel) != cacheDir || filepath.Dir(spec.Ramdisk) != cacheDir ||
		spec.NICs[0] != (hypervisor.NIC{Bridge: "euca-br0", MAC: "d0:0d:00:00:00:01", Tap: "euvm-0000000000"}) ||
		spec.EphemeralDisk.Path == "" || spec.SwapDisk.Path == "" || spec.Cores != 1 || spec.MemoryMiB != 256 {
		t.Fatalf("spec %+v", spec)
	}
	if s := n.cache.Stats(); s.Pinned != 3 {
		t.Fatalf("cache %+v: want the 3 images pinned", s)
	}

	con, err := n.ConsoleOutput(ctx, id)
	if err != nil || !bytes.Contains(con, []byte("EUCA-READY instance-id="+id)) {
		t.Fatalf("console %q, %v", con, err)
	}
	if err := n.RebootInstance(ctx, id); err != nil {
		t.Fatal(err)
	}
	con, _ = n.ConsoleOutput(ctx, id)
	if c := bytes.Count(con, []byte("EUCA-READY")); c != 2 {
		t.Fatalf("after a reboot the console shows %d boots", c)
	}

	if err := n.TerminateInstance(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitState(t, n, id, ncapi.StateTerminated)
	if d := domains(t, h.drv); len(d) != 0 {
		t.Fatalf("domains left: %v", d)
	}
	if exists(dir) {
		t.Fatal("instance directory left")
	}
	if st := status(t, n); st.Free != st.Max {
		t.Fatalf("capacity not returned: %+v", st)
	}
	if s := n.cache.Stats(); s.Pinned != 0 || s.Entries != 3 {
		t.Fatalf("cache %+v: want 3 images kept, none pinned", s)
	}
	// The console is still there for a while, as EC2 keeps it.
	if con, err := n.ConsoleOutput(ctx, id); err != nil || !bytes.Contains(con, []byte("EUCA-READY")) {
		t.Fatalf("console after termination: %q, %v", con, err)
	}
	if err := n.TerminateInstance(ctx, id); err != nil {
		t.Fatalf("terminate twice: %v", err)
	}
	if err := n.TerminateInstance(ctx, "i-00000000unknown"); err != nil {
		t.Fatalf("terminate unknown: %v", err)
	}
	if err := n.RebootInstance(ctx, id); !errors.Is(err, ncapi.ErrIncorrectState) {
		t.Fatalf("reboot terminated: %v", err)
	}
	if err := n.RebootInstance(ctx, "i-00000000unknown"); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Fatalf("reboot unknown: %v", err)
	}
	if _, err := n.ConsoleOutput(ctx, "i-00000000unknown"); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Fatalf("console unknown: %v", err)
	}
	rec, err := h.st.NCInstance(ctx, id)
	if err != nil || rec.State != ncapi.StateTerminated || rec.Spec == "" {
		t.Fatalf("stored %+v, %v", rec, err)
	}
}

func TestRunIsIdempotentAndSharesDownloads(t *testing.T) {
	h := newHost(t, nil)
	h.imgs.gate = make(chan struct{})
	n := h.start()
	ctx := context.Background()
	ids := []string{"i-00000000000000a1", "i-00000000000000a2", "i-00000000000000a3", "i-00000000000000a4"}
	for _, id := range ids {
		if err := n.RunInstance(ctx, h.req(id)); err != nil {
			t.Fatal(err)
		}
		if err := n.RunInstance(ctx, h.req(id)); err != nil { // the second call: no second guest
			t.Fatal(err)
		}
	}
	for _, is := range status(t, n).Instances {
		if is.State != ncapi.StatePending {
			t.Fatalf("%s is %s before its image arrived", is.ID, is.State)
		}
	}
	close(h.imgs.gate)
	for _, id := range ids {
		waitState(t, n, id, ncapi.StateRunning)
		if err := n.RunInstance(ctx, h.req(id)); err != nil {
			t.Fatal(err)
		}
	}
	if d := domains(t, h.drv); len(d) != len(ids) {
		t.Fatalf("domains %v", d)
	}
	for _, r := range []ncapi.ImageRef{h.image, h.kernel, h.ramdisk} {
		if got := h.imgs.opened(r.ID); got != 1 {
			t.Errorf("%s opened %d times for %d concurrent launches", r.ID, got, len(ids))
		}
	}
	if st := status(t, n); st.Free.Cores != 8-len(ids) || len(st.Instances) != len(ids) {
		t.Fatalf("status %+v", st)
	}
}

func TestCapacityCapsAndRefusals(t *testing.T) {
	h := newHost(t, func(c *conf.Config) { c.MaxCores, c.MaxMemMB, c.MaxDiskGB = 2, 600, 0 })
	n := h.start()
	ctx := context.Background()
	if st := status(t, n); st.Max != (ncapi.Resources{Cores: 2, MemoryMiB: 600, DiskGiB: 100}) {
		t.Fatalf("max %+v: want the caps over the host", st.Max)
	}
	a, b, c := h.req("i-00000000000000b1"), h.req("i-00000000000000b2"), h.req("i-00000000000000b3")
	for _, r := range []ncapi.InstanceRequest{a, b} {
		if err := n.RunInstance(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A third does not fit (cores): refused, and nothing of it remains.
	if err := n.RunInstance(ctx, c); !errors.Is(err, ncapi.ErrNoCapacity) {
		t.Fatalf("third instance: %v, want ErrNoCapacity", err)
	}
	big := h.req("i-00000000000000b4")
	big.Holds = ncapi.Resources{Cores: 1, MemoryMiB: 4096, DiskGiB: 1}
	for _, r := range []ncapi.InstanceRequest{c, big} {
		if _, err := h.st.NCInstance(ctx, r.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s recorded: %v", r.ID, err)
		}
		if exists(filepath.Join(h.cfg.InstancePath, r.ID)) {
			t.Fatalf("%s has a directory", r.ID)
		}
	}
	waitState(t, n, a.ID, ncapi.StateRunning)
	waitState(t, n, b.ID, ncapi.StateRunning)
	if err := n.TerminateInstance(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := n.RunInstance(ctx, big); !errors.Is(err, ncapi.ErrNoCapacity) {
		t.Fatalf("memory over MAX_MEM: %v", err)
	}
	if err := n.RunInstance(ctx, c); err != nil {
		t.Fatalf("after a termination: %v", err)
	}
	waitState(t, n, c.ID, ncapi.StateRunning)
	if d := domains(t, h.drv); len(d) != 2 {
		t.Fatalf("domains %v", d)
	}

	// Bad requests are refused before anything is recorded.
	bad := []func(r *ncapi.InstanceRequest){
		func(r *ncapi.InstanceRequest) { r.ID = "../../etc" },
		func(r *ncapi.InstanceRequest) { r.Holds.Cores = 0 },
		func(r *ncapi.InstanceRequest) { r.Image.SHA256 = "nothex" },
		func(r *ncapi.InstanceRequest) { r.Kernel = nil },
		func(r *ncapi.InstanceRequest) { r.MAC = "ff:ff:ff:ff:ff:ff" },
		func(r *ncapi.InstanceRequest) { r.Bridge = "a-very-long-bridge-name" },
	}
	for i, edit := range bad {
		r := h.req(fmt.Sprintf("i-00000000000000c%d", i))
		edit(&r)
		if err := n.RunInstance(ctx, r); !errors.Is(err, ncapi.ErrBadRequest) {
			t.Errorf("bad request %d: %v", i, err)
		}
	}
	if got := len(status(t, n).Instances); got != 3 {
		t.Fatalf("%d instances known, want 3", got)
	}
}

func TestFailedLaunchLeavesNothing(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	r := h.req("i-00000000000000d1")
	r.Image.SHA256 = strings.Repeat("0", 64) // Walrus serves other bytes than registered
	if err := n.RunInstance(ctx, r); err != nil {
		t.Fatal(err)
	}
	is := waitState(t, n, r.ID, ncapi.StateFailed)
	if !strings.Contains(is.Reason, "digest") {
		t.Fatalf("reason %q", is.Reason)
	}
	if exists(filepath.Join(h.cfg.InstancePath, r.ID)) || len(domains(t, h.drv)) != 0 {
		t.Fatal("a failed launch left files or a domain")
	}
	if st := status(t, n); st.Free != st.Max {
		t.Fatalf("a failed instance holds capacity: %+v", st)
	}
	if s := n.cache.Stats(); s.Pinned != 0 {
		t.Fatalf("cache %+v", s)
	}
	if err := n.TerminateInstance(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, n, r.ID, ncapi.StateTerminated)
}

func TestTerminateWhilePending(t *testing.T) {
	h := newHost(t, nil)
	h.imgs.gate = make(chan struct{})
	n := h.start()
	ctx := context.Background()
	id := "i-00000000000000e1"
	if err := n.RunInstance(ctx, h.req(id)); err != nil {
		t.Fatal(err)
	}
	// The launch waits for its image: a reboot is refused at once.
	if err := n.RebootInstance(ctx, id); !errors.Is(err, ncapi.ErrIncorrectState) {
		t.Fatalf("reboot pending: %v", err)
	}
	if err := n.TerminateInstance(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitState(t, n, id, ncapi.StateTerminated)
	close(h.imgs.gate)
	if exists(filepath.Join(h.cfg.InstancePath, id)) || len(domains(t, h.drv)) != 0 {
		t.Fatal("files or a domain left")
	}
	if st := status(t, n); st.Free != st.Max {
		t.Fatalf("capacity %+v", st)
	}
}

func TestCacheDisabled(t *testing.T) {
	h := newHost(t, func(c *conf.Config) { c.NCCacheSizeMB = 0 })
	n := h.start()
	ctx := context.Background()
	ids := []string{"i-00000000000000f1", "i-00000000000000f2"}
	for _, id := range ids {
		if err := n.RunInstance(ctx, h.req(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		waitState(t, n, id, ncapi.StateRunning)
		dir := filepath.Join(h.cfg.InstancePath, id)
		root, _ := os.ReadFile(filepath.Join(dir, rootFile))
		if !bytes.Contains(root, []byte(filepath.Join(dir, h.image.ID+".img"))) {
			t.Fatalf("%s: the overlay is not over the instance's own copy", id)
		}
	}
	if got := h.imgs.opened(h.image.ID); got != 2 {
		t.Fatalf("image opened %d times; with no cache each instance fetches its own", got)
	}
	if exists(filepath.Join(h.cfg.InstancePath, CacheDir)) {
		t.Fatal("a cache directory with the cache off")
	}
	if err := n.TerminateInstance(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(h.cfg.InstancePath, ids[0])) {
		t.Fatal("the private copy outlived its instance")
	}
}

func TestManualInstancesCleanup(t *testing.T) {
	h := newHost(t, func(c *conf.Config) { c.ManualInstancesCleanup = true })
	n := h.start()
	ctx := context.Background()
	id := "i-0000000000000011"
	running(t, n, h.req(id))
	if err := n.TerminateInstance(ctx, id); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.cfg.InstancePath, id)
	for _, f := range []string{rootFile, ephemeralFile, swapFile, consoleFile} {
		if !exists(filepath.Join(dir, f)) {
			t.Fatalf("%s not kept", f)
		}
	}
	if len(domains(t, h.drv)) != 0 {
		t.Fatal("the domain was kept: only files are")
	}
	if st := status(t, n); st.Free != st.Max {
		t.Fatalf("kept files hold capacity: %+v", st)
	}
	// A restart keeps them too.
	n.stop()
	n2 := h.start()
	if !exists(dir) {
		t.Fatal("files removed at restart")
	}
	waitState(t, n2, id, ncapi.StateTerminated)
}

func TestRestartReconciles(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	keep1, keep2 := "i-0000000000000021", "i-0000000000000022"
	lost, gone, pend := "i-0000000000000023", "i-0000000000000024", "i-0000000000000025"
	for _, id := range []string{keep1, keep2, lost, gone} {
		running(t, n, h.req(id))
	}
	if err := n.TerminateInstance(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// A launch that the stop interrupts: its download never arrives.
	other := h.imgs.add("emi-00000002", bytes.Repeat([]byte("other"), 1000))
	h.imgs.gate = make(chan struct{})
	pr := h.req(pend)
	pr.Image = other
	if err := n.RunInstance(ctx, pr); err != nil {
		t.Fatal(err)
	}
	before, _ := h.drv.List(ctx)
	started := map[string]time.Time{}
	for _, d := range before {
		started[d.ID] = d.StartedAt
	}
	n.stop() // the process ends; guests keep running
	close(h.imgs.gate)
	if got := status(t, n); got.Instances[len(got.Instances)-1].State != ncapi.StatePending {
		t.Fatalf("the interrupted launch is %+v", got.Instances[len(got.Instances)-1])
	}

	// While it was down: the hypervisor lost one guest, a domain appeared
	// that no instance wants, the finished instance's files came back
	// (a cleanup cut short), and an unknown instance directory was left.
	if err := h.drv.Destroy(ctx, lost); err != nil {
		t.Fatal(err)
	}
	stray := "i-00000000000000ff"
	strayDir := filepath.Join(h.cfg.InstancePath, stray)
	os.MkdirAll(strayDir, 0o755)
	os.WriteFile(filepath.Join(strayDir, "root.qcow2"), nil, 0o644)
	if _, err := h.drv.Start(ctx, hypervisor.InstanceSpec{ID: stray, Cores: 1, MemoryMiB: 64,
		RootDisk: hypervisor.Disk{Path: filepath.Join(strayDir, "root.qcow2")}, ConsoleLog: filepath.Join(strayDir, "console.log")}); err != nil {
		t.Fatal(err)
	}
	goneDir := filepath.Join(h.cfg.InstancePath, gone)
	os.MkdirAll(goneDir, 0o755)
	os.WriteFile(filepath.Join(goneDir, "console.log"), []byte("x"), 0o644)

	n2 := h.start()
	for _, id := range []string{keep1, keep2} {
		waitState(t, n2, id, ncapi.StateRunning)
	}
	is := waitState(t, n2, lost, ncapi.StateFailed)
	if is.Reason != reasonLost {
		t.Fatalf("lost instance reason %q", is.Reason)
	}
	waitState(t, n2, gone, ncapi.StateTerminated)
	waitState(t, n2, pend, ncapi.StateRunning) // resumed
	after, _ := h.drv.List(ctx)
	var ids []string
	for _, d := range after {
		ids = append(ids, d.ID)
		if t0, ok := started[d.ID]; ok && !d.StartedAt.Equal(t0) {
			t.Errorf("%s was restarted", d.ID)
		}
	}
	if fmt.Sprint(ids) != fmt.Sprint([]string{keep1, keep2, pend}) {
		t.Fatalf("domains after restart %v, want the two adopted and the resumed one", ids)
	}
	for _, d := range []string{strayDir, goneDir, filepath.Join(h.cfg.InstancePath, lost)} {
		if exists(d) {
			t.Errorf("%s left", d)
		}
	}
	for _, d := range []string{keep1, keep2, pend} {
		if !exists(filepath.Join(h.cfg.InstancePath, d, rootFile)) {
			t.Errorf("%s lost its files", d)
		}
	}
	st := status(t, n2)
	if st.Free.Cores != st.Max.Cores-3 {
		t.Fatalf("capacity after restart %+v", st)
	}
	// The adopted instances pin their images again: the cache keeps them.
	if s := n2.cache.Stats(); s.Pinned != 4 {
		t.Fatalf("cache %+v: want emi-1, eki, eri and emi-2 pinned", s)
	}
	// Adopted instances are fully managed: console, reboot, terminate.
	if con, err := n2.ConsoleOutput(ctx, keep1); err != nil || !bytes.Contains(con, []byte(keep1)) {
		t.Fatalf("console %q %v", con, err)
	}
	if err := n2.RebootInstance(ctx, keep1); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{keep1, keep2, pend, lost} {
		if err := n2.TerminateInstance(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if d := domains(t, h.drv); len(d) != 0 {
		t.Fatalf("domains %v", d)
	}
	if st := status(t, n2); st.Free != st.Max {
		t.Fatalf("capacity %+v", st)
	}
	// A third start has nothing to do.
	n2.stop()
	n3 := h.start()
	if len(domains(t, h.drv)) != 0 || len(status(t, n3).Instances) != 5 {
		t.Fatalf("third start: %v %+v", domains(t, h.drv), status(t, n3))
	}
}

func TestReconcileLoop(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	off, lost, unwanted := "i-0000000000000031", "i-0000000000000032", "i-0000000000000033"
	for _, id := range []string{off, lost, unwanted} {
		running(t, n, h.req(id))
	}
	if err := h.drv.Stop(ctx, off, 0); err != nil { // the guest powers itself off
		t.Fatal(err)
	}
	if err := h.drv.Destroy(ctx, lost); err != nil {
		t.Fatal(err)
	}
	// A terminated instance whose domain came back (another tool started it).
	if err := n.TerminateInstance(ctx, unwanted); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.cfg.InstancePath, unwanted)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "r"), nil, 0o644)
	h.drv.Start(ctx, hypervisor.InstanceSpec{ID: unwanted, Cores: 1, MemoryMiB: 64,
		RootDisk: hypervisor.Disk{Path: filepath.Join(dir, "r")}, ConsoleLog: filepath.Join(dir, "c")})

	if err := n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if is := waitState(t, n, off, ncapi.StateTerminated); is.Reason != reasonShutdown {
		t.Fatalf("powered off: %+v", is)
	}
	if is := waitState(t, n, lost, ncapi.StateFailed); is.Reason != reasonLost {
		t.Fatalf("lost: %+v", is)
	}
	if d := domains(t, h.drv); len(d) != 0 {
		t.Fatalf("domains %v", d)
	}
	for _, id := range []string{off, lost} {
		if exists(filepath.Join(h.cfg.InstancePath, id)) {
			t.Fatalf("%s files left", id)
		}
	}
	// Finished instances are reported for a while, then forgotten.
	if got := len(status(t, n).Instances); got != 3 {
		t.Fatalf("%d instances, want 3 still reported", got)
	}
	n.now = func() time.Time { return time.Now().Add(Retention + time.Minute) }
	if err := n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := status(t, n).Instances; len(got) != 0 {
		t.Fatalf("still reported after the retention: %+v", got)
	}
	if recs, _ := h.st.NCInstances(ctx); len(recs) != 0 {
		t.Fatalf("still stored: %+v", recs)
	}
}

func TestRunStops(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	n.interval = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	running(t, n, h.req("i-0000000000000041"))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := n.RunInstance(context.Background(), h.req("i-0000000000000042")); err == nil {
		t.Fatal("accepted an instance after stopping")
	}
	if d := domains(t, h.drv); len(d) != 1 {
		t.Fatalf("stopping the node touched guests: %v", d)
	}
}

func TestEC2SysInfo(t *testing.T) {
	s := ec2SysInfo("i-0123456789abcdef0")
	if !strings.HasPrefix(s.Serial, "ec2") || len(s.Serial) != 36 || s.Manufacturer != "Amazon EC2" {
		t.Fatalf("%+v", s)
	}
}

// TestAsleepAnswersNothing: while its host is powered down (POWERSAVE), the
// node answers no call, as a host that is off; woken, it answers with its
// instances as they were.
func TestAsleepAnswersNothing(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	running(t, n, h.req("i-1"))
	h.drv.PowerOff()
	if _, err := n.Describe(ctx); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Fatalf("Describe asleep: %v", err)
	}
	if err := n.RunInstance(ctx, h.req("i-2")); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Fatalf("RunInstance asleep: %v", err)
	}
	for what, err := range map[string]error{
		"terminate": n.TerminateInstance(ctx, "i-1"),
		"reboot":    n.RebootInstance(ctx, "i-1"),
	} {
		if !errors.Is(err, hypervisor.ErrAsleep) {
			t.Errorf("%s asleep: %v", what, err)
		}
	}
	if _, err := n.ConsoleOutput(ctx, "i-1"); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Errorf("console asleep: %v", err)
	}
	h.drv.Wake()
	st := status(t, n)
	if len(st.Instances) != 1 || st.Instances[0].State != ncapi.StateRunning {
		t.Fatalf("woken: %+v", st.Instances)
	}
}

// TestPowerDown: the node puts its (simulated) host to sleep when it is
// idle, and refuses while an instance holds resources.
func TestPowerDown(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	running(t, n, h.req("i-1"))
	if err := n.PowerDown(ctx); !errors.Is(err, ncapi.ErrIncorrectState) || h.drv.Asleep() {
		t.Fatalf("power down with an instance: %v (asleep %v)", err, h.drv.Asleep())
	}
	if err := n.TerminateInstance(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerDown(ctx); err != nil || !h.drv.Asleep() {
		t.Fatalf("power down idle: %v (asleep %v)", err, h.drv.Asleep())
	}
	if _, err := n.Describe(ctx); !errors.Is(err, hypervisor.ErrAsleep) {
		t.Fatalf("describe asleep: %v", err)
	}
}
