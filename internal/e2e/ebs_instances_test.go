package e2e

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/euca-cloud/euca/internal/diskcmd"
	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/roles/clc"
)

// TestEBSBackedInstance: the test guest's root disk, copied into a volume
// and snapshotted, is registered as an EBS-backed image (root /dev/sda1
// from the snapshot, the guest's kernel and ramdisk). An instance of it,
// launched with an extra 1 GiB volume on /dev/sdf, boots from its root
// volume over NBD, writes a marker on /dev/sdf from inside the guest, is
// stopped (its node let go) and started again, and reads the marker back;
// CreateImage of it makes an image from which a second instance boots and
// finds the marker on its own /dev/sdf. One host (every role, a libvirtd
// of its own in the host's namespace).
func TestEBSBackedInstance(t *testing.T) {
	t.Parallel() // its host is a network namespace of its own
	needGuestLAN(t)
	l := newLANNamed(t, "ebf", "10.242.1")
	fe := l.host("fe", `HYPERVISOR="qemu"`, shortInstancePath(t))
	g := startGuestLAN(t, fe)
	aws := g.aws
	awsErr, _ := lanAWS(t, fe, g.env, func() string { return g.front.log.String() })
	str := func(args ...string) string {
		t.Helper()
		var s string
		jsonField(t, aws(args...), &s)
		return s
	}
	wait := func(args ...string) {
		t.Helper()
		aws(append([]string{"ec2", "wait"}, args...)...)
	}

	// The root volume: the test guest's root.img copied into the storage
	// controller's file of a new volume, as an operator copies an image
	// (the volume is not attached: nothing else writes it).
	zone := str("ec2", "describe-availability-zones", "--query", "AvailabilityZones[0].ZoneName")
	src := str("ec2", "create-volume", "--availability-zone", zone, "--size", "1", "--query", "VolumeId")
	wait("volume-available", "--volume-ids", src)
	copyInto(t, volumeFile(t, fe.Dir, src), filepath.Join(guestDir(t), "root.img"))
	snap := str("ec2", "create-snapshot", "--volume-id", src, "--description", "test guest root", "--query", "SnapshotId")
	wait("snapshot-completed", "--snapshot-ids", snap)
	var boot struct{ KernelId, RamdiskId string }
	jsonField(t, aws("ec2", "describe-images", "--image-ids", g.emi, "--query", "Images[0]"), &boot)
	img := str("ec2", "register-image", "--name", "ebs-guest", "--architecture", "x86_64", "--root-device-name", "/dev/sda1",
		"--kernel-id", boot.KernelId, "--ramdisk-id", boot.RamdiskId,
		"--block-device-mappings", `[{"DeviceName":"/dev/sda1","Ebs":{"SnapshotId":"`+snap+`","DeleteOnTermination":true}}]`,
		"--query", "ImageId")
	if got := str("ec2", "describe-images", "--image-ids", img, "--query", "Images[0].RootDeviceType"); got != "ebs" {
		t.Fatalf("image %s root device type %q", img, got)
	}
	if _, err := awsErr("ec2", "delete-snapshot", "--snapshot-id", snap); err == nil || !strings.Contains(err.Error(), "InvalidSnapshot.InUse") {
		t.Errorf("delete-snapshot of the image's snapshot: %v", err)
	}

	group := g.group("ebsinst")
	first := serveCommands(t, fe)
	id := str("ec2", "run-instances", "--image-id", img, "--instance-type", "m1.small", "--security-group-ids", group,
		"--user-data", first.UserData()+"\n",
		"--block-device-mappings", `[{"DeviceName":"/dev/sdf","Ebs":{"VolumeSize":1,"DeleteOnTermination":true}}]`,
		"--query", "Instances[0].InstanceId")
	wait("instance-running", "--instance-ids", id)
	g.waitFor(id, 1, "EUCA-READY")
	before := describeEBS(t, aws, id)
	if before.RootDeviceType != "ebs" || before.RootDeviceName != "/dev/sda1" || len(before.BlockDeviceMappings) != 2 ||
		before.BlockDeviceMappings[0].DeviceName != "/dev/sda1" {
		t.Fatalf("EBS-backed instance %+v", before)
	}
	data := before.volume("/dev/sdf")
	const mib = 4
	want := diskcmd.Sum("marker-"+id, mib)
	if w := guestDisk(t, g, id, first, first.Write(clc.VolumeSerial(data), "marker-"+id, mib)); w.SHA256 != want {
		t.Fatalf("wrote %+v, want sha256 %s", w, want)
	}

	// Stopped: the node lets it go; its volumes, address and groups stay.
	aws("ec2", "stop-instances", "--instance-ids", id)
	wait("instance-stopped", "--instance-ids", id)
	stopped := describeEBS(t, aws, id)
	if stopped.PrivateIpAddress != before.PrivateIpAddress || stopped.volume("/dev/sdf") != data ||
		stopped.volume("/dev/sda1") != before.volume("/dev/sda1") || len(stopped.SecurityGroups) != 1 {
		t.Errorf("stopped %+v, was %+v", stopped, before)
	}
	// The guest runs every command of its URL again at each boot: the
	// second boot polls another server, which only reads (its user data
	// changed while stopped, as EC2 allows).
	second := serveCommands(t, fe)
	aws("ec2", "modify-instance-attribute", "--instance-id", id, "--attribute", "userData", "--value",
		base64.StdEncoding.EncodeToString([]byte(second.UserData()+"\n")))
	aws("ec2", "start-instances", "--instance-ids", id)
	wait("instance-running", "--instance-ids", id)
	if r := guestDisk(t, g, id, second, second.Read(clc.VolumeSerial(data), mib)); r.SHA256 != want {
		t.Errorf("after stop and start read %+v, want sha256 %s", r, want)
	}
	if again := describeEBS(t, aws, id); again.PrivateIpAddress != before.PrivateIpAddress {
		t.Errorf("started with address %s, had %s", again.PrivateIpAddress, before.PrivateIpAddress)
	}

	// CreateImage: snapshots of both volumes; an instance of the image
	// finds the marker on its own /dev/sdf.
	made := str("ec2", "create-image", "--instance-id", id, "--name", "ebs-guest-copy", "--no-reboot", "--query", "ImageId")
	wait("image-available", "--image-ids", made)
	third := serveCommands(t, fe)
	copyID := str("ec2", "run-instances", "--image-id", made, "--instance-type", "m1.small", "--security-group-ids", group,
		"--user-data", third.UserData()+"\n", "--query", "Instances[0].InstanceId")
	wait("instance-running", "--instance-ids", copyID)
	copyData := describeEBS(t, aws, copyID).volume("/dev/sdf")
	if copyData == "" || copyData == data {
		t.Fatalf("instance of the image made has /dev/sdf %q", copyData)
	}
	if r := guestDisk(t, g, copyID, third, third.Read(clc.VolumeSerial(copyData), mib)); r.SHA256 != want {
		t.Errorf("the image's instance read %+v, want sha256 %s", r, want)
	}

	g.terminate(id, copyID)
	// DeleteOnTermination: their volumes go.
	vols := []string{data, copyData, before.volume("/dev/sda1")}
	wait(append([]string{"volume-deleted", "--volume-ids"}, vols...)...)
	aws("ec2", "deregister-image", "--image-id", img)
	aws("ec2", "delete-snapshot", "--snapshot-id", snap)
}

// ebsInstance is what DescribeInstances says of an EBS-backed instance.
type ebsInstance struct {
	RootDeviceType, RootDeviceName, PrivateIpAddress string
	SecurityGroups                                   []struct{ GroupId string }
	BlockDeviceMappings                              []struct {
		DeviceName string
		Ebs        struct {
			VolumeId, Status    string
			DeleteOnTermination bool
		}
	}
}

// volume is the id of the volume on device ("" when none).
func (in ebsInstance) volume(device string) string {
	for _, b := range in.BlockDeviceMappings {
		if b.DeviceName == device {
			return b.Ebs.VolumeId
		}
	}
	return ""
}

func describeEBS(t *testing.T, aws func(...string) string, id string) ebsInstance {
	t.Helper()
	var in ebsInstance
	if err := json.Unmarshal([]byte(aws("ec2", "describe-instances", "--instance-ids", id, "--query", "Reservations[0].Instances[0]")), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

// serveCommands starts a disk-command server on the host's LAN address,
// in its namespace (its guests reach it through their router).
func serveCommands(t *testing.T, host *lanHost) *diskcmd.Server {
	t.Helper()
	ns, err := netns.GetFromName(host.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var s *diskcmd.Server
	nstest.MustDo(t, ns, func() (err error) { s, err = diskcmd.Serve(host.IP + ":0"); return err })
	t.Cleanup(func() { s.Close() })
	return s
}

// guestDisk waits for the outcome of a disk command on the guest's console.
func guestDisk(t *testing.T, g *guestLAN, id string, s *diskcmd.Server, seq int) diskcmd.Result {
	t.Helper()
	var r diskcmd.Result
	eventually(t, fmt.Sprintf("%s runs disk command %d", id, seq), 8*time.Minute, func() error {
		var ok bool
		if r, ok = diskcmd.Find([]byte(strings.ReplaceAll(g.console(id), "\r\n", "\n")), seq); !ok {
			return errors.New("not yet")
		}
		return nil
	})
	if r.Error != "" {
		t.Fatalf("%s: disk command %d: %+v", id, seq, r)
	}
	return r
}

// volumeFile is the storage controller's file of a volume, under the
// host's directory.
func volumeFile(t *testing.T, dir, volumeID string) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == volumeID+".raw" {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil || found == "" {
		t.Fatalf("no file of %s under %s: %v", volumeID, dir, err)
	}
	return found
}

// copyInto writes src over the start of dst, and syncs it.
func copyInto(t *testing.T, dst, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTerraformEBSInstanceSequence replays with boto3 what Terraform's AWS
// provider 5.100 calls for an aws_instance with a root_block_device (size
// and type) and volume_tags, from the provider's source
// (internal/service/ec2/ec2_instance.go): findRootDeviceName's
// DescribeImages, RunInstances with the root mapping, the wait for
// running, the read (DescribeInstances, the root found by
// blockDeviceIsRoot, DescribeVolumes of the mapped volumes, the instance
// attributes, the volume tags by attachment.instance-id), the root grown
// in place (ModifyVolume, DescribeVolumesModifications), and destroy. The
// instances run on the sim driver (nothing boots) with the real storage
// controller.
func TestTerraformEBSInstanceSequence(t *testing.T) {
	t.Parallel() // its host is a network namespace of its own
	needLAN(t)
	Need(t, "aws", "python3", "unzip", "bash")
	l := newLANNamed(t, "ebf", "10.242.2")
	fe := l.host("fe", shortInstancePath(t))
	front := fe.start("--roles=all", "--driver", "sim")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	if out, err := fe.run(env, "python3", "-c", terraformEBSInstanceScript); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("terraform sequence: %v %s\n--- front-end log:\n%s", err, out, tail(front.log.String(), 40))
	}
}

const terraformEBSInstanceScript = `
import os, time, boto3
from botocore.exceptions import ClientError
ec2 = boto3.client('ec2', endpoint_url=os.environ['EC2_URL'])
zone = ec2.describe_availability_zones()['AvailabilityZones'][0]['ZoneName']
def wait(f, get, targets, pending):
    for _ in range(2400):
        try:
            st = get(f())
        except ClientError as e:
            st = e.response['Error']['Code']
        if st in targets:
            return st
        assert st in pending, (st, targets)
        time.sleep(0.25)
    raise Exception('timeout waiting for %s' % (targets,))
def code(f, **kw):
    try:
        f(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    return 'no error'
state = lambda iid: lambda: ec2.describe_instances(InstanceIds=[iid])
name = lambda r: r['Reservations'][0]['Instances'][0]['State']['Name']

# An EBS-backed image: the snapshot of a 1 GiB volume (nothing boots).
src = ec2.create_volume(AvailabilityZone=zone, Size=1)['VolumeId']
wait(lambda: ec2.describe_volumes(VolumeIds=[src]), lambda r: r['Volumes'][0]['State'], ('available',), ('creating',))
snap = ec2.create_snapshot(VolumeId=src)['SnapshotId']
wait(lambda: ec2.describe_snapshots(SnapshotIds=[snap]), lambda r: r['Snapshots'][0]['State'], ('completed',), ('pending',))
ami = ec2.register_image(Name='tf-ebs', Architecture='x86_64', RootDeviceName='/dev/xvda', VirtualizationType='paravirtual',
    BlockDeviceMappings=[{'DeviceName': '/dev/xvda', 'Ebs': {'SnapshotId': snap, 'DeleteOnTermination': True, 'VolumeType': 'gp2'}}])['ImageId']

# ---- terraform apply
# findRootDeviceName: an ebs image's RootDeviceName, which its mappings hold.
im = ec2.describe_images(ImageIds=[ami])['Images'][0]
assert im['RootDeviceType'] == 'ebs' and im['State'] == 'available', im
root = im['RootDeviceName']
assert [b for b in im['BlockDeviceMappings'] if b['DeviceName'] == root][0]['Ebs']['SnapshotId'] == snap, im
r = ec2.run_instances(ImageId=ami, InstanceType='m1.small', MinCount=1, MaxCount=1,
    ClientToken='terraform-20261207203000000000000001', EbsOptimized=False, Monitoring={'Enabled': False},
    BlockDeviceMappings=[{'DeviceName': root, 'Ebs': {'DeleteOnTermination': True, 'VolumeSize': 2, 'VolumeType': 'gp2'}}],
    CreditSpecification={'CpuCredits': 'standard'}, HibernationOptions={'Configured': False},
    MetadataOptions={'HttpEndpoint': 'enabled', 'HttpTokens': 'optional', 'HttpPutResponseHopLimit': 1},
    TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'Name', 'Value': 'tf-web'}]},
                       {'ResourceType': 'volume', 'Tags': [{'Key': 'Name', 'Value': 'tf-web-root'}]}])
iid = r['Instances'][0]['InstanceId']
assert r['Instances'][0]['RootDeviceType'] == 'ebs', r
wait(state(iid), name, ('running',), ('pending',))

# Read, as after every apply and refresh.
inst = ec2.describe_instances(InstanceIds=[iid])['Reservations'][0]['Instances'][0]
assert inst['RootDeviceType'] == 'ebs' and inst['RootDeviceName'] == root, inst
roots = [b for b in inst['BlockDeviceMappings'] if b['DeviceName'] == inst['RootDeviceName']]  # blockDeviceIsRoot
assert len(roots) == 1 and roots[0]['Ebs']['Status'] == 'attached' and roots[0]['Ebs']['DeleteOnTermination'], inst
vid = roots[0]['Ebs']['VolumeId']
vols = ec2.describe_volumes(VolumeIds=[b['Ebs']['VolumeId'] for b in inst['BlockDeviceMappings']])['Volumes']
v = vols[0]
assert v['Size'] == 2 and v['VolumeType'] == 'gp2' and v['State'] == 'in-use' and v['SnapshotId'] == snap, v
assert v['Attachments'][0]['InstanceId'] == iid and v['Attachments'][0]['Device'] == root and v['Attachments'][0]['DeleteOnTermination'], v
assert {'Key': 'Name', 'Value': 'tf-web-root'} in v.get('Tags', []), v
for a in ('disableApiTermination', 'disableApiStop', 'instanceInitiatedShutdownBehavior', 'userData'):
    ec2.describe_instance_attribute(InstanceId=iid, Attribute=a)
assert ec2.describe_instance_attribute(InstanceId=iid, Attribute='rootDeviceName')['RootDeviceName']['Value'] == root
ec2.describe_instance_credit_specifications(InstanceIds=[iid])
# volume_tags: the instance's volumes by filter, their tags.
tagged = ec2.describe_volumes(Filters=[{'Name': 'attachment.instance-id', 'Values': [iid]}])['Volumes']
assert [x['VolumeId'] for x in tagged] == [vid], tagged
ec2.describe_tags(Filters=[{'Name': 'resource-id', 'Values': [vid]}])

# ---- terraform apply: root_block_device.volume_size 2 -> 3, in place.
ec2.modify_volume(VolumeId=vid, Size=3)
wait(lambda: ec2.describe_volumes_modifications(VolumeIds=[vid]), lambda r: r['VolumesModifications'][0]['ModificationState'],
    ('optimizing', 'completed'), ('modifying',))
assert ec2.describe_volumes(VolumeIds=[vid])['Volumes'][0]['Size'] == 3

# Stopped and started (what a type change does), the root volume stays.
assert code(ec2.stop_instances, InstanceIds=[iid]) == 'no error'
wait(state(iid), name, ('stopped',), ('stopping',))
ec2.modify_instance_attribute(InstanceId=iid, InstanceType={'Value': 'c1.medium'})
ec2.start_instances(InstanceIds=[iid])
wait(state(iid), name, ('running',), ('pending',))
again = ec2.describe_instances(InstanceIds=[iid])['Reservations'][0]['Instances'][0]
assert again['InstanceType'] == 'c1.medium' and [b['Ebs']['VolumeId'] for b in again['BlockDeviceMappings']] == [vid], again

# ---- terraform destroy
ec2.terminate_instances(InstanceIds=[iid])
wait(state(iid), name, ('terminated',), ('shutting-down', 'running'))
wait(lambda: ec2.describe_volumes(VolumeIds=[vid]), lambda r: r['Volumes'][0]['State'], ('InvalidVolume.NotFound',), ('in-use', 'available', 'deleting'))
assert code(ec2.delete_snapshot, SnapshotId=snap) == 'InvalidSnapshot.InUse'
ec2.deregister_image(ImageId=ami)
ec2.delete_snapshot(SnapshotId=snap)
ec2.delete_volume(VolumeId=src)
print('ok')
`

// shortInstancePath is an INSTANCE_PATH line for a directory of a short
// name: the node serves each volume on a unix socket in the instance's
// directory, and a socket's path holds at most 107 bytes, which the test's
// temporary directory under the test's name leaves too little room for.
func shortInstancePath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ebf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return `INSTANCE_PATH="` + dir + `"`
}
