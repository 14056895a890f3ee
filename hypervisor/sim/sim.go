// Package sim is a hypervisor.Driver that runs no guests: Start records a
// domain and writes the console lines the test guest would print, so that
// the cloud above it (NC, CC, CLC, the EC2 API) can be exercised with
// thousands of instances on one laptop. It is chosen only by name
// (hypervisor/drivers), never as a fallback for a hypervisor that is
// missing.
//
// The host can be powered down and woken (PowerOff, Wake; it is a
// hypervisor.Sleeper), as POWERSAVE does to idle hosts: while asleep every
// call fails with hypervisor.ErrAsleep, and its domains are kept.
//
// Domains are kept as one JSON file each under Options.Dir. The simulated
// host lives as long as the process that simulates it: each domain records
// the process that started it (its pid and start time), and one whose
// process is gone is a guest of a host that lost power. So an NC process
// killed and started again finds its host rebooted and its guests gone, as
// a real host after a power cut, and reconciles that (its instances end,
// and the cluster hears of it); a new Driver in the same process (an NC
// restarted in process, as the nc tests do) keeps them, as does another
// process looking at the host while its own process runs (euca network
// flush). It checks that the files a spec names exist, as a real start
// would, but never reads them.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
)

// Options configure a simulated host.
type Options struct {
	Dir      string               // where the host's domains are kept; required
	Capacity hypervisor.Resources // zero fields: DefaultCapacity's
}

// DefaultCapacity is a large host, so scale tests are limited by the
// cloud's own caps (MAX_CORES, MAX_MEM) rather than the simulation.
var DefaultCapacity = hypervisor.Resources{Cores: 64, MemoryMiB: 256 << 10, DiskGiB: 10 << 10}

// Driver is a simulated host.
type Driver struct {
	o  Options
	mu sync.Mutex
	// doms mirrors the files in o.Dir, by domain name.
	doms map[string]*record
	// asleep: powered down (PowerOff) until Wake.
	asleep atomic.Bool
}

var _ hypervisor.Sleeper = (*Driver)(nil)

// PowerOff puts the simulated host to sleep: until Wake, every call fails
// with hypervisor.ErrAsleep. Its domains stay as they are (a suspended
// host keeps its guests' memory; POWERSAVE only sleeps idle hosts anyway).
func (d *Driver) PowerOff() error {
	d.asleep.Store(true)
	return nil
}

// Wake brings the simulated host back at once.
func (d *Driver) Wake() error {
	d.asleep.Store(false)
	return nil
}

// Asleep reports whether the host is powered down.
func (d *Driver) Asleep() bool { return d.asleep.Load() }

// awake is hypervisor.ErrAsleep while the host sleeps.
func (d *Driver) awake() error {
	if d.asleep.Load() {
		return hypervisor.ErrAsleep
	}
	return nil
}

// record is one domain as kept on disk.
type record struct {
	Name      string                  `json:"name"`
	Ours      bool                    `json:"ours"` // false: another tool's domain (DefineForeign)
	State     hypervisor.State        `json:"state"`
	Spec      hypervisor.InstanceSpec `json:"spec"`
	StartedAt time.Time               `json:"started_at"`
	Boot      string                  `json:"boot"` // the simulating process, "pid:start time"
}

// boot names this process as the simulator of the guests it starts.
var boot = processBoot(os.Getpid())

// processBoot is "pid:start time" of a running process ("" when there is
// none): its start time (field 22 of /proc/PID/stat, in clock ticks since
// the machine booted) tells a process from a later one given the same pid.
func processBoot(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // after the command name, which may hold spaces
	if len(fields) < 20 {
		return ""
	}
	return strconv.Itoa(pid) + ":" + fields[19]
}

// alive says whether the process that simulates a domain still runs (so
// the domain's host has not lost power).
func alive(b string) bool {
	if b != "" && b == boot {
		return true
	}
	pid, _, ok := strings.Cut(b, ":")
	n, err := strconv.Atoi(pid)
	return ok && err == nil && processBoot(n) == b
}

// New opens the simulated host kept in o.Dir, making the directory.
func New(ctx context.Context, o Options) (*Driver, error) {
	if o.Dir == "" {
		return nil, errors.New("sim: no state directory")
	}
	def := DefaultCapacity
	if o.Capacity.Cores == 0 {
		o.Capacity.Cores = def.Cores
	}
	if o.Capacity.MemoryMiB == 0 {
		o.Capacity.MemoryMiB = def.MemoryMiB
	}
	if o.Capacity.DiskGiB == 0 {
		o.Capacity.DiskGiB = def.DiskGiB
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	d := &Driver{o: o}
	if err := d.load(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Driver) Name() string { return "sim" }

func (d *Driver) Close() error { return nil }

func (d *Driver) Capacity(ctx context.Context) (hypervisor.Resources, error) {
	if err := d.awake(); err != nil {
		return hypervisor.Resources{}, err
	}
	return d.o.Capacity, ctx.Err()
}

func (d *Driver) Start(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Domain, error) {
	if err := spec.Validate(); err != nil {
		return hypervisor.Domain{}, err
	}
	if err := d.awake(); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return hypervisor.Domain{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	name := hypervisor.DomainName(spec.ID)
	if r, ok := d.doms[name]; ok {
		if !r.Ours {
			return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, hypervisor.ErrForeign)
		}
		if r.State.Active() {
			return r.domain(), nil
		}
	}
	paths := []string{spec.Kernel, spec.Ramdisk, spec.RootDisk.Path, spec.EphemeralDisk.Path, spec.SwapDisk.Path}
	for _, v := range spec.Volumes {
		paths = append(paths, v.Socket)
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, err)
		}
	}
	if spec.Accel == "" {
		spec.Accel = hypervisor.AccelTCG
	}
	r := &record{Name: name, Ours: true, State: hypervisor.Running, Spec: spec,
		StartedAt: time.Now().UTC().Truncate(time.Second), Boot: boot}
	if err := os.MkdirAll(filepath.Dir(spec.ConsoleLog), 0o755); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := os.WriteFile(spec.ConsoleLog, bootLines(spec), 0o600); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := d.save(r); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	return r.domain(), nil
}

// bootLines is what the test guest prints on a boot that finds no network.
func bootLines(spec hypervisor.InstanceSpec) []byte {
	return []byte("EUCA-INITRD-OK\nEUCA-ROOT-OK kernel=sim uptime=0.00\n" +
		"EUCA-READY instance-id=" + spec.ID + " uptime=0.00\n")
}

func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := d.awake(); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.get(id)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if !r.State.Active() {
		return nil
	}
	// A simulated guest always honours the request to power off.
	r.State = hypervisor.Shutoff
	return d.save(r)
}

func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := d.awake(); err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.get(id)
	if errors.Is(err, hypervisor.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	if err := os.Remove(d.path(r.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	delete(d.doms, r.Name)
	return nil
}

// AttachVolume adds v to the domain's spec; its socket must exist, as
// QEMU would connect to it.
func (d *Driver) AttachVolume(ctx context.Context, id string, v hypervisor.VolumeDisk) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if v.Boot {
		return fmt.Errorf("%w: volume %s: a boot volume is given to Start, not hot-plugged", hypervisor.ErrInvalidSpec, v.VolumeID)
	}
	if err := d.awake(); err != nil {
		return fmt.Errorf("attach %s to %s: %w", v.VolumeID, id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.get(id)
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", v.VolumeID, id, err)
	}
	if _, ok := r.Spec.Volume(v.VolumeID); ok {
		return nil
	}
	if _, err := os.Stat(v.Socket); err != nil {
		return fmt.Errorf("attach %s to %s: %w", v.VolumeID, id, err)
	}
	c := *r
	c.Spec.SetVolume(v)
	return d.save(&c)
}

// DetachVolume drops the volume from the domain's spec: a simulated guest
// always lets go at once.
func (d *Driver) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	if err := d.awake(); err != nil {
		return fmt.Errorf("detach %s from %s: %w", volumeID, id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.get(id)
	if err != nil {
		return fmt.Errorf("detach %s from %s: %w", volumeID, id, err)
	}
	if _, ok := r.Spec.Volume(volumeID); !ok {
		return nil
	}
	c := *r
	c.Spec.RemoveVolume(volumeID)
	return d.save(&c)
}

// ResumeIOError resumes nothing: a simulated volume never fails.
func (d *Driver) ResumeIOError(ctx context.Context, id string) (bool, error) {
	if err := d.awake(); err != nil {
		return false, fmt.Errorf("resume %s: %w", id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.get(id)
	if err != nil {
		return false, fmt.Errorf("resume %s: %w", id, err)
	}
	return false, nil
}

func (d *Driver) Reboot(ctx context.Context, id string) error {
	if err := d.awake(); err != nil {
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.get(id)
	if err != nil {
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	if r.State != hypervisor.Running {
		return fmt.Errorf("reboot %s: %w", id, hypervisor.ErrNotRunning)
	}
	f, err := os.OpenFile(r.Spec.ConsoleLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	_, err = f.Write(bootLines(r.Spec))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *Driver) State(ctx context.Context, id string) (hypervisor.State, error) {
	if err := d.awake(); err != nil {
		return "", fmt.Errorf("state of %s: %w", id, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.get(id)
	if err != nil {
		return "", fmt.Errorf("state of %s: %w", id, err)
	}
	return r.State, nil
}

func (d *Driver) List(ctx context.Context) ([]hypervisor.Domain, error) {
	if err := d.awake(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []hypervisor.Domain
	for _, r := range d.doms {
		if r.Ours {
			out = append(out, r.domain())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, ctx.Err()
}

func (d *Driver) Console(ctx context.Context, id string) ([]byte, error) {
	if err := d.awake(); err != nil {
		return nil, fmt.Errorf("console of %s: %w", id, err)
	}
	d.mu.Lock()
	r, err := d.get(id)
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", id, err)
	}
	return hypervisor.ReadConsoleFile(r.Spec.ConsoleLog)
}

// Recover rereads the host's domains from Dir, as a restarted process does.
func (d *Driver) Recover(ctx context.Context) ([]hypervisor.Domain, error) {
	d.mu.Lock()
	err := d.load()
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return d.List(ctx)
}

// DefineForeign makes a domain named name that this project did not make,
// as another tool sharing the host would; tests use it to check that List,
// Recover and the per-instance calls leave it alone.
func (d *Driver) DefineForeign(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.save(&record{Name: name, State: hypervisor.Running, Boot: boot})
}

// get returns the domain of instance id; the caller holds d.mu.
func (d *Driver) get(id string) (*record, error) {
	r, ok := d.doms[hypervisor.DomainName(id)]
	if !ok {
		return nil, hypervisor.ErrNotFound
	}
	if !r.Ours {
		return nil, hypervisor.ErrForeign
	}
	return r, nil
}

func (r *record) domain() hypervisor.Domain {
	return hypervisor.Domain{ID: strings.TrimPrefix(r.Name, hypervisor.DomainPrefix), Name: r.Name,
		State: r.State, Spec: r.Spec, StartedAt: r.StartedAt}
}

func (d *Driver) path(name string) string { return filepath.Join(d.o.Dir, name+".json") }

// save writes r through a temporary file and a rename, so a process killed
// mid-write leaves the old record or the new one; the caller holds d.mu.
func (d *Driver) save(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := d.path(r.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, d.path(r.Name)); err != nil {
		os.Remove(tmp)
		return err
	}
	d.doms[r.Name] = r
	return nil
}

// load reads every record in Dir; the caller holds d.mu (or owns d).
func (d *Driver) load() error {
	ents, err := os.ReadDir(d.o.Dir)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	doms := map[string]*record{}
	for _, e := range ents {
		p := filepath.Join(d.o.Dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") { // a write cut short
			os.Remove(p)
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("sim: %s: %w", p, err)
		}
		if !alive(r.Boot) {
			// Its simulating process is gone: the host lost power, and
			// the guest with it.
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("sim: %w", err)
			}
			continue
		}
		doms[r.Name] = &r
	}
	d.doms = doms
	return nil
}
