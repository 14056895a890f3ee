package store

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"testing"
)

// versionAddingColumn is the schema version whose migration added column
// to table.
func versionAddingColumn(t *testing.T, table, column string) int {
	t.Helper()
	for v := 1; v <= SchemaVersion(); v++ {
		s := openAtVersion(t, v)
		var n int
		if err := s.r.QueryRowContext(context.Background(), `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return v
		}
	}
	t.Fatalf("no version adds %s.%s", table, column)
	return 0
}

// TestVPCPartsMigration: a VPC and subnet made before VPCs had parts get
// ids of each kind, distinct per VPC, and AWS's default attributes.
func TestVPCPartsMigration(t *testing.T) {
	ctx := context.Background()
	v := versionAddingColumn(t, "vpcs", "route_table_id")
	s := openAtVersion(t, v-1)
	if err := seed(ctx, s,
		`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1), ('444455556666', 'alice', 2)`,
		`INSERT INTO vpcs (id, account_id, cidr, is_default, created_ms) VALUES
			('vpc-0123456789abcdef0', '111122223333', '172.31.0.0/16', 1, 4),
			('vpc-0123456789abcdef1', '444455556666', '172.31.0.0/16', 1, 5)`,
		`INSERT INTO subnets (id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms) VALUES
			('subnet-0123456789abcdef0', '111122223333', 'vpc-0123456789abcdef0', 'us-east-1a', '172.31.0.0/16', 1, 1, 5)`,
	); err != nil {
		t.Fatal(err)
	}
	if err := s.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.DefaultVPC(ctx, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.DefaultVPC(ctx, "444455556666")
	if err != nil {
		t.Fatal(err)
	}
	for prefix, ids := range map[string][2]string{
		"rtb": {a.RouteTableID, b.RouteTableID}, "rtbassoc": {a.RouteTableAssociationID, b.RouteTableAssociationID},
		"igw": {a.InternetGatewayID, b.InternetGatewayID}, "acl": {a.NetworkACLID, b.NetworkACLID}, "dopt": {a.DHCPOptionsID, b.DHCPOptionsID},
	} {
		re := regexp.MustCompile(`^` + prefix + `-[0-9a-f]{17}$`)
		if !re.MatchString(ids[0]) || !re.MatchString(ids[1]) || ids[0] == ids[1] {
			t.Errorf("%s ids after migration: %q", prefix, ids)
		}
	}
	if a.VPCAttributes != (VPCAttributes{EnableDNSSupport: true, EnableDNSHostnames: true}) {
		t.Errorf("attributes after migration %+v", a.VPCAttributes)
	}
	subnets, err := s.Subnets(ctx, "111122223333")
	if err != nil || len(subnets) != 1 || !regexp.MustCompile(`^aclassoc-[0-9a-f]{17}$`).MatchString(subnets[0].NetworkACLAssociationID) {
		t.Fatalf("subnets after migration %+v, %v", subnets, err)
	}
}

// seed runs stmts in one transaction.
func seed(ctx context.Context, s *Store, stmts ...string) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return execAll(stmts...)(ctx, tx) })
}

func TestSetVPCAttribute(t *testing.T) {
	ctx := context.Background()
	s := openAtVersion(t, SchemaVersion())
	if err := seed(ctx, s, `INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1)`); err != nil {
		t.Fatal(err)
	}
	v := VPC{ID: "vpc-0123456789abcdef0", AccountID: "111122223333", CIDR: "172.31.0.0/16", IsDefault: true,
		VPCAttributes: VPCAttributes{EnableDNSSupport: true},
		VPCParts:      VPCParts{RouteTableID: "rtb-1", RouteTableAssociationID: "rtbassoc-1", InternetGatewayID: "igw-1", NetworkACLID: "acl-1", DHCPOptionsID: "dopt-1"}}
	if err := s.CreateVPC(ctx, v, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVPCAttribute(ctx, v.AccountID, v.ID, VPCAttrEnableDNSHostnames, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVPCAttribute(ctx, v.AccountID, v.ID, VPCAttrEnableDNSSupport, false); err != nil {
		t.Fatal(err)
	}
	got, err := s.DefaultVPC(ctx, v.AccountID)
	if err != nil || got.VPCAttributes != (VPCAttributes{EnableDNSHostnames: true}) || got.VPCParts != v.VPCParts {
		t.Fatalf("after set: %+v, %v", got, err)
	}
	if byID, err := s.VPCByID(ctx, v.ID); err != nil || byID.VPCAttributes != got.VPCAttributes || byID.VPCParts != v.VPCParts {
		t.Fatalf("by id: %+v, %v", byID, err)
	}
	if err := s.SetVPCAttribute(ctx, "444455556666", v.ID, VPCAttrEnableDNSSupport, true); !errors.Is(err, ErrNotFound) {
		t.Errorf("another account's vpc: %v, want ErrNotFound", err)
	}
	if err := s.SetVPCAttribute(ctx, v.AccountID, v.ID, "enable_dns_support = 1, cidr", true); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("unknown attribute: %v", err)
	}
}
