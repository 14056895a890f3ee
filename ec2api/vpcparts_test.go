package ec2api

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// vpcPartsFixture is alice's default VPC and subnet, and admin's VPC.
func vpcPartsFixture(t *testing.T) (*catFixture, store.VPC, store.Subnet, store.VPC) {
	t.Helper()
	f := catalogAPI(t)
	ctx := context.Background()
	mine, err := f.st.DefaultVPC(ctx, f.alice)
	if err != nil {
		t.Fatal(err)
	}
	subnets, err := f.st.Subnets(ctx, f.alice)
	if err != nil || len(subnets) != 1 {
		t.Fatal(subnets, err)
	}
	theirs, err := f.st.DefaultVPC(ctx, f.admin)
	if err != nil {
		t.Fatal(err)
	}
	return f, mine, subnets[0], theirs
}

// oneFilter is the parameters of a call with one filter of one value.
func oneFilter(name, value string) queryapi.Params {
	return queryapi.Params{"Filter.1.Name": name, "Filter.1.Value.1": value}
}

func TestDescribeAndModifyVpcAttribute(t *testing.T) {
	f, mine, _, theirs := vpcPartsFixture(t)
	attr := func(name string, want bool) func(t *testing.T, r map[string]any) {
		return func(t *testing.T, r map[string]any) {
			v, ok := r[name].(map[string]any)
			if !ok || v["Value"] != want || r["VpcId"] != mine.ID {
				t.Fatalf("%s: %v, want %v", name, r, want)
			}
			for _, other := range vpcAttributes {
				k := string(other[0]-'a'+'A') + other[1:]
				if k != name && r[k] != nil {
					t.Fatalf("%s answered too: %v", k, r)
				}
			}
		}
	}
	ask := func(a string) queryapi.Params { return queryapi.Params{"VpcId": mine.ID, "Attribute": a} }
	f.run(t, "DescribeVpcAttribute", []catCase{
		{name: "dns support", params: ask("enableDnsSupport"), check: attr("EnableDnsSupport", true)},
		{name: "dns hostnames", params: ask("enableDnsHostnames"), check: attr("EnableDnsHostnames", true)},
		{name: "address usage metrics", params: ask("enableNetworkAddressUsageMetrics"), check: attr("EnableNetworkAddressUsageMetrics", false)},
		{name: "unknown attribute", params: ask("enableDns"), code: "InvalidParameterValue"},
		{name: "no attribute", params: queryapi.Params{"VpcId": mine.ID}, code: "MissingParameter"},
		{name: "no vpc", params: queryapi.Params{"Attribute": "enableDnsSupport"}, code: "MissingParameter"},
		{name: "another account's vpc", params: queryapi.Params{"VpcId": theirs.ID, "Attribute": "enableDnsSupport"}, code: "InvalidVpcID.NotFound"},
		{name: "unknown vpc", params: queryapi.Params{"VpcId": "vpc-12345678", "Attribute": "enableDnsSupport"}, code: "InvalidVpcID.NotFound"},
	})
	f.run(t, "ModifyVpcAttribute", []catCase{
		{name: "hostnames off", params: queryapi.Params{"VpcId": mine.ID, "EnableDnsHostnames.Value": "false"}},
		{name: "metrics on", params: queryapi.Params{"VpcId": mine.ID, "EnableNetworkAddressUsageMetrics.Value": "true"}},
		{name: "two at once", params: queryapi.Params{"VpcId": mine.ID, "EnableDnsHostnames.Value": "true", "EnableDnsSupport.Value": "true"}, code: "InvalidParameterCombination"},
		{name: "none", params: queryapi.Params{"VpcId": mine.ID}, code: "MissingParameter"},
		{name: "not a boolean", params: queryapi.Params{"VpcId": mine.ID, "EnableDnsSupport.Value": "maybe"}, code: "InvalidParameterValue"},
		{name: "another account's vpc", params: queryapi.Params{"VpcId": theirs.ID, "EnableDnsSupport.Value": "false"}, code: "InvalidVpcID.NotFound"},
	})
	// The changes are stored, and only the one VPC's.
	f.run(t, "DescribeVpcAttribute", []catCase{
		{name: "hostnames now off", params: ask("enableDnsHostnames"), check: attr("EnableDnsHostnames", false)},
		{name: "metrics now on", params: ask("enableNetworkAddressUsageMetrics"), check: attr("EnableNetworkAddressUsageMetrics", true)},
		{name: "support unchanged", params: ask("enableDnsSupport"), check: attr("EnableDnsSupport", true)},
		{name: "other account unchanged", account: f.admin, params: queryapi.Params{"VpcId": theirs.ID, "Attribute": "enableDnsHostnames"},
			check: func(t *testing.T, r map[string]any) {
				if r["EnableDnsHostnames"].(map[string]any)["Value"] != true {
					t.Fatalf("admin's vpc changed: %v", r)
				}
			}},
	})
}

func TestDescribeRouteTables(t *testing.T) {
	f, mine, sn, theirs := vpcPartsFixture(t)
	one := func(t *testing.T, r map[string]any) {
		tables := catList(t, r, "RouteTables")
		if len(tables) != 1 {
			t.Fatalf("route tables %v", tables)
		}
		rt := tables[0]
		if !mapsEqual(rt, map[string]any{"RouteTableId": mine.RouteTableID, "VpcId": mine.ID, "OwnerId": f.alice}) {
			t.Fatalf("route table %v", rt)
		}
		routes := catList(t, rt, "Routes")
		if len(routes) != 2 ||
			!mapsEqual(routes[0], map[string]any{"DestinationCidrBlock": mine.CIDR, "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}) ||
			!mapsEqual(routes[1], map[string]any{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": mine.InternetGatewayID, "Origin": "CreateRoute", "State": "active"}) {
			t.Fatalf("routes %v", routes)
		}
		assocs := catList(t, rt, "Associations")
		if len(assocs) != 1 || !mapsEqual(assocs[0], map[string]any{"Main": true, "RouteTableId": mine.RouteTableID,
			"RouteTableAssociationId": mine.RouteTableAssociationID}) || assocs[0]["SubnetId"] != nil ||
			assocs[0]["AssociationState"].(map[string]any)["State"] != "associated" {
			t.Fatalf("associations %v", assocs)
		}
	}
	none := catLen("RouteTables", 0)
	f.run(t, "DescribeRouteTables", []catCase{
		{name: "all", check: one},
		{name: "by id", params: queryapi.Params{"RouteTableId.1": mine.RouteTableID}, check: one},
		{name: "another account's id", params: queryapi.Params{"RouteTableId.1": theirs.RouteTableID}, code: "InvalidRouteTableID.NotFound"},
		{name: "unknown id", params: queryapi.Params{"RouteTableId.1": "rtb-0123456789abcdef0"}, code: "InvalidRouteTableID.NotFound"},
		// What Terraform's data "aws_vpc" asks for the main table.
		{name: "main of the vpc", params: queryapi.Params{"Filter.1.Name": "association.main", "Filter.1.Value.1": "true",
			"Filter.2.Name": "vpc-id", "Filter.2.Value.1": mine.ID}, check: one},
		{name: "vpc-id", params: oneFilter("vpc-id", mine.ID), check: one},
		{name: "another vpc", params: oneFilter("vpc-id", theirs.ID), check: none},
		{name: "route to the gateway", params: oneFilter("route.gateway-id", "igw-*"), check: one},
		{name: "default route", params: oneFilter("route.destination-cidr-block", "0.0.0.0/0"), check: one},
		// Subnets use the main table implicitly: none is associated by name.
		{name: "subnet association", params: oneFilter("association.subnet-id", sn.ID), check: none},
		{name: "association id", params: oneFilter("association.route-table-association-id", mine.RouteTableAssociationID), check: one},
		{name: "nat gateway", params: oneFilter("route.nat-gateway-id", "*"), check: none},
		{name: "tag", params: oneFilter("tag:Name", "*"), check: none},
		{name: "unknown filter", params: oneFilter("main", "true"), code: "InvalidParameterValue"},
		{name: "max results too large", params: queryapi.Params{"MaxResults": "101"}, code: "InvalidParameterValue"},
		{name: "page", params: queryapi.Params{"MaxResults": "5"}, check: one},
	})
}

func TestDescribeInternetGateways(t *testing.T) {
	f, mine, _, theirs := vpcPartsFixture(t)
	one := func(t *testing.T, r map[string]any) {
		gws := catList(t, r, "InternetGateways")
		if len(gws) != 1 || !mapsEqual(gws[0], map[string]any{"InternetGatewayId": mine.InternetGatewayID, "OwnerId": f.alice}) {
			t.Fatalf("gateways %v", gws)
		}
		at := catList(t, gws[0], "Attachments")
		if len(at) != 1 || !mapsEqual(at[0], map[string]any{"VpcId": mine.ID, "State": "available"}) {
			t.Fatalf("attachments %v", at)
		}
	}
	f.run(t, "DescribeInternetGateways", []catCase{
		{name: "all", check: one},
		{name: "by id", params: queryapi.Params{"InternetGatewayId.1": mine.InternetGatewayID}, check: one},
		{name: "another account's id", params: queryapi.Params{"InternetGatewayId.1": theirs.InternetGatewayID}, code: "InvalidInternetGatewayID.NotFound"},
		{name: "attached to the vpc", params: oneFilter("attachment.vpc-id", mine.ID), check: one},
		{name: "attached elsewhere", params: oneFilter("attachment.vpc-id", theirs.ID), check: catLen("InternetGateways", 0)},
		{name: "state", params: oneFilter("attachment.state", "available"), check: one},
		{name: "id wildcard", params: oneFilter("internet-gateway-id", "igw-*"), check: one},
		{name: "unknown filter", params: oneFilter("vpc-id", mine.ID), code: "InvalidParameterValue"},
	})
}

func TestDescribeDhcpOptions(t *testing.T) {
	f, mine, _, theirs := vpcPartsFixture(t)
	one := func(t *testing.T, r map[string]any) {
		sets := catList(t, r, "DhcpOptions")
		if len(sets) != 1 || !mapsEqual(sets[0], map[string]any{"DhcpOptionsId": mine.DHCPOptionsID, "OwnerId": f.alice}) {
			t.Fatalf("dhcp options %v", sets)
		}
		got := map[string]any{}
		for _, c := range catList(t, sets[0], "DhcpConfigurations") {
			got[c["Key"].(string)] = c["Values"].([]any)[0].(map[string]any)["Value"]
		}
		if !mapsEqual(got, map[string]any{"domain-name": "us-east-1.compute.internal", "domain-name-servers": "AmazonProvidedDNS"}) || len(got) != 2 {
			t.Fatalf("configurations %v", got)
		}
	}
	f.run(t, "DescribeDhcpOptions", []catCase{
		{name: "all", check: one},
		{name: "by id", params: queryapi.Params{"DhcpOptionsId.1": mine.DHCPOptionsID}, check: one},
		{name: "another account's id", params: queryapi.Params{"DhcpOptionsId.1": theirs.DHCPOptionsID}, code: "InvalidDhcpOptionID.NotFound"},
		{name: "key", params: oneFilter("key", "domain-name"), check: one},
		{name: "value", params: oneFilter("value", "*.compute.internal"), check: one},
		{name: "value miss", params: oneFilter("value", "example.com"), check: catLen("DhcpOptions", 0)},
		{name: "unknown filter", params: oneFilter("domain-name", "x"), code: "InvalidParameterValue"},
	})
}

func TestDescribeNetworkAcls(t *testing.T) {
	f, mine, sn, theirs := vpcPartsFixture(t)
	one := func(t *testing.T, r map[string]any) {
		acls := catList(t, r, "NetworkAcls")
		if len(acls) != 1 || !mapsEqual(acls[0], map[string]any{"NetworkAclId": mine.NetworkACLID, "VpcId": mine.ID, "IsDefault": true, "OwnerId": f.alice}) {
			t.Fatalf("acls %v", acls)
		}
		entries := catList(t, acls[0], "Entries")
		if len(entries) != 4 {
			t.Fatalf("entries %v", entries)
		}
		for _, e := range entries {
			n, action := e["RuleNumber"], e["RuleAction"]
			if e["CidrBlock"] != "0.0.0.0/0" || e["Protocol"] != "-1" || !(n == float64(100) && action == "allow" || n == float64(32767) && action == "deny") {
				t.Fatalf("entry %v", e)
			}
		}
		assocs := catList(t, acls[0], "Associations")
		if len(assocs) != 1 || !mapsEqual(assocs[0], map[string]any{"SubnetId": sn.ID, "NetworkAclId": mine.NetworkACLID, "NetworkAclAssociationId": sn.NetworkACLAssociationID}) {
			t.Fatalf("associations %v", assocs)
		}
	}
	none := catLen("NetworkAcls", 0)
	f.run(t, "DescribeNetworkAcls", []catCase{
		{name: "all", check: one},
		{name: "by id", params: queryapi.Params{"NetworkAclId.1": mine.NetworkACLID}, check: one},
		{name: "another account's id", params: queryapi.Params{"NetworkAclId.1": theirs.NetworkACLID}, code: "InvalidNetworkAclID.NotFound"},
		{name: "default of the vpc", params: queryapi.Params{"Filter.1.Name": "default", "Filter.1.Value.1": "true", "Filter.2.Name": "vpc-id", "Filter.2.Value.1": mine.ID}, check: one},
		{name: "of a subnet", params: oneFilter("association.subnet-id", sn.ID), check: one},
		{name: "rule number", params: oneFilter("entry.rule-number", "32767"), check: one},
		{name: "port range", params: oneFilter("entry.port-range.from", "*"), check: none},
		{name: "not default", params: oneFilter("default", "false"), check: none},
		{name: "unknown filter", params: oneFilter("acl-id", "x"), code: "InvalidParameterValue"},
	})
}

func TestDescribeVpcEndpointsAndPrefixListsEmpty(t *testing.T) {
	f, mine, _, _ := vpcPartsFixture(t)
	f.run(t, "DescribeVpcEndpoints", []catCase{
		{name: "all", check: catLen("VpcEndpoints", 0)},
		{name: "of the vpc", params: oneFilter("vpc-id", mine.ID), check: catLen("VpcEndpoints", 0)},
		{name: "unknown id", params: queryapi.Params{"VpcEndpointId.1": "vpce-0123456789abcdef0"}, code: "InvalidVpcEndpointId.NotFound"},
		{name: "unknown filter", params: oneFilter("endpoint", "x"), code: "InvalidParameterValue"},
	})
	f.run(t, "DescribePrefixLists", []catCase{
		{name: "all", check: catLen("PrefixLists", 0)},
		{name: "by name", params: oneFilter("prefix-list-name", "com.amazonaws.*.s3"), check: catLen("PrefixLists", 0)},
		{name: "unknown id", params: queryapi.Params{"PrefixListId.1": "pl-63a5400a"}, code: "InvalidPrefixListId.NotFound"},
		{name: "unknown filter", params: oneFilter("name", "x"), code: "InvalidParameterValue"},
	})
}

func TestDescribeInstanceTypeOfferings(t *testing.T) {
	f := catalogAPI(t)
	offerings := func(locType, location string, types ...string) func(t *testing.T, r map[string]any) {
		return func(t *testing.T, r map[string]any) {
			got := catList(t, r, "InstanceTypeOfferings")
			if len(got) != len(types) {
				t.Fatalf("offerings %v, want %v", got, types)
			}
			for i, o := range got {
				if !mapsEqual(o, map[string]any{"InstanceType": types[i], "LocationType": locType, "Location": location}) {
					t.Fatalf("offering %v, want %s in %s %s", o, types[i], locType, location)
				}
			}
		}
	}
	all := []string{"m1.small", "c1.medium", "m1.large", "m1.xlarge", "c1.xlarge"}
	f.run(t, "DescribeInstanceTypeOfferings", []catCase{
		{name: "region by default", check: offerings("region", "us-east-1", all...)},
		{name: "zones", params: queryapi.Params{"LocationType": "availability-zone"}, check: offerings("availability-zone", "us-east-1a", all...)},
		{name: "zone ids", params: queryapi.Params{"LocationType": "availability-zone-id"}, check: offerings("availability-zone-id", "use1-az1", all...)},
		{name: "outposts", params: queryapi.Params{"LocationType": "outpost"}, check: catLen("InstanceTypeOfferings", 0)},
		{name: "one type in a zone", params: queryapi.Params{"LocationType": "availability-zone", "Filter.1.Name": "instance-type", "Filter.1.Value.1": "m1.small",
			"Filter.2.Name": "location", "Filter.2.Value.1": "us-east-1a"}, check: offerings("availability-zone", "us-east-1a", "m1.small")},
		{name: "wildcard", params: oneFilter("instance-type", "c1.*"), check: offerings("region", "us-east-1", "c1.medium", "c1.xlarge")},
		{name: "no such zone", params: queryapi.Params{"LocationType": "availability-zone", "Filter.1.Name": "location", "Filter.1.Value.1": "us-east-1b"},
			check: catLen("InstanceTypeOfferings", 0)},
		{name: "page", params: queryapi.Params{"MaxResults": "5"}, check: offerings("region", "us-east-1", all...)},
		{name: "bad location type", params: queryapi.Params{"LocationType": "country"}, code: "InvalidParameterValue"},
		{name: "unknown filter", params: oneFilter("zone", "x"), code: "InvalidParameterValue"},
	})
}

// TestVPCPartsTags: the parts take tags (Terraform's aws_default_route_table
// and friends tag them), show them, and are found by them; another account
// cannot tag them.
func TestVPCPartsTags(t *testing.T) {
	f, mine, _, _ := vpcPartsFixture(t)
	parts := []struct{ action, id, list string }{
		{"DescribeRouteTables", mine.RouteTableID, "RouteTables"},
		{"DescribeInternetGateways", mine.InternetGatewayID, "InternetGateways"},
		{"DescribeNetworkAcls", mine.NetworkACLID, "NetworkAcls"},
		{"DescribeDhcpOptions", mine.DHCPOptionsID, "DhcpOptions"},
	}
	for i, p := range parts {
		if _, err := f.call(f.admin, "CreateTags", queryapi.Params{"ResourceId.1": p.id, "Tag.1.Key": "Name", "Tag.1.Value": "x"}); err == nil {
			t.Errorf("admin tagged alice's %s", p.id)
		}
		if _, err := f.call(f.alice, "CreateTags", queryapi.Params{"ResourceId.1": p.id, "Tag.1.Key": "Name", "Tag.1.Value": "part" + string(rune('0'+i))}); err != nil {
			t.Fatalf("tag %s: %v", p.id, err)
		}
	}
	for i, p := range parts {
		name := "part" + string(rune('0'+i))
		f.run(t, p.action, []catCase{
			{name: "tagged", params: oneFilter("tag:Name", name), check: func(t *testing.T, r map[string]any) {
				items := catList(t, r, p.list)
				if len(items) != 1 {
					t.Fatalf("%v", items)
				}
				tags := items[0]["Tags"].([]any)
				if len(tags) != 1 || tags[0].(map[string]any)["Value"] != name {
					t.Fatalf("tags %v", tags)
				}
			}},
			{name: "another tag", params: oneFilter("tag:Name", "nope"), check: catLen(p.list, 0)},
		})
	}
	resp, err := f.call(f.alice, "DescribeTags", queryapi.Params{"Filter.1.Name": "resource-type", "Filter.1.Value.1": "route-table"})
	if err != nil {
		t.Fatal(err)
	}
	if tags := catList(t, botoParse(t, "DescribeTags", resp), "Tags"); len(tags) != 1 || tags[0]["ResourceId"] != mine.RouteTableID {
		t.Fatalf("route table's tags %v", tags)
	}
}
