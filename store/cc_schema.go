package store

// schemaCC holds what a cluster controller must not forget across a
// restart (owned by the cc role):
//
//   - cc_networks: the zone's desired network as the cloud controller last
//     handed it (SetNetwork), so that a restarted CC re-applies it before the
//     CLC speaks again. The document is the cluster API's JSON; the store
//     does not look inside.
//   - cc_placements: which node the CC started each instance on, until that
//     node's polls no longer list it. It routes terminate, reboot and console
//     requests to a node that is down or not yet polled, and lets a restarted
//     CC account for instances started just before it stopped.
//
// Node status (up, last seen, free resources) is not stored: it is whatever
// the last poll said, and a restarted CC polls again.
var schemaCC = []string{
	`CREATE TABLE cc_networks (
		zone       TEXT PRIMARY KEY,
		doc        TEXT NOT NULL,             -- JSON of ccapi.Network
		updated_ms INTEGER NOT NULL
	)`,
	`CREATE TABLE cc_placements (
		instance_id TEXT PRIMARY KEY,
		zone        TEXT NOT NULL,
		node        TEXT NOT NULL,            -- the node's name in NODES
		cores       INTEGER NOT NULL,         -- what it holds on the node
		memory_mib  INTEGER NOT NULL,
		disk_gib    INTEGER NOT NULL,
		created_ms  INTEGER NOT NULL
	)`,
	`CREATE INDEX cc_placements_zone ON cc_placements(zone)`,
}
