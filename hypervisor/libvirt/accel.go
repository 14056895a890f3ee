package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/euca-cloud/euca/hypervisor"
)

// Probe is a guest that proves KVM can run guests on this host. Having
// /dev/kvm is not proof: a host may offer a KVM that accepts a guest and then
// never runs it (a nested, paravirtual KVM without VMX/SVM hangs at 100 %
// CPU with an empty console). So under HYPERVISOR=auto the driver boots the
// probe under KVM and waits for Marker on its console; only then are guests
// run under KVM.
//
// The test guest (scripts/guest-image.sh) is such a probe: given the kernel
// argument euca.probe, its ramdisk prints EUCA-PROBE-OK and powers off,
// without any disk.
type Probe struct {
	Kernel, Ramdisk string        // absolute paths; no Kernel: KVM cannot be proven, TCG is used
	Cmdline         string        // "" is DefaultProbeCmdline
	Marker          string        // "" is DefaultProbeMarker
	Timeout         time.Duration // 0 is DefaultProbeTimeout
	Dir             string        // scratch for the probe's console and empty disk; "" is os.TempDir()
}

const (
	DefaultProbeCmdline = "console=ttyS0 quiet euca.probe"
	DefaultProbeMarker  = "EUCA-PROBE-OK"
	// A KVM guest reaches its ramdisk in well under a second; TCG on this
	// kind of machine takes ~2 s. The bound is paid in full (plus ~2 s to
	// destroy the stuck guest) only where KVM hangs, once per NC start.
	DefaultProbeTimeout = 10 * time.Second
)

// chooseAccel applies HYPERVISOR (mode: "", "auto", "kvm" or "qemu").
func (d *Driver) chooseAccel(ctx context.Context, l *golibvirt.Libvirt, mode string) (hypervisor.Accel, error) {
	if mode == "qemu" {
		return hypervisor.AccelTCG, nil
	}
	hasKVM, err := offersKVM(l)
	if err != nil {
		return "", err
	}
	if mode == "kvm" {
		if !hasKVM {
			return "", fmt.Errorf(`HYPERVISOR="kvm", but libvirt offers no KVM domains on this host ` +
				`(is /dev/kvm present and usable?); use HYPERVISOR="qemu" for software emulation`)
		}
		return hypervisor.AccelKVM, nil
	}
	// auto: KVM only when proven; otherwise one warning and TCG.
	if !hasKVM {
		d.log.Warn("KVM is not available (libvirt offers no KVM domains): guests run under TCG software emulation, much slower")
		return hypervisor.AccelTCG, nil
	}
	if d.o.Probe.Kernel == "" {
		d.log.Warn(`KVM is present but no probe guest is configured to prove it runs guests: ` +
			`guests run under TCG software emulation; set HYPERVISOR="kvm" to use KVM unproven`)
		return hypervisor.AccelTCG, nil
	}
	ok, why, err := d.probeKVM(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		d.log.Warn("KVM is present but could not run a probe guest: guests run under TCG software emulation, much slower",
			"why", why)
		return hypervisor.AccelTCG, nil
	}
	d.log.Info("KVM ran a probe guest: guests run under KVM")
	return hypervisor.AccelKVM, nil
}

// offersKVM reads libvirt's capabilities for an x86_64 guest of type kvm.
func offersKVM(l *golibvirt.Libvirt) (bool, error) {
	doc, err := l.ConnectGetCapabilities()
	if err != nil {
		return false, fmt.Errorf("libvirt capabilities: %w", err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(doc); err != nil {
		return false, fmt.Errorf("libvirt capabilities: %w", err)
	}
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != "x86_64" {
			continue
		}
		for _, dom := range g.Arch.Domains {
			if dom.Type == "kvm" {
				return true, nil
			}
		}
	}
	return false, nil
}

// probeKVM boots the probe guest under KVM and reports whether its marker
// appeared within the bound, and if not, why.
func (d *Driver) probeKVM(ctx context.Context) (ok bool, why string, err error) {
	p := d.o.Probe
	if p.Cmdline == "" {
		p.Cmdline = DefaultProbeCmdline
	}
	if p.Marker == "" {
		p.Marker = DefaultProbeMarker
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultProbeTimeout
	}
	dir, err := os.MkdirTemp(p.Dir, "euca-kvm-probe-")
	if err != nil {
		return false, "", fmt.Errorf("kvm probe: %w", err)
	}
	defer os.RemoveAll(dir)
	// The spec needs a root disk; the probe never reads it.
	root := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(root, make([]byte, 1<<20), 0o600); err != nil {
		return false, "", fmt.Errorf("kvm probe: %w", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	spec := hypervisor.InstanceSpec{
		ID: "probe-kvm-" + hex.EncodeToString(b), Cores: 1, MemoryMiB: 128,
		Kernel: p.Kernel, Ramdisk: p.Ramdisk, KernelCmdline: p.Cmdline,
		RootDisk:   hypervisor.Disk{Path: root, Format: hypervisor.Raw},
		ConsoleLog: filepath.Join(dir, "console.log"),
		Accel:      hypervisor.AccelKVM,
	}
	d.log.Info("proving KVM with a probe guest", "kernel", p.Kernel, "bound", p.Timeout)
	t0 := time.Now()
	if _, err := d.start(ctx, spec, kindProbe); err != nil {
		return false, err.Error(), nil
	}
	defer func() {
		l, cerr := d.conn()
		if cerr == nil {
			var dom golibvirt.Domain
			if dom, cerr = l.DomainLookupByName(hypervisor.DomainName(spec.ID)); cerr == nil {
				cerr = d.destroy(l, dom, hypervisor.Running)
			}
		}
		if cerr != nil && !golibvirt.IsNotFound(cerr) && err == nil {
			err = fmt.Errorf("kvm probe: remove the probe guest: %w", cerr)
		}
	}()
	deadline := time.Now().Add(p.Timeout)
	for {
		con, _ := hypervisor.ReadConsoleFile(spec.ConsoleLog)
		if bytes.Contains(con, []byte(p.Marker)) {
			d.log.Debug("kvm probe booted", "in", time.Since(t0).Round(time.Millisecond))
			return true, "", nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Sprintf("no %s on its console within %v (%d bytes printed)", p.Marker, p.Timeout, len(con)), nil
		}
		select {
		case <-ctx.Done():
			return false, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
