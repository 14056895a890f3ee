package store

// schemaVolumes holds the cloud controller's EBS records (owned by the clc
// role): volumes, their attachment to an instance, snapshots and who may
// make volumes of them. The storage controller keeps the bytes and its own
// tables (sc_*); these rows are what EC2 shows.
//
// Every change is written here before the call that carries it out (the
// storage controller's, the cluster's), so the cloud controller's loop can
// finish or undo what a crash interrupted: a volume "creating" or
// "deleting", an attachment "attaching" or "detaching", a snapshot
// "pending" or "deleting" are all driven again until they end.
var schemaVolumes = []string{
	`CREATE TABLE volumes (
		id            TEXT PRIMARY KEY,            -- vol-...
		account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		zone          TEXT NOT NULL,
		size_gib      INTEGER NOT NULL,
		volume_type   TEXT NOT NULL,               -- standard | gp2 | gp3 | io1 | io2 | st1 | sc1
		iops          INTEGER NOT NULL DEFAULT 0,
		throughput    INTEGER NOT NULL DEFAULT 0,
		snapshot_id   TEXT NOT NULL DEFAULT '',
		state         TEXT NOT NULL,               -- creating | available | deleting | error (in-use: an attachment row)
		client_token  TEXT NOT NULL DEFAULT '',
		error         TEXT NOT NULL DEFAULT '',
		created_ms    INTEGER NOT NULL,
		-- the last ModifyVolume (mod_state '' when none)
		mod_state         TEXT NOT NULL DEFAULT '', -- modifying | optimizing | completed | failed
		mod_message       TEXT NOT NULL DEFAULT '',
		mod_orig_size     INTEGER NOT NULL DEFAULT 0,
		mod_orig_type     TEXT NOT NULL DEFAULT '',
		mod_orig_iops     INTEGER NOT NULL DEFAULT 0,
		mod_orig_tput     INTEGER NOT NULL DEFAULT 0,
		mod_target_size   INTEGER NOT NULL DEFAULT 0,
		mod_target_type   TEXT NOT NULL DEFAULT '',
		mod_target_iops   INTEGER NOT NULL DEFAULT 0,
		mod_target_tput   INTEGER NOT NULL DEFAULT 0,
		mod_start_ms      INTEGER NOT NULL DEFAULT 0,
		mod_end_ms        INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX volumes_account ON volumes(account_id)`,
	`CREATE INDEX volumes_zone_state ON volumes(zone, state)`,
	`CREATE UNIQUE INDEX volumes_client_token ON volumes(account_id, client_token) WHERE client_token != ''`,
	// One live attachment per volume (no multi-attach); one volume per
	// device name of an instance.
	`CREATE TABLE volume_attachments (
		volume_id     TEXT PRIMARY KEY REFERENCES volumes(id) ON DELETE CASCADE,
		instance_id   TEXT NOT NULL,
		device        TEXT NOT NULL,               -- as requested (/dev/sdf)
		slot          TEXT NOT NULL,               -- the device's letter(s): /dev/sdf and /dev/xvdf are one slot
		state         TEXT NOT NULL,               -- attaching | attached | detaching
		attach_ms     INTEGER NOT NULL,
		delete_on_termination INTEGER NOT NULL DEFAULT 0,
		export        TEXT NOT NULL DEFAULT '',    -- the storage controller's export name, once exported
		force         INTEGER NOT NULL DEFAULT 0,  -- a forced detach
		at_boot       INTEGER NOT NULL DEFAULT 0,  -- present at launch or the last start (metadata ebsN)
		boot_index    INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE UNIQUE INDEX volume_attachments_slot ON volume_attachments(instance_id, slot)`,
	`CREATE TABLE snapshots (
		id            TEXT PRIMARY KEY,            -- snap-...
		account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		zone          TEXT NOT NULL,               -- the storage controller that holds it
		volume_id     TEXT NOT NULL DEFAULT '',
		volume_size_gib INTEGER NOT NULL,
		source_id     TEXT NOT NULL DEFAULT '',    -- CopySnapshot's source
		state         TEXT NOT NULL,               -- pending | completed | error | deleting
		progress      INTEGER NOT NULL DEFAULT 0,
		description   TEXT NOT NULL DEFAULT '',
		error         TEXT NOT NULL DEFAULT '',
		public        INTEGER NOT NULL DEFAULT 0,  -- createVolumePermission group all
		start_ms      INTEGER NOT NULL,
		completed_ms  INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX snapshots_account ON snapshots(account_id)`,
	`CREATE INDEX snapshots_state ON snapshots(state)`,
	`CREATE TABLE snapshot_permissions (
		snapshot_id   TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
		account_id    TEXT NOT NULL,               -- who may make volumes of it
		PRIMARY KEY (snapshot_id, account_id)
	)`,
}
