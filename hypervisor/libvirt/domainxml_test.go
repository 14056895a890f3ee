package libvirt

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"libvirt.org/go/libvirtxml"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/nstest"
)

func testSpec() hypervisor.InstanceSpec {
	return hypervisor.InstanceSpec{ID: "i-0123456789abcdef0", Cores: 2, MemoryMiB: 256,
		Kernel: "/c/vmlinuz", Ramdisk: "/c/initrd.img",
		RootDisk:      hypervisor.Disk{Path: "/i/root.qcow2", Format: hypervisor.QCOW2},
		SwapDisk:      hypervisor.Disk{Path: "/i/swap.img", Format: hypervisor.Raw},
		NICs:          []hypervisor.NIC{{Bridge: "euca-br0", Tap: "euca-tap1", MAC: "d0:0d:12:34:56:78"}, {Tap: "euca-tap2"}},
		ConsoleLog:    "/i/console.log",
		SysInfo:       hypervisor.SysInfo{Manufacturer: "Eucalyptus", Product: "euca-cloud"},
		KernelCmdline: "console=ttyS0 <&>\"",
		Accel:         hypervisor.AccelTCG}
}

func TestDomainXML(t *testing.T) {
	spec := testSpec()
	started := time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)
	doc, err := domainXML(spec, kindInstance, started)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if x.Type != "qemu" || x.Name != "euca-i-0123456789abcdef0" || x.Memory.Value != 256 || x.Memory.Unit != "MiB" || x.VCPU.Value != 2 {
		t.Errorf("domain head: type %q name %q memory %+v vcpu %+v", x.Type, x.Name, x.Memory, x.VCPU)
	}
	if x.OS.Kernel != spec.Kernel || x.OS.Initrd != spec.Ramdisk || x.OS.Cmdline != spec.KernelCmdline || x.OS.SMBios == nil {
		t.Errorf("os: %+v", x.OS)
	}
	var disks []string
	for _, d := range x.Devices.Disks {
		disks = append(disks, d.Target.Dev+"="+d.Source.File.File+":"+d.Driver.Type+":"+d.Target.Bus)
	}
	// No ephemeral disk: the swap disk is the second, vdb.
	if want := []string{"vda=/i/root.qcow2:qcow2:virtio", "vdb=/i/swap.img:raw:virtio"}; !reflect.DeepEqual(disks, want) {
		t.Errorf("disks %v, want %v", disks, want)
	}
	if n := len(x.Devices.Interfaces); n != 2 {
		t.Fatalf("%d interfaces", n)
	}
	br, eth := x.Devices.Interfaces[0], x.Devices.Interfaces[1]
	if br.Source.Bridge == nil || br.Source.Bridge.Bridge != "euca-br0" || br.Target.Dev != "euca-tap1" || br.MAC.Address != "d0:0d:12:34:56:78" || br.Model.Type != "virtio" {
		t.Errorf("bridge nic: %+v", br)
	}
	if eth.Source.Ethernet == nil || eth.Target.Dev != "euca-tap2" || eth.Target.Managed != "no" || eth.MAC != nil {
		t.Errorf("tap nic: %+v", eth)
	}
	if s := x.Devices.Serials; len(s) != 1 || s[0].Source.File == nil || s[0].Source.File.Path != spec.ConsoleLog {
		t.Errorf("serial: %+v", s)
	}
	if len(x.Devices.Graphics) != 0 {
		t.Error("a graphics device")
	}

	got, err := describeXML(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ours || got.kind != kindInstance || got.dom.ID != spec.ID || !got.dom.StartedAt.Equal(started) {
		t.Errorf("described: %+v", got)
	}
	if !reflect.DeepEqual(got.dom.Spec, spec) {
		t.Errorf("spec round trip:\n got %+v\nwant %+v", got.dom.Spec, spec)
	}

	spec.Accel, spec.Kernel, spec.Ramdisk = hypervisor.AccelKVM, "", ""
	doc, _ = domainXML(spec, kindInstance, started)
	x = libvirtxml.Domain{}
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if x.Type != "kvm" || x.OS.Kernel != "" || len(x.OS.BootDevices) != 1 || x.OS.BootDevices[0].Dev != "hd" {
		t.Errorf("kvm, disk boot: type %q os %+v", x.Type, x.OS)
	}
}

// TestDiskNamesAgree: the disks' targets are the names hypervisor.GuestDisks
// says the guest sees, which the metadata service reports, whichever disks
// a spec has.
func TestDiskNamesAgree(t *testing.T) {
	for _, tc := range []struct{ eph, swap bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
		spec := testSpec()
		spec.SwapDisk = hypervisor.Disk{}
		if tc.eph {
			spec.EphemeralDisk = hypervisor.Disk{Path: "/i/ephemeral.img"}
		}
		if tc.swap {
			spec.SwapDisk = hypervisor.Disk{Path: "/i/swap.img"}
		}
		doc, err := domainXML(spec, kindInstance, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var x libvirtxml.Domain
		if err := x.Unmarshal(doc); err != nil {
			t.Fatal(err)
		}
		target := map[string]string{}
		for _, d := range x.Devices.Disks {
			target[d.Source.File.File] = d.Target.Dev
		}
		eph, swap := hypervisor.GuestDisks(tc.eph, tc.swap)
		if target["/i/root.qcow2"] != "vda" || target["/i/ephemeral.img"] != eph || target["/i/swap.img"] != swap {
			t.Errorf("ephemeral %v swap %v: targets %v, GuestDisks says %q %q", tc.eph, tc.swap, target, eph, swap)
		}
	}
}

// Only our metadata element makes a domain ours: a prefix is not enough, nor
// an element of another namespace, nor our element on a name it does not
// match.
func TestDescribeForeign(t *testing.T) {
	ours, _ := domainXML(testSpec(), kindInstance, time.Now())
	for name, doc := range map[string]string{
		"prefix only":       `<domain type='qemu'><name>euca-i-1</name></domain>`,
		"other namespace":   `<domain type='qemu'><name>euca-i-1</name><metadata><x:instance xmlns:x="urn:other" kind="instance"/></metadata></domain>`,
		"copied elsewhere":  strings.Replace(ours, "<name>euca-i-0123456789abcdef0</name>", "<name>euca-i-other</name>", 1),
		"renamed, no euca-": strings.Replace(ours, "<name>euca-i-0123456789abcdef0</name>", "<name>i-0123456789abcdef0</name>", 1),
	} {
		got, err := describeXML(doc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got.ours {
			t.Errorf("%s: taken as ours", name)
		}
	}
	// Our element among others is found.
	mixed := strings.Replace(ours, "<metadata>", `<metadata><x:note xmlns:x="urn:other"><x:a>1</x:a></x:note>`, 1)
	if got, err := describeXML(mixed); err != nil || !got.ours {
		t.Errorf("ours beside another element: %+v, %v", got, err)
	}
}

func TestXenRefused(t *testing.T) {
	_, err := New(context.Background(), Options{Hypervisor: "xen", Socket: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "cannot drive Xen") {
		t.Errorf("HYPERVISOR=xen: %v", err)
	}
	_, err = New(context.Background(), Options{Hypervisor: "vmware", Socket: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "vmware") {
		t.Errorf("HYPERVISOR=vmware: %v", err)
	}
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	u1 := k.lock("a")
	u2 := k.lock("b") // another key is not blocked
	done := make(chan struct{})
	go func() { k.lock("a")(); close(done) }()
	select {
	case <-done:
		t.Fatal("a second lock of one key did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	u1()
	<-done
	u2()
	if len(k.m) != 0 {
		t.Errorf("entries left: %v", k.m)
	}
}

// TestNICMTU: a NIC with an MTU carries it in the domain (virtio host_mtu);
// bridgeMTUs gives it a bridge's below 1500 (in a fresh namespace), and
// leaves it alone on an Ethernet-sized bridge or when the NIC names one.
func TestNICMTU(t *testing.T) {
	spec := testSpec()
	spec.NICs[0].MTU = 1450
	doc, err := domainXML(spec, kindInstance, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if m := x.Devices.Interfaces[0].MTU; m == nil || m.Size != 1450 {
		t.Errorf("nic mtu %+v, want 1450", m)
	}
	if m := x.Devices.Interfaces[1].MTU; m != nil {
		t.Errorf("nic without an MTU got %+v", m)
	}

	nstest.Inside(t, func() {
		for name, mtu := range map[string]int{"euca-vx": 1450, "euca-eth": 1500} {
			if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}}); err != nil {
				t.Error(err)
				return
			}
		}
		in := []hypervisor.NIC{{Bridge: "euca-vx"}, {Bridge: "euca-eth"}, {Bridge: "euca-vx", MTU: 1300}, {Tap: "euca-t"}, {Bridge: "euca-none"}}
		got := bridgeMTUs(in)
		var mtus []int
		for _, n := range got {
			mtus = append(mtus, n.MTU)
		}
		if want := []int{1450, 0, 1300, 0, 0}; !slices.Equal(mtus, want) {
			t.Errorf("MTUs %v, want %v", mtus, want)
		}
		if in[0].MTU != 0 {
			t.Error("bridgeMTUs changed its argument")
		}
	})
}

// Volumes are NBD disks on the node's unix sockets, stopping the guest on
// an error; a boot volume is the first disk in place of the root file, the
// others follow the swap disk. The spec, volumes and all, comes back from
// the metadata, also as SetMetadata leaves it (no namespace on the spec).
func TestDomainXMLVolumes(t *testing.T) {
	spec := testSpec()
	spec.RootDisk = hypervisor.Disk{}
	spec.Volumes = []hypervisor.VolumeDisk{
		{VolumeID: "vol-0a", Serial: "vol0a", Socket: "/i/vol-0a.sock"},
		{VolumeID: "vol-0b", Serial: "vol0b", Socket: "/i/vol-0b.sock", Export: "vol-0b/att-1", Boot: true},
	}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 11, 25, 3, 4, 5, 0, time.UTC)
	doc, err := domainXML(spec, kindInstance, started)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	var disks []string
	for _, d := range x.Devices.Disks {
		src := ""
		switch {
		case d.Source.File != nil:
			src = d.Source.File.File
		case d.Source.Network != nil:
			n := d.Source.Network
			h := n.Hosts[0]
			src = n.Protocol + ":" + n.Name + "@" + h.Transport + ":" + h.Socket + " serial=" + d.Serial + " alias=" + d.Alias.Name +
				" policy=" + d.Driver.ErrorPolicy + "/" + d.Driver.RErrorPolicy + " cache=" + d.Driver.Cache
		}
		disks = append(disks, d.Target.Dev+"="+src)
	}
	want := []string{
		"vda=nbd:vol-0b/att-1@unix:/i/vol-0b.sock serial=vol0b alias=ua-vol-0b policy=stop/stop cache=none",
		"vdb=/i/swap.img",
		"vdc=nbd:vol-0a@unix:/i/vol-0a.sock serial=vol0a alias=ua-vol-0a policy=stop/stop cache=none",
	}
	if !reflect.DeepEqual(disks, want) {
		t.Errorf("disks\n%v\nwant\n%v", strings.Join(disks, "\n"), strings.Join(want, "\n"))
	}
	got, err := describeXML(doc)
	if err != nil || !got.ours || !reflect.DeepEqual(got.dom.Spec.Volumes, spec.Volumes) {
		t.Errorf("described: %+v, %v", got, err)
	}

	// As libvirt stores what setSpec gives it.
	body, err := metaBody(kindInstance, started, spec)
	if err != nil {
		t.Fatal(err)
	}
	stored := strings.Replace(strings.Replace(body, "<instance ", `<euca:instance xmlns:euca="`+metaNS+`" `, 1),
		"</instance>", "</euca:instance>", 1)
	x.Metadata = &libvirtxml.DomainMetadata{XML: stored}
	doc2, err := x.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err = describeXML(doc2)
	if err != nil || !got.ours || !reflect.DeepEqual(got.dom.Spec.Volumes, spec.Volumes) || !got.dom.StartedAt.Equal(started) {
		t.Errorf("described after SetMetadata: %+v, %v", got, err)
	}

	if name, err := freeTarget(map[string]bool{"vda": true, "vdb": true}, map[string]bool{"vdc": true}); err != nil || name != "vdd" {
		t.Errorf("freeTarget = %q, %v", name, err)
	}
}
