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
// A node's status (up, last seen, free resources) is whatever the last poll
// said: a restarted CC polls again, and never reads back the copy it writes
// for `euca node list` (cc_node_status, schemaCCNodes).
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

// schemaCCNodes is a cluster's node registry, as Eucalyptus's CC kept NODES
// (euca_conf --register-nodes wrote it):
//
//   - cc_nodes: the nodes registered in each zone, seeded from NODES when
//     the CC starts and changed at run time by `euca node register` and
//     `euca node deregister`, which write it directly (beside a running
//     CC, which re-reads it at each poll round).
//   - cc_node_status: what the CC's last poll of each node said, for `euca
//     node list` in another process. Written by the CC when it changes
//     (last_seen_ms alone at most every few seconds); deleted with the
//     node's registration.
var schemaCCNodes = []string{
	`CREATE TABLE cc_nodes (
		zone          TEXT NOT NULL,
		host          TEXT NOT NULL,             -- the node's name in its cluster (placements name it)
		port          INTEGER NOT NULL,          -- its NC_PORT
		registered_ms INTEGER NOT NULL,
		PRIMARY KEY (zone, host)
	)`,
	`CREATE TABLE cc_node_status (
		zone         TEXT NOT NULL,
		host         TEXT NOT NULL,
		up           INTEGER NOT NULL,
		cores_free   INTEGER NOT NULL,
		cores_max    INTEGER NOT NULL,
		memory_free  INTEGER NOT NULL,           -- MiB
		memory_max   INTEGER NOT NULL,
		disk_free    INTEGER NOT NULL,           -- GiB
		disk_max     INTEGER NOT NULL,
		instances    INTEGER NOT NULL,
		last_seen_ms INTEGER NOT NULL,           -- 0: never answered
		version      TEXT NOT NULL,
		error        TEXT NOT NULL,
		PRIMARY KEY (zone, host)
	)`,
}
