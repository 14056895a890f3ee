package ec2api

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

func TestDescribeVpcs(t *testing.T) {
	f := catalogAPI(t)
	ctx := context.Background()
	mine, err := f.st.DefaultVPC(ctx, f.alice)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := f.st.DefaultVPC(ctx, f.admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateTags(ctx, f.alice, []store.Resource{{ID: mine.ID, Type: store.TypeVPC}}, []store.Tag{{Key: "Name", Value: "main"}}); err != nil {
		t.Fatal(err)
	}
	one := func(t *testing.T, r map[string]any) {
		vpcs := catList(t, r, "Vpcs")
		if len(vpcs) != 1 {
			t.Fatalf("vpcs %v", vpcs)
		}
		v := vpcs[0]
		if !mapsEqual(v, map[string]any{"VpcId": mine.ID, "OwnerId": f.alice, "State": "available", "CidrBlock": "172.31.0.0/16",
			"DhcpOptionsId": mine.DHCPOptionsID, "InstanceTenancy": "default", "IsDefault": true}) {
			t.Fatalf("vpc %v", v)
		}
		assoc := v["CidrBlockAssociationSet"].([]any)[0].(map[string]any)
		if assoc["CidrBlock"] != "172.31.0.0/16" || assoc["CidrBlockState"].(map[string]any)["State"] != "associated" || assoc["AssociationId"] == "" {
			t.Fatalf("association %v", assoc)
		}
		tags := v["Tags"].([]any)
		if len(tags) != 1 || tags[0].(map[string]any)["Value"] != "main" {
			t.Fatalf("tags %v", tags)
		}
	}
	none := catLen("Vpcs", 0)
	f.run(t, "DescribeVpcs", []catCase{
		{name: "all", check: one},
		{name: "by id", params: queryapi.Params{"VpcId.1": mine.ID}, check: one},
		{name: "another account's id", params: queryapi.Params{"VpcId.1": theirs.ID}, code: "InvalidVpcID.NotFound"},
		{name: "the other account sees its own", account: f.admin, params: queryapi.Params{"VpcId.1": theirs.ID}, check: catLen("Vpcs", 1)},
		{name: "unknown id", params: queryapi.Params{"VpcId.1": "vpc-12345678"}, code: "InvalidVpcID.NotFound"},
		{name: "isDefault", params: queryapi.Params{"Filter.1.Name": "isDefault", "Filter.1.Value.1": "true"}, check: one},
		{name: "is-default false", params: queryapi.Params{"Filter.1.Name": "is-default", "Filter.1.Value.1": "false"}, check: none},
		{name: "cidr", params: queryapi.Params{"Filter.1.Name": "cidr", "Filter.1.Value.1": "172.31.0.0/16"}, check: one},
		{name: "association cidr", params: queryapi.Params{"Filter.1.Name": "cidr-block-association.cidr-block", "Filter.1.Value.1": "172.31.*"}, check: one},
		{name: "owner and state", params: queryapi.Params{"Filter.1.Name": "owner-id", "Filter.1.Value.1": f.alice, "Filter.2.Name": "state", "Filter.2.Value.1": "available"}, check: one},
		{name: "other owner", params: queryapi.Params{"Filter.1.Name": "owner-id", "Filter.1.Value.1": f.admin}, check: none},
		{name: "dhcp options", params: queryapi.Params{"Filter.1.Name": "dhcp-options-id", "Filter.1.Value.1": "dopt-*"}, check: one},
		{name: "vpc-id", params: queryapi.Params{"Filter.1.Name": "vpc-id", "Filter.1.Value.1": mine.ID}, check: one},
		{name: "tag", params: queryapi.Params{"Filter.1.Name": "tag:Name", "Filter.1.Value.1": "main"}, check: one},
		{name: "tag miss", params: queryapi.Params{"Filter.1.Name": "tag:Name", "Filter.1.Value.1": "other"}, check: none},
		{name: "ipv6", params: queryapi.Params{"Filter.1.Name": "ipv6-cidr-block-association.ipv6-cidr-block", "Filter.1.Value.1": "*"}, check: none},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "vpcId", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "page", params: queryapi.Params{"MaxResults": "5"}, check: one},
		{name: "max results too small", params: queryapi.Params{"MaxResults": "4"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

func TestDescribeSubnets(t *testing.T) {
	f := catalogAPI(t)
	ctx := context.Background()
	mine, err := f.st.Subnets(ctx, f.alice)
	if err != nil || len(mine) != 1 {
		t.Fatal(mine, err)
	}
	theirs, err := f.st.Subnets(ctx, f.admin)
	if err != nil || len(theirs) != 1 {
		t.Fatal(theirs, err)
	}
	sn := mine[0]
	one := func(t *testing.T, r map[string]any) {
		subnets := catList(t, r, "Subnets")
		if len(subnets) != 1 {
			t.Fatalf("subnets %v", subnets)
		}
		want := map[string]any{
			"SubnetId": sn.ID, "SubnetArn": "arn:aws:ec2:us-east-1:" + f.alice + ":subnet/" + sn.ID, "State": "available",
			"OwnerId": f.alice, "VpcId": sn.VPCID, "CidrBlock": "172.31.0.0/16", "AvailableIpAddressCount": float64(65531),
			"AvailabilityZone": "us-east-1a", "AvailabilityZoneId": "use1-az1", "DefaultForAz": true,
			"MapPublicIpOnLaunch": true, "AssignIpv6AddressOnCreation": false,
		}
		if !mapsEqual(subnets[0], want) {
			t.Fatalf("subnet %v, want %v", subnets[0], want)
		}
		if v, ok := subnets[0]["Ipv6CidrBlockAssociationSet"].([]any); !ok || len(v) != 0 {
			t.Fatalf("ipv6 associations %v", subnets[0]["Ipv6CidrBlockAssociationSet"])
		}
	}
	none := catLen("Subnets", 0)
	f.run(t, "DescribeSubnets", []catCase{
		{name: "all", check: one},
		{name: "by id", params: queryapi.Params{"SubnetId.1": sn.ID}, check: one},
		{name: "another account's id", params: queryapi.Params{"SubnetId.1": theirs[0].ID}, code: "InvalidSubnetID.NotFound"},
		{name: "unknown id", params: queryapi.Params{"SubnetId.1": "subnet-12345678"}, code: "InvalidSubnetID.NotFound"},
		{name: "zone", params: queryapi.Params{"Filter.1.Name": "availability-zone", "Filter.1.Value.1": "us-east-1a"}, check: one},
		{name: "zone id", params: queryapi.Params{"Filter.1.Name": "availability-zone-id", "Filter.1.Value.1": "use1-az1"}, check: one},
		{name: "addresses", params: queryapi.Params{"Filter.1.Name": "available-ip-address-count", "Filter.1.Value.1": "65531"}, check: one},
		{name: "cidr-block", params: queryapi.Params{"Filter.1.Name": "cidr-block", "Filter.1.Value.1": "172.31.0.0/16"}, check: one},
		{name: "default-for-az", params: queryapi.Params{"Filter.1.Name": "default-for-az", "Filter.1.Value.1": "true"}, check: one},
		{name: "defaultForAz false", params: queryapi.Params{"Filter.1.Name": "defaultForAz", "Filter.1.Value.1": "false"}, check: none},
		{name: "map-public-ip", params: queryapi.Params{"Filter.1.Name": "map-public-ip-on-launch", "Filter.1.Value.1": "true"}, check: one},
		{name: "owner", params: queryapi.Params{"Filter.1.Name": "owner-id", "Filter.1.Value.1": f.alice}, check: one},
		{name: "state", params: queryapi.Params{"Filter.1.Name": "state", "Filter.1.Value.1": "available"}, check: one},
		{name: "subnet-id", params: queryapi.Params{"Filter.1.Name": "subnet-id", "Filter.1.Value.1": sn.ID}, check: one},
		{name: "vpc-id", params: queryapi.Params{"Filter.1.Name": "vpc-id", "Filter.1.Value.1": sn.VPCID}, check: one},
		{name: "vpc-id miss", params: queryapi.Params{"Filter.1.Name": "vpc-id", "Filter.1.Value.1": "vpc-12345678"}, check: none},
		{name: "tag-key", params: queryapi.Params{"Filter.1.Name": "tag-key", "Filter.1.Value.1": "Name"}, check: none},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "zone", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "max results too big", params: queryapi.Params{"MaxResults": "1001"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

func TestAvailableAddresses(t *testing.T) {
	for cidr, want := range map[string]int{"172.31.0.0/16": 65531, "10.0.0.0/28": 11, "10.0.0.0/30": 0, "10.0.0.0/32": 0, "0.0.0.0/0": 1<<30 - 5, "bogus": 0, "fd00::/64": 0} {
		if got := availableAddresses(cidr); got != want {
			t.Errorf("%s: %d, want %d", cidr, got, want)
		}
	}
}

func TestDescribeNetworkInterfacesEmpty(t *testing.T) {
	f := catalogAPI(t)
	empty := catLen("NetworkInterfaces", 0)
	f.run(t, "DescribeNetworkInterfaces", []catCase{
		{name: "all", check: empty},
		// What Terraform sends before deleting a security group.
		{name: "group-id", params: queryapi.Params{"Filter.1.Name": "group-id", "Filter.1.Value.1": "sg-0123456789abcdef0"}, check: empty},
		{name: "tag", params: queryapi.Params{"Filter.1.Name": "tag:Name", "Filter.1.Value.1": "x"}, check: empty},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "group", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "unknown id", params: queryapi.Params{"NetworkInterfaceId.1": "eni-0123456789abcdef0"}, code: "InvalidNetworkInterfaceID.NotFound"},
		{name: "malformed id", params: queryapi.Params{"NetworkInterfaceId.1": "eth0"}, code: "InvalidNetworkInterfaceID.Malformed"},
		{name: "ids with max results", params: queryapi.Params{"NetworkInterfaceId.1": "eni-12345678", "MaxResults": "5"}, code: "InvalidParameterCombination"},
		{name: "max results", params: queryapi.Params{"MaxResults": "1000"}, check: empty},
		{name: "max results too small", params: queryapi.Params{"MaxResults": "4"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}
