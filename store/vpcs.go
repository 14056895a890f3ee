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
	// The parts every VPC comes with (VPCParts).
	TypeRouteTable      = "route-table"
	TypeInternetGateway = "internet-gateway"
	TypeNetworkACL      = "network-acl"
	TypeDHCPOptions     = "dhcp-options"
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
	VPCAttributes
	VPCParts
	// PartTags are the tags of the VPC's parts, by the part's id.
	PartTags map[string][]Tag
}

// VPCAttributes are the VPC's settings that DescribeVpcAttribute reads and
// ModifyVpcAttribute changes.
type VPCAttributes struct {
	EnableDNSSupport                 bool
	EnableDNSHostnames               bool
	EnableNetworkAddressUsageMetrics bool
}

// VPCParts are the ids of what comes with a VPC: its main route table and
// that table's main association, its internet gateway, its default network
// ACL and its DHCP options set. Made with the VPC, they never change.
type VPCParts struct {
	RouteTableID            string
	RouteTableAssociationID string
	InternetGatewayID       string
	NetworkACLID            string
	DHCPOptionsID           string
}

// VPC attribute names, as the API's VpcAttributeName spells them.
const (
	VPCAttrEnableDNSSupport                 = "enableDnsSupport"
	VPCAttrEnableDNSHostnames               = "enableDnsHostnames"
	VPCAttrEnableNetworkAddressUsageMetrics = "enableNetworkAddressUsageMetrics"
)

// vpcAttrColumns maps each attribute name to its column: SetVPCAttribute
// builds its statement from this table only, never from the caller's text.
var vpcAttrColumns = map[string]string{
	VPCAttrEnableDNSSupport:                 "enable_dns_support",
	VPCAttrEnableDNSHostnames:               "enable_dns_hostnames",
	VPCAttrEnableNetworkAddressUsageMetrics: "enable_network_address_usage_metrics",
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
	// NetworkACLAssociationID is the id of the subnet's association with
	// its VPC's default network ACL.
	NetworkACLAssociationID string
}

// CreateVPC inserts a VPC with its subnets (and their tags) at once.
func (s *Store) CreateVPC(ctx context.Context, v VPC, subnets []Subnet) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		ts := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO vpcs (id, account_id, cidr, is_default, created_ms,
			enable_dns_support, enable_dns_hostnames, enable_network_address_usage_metrics,
			route_table_id, route_table_association_id, internet_gateway_id, network_acl_id, dhcp_options_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.AccountID, v.CIDR, v.IsDefault, ts,
			v.EnableDNSSupport, v.EnableDNSHostnames, v.EnableNetworkAddressUsageMetrics,
			v.RouteTableID, v.RouteTableAssociationID, v.InternetGatewayID, v.NetworkACLID, v.DHCPOptionsID); err != nil {
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
	if _, err := q.ExecContext(ctx, `INSERT INTO subnets (id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms, network_acl_association_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, sn.ID, sn.AccountID, sn.VPCID, sn.Zone, sn.CIDR, sn.DefaultForAZ, sn.MapPublicIP, ts, sn.NetworkACLAssociationID); err != nil {
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
	partTags := map[string][]Tag{}
	for _, typ := range []string{TypeRouteTable, TypeInternetGateway, TypeNetworkACL, TypeDHCPOptions} {
		byID, err := tagsByResource(ctx, s.r, accountID, typ)
		if err != nil {
			return nil, err
		}
		for id, t := range byID {
			partTags[id] = t
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+vpcColumns+` FROM vpcs WHERE account_id = ? ORDER BY created_ms, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: vpcs: %w", err)
	}
	defer rows.Close()
	var out []VPC
	for rows.Next() {
		v, err := scanVPC(rows)
		if err != nil {
			return nil, err
		}
		v.Tags = tags[v.ID]
		for _, id := range []string{v.RouteTableID, v.InternetGatewayID, v.NetworkACLID, v.DHCPOptionsID} {
			if t, ok := partTags[id]; ok {
				if v.PartTags == nil {
					v.PartTags = map[string][]Tag{}
				}
				v.PartTags[id] = t
			}
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// DefaultVPC returns the account's default VPC (ErrNotFound before it is made).
func (s *Store) DefaultVPC(ctx context.Context, accountID string) (VPC, error) {
	v, err := scanVPC(s.r.QueryRowContext(ctx, `SELECT `+vpcColumns+` FROM vpcs WHERE account_id = ? AND is_default = 1`, accountID))
	return v, notFound(err, "default vpc of "+accountID)
}

const vpcColumns = `id, account_id, cidr, is_default, created_ms,
	enable_dns_support, enable_dns_hostnames, enable_network_address_usage_metrics,
	route_table_id, route_table_association_id, internet_gateway_id, network_acl_id, dhcp_options_id`

func scanVPC(r interface{ Scan(...any) error }) (VPC, error) {
	var v VPC
	err := r.Scan(&v.ID, &v.AccountID, &v.CIDR, &v.IsDefault, &v.CreatedMS,
		&v.EnableDNSSupport, &v.EnableDNSHostnames, &v.EnableNetworkAddressUsageMetrics,
		&v.RouteTableID, &v.RouteTableAssociationID, &v.InternetGatewayID, &v.NetworkACLID, &v.DHCPOptionsID)
	return v, err
}

// SetVPCAttribute sets one of the VPC's attributes (VPCAttr...). A VPC the
// account does not have is ErrNotFound; an unknown name is an error.
func (s *Store) SetVPCAttribute(ctx context.Context, accountID, vpcID, name string, value bool) error {
	col, ok := vpcAttrColumns[name]
	if !ok {
		return fmt.Errorf("store: no vpc attribute %q", name)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE vpcs SET `+col+` = ? WHERE id = ? AND account_id = ?`, value, vpcID, accountID)
	if err != nil {
		return fmt.Errorf("store: vpc %s %s: %w", vpcID, name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: vpc %s %s: %w", vpcID, name, err)
	} else if n == 0 {
		return fmt.Errorf("store: vpc %s of %s: %w", vpcID, accountID, ErrNotFound)
	}
	return nil
}

// Subnets lists an account's subnets with their tags, oldest first.
func (s *Store) Subnets(ctx context.Context, accountID string) ([]Subnet, error) {
	tags, err := tagsByResource(ctx, s.r, accountID, TypeSubnet)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms, network_acl_association_id
		FROM subnets WHERE account_id = ? ORDER BY created_ms, id`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: subnets: %w", err)
	}
	defer rows.Close()
	var out []Subnet
	for rows.Next() {
		var sn Subnet
		if err := rows.Scan(&sn.ID, &sn.AccountID, &sn.VPCID, &sn.Zone, &sn.CIDR, &sn.DefaultForAZ, &sn.MapPublicIP, &sn.CreatedMS, &sn.NetworkACLAssociationID); err != nil {
			return nil, err
		}
		sn.Tags = tags[sn.ID]
		out = append(out, sn)
	}
	return out, rows.Err()
}

// ResizeDefaultSubnet gives a zone's default subnet a new CIDR while no
// live instance is in it (a zone added to the cloud splits the private
// space the zones before it had); resized is false, and nothing changes,
// when one is.
func (s *Store) ResizeDefaultSubnet(ctx context.Context, id, cidr string) (resized bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE subnets SET cidr = ? WHERE id = ? AND default_for_az = 1
			AND NOT EXISTS (SELECT 1 FROM instances WHERE subnet_id = ? AND state != ?)`, cidr, id, id, InstanceTerminated)
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		resized = n > 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: resize subnet %s: %w", id, err)
	}
	return resized, nil
}

// DefaultSubnetCIDRs are the distinct CIDRs of a zone's default subnets
// across accounts.
func (s *Store) DefaultSubnetCIDRs(ctx context.Context, zone string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT cidr FROM subnets WHERE zone = ? AND default_for_az = 1 ORDER BY cidr`, zone)
	if err != nil {
		return nil, fmt.Errorf("store: default subnets of %s: %w", zone, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("store: default subnets of %s: %w", zone, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
