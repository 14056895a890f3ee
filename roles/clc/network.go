package clc

import (
	"context"
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
