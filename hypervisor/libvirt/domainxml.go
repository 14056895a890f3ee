package libvirt

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/vishvananda/netlink"
)

// metaNS names the element in each domain's <metadata> that marks it as
// this project's and records the spec it was started with, so List and
// Recover can tell our domains from anyone else's (a name prefix alone
// could be a coincidence) and an NC that restarts gets its specs back.
const metaNS = "https://github.com/euca-cloud/euca/xmlns/domain/1"

// Kinds of domains this driver makes.
const (
	kindInstance = "instance"
	kindProbe    = "probe" // the KVM probe guest: never listed, removed by Recover
)

// meta is the element written into <metadata>.
type meta struct {
	XMLName xml.Name `xml:"https://github.com/euca-cloud/euca/xmlns/domain/1 instance"`
	Kind    string   `xml:"kind,attr"`
	Started string   `xml:"started,attr"` // RFC 3339
	// Spec is matched in any namespace: Start writes it in ours, while
	// libvirt's SetMetadata (AttachVolume) puts only the outer element
	// there.
	Spec string `xml:"spec"`
}

// metaXML renders the metadata element. libvirt wants the element in a
// namespace with a prefix of its own; encoding/xml would write a default
// namespace, so the outer element is written here.
func metaXML(kind string, started time.Time, spec hypervisor.InstanceSpec) (string, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<euca:instance xmlns:euca=%q kind=%q started=%q><euca:spec>`,
		metaNS, kind, started.UTC().Format(time.RFC3339))
	if err := xml.EscapeText(&b, js); err != nil {
		return "", err
	}
	b.WriteString(`</euca:spec></euca:instance>`)
	return b.String(), nil
}

// metaBody is the metadata element as DomainSetMetadata takes it: without
// a namespace, which libvirt adds (with prefix "euca") to the outer
// element.
func metaBody(kind string, started time.Time, spec hypervisor.InstanceSpec) (string, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<instance kind=%q started=%q><spec>`, kind, started.UTC().Format(time.RFC3339))
	if err := xml.EscapeText(&b, js); err != nil {
		return "", err
	}
	b.WriteString(`</spec></instance>`)
	return b.String(), nil
}

// parseMeta finds our element among a domain's metadata; ok is false when
// there is none (the domain is not ours).
func parseMeta(inner string) (m meta, ok bool, err error) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return meta{}, false, nil
		}
		if err != nil {
			return meta{}, false, err
		}
		se, isStart := tok.(xml.StartElement)
		if !isStart {
			continue
		}
		if se.Name.Space != metaNS || se.Name.Local != "instance" {
			if err := dec.Skip(); err != nil {
				return meta{}, false, err
			}
			continue
		}
		if err := dec.DecodeElement(&m, &se); err != nil {
			return meta{}, false, err
		}
		return m, true, nil
	}
}

// described is one domain as read back from libvirt.
type described struct {
	ours bool
	kind string
	dom  hypervisor.Domain
}

// describeXML reads a domain's XML: whether it is ours, and if so its spec.
func describeXML(doc string) (described, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return described{}, err
	}
	out := described{dom: hypervisor.Domain{Name: x.Name}}
	if x.Metadata == nil || !strings.HasPrefix(x.Name, hypervisor.DomainPrefix) {
		return out, nil
	}
	m, ok, err := parseMeta(x.Metadata.XML)
	if err != nil || !ok {
		return out, err
	}
	if err := json.Unmarshal([]byte(m.Spec), &out.dom.Spec); err != nil {
		return described{}, fmt.Errorf("domain %s: our metadata: %w", x.Name, err)
	}
	// The name is the truth: a spec whose id disagrees was not written by us.
	if hypervisor.DomainName(out.dom.Spec.ID) != x.Name {
		return out, nil
	}
	out.ours, out.kind = true, m.Kind
	out.dom.ID = out.dom.Spec.ID
	out.dom.StartedAt, _ = time.Parse(time.RFC3339, m.Started)
	return out, nil
}

// domainXML is the libvirt domain for spec, whose Accel is set. It is what
// Start defines, and what the benchmark hands to a bare `virsh create`.
func domainXML(spec hypervisor.InstanceSpec, kind string, started time.Time) (string, error) {
	md, err := metaXML(kind, started, spec)
	if err != nil {
		return "", err
	}
	typ := "qemu" // QEMU's TCG
	if spec.Accel == hypervisor.AccelKVM {
		typ = "kvm"
	}
	d := &libvirtxml.Domain{
		Type:     typ,
		Name:     hypervisor.DomainName(spec.ID),
		Metadata: &libvirtxml.DomainMetadata{XML: md},
		Memory:   &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(spec.Cores)},
		OS: &libvirtxml.DomainOS{
			Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    &libvirtxml.DomainDeviceList{},
	}
	if spec.Kernel != "" {
		d.OS.Kernel, d.OS.Initrd = spec.Kernel, spec.Ramdisk
		d.OS.Cmdline = spec.KernelCmdline
		if d.OS.Cmdline == "" {
			d.OS.Cmdline = hypervisor.DefaultCmdline
		}
	} else {
		d.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}
	if si := spec.SysInfo; si != (hypervisor.SysInfo{}) {
		var entries []libvirtxml.DomainSysInfoEntry
		for _, e := range []struct{ name, value string }{
			{"manufacturer", si.Manufacturer}, {"product", si.Product}, {"serial", si.Serial},
		} {
			if e.value != "" {
				entries = append(entries, libvirtxml.DomainSysInfoEntry{Name: e.name, Value: e.value})
			}
		}
		d.SysInfo = []libvirtxml.DomainSysInfo{{SMBIOS: &libvirtxml.DomainSysInfoSMBIOS{
			System: &libvirtxml.DomainSysInfoSystem{Entry: entries}}}}
		d.OS.SMBios = &libvirtxml.DomainSMBios{Mode: "sysinfo"}
	}

	dev := d.Devices
	// Disks take consecutive names, as the guest's kernel will name them
	// (hypervisor.GuestDisks: a missing ephemeral disk makes the swap disk
	// vdb), which is what the metadata's block-device-mapping tells
	// cloud-init.
	letter := 'a'
	for _, v := range spec.Volumes {
		if v.Boot { // an EBS-backed instance's root: the first disk
			dev.Disks = append(dev.Disks, volumeDisk(v, "vd"+string(letter)))
			letter++
		}
	}
	for _, disk := range []hypervisor.Disk{spec.RootDisk, spec.EphemeralDisk, spec.SwapDisk} {
		if disk.Path == "" {
			continue
		}
		format := string(disk.Format)
		if format == "" {
			format = string(hypervisor.Raw)
		}
		dev.Disks = append(dev.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format, Discard: "unmap"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk.Path}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vd" + string(letter), Bus: "virtio"},
		})
		letter++
	}
	for _, v := range spec.Volumes {
		if !v.Boot {
			dev.Disks = append(dev.Disks, volumeDisk(v, "vd"+string(letter)))
			letter++
		}
	}
	for _, n := range spec.NICs {
		iface := libvirtxml.DomainInterface{Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"}}
		if n.MAC != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: n.MAC}
		}
		if n.MTU > 0 {
			iface.MTU = &libvirtxml.DomainInterfaceMTU{Size: uint(n.MTU)}
		}
		if n.Bridge != "" {
			iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}}
			if n.Tap != "" {
				iface.Target = &libvirtxml.DomainInterfaceTarget{Dev: n.Tap}
			}
		} else {
			// A tap the network layer made and will remove: libvirt only opens it.
			iface.Source = &libvirtxml.DomainInterfaceSource{Ethernet: &libvirtxml.DomainInterfaceSourceEthernet{}}
			iface.Target = &libvirtxml.DomainInterfaceTarget{Dev: n.Tap, Managed: "no"}
		}
		dev.Interfaces = append(dev.Interfaces, iface)
	}
	port := uint(0)
	dev.Serials = []libvirtxml.DomainSerial{{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: spec.ConsoleLog}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
	}}
	// No <graphics> (libvirt refuses type 'none'; none at all is headless),
	// no USB, no balloon: less for TCG to emulate at boot.
	dev.Controllers = []libvirtxml.DomainController{{Type: "usb", Model: "none"}}
	dev.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "none"}
	return d.Marshal()
}

// bridgeMTUs gives each NIC on a bridge with an MTU below Ethernet's (a
// cluster network carried between hosts over VXLAN) that MTU, unless it
// has one: the guest then sends no frame the tunnel would drop, whether or
// not its DHCP client applies the MTU the lease offers. libvirt would set
// the host side (the tap) to the bridge's MTU by itself, but not the
// guest's.
func bridgeMTUs(nics []hypervisor.NIC) []hypervisor.NIC {
	out := slices.Clone(nics)
	for i, n := range out {
		if n.MTU > 0 || n.Bridge == "" {
			continue
		}
		if l, err := netlink.LinkByName(n.Bridge); err == nil && l.Attrs().MTU > 0 && l.Attrs().MTU < 1500 {
			out[i].MTU = l.Attrs().MTU
		}
	}
	return out
}

// volumeDisk is the virtio disk of an EBS volume: QEMU's NBD client on the
// unix socket the node serves for the attachment. Errors stop the guest
// (error_policy/rerror_policy "stop") instead of reaching it: libvirt 9.0
// has no NBD reconnect delay, so a storage controller that restarts would
// otherwise fail the guest's writes; paused, the guest loses nothing and
// the node resumes it (Driver.ResumeIOError) once the volume answers. No
// host cache (cache='none'): a write the guest flushed is on its way to the
// storage controller, not in this host's page cache.
func volumeDisk(v hypervisor.VolumeDisk, target string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw", Cache: "none", Discard: "unmap",
			ErrorPolicy: "stop", RErrorPolicy: "stop"},
		Source: &libvirtxml.DomainDiskSource{Network: &libvirtxml.DomainDiskSourceNetwork{
			Protocol: "nbd", Name: v.ExportName(),
			Hosts: []libvirtxml.DomainDiskSourceHost{{Transport: "unix", Socket: v.Socket}},
		}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: "virtio"},
		Serial: v.Serial,
		Alias:  &libvirtxml.DomainAlias{Name: hypervisor.VolumeAlias(v.VolumeID)},
	}
}

// volumeDiskXML is volumeDisk's <disk> element, for a hot-plug.
func volumeDiskXML(v hypervisor.VolumeDisk, target string) (string, error) {
	d := volumeDisk(v, target)
	return d.Marshal()
}

// domainDisks reads a domain's XML: the target names its disks take, and
// whether it has a device of alias.
func domainDisks(doc, alias string) (targets map[string]bool, has bool, err error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return nil, false, err
	}
	targets = map[string]bool{}
	if x.Devices == nil {
		return targets, false, nil
	}
	for _, d := range x.Devices.Disks {
		if d.Target != nil {
			targets[d.Target.Dev] = true
		}
		if d.Alias != nil && d.Alias.Name == alias {
			has = true
		}
	}
	return targets, has, nil
}

// freeTarget is the first virtio disk name no disk of the domain takes.
func freeTarget(taken ...map[string]bool) (string, error) {
	for c := 'a'; c <= 'z'; c++ {
		name := "vd" + string(c)
		free := true
		for _, t := range taken {
			if t[name] {
				free = false
			}
		}
		if free {
			return name, nil
		}
	}
	return "", errors.New("no free virtio disk name (vda to vdz are taken)")
}
