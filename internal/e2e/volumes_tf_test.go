package e2e

import (
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
