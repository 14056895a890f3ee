package store

// schemaSCSnap holds the storage controller's snapshots: each snapshot is a
// list of chunks of its volume (4 MiB, content-addressed by SHA-256) kept
// as objects in Walrus, so two snapshots of a volume share every chunk that
// did not change between them. These rows are the storage controller's own
// (the cloud controller keeps the snapshots EC2 shows in its own tables).
//
// A chunk's refs count the snapshot_chunks rows that name it. A chunk row
// with refs = 0 is garbage: either its last snapshot was deleted, or an
// upload was interrupted between recording its intent and its first
// reference. Its object is deleted from Walrus, then the row.
var schemaSCSnap = []string{
	`CREATE TABLE sc_snapshots (
		id           TEXT PRIMARY KEY,          -- snap-...
		volume_id    TEXT NOT NULL,
		state        TEXT NOT NULL,             -- pending, completed, error, deleting
		size_bytes   INTEGER NOT NULL,          -- the volume's size when taken
		chunk_size   INTEGER NOT NULL,
		chunk_count  INTEGER NOT NULL,          -- chunk indexes: ceil(size_bytes / chunk_size)
		next_chunk   INTEGER NOT NULL DEFAULT 0, -- every index below it is recorded (data or hole)
		data_chunks  INTEGER NOT NULL DEFAULT 0, -- rows in sc_snapshot_chunks
		new_chunks   INTEGER NOT NULL DEFAULT 0, -- of those, chunks this snapshot stored in Walrus
		new_bytes    INTEGER NOT NULL DEFAULT 0,
		source_id    TEXT NOT NULL DEFAULT '',  -- the snapshot a copy was made of
		error        TEXT NOT NULL DEFAULT '',
		started_ms   INTEGER NOT NULL,
		completed_ms INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX sc_snapshots_volume ON sc_snapshots(volume_id)`,
	`CREATE TABLE sc_chunks (
		hash TEXT PRIMARY KEY,                  -- hex SHA-256 of the data; the object is chunks/<hash>
		size INTEGER NOT NULL,
		refs INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX sc_chunks_garbage ON sc_chunks(refs) WHERE refs = 0`,
	`CREATE TABLE sc_snapshot_chunks (
		snapshot_id TEXT NOT NULL REFERENCES sc_snapshots(id),
		idx         INTEGER NOT NULL,           -- offset / chunk_size; a missing index is a hole (zeros)
		hash        TEXT NOT NULL REFERENCES sc_chunks(hash),
		PRIMARY KEY (snapshot_id, idx)
	)`,
}
