package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestTerraformVolumeSequences replays with boto3, against a cloud running
// the clc, walrus and sc roles (the real storage controller: volume files,
// snapshots as chunks in Walrus), the calls Terraform's AWS provider 5.100
// made for aws_ebs_volume and aws_ebs_snapshot (captured with TF_LOG=DEBUG
// from `terraform apply`, a size change, and `terraform destroy` against
// this cloud), with the waits its resources make, then the AWS CLI's
// waiters the acceptance check uses.
func TestTerraformVolumeSequences(t *testing.T) {
	Need(t, "aws", "python3")
	c := Start(t, "clc,walrus,sc")
	env := c.Env
	out, err := c.Python(t, env, terraformVolumeScript)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("terraform sequence: %v %s\n--- euca log:\n%s", err, out, tail(c.Log(), 30))
	}

	// The AWS CLI's waiters, as the acceptance check uses them.
	aws := func(args ...string) string {
		t.Helper()
		out, err := c.AWS(t, env, args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n--- euca log:\n%s", args, err, tail(c.Log(), 30))
		}
		return strings.TrimSpace(out)
	}
	zone := strings.Trim(aws("ec2", "describe-availability-zones", "--query", "AvailabilityZones[0].ZoneName"), `"`)
	vol := strings.Trim(aws("ec2", "create-volume", "--availability-zone", zone, "--size", "1", "--query", "VolumeId"), `"`)
	aws("ec2", "wait", "volume-available", "--volume-ids", vol)
	snap := strings.Trim(aws("ec2", "create-snapshot", "--volume-id", vol, "--query", "SnapshotId"), `"`)
	aws("ec2", "wait", "snapshot-completed", "--snapshot-ids", snap)
	from := strings.Trim(aws("ec2", "create-volume", "--availability-zone", zone, "--snapshot-id", snap, "--query", "VolumeId"), `"`)
	aws("ec2", "wait", "volume-available", "--volume-ids", from)
	aws("ec2", "delete-snapshot", "--snapshot-id", snap)
	aws("ec2", "delete-volume", "--volume-id", vol)
	aws("ec2", "delete-volume", "--volume-id", from)
	aws("ec2", "wait", "volume-deleted", "--volume-ids", vol, from)
}

// terraformVolumeScript: each block is one resource's calls in the order
// the provider made them; wait() is the provider's state refresh (it polls
// DescribeVolumes or DescribeSnapshots until the target state).
const terraformVolumeScript = `
import os, time, boto3
from botocore.exceptions import ClientError
ec2 = boto3.client('ec2', endpoint_url=os.environ['EC2_URL'])
zone = ec2.describe_availability_zones()['AvailabilityZones'][0]['ZoneName']
def code(f, **kw):
    try:
        f(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    return 'no error'
def wait(f, key, target, pending, **kw):
    for _ in range(600):
        try:
            items = f(**kw)[key]
        except ClientError as e:
            if target is None and e.response['Error']['Code'].endswith('.NotFound'):
                return None
            raise
        st = items[0].get('State')
        if st == target:
            return items[0]
        assert st in pending, (st, items[0])
        time.sleep(0.1)
    raise Exception('timeout waiting for %s' % target)
tags = lambda n: [{'Key': 'Name', 'Value': n}]

# ---- terraform apply
# aws_ebs_volume "v": CreateVolume, then waitVolumeCreated (creating -> available), then Read.
v = ec2.create_volume(AvailabilityZone=zone, ClientToken='terraform-20261207201409377200000001', Size=1,
    TagSpecifications=[{'ResourceType': 'volume', 'Tags': tags('tf-vol')}])
vid = v['VolumeId']
assert v['State'] == 'creating' and v['Size'] == 1 and v['Tags'] == tags('tf-vol'), v
# The same client token (a retried request) is the same volume.
assert ec2.create_volume(AvailabilityZone=zone, ClientToken='terraform-20261207201409377200000001', Size=1)['VolumeId'] == vid
vol = wait(ec2.describe_volumes, 'Volumes', 'available', ['creating'], VolumeIds=[vid])
for k in ('AvailabilityZone', 'CreateTime', 'Encrypted', 'Iops', 'MultiAttachEnabled', 'Size', 'SnapshotId', 'VolumeType', 'Tags'):
    assert k in vol, (k, vol)
assert vol['VolumeType'] == 'gp2' and vol['Encrypted'] is False and vol['MultiAttachEnabled'] is False and vol['SnapshotId'] == '', vol
# aws_ebs_snapshot "s": CreateSnapshot, then waitSnapshotCreated (pending -> completed).
s = ec2.create_snapshot(Description='tf', VolumeId=vid, TagSpecifications=[{'ResourceType': 'snapshot', 'Tags': tags('tf-snap')}])
sid = s['SnapshotId']
assert s['State'] == 'pending' and s['VolumeId'] == vid and s['Description'] == 'tf', s
snap = wait(ec2.describe_snapshots, 'Snapshots', 'completed', ['pending'], SnapshotIds=[sid])
assert snap['Progress'] == '100%' and snap['VolumeSize'] == 1 and snap['Tags'] == tags('tf-snap') and snap['OwnerId'], snap
# aws_ebs_volume "r" from the snapshot, type gp3.
r = ec2.create_volume(AvailabilityZone=zone, ClientToken='terraform-20261207201434526200000002', SnapshotId=sid, VolumeType='gp3')
rid = r['VolumeId']
rv = wait(ec2.describe_volumes, 'Volumes', 'available', ['creating'], VolumeIds=[rid])
assert rv['Size'] == 1 and rv['SnapshotId'] == sid and rv['VolumeType'] == 'gp3' and rv['Iops'] == 3000 and rv['Throughput'] == 125, rv

# ---- terraform apply after size = 2: refresh, ModifyVolume, waitVolumeUpdated (available or in-use).
for i in (vid,):
    ec2.describe_volumes(VolumeIds=[i])
ec2.describe_snapshots(SnapshotIds=[sid])
m = ec2.modify_volume(Size=2, VolumeId=vid)['VolumeModification']
assert m['TargetSize'] == 2 and m['OriginalSize'] == 1 and m['ModificationState'] in ('modifying', 'optimizing', 'completed'), m
vol = wait(ec2.describe_volumes, 'Volumes', 'available', ['creating', 'modifying'], VolumeIds=[vid])
assert vol['Size'] == 2, vol
mods = ec2.describe_volumes_modifications(VolumeIds=[vid])['VolumesModifications']
assert mods[0]['ModificationState'] in ('optimizing', 'completed'), mods
assert code(ec2.modify_volume, Size=1, VolumeId=vid) == 'InvalidParameterValue'

# ---- terraform destroy: DeleteVolume (retried on VolumeInUse), waitVolumeDeleted (deleting -> gone), DeleteSnapshot.
ec2.delete_volume(VolumeId=rid)
wait(ec2.describe_volumes, 'Volumes', None, ['deleting'], VolumeIds=[rid])
ec2.delete_snapshot(SnapshotId=sid)
assert code(ec2.describe_snapshots, SnapshotIds=[sid]) == 'InvalidSnapshot.NotFound'
ec2.delete_volume(VolumeId=vid)
wait(ec2.describe_volumes, 'Volumes', None, ['deleting'], VolumeIds=[vid])
# A second destroy finds nothing: InvalidVolume.NotFound is success to the provider.
assert code(ec2.delete_volume, VolumeId=vid) == 'InvalidVolume.NotFound'
assert code(ec2.delete_snapshot, SnapshotId=sid) == 'InvalidSnapshot.NotFound'
print('ok')
`

// TestTerraformVolumeAttachment replays Terraform's aws_volume_attachment
// (provider 5.100, internal/service/ec2/ebs_volume_attachment.go) with
// boto3 against a whole cloud of simulated instances: the attachment is
// looked up by DescribeVolumes with VolumeId.N and the attachment.device
// and attachment.instance-id filters together, the instance waited for,
// AttachVolume, a wait for attached; on destroy DetachVolume, a wait until
// the volume is available, and a second detach answered IncorrectState
// "...is in the 'available' state." (which the provider takes for done).
// The node side is real (the node's NBD proxy, the storage controller's
// export); only the guest is simulated. On the same cloud, euca2ools 3.x's
// volume and snapshot commands as requestbuilder sends them (SigV2, API
// 2014-06-15, createVolumePermission in the OperationType form).
func TestTerraformVolumeAttachment(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of their own
	needLAN(t)
	Need(t, "aws", "python3", "bash")
	l := newLANNamed(t, "ebd", "10.243.1")
	fe := l.host("fe", `VNET_MODE="MANAGED-NOVLAN"`, `VNET_PUBINTERFACE="eth0"`, `VNET_SUBNET="10.243.128.0"`,
		`VNET_NETMASK="255.255.192.0"`, `VNET_DNS="10.243.1.1"`, `VNET_ADDRSPERNET="32"`, `VNET_PUBLICIPS="10.243.200.8/29"`)
	// A short EUCALYPTUS, as a real host's (/ or /opt/eucalyptus): the
	// node serves each volume on a unix socket in the instance's
	// directory, and a socket's path must fit in 108 bytes, which one
	// under the test's temp dir does not.
	home, err := os.MkdirTemp("", "ebd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	fe.setConf("EUCALYPTUS", home)
	front := fe.start("--roles=all", "--driver", "sim")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	_, mustAWS := lanAWS(t, fe, env, func() string { return front.log.String() })
	emi := lanTinyImage(t, fe, env, mustAWS)
	helper := strings.Index(euca2oolsNetworkScript, "ec2 = boto3.client")
	if helper < 0 {
		t.Fatal("euca2oolsNetworkScript no longer starts with its request helper")
	}
	for _, c := range []struct{ name, script string }{
		{"terraform", terraformAttachmentScript},
		// euca2ools 3.x's volume and snapshot commands: requestbuilder's
		// SigV2 POST at API 2014-06-15 (netclients_test.go's helper).
		{"euca2ools", euca2oolsNetworkScript[:helper] + euca2oolsVolumeScript},
	} {
		t.Run(c.name, func(t *testing.T) { runSequence(t, fe, front, env, emi, c.script) })
	}
}

// runSequence runs a client script on the front-end host; it prints ok.
func runSequence(t *testing.T, fe *lanHost, front *lanProc, env []string, emi, script string) {
	out, err := fe.run(append(env, "EMI="+emi), "python3", "-c", script)
	if err != nil || strings.TrimSpace(out) != "ok" {
		var notRequests []string
		for _, l := range Lines(front.log.String()) {
			if !strings.Contains(l, "msg=request ") {
				notRequests = append(notRequests, l)
			}
		}
		t.Fatalf("terraform sequence: %v %s\n--- front-end log but the requests:\n%s", err, out, tail(strings.Join(notRequests, "\n"), 40))
	}
}

const terraformAttachmentScript = `
import os, time, boto3
from botocore.exceptions import ClientError
ec2 = boto3.client('ec2', endpoint_url=os.environ['EC2_URL'])
def code(f, **kw):
    try:
        f(**kw)
    except ClientError as e:
        return e.response['Error']['Code'] + ': ' + e.response['Error']['Message']
    return 'no error'
def until(f, ok, what):
    for _ in range(1200):
        r = f()
        if ok(r):
            return r
        time.sleep(0.1)
    raise Exception('timeout: ' + what + ': ' + repr(r))

inst = ec2.run_instances(ImageId=os.environ['EMI'], MinCount=1, MaxCount=1, InstanceType='m1.small')['Instances'][0]
iid, zone = inst['InstanceId'], inst['Placement']['AvailabilityZone']
vid = ec2.create_volume(AvailabilityZone=zone, Size=1)['VolumeId']
until(lambda: ec2.describe_volumes(VolumeIds=[vid])['Volumes'][0]['State'], lambda s: s == 'available', 'volume available')
dev = '/dev/sdf'
find = lambda: ec2.describe_volumes(VolumeIds=[vid], Filters=[
    {'Name': 'attachment.device', 'Values': [dev]}, {'Name': 'attachment.instance-id', 'Values': [iid]}])['Volumes']

# ---- create: findVolumeAttachment (none), waitVolumeAttachmentInstanceReady, AttachVolume, waitVolumeAttachmentCreated.
assert find() == []
until(lambda: ec2.describe_instances(InstanceIds=[iid])['Reservations'][0]['Instances'][0]['State']['Name'],
      lambda s: s in ('running', 'stopped'), 'instance running')
a = ec2.attach_volume(Device=dev, InstanceId=iid, VolumeId=vid)
assert a['State'] == 'attaching' and a['Device'] == dev and a['InstanceId'] == iid and a['VolumeId'] == vid, a
def attached(vols):
    if not vols:
        return False
    att = [x for x in vols[0]['Attachments'] if x['InstanceId'] == iid and x['Device'] == dev]
    assert att and att[0]['State'] in ('attaching', 'attached'), vols
    return att[0]['State'] == 'attached'
until(find, attached, 'attached')
# ---- read
v = find()[0]
assert v['State'] == 'in-use' and v['Attachments'][0]['DeleteOnTermination'] is False, v
# What a wrong device or instance finds: nothing.
assert ec2.describe_volumes(VolumeIds=[vid], Filters=[{'Name': 'attachment.device', 'Values': ['/dev/sdg']},
    {'Name': 'attachment.instance-id', 'Values': [iid]}])['Volumes'] == []
assert code(ec2.delete_volume, VolumeId=vid).startswith('VolumeInUse'), code(ec2.delete_volume, VolumeId=vid)
assert code(ec2.attach_volume, Device='/dev/sdg', InstanceId=iid, VolumeId=vid).startswith('VolumeInUse')
i = ec2.describe_instances(InstanceIds=[iid])['Reservations'][0]['Instances'][0]

# ---- destroy: DetachVolume, waitVolumeAttachmentDeleted (detaching -> gone).
d = ec2.detach_volume(Device=dev, Force=False, InstanceId=iid, VolumeId=vid)
assert d['State'] == 'detaching', d
until(find, lambda vols: vols == [], 'detached')
until(lambda: ec2.describe_volumes(VolumeIds=[vid])['Volumes'][0]['State'], lambda s: s == 'available', 'volume available again')
c = code(ec2.detach_volume, Device=dev, Force=False, InstanceId=iid, VolumeId=vid)
assert c.startswith('IncorrectState') and "'available'" in c, c

# A volume still attached when its instance is terminated is let go.
ec2.attach_volume(Device='/dev/sdh', InstanceId=iid, VolumeId=vid)
until(lambda: ec2.describe_volumes(VolumeIds=[vid])['Volumes'][0]['Attachments'], lambda a: a and a[0]['State'] == 'attached', 'attached again')
ec2.terminate_instances(InstanceIds=[iid])
until(lambda: ec2.describe_volumes(VolumeIds=[vid])['Volumes'][0]['State'], lambda s: s == 'available', 'available after terminate')
ec2.delete_volume(VolumeId=vid)
until(lambda: code(ec2.describe_volumes, VolumeIds=[vid]), lambda c: c.startswith('InvalidVolume.NotFound'), 'deleted')
print('ok')
`

const euca2oolsVolumeScript = `
ec2 = boto3.client('ec2', endpoint_url=URL)
vm = ec2.run_instances(ImageId=os.environ['EMI'], InstanceType='m1.small', MinCount=1, MaxCount=1)['Instances'][0]
zone, vm = vm['Placement']['AvailabilityZone'], vm['InstanceId']
def until(f, ok, what):
    for _ in range(1200):
        r = f()
        if ok(r):
            return r
        time.sleep(0.1)
    raise Exception('timeout: ' + what + ': ' + repr(r))
VOLS = ['volumeSet', 'attachmentSet', 'tagSet']
SNAPS = ['snapshotSet', 'tagSet']
vol_state = lambda v: lambda: euca('DescribeVolumes', VOLS, **{'VolumeId.1': v})['volumeSet'][0]
until(lambda: ec2.describe_instances(InstanceIds=[vm])['Reservations'][0]['Instances'][0]['State']['Name'], lambda s: s == 'running', 'running')

# euca-create-volume -z ZONE -s 1: VOLUME volumeId size snapshotId availabilityZone status createTime
v = euca('CreateVolume', AvailabilityZone=zone, Size=1)
vol = v['volumeId']
assert v['size'] == '1' and v['availabilityZone'] == zone and v['status'] == 'creating' and v['createTime'], v
until(vol_state(vol), lambda d: d['status'] == 'available', 'available')
# euca-attach-volume -i VM -d /dev/sdf VOL: ATTACHMENT volumeId instanceId device status attachTime
a = euca('AttachVolume', VolumeId=vol, InstanceId=vm, Device='/dev/sdf')
assert (a['volumeId'], a['instanceId'], a['device'], a['status']) == (vol, vm, '/dev/sdf', 'attaching') and a['attachTime'], a
d = until(vol_state(vol), lambda d: d['attachmentSet'] and d['attachmentSet'][0]['status'] == 'attached', 'attached')
assert d['status'] == 'in-use' and d['attachmentSet'][0]['instanceId'] == vm, d
euca('DeleteVolume', fail='VolumeInUse', VolumeId=vol)
# euca-describe-volumes -F attachment.instance-id=VM
assert [x['volumeId'] for x in euca('DescribeVolumes', VOLS, **{'Filter.1.Name': 'attachment.instance-id', 'Filter.1.Value.1': vm})['volumeSet']] == [vol]
# euca-create-snapshot -d backup VOL: SNAPSHOT snapshotId volumeId status startTime progress ownerId volumeSize description
s = euca('CreateSnapshot', VolumeId=vol, Description='backup')
snap = s['snapshotId']
assert s['volumeId'] == vol and s['status'] == 'pending' and s['ownerId'] == ACCT and s['description'] == 'backup', s
# euca-describe-snapshots (Owner.1=self RestorableBy.1=self unless -a)
done = until(lambda: euca('DescribeSnapshots', SNAPS, **{'Owner.1': 'self', 'RestorableBy.1': 'self'})['snapshotSet'],
             lambda l: l and l[0]['status'] == 'completed', 'completed')
assert done[0]['snapshotId'] == snap and done[0]['progress'] == '100%' and done[0]['volumeSize'] == '1', done
# euca-detach-volume VOL
assert euca('DetachVolume', VolumeId=vol)['status'] == 'detaching'
until(vol_state(vol), lambda d: d['status'] == 'available', 'detached')
euca('DetachVolume', fail='IncorrectState', VolumeId=vol)
# euca-modify-snapshot-attribute -c -a all / -a ACCOUNT, the older form (OperationType, UserGroup.N, UserId.N)
euca('ModifySnapshotAttribute', SnapshotId=snap, Attribute='createVolumePermission', OperationType='add', **{'UserGroup.1': 'all'})
euca('ModifySnapshotAttribute', SnapshotId=snap, Attribute='createVolumePermission', OperationType='add', **{'UserId.1': '123456789012'})
perms = euca('DescribeSnapshotAttribute', ['createVolumePermission'], SnapshotId=snap, Attribute='createVolumePermission')['createVolumePermission']
assert {'group': 'all'} in perms and {'userId': '123456789012'} in perms and len(perms) == 2, perms
euca('ModifySnapshotAttribute', SnapshotId=snap, Attribute='createVolumePermission', OperationType='remove', **{'UserGroup.1': 'all'})
perms = euca('DescribeSnapshotAttribute', ['createVolumePermission'], SnapshotId=snap, Attribute='createVolumePermission')['createVolumePermission']
assert perms == [{'userId': '123456789012'}], perms
# euca-reset-snapshot-attribute -c
euca('ResetSnapshotAttribute', SnapshotId=snap, Attribute='createVolumePermission')
assert euca('DescribeSnapshotAttribute', ['createVolumePermission'], SnapshotId=snap, Attribute='createVolumePermission')['createVolumePermission'] == []
# euca-create-volume --snapshot SNAP -z ZONE, then the deletes.
v2 = euca('CreateVolume', AvailabilityZone=zone, SnapshotId=snap)['volumeId']
assert until(vol_state(v2), lambda d: d['status'] == 'available', 'from snapshot')['snapshotId'] == snap
euca('DeleteSnapshot', SnapshotId=snap)
euca('DescribeSnapshots', SNAPS, fail='InvalidSnapshot.NotFound', **{'SnapshotId.1': snap})
for x in (vol, v2):
    euca('DeleteVolume', VolumeId=x)
until(lambda: euca('DescribeVolumes', VOLS, fail=None, **{'Filter.1.Name': 'volume-id', 'Filter.1.Value.1': vol})['volumeSet'], lambda l: not l, 'deleted')
ec2.terminate_instances(InstanceIds=[vm])
print('ok')
`
