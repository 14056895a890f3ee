package clc

import (
	"context"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/store"
)

func TestVPCsAndSubnetsIsolated(t *testing.T) {
	ctx := context.Background()
	c, admin, other := catalogCloud(t)
	mine, err := c.VPCs(ctx, other.ID, nil)
	if err != nil || len(mine) != 1 || !mine[0].IsDefault || mine[0].CIDR != "172.31.0.0/16" {
		t.Fatalf("vpcs %+v, %v", mine, err)
	}
	theirs, err := c.VPCs(ctx, admin.ID, nil)
	if err != nil || len(theirs) != 1 {
		t.Fatalf("admin vpcs %+v, %v", theirs, err)
	}
	mySubnets, err := c.Subnets(ctx, other.ID, nil)
	if err != nil || len(mySubnets) != 1 || mySubnets[0].Zone != "us-east-1a" {
		t.Fatalf("subnets %+v, %v", mySubnets, err)
	}
	theirSubnets, err := c.Subnets(ctx, admin.ID, nil)
	if err != nil || len(theirSubnets) != 1 {
		t.Fatalf("admin subnets %+v, %v", theirSubnets, err)
	}

	for _, tc := range []struct {
		name    string
		call    func() error
		code    string
		message string
	}{
		{"own vpc", func() error { _, err := c.VPCs(ctx, other.ID, []string{mine[0].ID, mine[0].ID}); return err }, "", ""},
		{"another account's vpc", func() error { _, err := c.VPCs(ctx, other.ID, []string{theirs[0].ID}); return err },
			"InvalidVpcID.NotFound", "The vpc ID '" + theirs[0].ID + "' does not exist"},
		{"two unknown vpcs", func() error {
			_, err := c.VPCs(ctx, other.ID, []string{"vpc-1", mine[0].ID, "vpc-2"})
			return err
		}, "InvalidVpcID.NotFound", "The vpc IDs 'vpc-1, vpc-2' do not exist"},
		{"own subnet", func() error { _, err := c.Subnets(ctx, other.ID, []string{mySubnets[0].ID}); return err }, "", ""},
		{"another account's subnet", func() error { _, err := c.Subnets(ctx, other.ID, []string{theirSubnets[0].ID}); return err },
			"InvalidSubnetID.NotFound", "The subnet ID '" + theirSubnets[0].ID + "' does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := awsCode(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
			if tc.message != "" && !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("message %q, want %q", err, tc.message)
			}
		})
	}
}

// TestVPCParts: every account's default VPC comes with its own route table,
// internet gateway, network ACL and DHCP options, each found by its id and
// by no other account; the ids stay the same when the cloud restarts.
func TestVPCParts(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	c, st, accounts := newTestCloud(t, cfg, AdminAccount, "alice")
	admin, alice := accounts[0].ID, accounts[1].ID
	mine, err := c.VPCs(ctx, alice, nil)
	if err != nil || len(mine) != 1 {
		t.Fatal(mine, err)
	}
	v := mine[0]
	for prefix, id := range map[string]string{"rtb-": v.RouteTableID, "rtbassoc-": v.RouteTableAssociationID,
		"igw-": v.InternetGatewayID, "acl-": v.NetworkACLID, "dopt-": v.DHCPOptionsID} {
		if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+17 {
			t.Errorf("part id %q, want %s and 17 hex digits", id, prefix)
		}
	}
	if !v.EnableDNSSupport || !v.EnableDNSHostnames || v.EnableNetworkAddressUsageMetrics {
		t.Errorf("default vpc attributes %+v, want DNS support and hostnames on, metrics off", v.VPCAttributes)
	}
	subnets, err := c.Subnets(ctx, alice, nil)
	if err != nil || len(subnets) != 1 || !strings.HasPrefix(subnets[0].NetworkACLAssociationID, "aclassoc-") {
		t.Fatalf("subnets %+v, %v", subnets, err)
	}
	theirs, err := c.VPCs(ctx, admin, nil)
	if err != nil || len(theirs) != 1 || theirs[0].VPCParts == v.VPCParts {
		t.Fatalf("admin's vpc %+v shares alice's parts, %v", theirs, err)
	}

	for _, tc := range []struct {
		name string
		find func(ctx context.Context, accountID string, ids []string) ([]store.VPC, error)
		mine string
		code string
	}{
		{"route table", c.RouteTables, v.RouteTableID, "InvalidRouteTableID.NotFound"},
		{"internet gateway", c.InternetGateways, v.InternetGatewayID, "InvalidInternetGatewayID.NotFound"},
		{"network acl", c.NetworkACLs, v.NetworkACLID, "InvalidNetworkAclID.NotFound"},
		{"dhcp options", c.DHCPOptions, v.DHCPOptionsID, "InvalidDhcpOptionID.NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.find(ctx, alice, []string{tc.mine})
			if err != nil || len(got) != 1 || got[0].ID != v.ID {
				t.Fatalf("by id: %+v, %v", got, err)
			}
			if got, err := tc.find(ctx, alice, nil); err != nil || len(got) != 1 {
				t.Fatalf("all: %+v, %v", got, err)
			}
			_, err = tc.find(ctx, admin, []string{tc.mine})
			wantCode(t, "another account's id", err, tc.code)
		})
	}

	// A restart over the same store finds the same parts.
	again, err := New(ctx, cfg, st, c.log)
	if err != nil {
		t.Fatal(err)
	}
	after, err := again.VPCs(ctx, alice, nil)
	if err != nil || len(after) != 1 || after[0].VPCParts != v.VPCParts {
		t.Fatalf("after restart %+v, want parts %+v (%v)", after, v.VPCParts, err)
	}
}

func TestModifyVPCAttribute(t *testing.T) {
	ctx := context.Background()
	c, _, accounts := newTestCloud(t, nil, AdminAccount, "alice")
	admin, alice := accounts[0].ID, accounts[1].ID
	mine, err := c.VPCs(ctx, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := mine[0].ID
	if err := c.ModifyVPCAttribute(ctx, alice, id, store.VPCAttrEnableDNSHostnames, false); err != nil {
		t.Fatal(err)
	}
	if err := c.ModifyVPCAttribute(ctx, alice, id, store.VPCAttrEnableNetworkAddressUsageMetrics, true); err != nil {
		t.Fatal(err)
	}
	got, err := c.VPCs(ctx, alice, []string{id})
	if err != nil || got[0].VPCAttributes != (store.VPCAttributes{EnableDNSSupport: true, EnableNetworkAddressUsageMetrics: true}) {
		t.Fatalf("attributes %+v, %v", got, err)
	}
	wantCode(t, "another account's vpc", c.ModifyVPCAttribute(ctx, admin, id, store.VPCAttrEnableDNSSupport, false), "InvalidVpcID.NotFound")
	wantCode(t, "unknown vpc", c.ModifyVPCAttribute(ctx, alice, "vpc-0123456789abcdef0", store.VPCAttrEnableDNSSupport, false), "InvalidVpcID.NotFound")
	if got, _ := c.VPCs(ctx, alice, []string{id}); !got[0].EnableDNSSupport {
		t.Fatal("a refused change changed the vpc")
	}
}
