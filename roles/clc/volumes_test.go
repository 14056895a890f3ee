package clc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// memStorage is a storage controller that keeps no bytes: volumes and
// snapshots are made when polled (hold keeps them creating/pending), as the
// real one reports them. It records exports.
type memStorage struct {
	mu        sync.Mutex
	zone      string
	hold      bool
	volumes   map[string]*scapi.Volume
	snapshots map[string]*scapi.Snapshot
	exports   map[string]string // export → volume
	nextExp   int
	fail      error // every call fails with it
}

func newMemStorage(zone string) *memStorage {
	return &memStorage{zone: zone, volumes: map[string]*scapi.Volume{}, snapshots: map[string]*scapi.Snapshot{}, exports: map[string]string{}}
}

func (m *memStorage) Zone() string { return m.zone }

func (m *memStorage) CreateVolume(_ context.Context, r scapi.CreateVolumeRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.volumes[r.ID]; ok {
		return nil
	}
	if r.SnapshotID != "" {
		s, ok := m.snapshots[r.SnapshotID]
		if !ok || s.State != scapi.SnapshotCompleted {
			return scapi.ErrNoSuchSnapshot
		}
	}
	m.volumes[r.ID] = &scapi.Volume{ID: r.ID, State: scapi.VolumeCreating, SizeBytes: r.SizeBytes}
	return nil
}

func (m *memStorage) DeleteVolume(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, v := range m.exports {
		if v == id {
			return scapi.ErrInUse
		}
	}
	delete(m.volumes, id)
	return nil
}

func (m *memStorage) ResizeVolume(_ context.Context, id string, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.volumes[id]
	if !ok {
		return scapi.ErrNoSuchVolume
	}
	if size < v.SizeBytes {
		return scapi.ErrBadRequest
	}
	v.SizeBytes = size
	return nil
}

func (m *memStorage) Volumes(_ context.Context, ids ...string) ([]scapi.Volume, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []scapi.Volume
	for _, id := range ids {
		v, ok := m.volumes[id]
		if !ok {
			continue
		}
		if !m.hold && v.State == scapi.VolumeCreating {
			v.State = scapi.VolumeAvailable
		}
		sv := *v
		sv.Exports = nil
		for e, vol := range m.exports {
			if vol == id {
				sv.Exports = append(sv.Exports, e)
			}
		}
		out = append(out, sv)
	}
	return out, nil
}

func (m *memStorage) Export(_ context.Context, r scapi.ExportRequest) (scapi.Target, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return scapi.Target{}, m.fail
	}
	v, ok := m.volumes[r.VolumeID]
	if !ok || v.State != scapi.VolumeAvailable {
		return scapi.Target{}, scapi.ErrNoSuchVolume
	}
	m.nextExp++
	name := fmt.Sprintf("%s/%d@%s", r.VolumeID, m.nextExp, r.Node)
	m.exports[name] = r.VolumeID
	return scapi.Target{Host: "192.0.2.1", Port: 10809, Export: name, SizeBytes: v.SizeBytes}, nil
}

func (m *memStorage) Unexport(_ context.Context, _, export string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.exports, export)
	return nil
}

func (m *memStorage) CreateSnapshot(_ context.Context, r scapi.CreateSnapshotRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	v, ok := m.volumes[r.VolumeID]
	if !ok {
		return scapi.ErrNoSuchVolume
	}
	if _, ok := m.snapshots[r.ID]; !ok {
		m.snapshots[r.ID] = &scapi.Snapshot{ID: r.ID, VolumeID: r.VolumeID, State: scapi.SnapshotPending, SizeBytes: v.SizeBytes}
	}
	return nil
}

func (m *memStorage) CopySnapshot(_ context.Context, r scapi.CopySnapshotRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.snapshots[r.SourceID]
	if !ok {
		return scapi.ErrNoSuchSnapshot
	}
	cp := *src
	cp.ID, cp.State = r.ID, scapi.SnapshotPending
	m.snapshots[r.ID] = &cp
	return nil
}

func (m *memStorage) DeleteSnapshot(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.snapshots, id)
	return nil
}

func (m *memStorage) Snapshots(_ context.Context, ids ...string) ([]scapi.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []scapi.Snapshot
	for _, id := range ids {
		s, ok := m.snapshots[id]
		if !ok {
			continue
		}
		if !m.hold && s.State == scapi.SnapshotPending {
			s.State, s.Progress, s.Completed = scapi.SnapshotCompleted, 100, time.UnixMilli(1_700_000_000_000)
		}
		out = append(out, *s)
	}
	return out, nil
}

func (m *memStorage) liveExports() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.exports)
}

// volCluster is the instances' fake cluster that also records volume
// attachments, as a node would hold them.
type volCluster struct {
	*fakeCluster
	vmu      sync.Mutex
	attached map[string]ncapi.VolumeAttachment // by volume
	detached []string
	failAtt  error
}

func (v *volCluster) AttachVolume(_ context.Context, instanceID string, a ncapi.VolumeAttachment) error {
	v.vmu.Lock()
	defer v.vmu.Unlock()
	if v.failAtt != nil {
		return v.failAtt
	}
	v.fakeCluster.mu.Lock()
	_, ok := v.fakeCluster.instances[instanceID]
	v.fakeCluster.mu.Unlock()
	if !ok {
		return ccapi.ErrNoSuchInstance
	}
	v.attached[a.VolumeID] = a
	return nil
}

func (v *volCluster) DetachVolume(_ context.Context, instanceID, volumeID string, force bool) error {
	v.vmu.Lock()
	defer v.vmu.Unlock()
	delete(v.attached, volumeID)
	v.detached = append(v.detached, volumeID)
	return nil
}

type volFixture struct {
	*instFixture
	sc   *memStorage
	vcl  *volCluster
	zone string
	inst store.Instance
}

// newVolFixture is the instances' fixture with a storage controller in its
// zone and one of alice's instances running.
func newVolFixture(t *testing.T) *volFixture {
	t.Helper()
	f := newInstFixture(t, 4)
	vcl := &volCluster{fakeCluster: f.cl, attached: map[string]ncapi.VolumeAttachment{}}
	f.c.SetCluster(vcl)
	zone := f.cl.zone
	sc := newMemStorage(zone)
	f.c.SetStorage(zone, sc)
	in := f.launch(t, 1)[0]
	f.cl.set(in.ID, ncapi.StateRunning, "")
	f.reconcile(t)
	in, err := f.c.store.Instance(context.Background(), f.alice, in.ID)
	if err != nil || in.State != store.InstanceRunning {
		t.Fatalf("instance: %v %+v", err, in)
	}
	return &volFixture{instFixture: f, sc: sc, vcl: vcl, zone: zone, inst: in}
}

// settle runs the storage loop's passes until nothing is in progress (a
// held storage controller keeps things in progress: then 20 passes).
func (f *volFixture) settle(t *testing.T) {
	t.Helper()
	for i := 0; i < 20; i++ {
		busy, err := f.c.reconcileStorage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f.c.vol.wg.Wait()
		if !busy {
			return
		}
	}
	if !f.sc.hold {
		vols, _ := f.c.store.VolumesToDrive(context.Background())
		snaps, _ := f.c.store.SnapshotsToDrive(context.Background())
		t.Fatalf("the storage loop never settles: %+v %+v", vols, snaps)
	}
}

func (f *volFixture) volume(t *testing.T, id string) store.Volume {
	t.Helper()
	v, err := f.c.store.Volume(context.Background(), f.alice, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *volFixture) newVolume(t *testing.T, size int) store.Volume {
	t.Helper()
	v, err := f.c.CreateVolume(context.Background(), f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: size})
	if err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if got := f.volume(t, v.ID); got.State != store.VolumeAvailable {
		t.Fatalf("volume %s: %+v", v.ID, got)
	}
	return v
}

func wantAWS(t *testing.T, what string, err error, code, inMessage string) {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok || e.Code != code || !strings.Contains(e.Message, inMessage) {
		t.Fatalf("%s: %v, want %s containing %q", what, err, code, inMessage)
	}
}

func TestVolumeCreateDescribeDelete(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	f.sc.hold = true
	v, err := f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: 2, ClientToken: "t1", Tags: []store.Tag{{Key: "Name", Value: "data"}}})
	if err != nil || v.State != store.VolumeCreating || v.Type != DefaultVolumeType {
		t.Fatalf("create: %v %+v", err, v)
	}
	again, err := f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: 2, ClientToken: "t1"})
	if err != nil || again.ID != v.ID {
		t.Fatalf("client token: %v %+v", err, again)
	}
	if _, err := f.c.store.Volume(ctx, f.bob, v.ID); err == nil {
		t.Fatal("bob sees alice's volume")
	}
	_, err = f.c.DescribeVolumes(ctx, f.bob, []string{v.ID})
	wantAWS(t, "bob describes", err, "InvalidVolume.NotFound", "The volume '"+v.ID+"' does not exist.")
	// Attaching or snapshotting a volume still being made is refused.
	_, err = f.c.AttachVolume(ctx, f.alice, v.ID, f.inst.ID, "/dev/sdf")
	wantAWS(t, "attach creating", err, "IncorrectState", "'creating'")
	_, err = f.c.CreateSnapshot(ctx, f.alice, v.ID, "", nil)
	wantAWS(t, "snapshot creating", err, "IncorrectState", "'creating'")
	f.settle(t) // held: still creating, asked again never
	if got := f.volume(t, v.ID); got.State != store.VolumeCreating {
		t.Fatalf("held: %+v", got)
	}
	f.sc.hold = false
	f.settle(t)
	if got := f.volume(t, v.ID); got.State != store.VolumeAvailable || len(got.Tags) != 1 {
		t.Fatalf("available: %+v", got)
	}
	// The storage controller lost a volume being made: asked again.
	f.sc.hold = true
	w, _ := f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: 1})
	f.sc.mu.Lock()
	delete(f.sc.volumes, w.ID)
	f.sc.mu.Unlock()
	f.sc.hold = false
	f.settle(t)
	if got := f.volume(t, w.ID); got.State != store.VolumeAvailable {
		t.Fatalf("recreated: %+v", got)
	}

	// Refusals.
	_, err = f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: "nowhere", SizeGiB: 1})
	wantAWS(t, "zone", err, "InvalidParameterValue", "Invalid availability zone: [nowhere]")
	_, err = f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone})
	wantAWS(t, "no size", err, "MissingParameter", "size or snapshotId")
	_, err = f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: 2000, Type: "standard"})
	wantAWS(t, "too big", err, "InvalidParameterValue", "between 1 and 1024")
	for i := 0; i < 3; i++ { // bob's 48 TiB
		if _, err := f.c.CreateVolume(ctx, f.bob, store.VolumeSpec{Zone: f.zone, SizeGiB: 16384}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.c.CreateVolume(ctx, f.bob, store.VolumeSpec{Zone: f.zone, SizeGiB: 16384})
	wantAWS(t, "limit", err, "VolumeLimitExceeded", "")
	f.sc.fail = scapi.ErrNoSpace
	_, err = f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: 3})
	f.sc.fail = nil
	wantAWS(t, "no space", err, "InsufficientVolumeCapacity", "")
	if vols, _ := f.c.DescribeVolumes(ctx, f.alice, nil); len(vols) != 2 {
		t.Fatalf("volumes after refusals: %+v", vols)
	}

	// Delete: the record goes once the storage controller deleted it; a
	// controller that fails keeps it deleting until the loop succeeds.
	f.sc.fail = fmt.Errorf("sc down")
	if err := f.c.DeleteVolume(ctx, f.alice, v.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.volume(t, v.ID); got.State != store.VolumeDeleting {
		t.Fatalf("deleting: %+v", got)
	}
	f.sc.fail = nil
	f.settle(t)
	_, err = f.c.DescribeVolumes(ctx, f.alice, []string{v.ID})
	wantAWS(t, "deleted", err, "InvalidVolume.NotFound", v.ID)
	if _, ok := f.sc.volumes[v.ID]; ok {
		t.Fatal("storage controller still has it")
	}
	err = f.c.DeleteVolume(ctx, f.alice, v.ID)
	wantAWS(t, "delete twice", err, "InvalidVolume.NotFound", v.ID)
}

func TestVolumeAttachDetach(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	v := f.newVolume(t, 1)
	w := f.newVolume(t, 1)

	for _, bad := range []string{"/dev/vdb", "sdz9x", "/dev/sda16", ""} {
		_, err := f.c.AttachVolume(ctx, f.alice, v.ID, f.inst.ID, bad)
		wantAWS(t, "device "+bad, err, "InvalidParameterValue", "is not a valid EBS device name")
	}
	for _, taken := range []string{"/dev/sda1", "/dev/sdb", "/dev/xvda"} {
		_, err := f.c.AttachVolume(ctx, f.alice, v.ID, f.inst.ID, taken)
		wantAWS(t, "device "+taken, err, "InvalidDevice.InUse", taken)
	}
	_, err := f.c.AttachVolume(ctx, f.bob, v.ID, f.inst.ID, "/dev/sdf")
	wantAWS(t, "bob attaches", err, "InvalidVolume.NotFound", v.ID)
	_, err = f.c.AttachVolume(ctx, f.alice, v.ID, "i-0123456789abcdef0", "/dev/sdf")
	wantAWS(t, "no instance", err, "InvalidInstanceID.NotFound", "")

	a, err := f.c.AttachVolume(ctx, f.alice, v.ID, f.inst.ID, "/dev/sdf")
	if err != nil || a.State != store.AttachmentAttaching || a.Device != "/dev/sdf" {
		t.Fatalf("attach: %v %+v", err, a)
	}
	if got := f.volume(t, v.ID); got.EC2State() != store.VolumeInUse {
		t.Fatalf("in use: %+v", got)
	}
	f.c.vol.wg.Wait()
	got := f.volume(t, v.ID)
	if got.Attachment.State != store.AttachmentAttached || got.Attachment.Export == "" {
		t.Fatalf("attached: %+v", got.Attachment)
	}
	na := f.vcl.attached[v.ID]
	if na.Serial != "vol"+strings.TrimPrefix(v.ID, "vol-") || len(na.Serial) != 20 || na.Export != got.Attachment.Export ||
		na.Host == "" || na.Port != 10809 || na.SizeBytes != GiB || na.Device != "/dev/sdf" {
		t.Fatalf("node was given %+v", na)
	}
	if !strings.HasSuffix(na.Export, "@node1") {
		t.Fatalf("exported to %s, not the instance's node", na.Export)
	}

	_, err = f.c.AttachVolume(ctx, f.alice, v.ID, f.inst.ID, "/dev/sdg")
	wantAWS(t, "attach twice", err, "VolumeInUse", v.ID)
	_, err = f.c.AttachVolume(ctx, f.alice, w.ID, f.inst.ID, "/dev/xvdf")
	wantAWS(t, "same slot", err, "InvalidDevice.InUse", "/dev/xvdf")
	err = f.c.DeleteVolume(ctx, f.alice, v.ID)
	wantAWS(t, "delete attached", err, "VolumeInUse", f.inst.ID)
	_, err = f.c.DetachVolume(ctx, f.alice, v.ID, f.inst.ID, "/dev/sdg", false)
	wantAWS(t, "wrong device", err, "InvalidAttachment.NotFound", "")
	_, err = f.c.DetachVolume(ctx, f.alice, w.ID, "", "", false)
	wantAWS(t, "detach available", err, "IncorrectState", "Volume '"+w.ID+"' is in the 'available' state.")

	d, err := f.c.DetachVolume(ctx, f.alice, v.ID, f.inst.ID, "/dev/sdf", false)
	if err != nil || d.State != store.AttachmentDetaching || d.InstanceID != f.inst.ID {
		t.Fatalf("detach: %v %+v", err, d)
	}
	f.c.vol.wg.Wait()
	if got := f.volume(t, v.ID); got.EC2State() != store.VolumeAvailable || got.Attachment != nil {
		t.Fatalf("detached: %+v", got)
	}
	if _, ok := f.vcl.attached[v.ID]; ok || f.sc.liveExports() != 0 {
		t.Fatalf("node still has it (%v) or exports left (%d)", ok, f.sc.liveExports())
	}

	// An attach the node refuses for good is given up: available again,
	// its export withdrawn.
	f.vcl.failAtt = fmt.Errorf("%w: no volumes here", ncapi.ErrUnsupported)
	if _, err := f.c.AttachVolume(ctx, f.alice, w.ID, f.inst.ID, "/dev/sdh"); err != nil {
		t.Fatal(err)
	}
	f.c.vol.wg.Wait()
	if got := f.volume(t, w.ID); got.Attachment != nil || f.sc.liveExports() != 0 {
		t.Fatalf("given up: %+v exports %d", got.Attachment, f.sc.liveExports())
	}
	// A failure that may pass is tried again by the loop.
	f.vcl.failAtt = fmt.Errorf("node busy")
	if _, err := f.c.AttachVolume(ctx, f.alice, w.ID, f.inst.ID, "/dev/sdh"); err != nil {
		t.Fatal(err)
	}
	f.c.vol.wg.Wait()
	if got := f.volume(t, w.ID); got.Attachment == nil || got.Attachment.State != store.AttachmentAttaching {
		t.Fatalf("retrying: %+v", got.Attachment)
	}
	f.vcl.failAtt = nil
	f.settle(t)
	if got := f.volume(t, w.ID); got.Attachment == nil || got.Attachment.State != store.AttachmentAttached || f.sc.liveExports() != 1 {
		t.Fatalf("retried: %+v exports %d", got.Attachment, f.sc.liveExports())
	}

	// Force: the node's answer does not hold it.
	if _, err := f.c.DetachVolume(ctx, f.alice, w.ID, "", "", true); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if got := f.volume(t, w.ID); got.Attachment != nil || f.sc.liveExports() != 0 {
		t.Fatalf("forced: %+v", got.Attachment)
	}
}

func TestVolumeZoneAndInstanceState(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	other := store.Volume{ID: "vol-0000000000000beef", AccountID: f.alice, Zone: "elsewhere", SizeGiB: 1, Type: "gp2", State: store.VolumeAvailable}
	if _, _, err := f.c.store.CreateVolume(ctx, other, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.AttachVolume(ctx, f.alice, other.ID, f.inst.ID, "/dev/sdf")
	wantAWS(t, "zone", err, "InvalidVolume.ZoneMismatch", f.inst.ID)
	v := f.newVolume(t, 1)
	pending := f.launch(t, 1)[0]
	_, err = f.c.AttachVolume(ctx, f.alice, v.ID, pending.ID, "/dev/sdf")
	wantAWS(t, "pending", err, "IncorrectInstanceState", pending.ID)
}

func TestVolumesOfTerminatedInstance(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	keep, gone := f.newVolume(t, 1), f.newVolume(t, 1)
	for i, v := range []store.Volume{keep, gone} {
		if _, err := f.c.AttachVolume(ctx, f.alice, v.ID, f.inst.ID, fmt.Sprintf("/dev/sd%c", 'f'+i)); err != nil {
			t.Fatal(err)
		}
	}
	f.c.vol.wg.Wait()
	if err := f.c.store.SetDeleteOnTermination(ctx, gone.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.TerminateInstances(ctx, f.alice, []string{f.inst.ID}); err != nil {
		t.Fatal(err)
	}
	f.cl.set(f.inst.ID, ncapi.StateTerminated, "")
	f.reconcile(t)
	f.settle(t)
	if got := f.volume(t, keep.ID); got.EC2State() != store.VolumeAvailable {
		t.Fatalf("kept: %+v", got)
	}
	if _, err := f.c.store.Volume(ctx, f.alice, gone.ID); err == nil {
		t.Fatal("the DeleteOnTermination volume is still there")
	}
	if f.sc.liveExports() != 0 {
		t.Fatalf("exports left: %d", f.sc.liveExports())
	}
}

func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	v := f.newVolume(t, 3)
	f.sc.hold = true
	s, err := f.c.CreateSnapshot(ctx, f.alice, v.ID, "first", []store.Tag{{Key: "k", Value: "v"}})
	if err != nil || s.State != store.SnapshotPending || s.VolumeSizeGiB != 3 {
		t.Fatalf("snapshot: %v %+v", err, s)
	}
	err = f.c.DeleteSnapshot(ctx, f.alice, s.ID)
	wantAWS(t, "delete pending", err, "IncorrectState", "'pending'")
	_, err = f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SnapshotID: s.ID})
	wantAWS(t, "volume of pending", err, "IncorrectState", "'pending'")
	f.sc.hold = false
	f.settle(t)
	snaps, err := f.c.DescribeSnapshots(ctx, f.alice, []string{s.ID})
	if err != nil || snaps[0].State != store.SnapshotCompleted || snaps[0].Progress != 100 || snaps[0].CompletedMS == 0 {
		t.Fatalf("completed: %v %+v", err, snaps)
	}

	// Bob sees it only once shared, and may then make volumes of it.
	_, err = f.c.DescribeSnapshots(ctx, f.bob, []string{s.ID})
	wantAWS(t, "bob", err, "InvalidSnapshot.NotFound", s.ID)
	_, err = f.c.CreateVolume(ctx, f.bob, store.VolumeSpec{Zone: f.zone, SnapshotID: s.ID})
	wantAWS(t, "bob's volume", err, "InvalidSnapshot.NotFound", s.ID)
	if err := f.c.ModifySnapshotPermissions(ctx, f.alice, s.ID, store.SnapshotPermissionUpdate{Add: []string{f.bob}}); err != nil {
		t.Fatal(err)
	}
	err = f.c.ModifySnapshotPermissions(ctx, f.bob, s.ID, store.SnapshotPermissionUpdate{Reset: true})
	wantAWS(t, "bob resets", err, "InvalidSnapshot.NotFound", s.ID)
	bv, err := f.c.CreateVolume(ctx, f.bob, store.VolumeSpec{Zone: f.zone, SnapshotID: s.ID})
	if err != nil || bv.SizeGiB != 3 || bv.SnapshotID != s.ID {
		t.Fatalf("bob's volume: %v %+v", err, bv)
	}
	_, err = f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SnapshotID: s.ID, SizeGiB: 2})
	wantAWS(t, "smaller", err, "InvalidParameterValue", "smaller than snapshot")
	big, err := f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SnapshotID: s.ID, SizeGiB: 5})
	if err != nil || big.SizeGiB != 5 {
		t.Fatalf("bigger: %v %+v", err, big)
	}

	cp, err := f.c.CopySnapshot(ctx, f.bob, s.ID, "bob's copy", nil)
	if err != nil || cp.AccountID != f.bob || cp.SourceID != s.ID {
		t.Fatalf("copy: %v %+v", err, cp)
	}
	f.settle(t)
	if snaps, _ := f.c.DescribeSnapshots(ctx, f.bob, []string{cp.ID}); snaps[0].State != store.SnapshotCompleted {
		t.Fatalf("copy: %+v", snaps)
	}

	if err := f.c.DeleteSnapshot(ctx, f.bob, s.ID); err == nil {
		t.Fatal("bob deleted alice's snapshot")
	}
	if err := f.c.DeleteSnapshot(ctx, f.alice, s.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.DescribeSnapshots(ctx, f.alice, []string{s.ID})
	wantAWS(t, "deleted", err, "InvalidSnapshot.NotFound", s.ID)
	if _, ok := f.sc.snapshots[s.ID]; ok {
		t.Fatal("storage controller still has it")
	}
}

func TestModifyVolume(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	v := f.newVolume(t, 2)
	_, err := f.c.ModifyVolume(ctx, f.alice, v.ID, store.VolumeModification{TargetSize: 1})
	wantAWS(t, "shrink", err, "InvalidParameterValue", "smaller")
	got, err := f.c.ModifyVolume(ctx, f.alice, v.ID, store.VolumeModification{TargetSize: 4, TargetType: "gp3"})
	if err != nil || got.Mod.State != "completed" || got.SizeGiB != 4 || got.Type != "gp3" || got.Mod.OrigSize != 2 {
		t.Fatalf("grow: %v %+v", err, got)
	}
	if f.sc.volumes[v.ID].SizeBytes != 4*GiB {
		t.Fatalf("storage controller size %d", f.sc.volumes[v.ID].SizeBytes)
	}
}

func TestDeviceNames(t *testing.T) {
	for name, want := range map[string]string{"/dev/sdf": "f", "/dev/xvdf": "f", "/dev/sda1": "a", "xvdba": "ba", "/dev/hdc": "c"} {
		if !ValidDevice(name) {
			t.Errorf("%s refused", name)
		}
		if got := deviceSlot(name); got != want {
			t.Errorf("slot of %s: %s, want %s", name, got, want)
		}
	}
	for _, name := range []string{"/dev/vdf", "/dev/sd", "/dev/sdf16", "/dev/nvme1n1", "/dev/sdF", "f"} {
		if ValidDevice(name) {
			t.Errorf("%s accepted", name)
		}
	}
	if s := VolumeSerial("vol-0123456789abcdef0"); s != "vol0123456789abcdef0" {
		t.Errorf("serial %s", s)
	}
}

// TestMetadataEBSVolumes: block-device-mapping/ebsN lists the volumes
// attached at launch (or the last start), in their order, by device name
// without /dev/; a volume hot-attached since is not listed, as on EC2.
func TestMetadataEBSVolumes(t *testing.T) {
	ctx := context.Background()
	f, in := metadataFixture(t)
	for i, id := range []string{"vol-00000000000000001", "vol-00000000000000002", "vol-00000000000000003"} {
		v := store.Volume{ID: id, AccountID: in.AccountID, Zone: in.Zone, SizeGiB: 1, Type: "gp2", State: store.VolumeAvailable}
		if _, _, err := f.c.store.CreateVolume(ctx, v, nil, 0); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if _, err := f.c.store.AttachVolume(ctx, in.AccountID, store.VolumeAttachment{VolumeID: id, InstanceID: in.ID,
				Device: "/dev/sdh", Slot: "h", State: store.AttachmentAttached}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := f.c.attachAtLaunch(ctx, in.AccountID, id, in.ID, []string{"/dev/sdg", "/dev/xvdf"}[i], false, 1-i); err != nil {
			t.Fatal(err)
		}
	}
	c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
	if _, list := c.get("/latest/meta-data/block-device-mapping/"); list != "ami\nebs1\nebs2\nephemeral0\nroot\nswap" {
		t.Errorf("listing %q", list)
	}
	for name, dev := range map[string]string{"ebs1": "xvdf", "ebs2": "sdg"} {
		if code, got := c.get("/latest/meta-data/block-device-mapping/" + name); code != 200 || got != dev {
			t.Errorf("%s: %d %q, want %q", name, code, got, dev)
		}
	}
}

// TestOrphanExports: an export the storage controller made but the cloud
// controller never recorded (it crashed in between) neither blocks the
// volume's deletion nor outlives the next attach.
func TestOrphanExports(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	v, w := f.newVolume(t, 1), f.newVolume(t, 1)
	for _, id := range []string{v.ID, w.ID} {
		if _, err := f.sc.Export(ctx, scapi.ExportRequest{VolumeID: id, Node: "node1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.c.DeleteVolume(ctx, f.alice, v.ID); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if _, err := f.c.store.VolumeByID(ctx, v.ID); err == nil {
		t.Fatal("a volume with an orphan export is never deleted")
	}
	if _, err := f.c.AttachVolume(ctx, f.alice, w.ID, f.inst.ID, "/dev/sdf"); err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	if got := f.volume(t, w.ID); got.Attachment.State != store.AttachmentAttached || f.sc.liveExports() != 1 {
		t.Fatalf("attached %+v with %d exports, want the one", got.Attachment, f.sc.liveExports())
	}
}

// TestRestartDrivesVolumes: what a cloud controller recorded and had not
// finished when it stopped (a volume creating, an attach, a detach, a
// snapshot pending, a delete) is finished by the next one, from the
// records alone.
func TestRestartDrivesVolumes(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	att, det, gone := f.newVolume(t, 1), f.newVolume(t, 1), f.newVolume(t, 1)
	if _, err := f.c.AttachVolume(ctx, f.alice, det.ID, f.inst.ID, "/dev/sdg"); err != nil {
		t.Fatal(err)
	}
	f.c.vol.wg.Wait()
	// The storage controller and the node stop answering: every change
	// below is recorded and none is carried out.
	f.sc.fail, f.vcl.failAtt = fmt.Errorf("sc down"), fmt.Errorf("node busy")
	f.sc.hold = true
	creating, err := f.c.CreateVolume(ctx, f.alice, store.VolumeSpec{Zone: f.zone, SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.AttachVolume(ctx, f.alice, att.ID, f.inst.ID, "/dev/sdf"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.DetachVolume(ctx, f.alice, det.ID, "", "", false); err != nil {
		t.Fatal(err)
	}
	if err := f.c.DeleteVolume(ctx, f.alice, gone.ID); err != nil {
		t.Fatal(err)
	}
	f.c.vol.wg.Wait()
	snap, err := f.c.CreateSnapshot(ctx, f.alice, att.ID, "", nil)
	if err != nil || snap.State != store.SnapshotPending {
		t.Fatalf("snapshot while the storage controller fails: %v %+v", err, snap)
	}

	// A new cloud controller over the same records, everything answering.
	c2, err := New(ctx, f.c.cfg, f.c.store, f.c.log)
	if err != nil {
		t.Fatal(err)
	}
	c2.SetCluster(f.vcl)
	c2.SetStorage(f.zone, f.sc)
	f.sc.fail, f.vcl.failAtt, f.sc.hold = nil, nil, false
	f.c = c2
	f.settle(t)
	if got := f.volume(t, creating.ID); got.State != store.VolumeAvailable {
		t.Errorf("creating: %+v", got)
	}
	if got := f.volume(t, att.ID); got.Attachment == nil || got.Attachment.State != store.AttachmentAttached {
		t.Errorf("attaching: %+v", got.Attachment)
	}
	if got := f.volume(t, det.ID); got.Attachment != nil {
		t.Errorf("detaching: %+v", got.Attachment)
	}
	if _, err := f.c.store.VolumeByID(ctx, gone.ID); err == nil {
		t.Error("deleting: still there")
	}
	if f.sc.liveExports() != 1 {
		t.Errorf("%d exports, want the attached volume's", f.sc.liveExports())
	}
	if s, err := f.c.DescribeSnapshots(ctx, f.alice, []string{snap.ID}); err != nil || s[0].State != store.SnapshotCompleted {
		t.Errorf("snapshot: %v %+v", err, s)
	}
}

// TestRootVolumeStaysWhileRunning: an EBS-backed instance's root volume
// is not detached while the instance runs (EC2's OperationNotPermitted);
// its other volumes are.
func TestRootVolumeStaysWhileRunning(t *testing.T) {
	ctx := context.Background()
	f := newVolFixture(t)
	src := f.newVolume(t, 1)
	snap, err := f.c.CreateSnapshot(ctx, f.alice, src.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.settle(t)
	emi := "emi-00000000000000e85"
	if err := f.c.store.CreateImage(ctx, store.Image{ID: emi, AccountID: f.alice, Kind: store.ImageMachine, Name: "ebs", Architecture: "x86_64",
		State: store.ImageAvailable, RootDeviceType: store.RootEBS, RootDeviceName: "/dev/sda1", KernelID: f.eki, RamdiskID: f.eri,
		BlockDevices: []store.ImageBlockDevice{{Device: "/dev/sda1", EBS: true, SnapshotID: snap.ID, VolumeSize: 1}}}); err != nil {
		t.Fatal(err)
	}
	spec := f.spec(1, 1)
	spec.ImageID = emi
	root, other := f.newVolume(t, 1), f.newVolume(t, 1)
	f.sc.mu.Lock()
	f.sc.hold = true
	f.sc.mu.Unlock()
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	in := insts[0]
	if in.RootDeviceType != store.RootEBS || in.RootDeviceName != "/dev/sda1" {
		t.Fatalf("launched %+v", in)
	}
	// The launch's own root volume is held creating (the storage
	// controller holds it); a volume attached at launch on the root
	// device stands for it.
	if err := f.c.attachAtLaunch(ctx, f.alice, root.ID, in.ID, "/dev/sda1", false, 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.DetachVolume(ctx, f.alice, root.ID, "", "", false)
	wantAWS(t, "detach root", err, "OperationNotPermitted", root.ID)
	_, err = f.c.DetachVolume(ctx, f.alice, root.ID, "", "", true)
	wantAWS(t, "force detach root", err, "OperationNotPermitted", root.ID)
	if err := f.c.attachAtLaunch(ctx, f.alice, other.ID, in.ID, "/dev/sdf", false, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.DetachVolume(ctx, f.alice, other.ID, "", "", false); err != nil {
		t.Fatalf("detach of a volume not the root: %v", err)
	}
}
