package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the schema's whole history: migration i brings the schema
// from version i to i+1. Append only; never edit a migration that has shipped
// (a database in the field has already run it). Each one is tested by
// migrating a database that holds data (migrations_test.go).
var migrations = []func(ctx context.Context, tx *sql.Tx) error{
	execAll(schemaV1...),
	execAll(schemaV2...),
	execAll(schemaWalrus...),
	execAll(schemaImages...),
	execAll(schemaNC...),
	execAll(schemaCC...),
	execAll(schemaInstances...),
	execAll(schemaImagesManifest...),
	execAll(schemaWalrusParts...),
	execAll(schemaVPCParts...),
	execAll(schemaCCNodes...),
	execAll(schemaJoin...),
	execAll(schemaClusters...),
	execAll(schemaInstanceAddressLater...),
	execAll(schemaSegments...),
	execAll(schemaAddresses...),
	execAll(schemaAddressDomainName...),
	execAll(schemaSC...),
	execAll(schemaInstanceRootDevice...),
	execAll(schemaSCSnap...),
	execAll(schemaVolumes...),
	execAll(schemaNCVolumes...),
	execAll(schemaLaunchVolumes...),
}

// schemaV1 is the foundation: accounts and credentials (clc), key pairs,
// the default VPC and its subnets, security groups and their rules, tags, and
// VM types.
var schemaV1 = []string{
	`CREATE TABLE accounts (
		id         TEXT PRIMARY KEY,          -- 12 digits, as AWS account ids
		name       TEXT NOT NULL UNIQUE,
		created_ms INTEGER NOT NULL
	)`,
	`CREATE TABLE access_keys (
		id         TEXT PRIMARY KEY,          -- AKIA...
		account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		user_name  TEXT NOT NULL,
		secret     TEXT NOT NULL,             -- needed in clear to verify HMAC signatures
		active     INTEGER NOT NULL DEFAULT 1,
		created_ms INTEGER NOT NULL
	)`,
	`CREATE INDEX access_keys_account ON access_keys(account_id)`,
	`CREATE TABLE user_certs (
		fingerprint TEXT PRIMARY KEY,         -- sha256 hex of the DER
		account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		user_name   TEXT NOT NULL,
		cert_pem    TEXT NOT NULL,
		active      INTEGER NOT NULL DEFAULT 1,
		created_ms  INTEGER NOT NULL
	)`,
	`CREATE INDEX user_certs_account ON user_certs(account_id)`,
	`CREATE TABLE key_pairs (
		id          TEXT PRIMARY KEY,         -- key-...
		account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		name        TEXT NOT NULL,
		key_type    TEXT NOT NULL,            -- rsa | ed25519
		fingerprint TEXT NOT NULL,
		public_key  TEXT NOT NULL,            -- OpenSSH authorized_keys line
		created_ms  INTEGER NOT NULL,
		UNIQUE (account_id, name)
	)`,
	`CREATE TABLE vpcs (
		id          TEXT PRIMARY KEY,         -- vpc-...
		account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		cidr        TEXT NOT NULL,
		is_default  INTEGER NOT NULL,
		created_ms  INTEGER NOT NULL
	)`,
	`CREATE INDEX vpcs_account ON vpcs(account_id)`,
	`CREATE TABLE subnets (
		id             TEXT PRIMARY KEY,      -- subnet-...
		account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		vpc_id         TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,
		zone           TEXT NOT NULL,
		cidr           TEXT NOT NULL,
		default_for_az INTEGER NOT NULL,
		map_public_ip  INTEGER NOT NULL,
		created_ms     INTEGER NOT NULL
	)`,
	`CREATE INDEX subnets_account ON subnets(account_id)`,
	`CREATE TABLE security_groups (
		id          TEXT PRIMARY KEY,         -- sg-...
		account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		vpc_id      TEXT NOT NULL REFERENCES vpcs(id),
		name        TEXT NOT NULL,
		description TEXT NOT NULL,
		created_ms  INTEGER NOT NULL,
		UNIQUE (vpc_id, name)
	)`,
	`CREATE INDEX security_groups_account ON security_groups(account_id)`,
	// One row per (direction, protocol, ports, one peer): AWS's
	// SecurityGroupRule. The API groups rows back into IpPermissions.
	`CREATE TABLE security_group_rules (
		id             TEXT PRIMARY KEY,      -- sgr-...
		group_id       TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
		egress         INTEGER NOT NULL,
		protocol       TEXT NOT NULL,         -- "-1", "tcp", "udp", "icmp", "icmpv6" or a number
		from_port      INTEGER NOT NULL,      -- -1 when the protocol has no ports
		to_port        INTEGER NOT NULL,
		cidr_ipv4      TEXT NOT NULL DEFAULT '',
		cidr_ipv6      TEXT NOT NULL DEFAULT '',
		peer_group_id  TEXT NOT NULL DEFAULT '',   -- referenced group (no FK: may belong to another account)
		peer_owner_id  TEXT NOT NULL DEFAULT '',
		prefix_list_id TEXT NOT NULL DEFAULT '',
		description    TEXT NOT NULL DEFAULT '',
		created_ms     INTEGER NOT NULL,
		UNIQUE (group_id, egress, protocol, from_port, to_port, cidr_ipv4, cidr_ipv6, peer_group_id, prefix_list_id)
	)`,
	`CREATE INDEX security_group_rules_peer ON security_group_rules(peer_group_id)`,
	// Tags of any resource. resource_type is the API's ResourceType
	// ("security-group", "key-pair", ...) so DescribeTags can answer it.
	`CREATE TABLE tags (
		account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		resource_id   TEXT NOT NULL,
		resource_type TEXT NOT NULL,
		key           TEXT NOT NULL,
		value         TEXT NOT NULL,
		PRIMARY KEY (resource_id, key)
	)`,
	`CREATE INDEX tags_account ON tags(account_id)`,
	`CREATE TABLE vm_types (
		name      TEXT PRIMARY KEY,
		cores     INTEGER NOT NULL,
		memory_mb INTEGER NOT NULL,
		disk_gb   INTEGER NOT NULL
	)`,
	`INSERT INTO vm_types (name, cores, memory_mb, disk_gb) VALUES
		('m1.small', 1, 128, 2),
		('c1.medium', 1, 256, 5),
		('m1.large', 2, 512, 10),
		('m1.xlarge', 2, 1024, 20),
		('c1.xlarge', 4, 2048, 20)`,
}

// schemaV2 gives VM types an explicit order from smallest to largest: the
// rule that a larger type is never smaller than a smaller one needs to know
// which is which, and sizes alone cannot say (two types may be equal).
var schemaV2 = []string{
	`ALTER TABLE vm_types ADD COLUMN position INTEGER NOT NULL DEFAULT 0`,
	`UPDATE vm_types SET position = CASE name
		WHEN 'm1.small' THEN 1
		WHEN 'c1.medium' THEN 2
		WHEN 'm1.large' THEN 3
		WHEN 'm1.xlarge' THEN 4
		WHEN 'c1.xlarge' THEN 5
		ELSE 100 END`,
}

func execAll(stmts ...string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%.60s: %w", q, err)
			}
		}
		return nil
	}
}

// SchemaVersion is the version this binary brings a database to.
func SchemaVersion() int { return len(migrations) }

// migrate applies the migrations the database has not run yet, each in its
// own transaction together with the version bump, so a crash leaves the
// database at a whole version.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, len(migrations))
}

func (s *Store) migrateTo(ctx context.Context, target int) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: schema_version: %w", err)
	}
	for {
		var done bool
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var v int
			err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
			switch {
			case err == sql.ErrNoRows:
				if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
					return err
				}
			case err != nil:
				return err
			}
			if v > len(migrations) {
				return fmt.Errorf("database schema version %d is newer than this binary's %d: refusing to run an older euca on it", v, len(migrations))
			}
			if v >= target {
				done = true
				return nil
			}
			if err := migrations[v](ctx, tx); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
			_, err = tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}
