package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Resource types as the API's ResourceType names them (tags use them).
const (
	TypeVPC           = "vpc"
	TypeSubnet        = "subnet"
	TypeSecurityGroup = "security-group"
	TypeKeyPair       = "key-pair"
)

// VPC is a virtual network of an account. Every account has a default one
// whose CIDR is the cloud's private space.
type VPC struct {
	ID        string
	AccountID string
	CIDR      string
	IsDefault bool
	CreatedMS int64
	Tags      []Tag
}

// Subnet is a slice of a VPC in one availability zone.
type Subnet struct {
	ID           string
	AccountID    string
	VPCID        string
	Zone         string
	CIDR         string
	DefaultForAZ bool
	MapPublicIP  bool
	CreatedMS    int64
	Tags         []Tag
}

// CreateVPC inserts a VPC with its subnets (and their tags) at once.
func (s *Store) CreateVPC(ctx context.Context, v VPC, subnets []Subnet) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		ts := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO vpcs (id, account_id, cidr, is_default, created_ms) VALUES (?, ?, ?, ?, ?)`,
			v.ID, v.AccountID, v.CIDR, v.IsDefault, ts); err != nil {
			return conflict(err, "vpc "+v.ID)
		}
		if err := putTags(ctx, tx, v.AccountID, v.ID, TypeVPC, v.Tags); err != nil {
			return err
		}
		for _, sn := range subnets {
			if err := insertSubnet(ctx, tx, sn, ts); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateSubnet inserts one subnet (a zone added after the VPC was made).
func (s *Store) CreateSubnet(ctx context.Context, sn Subnet) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return insertSubnet(ctx, tx, sn, now()) })
}

func insertSubnet(ctx context.Context, q queryer, sn Subnet, ts int64) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO subnets (id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sn.ID, sn.AccountID, sn.VPCID, sn.Zone, sn.CIDR, sn.DefaultForAZ, sn.MapPublicIP, ts); err != nil {
		return conflict(err, "subnet "+sn.ID)
	}
	return putTags(ctx, q, sn.AccountID, sn.ID, TypeSubnet, sn.Tags)
}

// VPCs lists an account's VPCs with their tags, oldest first.
func (s *Store) VPCs(ctx context.Context, accountID string) ([]VPC, error) {
	tags, err := tagsByResource(ctx, s.r, accountID, TypeVPC)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, account_id, cidr, is_default, created_ms FROM vpcs WHERE account_id = ? ORDER BY created_ms, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: vpcs: %w", err)
	}
	defer rows.Close()
	var out []VPC
	for rows.Next() {
		var v VPC
		if err := rows.Scan(&v.ID, &v.AccountID, &v.CIDR, &v.IsDefault, &v.CreatedMS); err != nil {
			return nil, err
		}
		v.Tags = tags[v.ID]
		out = append(out, v)
	}
	return out, rows.Err()
}

// DefaultVPC returns the account's default VPC (ErrNotFound before it is made).
func (s *Store) DefaultVPC(ctx context.Context, accountID string) (VPC, error) {
	var v VPC
	err := s.r.QueryRowContext(ctx, `SELECT id, account_id, cidr, is_default, created_ms FROM vpcs WHERE account_id = ? AND is_default = 1`, accountID).
		Scan(&v.ID, &v.AccountID, &v.CIDR, &v.IsDefault, &v.CreatedMS)
	return v, notFound(err, "default vpc of "+accountID)
}

// Subnets lists an account's subnets with their tags, oldest first.
func (s *Store) Subnets(ctx context.Context, accountID string) ([]Subnet, error) {
	tags, err := tagsByResource(ctx, s.r, accountID, TypeSubnet)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms
		FROM subnets WHERE account_id = ? ORDER BY created_ms, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: subnets: %w", err)
	}
	defer rows.Close()
	var out []Subnet
	for rows.Next() {
		var sn Subnet
		if err := rows.Scan(&sn.ID, &sn.AccountID, &sn.VPCID, &sn.Zone, &sn.CIDR, &sn.DefaultForAZ, &sn.MapPublicIP, &sn.CreatedMS); err != nil {
			return nil, err
		}
		sn.Tags = tags[sn.ID]
		out = append(out, sn)
	}
	return out, rows.Err()
}
