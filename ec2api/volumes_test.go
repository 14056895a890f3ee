package ec2api

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/snapshot"
	"github.com/euca-cloud/euca/walrus"
)

// volAPI is the EC2 API over a cloud controller whose zone has a cluster
// (apiCluster) and the real storage controller: volume files in a temp
// dir, snapshots as chunks in an in-process Walrus.
type volAPI struct {
	*instAPI
	zone string
	sc   *sc.SC
}

func newVolAPI(t *testing.T) *volAPI {
	t.Helper()
	f := newInstAPI(t)
	ctx := context.Background()
	cloud := f.a.cloud.(*clc.Cloud)
	zone := cloud.Zones()[0]
	be, err := backend.NewFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	cfg.WalrusBucketsPath = t.TempDir()
	w, err := walrus.New(ctx, walrus.Options{Conf: cfg, Store: f.st, Hostname: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := snapshot.WalrusObjects(ctx, w, f.admin)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := snapshot.New(ctx, snapshot.Options{Store: f.st, Objects: objs, Dir: t.TempDir(), Log: slog.New(slog.DiscardHandler),
		OpenVolume: func(ctx context.Context, id string) (snapshot.Volume, error) { return be.Open(id) }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sc.New(ctx, sc.Options{Zone: zone, Store: f.st, Backend: be, Host: "192.0.2.1", Port: 10809, Snapshots: eng,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { eng.Run(runCtx); done <- struct{}{} }()
	go func() { _ = s.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; s.Close() })
	cloud.SetStorage(zone, s)
	return &volAPI{instAPI: f, zone: zone, sc: s}
}

// waitFor polls an action as alice until ok accepts botocore's parse of
// its answer (the cloud controller's loop runs in the background).
func (f *volAPI) waitFor(t *testing.T, action string, p queryapi.Params, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := f.must(t, action, p)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v never became as wanted: %v", action, p, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func str(v any) string { s, _ := v.(string); return s }

func volumeState(id, want string) (queryapi.Params, func(map[string]any) bool) {
	return queryapi.Params{"VolumeId.1": id}, func(r map[string]any) bool {
		vols, _ := r["Volumes"].([]any)
		return len(vols) == 1 && str(vols[0].(map[string]any)["State"]) == want
	}
}

// run launches one of alice's instances and waits until it runs.
func (f *volAPI) run(t *testing.T) string {
	t.Helper()
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": f.emi, "MinCount": "1", "MaxCount": "1"})
	id := str(obj(t, r, "Instances", 0, "InstanceId"))
	f.cl.set(id, ncapi.StateRunning)
	f.waitFor(t, "DescribeInstances", queryapi.Params{"InstanceId.1": id}, func(r map[string]any) bool {
		return str(obj(t, r, "Reservations", 0, "Instances", 0, "State", "Name")) == "running"
	})
	return id
}

// TestVolumeActions walks the volume and snapshot actions as Terraform's
// aws_ebs_volume and aws_volume_attachment and the AWS CLI call them,
// against the real storage controller: every answer checked against
// botocore's model and parsed by botocore.
func TestVolumeActions(t *testing.T) {
	f := newVolAPI(t)

	// aws_ebs_volume: CreateVolume, wait for available.
	r := f.must(t, "CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "ClientToken": "tf-1",
		"TagSpecification.1.ResourceType": "volume", "TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": "data"})
	vol := str(r["VolumeId"])
	if !volumeIDPattern.MatchString(vol) || str(r["State"]) != "creating" || r["Size"] != float64(1) || str(r["VolumeType"]) != "gp2" ||
		r["Iops"] != float64(100) || r["Encrypted"] != false || str(obj(t, r, "Tags", 0, "Value")) != "data" || str(r["AvailabilityZone"]) != f.zone {
		t.Fatalf("CreateVolume: %v", r)
	}
	if again := f.must(t, "CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "ClientToken": "tf-1"}); str(again["VolumeId"]) != vol {
		t.Fatalf("client token: %v", again)
	}
	p, ok := volumeState(vol, "available")
	r = f.waitFor(t, "DescribeVolumes", p, ok)
	if v := obj(t, r, "Volumes", 0).(map[string]any); v["CreateTime"] == nil || len(v["Attachments"].([]any)) != 0 {
		t.Fatalf("available: %v", v)
	}

	// aws_volume_attachment: find the attachment first (none), attach,
	// wait for attached.
	inst := f.run(t)
	find := queryapi.Params{"VolumeId.1": vol, "Filter.1.Name": "attachment.device", "Filter.1.Value.1": "/dev/sdf",
		"Filter.2.Name": "attachment.instance-id", "Filter.2.Value.1": inst}
	if r := f.must(t, "DescribeVolumes", find); len(r["Volumes"].([]any)) != 0 {
		t.Fatalf("attachment before attach: %v", r)
	}
	r = f.must(t, "AttachVolume", queryapi.Params{"Device": "/dev/sdf", "InstanceId": inst, "VolumeId": vol})
	if str(r["State"]) != "attaching" || str(r["Device"]) != "/dev/sdf" || str(r["InstanceId"]) != inst || r["AttachTime"] == nil {
		t.Fatalf("AttachVolume: %v", r)
	}
	r = f.waitFor(t, "DescribeVolumes", find, func(r map[string]any) bool {
		vols := r["Volumes"].([]any)
		return len(vols) == 1 && str(obj(t, vols[0], "Attachments", 0, "State")) == "attached"
	})
	if v := obj(t, r, "Volumes", 0).(map[string]any); str(v["State"]) != "in-use" || obj(t, v, "Attachments", 0, "DeleteOnTermination") != false {
		t.Fatalf("attached: %v", v)
	}
	f.fails(t, "DeleteVolume", queryapi.Params{"VolumeId": vol}, "VolumeInUse")
	f.fails(t, "AttachVolume", queryapi.Params{"Device": "/dev/sdg", "InstanceId": inst, "VolumeId": vol}, "VolumeInUse")
	f.fails(t, "DetachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": inst, "Device": "/dev/sdh"}, "InvalidAttachment.NotFound")

	r = f.must(t, "DescribeVolumeStatus", queryapi.Params{"VolumeId.1": vol})
	if str(obj(t, r, "VolumeStatuses", 0, "VolumeStatus", "Status")) != "ok" || str(obj(t, r, "VolumeStatuses", 0, "AttachmentStatuses", 0, "InstanceId")) != inst {
		t.Fatalf("DescribeVolumeStatus: %v", r)
	}
	r = f.must(t, "DescribeVolumeAttribute", queryapi.Params{"VolumeId": vol, "Attribute": "autoEnableIO"})
	if obj(t, r, "AutoEnableIO", "Value") != false || str(r["VolumeId"]) != vol {
		t.Fatalf("DescribeVolumeAttribute: %v", r)
	}

	// Snapshot while attached, then detach (Terraform's destroy).
	r = f.must(t, "CreateSnapshot", queryapi.Params{"VolumeId": vol, "Description": "first",
		"TagSpecification.1.ResourceType": "snapshot", "TagSpecification.1.Tag.1.Key": "k", "TagSpecification.1.Tag.1.Value": "v"})
	snap := str(r["SnapshotId"])
	if str(r["State"]) != "pending" || str(r["VolumeId"]) != vol || r["VolumeSize"] != float64(1) || str(r["OwnerId"]) != f.alice {
		t.Fatalf("CreateSnapshot: %v", r)
	}
	r = f.waitFor(t, "DescribeSnapshots", queryapi.Params{"SnapshotId.1": snap}, func(r map[string]any) bool {
		return str(obj(t, r, "Snapshots", 0, "State")) == "completed"
	})
	if s := obj(t, r, "Snapshots", 0).(map[string]any); str(s["Progress"]) != "100%" || str(s["Description"]) != "first" || str(obj(t, s, "Tags", 0, "Key")) != "k" {
		t.Fatalf("completed snapshot: %v", s)
	}
	r = f.must(t, "DetachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": inst, "Device": "/dev/sdf"})
	if str(r["State"]) != "detaching" {
		t.Fatalf("DetachVolume: %v", r)
	}
	p, ok = volumeState(vol, "available")
	f.waitFor(t, "DescribeVolumes", p, ok)
	_, err := f.call(f.alice, "DetachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": inst, "Device": "/dev/sdf"})
	if err == nil || !strings.Contains(err.Error(), "IncorrectState") || !strings.Contains(err.Error(), "available") {
		t.Fatalf("detach of a detached volume: %v (Terraform wants IncorrectState ... available)", err)
	}

	// Snapshot attributes, both forms.
	f.must(t, "ModifySnapshotAttribute", queryapi.Params{"SnapshotId": snap, "Attribute": "createVolumePermission",
		"CreateVolumePermission.Add.1.Group": "all"})
	f.must(t, "ModifySnapshotAttribute", queryapi.Params{"SnapshotId": snap, "OperationType": "add", "UserId.1": f.admin})
	r = f.must(t, "DescribeSnapshotAttribute", queryapi.Params{"SnapshotId": snap, "Attribute": "createVolumePermission"})
	perms := obj(t, r, "CreateVolumePermissions").([]any)
	if len(perms) != 2 || str(obj(t, perms[0], "Group")) != "all" || str(obj(t, perms[1], "UserId")) != f.admin {
		t.Fatalf("permissions: %v", r)
	}
	if r := f.must(t, "DescribeSnapshots", queryapi.Params{"RestorableBy.1": "all"}); len(r["Snapshots"].([]any)) != 1 {
		t.Fatalf("restorable by all: %v", r)
	}
	f.must(t, "ResetSnapshotAttribute", queryapi.Params{"SnapshotId": snap, "Attribute": "createVolumePermission"})
	r = f.must(t, "DescribeSnapshotAttribute", queryapi.Params{"SnapshotId": snap, "Attribute": "createVolumePermission"})
	if len(obj(t, r, "CreateVolumePermissions").([]any)) != 0 {
		t.Fatalf("after reset: %v", r)
	}
	if r := f.must(t, "DescribeSnapshots", queryapi.Params{"Owner.1": "self", "Filter.1.Name": "volume-id", "Filter.1.Value.1": vol}); len(r["Snapshots"].([]any)) != 1 {
		t.Fatalf("own snapshots of the volume: %v", r)
	}
	if r := f.must(t, "DescribeSnapshots", queryapi.Params{"Owner.1": "amazon"}); len(r["Snapshots"].([]any)) != 0 {
		t.Fatalf("amazon's: %v", r)
	}

	// A volume of the snapshot, a copy, a grown volume.
	r = f.must(t, "CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "SnapshotId": snap, "VolumeType": "gp3"})
	restored := str(r["VolumeId"])
	if r["Size"] != float64(1) || str(r["SnapshotId"]) != snap || r["Iops"] != float64(3000) || r["Throughput"] != float64(125) {
		t.Fatalf("volume of snapshot: %v", r)
	}
	p, ok = volumeState(restored, "available")
	f.waitFor(t, "DescribeVolumes", p, ok)
	r = f.must(t, "CopySnapshot", queryapi.Params{"SourceRegion": f.a.cloud.Region(), "SourceSnapshotId": snap, "Description": "copy"})
	cp := str(r["SnapshotId"])
	f.waitFor(t, "DescribeSnapshots", queryapi.Params{"SnapshotId.1": cp}, func(r map[string]any) bool {
		return str(obj(t, r, "Snapshots", 0, "State")) == "completed"
	})
	r = f.must(t, "ModifyVolume", queryapi.Params{"VolumeId": vol, "Size": "2"})
	if m := obj(t, r, "VolumeModification").(map[string]any); m["TargetSize"] != float64(2) || m["OriginalSize"] != float64(1) ||
		!slices.Contains([]string{"modifying", "optimizing", "completed"}, str(m["ModificationState"])) {
		t.Fatalf("ModifyVolume: %v", r)
	}
	r = f.waitFor(t, "DescribeVolumesModifications", queryapi.Params{"VolumeId.1": vol}, func(r map[string]any) bool {
		return str(obj(t, r, "VolumesModifications", 0, "ModificationState")) == "completed"
	})
	p, ok = volumeState(vol, "available")
	if r := f.waitFor(t, "DescribeVolumes", p, ok); obj(t, r, "Volumes", 0, "Size") != float64(2) {
		t.Fatalf("grown: %v", r)
	}
	f.fails(t, "ModifyVolume", queryapi.Params{"VolumeId": vol, "Size": "1"}, "InvalidParameterValue")

	// Deletes: the waiters' VolumeDeleted accepts InvalidVolume.NotFound.
	f.fails(t, "DeleteSnapshot", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound")
	f.must(t, "DeleteSnapshot", queryapi.Params{"SnapshotId": cp})
	f.must(t, "DeleteSnapshot", queryapi.Params{"SnapshotId": snap})
	f.fails(t, "DescribeSnapshots", queryapi.Params{"SnapshotId.1": snap}, "InvalidSnapshot.NotFound")
	for _, id := range []string{vol, restored} {
		f.must(t, "DeleteVolume", queryapi.Params{"VolumeId": id})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := f.call(f.alice, "DescribeVolumes", queryapi.Params{"VolumeId.1": vol, "VolumeId.2": restored})
		if err != nil && strings.Contains(err.Error(), "InvalidVolume.NotFound") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("volumes not deleted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The storage controller removes the files after it answered.
	for {
		got, err := f.sc.Volumes(context.Background())
		if err == nil && len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the storage controller still holds %v (%v)", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVolumeRefusals: the parameter errors EC2 answers, before anything is
// looked up.
func TestVolumeRefusals(t *testing.T) {
	f := newVolAPI(t)
	vol := "vol-0123456789abcdef0"
	for _, c := range []struct {
		action string
		p      queryapi.Params
		code   string
	}{
		{"CreateVolume", queryapi.Params{"Size": "1"}, "MissingParameter"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone}, "MissingParameter"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": "nowhere", "Size": "1"}, "InvalidParameterValue"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "0"}, "InvalidParameterValue"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "x"}, "InvalidParameterValue"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "VolumeType": "ssd"}, "InvalidParameterValue"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "Iops": "3000"}, "InvalidParameterCombination"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "10", "VolumeType": "io1"}, "MissingParameter"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "Throughput": "200"}, "InvalidParameterCombination"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "Encrypted": "true"}, "InvalidParameterValue"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "2000", "VolumeType": "standard"}, "InvalidParameterValue"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "SnapshotId": "snap-x"}, "InvalidSnapshotID.Malformed"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "SnapshotId": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound"},
		{"CreateVolume", queryapi.Params{"AvailabilityZone": f.zone, "Size": "1", "TagSpecification.1.ResourceType": "instance",
			"TagSpecification.1.Tag.1.Key": "a"}, "InvalidParameterValue"},
		{"DeleteVolume", queryapi.Params{}, "MissingParameter"},
		{"DeleteVolume", queryapi.Params{"VolumeId": "vol-zz"}, "InvalidVolumeID.Malformed"},
		{"DeleteVolume", queryapi.Params{"VolumeId": vol}, "InvalidVolume.NotFound"},
		{"DescribeVolumes", queryapi.Params{"VolumeId.1": vol}, "InvalidVolume.NotFound"},
		{"DescribeVolumes", queryapi.Params{"Filter.1.Name": "nope", "Filter.1.Value.1": "x"}, "InvalidParameterValue"},
		{"DescribeVolumes", queryapi.Params{"MaxResults": "2"}, "InvalidParameterValue"},
		{"DescribeVolumeStatus", queryapi.Params{"VolumeId.1": vol}, "InvalidVolume.NotFound"},
		{"DescribeVolumeAttribute", queryapi.Params{"VolumeId": vol, "Attribute": "size"}, "InvalidParameterValue"},
		{"DescribeVolumeAttribute", queryapi.Params{"VolumeId": vol, "Attribute": "autoEnableIO"}, "InvalidVolume.NotFound"},
		{"AttachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": "i-0123456789abcdef0"}, "MissingParameter"},
		{"AttachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": "i-0123456789abcdef0", "Device": "/dev/vdb"}, "InvalidParameterValue"},
		{"AttachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": "i-x", "Device": "/dev/sdf"}, "InvalidInstanceID.Malformed"},
		{"AttachVolume", queryapi.Params{"VolumeId": vol, "InstanceId": "i-0123456789abcdef0", "Device": "/dev/sdf"}, "InvalidVolume.NotFound"},
		{"DetachVolume", queryapi.Params{"VolumeId": vol}, "InvalidVolume.NotFound"},
		{"DetachVolume", queryapi.Params{"VolumeId": vol, "Force": "maybe"}, "InvalidParameterValue"},
		{"ModifyVolume", queryapi.Params{"VolumeId": vol, "Size": "2"}, "InvalidVolume.NotFound"},
		{"ModifyVolume", queryapi.Params{"VolumeId": vol, "MultiAttachEnabled": "true"}, "InvalidParameterCombination"},
		{"DescribeVolumesModifications", queryapi.Params{"VolumeId.1": vol}, "InvalidVolume.NotFound"},
		{"CreateSnapshot", queryapi.Params{}, "MissingParameter"},
		{"CreateSnapshot", queryapi.Params{"VolumeId": vol}, "InvalidVolume.NotFound"},
		{"CreateSnapshot", queryapi.Params{"VolumeId": vol, "Description": strings.Repeat("d", 256)}, "InvalidParameterValue"},
		{"CopySnapshot", queryapi.Params{"SourceSnapshotId": "snap-0123456789abcdef0"}, "MissingParameter"},
		{"CopySnapshot", queryapi.Params{"SourceRegion": "mars-1", "SourceSnapshotId": "snap-0123456789abcdef0"}, "InvalidParameterValue"},
		{"CopySnapshot", queryapi.Params{"SourceRegion": f.a.cloud.Region(), "SourceSnapshotId": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound"},
		{"DeleteSnapshot", queryapi.Params{"SnapshotId": "vol-0123456789abcdef0"}, "InvalidSnapshotID.Malformed"},
		{"DescribeSnapshots", queryapi.Params{"SnapshotId.1": "snap-0123456789abcdef0"}, "InvalidSnapshot.NotFound"},
		{"DescribeSnapshots", queryapi.Params{"Owner.1": "somebody"}, "InvalidParameterValue"},
		{"DescribeSnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "Attribute": "x"}, "InvalidParameterValue"},
		{"DescribeSnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "Attribute": "productCodes"}, "InvalidSnapshot.NotFound"},
		{"ModifySnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0"}, "MissingParameter"},
		{"ModifySnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "OperationType": "add"}, "MissingParameter"},
		{"ModifySnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "OperationType": "grant", "UserId.1": "111122223333"}, "InvalidParameterValue"},
		{"ModifySnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "CreateVolumePermission.Add.1.Group": "friends"}, "InvalidParameterValue"},
		{"ModifySnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "CreateVolumePermission.Add.1.UserId": "bob"}, "InvalidUserID.Malformed"},
		{"ModifySnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "CreateVolumePermission.Add.1.Group": "all"}, "InvalidSnapshot.NotFound"},
		{"ResetSnapshotAttribute", queryapi.Params{"SnapshotId": "snap-0123456789abcdef0", "Attribute": "productCodes"}, "InvalidParameterValue"},
		{"CreateTags", queryapi.Params{"ResourceId.1": vol, "Tag.1.Key": "k"}, "InvalidVolume.NotFound"},
	} {
		f.fails(t, c.action, c.p, c.code)
	}
}

// TestVolumeFilterNamesMatchModel: the filters each Describe takes are
// those its documentation in botocore's model lists.
func TestVolumeFilterNamesMatchModel(t *testing.T) {
	want := modelFilterNames(t, "DescribeVolumes", "DescribeVolumeStatus", "DescribeSnapshots", "DescribeVolumesModifications")
	names := func(m map[string]bool) []string {
		var out []string
		for n := range m {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	have := map[string]map[string]bool{"DescribeVolumes": {}, "DescribeVolumeStatus": {}, "DescribeSnapshots": {}, "DescribeVolumesModifications": {}}
	for n := range volumeFilters {
		have["DescribeVolumes"][n] = true
	}
	for n := range volumeStatusFilters {
		have["DescribeVolumeStatus"][n] = true
	}
	for n := range snapshotFilters {
		have["DescribeSnapshots"][n] = true
	}
	for n := range modificationFilters {
		have["DescribeVolumesModifications"][n] = true
	}
	for op, list := range want {
		for _, n := range list {
			if !have[op][n] {
				t.Errorf("%s: filter %s of the model is missing", op, n)
			}
			delete(have[op], n)
		}
		if len(have[op]) > 0 {
			t.Errorf("%s: filters the model does not document: %v", op, names(have[op]))
		}
	}
}
