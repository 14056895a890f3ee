package store

// schemaWalrus holds Walrus's metadata: buckets with their configuration
// documents, objects, and multipart uploads with their parts. Object data
// lives in Walrus's backend (files under WALRUS_BUCKETS_PATH); a row names
// its data by blob id.
//
// Bucket and object owners are account ids without a foreign key to
// accounts: a Walrus on a host of its own keeps its own database, where the
// accounts table is empty. Keys compare with SQLite's BINARY collation,
// byte by byte, which is the UTF-8 order S3 lists keys in.
var schemaWalrus = []string{
	`CREATE TABLE walrus_buckets (
		name         TEXT PRIMARY KEY,        -- global: one namespace for all accounts, as S3
		account_id   TEXT NOT NULL,
		location     TEXT NOT NULL,           -- the region it was created in
		acl          TEXT NOT NULL,           -- JSON list of grants
		size_bytes   INTEGER NOT NULL DEFAULT 0, -- sum of its objects' sizes (WALRUS_MAX_BUCKET_SIZE_MB)
		object_count INTEGER NOT NULL DEFAULT 0,
		created_ms   INTEGER NOT NULL
	)`,
	`CREATE INDEX walrus_buckets_account ON walrus_buckets(account_id)`,
	`CREATE TABLE walrus_bucket_configs (
		bucket TEXT NOT NULL REFERENCES walrus_buckets(name) ON DELETE CASCADE,
		kind   TEXT NOT NULL,                 -- policy, cors, website, lifecycle, versioning, tagging, ...
		body   TEXT NOT NULL,                 -- the document as stored (XML or JSON)
		PRIMARY KEY (bucket, kind)
	)`,
	`CREATE TABLE walrus_objects (
		bucket      TEXT NOT NULL REFERENCES walrus_buckets(name) ON DELETE CASCADE,
		key         TEXT NOT NULL,
		blob        TEXT NOT NULL,            -- the backend's id of the data
		size        INTEGER NOT NULL,
		etag        TEXT NOT NULL,            -- hex MD5, or MD5 of part MD5s + "-N"
		parts       INTEGER NOT NULL DEFAULT 0,
		owner_id    TEXT NOT NULL,
		acl         TEXT NOT NULL,            -- JSON list of grants
		headers     TEXT NOT NULL,            -- JSON: Content-Type, x-amz-meta-*, ...
		tags        TEXT NOT NULL DEFAULT '[]',
		checksum    TEXT NOT NULL DEFAULT '', -- "CRC32:<base64>" when the client sent one
		modified_ms INTEGER NOT NULL,
		PRIMARY KEY (bucket, key)
	)`,
	`CREATE TABLE walrus_uploads (
		id           TEXT PRIMARY KEY,
		bucket       TEXT NOT NULL REFERENCES walrus_buckets(name) ON DELETE CASCADE,
		key          TEXT NOT NULL,
		owner_id     TEXT NOT NULL,
		acl          TEXT NOT NULL,
		headers      TEXT NOT NULL,
		tags         TEXT NOT NULL DEFAULT '[]',
		initiated_ms INTEGER NOT NULL
	)`,
	`CREATE INDEX walrus_uploads_bucket ON walrus_uploads(bucket, key, initiated_ms)`,
	`CREATE TABLE walrus_parts (
		upload_id   TEXT NOT NULL REFERENCES walrus_uploads(id) ON DELETE CASCADE,
		number      INTEGER NOT NULL,
		blob        TEXT NOT NULL,
		size        INTEGER NOT NULL,
		etag        TEXT NOT NULL,            -- hex MD5 of the part
		modified_ms INTEGER NOT NULL,
		PRIMARY KEY (upload_id, number)
	)`,
}

// schemaWalrusParts keeps what a multipart upload was made of once it is
// complete: the object's parts in order (GetObject and HeadObject by
// partNumber, GetObjectAttributes), and the completed uploads themselves
// for a day, so that a Complete retried after its answer was lost (SDKs
// retry) answers as the first one did. An object stored before this
// migration has an empty part list.
var schemaWalrusParts = []string{
	// part_list: JSON list of {n, size, etag}, in the object's order.
	`ALTER TABLE walrus_objects ADD COLUMN part_list TEXT NOT NULL DEFAULT ''`,
	`CREATE TABLE walrus_completed_uploads (
		id           TEXT PRIMARY KEY,
		bucket       TEXT NOT NULL REFERENCES walrus_buckets(name) ON DELETE CASCADE,
		key          TEXT NOT NULL,
		etag         TEXT NOT NULL,           -- the object's, without quotes
		parts        TEXT NOT NULL,           -- JSON: the part list completed, as part_list
		completed_ms INTEGER NOT NULL
	)`,
	`CREATE INDEX walrus_completed_uploads_age ON walrus_completed_uploads(completed_ms)`,
}
