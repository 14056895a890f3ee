package ec2api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// ebsImage records an EBS-backed image of alice's (root /dev/xvda from a
// completed snapshot) with the instance-store image's kernel and ramdisk,
// and serves the zone with an ebsStorage.
func (f *instAPI) ebsImage(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	cloud := f.a.cloud.(*clc.Cloud)
	zone := cloud.Zones()[0]
	cloud.SetStorage(zone, newEBSStorage(zone))
	emi, err := f.st.ImageByID(ctx, f.emi)
	if err != nil {
		t.Fatal(err)
	}
	snap := ids.New("snap")
	if err := f.st.CreateSnapshot(ctx, store.Snapshot{ID: snap, AccountID: f.alice, Zone: zone, VolumeID: ids.New("vol"), VolumeSizeGiB: 1,
		State: store.SnapshotCompleted, Progress: 100}, nil, 0); err != nil {
		t.Fatal(err)
	}
	id := ids.New("emi")
	if err := f.st.CreateImage(ctx, store.Image{ID: id, AccountID: f.alice, Kind: store.ImageMachine, Name: "ebs", Architecture: "x86_64",
		KernelID: emi.KernelID, RamdiskID: emi.RamdiskID, State: store.ImageAvailable, RootDeviceType: store.RootEBS,
		RootDeviceName: "/dev/xvda", BlockDevices: []store.ImageBlockDevice{{Device: "/dev/xvda", EBS: true,
			SnapshotID: snap, VolumeSize: 1, VolumeType: "standard", DeleteOnTermination: true}}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *instAPI) runOne(t *testing.T, image string) string {
	t.Helper()
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": image, "MinCount": "1", "MaxCount": "1"})
	id := obj(t, r, "Instances", 0, "InstanceId").(string)
	// Pending until the cluster runs it (an EBS-backed one once its
	// volumes exist), then running.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		f.cl.mu.Lock()
		_, ran := f.cl.states[id]
		f.cl.mu.Unlock()
		if ran {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never handed to the cluster", id)
		}
	}
	f.cl.set(id, ncapi.StateRunning)
	f.waitState(t, id, "running")
	return id
}

// TestStopInstanceStore: an instance-store instance cannot stop, with
// EC2's words; nor can a terminated one, nor an unknown one.
func TestStopInstanceStore(t *testing.T) {
	f := newInstAPI(t)
	id := f.runOne(t, f.emi)
	_, err := f.call(f.alice, "StopInstances", queryapi.Params{"InstanceId.1": id})
	e, ok := awserr.As(err)
	if !ok || e.Code != "UnsupportedOperation" ||
		e.Message != "The instance '"+id+"' does not have an 'ebs' root device type and cannot be stopped." {
		t.Fatalf("stop of an instance-store instance: %v", err)
	}
	f.fails(t, "StopInstances", queryapi.Params{"InstanceId.1": "i-0123456789abcdef0"}, "InvalidInstanceID.NotFound")
	f.fails(t, "StopInstances", queryapi.Params{}, "MissingParameter")
	f.fails(t, "StopInstances", queryapi.Params{"InstanceId.1": id, "Force": "maybe"}, "InvalidParameterValue")
	// Starting a running instance answers its state.
	r := f.must(t, "StartInstances", queryapi.Params{"InstanceId.1": id})
	if obj(t, r, "StartingInstances", 0, "CurrentState", "Name") != "running" || obj(t, r, "StartingInstances", 0, "PreviousState", "Name") != "running" {
		t.Errorf("start of a running instance: %v", r)
	}
	f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id})
	f.waitState(t, id, "terminated")
	f.fails(t, "StartInstances", queryapi.Params{"InstanceId.1": id}, "IncorrectInstanceState")
}

// TestStopStartEBSInstance: an EBS-backed instance stops (its node lets it
// go, its private address, groups and tags stay; a lent public address
// goes back to the pool) and starts again under the same id.
func TestStopStartEBSInstance(t *testing.T) {
	f := newInstAPI(t)
	img := f.ebsImage(t)
	im := f.must(t, "DescribeImages", queryapi.Params{"ImageId.1": img})
	if obj(t, im, "Images", 0, "RootDeviceType") != "ebs" || obj(t, im, "Images", 0, "RootDeviceName") != "/dev/xvda" {
		t.Errorf("EBS image %v", im)
	}
	id := f.runOne(t, img)
	f.must(t, "CreateTags", queryapi.Params{"ResourceId.1": id, "Tag.1.Key": "Name", "Tag.1.Value": "db"})
	before := f.waitState(t, id, "running")
	if before["RootDeviceType"] != "ebs" || before["RootDeviceName"] != "/dev/xvda" {
		t.Errorf("EBS instance root %v %v", before["RootDeviceType"], before["RootDeviceName"])
	}

	f.fails(t, "StopInstances", queryapi.Params{"InstanceId.1": id, "DryRun": "true"}, "DryRunOperation")
	r := f.must(t, "StopInstances", queryapi.Params{"InstanceId.1": id, "Force": "false", "Hibernate": "false"})
	if obj(t, r, "StoppingInstances", 0, "InstanceId") != id || obj(t, r, "StoppingInstances", 0, "CurrentState", "Name") != "stopping" ||
		obj(t, r, "StoppingInstances", 0, "CurrentState", "Code") != float64(64) || obj(t, r, "StoppingInstances", 0, "PreviousState", "Name") != "running" {
		t.Errorf("stop: %v", r)
	}
	stopped := f.waitState(t, id, "stopped")
	if stopped["PrivateIpAddress"] != before["PrivateIpAddress"] || obj(t, stopped, "SecurityGroups", 0, "GroupId") != obj(t, before, "SecurityGroups", 0, "GroupId") ||
		obj(t, stopped, "Tags", 0, "Value") != "db" || obj(t, stopped, "NetworkInterfaces", 0, "MacAddress") != obj(t, before, "NetworkInterfaces", 0, "MacAddress") {
		t.Errorf("stopped instance lost what it keeps: %v", stopped)
	}
	if stopped["PublicIpAddress"] != nil {
		t.Errorf("stopped instance kept a lent public address %v", stopped["PublicIpAddress"])
	}
	// Stopping again answers its state; the type may change while stopped.
	r = f.must(t, "StopInstances", queryapi.Params{"InstanceId.1": id})
	if obj(t, r, "StoppingInstances", 0, "CurrentState", "Name") != "stopped" {
		t.Errorf("stop of a stopped instance: %v", r)
	}
	f.must(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "InstanceType.Value": "c1.medium"})
	// No node up: it cannot start, and stays stopped.
	f.cl.mu.Lock()
	f.cl.nodes = []ccapi.NodeInfo{{Host: "n1"}}
	f.cl.mu.Unlock()
	f.fails(t, "StartInstances", queryapi.Params{"InstanceId.1": id}, "InsufficientInstanceCapacity")
	f.waitState(t, id, "stopped")
	f.cl.mu.Lock()
	f.cl.nodes = nil
	f.cl.mu.Unlock()

	r = f.must(t, "StartInstances", queryapi.Params{"InstanceId.1": id})
	if obj(t, r, "StartingInstances", 0, "CurrentState", "Name") != "pending" || obj(t, r, "StartingInstances", 0, "PreviousState", "Name") != "stopped" {
		t.Errorf("start: %v", r)
	}
	f.cl.mu.Lock()
	last := f.cl.runs[len(f.cl.runs)-1]
	f.cl.mu.Unlock()
	if last.ID != id || last.VMType != "c1.medium" || last.MAC != obj(t, before, "NetworkInterfaces", 0, "MacAddress") || last.PrivateIP.String() != before["PrivateIpAddress"] {
		t.Errorf("started as %+v", last)
	}
	f.cl.set(id, ncapi.StateRunning)
	again := f.waitState(t, id, "running")
	if again["PrivateIpAddress"] != before["PrivateIpAddress"] || again["InstanceType"] != "c1.medium" {
		t.Errorf("started instance %v", again)
	}
	f.fails(t, "StopInstances", queryapi.Params{"InstanceId.1": id, "InstanceId.2": "i-0123456789abcdef0"}, "InvalidInstanceID.NotFound")
	f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id})
	f.waitState(t, id, "terminated")
	f.fails(t, "StopInstances", queryapi.Params{"InstanceId.1": id}, "IncorrectInstanceState")
}

// ebsStorage is a storage controller that makes volumes and snapshots at
// once and keeps only their records: the cloud controller's side of EBS
// is what these tests drive (roles/sc has its own).
type ebsStorage struct {
	mu      sync.Mutex
	zone    string
	vols    map[string]scapi.Volume
	snaps   map[string]scapi.Snapshot
	exports map[string]string // export name: node
	n       int
}

func newEBSStorage(zone string) *ebsStorage {
	return &ebsStorage{zone: zone, vols: map[string]scapi.Volume{}, snaps: map[string]scapi.Snapshot{}, exports: map[string]string{}}
}

func (s *ebsStorage) Zone() string { return s.zone }

func (s *ebsStorage) CreateVolume(ctx context.Context, req scapi.CreateVolumeRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[req.ID]; !ok {
		s.vols[req.ID] = scapi.Volume{ID: req.ID, State: scapi.VolumeAvailable, SizeBytes: req.SizeBytes}
	}
	return nil
}

func (s *ebsStorage) DeleteVolume(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.vols[id].Exports) > 0 {
		return scapi.ErrInUse
	}
	delete(s.vols, id)
	return nil
}

func (s *ebsStorage) ResizeVolume(ctx context.Context, id string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[id]
	if !ok {
		return scapi.ErrNoSuchVolume
	}
	v.SizeBytes = size
	s.vols[id] = v
	return nil
}

func (s *ebsStorage) Volumes(ctx context.Context, ids ...string) ([]scapi.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []scapi.Volume
	for id, v := range s.vols {
		if len(ids) == 0 || slices.Contains(ids, id) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *ebsStorage) Export(ctx context.Context, req scapi.ExportRequest) (scapi.Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[req.VolumeID]
	if !ok {
		return scapi.Target{}, scapi.ErrNoSuchVolume
	}
	s.n++
	name := fmt.Sprintf("%s-%d", req.VolumeID, s.n)
	v.Exports = append(v.Exports, name)
	s.vols[req.VolumeID] = v
	s.exports[name] = req.Node
	return scapi.Target{Host: "192.0.2.10", Port: 10809, Export: name, SizeBytes: v.SizeBytes}, nil
}

func (s *ebsStorage) Unexport(ctx context.Context, volumeID, export string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vols[volumeID]
	v.Exports = slices.DeleteFunc(v.Exports, func(e string) bool { return e == export })
	if _, ok := s.vols[volumeID]; ok {
		s.vols[volumeID] = v
	}
	delete(s.exports, export)
	return nil
}

func (s *ebsStorage) CreateSnapshot(ctx context.Context, req scapi.CreateSnapshotRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[req.VolumeID]
	if !ok {
		return scapi.ErrNoSuchVolume
	}
	s.snaps[req.ID] = scapi.Snapshot{ID: req.ID, VolumeID: req.VolumeID, State: scapi.SnapshotCompleted, Progress: 100, SizeBytes: v.SizeBytes}
	return nil
}

func (s *ebsStorage) CopySnapshot(ctx context.Context, req scapi.CopySnapshotRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.snaps[req.SourceID]
	if !ok {
		return scapi.ErrNoSuchSnapshot
	}
	src.ID = req.ID
	s.snaps[req.ID] = src
	return nil
}

func (s *ebsStorage) DeleteSnapshot(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.snaps, id)
	return nil
}

func (s *ebsStorage) Snapshots(ctx context.Context, ids ...string) ([]scapi.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []scapi.Snapshot
	for id, sn := range s.snaps {
		if len(ids) == 0 || slices.Contains(ids, id) {
			out = append(out, sn)
		}
	}
	return out, nil
}

// liveExports are the exports the storage controller holds, by node.
func (s *ebsStorage) liveExports() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for name, node := range s.exports {
		out[node] = append(out[node], name)
	}
	return out
}

// lastRun is the last request the cluster was asked to run.
func (c *apiCluster) lastRun(t *testing.T) ccapi.InstanceRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.runs) == 0 {
		t.Fatal("the cluster ran nothing")
	}
	return c.runs[len(c.runs)-1]
}

// TestEBSBackedLifecycle: a snapshot registered as an EBS-backed image
// (root /dev/xvda), launched with an extra empty volume; the instance is
// pending until its volumes exist, then runs on the node its volumes are
// exported to, the root one booted; DescribeInstances shows both volumes
// as Terraform reads them; stop withdraws the exports, start exports them
// again; terminate deletes the volume marked DeleteOnTermination and
// leaves the other; the image's snapshot cannot be deleted while the image
// uses it.
func TestEBSBackedLifecycle(t *testing.T) {
	f := newInstAPI(t)
	ctx := context.Background()
	cloud := f.a.cloud.(*clc.Cloud)
	zone := cloud.Zones()[0]
	sc := newEBSStorage(zone)
	cloud.SetStorage(zone, sc)
	emi, err := f.st.ImageByID(ctx, f.emi)
	if err != nil {
		t.Fatal(err)
	}
	snap := ids.New("snap")
	if err := f.st.CreateSnapshot(ctx, store.Snapshot{ID: snap, AccountID: f.alice, Zone: zone, VolumeID: ids.New("vol"), VolumeSizeGiB: 1,
		State: store.SnapshotCompleted, Progress: 100}, nil, 0); err != nil {
		t.Fatal(err)
	}
	sc.snaps[snap] = scapi.Snapshot{ID: snap, State: scapi.SnapshotCompleted, Progress: 100, SizeBytes: 1 << 30}

	reg := queryapi.Params{"Name": "ebs-guest", "RootDeviceName": "/dev/xvda", "KernelId": emi.KernelID, "RamdiskId": emi.RamdiskID,
		"BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.SnapshotId": snap,
		"BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true", "BlockDeviceMapping.1.Ebs.VolumeType": "standard",
		"BlockDeviceMapping.2.DeviceName": "/dev/sdb", "BlockDeviceMapping.2.VirtualName": "ephemeral0"}
	f.fails(t, "RegisterImage", queryapi.Params{"Name": "no-root", "RootDeviceName": "/dev/xvda",
		"BlockDeviceMapping.1.DeviceName": "/dev/sdf", "BlockDeviceMapping.1.Ebs.SnapshotId": snap}, "InvalidBlockDeviceMapping")
	f.fails(t, "RegisterImage", queryapi.Params{"Name": "no-snap", "RootDeviceName": "/dev/xvda",
		"BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.SnapshotId": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound")
	f.fails(t, "RegisterImage", queryapi.Params{"Name": "small", "RootDeviceName": "/dev/xvda", "BlockDeviceMapping.1.DeviceName": "/dev/xvda",
		"BlockDeviceMapping.1.Ebs.SnapshotId": snap, "BlockDeviceMapping.1.Ebs.VolumeSize": "0"}, "InvalidParameterValue")
	img := f.must(t, "RegisterImage", reg)["ImageId"].(string)
	im := obj(t, f.must(t, "DescribeImages", queryapi.Params{"ImageId.1": img}), "Images", 0).(map[string]any)
	if im["RootDeviceType"] != "ebs" || im["RootDeviceName"] != "/dev/xvda" || im["State"] != "available" {
		t.Errorf("EBS image %v", im)
	}
	root := obj(t, im, "BlockDeviceMappings", 0).(map[string]any)
	if root["DeviceName"] != "/dev/xvda" || obj(t, root, "Ebs", "SnapshotId") != snap || obj(t, root, "Ebs", "VolumeSize") != float64(1) ||
		obj(t, root, "Ebs", "DeleteOnTermination") != true || obj(t, root, "Ebs", "VolumeType") != "standard" {
		t.Errorf("root mapping %v", root)
	}
	if obj(t, im, "BlockDeviceMappings", 1, "VirtualName") != "ephemeral0" {
		t.Errorf("ephemeral mapping %v", im["BlockDeviceMappings"])
	}
	if got := f.must(t, "DescribeImages", queryapi.Params{"Filter.1.Name": "block-device-mapping.snapshot-id", "Filter.1.Value.1": snap}); len(got["Images"].([]any)) != 1 {
		t.Errorf("filter by snapshot: %v", got)
	}
	f.fails(t, "DeleteSnapshot", queryapi.Params{"SnapshotId": snap}, "InvalidSnapshot.InUse")

	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": img, "MinCount": "1", "MaxCount": "1",
		"BlockDeviceMapping.1.DeviceName": "/dev/sdf", "BlockDeviceMapping.1.Ebs.VolumeSize": "2", "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "false",
		"TagSpecification.1.ResourceType": "volume", "TagSpecification.1.Tag.1.Key": "app", "TagSpecification.1.Tag.1.Value": "db"})
	id := obj(t, r, "Instances", 0, "InstanceId").(string)
	if obj(t, r, "Instances", 0, "RootDeviceType") != "ebs" || obj(t, r, "Instances", 0, "State", "Name") != "pending" {
		t.Errorf("launched %v", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	var run ccapi.InstanceRequest
	for {
		f.cl.mu.Lock()
		n := len(f.cl.runs)
		f.cl.mu.Unlock()
		if n > 0 {
			run = f.cl.lastRun(t)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the instance never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run.ID != id || run.Node != "n1" || run.Image.ID != "" || run.Kernel == nil || run.Kernel.ID != emi.KernelID || len(run.Volumes) != 2 ||
		!run.Volumes[0].Boot || run.Volumes[0].Device != "/dev/xvda" || run.Volumes[1].Boot || run.Volumes[1].Device != "/dev/sdf" ||
		run.Volumes[1].SizeBytes != 2<<30 || !strings.HasPrefix(run.Volumes[0].Serial, "vol") {
		t.Fatalf("run request %+v", run)
	}
	if ex := sc.liveExports(); len(ex["n1"]) != 2 || len(ex) != 1 {
		t.Errorf("exports %v", ex)
	}
	f.cl.set(id, ncapi.StateRunning)
	inst := f.waitState(t, id, "running")
	bdm := inst["BlockDeviceMappings"].([]any)
	if len(bdm) != 2 || obj(t, bdm, 0, "DeviceName") != inst["RootDeviceName"] || obj(t, bdm, 0, "Ebs", "Status") != "attached" ||
		obj(t, bdm, 0, "Ebs", "DeleteOnTermination") != true || obj(t, bdm, 1, "Ebs", "DeleteOnTermination") != false ||
		obj(t, bdm, 0, "Ebs", "VolumeId") != run.Volumes[0].VolumeID || obj(t, bdm, 0, "Ebs", "AttachTime") == nil {
		t.Errorf("block device mappings %v", bdm)
	}
	rootVol, dataVol := run.Volumes[0].VolumeID, run.Volumes[1].VolumeID
	vols := f.must(t, "DescribeVolumes", queryapi.Params{"Filter.1.Name": "attachment.instance-id", "Filter.1.Value.1": id})
	if len(vols["Volumes"].([]any)) != 2 || obj(t, vols, "Volumes", 0, "State") != "in-use" {
		t.Errorf("volumes of %s: %v", id, vols)
	}
	if got := f.must(t, "DescribeInstances", queryapi.Params{"Filter.1.Name": "block-device-mapping.volume-id", "Filter.1.Value.1": dataVol}); len(got["Reservations"].([]any)) != 1 {
		t.Errorf("filter by volume: %v", got)
	}

	f.must(t, "StopInstances", queryapi.Params{"InstanceId.1": id})
	f.waitState(t, id, "stopped")
	for deadline := time.Now().Add(10 * time.Second); len(sc.liveExports()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a stopped instance's volumes stay exported: %v", sc.liveExports())
		}
	}
	stopped := f.waitState(t, id, "stopped")
	if len(stopped["BlockDeviceMappings"].([]any)) != 2 {
		t.Errorf("a stopped instance keeps its volumes: %v", stopped["BlockDeviceMappings"])
	}
	f.must(t, "StartInstances", queryapi.Params{"InstanceId.1": id})
	again := f.cl.lastRun(t)
	if again.ID != id || again.Node != "n1" || len(again.Volumes) != 2 || again.Volumes[0].VolumeID != rootVol || !again.Volumes[0].Boot ||
		again.Volumes[0].Export == run.Volumes[0].Export {
		t.Errorf("start request %+v", again)
	}
	f.cl.set(id, ncapi.StateRunning)
	f.waitState(t, id, "running")

	f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id})
	f.waitState(t, id, "terminated")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, errRoot := f.call(f.alice, "DescribeVolumes", queryapi.Params{"VolumeId.1": rootVol})
		data, errData := f.call(f.alice, "DescribeVolumes", queryapi.Params{"VolumeId.1": dataVol})
		e, _ := awserr.As(errRoot)
		if e != nil && e.Code == "InvalidVolume.NotFound" && errData == nil && strings.Contains(fmt.Sprint(botoParse(t, "DescribeVolumes", data)), "available") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after terminate: root %v, data %v %v", errRoot, errData, data)
		}
	}
	// Deregistered, the image lets its snapshot go (the snapshot stays).
	f.must(t, "DeregisterImage", queryapi.Params{"ImageId": img})
	f.must(t, "DescribeSnapshots", queryapi.Params{"SnapshotId.1": snap})
}

// waitImage polls DescribeImages until the image is in state.
func (f *instAPI) waitImage(t *testing.T, id, state string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		im := obj(t, f.must(t, "DescribeImages", queryapi.Params{"ImageId.1": id}), "Images", 0).(map[string]any)
		if im["State"] == state {
			return im
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s never became %s: %v", id, state, im)
		}
	}
}

// TestCreateImageFromInstance: CreateImage of a running EBS-backed
// instance snapshots its volumes (NoReboot: at once; else the instance
// stops, is snapshotted and starts again), the image is pending until the
// snapshots complete, then available, and launches; an instance-store
// instance has no image to make.
func TestCreateImageFromInstance(t *testing.T) {
	f := newInstAPI(t)
	img := f.ebsImage(t)
	id := f.runOne(t, img)
	store1 := f.runOne(t, f.emi)
	f.fails(t, "CreateImage", queryapi.Params{"InstanceId": store1, "Name": "nope"}, "UnsupportedOperation")
	f.fails(t, "CreateImage", queryapi.Params{"InstanceId": id}, "MissingParameter")
	f.fails(t, "CreateImage", queryapi.Params{"InstanceId": id, "Name": "x"}, "InvalidAMIName.Malformed")

	r := f.must(t, "CreateImage", queryapi.Params{"InstanceId": id, "Name": "copy", "Description": "of the db", "NoReboot": "true",
		"TagSpecification.1.ResourceType": "image", "TagSpecification.1.Tag.1.Key": "k", "TagSpecification.1.Tag.1.Value": "v"})
	copyID := r["ImageId"].(string)
	f.fails(t, "CreateImage", queryapi.Params{"InstanceId": id, "Name": "copy"}, "InvalidAMIName.Duplicate")
	im := f.waitImage(t, copyID, "available")
	snap := obj(t, im, "BlockDeviceMappings", 0, "Ebs", "SnapshotId").(string)
	if im["RootDeviceType"] != "ebs" || im["RootDeviceName"] != "/dev/xvda" || !strings.HasPrefix(snap, "snap-") || im["Description"] != "of the db" ||
		obj(t, im, "Tags", 0, "Key") != "k" {
		t.Errorf("image made: %v", im)
	}
	if s := f.must(t, "DescribeSnapshots", queryapi.Params{"SnapshotId.1": snap}); obj(t, s, "Snapshots", 0, "State") != "completed" {
		t.Errorf("its snapshot %v", s)
	}
	if cur := f.waitState(t, id, "running"); cur["State"] == nil {
		t.Fatal("no state")
	}
	// Rebooted: stopped, snapshotted, started again.
	r = f.must(t, "CreateImage", queryapi.Params{"InstanceId": id, "Name": "rebooted"})
	f.waitState(t, id, "pending")
	f.cl.set(id, ncapi.StateRunning)
	f.waitState(t, id, "running")
	f.waitImage(t, r["ImageId"].(string), "available")

	launched := f.runOne(t, copyID)
	inst := f.waitState(t, launched, "running")
	if inst["RootDeviceType"] != "ebs" || len(inst["BlockDeviceMappings"].([]any)) != 1 {
		t.Errorf("launched from the image made: %v", inst)
	}
}
