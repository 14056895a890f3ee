package store

// schemaVPCParts gives every VPC what AWS's default VPC comes with and
// clients read: its DNS attributes (ModifyVpcAttribute changes them) and the
// ids of its main route table and that table's main association, its
// internet gateway, default network ACL and DHCP options set; and every
// subnet the id of its association with that ACL. VPCs made before this
// version get fresh ids here, of the form ids.New makes, so that they stay
// the same from then on.
var schemaVPCParts = []string{
	`ALTER TABLE vpcs ADD COLUMN enable_dns_support INTEGER NOT NULL DEFAULT 1`,
	`ALTER TABLE vpcs ADD COLUMN enable_dns_hostnames INTEGER NOT NULL DEFAULT 1`,
	`ALTER TABLE vpcs ADD COLUMN enable_network_address_usage_metrics INTEGER NOT NULL DEFAULT 0`,
	`ALTER TABLE vpcs ADD COLUMN route_table_id TEXT NOT NULL DEFAULT ''`,                // rtb-...
	`ALTER TABLE vpcs ADD COLUMN route_table_association_id TEXT NOT NULL DEFAULT ''`,    // rtbassoc-... (main)
	`ALTER TABLE vpcs ADD COLUMN internet_gateway_id TEXT NOT NULL DEFAULT ''`,           // igw-...
	`ALTER TABLE vpcs ADD COLUMN network_acl_id TEXT NOT NULL DEFAULT ''`,                // acl-...
	`ALTER TABLE vpcs ADD COLUMN dhcp_options_id TEXT NOT NULL DEFAULT ''`,               // dopt-...
	`ALTER TABLE subnets ADD COLUMN network_acl_association_id TEXT NOT NULL DEFAULT ''`, // aclassoc-...
	`UPDATE vpcs SET
		route_table_id = 'rtb-' || substr(lower(hex(randomblob(9))), 1, 17),
		route_table_association_id = 'rtbassoc-' || substr(lower(hex(randomblob(9))), 1, 17),
		internet_gateway_id = 'igw-' || substr(lower(hex(randomblob(9))), 1, 17),
		network_acl_id = 'acl-' || substr(lower(hex(randomblob(9))), 1, 17),
		dhcp_options_id = 'dopt-' || substr(lower(hex(randomblob(9))), 1, 17)`,
	`UPDATE subnets SET network_acl_association_id = 'aclassoc-' || substr(lower(hex(randomblob(9))), 1, 17)`,
}
