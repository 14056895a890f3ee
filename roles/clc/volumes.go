package clc

// EBS volumes. The cloud controller owns the records EC2 shows (store:
// volumes, volume_attachments); the storage controller of each zone
// (scapi.Storage, connected with SetStorage) owns the bytes and their
// export to nodes over NBD. Every change is written to the store before it
// is carried out, and the storage loop (runStorage, started by Run) drives
// whatever is between two states until it ends, so a crash or an
// unreachable controller only delays a change:
//
//   - CreateVolume records the volume creating and asks the storage
//     controller to make it; the loop polls scapi.Storage.Volumes and moves
//     it to available (or error), asking again if the controller lost it.
//   - DeleteVolume records it deleting, asks the controller to delete, and
//     removes the record once it did.
//   - AttachVolume checks the volume, the instance and the device, records
//     the attachment attaching and answers; then (drive) the storage
//     controller exports the volume to the instance's node, the cluster
//     hot-plugs it (ccapi.Cluster.AttachVolume), and the attachment is
//     attached. A stopped instance gets it at its next start.
//   - DetachVolume records detaching and answers; then the cluster unplugs
//     it (Force: whatever the guest does), the storage controller withdraws
//     the export (the fence), and the attachment row goes.
//   - The volumes of a terminated instance are let go the same way, and
//     deleted when their attachment says DeleteOnTermination.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

const (
	// GiB is a volume size unit.
	GiB = int64(1) << 30
	// MaxVolumeStorageGiB bounds the storage of one account's volumes
	// (VolumeLimitExceeded beyond), as EC2's per-region storage quota.
	MaxVolumeStorageGiB = 50 * 1024
	// storageEvery is how often the storage loop polls when nothing is
	// in progress; storageFast while something is.
	storageEvery = 5 * time.Second
	storageFast  = 500 * time.Millisecond
	// storageCall bounds each call the loop makes to a storage
	// controller or a cluster.
	storageCall = 2 * time.Minute
	// attachTries is how many times an attach is tried before it is
	// given up (the volume is available again).
	attachTries = 5
)

// volumeRuntime is the volumes' side beyond the store: the storage
// controllers by zone and what the loop is doing.
type volumeRuntime struct {
	mu       sync.Mutex
	storage  map[string]scapi.Storage // by zone
	inflight map[string]bool          // volumes and snapshots a goroutine drives now
	failures map[string]int           // attach attempts that failed, by volume
	kick     chan struct{}
	wg       sync.WaitGroup // drives in flight
}

func (r *volumeRuntime) init() {
	if r.storage == nil {
		r.storage = map[string]scapi.Storage{}
		r.inflight = map[string]bool{}
		r.failures = map[string]int{}
		r.kick = make(chan struct{}, 1)
	}
}

// SetStorage connects the storage controller of a zone; a second call for
// that zone replaces the first. Volumes of the zone are made, exported and
// snapshotted through it.
func (c *Cloud) SetStorage(zone string, s scapi.Storage) {
	c.vol.mu.Lock()
	defer c.vol.mu.Unlock()
	c.vol.init()
	c.vol.storage[zone] = s
}

func (c *Cloud) storageOf(zone string) scapi.Storage {
	c.vol.mu.Lock()
	defer c.vol.mu.Unlock()
	return c.vol.storage[zone]
}

// kickStorage has the storage loop run at once.
func (c *Cloud) kickStorage() {
	c.vol.mu.Lock()
	c.vol.init()
	k := c.vol.kick
	c.vol.mu.Unlock()
	select {
	case k <- struct{}{}:
	default:
	}
}

// claim marks id as driven by the caller; false when another goroutine
// drives it.
func (c *Cloud) claim(id string) bool {
	c.vol.mu.Lock()
	defer c.vol.mu.Unlock()
	c.vol.init()
	if c.vol.inflight[id] {
		return false
	}
	c.vol.inflight[id] = true
	return true
}

func (c *Cloud) release(id string) {
	c.vol.mu.Lock()
	defer c.vol.mu.Unlock()
	delete(c.vol.inflight, id)
}

// ---- errors in EC2's words

func volumeNotFound(id string) error {
	return awserr.New("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
}

func volumeStateError(id, state string) error {
	return awserr.New("IncorrectState", "Volume '%s' is in the '%s' state.", id, state)
}

// volumeError maps the store's answers about a volume to EC2's codes.
func volumeError(id string, err error) error {
	var inUse *store.VolumeInUseError
	var st *store.VolumeStateError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inUse):
		return awserr.New("VolumeInUse", "Volume %s is currently attached to %s", inUse.ID, inUse.Instance)
	case errors.As(err, &st):
		if st.State == "modifying" {
			return awserr.New("IncorrectModificationState", "Volume %s is already being modified.", st.ID)
		}
		return volumeStateError(st.ID, st.State)
	case errors.Is(err, store.ErrNotFound):
		return volumeNotFound(id)
	case errors.Is(err, store.ErrVolumeLimit):
		return awserr.New("VolumeLimitExceeded", "You have exceeded your maximum volume storage limit of %d GiB.", MaxVolumeStorageGiB)
	}
	return fmt.Errorf("volume %s: %w", id, err)
}

// ---- sizes and types

// sizeLimits are EC2's volume sizes by type, in GiB.
var sizeLimits = map[string][2]int{
	"standard": {1, 1024},
	"gp2":      {1, 16384},
	"gp3":      {1, 16384},
	"io1":      {4, 16384},
	"io2":      {4, 65536},
	"st1":      {125, 16384},
	"sc1":      {125, 16384},
}

// DefaultVolumeType is the type of a volume made without one (EC2's).
const DefaultVolumeType = "gp2"

// checkSize refuses a size outside what EC2 allows for the type.
func checkSize(typ string, size int) error {
	lim := sizeLimits[typ]
	if size < lim[0] || size > lim[1] {
		return awserr.InvalidParameterValue("Volume of %dGiB is invalid for volume type %s: the size must be between %d and %d GiB.", size, typ, lim[0], lim[1])
	}
	return nil
}

// ---- devices

// ebsDevice are the device names EC2 accepts for an EBS volume on a Linux
// instance: /dev/sd[a-z] (with a partition number 1-15 for the root's
// sda1 style), /dev/xvd[a-z] and /dev/xvd[a-z][a-z], /dev/hd[a-z]; the
// same without /dev/ (xvdf, as Windows instances name them).
var ebsDevice = regexp.MustCompile(`^(?:/dev/)?(?:sd[a-z](?:[1-9]|1[0-5])?|xvd[a-z]{1,2}|hd[a-z])$`)

// ValidDevice says whether EC2 accepts name as an EBS device name.
func ValidDevice(name string) bool { return ebsDevice.MatchString(name) }

// deviceSlot is the disk a device name designates: /dev/sdf, /dev/xvdf
// and /dev/sdf1 are one disk, f.
func deviceSlot(name string) string {
	s := strings.TrimPrefix(name, "/dev/")
	for _, p := range []string{"xvd", "sd", "hd"} {
		if strings.HasPrefix(s, p) {
			s = s[len(p):]
			break
		}
	}
	return strings.TrimRight(s, "0123456789")
}

// VolumeSerial is the virtio serial a guest sees for a volume: "vol" and
// the id's hex digits (20 bytes at most, as EC2's Nitro NVMe serials).
func VolumeSerial(volumeID string) string {
	s := "vol" + strings.TrimPrefix(volumeID, "vol-")
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// reservedSlots are the disks an instance has without volumes: its root
// (a) and the node's ephemeral and swap disks, named as the metadata
// service names them.
func (c *Cloud) reservedSlots(ctx context.Context, in store.Instance) []string {
	ephemeral := true
	if vt, err := c.store.VMType(ctx, in.InstanceType); err == nil {
		ephemeral = vt.DiskGB > 0
	}
	eph, swap := hypervisor.GuestDisks(ephemeral, c.cfg.SwapSizeMB > 0)
	out := []string{"a"}
	for _, d := range []string{eph, swap} {
		if d != "" {
			out = append(out, strings.TrimPrefix(d, "vd"))
		}
	}
	return out
}

// ---- CreateVolume, DescribeVolumes, DeleteVolume

// CreateVolume records a volume and has the zone's storage controller
// make it: empty, or from a snapshot the account may use (SizeGiB 0: the
// snapshot's size). A retried client token returns the volume it made.
func (c *Cloud) CreateVolume(ctx context.Context, accountID string, spec store.VolumeSpec) (store.Volume, error) {
	if !slices.Contains(c.Zones(), spec.Zone) {
		return store.Volume{}, awserr.InvalidParameterValue("Invalid availability zone: [%s]", spec.Zone)
	}
	v, err := c.createVolume(ctx, accountID, spec)
	if err != nil {
		return store.Volume{}, err
	}
	return v, nil
}

// createVolume is CreateVolume without the zone check (the zone of an
// instance is one): EBS-backed launches use it (createVolumeFromSnapshot).
func (c *Cloud) createVolume(ctx context.Context, accountID string, spec store.VolumeSpec) (store.Volume, error) {
	sc := c.storageOf(spec.Zone)
	if sc == nil {
		return store.Volume{}, awserr.New("Unsupported", "Volumes are not available in zone '%s': no storage controller serves it.", spec.Zone)
	}
	if spec.Type == "" {
		spec.Type = DefaultVolumeType
	}
	if _, ok := sizeLimits[spec.Type]; !ok {
		return store.Volume{}, awserr.InvalidParameterValue("Value (%s) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3.", spec.Type)
	}
	if spec.SnapshotID != "" {
		snap, err := c.usableSnapshot(ctx, accountID, spec.SnapshotID)
		if err != nil {
			return store.Volume{}, err
		}
		if snap.State != store.SnapshotCompleted {
			return store.Volume{}, awserr.New("IncorrectState", "Snapshot '%s' is in the '%s' state.", snap.ID, snap.State)
		}
		if spec.SizeGiB == 0 {
			spec.SizeGiB = max(snap.VolumeSizeGiB, sizeLimits[spec.Type][0])
		}
		if spec.SizeGiB < snap.VolumeSizeGiB {
			return store.Volume{}, awserr.InvalidParameterValue("Volume of size %dGiB is smaller than snapshot '%s', expect size >= %dGiB", spec.SizeGiB, snap.ID, snap.VolumeSizeGiB)
		}
	} else if spec.SizeGiB == 0 {
		return store.Volume{}, awserr.MissingParameter("size or snapshotId")
	}
	if err := checkSize(spec.Type, spec.SizeGiB); err != nil {
		return store.Volume{}, err
	}
	v := store.Volume{ID: ids.New("vol"), AccountID: accountID, Zone: spec.Zone, SizeGiB: spec.SizeGiB, Type: spec.Type,
		Iops: spec.Iops, Throughput: spec.Throughput, SnapshotID: spec.SnapshotID, State: store.VolumeCreating, ClientToken: spec.ClientToken}
	v, existed, err := c.store.CreateVolume(ctx, v, spec.Tags, MaxVolumeStorageGiB)
	if err != nil {
		return store.Volume{}, volumeError(v.ID, err)
	}
	if existed {
		return v, nil
	}
	err = sc.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: v.ID, SizeBytes: int64(v.SizeGiB) * GiB, SnapshotID: v.SnapshotID})
	switch {
	case errors.Is(err, scapi.ErrNoSpace), errors.Is(err, scapi.ErrBadRequest), errors.Is(err, scapi.ErrNoSuchSnapshot):
		// Refused for good: the record goes, as if never made.
		if _, e := c.store.SetVolumeState(ctx, v.ID, []string{store.VolumeCreating}, store.VolumeDeleting, ""); e == nil {
			_ = sc.DeleteVolume(ctx, v.ID)
			_ = c.store.DeleteVolumeRecord(ctx, v.ID)
		}
		if errors.Is(err, scapi.ErrNoSpace) {
			return store.Volume{}, awserr.New("InsufficientVolumeCapacity", "There is not enough storage in zone %s for a volume of %d GiB.", v.Zone, v.SizeGiB).WithCause(err)
		}
		if errors.Is(err, scapi.ErrNoSuchSnapshot) {
			return store.Volume{}, awserr.New("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", v.SnapshotID).WithCause(err)
		}
		return store.Volume{}, awserr.InvalidParameterValue("The volume cannot be made: %v", err).WithCause(err)
	case err != nil:
		// The loop asks again: the request is recorded.
		c.log.Warn("create volume: storage controller", "volume", v.ID, "zone", v.Zone, "err", err)
	}
	c.kickStorage()
	return v, nil
}

// DescribeVolumes lists the account's volumes; with ids, exactly those
// (InvalidVolume.NotFound naming the missing ones).
func (c *Cloud) DescribeVolumes(ctx context.Context, accountID string, volumeIDs []string) ([]store.Volume, error) {
	if len(volumeIDs) == 0 {
		vols, err := c.store.Volumes(ctx, accountID)
		if err != nil {
			return nil, fmt.Errorf("volumes: %w", err)
		}
		return vols, nil
	}
	vols, err := c.store.VolumesByID(ctx, accountID, volumeIDs)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	byID := map[string]store.Volume{}
	for _, v := range vols {
		byID[v.ID] = v
	}
	var out []store.Volume
	var missing []string
	seen := map[string]bool{}
	for _, id := range volumeIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if v, ok := byID[id]; ok {
			out = append(out, v)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, volumeNotFound(strings.Join(missing, ", "))
	}
	return out, nil
}

// DeleteVolume records the volume deleting and has its storage controller
// delete it; the record goes once it did (the loop retries meanwhile).
// VolumeInUse while it is attached.
func (c *Cloud) DeleteVolume(ctx context.Context, accountID, volumeID string) error {
	err := c.store.StartDeleteVolume(ctx, accountID, volumeID)
	var st *store.VolumeStateError
	switch {
	case errors.As(err, &st):
		return nil // already being deleted
	case err != nil:
		return volumeError(volumeID, err)
	}
	v, err := c.store.VolumeByID(ctx, volumeID)
	if err != nil {
		return volumeError(volumeID, err)
	}
	c.finishDelete(ctx, v)
	return nil
}

// finishDelete asks the storage controller to delete a volume in state
// deleting and removes its record once it did.
func (c *Cloud) finishDelete(ctx context.Context, v store.Volume) {
	sc := c.storageOf(v.Zone)
	if sc == nil {
		return
	}
	err := sc.DeleteVolume(ctx, v.ID)
	if errors.Is(err, scapi.ErrInUse) {
		// Still exported, though no attachment is recorded (a crash
		// between an export and its record): nothing may use it now.
		if err = c.withdrawExports(ctx, sc, v.ID); err == nil {
			err = sc.DeleteVolume(ctx, v.ID)
		}
	}
	if err != nil {
		c.log.Warn("delete volume: storage controller", "volume", v.ID, "zone", v.Zone, "err", err)
		c.kickStorage()
		return
	}
	if err := c.store.DeleteVolumeRecord(ctx, v.ID); err != nil {
		c.log.Warn("delete volume record", "volume", v.ID, "err", err)
	}
}

// ---- AttachVolume and DetachVolume

// AttachVolume checks that the volume may go to the instance on that
// device, records the attachment attaching and answers; the storage loop
// carries it out (drive). A stopped instance takes it at once: it is
// there at the next start.
func (c *Cloud) AttachVolume(ctx context.Context, accountID, volumeID, instanceID, device string) (store.VolumeAttachment, error) {
	v, err := c.store.Volume(ctx, accountID, volumeID)
	if err != nil {
		return store.VolumeAttachment{}, volumeError(volumeID, err)
	}
	in, err := c.store.Instance(ctx, accountID, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return store.VolumeAttachment{}, awserr.New("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", instanceID)
	}
	if err != nil {
		return store.VolumeAttachment{}, fmt.Errorf("attach %s: %w", volumeID, err)
	}
	if !ValidDevice(device) {
		return store.VolumeAttachment{}, awserr.InvalidParameterValue("Value (%s) for parameter device is invalid. %s is not a valid EBS device name.", device, device)
	}
	if v.Attachment != nil {
		return store.VolumeAttachment{}, awserr.New("VolumeInUse", "%s is already attached to an instance", v.ID)
	}
	if v.State != store.VolumeAvailable {
		return store.VolumeAttachment{}, volumeStateError(v.ID, v.State)
	}
	if in.State != store.InstanceRunning && in.State != store.InstanceStopped {
		return store.VolumeAttachment{}, awserr.New("IncorrectInstanceState", "Instance '%s' is not 'running'.", in.ID)
	}
	if v.Zone != in.Zone {
		return store.VolumeAttachment{}, awserr.New("InvalidVolume.ZoneMismatch",
			"The volume '%s' is not in the same availability zone as instance '%s'", v.ID, in.ID)
	}
	slot := deviceSlot(device)
	if slices.Contains(c.reservedSlots(ctx, in), slot) {
		return store.VolumeAttachment{}, deviceInUse(device)
	}
	state := store.AttachmentAttaching
	if in.State == store.InstanceStopped {
		state = store.AttachmentAttached
	}
	av, err := c.store.AttachVolume(ctx, accountID, store.VolumeAttachment{VolumeID: v.ID, InstanceID: in.ID, Device: device, Slot: slot, State: state})
	if errors.Is(err, store.ErrDeviceInUse) {
		return store.VolumeAttachment{}, deviceInUse(device)
	}
	if err != nil {
		return store.VolumeAttachment{}, volumeError(volumeID, err)
	}
	if state == store.AttachmentAttaching {
		c.startDrive(v.ID)
	}
	return *av.Attachment, nil
}

func deviceInUse(device string) error {
	return awserr.New("InvalidDevice.InUse", "Invalid value '%s' for unixDevice. Attachment point %s is already in use", device, device)
}

// DetachVolume records the volume's attachment detaching and answers; the
// storage loop unplugs it and withdraws its export (drive). instanceID and
// device, when given, must name the attachment. IncorrectState (in
// Terraform's words, "…is in the 'available' state.") when it is not
// attached.
func (c *Cloud) DetachVolume(ctx context.Context, accountID, volumeID, instanceID, device string, force bool) (store.VolumeAttachment, error) {
	v, err := c.store.Volume(ctx, accountID, volumeID)
	if err != nil {
		return store.VolumeAttachment{}, volumeError(volumeID, err)
	}
	if instanceID != "" {
		if _, err := c.store.Instance(ctx, accountID, instanceID); errors.Is(err, store.ErrNotFound) {
			return store.VolumeAttachment{}, awserr.New("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", instanceID)
		}
	}
	a := v.Attachment
	if a != nil {
		// An EBS-backed instance's root volume leaves it only while it is
		// stopped, as on EC2 (the guest runs from it).
		in, err := c.store.Instance(ctx, accountID, a.InstanceID)
		if err == nil && in.RootDeviceType == store.RootEBS && a.Device == in.RootDeviceName && in.State != store.InstanceStopped &&
			in.State != store.InstanceTerminated {
			return store.VolumeAttachment{}, awserr.New("OperationNotPermitted", "Unable to detach root volume '%s' from instance '%s'", v.ID, in.ID)
		}
	}
	if a == nil {
		return store.VolumeAttachment{}, volumeStateError(v.ID, v.EC2State())
	}
	if (instanceID != "" && a.InstanceID != instanceID) || (device != "" && a.Device != device) {
		return store.VolumeAttachment{}, awserr.New("InvalidAttachment.NotFound",
			"Attachment point %s of instance %s does not have volume %s attached", orDash(device, a.Device), orDash(instanceID, a.InstanceID), v.ID)
	}
	was, err := c.store.StartDetach(ctx, v.ID, force)
	if err != nil {
		return store.VolumeAttachment{}, volumeError(volumeID, err)
	}
	was.State = store.AttachmentDetaching
	c.startDrive(v.ID)
	return was, nil
}

func orDash(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// ---- the drive of one volume

// startDrive drives a volume in the background, unless a drive of it
// runs already.
func (c *Cloud) startDrive(volumeID string) {
	if !c.claim(volumeID) {
		return
	}
	c.vol.wg.Add(1)
	go func() {
		defer c.vol.wg.Done()
		defer c.release(volumeID)
		ctx, cancel := context.WithTimeout(context.Background(), storageCall)
		defer cancel()
		c.drive(ctx, volumeID)
	}()
}

// drive takes one step towards where a volume's records say it goes:
// an attachment attaching or detaching, a volume of a terminated instance.
// It is harmless twice; what fails is tried again by the loop.
func (c *Cloud) drive(ctx context.Context, volumeID string) {
	v, err := c.store.VolumeByID(ctx, volumeID)
	if err != nil || v.Attachment == nil {
		return
	}
	a := v.Attachment
	in, err := c.store.Instance(ctx, v.AccountID, a.InstanceID)
	gone := errors.Is(err, store.ErrNotFound) || (err == nil && in.State == store.InstanceTerminated)
	if err != nil && !gone {
		c.log.Warn("volume: instance", "volume", v.ID, "instance", a.InstanceID, "err", err)
		return
	}
	switch {
	case gone:
		c.letGo(ctx, v, a.DeleteOnTermination)
	case a.State == store.AttachmentAttaching:
		c.driveAttach(ctx, v, in)
	case a.State == store.AttachmentDetaching:
		c.driveDetach(ctx, v, in)
	}
}

// onNode says whether an instance's guest is (or is being) on a node.
func onNode(in store.Instance) bool {
	switch in.State {
	case store.InstancePending, store.InstanceRunning, store.InstanceStopping, store.InstanceShuttingDown:
		return true
	}
	return false
}

// nodeOf is the node an instance runs on: its record, else its cluster's
// report.
func (c *Cloud) nodeOf(ctx context.Context, cl ccapi.Cluster, in store.Instance) string {
	if in.Node != "" {
		return in.Node
	}
	types, err := c.ccTypes(ctx)
	if err != nil {
		return ""
	}
	st, err := cl.Describe(ctx, types)
	if err != nil {
		return ""
	}
	for _, is := range st.Instances {
		if is.ID == in.ID {
			return is.Node
		}
	}
	return ""
}

// volumeAttachment is what a node needs to attach a volume exported at t.
func volumeAttachment(v store.Volume, device string, t scapi.Target) ncapi.VolumeAttachment {
	return ncapi.VolumeAttachment{VolumeID: v.ID, Device: device, Serial: VolumeSerial(v.ID),
		Host: t.Host, Port: t.Port, Export: t.Export, SizeBytes: t.SizeBytes}
}

func (c *Cloud) driveAttach(ctx context.Context, v store.Volume, in store.Instance) {
	a := v.Attachment
	if in.State == store.InstanceStopped || in.State == store.InstanceStopping {
		// The guest is not on a node: it takes the volume when it starts.
		c.attached(ctx, v)
		return
	}
	if in.State != store.InstanceRunning {
		return // pending: once it runs
	}
	sc, cl := c.storageOf(v.Zone), c.inst.cluster(v.Zone)
	if sc == nil || cl == nil {
		return
	}
	node := c.nodeOf(ctx, cl, in)
	if node == "" {
		return
	}
	fail := func(step string, err error, permanent bool) {
		c.vol.mu.Lock()
		c.vol.failures[v.ID]++
		n := c.vol.failures[v.ID]
		c.vol.mu.Unlock()
		c.log.Warn("attach volume", "volume", v.ID, "instance", in.ID, "step", step, "try", n, "err", err)
		if permanent || n >= attachTries {
			c.undoAttach(ctx, v)
		}
	}
	// Exports of earlier tries (one recorded, or one a crash kept from
	// being recorded) go first: a fresh export, so no connection left from
	// them is taken for this one. The volume has no other attachment.
	if err := c.withdrawExports(ctx, sc, v.ID); err != nil {
		fail("unexport", err, false)
		return
	}
	t, err := sc.Export(ctx, scapi.ExportRequest{VolumeID: v.ID, Node: node})
	if err != nil {
		fail("export", err, errors.Is(err, scapi.ErrNoSuchVolume) || errors.Is(err, scapi.ErrBadRequest))
		return
	}
	if err := c.store.SetAttachmentExport(ctx, v.ID, t.Export); err != nil {
		c.log.Warn("attach volume: record export", "volume", v.ID, "err", err)
		return
	}
	v.Attachment.Export = t.Export
	if err := cl.AttachVolume(ctx, in.ID, volumeAttachment(v, a.Device, t)); err != nil {
		fail("attach", err, errors.Is(err, ncapi.ErrUnsupported) || errors.Is(err, ccapi.ErrBadRequest))
		return
	}
	c.attached(ctx, v)
}

func (c *Cloud) attached(ctx context.Context, v store.Volume) {
	c.vol.mu.Lock()
	delete(c.vol.failures, v.ID)
	c.vol.mu.Unlock()
	if ok, err := c.store.SetAttachment(ctx, v.ID, []string{store.AttachmentAttaching}, store.AttachmentAttached); err != nil {
		c.log.Warn("attach volume: record", "volume", v.ID, "err", err)
	} else if ok {
		c.log.Info("volume attached", "volume", v.ID, "instance", v.Attachment.InstanceID, "device", v.Attachment.Device)
	}
}

// undoAttach gives an attach up: the export is withdrawn, the volume is
// available again.
func (c *Cloud) undoAttach(ctx context.Context, v store.Volume) {
	c.vol.mu.Lock()
	delete(c.vol.failures, v.ID)
	c.vol.mu.Unlock()
	if cl := c.inst.cluster(v.Zone); cl != nil {
		_ = cl.DetachVolume(ctx, v.Attachment.InstanceID, v.ID, true)
	}
	if sc := c.storageOf(v.Zone); sc != nil && v.Attachment.Export != "" {
		if err := sc.Unexport(ctx, v.ID, v.Attachment.Export); err != nil {
			c.log.Warn("attach volume: withdraw export", "volume", v.ID, "err", err)
			return
		}
	}
	if err := c.store.EndAttachment(ctx, v.ID, false); err != nil {
		c.log.Warn("attach volume: undo", "volume", v.ID, "err", err)
		return
	}
	c.log.Warn("attach volume given up", "volume", v.ID, "instance", v.Attachment.InstanceID)
}

func (c *Cloud) driveDetach(ctx context.Context, v store.Volume, in store.Instance) {
	a := v.Attachment
	if onNode(in) {
		cl := c.inst.cluster(v.Zone)
		if cl == nil {
			return
		}
		if err := cl.DetachVolume(ctx, in.ID, v.ID, a.Force); err != nil && !a.Force {
			c.log.Warn("detach volume", "volume", v.ID, "instance", in.ID, "err", err)
			return
		}
	}
	c.letGo(ctx, v, false)
}

// letGo ends a volume's attachment whose guest no longer uses it: the
// export is withdrawn, the attachment goes, and the volume is deleted when
// del says so.
func (c *Cloud) letGo(ctx context.Context, v store.Volume, del bool) {
	a := v.Attachment
	if a.Export != "" {
		sc := c.storageOf(v.Zone)
		if sc == nil {
			return
		}
		if err := sc.Unexport(ctx, v.ID, a.Export); err != nil {
			c.log.Warn("detach volume: withdraw export", "volume", v.ID, "err", err)
			return
		}
	}
	if err := c.store.EndAttachment(ctx, v.ID, del); err != nil {
		c.log.Warn("detach volume: record", "volume", v.ID, "err", err)
		return
	}
	c.log.Info("volume detached", "volume", v.ID, "instance", a.InstanceID, "deleted", del)
	if del {
		v.State = store.VolumeDeleting
		c.finishDelete(ctx, v)
	}
}

// withdrawExports withdraws every export the storage controller holds of
// a volume; the caller drives the volume (no other attachment of it may be
// in progress).
func (c *Cloud) withdrawExports(ctx context.Context, sc scapi.Storage, volumeID string) error {
	vols, err := sc.Volumes(ctx, volumeID)
	if err != nil {
		return err
	}
	for _, sv := range vols {
		for _, e := range sv.Exports {
			if err := sc.Unexport(ctx, volumeID, e); err != nil {
				return err
			}
			c.log.Info("volume export withdrawn", "volume", volumeID, "export", e)
		}
	}
	return nil
}

// ---- ModifyVolume

// ModifyVolume grows a volume, or changes its type, IOPS or throughput
// (figures only: nothing is throttled). The storage controller grows the
// file; an attached guest sees the new size after a re-attach or a
// restart, as an NBD export's size is fixed when the node connects.
func (c *Cloud) ModifyVolume(ctx context.Context, accountID, volumeID string, target store.VolumeModification) (store.Volume, error) {
	v, err := c.store.Volume(ctx, accountID, volumeID)
	if err != nil {
		return store.Volume{}, volumeError(volumeID, err)
	}
	if target.TargetSize == 0 {
		target.TargetSize = v.SizeGiB
	}
	if target.TargetType == "" {
		target.TargetType = v.Type
	}
	if _, ok := sizeLimits[target.TargetType]; !ok {
		return store.Volume{}, awserr.InvalidParameterValue("Value (%s) for parameter volumeType is invalid.", target.TargetType)
	}
	if target.TargetSize < v.SizeGiB {
		return store.Volume{}, awserr.InvalidParameterValue("New size cannot be smaller than existing size")
	}
	if err := checkSize(target.TargetType, target.TargetSize); err != nil {
		return store.Volume{}, err
	}
	if target.TargetIops == 0 && target.TargetType == v.Type {
		target.TargetIops = v.Iops
	}
	if target.TargetThroughput == 0 && target.TargetType == v.Type {
		target.TargetThroughput = v.Throughput
	}
	if target.TargetSize == v.SizeGiB && target.TargetType == v.Type && target.TargetIops == v.Iops && target.TargetThroughput == v.Throughput {
		return store.Volume{}, awserr.InvalidParameterValue("Modification of volume %s has no changes: the target is the volume as it is.", v.ID)
	}
	v, err = c.store.StartModifyVolume(ctx, accountID, volumeID, target, MaxVolumeStorageGiB)
	if err != nil {
		return store.Volume{}, volumeError(volumeID, err)
	}
	c.finishModify(ctx, v)
	if nv, err := c.store.VolumeByID(ctx, v.ID); err == nil {
		nv.Tags = v.Tags
		v = nv
	}
	return v, nil
}

// finishModify grows the volume on its storage controller and ends the
// modification.
func (c *Cloud) finishModify(ctx context.Context, v store.Volume) {
	if v.Mod.TargetSize > v.Mod.OrigSize {
		sc := c.storageOf(v.Zone)
		if sc == nil {
			return
		}
		err := sc.ResizeVolume(ctx, v.ID, int64(v.Mod.TargetSize)*GiB)
		switch {
		case errors.Is(err, scapi.ErrNoSpace), errors.Is(err, scapi.ErrBadRequest), errors.Is(err, scapi.ErrNoSuchVolume):
			if err := c.store.EndModifyVolume(ctx, v.ID, false, err.Error()); err != nil {
				c.log.Warn("modify volume", "volume", v.ID, "err", err)
			}
			return
		case err != nil:
			c.log.Warn("modify volume: storage controller", "volume", v.ID, "err", err)
			c.kickStorage()
			return
		}
	}
	if err := c.store.EndModifyVolume(ctx, v.ID, true, ""); err != nil {
		c.log.Warn("modify volume", "volume", v.ID, "err", err)
	}
}

// ---- for EBS-backed instances (roles/clc/instances.go)

// createVolumeFromSnapshot makes a volume of a snapshot (sizeGiB 0: the
// snapshot's size) for an instance launched in zone: the launch's block
// device mapping. The volume is creating; the storage loop makes it
// available, and attachAtLaunch's attachment waits for that.
func (c *Cloud) createVolumeFromSnapshot(ctx context.Context, accountID, zone, snapshotID string, sizeGiB int, volumeType string, tags []store.Tag) (store.Volume, error) {
	return c.createVolume(ctx, accountID, store.VolumeSpec{Zone: zone, SizeGiB: sizeGiB, SnapshotID: snapshotID, Type: volumeType, Tags: tags})
}

// attachAtLaunch records a volume attached to an instance from its start
// (the launch's block device mapping, index its order): no hot-plug, the
// node attaches it before the guest boots (exportForBoot). The volume may
// still be creating.
func (c *Cloud) attachAtLaunch(ctx context.Context, accountID, volumeID, instanceID, device string, deleteOnTermination bool, index int) error {
	v, err := c.store.Volume(ctx, accountID, volumeID)
	if err != nil {
		return volumeError(volumeID, err)
	}
	if v.State == store.VolumeCreating {
		// An attachment needs an available volume; the storage
		// controller makes it in the background, so wait for it.
		if err := c.waitVolume(ctx, v); err != nil {
			return err
		}
	}
	_, err = c.store.AttachVolume(ctx, accountID, store.VolumeAttachment{VolumeID: volumeID, InstanceID: instanceID, Device: device,
		Slot: deviceSlot(device), State: store.AttachmentAttached, DeleteOnTermination: deleteOnTermination, AtBoot: true, BootIndex: index})
	if errors.Is(err, store.ErrDeviceInUse) {
		return deviceInUse(device)
	}
	return volumeError(volumeID, err)
}

// waitVolume waits until a creating volume is available, polling its
// storage controller (ctx bounds it).
func (c *Cloud) waitVolume(ctx context.Context, v store.Volume) error {
	for {
		c.pollVolumes(ctx, v.Zone, []store.Volume{v})
		nv, err := c.store.VolumeByID(ctx, v.ID)
		if err != nil {
			return volumeError(v.ID, err)
		}
		switch nv.State {
		case store.VolumeAvailable:
			return nil
		case store.VolumeCreating:
		default:
			return volumeStateError(v.ID, nv.State)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("volume %s: %w", v.ID, ctx.Err())
		case <-time.After(storageFast):
		}
	}
}

// exportForBoot exports an instance's attached volumes to the node that
// will run it and returns them as the node attaches them before boot
// (ncapi.InstanceRequest.Volumes), in the order they were attached; the
// one on rootDevice has Boot set. It marks them as the volumes present at
// this start (metadata's ebsN).
func (c *Cloud) exportForBoot(ctx context.Context, in store.Instance, node, rootDevice string) ([]ncapi.VolumeAttachment, error) {
	vols, err := c.store.InstanceVolumes(ctx, in.ID)
	if err != nil {
		return nil, fmt.Errorf("volumes of %s: %w", in.ID, err)
	}
	sc := c.storageOf(in.Zone)
	if sc == nil && len(vols) > 0 {
		return nil, fmt.Errorf("volumes of %s: no storage controller in zone %s", in.ID, in.Zone)
	}
	var out []ncapi.VolumeAttachment
	var boot []string
	for _, v := range vols {
		a := v.Attachment
		if a.State != store.AttachmentAttached && a.State != store.AttachmentAttaching {
			continue
		}
		if a.Export != "" {
			if err := sc.Unexport(ctx, v.ID, a.Export); err != nil {
				return nil, fmt.Errorf("volume %s: withdraw export: %w", v.ID, err)
			}
		}
		t, err := sc.Export(ctx, scapi.ExportRequest{VolumeID: v.ID, Node: node})
		if err != nil {
			return nil, fmt.Errorf("volume %s: export: %w", v.ID, err)
		}
		if err := c.store.SetAttachmentExport(ctx, v.ID, t.Export); err != nil {
			return nil, err
		}
		va := volumeAttachment(v, a.Device, t)
		va.Boot = rootDevice != "" && a.Device == rootDevice
		out = append(out, va)
		boot = append(boot, v.ID)
	}
	if err := c.store.SetAttachmentBoot(ctx, in.ID, boot); err != nil {
		return nil, err
	}
	return out, nil
}

// releaseInstanceVolumes lets go of the volumes of an instance that no
// longer runs (terminated): exports withdrawn, attachments ended, and the
// volumes with DeleteOnTermination deleted. The storage loop does the same
// for any it finds; this is for callers that want it done now.
func (c *Cloud) releaseInstanceVolumes(ctx context.Context, instanceID string) {
	vols, err := c.store.InstanceVolumes(ctx, instanceID)
	if err != nil {
		c.log.Warn("release volumes", "instance", instanceID, "err", err)
		return
	}
	for _, v := range vols {
		if !c.claim(v.ID) {
			continue
		}
		c.letGo(ctx, v, v.Attachment.DeleteOnTermination)
		c.release(v.ID)
	}
}

// unexportInstanceVolumes withdraws the exports of a stopped instance's
// volumes (they stay attached in the records: the next start exports them
// again to whichever node runs it).
func (c *Cloud) unexportInstanceVolumes(ctx context.Context, in store.Instance) error {
	vols, err := c.store.InstanceVolumes(ctx, in.ID)
	if err != nil {
		return err
	}
	sc := c.storageOf(in.Zone)
	for _, v := range vols {
		if v.Attachment.Export == "" || sc == nil {
			continue
		}
		if err := sc.Unexport(ctx, v.ID, v.Attachment.Export); err != nil {
			return fmt.Errorf("volume %s: withdraw export: %w", v.ID, err)
		}
		if err := c.store.SetAttachmentExport(ctx, v.ID, ""); err != nil {
			return err
		}
	}
	return nil
}

// bootVolumeDevices are the devices (without /dev/) of an instance's
// volumes other than its root that were attached at its launch or last
// start, in their order: metadata's block-device-mapping/ebsN. EC2 lists
// no volume attached since ("Amazon EBS volumes are only available in
// metadata if they were present at launch time or when the instance was
// last started").
func (c *Cloud) bootVolumeDevices(ctx context.Context, in store.Instance) []string {
	vols, err := c.store.InstanceVolumes(ctx, in.ID)
	if err != nil {
		c.log.Warn("metadata: volumes of instance", "instance", in.ID, "err", err)
		return nil
	}
	root := in.RootDeviceName
	if root == "" {
		root = "/dev/sda1"
	}
	var out []string
	for _, v := range vols {
		a := v.Attachment
		if !a.AtBoot || a.Device == root || deviceSlot(a.Device) == deviceSlot(root) {
			continue
		}
		out = append(out, strings.TrimPrefix(a.Device, "/dev/"))
	}
	return out
}

// ---- the storage loop

// runStorage drives volumes and snapshots between two states until ctx
// ends; Run starts it.
func (c *Cloud) runStorage(ctx context.Context) {
	c.vol.mu.Lock()
	c.vol.init()
	kick := c.vol.kick
	c.vol.mu.Unlock()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.vol.wg.Wait()
			return
		case <-t.C:
		case <-kick:
		}
		busy, err := c.reconcileStorage(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("reconcile volumes", "err", err)
		}
		wait := storageEvery
		if busy {
			wait = storageFast
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// reconcileStorage is one pass of the storage loop; busy says something is
// still in progress.
func (c *Cloud) reconcileStorage(ctx context.Context) (busy bool, err error) {
	vols, err := c.store.VolumesToDrive(ctx)
	if err != nil {
		return false, err
	}
	creating := map[string][]store.Volume{}
	for _, v := range vols {
		busy = true
		switch {
		case v.State == store.VolumeCreating:
			creating[v.Zone] = append(creating[v.Zone], v)
		case v.State == store.VolumeDeleting && v.Attachment == nil:
			if c.claim(v.ID) {
				cctx, cancel := context.WithTimeout(ctx, storageCall)
				c.finishDelete(cctx, v)
				cancel()
				c.release(v.ID)
			}
		case v.Mod.State == "modifying" || v.Mod.State == "optimizing":
			cctx, cancel := context.WithTimeout(ctx, storageCall)
			c.finishModify(cctx, v)
			cancel()
		}
		if v.Attachment != nil && (v.Attachment.State == store.AttachmentAttaching || v.Attachment.State == store.AttachmentDetaching) {
			c.startDrive(v.ID)
		}
	}
	for zone, list := range creating {
		cctx, cancel := context.WithTimeout(ctx, storageCall)
		c.pollVolumes(cctx, zone, list)
		cancel()
	}
	// Volumes whose instance is gone.
	attached, err := c.store.AttachedVolumes(ctx)
	if err != nil {
		return busy, err
	}
	for _, v := range attached {
		in, err := c.store.Instance(ctx, v.AccountID, v.Attachment.InstanceID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && in.State == store.InstanceTerminated) {
			busy = true
			c.startDrive(v.ID)
		}
	}
	sbusy, err := c.reconcileSnapshots(ctx)
	return busy || sbusy, err
}

// pollVolumes asks a zone's storage controller how the creating volumes
// are and records it; a volume it does not know is asked for again.
func (c *Cloud) pollVolumes(ctx context.Context, zone string, list []store.Volume) {
	sc := c.storageOf(zone)
	if sc == nil {
		return
	}
	ids := make([]string, len(list))
	for i, v := range list {
		ids[i] = v.ID
	}
	got, err := sc.Volumes(ctx, ids...)
	if err != nil {
		c.log.Warn("poll volumes", "zone", zone, "err", err)
		return
	}
	byID := map[string]scapi.Volume{}
	for _, sv := range got {
		byID[sv.ID] = sv
	}
	for _, v := range list {
		sv, ok := byID[v.ID]
		switch {
		case !ok:
			err := sc.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: v.ID, SizeBytes: int64(v.SizeGiB) * GiB, SnapshotID: v.SnapshotID})
			if err != nil {
				c.log.Warn("create volume again", "volume", v.ID, "err", err)
				if errors.Is(err, scapi.ErrNoSpace) || errors.Is(err, scapi.ErrBadRequest) || errors.Is(err, scapi.ErrNoSuchSnapshot) {
					_, _ = c.store.SetVolumeState(ctx, v.ID, []string{store.VolumeCreating}, store.VolumeError, err.Error())
				}
			}
		case sv.State == scapi.VolumeAvailable:
			if sv.SizeBytes > int64(v.SizeGiB)*GiB {
				_ = c.store.SetVolumeSize(ctx, v.ID, int((sv.SizeBytes+GiB-1)/GiB))
			}
			if ok, err := c.store.SetVolumeState(ctx, v.ID, []string{store.VolumeCreating}, store.VolumeAvailable, ""); err == nil && ok {
				c.log.Info("volume available", "volume", v.ID, "zone", zone)
			}
		case sv.State == scapi.VolumeError:
			if ok, err := c.store.SetVolumeState(ctx, v.ID, []string{store.VolumeCreating}, store.VolumeError, sv.Error); err == nil && ok {
				c.log.Warn("volume failed", "volume", v.ID, "zone", zone, "why", sv.Error)
			}
		}
	}
}
