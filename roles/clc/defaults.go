package clc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/store"
)

// ensureAccountDefaults gives an account what every AWS account has had
// since 2013 and today's clients assume: a default VPC over the cloud's
// private space, a default subnet in each zone, and a "default" security
// group. Harmless to run twice; it only adds what is missing.
func (c *Cloud) ensureAccountDefaults(ctx context.Context, accountID string) error {
	vpc, err := c.ensureDefaultVPC(ctx, accountID)
	if err != nil {
		return err
	}
	return c.ensureDefaultSecurityGroup(ctx, accountID, vpc.ID)
}

func (c *Cloud) ensureDefaultVPC(ctx context.Context, accountID string) (store.VPC, error) {
	cidr := c.cfg.VNetSubnet.Masked()
	zones := c.Zones()
	vpc, err := c.store.DefaultVPC(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		vpc = store.VPC{ID: ids.New("vpc"), AccountID: accountID, CIDR: cidr.String(), IsDefault: true,
			// AWS's default VPC resolves names and gives instances DNS
			// hostnames; address usage metrics are off until asked for.
			VPCAttributes: store.VPCAttributes{EnableDNSSupport: true, EnableDNSHostnames: true},
			VPCParts:      newVPCParts(),
		}
		var subnets []store.Subnet
		for i, z := range zones {
			subnets = append(subnets, c.defaultSubnet(accountID, vpc.ID, z, cidr, i, len(zones)))
		}
		return vpc, c.store.CreateVPC(ctx, vpc, subnets)
	}
	if err != nil {
		return vpc, err
	}
	// A zone that appeared since the VPC was made gets its subnet now.
	subnets, err := c.store.Subnets(ctx, accountID)
	if err != nil {
		return vpc, err
	}
	have := map[string]store.Subnet{}
	for _, sn := range subnets {
		if sn.VPCID == vpc.ID && sn.DefaultForAZ {
			have[sn.Zone] = sn
		}
	}
	vcidr, err := netip.ParsePrefix(vpc.CIDR)
	if err != nil {
		return vpc, fmt.Errorf("default vpc %s: %w", vpc.ID, err)
	}
	for i, z := range zones {
		if sn, ok := have[z]; ok {
			// The zones changed since it was made: its slice with them,
			// while nothing is in it (zones.go).
			if err := c.resizeDefaultSubnet(ctx, sn, carve(vcidr, i, len(zones))); err != nil {
				return vpc, err
			}
			continue
		}
		if err := c.store.CreateSubnet(ctx, c.defaultSubnet(accountID, vpc.ID, z, vcidr, i, len(zones))); err != nil {
			return vpc, err
		}
	}
	return vpc, nil
}

func (c *Cloud) defaultSubnet(accountID, vpcID, zone string, vpc netip.Prefix, index, zones int) store.Subnet {
	return store.Subnet{
		ID: ids.New("subnet"), AccountID: accountID, VPCID: vpcID, Zone: zone,
		CIDR: carve(vpc, index, zones).String(), DefaultForAZ: true, MapPublicIP: true,
		NetworkACLAssociationID: ids.New("aclassoc"),
	}
}

// newVPCParts names what a new VPC comes with: its main route table (and
// that table's main association), internet gateway, default network ACL and
// DHCP options set.
func newVPCParts() store.VPCParts {
	return store.VPCParts{
		RouteTableID: ids.New("rtb"), RouteTableAssociationID: ids.New("rtbassoc"),
		InternetGatewayID: ids.New("igw"), NetworkACLID: ids.New("acl"), DHCPOptionsID: ids.New("dopt"),
	}
}

// carve returns the index-th of n equal slices of p: one zone gets the whole
// space (the most addresses for a single cluster); more zones split it into
// the next power of two of slices, as AWS cuts its default VPC into /20s.
func carve(p netip.Prefix, index, n int) netip.Prefix {
	bits := 0
	for 1<<bits < n {
		bits++
	}
	size := p.Bits() + bits
	if bits == 0 || size > 28 {
		return p.Masked()
	}
	base := p.Masked().Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(index) << (32 - size)
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(a, size)
}
