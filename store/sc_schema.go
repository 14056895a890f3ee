package store

// schemaSC holds what a storage controller must not forget (owned by the sc
// role): its volumes and their exports to nodes. The bytes are in the SC's
// backend (roles/sc/backend); a row is written before the backend is
// touched (intent first), so a restarted SC finds every volume it was
// making or deleting and finishes the job.
//
//   - sc_volumes: one row per volume the cloud controller asked for, from
//     "creating" (the file is being made, from snapshot_id when set) to
//     "available", or "deleting" (the file is being removed; the row goes
//     once it is), or "error" (why in error).
//   - sc_exports: the live NBD exports of a volume, one per attachment: the
//     export name carries a random nonce, so a node's connection left from
//     an earlier attachment never reaches a later one. Only the node named
//     may connect.
//
// No foreign key to other roles' tables: the SC may run on a host of its
// own, and the cloud controller's volumes table is its own.
var schemaSC = []string{
	`CREATE TABLE sc_volumes (
		id          TEXT PRIMARY KEY,          -- vol-...
		size_bytes  INTEGER NOT NULL,
		snapshot_id TEXT NOT NULL DEFAULT '',  -- the snapshot it is made from ('' empty)
		state       TEXT NOT NULL,             -- creating | available | deleting | error
		error       TEXT NOT NULL DEFAULT '',  -- why it is in error
		created_ms  INTEGER NOT NULL,
		updated_ms  INTEGER NOT NULL
	)`,
	`CREATE INDEX sc_volumes_state ON sc_volumes(state)`,
	`CREATE TABLE sc_exports (
		name       TEXT PRIMARY KEY,           -- vol-.../<nonce>: the NBD export name
		volume_id  TEXT NOT NULL REFERENCES sc_volumes(id) ON DELETE CASCADE,
		node       TEXT NOT NULL,              -- the node allowed, as its cluster names it
		created_ms INTEGER NOT NULL
	)`,
	`CREATE INDEX sc_exports_volume ON sc_exports(volume_id)`,
}
