package store

// schemaInstances holds the cloud controller's instances: reservations (one
// per RunInstances, with the client token that makes a retried launch
// answer the same reservation), instances with their place on the network
// (zone, subnet, private address, MAC) and the options they were launched
// with, and the security groups each instance is in.
//
// A private address is unique in its zone among the instances that are not
// terminated: every account's default VPC spans the cloud's one private
// space, so the zone's network, not the subnet id, is what must not hold an
// address twice. A terminated instance keeps its row (EC2 shows it for an
// hour) but no longer holds its address.
//
// instance_groups has no foreign key to security_groups: a terminated
// instance still names the groups it was in after they are deleted, and the
// name is kept for that reason.
var schemaInstances = []string{
	`CREATE TABLE reservations (
		id           TEXT PRIMARY KEY,        -- r-...
		account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		client_token TEXT NOT NULL DEFAULT '',
		request_hash TEXT NOT NULL DEFAULT '', -- of the launch parameters, for ClientToken idempotency
		created_ms   INTEGER NOT NULL
	)`,
	`CREATE UNIQUE INDEX reservations_client_token ON reservations(account_id, client_token) WHERE client_token != ''`,
	`CREATE TABLE instances (
		id                   TEXT PRIMARY KEY,  -- i-...
		reservation_id       TEXT NOT NULL REFERENCES reservations(id) ON DELETE CASCADE,
		account_id           TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		launch_index         INTEGER NOT NULL,
		image_id             TEXT NOT NULL,
		kernel_id            TEXT NOT NULL DEFAULT '',
		ramdisk_id           TEXT NOT NULL DEFAULT '',
		instance_type        TEXT NOT NULL,
		architecture         TEXT NOT NULL DEFAULT '',
		key_name             TEXT NOT NULL DEFAULT '',
		public_key           TEXT NOT NULL DEFAULT '', -- the key as it was at launch: the pair may be deleted since
		zone                 TEXT NOT NULL,
		subnet_id            TEXT NOT NULL,
		vpc_id               TEXT NOT NULL,
		private_ip           TEXT NOT NULL,
		mac                  TEXT NOT NULL,
		public_ip            TEXT NOT NULL DEFAULT '',
		eni_id               TEXT NOT NULL,     -- the primary interface's id, eni-...
		node                 TEXT NOT NULL DEFAULT '', -- where the cluster placed it
		state                TEXT NOT NULL,     -- pending | running | shutting-down | terminated | stopping | stopped
		state_reason_code    TEXT NOT NULL DEFAULT '',
		state_reason_message TEXT NOT NULL DEFAULT '',
		transition_reason    TEXT NOT NULL DEFAULT '',
		user_data            BLOB,              -- decoded; NULL when none was given
		disable_api_termination INTEGER NOT NULL DEFAULT 0,
		disable_api_stop     INTEGER NOT NULL DEFAULT 0,
		ebs_optimized        INTEGER NOT NULL DEFAULT 0,
		monitoring           INTEGER NOT NULL DEFAULT 0,
		hibernation          INTEGER NOT NULL DEFAULT 0,
		source_dest_check    INTEGER NOT NULL DEFAULT 1,
		shutdown_behavior    TEXT NOT NULL DEFAULT 'stop',
		cpu_credits          TEXT NOT NULL DEFAULT 'standard',
		http_tokens          TEXT NOT NULL DEFAULT 'optional',
		http_endpoint        TEXT NOT NULL DEFAULT 'enabled',
		http_hop_limit       INTEGER NOT NULL DEFAULT 1,
		created_ms           INTEGER NOT NULL,  -- RunInstances accepted it (pendingTime)
		launched_ms          INTEGER NOT NULL DEFAULT 0, -- the node reported it running
		updated_ms           INTEGER NOT NULL   -- last state change
	)`,
	`CREATE UNIQUE INDEX instances_address ON instances(zone, private_ip) WHERE state != 'terminated'`,
	`CREATE INDEX instances_account ON instances(account_id)`,
	`CREATE INDEX instances_reservation ON instances(reservation_id)`,
	`CREATE INDEX instances_state ON instances(state, updated_ms)`,
	`CREATE TABLE instance_groups (
		instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
		group_id    TEXT NOT NULL,
		group_name  TEXT NOT NULL,
		position    INTEGER NOT NULL,
		PRIMARY KEY (instance_id, group_id)
	)`,
	`CREATE INDEX instance_groups_group ON instance_groups(group_id)`,
}

// schemaInstanceAddressLater lets an instance be recorded without a private
// address: in SYSTEM mode an outside DHCP server gives it one, which the
// node learns from the guest's traffic (SetInstanceAddress). The empty
// address is no address, so any number of instances may hold it.
var schemaInstanceAddressLater = []string{
	`DROP INDEX instances_address`,
	`CREATE UNIQUE INDEX instances_address ON instances(zone, private_ip) WHERE state != 'terminated' AND private_ip != ''`,
}
