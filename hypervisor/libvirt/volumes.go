package libvirt

import (
	"context"
	"errors"
	"fmt"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/euca-cloud/euca/hypervisor"
)

// DetachTimeout bounds how long DetachVolume waits for the guest to let a
// volume go: under TCG a busy guest takes seconds to answer the ACPI
// unplug request (0.84 s idle, measured). It stays within the node API's
// 30 s per call; a detach not done by then is asked about again (the
// request stands, and a later call finds it done).
var DetachTimeout = 20 * time.Second

// AttachVolume hot-plugs v into instance id's domain (see
// hypervisor.Driver): into the running guest and the definition when the
// domain runs, into the definition only when it is shut off. The domain's
// XML is the truth of what is plugged, by the volume's alias, so a call
// cut short (an NC killed between the two) is finished by the next.
func (d *Driver) AttachVolume(ctx context.Context, id string, v hypervisor.VolumeDisk) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if v.Boot {
		return fmt.Errorf("%w: volume %s: a boot volume is given to Start, not hot-plugged", hypervisor.ErrInvalidSpec, v.VolumeID)
	}
	defer d.locks.lock(id)()
	fail := func(err error) error { return fmt.Errorf("attach %s to %s: %w", v.VolumeID, id, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	l, dom, got, err := d.lookup(id)
	if err != nil {
		return fail(err)
	}
	alias := hypervisor.VolumeAlias(v.VolumeID)
	cfgTargets, inCfg, err := d.disks(l, dom, golibvirt.DomainXMLInactive, alias)
	if err != nil {
		return fail(err)
	}
	live := got.dom.State.Active()
	liveTargets, inLive := map[string]bool{}, false
	if live {
		if liveTargets, inLive, err = d.disks(l, dom, 0, alias); err != nil {
			return fail(err)
		}
	}
	var flags golibvirt.DomainDeviceModifyFlags
	if live && !inLive {
		flags |= golibvirt.DomainDeviceModifyLive
	}
	if !inCfg {
		flags |= golibvirt.DomainDeviceModifyConfig
	}
	if flags != 0 {
		target, err := freeTarget(cfgTargets, liveTargets)
		if err != nil {
			return fail(err)
		}
		doc, err := volumeDiskXML(v, target)
		if err != nil {
			return fail(err)
		}
		if err := l.DomainAttachDeviceFlags(dom, doc, uint32(flags)); err != nil {
			return fail(err)
		}
	}
	spec := got.dom.Spec
	spec.SetVolume(v)
	if err := d.setSpec(l, dom, got, spec); err != nil {
		return fail(err)
	}
	return nil
}

// DetachVolume unplugs volume volumeID from instance id's domain (see
// hypervisor.Driver). The live device goes first, then (once the guest
// released it, or at once when forced) the definition's and the spec's.
func (d *Driver) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	defer d.locks.lock(id)()
	fail := func(err error) error { return fmt.Errorf("detach %s from %s: %w", volumeID, id, err) }
	l, dom, got, err := d.lookup(id)
	if err != nil {
		return fail(err)
	}
	alias := hypervisor.VolumeAlias(volumeID)
	if got.dom.State.Active() {
		_, inLive, err := d.disks(l, dom, 0, alias)
		if err != nil {
			return fail(err)
		}
		if inLive {
			// libvirt sends the unplug request and waits a few seconds
			// itself; a request already under way (an earlier call that
			// timed out) may be refused, and the wait below covers it.
			derr := l.DomainDetachDeviceAlias(dom, alias, uint32(golibvirt.DomainDeviceModifyLive))
			if derr != nil && golibvirt.IsNotFound(derr) {
				derr = nil
			}
			if !force {
				if err := d.awaitRemoved(ctx, l, dom, alias); err != nil {
					return fail(errors.Join(err, derr))
				}
			} else if derr != nil {
				d.log.Warn("forced detach: the unplug request failed", "instance", id, "volume", volumeID, "err", derr)
			}
		}
	}
	_, inCfg, err := d.disks(l, dom, golibvirt.DomainXMLInactive, alias)
	if err != nil {
		return fail(err)
	}
	if inCfg {
		if err := l.DomainDetachDeviceAlias(dom, alias, uint32(golibvirt.DomainDeviceModifyConfig)); err != nil && !golibvirt.IsNotFound(err) {
			return fail(err)
		}
	}
	if _, ok := got.dom.Spec.Volume(volumeID); ok {
		spec := got.dom.Spec
		spec.RemoveVolume(volumeID)
		if err := d.setSpec(l, dom, got, spec); err != nil {
			return fail(err)
		}
	}
	return nil
}

// awaitRemoved polls the live XML until alias is gone from it (libvirt's
// DEVICE_REMOVED event would say the same, but a poll also works for a
// detach an earlier process began), for at most DetachTimeout.
func (d *Driver) awaitRemoved(ctx context.Context, l *golibvirt.Libvirt, dom golibvirt.Domain, alias string) error {
	deadline := time.Now().Add(DetachTimeout)
	for {
		_, in, err := d.disks(l, dom, 0, alias)
		if err != nil {
			return err
		}
		if !in {
			return nil
		}
		if st, err := d.state(l, dom); err != nil || !st.Active() {
			return err // powered off meanwhile: the live device is gone with it
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v", hypervisor.ErrDetachTimeout, DetachTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ResumeIOError resumes the domain when libvirt paused it for an I/O error.
func (d *Driver) ResumeIOError(ctx context.Context, id string) (bool, error) {
	defer d.locks.lock(id)()
	l, dom, _, err := d.lookup(id)
	if err != nil {
		return false, fmt.Errorf("resume %s: %w", id, err)
	}
	st, reason, err := l.DomainGetState(dom, 0)
	if err != nil {
		return false, fmt.Errorf("resume %s: %w", id, err)
	}
	if golibvirt.DomainState(st) != golibvirt.DomainPaused || golibvirt.DomainPausedReason(reason) != golibvirt.DomainPausedIoerror {
		return false, nil
	}
	if err := l.DomainResume(dom); err != nil {
		return false, fmt.Errorf("resume %s: %w", id, err)
	}
	d.log.Info("resumed a guest paused by an I/O error", "instance", id)
	return true, nil
}

// disks reads dom's XML (flags: golibvirt.DomainXMLInactive for the
// definition, 0 for the running guest).
func (d *Driver) disks(l *golibvirt.Libvirt, dom golibvirt.Domain, flags golibvirt.DomainXMLFlags, alias string) (map[string]bool, bool, error) {
	doc, err := l.DomainGetXMLDesc(dom, flags)
	if err != nil {
		return nil, false, err
	}
	return domainDisks(doc, alias)
}

// setSpec rewrites the spec kept in dom's metadata (in the running guest's
// and the definition's), keeping its kind and start time.
func (d *Driver) setSpec(l *golibvirt.Libvirt, dom golibvirt.Domain, got described, spec hypervisor.InstanceSpec) error {
	md, err := metaBody(got.kind, got.dom.StartedAt, spec)
	if err != nil {
		return err
	}
	flags := golibvirt.DomainAffectConfig
	if got.dom.State.Active() {
		flags |= golibvirt.DomainAffectLive
	}
	if err := l.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{md},
		golibvirt.OptString{"euca"}, golibvirt.OptString{metaNS}, flags); err != nil {
		return fmt.Errorf("record the spec: %w", err)
	}
	return nil
}
