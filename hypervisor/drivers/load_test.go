package drivers

import (
	"context"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/sim"
)

func TestLoad(t *testing.T) {
	ctx := context.Background()
	d, err := Load(ctx, "sim", Config{InstancePath: t.TempDir()})
	if err != nil || d.Name() != "sim" {
		t.Fatalf("sim: %v, %v", d, err)
	}
	d.Close()
	// The caps size a simulated host, beyond sim.DefaultCapacity (a scale
	// test of 10,000 m1.small needs 10,000 cores); unset, the default.
	d, err = Load(ctx, "sim", Config{InstancePath: t.TempDir(), SimHost: hypervisor.Resources{Cores: 10000, MemoryMiB: 2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	want := hypervisor.Resources{Cores: 10000, MemoryMiB: 2 << 20, DiskGiB: sim.DefaultCapacity.DiskGiB}
	if got, err := d.Capacity(ctx); err != nil || got != want {
		t.Errorf("sim sized by the caps: capacity %+v, %v; want %+v", got, err, want)
	}
	d.Close()
	for _, c := range []struct{ name, hv, want string }{
		{"sim", "xen", "cannot drive Xen"},
		{"", "XEN", "cannot drive Xen"},
		{"vmware", "", `"vmware": unknown (have libvirt, sim)`},
		// No silent fallback: no libvirtd is an error, never the simulation.
		{"", "auto", "libvirtd at /nonexistent"},
	} {
		d, err := Load(ctx, c.name, Config{Hypervisor: c.hv, InstancePath: t.TempDir(), Socket: "/nonexistent"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%q, HYPERVISOR=%q) = %v, %v; want an error with %q", c.name, c.hv, d, err, c.want)
		}
	}
}
