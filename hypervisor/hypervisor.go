// Package hypervisor is the seam between a node controller and whatever runs
// its guests: the Driver interface, the instance specification a driver
// boots, and the states and errors it reports.
//
// A node controller (roles/nc) owns the truth about its instances (the
// store) and the files each one uses (disks, console log, under
// INSTANCE_PATH); a Driver only turns a specification into a running guest
// and reports what the hypervisor holds. Every domain a driver makes is named
// DomainName(id) ("euca-<instance id>") and marked as the project's, so that
// List and Recover see only what this project made and never touch anyone
// else's guests on a shared host.
//
// The life of an instance through a Driver:
//
//	Start(spec)      define and boot; harmless twice (a running domain of that id is returned)
//	State, Console   poll; the console is the guest's serial port, kept in a file
//	Reboot           hard reset of a running guest (the console file carries on)
//	Stop(grace)      ask the guest to power off, pull the plug after grace; the domain stays defined
//	Destroy          power off and forget the domain; its files are the NC's to remove
//	AttachVolume     hot-plug an EBS volume (a virtio disk over NBD on a unix socket);
//	DetachVolume     unplug it, waiting for the guest to let go (or not: force)
//	ResumeIOError    resume a guest paused by a volume's I/O error, once the volume is back
//	Recover          at NC start: every domain this project made, with the spec it was started
//	                 with, so the NC adopts what it still wants (nothing is restarted or lost)
//
// Drivers: hypervisor/libvirt (QEMU through libvirtd, KVM or TCG) and
// hypervisor/sim (no guests at all, for scale tests; only when asked for by
// name). hypervisor/drivers chooses one; hypervisor/conformance is the suite
// both pass; hypervisor/disk makes the files a spec points at.
package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Driver runs guests on one host. Implementations are safe for concurrent
// use; calls on different instance ids proceed in parallel.
type Driver interface {
	// Name says which driver and accelerator run the guests, for logs and
	// reports: "libvirt/kvm", "libvirt/tcg", "sim".
	Name() string

	// Capacity is what the host offers, before the NC applies MAX_CORES,
	// MAX_MEM and MAX_DISK. It does not subtract running guests.
	Capacity(ctx context.Context) (Resources, error)

	// Start defines and boots spec's guest and returns it running. Starting
	// an id whose domain is already active returns that domain unchanged
	// (its Spec is the one it was started with, which may differ from spec);
	// a defined but shut-off domain of that id is replaced and booted anew.
	// The console log is emptied before the boot. On error nothing is left
	// defined.
	Start(ctx context.Context, spec InstanceSpec) (Domain, error)

	// Stop powers the guest off, keeping the domain defined: it asks the
	// guest to shut down (ACPI), waits up to grace, then pulls the plug
	// (grace 0: at once). Stopping a shut-off domain does nothing.
	Stop(ctx context.Context, id string, grace time.Duration) error

	// Destroy powers the guest off at once and forgets the domain. A missing
	// domain is not an error. Disks and the console log are left in place.
	Destroy(ctx context.Context, id string) error

	// Reboot resets a running guest, as a hardware reset: the test guest
	// (like many small images) has no ACPI daemon, and EC2 itself falls back
	// to a hard reboot. ErrNotRunning when the guest is not running.
	Reboot(ctx context.Context, id string) error

	// State is the domain's state now; ErrNotFound when there is none.
	State(ctx context.Context, id string) (State, error)

	// List returns the domains this project made on this host, active or not.
	List(ctx context.Context) ([]Domain, error)

	// Console returns the end of the guest's serial console (at most
	// ConsoleMax bytes, as EC2's GetConsoleOutput), also after the guest
	// stopped; ErrNotFound when there is no domain.
	Console(ctx context.Context, id string) ([]byte, error)

	// AttachVolume plugs an EBS volume into instance id's guest as a virtio
	// disk (a running guest sees it at once; a shut-off domain has it at
	// its next boot) and adds it to the spec the domain keeps, so Recover
	// returns it. Harmless twice for one volume: a volume already there
	// (by VolumeID) is left as it is. A Boot volume cannot be hot-plugged:
	// it is given to Start.
	AttachVolume(ctx context.Context, id string, v VolumeDisk) error

	// DetachVolume unplugs volume volumeID from instance id's guest and
	// drops it from the domain's spec. Unforced, it returns once the guest
	// released the disk, or fails with ErrDetachTimeout when it has not
	// by the driver's deadline (the request stands: a later call finds it
	// done); forced, it returns at once, the device leaving the running
	// guest whenever the guest lets it go. A volume the domain does not
	// have is not an error; a missing domain is ErrNotFound.
	DetachVolume(ctx context.Context, id, volumeID string, force bool) error

	// ResumeIOError resumes instance id's guest if, and only if, the
	// hypervisor paused it because a disk returned an I/O error (volumes
	// are attached with the stop-on-error policy, so a storage controller
	// that restarts pauses the guest instead of failing its writes). It
	// reports whether it resumed it. The failed requests are retried on
	// resume; the NC calls it once the volumes' paths are back.
	ResumeIOError(ctx context.Context, id string) (bool, error)

	// Recover is what an NC calls once when it starts: it (re)connects to
	// the hypervisor, clears what the driver itself left half-done (such as
	// a probe guest), and returns every domain this project made with the
	// spec it was started with. It starts, stops and removes no instance:
	// the NC adopts the ones its store still wants and destroys the rest.
	Recover(ctx context.Context) ([]Domain, error)

	// Close releases the driver's connection; guests keep running.
	Close() error
}

// ConsoleMax is how much of a console Driver.Console returns: the last
// 64 KiB, what EC2's GetConsoleOutput returns.
const ConsoleMax = 64 << 10

// DomainPrefix starts the name of every domain this project makes.
const DomainPrefix = "euca-"

// DomainName is the hypervisor's name for instance id's domain.
func DomainName(id string) string { return DomainPrefix + id }

// Resources is an amount of host capacity.
// Sleeper is a driver whose host can be powered down and woken again
// (SCHEDPOLICY="POWERSAVE"); the sim driver models it. While Asleep, the
// host answers nothing: its driver's calls fail with ErrAsleep, and the node
// controller over it answers no poll, as a host that is off.
type Sleeper interface {
	Asleep() bool
	PowerOff() error // the host goes to sleep
	Wake() error     // the host comes back (Wake-on-LAN reaches it)
}

type Resources struct {
	Cores     int
	MemoryMiB int
	DiskGiB   int
}

// State is a domain's state as the hypervisor reports it. A domain that does
// not exist has no state: calls report ErrNotFound.
type State string

const (
	Running      State = "running"       // running, or blocked on I/O
	Paused       State = "paused"        // suspended by the hypervisor
	ShuttingDown State = "shutting-down" // asked to power off, not yet off
	Shutoff      State = "shutoff"       // defined, not running: powered off or stopped
	Crashed      State = "crashed"       // defined, not running: the guest crashed
	Unknown      State = "unknown"
)

// Active reports whether a domain in state s has a running guest process.
func (s State) Active() bool { return s == Running || s == Paused || s == ShuttingDown }

// Domain is one of this project's guests as the hypervisor holds it.
type Domain struct {
	ID        string       // the instance id
	Name      string       // the hypervisor's name: DomainName(ID)
	State     State        //
	Spec      InstanceSpec // as given to Start, with Accel filled in
	StartedAt time.Time    // when Start booted it (UTC, seconds)
}

// Errors a driver reports, wrapped with the instance id.
var (
	ErrNotFound    = errors.New("no such domain")
	ErrNotRunning  = errors.New("domain not running")
	ErrForeign     = errors.New("domain not made by euca") // a domain of that name exists but is not ours: left alone
	ErrInvalidSpec = errors.New("invalid instance spec")
	ErrAsleep      = errors.New("the host is asleep") // a Sleeper's host, powered down: it answers nothing
	// ErrDetachTimeout: the guest has not released a volume by the
	// driver's deadline; the detach request stands.
	ErrDetachTimeout = errors.New("the guest has not released the volume")
)

// Accel is how guest code is executed.
type Accel string

const (
	AccelKVM Accel = "kvm" // hardware virtualization through /dev/kvm
	AccelTCG Accel = "tcg" // QEMU's software emulation: slow, runs anywhere
)

// DiskFormat is a disk file's format. It is always stated, never probed
// from the file's contents: a guest could write a qcow2 header into a raw
// disk that names a host file as its backing file.
type DiskFormat string

const (
	Raw   DiskFormat = "raw"
	QCOW2 DiskFormat = "qcow2"
)

// Disk is a disk file a guest sees as a virtio disk.
type Disk struct {
	Path   string     `json:"path,omitempty"`   // absolute; "" for none
	Format DiskFormat `json:"format,omitempty"` // "" is raw
}

// VolumeDisk is an EBS volume as a guest sees it: a virtio disk whose
// blocks QEMU reads and writes over NBD through a unix socket the node
// controller serves for this one attachment (it forwards to the storage
// controller, over TLS, and reconnects when that restarts). The disk stops
// the guest on an I/O error rather than failing the guest's request (see
// Driver.ResumeIOError).
type VolumeDisk struct {
	VolumeID string `json:"volume_id"` // vol-...: names the device (alias "ua-<VolumeID>")
	// Serial is the virtio serial the guest reads in /sys/block/vdX/serial
	// ("vol" and the id's hex, as EC2's Nitro hosts give): the guest's
	// kernel names hot-plugged disks in probe order, so a guest finds a
	// volume by serial, never by name.
	Serial string `json:"serial"`
	Socket string `json:"socket"`           // absolute path of the unix socket serving plain NBD
	Export string `json:"export,omitempty"` // the NBD export name asked for on Socket; "" is VolumeID
	// Boot makes the volume the guest's first disk (/dev/vda), in place of
	// the root disk: an EBS-backed instance. Only at Start.
	Boot bool `json:"boot,omitempty"`
}

// ExportName is the NBD export QEMU asks Socket for.
func (v VolumeDisk) ExportName() string {
	if v.Export != "" {
		return v.Export
	}
	return v.VolumeID
}

// VolumeAlias is the hypervisor's name for volume id's device in a domain
// (libvirt's user aliases start "ua-").
func VolumeAlias(volumeID string) string { return "ua-" + volumeID }

// maxSocketPath is the longest path a unix socket may have (sun_path is
// 108 bytes with its terminating NUL).
const maxSocketPath = 107

var (
	volumeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	serialRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,20}$`) // virtio-blk's serial is 20 bytes
	exportRE   = regexp.MustCompile(`^[!-~]{1,256}$`)
)

// Validate reports what is wrong with v, wrapping ErrInvalidSpec.
func (v *VolumeDisk) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: volume %s: %s", ErrInvalidSpec, v.VolumeID, fmt.Sprintf(format, a...))
	}
	if !volumeIDRE.MatchString(v.VolumeID) {
		return bad("id: want letters, digits, '_' or '-', at most 64")
	}
	if !serialRE.MatchString(v.Serial) {
		return bad("serial %q: want 1 to 20 letters, digits, '_' or '-'", v.Serial)
	}
	if !filepath.IsAbs(v.Socket) || len(v.Socket) > maxSocketPath {
		return bad("socket %q: want an absolute path of at most %d bytes", v.Socket, maxSocketPath)
	}
	if v.Export != "" && !exportRE.MatchString(v.Export) {
		return bad("export %q: want printable ASCII without spaces", v.Export)
	}
	return nil
}

// NIC is one virtio network interface, attached either to a bridge (the
// hypervisor makes the tap, named Tap if given) or, with no Bridge, to a
// tap the network layer made already (Tap required; the hypervisor neither
// makes nor removes it).
type NIC struct {
	Bridge string `json:"bridge,omitempty"`
	Tap    string `json:"tap,omitempty"`
	MAC    string `json:"mac,omitempty"` // "aa:bb:cc:dd:ee:ff"; "" lets the hypervisor choose
	// MTU is the guest's interface MTU (virtio-net's host_mtu, which the
	// guest's driver adopts before any DHCP); 0: Ethernet's 1500.
	MTU int `json:"mtu,omitempty"`
}

// SysInfo sets SMBIOS system fields the guest reads from DMI (cloud-init
// identifies its platform from them). Empty fields keep the hypervisor's.
type SysInfo struct {
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
	Serial       string `json:"serial,omitempty"`
}

// InstanceSpec is everything a driver needs to boot one instance. The files
// it names exist before Start (hypervisor/disk makes them); the driver never
// creates or removes them, except that the console log is emptied at boot.
//
// Drivers keep the spec beside the domain (libvirt: in its metadata, as
// JSON) to give it back after an NC restart; the JSON names are therefore
// a stored format: add fields, never rename them.
type InstanceSpec struct {
	ID        string `json:"id"` // the instance id, "i-…"
	Cores     int    `json:"cores"`
	MemoryMiB int    `json:"memory_mib"`

	Kernel        string `json:"kernel,omitempty"`  // absolute path; "" boots the root disk's own boot loader
	Ramdisk       string `json:"ramdisk,omitempty"` // absolute path; only with Kernel
	KernelCmdline string `json:"cmdline,omitempty"` // "" is DefaultCmdline

	RootDisk      Disk `json:"root_disk"`               // the guest's first disk (/dev/vda), required unless a Volume boots
	EphemeralDisk Disk `json:"ephemeral_disk,omitzero"` // next, when given
	SwapDisk      Disk `json:"swap_disk,omitzero"`      // next, when given

	// Volumes are EBS volumes, attached as the domain is defined: a Boot
	// one in place of RootDisk, the others after the swap disk, in order.
	// AttachVolume and DetachVolume keep the list the domain holds current.
	Volumes []VolumeDisk `json:"volumes,omitempty"`

	NICs []NIC `json:"nics,omitempty"`

	ConsoleLog string `json:"console_log"` // absolute path of the file the serial console writes, required

	SysInfo SysInfo `json:"sysinfo,omitzero"`
	Accel   Accel   `json:"accel,omitempty"` // "" is the driver's choice; AccelKVM or AccelTCG to force one
}

// Volume returns the spec's volume volumeID.
func (s *InstanceSpec) Volume(volumeID string) (VolumeDisk, bool) {
	for _, v := range s.Volumes {
		if v.VolumeID == volumeID {
			return v, true
		}
	}
	return VolumeDisk{}, false
}

// SetVolume adds v to the spec's volumes, or replaces the one of its id.
// The list is copied first: a spec copied by value shares it.
func (s *InstanceSpec) SetVolume(v VolumeDisk) {
	vs := slices.Clone(s.Volumes)
	for i := range vs {
		if vs[i].VolumeID == v.VolumeID {
			vs[i] = v
			s.Volumes = vs
			return
		}
	}
	s.Volumes = append(vs, v)
}

// RemoveVolume drops volume volumeID from the spec's volumes.
func (s *InstanceSpec) RemoveVolume(volumeID string) {
	s.Volumes = slices.DeleteFunc(slices.Clone(s.Volumes), func(v VolumeDisk) bool { return v.VolumeID == volumeID })
	if len(s.Volumes) == 0 {
		s.Volumes = nil
	}
}

// GuestDisks are the names the guest's kernel gives a spec's ephemeral and
// swap disks, "" for one the spec does not have: virtio disks are named in
// the order they are attached (vda, vdb, ...), and they are attached root,
// ephemeral, swap, skipping those not given, so a missing ephemeral disk
// makes the swap disk vdb. The metadata service names them for cloud-init
// by the same letters with "sd" (sdb for vdb), which cloud-init maps back
// to vdX or xvdX.
func GuestDisks(ephemeral, swap bool) (ephemeralDev, swapDev string) {
	next := byte('b')
	if ephemeral {
		ephemeralDev = "vd" + string(next)
		next++
	}
	if swap {
		swapDev = "vd" + string(next)
	}
	return ephemeralDev, swapDev
}

// DefaultCmdline is the kernel command line of a spec that gives none: the
// root disk is the first virtio disk and the console is the serial port.
const DefaultCmdline = "root=/dev/vda console=ttyS0"

// Limits a spec must respect. Linux truncates interface names to 15 bytes.
const (
	maxIfName = 15
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports the first thing wrong with s, wrapping ErrInvalidSpec.
func (s *InstanceSpec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, a...))
	}
	if !idRE.MatchString(s.ID) {
		return bad("id %q: want letters, digits, '.', '_' or '-', at most 64", s.ID)
	}
	if s.Cores < 1 {
		return bad("cores %d: want at least 1", s.Cores)
	}
	if s.MemoryMiB < 16 {
		return bad("memory %d MiB: want at least 16", s.MemoryMiB)
	}
	if s.Ramdisk != "" && s.Kernel == "" {
		return bad("a ramdisk needs a kernel")
	}
	for _, f := range []struct{ what, path string }{{"kernel", s.Kernel}, {"ramdisk", s.Ramdisk}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			return bad("%s %q: not an absolute path", f.what, f.path)
		}
	}
	boots := 0
	seen := map[string]bool{}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if err := v.Validate(); err != nil {
			return err
		}
		if seen[v.VolumeID] {
			return bad("volume %s given twice", v.VolumeID)
		}
		seen[v.VolumeID] = true
		if v.Boot {
			boots++
		}
	}
	switch {
	case boots > 1:
		return bad("%d boot volumes: want at most one", boots)
	case boots == 1 && s.RootDisk.Path != "":
		return bad("both a root disk and a boot volume")
	case boots == 0 && s.RootDisk.Path == "":
		return bad("no root disk")
	}
	for _, d := range []struct {
		what string
		d    Disk
	}{{"root disk", s.RootDisk}, {"ephemeral disk", s.EphemeralDisk}, {"swap disk", s.SwapDisk}} {
		if d.d.Path == "" {
			if d.d.Format != "" {
				return bad("%s: a format without a path", d.what)
			}
			continue
		}
		if !filepath.IsAbs(d.d.Path) {
			return bad("%s %q: not an absolute path", d.what, d.d.Path)
		}
		switch d.d.Format {
		case "", Raw, QCOW2:
		default:
			return bad("%s format %q: want raw or qcow2", d.what, d.d.Format)
		}
	}
	for i, n := range s.NICs {
		if n.Bridge == "" && n.Tap == "" {
			return bad("nic %d: neither a bridge nor a tap", i)
		}
		if len(n.Bridge) > maxIfName || len(n.Tap) > maxIfName {
			return bad("nic %d: interface names are at most %d bytes", i, maxIfName)
		}
		if n.MAC != "" {
			hw, err := net.ParseMAC(n.MAC)
			if err != nil || len(hw) != 6 || hw[0]&1 == 1 {
				return bad("nic %d: mac %q: want a unicast aa:bb:cc:dd:ee:ff", i, n.MAC)
			}
		}
	}
	if s.ConsoleLog == "" || !filepath.IsAbs(s.ConsoleLog) {
		return bad("console log %q: want an absolute path", s.ConsoleLog)
	}
	switch s.Accel {
	case "", AccelKVM, AccelTCG:
	default:
		return bad("accel %q: want kvm or tcg", s.Accel)
	}
	return nil
}

// ReadConsoleFile returns the last ConsoleMax bytes of the console log at
// path; a log not written yet reads as empty.
func ReadConsoleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if off := fi.Size() - ConsoleMax; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, ConsoleMax))
}
