// Package libvirt is the hypervisor.Driver that runs guests as QEMU domains
// through a local libvirtd, over its socket with
// github.com/digitalocean/go-libvirt (pure Go: no libvirt C library), with
// domain XML built by libvirt.org/go/libvirtxml.
//
// Domains are persistent (defined, then started), named "euca-<instance
// id>", and carry a <metadata> element in this project's namespace holding
// the spec they were started with: that element, not the name, is what
// makes a domain ours, together with its files lying under this node's
// INSTANCE_PATH. A guest that powers itself off therefore stays
// visible (shut off) until the NC destroys it, and a restarted NC gets every
// spec back from libvirt.
//
// The accelerator is chosen once, in New, from HYPERVISOR: "kvm" uses KVM,
// "qemu" forces TCG, and "auto" (the default) uses KVM only after a probe
// guest has booted under it, falling back to TCG with one warning (KVM can
// be present and still unable to run a guest: see accel.go).
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/euca-cloud/euca/hypervisor"
)

// DefaultSocket is where libvirtd listens (scripts/libvirt-up.sh starts it).
const DefaultSocket = "/var/run/libvirt/libvirt-sock"

// Options configure the driver.
type Options struct {
	Socket       string       // "" is DefaultSocket
	Hypervisor   string       // HYPERVISOR: "auto" (or ""), "kvm" or "qemu"; "xen" is refused
	InstancePath string       // INSTANCE_PATH: Capacity reports the size of its file system; only domains whose files lie under it are this driver's
	Probe        Probe        // the guest that proves KVM works (HYPERVISOR=auto)
	Log          *slog.Logger // nil: no logging
}

// Driver is a hypervisor.Driver over libvirtd.
type Driver struct {
	o     Options
	log   *slog.Logger
	accel hypervisor.Accel
	locks keyedMutex

	mu sync.Mutex // guards l
	l  *golibvirt.Libvirt
}

var _ hypervisor.Driver = (*Driver)(nil)

// New connects to libvirtd and chooses the accelerator (which, under
// HYPERVISOR=auto with KVM present, boots a probe guest: up to
// Probe.Timeout).
func New(ctx context.Context, o Options) (*Driver, error) {
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.InstancePath == "" {
		o.InstancePath = "/"
	}
	d := &Driver{o: o, log: o.Log}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	mode := strings.ToLower(o.Hypervisor)
	switch mode {
	case "", "auto", "kvm", "qemu":
	case "xen":
		return nil, errors.New(`HYPERVISOR="xen": this build cannot drive Xen; ` +
			`set HYPERVISOR="kvm" or "qemu", or remove the line to let the node choose`)
	default:
		return nil, fmt.Errorf("HYPERVISOR=%q: not a hypervisor this build drives (kvm, qemu)", o.Hypervisor)
	}
	l, err := d.conn()
	if err != nil {
		return nil, err
	}
	if d.accel, err = d.chooseAccel(ctx, l, mode); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Name is "libvirt/kvm" or "libvirt/tcg".
func (d *Driver) Name() string { return "libvirt/" + string(d.accel) }

// Accel is the accelerator New chose.
func (d *Driver) Accel() hypervisor.Accel { return d.accel }

// Close drops the connection; guests keep running.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.l == nil {
		return nil
	}
	err := d.l.Disconnect()
	d.l = nil
	return err
}

// conn returns the connection, dialling again when libvirtd went away (a
// restart of libvirtd leaves its guests running; only the socket is new).
func (d *Driver) conn() (*golibvirt.Libvirt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.l != nil && d.l.IsConnected() {
		return d.l, nil
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.o.Socket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("libvirtd at %s: %w (start it with scripts/libvirt-up.sh, `make libvirt`)", d.o.Socket, err)
	}
	d.l = l
	return l, nil
}

// Capacity is the host's CPUs and memory as libvirt sees them and the size
// of the file system holding INSTANCE_PATH.
func (d *Driver) Capacity(ctx context.Context) (hypervisor.Resources, error) {
	l, err := d.conn()
	if err != nil {
		return hypervisor.Resources{}, err
	}
	_, memKiB, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil {
		return hypervisor.Resources{}, fmt.Errorf("node info: %w", err)
	}
	disk, err := fsSizeGiB(d.o.InstancePath)
	if err != nil {
		return hypervisor.Resources{}, err
	}
	return hypervisor.Resources{Cores: int(cpus), MemoryMiB: int(memKiB >> 10), DiskGiB: disk}, nil
}

// fsSizeGiB is the size of the file system holding path, or of its nearest
// existing parent (INSTANCE_PATH may not be made yet).
func fsSizeGiB(path string) (int, error) {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		var st syscall.Statfs_t
		err := syscall.Statfs(p, &st)
		if err == nil {
			return int(st.Blocks * uint64(st.Bsize) >> 30), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == "/" {
			return 0, fmt.Errorf("size of %s: %w", path, err)
		}
	}
}

// Start defines and boots spec's domain (see hypervisor.Driver).
func (d *Driver) Start(ctx context.Context, spec hypervisor.InstanceSpec) (hypervisor.Domain, error) {
	if spec.Accel == "" {
		spec.Accel = d.accel
	}
	return d.start(ctx, spec, kindInstance)
}

func (d *Driver) start(ctx context.Context, spec hypervisor.InstanceSpec, kind string) (hypervisor.Domain, error) {
	if err := spec.Validate(); err != nil {
		return hypervisor.Domain{}, err
	}
	defer d.locks.lock(spec.ID)()
	if err := ctx.Err(); err != nil {
		return hypervisor.Domain{}, err
	}
	l, err := d.conn()
	if err != nil {
		return hypervisor.Domain{}, err
	}
	fail := func(err error) (hypervisor.Domain, error) {
		return hypervisor.Domain{}, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	name := hypervisor.DomainName(spec.ID)
	if dom, err := l.DomainLookupByName(name); err == nil {
		got, err := d.describe(l, dom)
		if err != nil {
			return fail(err)
		}
		if !got.ours || got.kind != kind {
			return fail(hypervisor.ErrForeign)
		}
		if got.dom.State.Active() {
			return got.dom, nil
		}
		// Shut off (powered off, stopped, crashed): boot anew from spec.
		if err := l.DomainUndefineFlags(dom, 0); err != nil && !golibvirt.IsNotFound(err) {
			return fail(fmt.Errorf("undefine the old domain: %w", err))
		}
	} else if !golibvirt.IsNotFound(err) {
		return fail(err)
	}

	spec.NICs = bridgeMTUs(spec.NICs)
	started := time.Now().UTC().Truncate(time.Second)
	doc, err := domainXML(spec, kind, started)
	if err != nil {
		return fail(err)
	}
	// libvirtd opens a file console in append mode: empty it, so the
	// console shows this boot only.
	if err := os.MkdirAll(filepath.Dir(spec.ConsoleLog), 0o755); err != nil {
		return fail(err)
	}
	if err := os.Remove(spec.ConsoleLog); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	dom, err := l.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
	if err != nil {
		return fail(fmt.Errorf("define: %w", err))
	}
	if err := l.DomainCreate(dom); err != nil {
		// Nothing half-made stays behind.
		if uerr := l.DomainUndefineFlags(dom, 0); uerr != nil {
			d.log.Warn("undefine after a failed start", "domain", name, "err", uerr)
		}
		return fail(err)
	}
	return hypervisor.Domain{ID: spec.ID, Name: name, State: hypervisor.Running, Spec: spec, StartedAt: started}, nil
}

// DomainXML is the domain Start would define for spec, for tools and
// benchmarks that hand the same domain to virsh.
func (d *Driver) DomainXML(spec hypervisor.InstanceSpec) (string, error) {
	if spec.Accel == "" {
		spec.Accel = d.accel
	}
	if err := spec.Validate(); err != nil {
		return "", err
	}
	return domainXML(spec, kindInstance, time.Now())
}

// Stop asks the guest to power off, then pulls the plug after grace.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	defer d.locks.lock(id)()
	l, dom, got, err := d.lookup(id)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if !got.dom.State.Active() {
		return nil
	}
	if grace > 0 {
		// A guest without an ACPI daemon ignores this; the deadline copes.
		if err := l.DomainShutdown(dom); err != nil && !isNotRunning(err) {
			d.log.Debug("ACPI shutdown request", "id", id, "err", err)
		}
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if st, err := d.state(l, dom); err != nil || !st.Active() {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	if err := l.DomainDestroyFlags(dom, 0); err != nil && !isNotRunning(err) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// Destroy powers the guest off and undefines its domain.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	defer d.locks.lock(id)()
	l, dom, got, err := d.lookup(id)
	if errors.Is(err, hypervisor.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("destroy %s: %w", id, err)
	}
	return d.destroy(l, dom, got.dom.State)
}

func (d *Driver) destroy(l *golibvirt.Libvirt, dom golibvirt.Domain, st hypervisor.State) error {
	if st.Active() {
		if err := l.DomainDestroyFlags(dom, 0); err != nil && !isNotRunning(err) && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("destroy %s: %w", dom.Name, err)
		}
	}
	if err := l.DomainUndefineFlags(dom, 0); err != nil && !golibvirt.IsNotFound(err) {
		return fmt.Errorf("undefine %s: %w", dom.Name, err)
	}
	return nil
}

// Reboot resets the guest (see hypervisor.Driver).
func (d *Driver) Reboot(ctx context.Context, id string) error {
	defer d.locks.lock(id)()
	l, dom, got, err := d.lookup(id)
	if err != nil {
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	if got.dom.State != hypervisor.Running {
		return fmt.Errorf("reboot %s: %w (%s)", id, hypervisor.ErrNotRunning, got.dom.State)
	}
	if err := l.DomainReset(dom, 0); err != nil {
		return fmt.Errorf("reboot %s: %w", id, err)
	}
	return nil
}

func (d *Driver) State(ctx context.Context, id string) (hypervisor.State, error) {
	_, _, got, err := d.lookup(id)
	if err != nil {
		return "", fmt.Errorf("state of %s: %w", id, err)
	}
	return got.dom.State, nil
}

func (d *Driver) Console(ctx context.Context, id string) ([]byte, error) {
	_, _, got, err := d.lookup(id)
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", id, err)
	}
	return hypervisor.ReadConsoleFile(got.dom.Spec.ConsoleLog)
}

// List returns this project's instance domains, sorted by id.
func (d *Driver) List(ctx context.Context) ([]hypervisor.Domain, error) {
	all, err := d.listOurs(ctx)
	if err != nil {
		return nil, err
	}
	var out []hypervisor.Domain
	for _, o := range all {
		if o.kind == kindInstance {
			out = append(out, o.dom)
		}
	}
	return out, nil
}

// Recover reconnects, removes probe guests a killed NC left, and lists.
func (d *Driver) Recover(ctx context.Context) ([]hypervisor.Domain, error) {
	all, err := d.listOurs(ctx)
	if err != nil {
		return nil, err
	}
	l, err := d.conn()
	if err != nil {
		return nil, err
	}
	var out []hypervisor.Domain
	for _, o := range all {
		if o.kind == kindInstance {
			out = append(out, o.dom)
			continue
		}
		dom, err := l.DomainLookupByName(o.dom.Name)
		if err == nil {
			err = d.destroy(l, dom, o.dom.State)
		}
		if err != nil && !golibvirt.IsNotFound(err) {
			return nil, fmt.Errorf("remove a leftover %s domain: %w", o.kind, err)
		}
		d.log.Info("removed a leftover domain", "domain", o.dom.Name, "kind", o.kind)
	}
	return out, nil
}

// listOurs returns every domain with our metadata, of any kind.
func (d *Driver) listOurs(ctx context.Context) ([]described, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := d.conn()
	if err != nil {
		return nil, err
	}
	doms, _, err := l.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive|golibvirt.ConnectListDomainsInactive)
	if err != nil {
		return nil, fmt.Errorf("list domains: %w", err)
	}
	var out []described
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, hypervisor.DomainPrefix) {
			continue
		}
		got, err := d.describe(l, dom)
		if golibvirt.IsNotFound(err) { // destroyed since the listing
			continue
		}
		if err != nil {
			return nil, err
		}
		if got.ours {
			out = append(out, got)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dom.ID < out[j].dom.ID })
	return out, nil
}

// lookup finds instance id's domain: ErrNotFound when there is none,
// ErrForeign when the name is held by a domain that is not ours.
func (d *Driver) lookup(id string) (*golibvirt.Libvirt, golibvirt.Domain, described, error) {
	l, err := d.conn()
	if err != nil {
		return nil, golibvirt.Domain{}, described{}, err
	}
	dom, err := l.DomainLookupByName(hypervisor.DomainName(id))
	if golibvirt.IsNotFound(err) {
		return nil, golibvirt.Domain{}, described{}, hypervisor.ErrNotFound
	}
	if err != nil {
		return nil, golibvirt.Domain{}, described{}, err
	}
	got, err := d.describe(l, dom)
	if golibvirt.IsNotFound(err) {
		return nil, golibvirt.Domain{}, described{}, hypervisor.ErrNotFound
	}
	if err != nil {
		return nil, golibvirt.Domain{}, described{}, err
	}
	if !got.ours || got.kind != kindInstance {
		return nil, golibvirt.Domain{}, described{}, hypervisor.ErrForeign
	}
	return l, dom, got, nil
}

// describe reads dom's XML (its persistent definition, where our metadata
// lives) and state.
func (d *Driver) describe(l *golibvirt.Libvirt, dom golibvirt.Domain) (described, error) {
	doc, err := l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		return described{}, err
	}
	got, err := describeXML(doc)
	if err != nil {
		return described{}, err
	}
	// A domain is this driver's only when its files live under this
	// node's INSTANCE_PATH: two node controllers on one host (tests, or an
	// operator's second NC) then never adopt or destroy each other's.
	if got.ours && !under(got.dom.Spec.ConsoleLog, d.o.InstancePath) {
		got.ours = false
	}
	if got.dom.State, err = d.state(l, dom); err != nil {
		return described{}, err
	}
	return got, nil
}

// under reports whether path lies in dir (or is dir).
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

func (d *Driver) state(l *golibvirt.Libvirt, dom golibvirt.Domain) (hypervisor.State, error) {
	st, reason, err := l.DomainGetState(dom, 0)
	if err != nil {
		return "", err
	}
	return mapState(golibvirt.DomainState(st), reason), nil
}

func mapState(st golibvirt.DomainState, reason int32) hypervisor.State {
	switch st {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked:
		return hypervisor.Running
	case golibvirt.DomainPaused, golibvirt.DomainPmsuspended:
		return hypervisor.Paused
	case golibvirt.DomainShutdown:
		return hypervisor.ShuttingDown
	case golibvirt.DomainShutoff:
		// on_crash=destroy turns a crash into shutoff, with this reason.
		if golibvirt.DomainShutoffReason(reason) == golibvirt.DomainShutoffCrashed {
			return hypervisor.Crashed
		}
		return hypervisor.Shutoff
	case golibvirt.DomainCrashed:
		return hypervisor.Crashed
	}
	return hypervisor.Unknown
}

// isNotRunning is libvirt's answer to destroying or resetting a domain that
// is not running (VIR_ERR_OPERATION_INVALID): the wanted state already.
func isNotRunning(err error) bool {
	var le golibvirt.Error
	return errors.As(err, &le) && le.Code == uint32(golibvirt.ErrOperationInvalid)
}

// keyedMutex serialises the calls on one instance id, so two Starts of one
// id make one domain; different ids go in parallel.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
