package ec2api

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// ebsImage records an EBS-backed image of alice's (root /dev/xvda from a
// snapshot) with the instance-store image's kernel and ramdisk.
func (f *instAPI) ebsImage(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	emi, err := f.st.ImageByID(ctx, f.emi)
	if err != nil {
		t.Fatal(err)
	}
	id := ids.New("emi")
	if err := f.st.CreateImage(ctx, store.Image{ID: id, AccountID: f.alice, Kind: store.ImageMachine, Name: "ebs", Architecture: "x86_64",
		KernelID: emi.KernelID, RamdiskID: emi.RamdiskID, State: store.ImageAvailable, RootDeviceType: store.RootEBS,
		RootDeviceName: "/dev/xvda", BlockDevices: []store.ImageBlockDevice{{Device: "/dev/xvda", EBS: true,
			SnapshotID: ids.New("snap"), VolumeSize: 1, VolumeType: "standard", DeleteOnTermination: true}}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *instAPI) runOne(t *testing.T, image string) string {
	t.Helper()
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": image, "MinCount": "1", "MaxCount": "1"})
	id := obj(t, r, "Instances", 0, "InstanceId").(string)
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
