package clc

// EBS-backed images: RegisterImage without a manifest, whose root device
// is a volume made from a snapshot at each launch, and CreateImage, which
// snapshots an instance's volumes into such an image.
//
// The image records its block device mappings whole (store.Image's
// BlockDevices, with the snapshot, size, type and DeleteOnTermination of
// each EBS one); the root mapping is the one on RootDeviceName. The kernel
// and ramdisk are as for instance-store images: the guest boots them, and
// the initrd mounts the root volume, which the node attaches first.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/store"
)

// registerEBSImage registers an EBS-backed image: req's RootDeviceName
// (default /dev/sda1) must have an EBS mapping made from a snapshot the
// account may use; every snapshot named must be completed, and a volume
// size, when given, at least its snapshot's.
func (c *Cloud) registerEBSImage(ctx context.Context, accountID string, req store.Image) (store.Image, error) {
	if err := checkImageName(req.Name); err != nil {
		return store.Image{}, err
	}
	if len(req.Description) > maxImageDescription {
		return store.Image{}, awserr.InvalidParameterValue("Value for parameter Description is invalid. Length exceeds maximum of %d.", maxImageDescription)
	}
	if req.Architecture == "" {
		req.Architecture = "x86_64"
	}
	if !slices.Contains(architectures, req.Architecture) {
		return store.Image{}, awserr.InvalidParameterValue("Value (%s) for parameter Architecture is invalid. Valid values: %s.", req.Architecture, strings.Join(architectures, ", "))
	}
	if req.RootDeviceName == "" {
		req.RootDeviceName = store.DefaultRootDeviceName
	}
	im := store.Image{ID: ids.New(imagePrefixes[store.ImageMachine]), AccountID: accountID, Kind: store.ImageMachine,
		Name: req.Name, Description: req.Description, Architecture: req.Architecture, KernelID: req.KernelID, RamdiskID: req.RamdiskID,
		State: store.ImageAvailable, Tags: req.Tags, RootDeviceType: store.RootEBS, RootDeviceName: req.RootDeviceName}
	bdm, err := c.checkImageDevices(ctx, accountID, im.RootDeviceName, req.BlockDevices, true)
	if err != nil {
		return store.Image{}, err
	}
	im.BlockDevices = bdm
	if err := c.checkBootImages(ctx, accountID, &im); err != nil {
		return store.Image{}, err
	}
	if err := c.checkNameFree(ctx, accountID, im.Name); err != nil {
		return store.Image{}, err
	}
	if err := c.store.CreateImage(ctx, im); errors.Is(err, store.ErrConflict) {
		return store.Image{}, nameTaken(im.Name)
	} else if err != nil {
		return store.Image{}, fmt.Errorf("register image: %w", err)
	}
	c.log.InfoContext(ctx, "registered EBS-backed image", "account", accountID, "image", im.ID, "root", im.RootDeviceName)
	return c.imageFor(ctx, accountID, im.ID)
}

// checkBootImages checks an EBS-backed image's kernel and ramdisk: each
// must be a kernel or ramdisk image the account may launch.
func (c *Cloud) checkBootImages(ctx context.Context, accountID string, im *store.Image) error {
	if im.KernelID != "" {
		if !kernelID.MatchString(im.KernelID) {
			return awserr.New("InvalidKernelId.Malformed", "Invalid id: %q (expecting \"eki-...\")", im.KernelID)
		}
		if err := c.checkLaunchable(ctx, accountID, im.KernelID, store.ImageKernel, ""); err != nil {
			return err
		}
	}
	if im.RamdiskID != "" {
		if !ramdiskID.MatchString(im.RamdiskID) {
			return awserr.New("InvalidRamDiskId.Malformed", "Invalid id: %q (expecting \"eri-...\")", im.RamdiskID)
		}
		if err := c.checkLaunchable(ctx, accountID, im.RamdiskID, store.ImageRamdisk, ""); err != nil {
			return err
		}
	}
	return nil
}

// checkImageDevices checks an EBS-backed image's mappings: device names
// EC2 accepts, one mapping per device, no NoDevice (nothing to drop), the
// snapshots usable and completed (sizes filled in from them), and, when
// needRoot, an EBS mapping from a snapshot on root.
func (c *Cloud) checkImageDevices(ctx context.Context, accountID, root string, bdm []store.ImageBlockDevice, needRoot bool) ([]store.ImageBlockDevice, error) {
	seen := map[string]bool{}
	var out []store.ImageBlockDevice
	hasRoot := false
	for _, b := range bdm {
		if !ValidDevice(b.Device) {
			return nil, awserr.InvalidParameterValue("Value (%s) for parameter deviceName is invalid. %s is not a valid device name.", b.Device, b.Device)
		}
		slot := deviceSlot(b.Device)
		if seen[slot] {
			return nil, awserr.New("InvalidBlockDeviceMapping", "The device %s is mapped more than once.", b.Device)
		}
		seen[slot] = true
		switch {
		case b.EBS:
			b, err := c.checkEBSDevice(ctx, accountID, b)
			if err != nil {
				return nil, err
			}
			if devPath(b.Device) == devPath(root) {
				if b.SnapshotID == "" {
					return nil, awserr.New("InvalidBlockDeviceMapping", "The root device %s must be made from a snapshot.", root)
				}
				hasRoot = true
			}
			out = append(out, b)
		case b.Virtual != "":
			out = append(out, b)
		}
	}
	if needRoot && !hasRoot {
		return nil, awserr.New("InvalidBlockDeviceMapping", "The block device mapping has no EBS volume from a snapshot for the root device %s.", root)
	}
	return out, nil
}

// checkEBSDevice checks one EBS mapping's snapshot and size; a mapping
// without a size takes its snapshot's.
func (c *Cloud) checkEBSDevice(ctx context.Context, accountID string, b store.ImageBlockDevice) (store.ImageBlockDevice, error) {
	if b.VolumeType == "" {
		b.VolumeType = DefaultVolumeType
	}
	if b.SnapshotID == "" {
		if err := checkSize(b.VolumeType, b.VolumeSize); err != nil {
			return b, err
		}
		return b, nil
	}
	snap, err := c.usableSnapshot(ctx, accountID, b.SnapshotID)
	if err != nil {
		return b, err
	}
	if snap.State == store.SnapshotError {
		return b, awserr.New("IncorrectState", "Snapshot '%s' is in the '%s' state.", snap.ID, snap.State)
	}
	if b.VolumeSize == 0 {
		b.VolumeSize = snap.VolumeSizeGiB
	}
	if b.VolumeSize < snap.VolumeSizeGiB {
		return b, awserr.InvalidParameterValue("Volume of size %dGiB is smaller than snapshot '%s', expect size >= %dGiB", b.VolumeSize, snap.ID, snap.VolumeSizeGiB)
	}
	return b, checkSize(b.VolumeType, b.VolumeSize)
}

// launchDevices is the block device mapping a launch makes: the image's,
// with the launch's mappings on top (same device: replaced, a launch EBS
// mapping keeping the image's snapshot unless it names one; no virtual name
// nor EBS: the image's device dropped; others added), checked as an
// image's, in the image's order then the launch's.
func (c *Cloud) launchDevices(ctx context.Context, accountID string, img store.Image, launch []store.ImageBlockDevice) ([]store.ImageBlockDevice, error) {
	out := slices.Clone(img.BlockDevices)
	for _, l := range launch {
		i := slices.IndexFunc(out, func(b store.ImageBlockDevice) bool { return deviceSlot(b.Device) == deviceSlot(l.Device) })
		switch {
		case !l.EBS && l.Virtual == "":
			if i >= 0 {
				out = slices.Delete(out, i, i+1)
			}
		case i >= 0 && l.EBS && out[i].EBS:
			b := out[i]
			if l.SnapshotID != "" {
				b.SnapshotID, b.VolumeSize = l.SnapshotID, 0
			}
			if l.VolumeSize != 0 {
				b.VolumeSize = l.VolumeSize
			}
			if l.VolumeType != "" {
				b.VolumeType = l.VolumeType
			}
			b.DeleteOnTermination = l.DeleteOnTermination
			out[i] = b
		case i >= 0:
			out[i] = l
		default:
			out = append(out, l)
		}
	}
	if img.EBS() && !slices.ContainsFunc(out, func(b store.ImageBlockDevice) bool {
		return b.EBS && devPath(b.Device) == devPath(img.RootDeviceName)
	}) {
		return nil, awserr.New("InvalidBlockDeviceMapping", "The root device %s of image %s cannot be dropped.", img.RootDeviceName, img.ID)
	}
	if !slices.ContainsFunc(out, func(b store.ImageBlockDevice) bool { return b.EBS }) {
		return nil, nil
	}
	var ebs []store.ImageBlockDevice
	for _, b := range out {
		if b.EBS {
			ebs = append(ebs, b)
		}
	}
	return c.checkImageDevices(ctx, accountID, img.RootDeviceName, ebs, img.EBS())
}

// CreateImage makes an EBS-backed image of an instance: a snapshot of
// each volume attached to it (its root one on the root device), the
// instance's kernel and ramdisk. The image is pending until its snapshots
// complete (the reconcile loop makes it available, or failed when one
// fails). Unless NoReboot, a running instance is stopped before the
// snapshots are taken and started again after (EC2 reboots it, so the
// file systems are consistent); with NoReboot the snapshots are of the
// volumes as they are, writes acknowledged before the call included.
func (c *Cloud) CreateImage(ctx context.Context, accountID string, spec store.CreateImageSpec) (store.Image, error) {
	in, err := c.store.Instance(ctx, accountID, spec.InstanceID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Image{}, missingIDsError("InvalidInstanceID.NotFound", "instance", []string{spec.InstanceID})
	}
	if err != nil {
		return store.Image{}, fmt.Errorf("instance %s: %w", spec.InstanceID, err)
	}
	if !in.EBS() {
		return store.Image{}, awserr.New("UnsupportedOperation", "The instance '%s' does not have an 'ebs' root device type: images are made of EBS-backed instances only.", in.ID)
	}
	if in.State != store.InstanceRunning && in.State != store.InstanceStopped {
		return store.Image{}, awserr.New("IncorrectInstanceState", "The instance '%s' is not in the 'running' or 'stopped' state.", in.ID)
	}
	if err := checkImageName(spec.Name); err != nil {
		return store.Image{}, err
	}
	if len(spec.Description) > maxImageDescription {
		return store.Image{}, awserr.InvalidParameterValue("Value for parameter Description is invalid. Length exceeds maximum of %d.", maxImageDescription)
	}
	if err := c.checkNameFree(ctx, accountID, spec.Name); err != nil {
		return store.Image{}, err
	}
	// The instance's volumes, in their order, then the request's
	// mappings on top (no device: that volume is left out of the image).
	var bdm []store.ImageBlockDevice
	for _, b := range in.BlockDevices {
		if b.State != store.AttachmentAttached {
			continue
		}
		v, err := c.store.VolumeByID(ctx, b.VolumeID)
		if err != nil {
			return store.Image{}, volumeError(b.VolumeID, err)
		}
		bdm = append(bdm, store.ImageBlockDevice{Device: b.Device, EBS: true, VolumeSize: v.SizeGiB, VolumeType: v.Type,
			DeleteOnTermination: b.DeleteOnTermination, PendingVolume: v.ID})
	}
	for _, l := range spec.BlockDevices {
		i := slices.IndexFunc(bdm, func(b store.ImageBlockDevice) bool { return deviceSlot(b.Device) == deviceSlot(l.Device) })
		switch {
		case i >= 0 && !l.EBS && l.Virtual == "":
			bdm = slices.Delete(bdm, i, i+1)
		case i >= 0 && l.EBS:
			if l.VolumeSize != 0 {
				if l.VolumeSize < bdm[i].VolumeSize {
					return store.Image{}, awserr.InvalidParameterValue("Volume of size %dGiB is smaller than the volume on %s, expect size >= %dGiB", l.VolumeSize, l.Device, bdm[i].VolumeSize)
				}
				bdm[i].VolumeSize = l.VolumeSize
			}
			if l.VolumeType != "" {
				bdm[i].VolumeType = l.VolumeType
			}
			bdm[i].DeleteOnTermination = l.DeleteOnTermination
		case i >= 0:
			bdm[i] = l
		case l.Virtual != "" || (l.EBS && l.SnapshotID == ""):
			b := l
			if b.EBS {
				if b.VolumeType == "" {
					b.VolumeType = DefaultVolumeType
				}
				if err := checkSize(b.VolumeType, b.VolumeSize); err != nil {
					return store.Image{}, err
				}
			}
			bdm = append(bdm, b)
		case l.EBS:
			b, err := c.checkEBSDevice(ctx, accountID, l)
			if err != nil {
				return store.Image{}, err
			}
			bdm = append(bdm, b)
		}
	}
	if !slices.ContainsFunc(bdm, func(b store.ImageBlockDevice) bool {
		return b.EBS && deviceSlot(b.Device) == deviceSlot(in.RootDeviceName)
	}) {
		return store.Image{}, awserr.New("InvalidBlockDeviceMapping", "The root device %s of instance %s cannot be left out of its image.", in.RootDeviceName, in.ID)
	}
	im := store.Image{ID: ids.New(imagePrefixes[store.ImageMachine]), AccountID: accountID, Kind: store.ImageMachine,
		Name: spec.Name, Description: spec.Description, Architecture: in.Architecture, KernelID: in.KernelID, RamdiskID: in.RamdiskID,
		State: store.ImagePending, Tags: spec.ImageTags, RootDeviceType: store.RootEBS, RootDeviceName: in.RootDeviceName, BlockDevices: bdm}
	if im.Architecture == "" {
		im.Architecture = "x86_64"
	}
	if err := c.store.CreateImage(ctx, im); errors.Is(err, store.ErrConflict) {
		return store.Image{}, nameTaken(im.Name)
	} else if err != nil {
		return store.Image{}, fmt.Errorf("create image: %w", err)
	}
	reboot := !spec.NoReboot && in.State == store.InstanceRunning
	if !reboot {
		if err := c.snapshotImage(ctx, accountID, im, spec.SnapshotTags); err != nil {
			return store.Image{}, err
		}
	} else {
		go c.rebootForImage(context.WithoutCancel(ctx), in, im, spec.SnapshotTags)
	}
	c.log.InfoContext(ctx, "create image", "account", accountID, "instance", in.ID, "image", im.ID, "reboot", reboot)
	return c.imageFor(ctx, accountID, im.ID)
}

// snapshotImage snapshots the volumes a pending image names
// (PendingVolume) and records the snapshots in its mappings; when one
// cannot be taken, the image fails.
func (c *Cloud) snapshotImage(ctx context.Context, accountID string, im store.Image, tags []store.Tag) error {
	desc := "Created by CreateImage(" + im.ID + ")"
	for i, b := range im.BlockDevices {
		vol := b.PendingVolume
		if vol == "" {
			continue
		}
		s, err := c.CreateSnapshot(ctx, accountID, vol, desc, tags)
		if err != nil {
			c.failImage(ctx, im, fmt.Sprintf("snapshot of %s: %v", vol, err))
			return err
		}
		im.BlockDevices[i].SnapshotID, im.BlockDevices[i].PendingVolume = s.ID, ""
	}
	if err := c.store.SetImageBlockDevices(ctx, im.ID, im.BlockDevices); err != nil {
		return fmt.Errorf("create image %s: %w", im.ID, err)
	}
	c.inst.touch()
	return nil
}

func (c *Cloud) failImage(ctx context.Context, im store.Image, why string) {
	failed := store.ImageFailed
	if err := c.store.UpdateImage(context.WithoutCancel(ctx), im.AccountID, im.ID, store.ImageUpdate{State: &failed, StateReason: &why}); err != nil {
		c.log.WarnContext(ctx, "image failed", "image", im.ID, "err", err)
	}
	c.log.WarnContext(ctx, "image failed", "image", im.ID, "why", why)
}

// imageStopWait bounds how long CreateImage waits for an instance it
// stops to be stopped.
var imageStopWait = 10 * time.Minute

// rebootForImage stops a running instance, snapshots its volumes into the
// image and starts it again.
func (c *Cloud) rebootForImage(ctx context.Context, in store.Instance, im store.Image, tags []store.Tag) {
	ctx, cancel := context.WithTimeout(ctx, imageStopWait)
	defer cancel()
	if _, err := c.StopInstances(ctx, in.AccountID, []string{in.ID}, false, false); err != nil {
		c.failImage(ctx, im, fmt.Sprintf("stop %s: %v", in.ID, err))
		return
	}
	for {
		cur, err := c.store.InstanceByID(ctx, in.ID)
		if err != nil || cur.State == store.InstanceStopped {
			break
		}
		if cur.State != store.InstanceStopping {
			c.failImage(ctx, im, fmt.Sprintf("instance %s became %s while it stopped", in.ID, cur.State))
			return
		}
		select {
		case <-ctx.Done():
			c.failImage(ctx, im, fmt.Sprintf("instance %s did not stop: %v", in.ID, ctx.Err()))
			return
		case <-time.After(reconcileFast):
		}
	}
	err := c.snapshotImage(ctx, in.AccountID, im, tags)
	if _, serr := c.StartInstances(ctx, in.AccountID, []string{in.ID}); serr != nil {
		c.log.WarnContext(ctx, "start the instance an image was made of", "instance", in.ID, "err", serr)
	}
	if err != nil {
		c.log.WarnContext(ctx, "create image", "image", im.ID, "err", err)
	}
}

// reconcileImages makes pending EBS-backed images available once all
// their snapshots completed, failed when one failed or went away.
func (c *Cloud) reconcileImages(ctx context.Context) error {
	pending, err := c.store.PendingEBSImages(ctx)
	if err != nil {
		return err
	}
	for _, im := range pending {
		done, why := true, ""
		for _, b := range im.BlockDevices {
			if b.PendingVolume != "" {
				done = false
				break
			}
			if !b.EBS || b.SnapshotID == "" {
				continue
			}
			s, err := c.store.SnapshotByID(ctx, b.SnapshotID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				why = "snapshot " + b.SnapshotID + " was deleted"
			case err != nil:
				return err
			case s.State == store.SnapshotError:
				why = "snapshot " + b.SnapshotID + " failed: " + s.Error
			case s.State != store.SnapshotCompleted:
				done = false
			}
			if why != "" {
				break
			}
		}
		switch {
		case why != "":
			c.failImage(ctx, im, why)
		case done:
			avail := store.ImageAvailable
			if err := c.store.UpdateImage(ctx, im.AccountID, im.ID, store.ImageUpdate{State: &avail}); err != nil {
				return err
			}
			c.log.InfoContext(ctx, "image available", "image", im.ID)
		}
	}
	return nil
}
