package clc

import (
	"context"
	"errors"
	"fmt"

	"github.com/euca-cloud/euca/store"
)

// VPCs lists the account's VPCs; with ids, exactly those, in the order
// asked. An id the account does not have (another account's included) is
// InvalidVpcID.NotFound, naming every missing id.
func (c *Cloud) VPCs(ctx context.Context, accountID string, ids []string) ([]store.VPC, error) {
	all, err := c.store.VPCs(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("vpcs: %w", err)
	}
	return byIDsOrAll(all, ids, func(v store.VPC) string { return v.ID }, "InvalidVpcID.NotFound", "vpc")
}

// Subnets lists the account's subnets; with ids, exactly those. An unknown
// id is InvalidSubnetID.NotFound.
func (c *Cloud) Subnets(ctx context.Context, accountID string, ids []string) ([]store.Subnet, error) {
	all, err := c.store.Subnets(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("subnets: %w", err)
	}
	return byIDsOrAll(all, ids, func(s store.Subnet) string { return s.ID }, "InvalidSubnetID.NotFound", "subnet")
}

// The parts every VPC comes with (store.VPCParts) are looked up through
// their VPC: each call lists the VPCs whose part has one of ids (all the
// account's VPCs without ids), failing as EC2 does for an id of no part.

// RouteTables lists the VPCs whose main route table is named in ids. An
// unknown id is InvalidRouteTableID.NotFound.
func (c *Cloud) RouteTables(ctx context.Context, accountID string, ids []string) ([]store.VPC, error) {
	return c.vpcsByPart(ctx, accountID, ids, func(v store.VPC) string { return v.RouteTableID }, "InvalidRouteTableID.NotFound", "routeTable")
}

// InternetGateways lists the VPCs whose internet gateway is named in ids.
// An unknown id is InvalidInternetGatewayID.NotFound.
func (c *Cloud) InternetGateways(ctx context.Context, accountID string, ids []string) ([]store.VPC, error) {
	return c.vpcsByPart(ctx, accountID, ids, func(v store.VPC) string { return v.InternetGatewayID }, "InvalidInternetGatewayID.NotFound", "internetGateway")
}

// NetworkACLs lists the VPCs whose default network ACL is named in ids. An
// unknown id is InvalidNetworkAclID.NotFound.
func (c *Cloud) NetworkACLs(ctx context.Context, accountID string, ids []string) ([]store.VPC, error) {
	return c.vpcsByPart(ctx, accountID, ids, func(v store.VPC) string { return v.NetworkACLID }, "InvalidNetworkAclID.NotFound", "networkAcl")
}

// DHCPOptions lists the VPCs whose DHCP options set is named in ids. An
// unknown id is InvalidDhcpOptionID.NotFound.
func (c *Cloud) DHCPOptions(ctx context.Context, accountID string, ids []string) ([]store.VPC, error) {
	return c.vpcsByPart(ctx, accountID, ids, func(v store.VPC) string { return v.DHCPOptionsID }, "InvalidDhcpOptionID.NotFound", "dhcpOption")
}

func (c *Cloud) vpcsByPart(ctx context.Context, accountID string, ids []string, part func(store.VPC) string, code, noun string) ([]store.VPC, error) {
	all, err := c.store.VPCs(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("vpcs: %w", err)
	}
	return byIDsOrAll(all, ids, part, code, noun)
}

// ModifyVPCAttribute sets one of a VPC's attributes (store.VPCAttr...). A
// VPC the account does not have is InvalidVpcID.NotFound.
func (c *Cloud) ModifyVPCAttribute(ctx context.Context, accountID, vpcID, name string, value bool) error {
	err := c.store.SetVPCAttribute(ctx, accountID, vpcID, name, value)
	if errors.Is(err, store.ErrNotFound) {
		return missingIDsError("InvalidVpcID.NotFound", "vpc", []string{vpcID})
	}
	if err != nil {
		return fmt.Errorf("vpc %s: %w", vpcID, err)
	}
	c.log.Info("vpc attribute changed", "vpc", vpcID, "account", accountID, "attribute", name, "value", value)
	return nil
}

// byIDsOrAll keeps the items whose id is in ids (all of them when ids is
// empty), failing with code when any id matches nothing. A repeated id is
// answered once.
func byIDsOrAll[T any](items []T, ids []string, id func(T) string, code, noun string) ([]T, error) {
	if len(ids) == 0 {
		return items, nil
	}
	byID := make(map[string]T, len(items))
	for _, it := range items {
		byID[id(it)] = it
	}
	var out []T
	var missing []string
	seen := map[string]bool{}
	for _, want := range ids {
		if seen[want] {
			continue
		}
		seen[want] = true
		it, ok := byID[want]
		if !ok {
			missing = append(missing, want)
			continue
		}
		out = append(out, it)
	}
	if len(missing) > 0 {
		return nil, missingIDsError(code, noun, missing)
	}
	return out, nil
}
