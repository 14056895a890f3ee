package clc

import (
	"context"
	"strings"
	"testing"
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
