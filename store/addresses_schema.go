package store

// schemaAddresses holds the cloud controller's elastic IPs (owned by the clc
// role): the addresses of the VNET_PUBLICIPS pool an account allocated,
// each with its association to one of the account's instances when it has
// one.
//
// An instance's public_ip is the address it answers on from outside,
// whichever kind: an elastic IP associated with it, or one the cloud lent it
// from the pool at launch (map_public_ip says it takes one; AWS's
// auto-assigned public IPv4 address, which is not an allocation). A pool
// address is in use when an allocation holds it or a live instance does, and
// is never in use twice: both indexes below are unique, and every change
// runs in one immediate transaction.
var schemaAddresses = []string{
	`CREATE TABLE addresses (
		allocation_id  TEXT PRIMARY KEY,            -- eipalloc-...
		account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		public_ip      TEXT NOT NULL UNIQUE,
		domain         TEXT NOT NULL,               -- vpc | standard
		association_id TEXT NOT NULL DEFAULT '',    -- eipassoc-...; '' when not associated
		instance_id    TEXT NOT NULL DEFAULT '',
		created_ms     INTEGER NOT NULL
	)`,
	`CREATE INDEX addresses_account ON addresses(account_id)`,
	`CREATE UNIQUE INDEX addresses_instance ON addresses(instance_id) WHERE instance_id != ''`,
	`ALTER TABLE instances ADD COLUMN map_public_ip INTEGER NOT NULL DEFAULT 0`,
	`CREATE UNIQUE INDEX instances_public_ip ON instances(public_ip) WHERE public_ip != '' AND state != 'terminated'`,
}

// schemaAddressDomainName keeps each allocation's reverse DNS name
// (ModifyAddressAttribute's DomainName), empty until the account sets one.
var schemaAddressDomainName = []string{
	`ALTER TABLE addresses ADD COLUMN domain_name TEXT NOT NULL DEFAULT ''`,
}
