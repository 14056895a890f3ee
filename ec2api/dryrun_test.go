package ec2api

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// TestDryRunEverywhere: every action answers DryRun=true with
// DryRunOperation (given parameters it accepts) and changes nothing.
func TestDryRunEverywhere(t *testing.T) {
	f := catalogAPI(t)
	ctx := context.Background()
	// Parameters that satisfy each action's decoding.
	params := map[string]queryapi.Params{
		"CreateKeyPair":                 {"KeyName": "dry"},
		"ImportKeyPair":                 {"KeyName": "dry", "PublicKeyMaterial": "c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSUdaM1h4Zm1HdmJyUHJDbkJmM0dkNk9YeGZGMVVXa1VJVHJpUzNFVUpzT3ogeAo="},
		"DeleteKeyPair":                 {"KeyName": "dry"},
		"CreateSecurityGroup":           {"GroupName": "dry", "GroupDescription": "dry"},
		"DeleteSecurityGroup":           {"GroupName": "default"},
		"AuthorizeSecurityGroupIngress": {"GroupName": "default", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22", "IpPermissions.1.ToPort": "22", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8"},
		"AuthorizeSecurityGroupEgress":  {"GroupId": "sg-00000000000000000", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22", "IpPermissions.1.ToPort": "22", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8"},
		"RevokeSecurityGroupIngress":    {"GroupName": "default", "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8"},
		"RevokeSecurityGroupEgress":     {"GroupId": "sg-00000000000000000", "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"},
		"CreateTags":                    {"ResourceId.1": "sg-00000000000000000", "Tag.1.Key": "k", "Tag.1.Value": "v"},
		"DeleteTags":                    {"ResourceId.1": "sg-00000000000000000"},
		"DescribeVpcAttribute":          {"VpcId": "vpc-00000000000000000", "Attribute": "enableDnsSupport"},
		"ModifyVpcAttribute":            {"VpcId": "vpc-00000000000000000", "EnableDnsHostnames.Value": "false"},
		"AssociateAddress":              {"PublicIp": "192.0.2.1", "InstanceId": "i-00000000000000000"},
		"DisassociateAddress":           {"AssociationId": "eipassoc-00000000000000000"},
		"ReleaseAddress":                {"AllocationId": "eipalloc-00000000000000000"},
		"ModifyAddressAttribute":        {"AllocationId": "eipalloc-00000000000000000", "DomainName": "mail.example.com"},
		"ResetAddressAttribute":         {"AllocationId": "eipalloc-00000000000000000", "Attribute": "domain-name"},
		"CreateVolume":                  {"AvailabilityZone": "z", "Size": "1"},
		"DeleteVolume":                  {"VolumeId": "vol-00000000000000000"},
		"DescribeVolumeAttribute":       {"VolumeId": "vol-00000000000000000", "Attribute": "autoEnableIO"},
		"AttachVolume":                  {"VolumeId": "vol-00000000000000000", "InstanceId": "i-00000000000000000", "Device": "/dev/sdf"},
		"DetachVolume":                  {"VolumeId": "vol-00000000000000000"},
		"ModifyVolume":                  {"VolumeId": "vol-00000000000000000", "Size": "2"},
		"CreateSnapshot":                {"VolumeId": "vol-00000000000000000"},
		"CopySnapshot":                  {"SourceRegion": "us-east-1", "SourceSnapshotId": "snap-00000000000000000"},
		"DeleteSnapshot":                {"SnapshotId": "snap-00000000000000000"},
		"DescribeSnapshotAttribute":     {"SnapshotId": "snap-00000000000000000", "Attribute": "createVolumePermission"},
		"ModifySnapshotAttribute":       {"SnapshotId": "snap-00000000000000000", "CreateVolumePermission.Add.1.Group": "all"},
		"ResetSnapshotAttribute":        {"SnapshotId": "snap-00000000000000000", "Attribute": "createVolumePermission"},
	}
	beforeTags, _ := f.st.Tags(ctx, f.alice)
	for action := range f.a.actions() {
		p := queryapi.Params{"DryRun": "true"}
		for k, v := range params[action] {
			p[k] = v
		}
		_, err := f.call(f.alice, action, p)
		e, ok := awserr.As(err)
		if !ok {
			t.Errorf("%s with DryRun=true: %v, want DryRunOperation", action, err)
			continue
		}
		switch e.Code {
		case "DryRunOperation":
		case "InvalidGroup.NotFound", "InvalidID":
			// refused before the dry-run point: still nothing done
		default:
			t.Errorf("%s with DryRun=true: %s %s, want DryRunOperation", action, e.Code, e.Message)
		}
	}
	keys, err := f.a.cloud.DescribeKeyPairs(ctx, f.alice, nil, nil)
	if err == nil && len(keys) != 0 {
		t.Errorf("dry runs made key pairs: %v", keys)
	}
	afterTags, _ := f.st.Tags(ctx, f.alice)
	if len(afterTags) != len(beforeTags) {
		t.Errorf("dry runs changed tags: %v", afterTags)
	}
}
