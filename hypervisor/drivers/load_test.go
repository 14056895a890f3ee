package drivers

import (
	"context"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	ctx := context.Background()
	d, err := Load(ctx, "sim", Config{InstancePath: t.TempDir()})
	if err != nil || d.Name() != "sim" {
		t.Fatalf("sim: %v, %v", d, err)
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
