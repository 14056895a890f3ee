// Package drivers chooses the hypervisor.Driver a node controller runs,
// by name, from one literal map: nothing registers itself, and the
// simulated driver runs only when asked for by name, never as a fallback
// for a hypervisor that is missing.
package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/libvirt"
	"github.com/euca-cloud/euca/hypervisor/sim"
)

// Config is what a driver is made from.
type Config struct {
	Hypervisor   string        // HYPERVISOR: auto (or ""), kvm, qemu; xen is refused
	InstancePath string        // INSTANCE_PATH
	Probe        libvirt.Probe // the guest that proves KVM (HYPERVISOR=auto)
	Socket       string        // libvirtd's socket; "" is libvirt.DefaultSocket
	// SimHost is the simulated host's size (MAX_CORES, MAX_MEM, MAX_DISK:
	// a host that does not exist has no hardware to measure, so the caps
	// size it, larger than sim.DefaultCapacity for a scale test of 10,000
	// instances); zero fields: sim.DefaultCapacity's. Real drivers measure
	// their host and ignore it.
	SimHost hypervisor.Resources
	Log     *slog.Logger
}

// Default is the driver of a node that names none.
const Default = "libvirt"

var drivers = map[string]func(context.Context, Config) (hypervisor.Driver, error){
	"libvirt": func(ctx context.Context, c Config) (hypervisor.Driver, error) {
		d, err := libvirt.New(ctx, libvirt.Options{Socket: c.Socket, Hypervisor: c.Hypervisor,
			InstancePath: c.InstancePath, Probe: c.Probe, Log: c.Log})
		if err != nil {
			return nil, err
		}
		return d, nil
	},
	// The simulated host keeps its domains beside the instances' files, and
	// lives as long as the process that simulates it: an NC process that
	// is killed and started again over the same INSTANCE_PATH finds the
	// host rebooted, as after a power cut, and its guests gone (package
	// sim).
	"sim": func(ctx context.Context, c Config) (hypervisor.Driver, error) {
		d, err := sim.New(ctx, sim.Options{Dir: filepath.Join(c.InstancePath, ".sim-host"), Capacity: c.SimHost})
		if err != nil {
			return nil, err
		}
		return d, nil
	},
}

// Names lists the drivers, sorted.
func Names() []string {
	var n []string
	for k := range drivers {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Load makes driver name ("" is Default). HYPERVISOR=xen is refused here,
// whatever the driver, with what to do instead: eucalyptus.conf files of
// Eucalyptus 1.x often say xen, and the conf reader only warns.
func Load(ctx context.Context, name string, c Config) (hypervisor.Driver, error) {
	if strings.EqualFold(c.Hypervisor, "xen") {
		return nil, fmt.Errorf(`HYPERVISOR="xen": this build cannot drive Xen; ` +
			`set HYPERVISOR="kvm" or "qemu" in eucalyptus.conf, or remove the line to let the node choose`)
	}
	if name == "" {
		name = Default
	}
	f, ok := drivers[name]
	if !ok {
		return nil, fmt.Errorf("hypervisor driver %q: unknown (have %s)", name, strings.Join(Names(), ", "))
	}
	return f(ctx, c)
}
