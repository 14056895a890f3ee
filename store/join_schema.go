package store

// schemaJoin holds what the cloud controller, as the cloud's certificate
// authority, keeps about hosts joining it (owned by the clc role):
//
//   - join_tokens: one row per token `euca token create` printed. Only the
//     SHA-256 of the token's secret is kept, so a copy of the database lets
//     nobody join; a token is used once (used_ms, used_by) and refused after
//     expires_ms.
//   - host_certs: every certificate issued to a joined host (at join and at
//     each renewal), so that `euca node revoke HOST` can end them and the
//     front-end can refuse a revoked serial.
var schemaJoin = []string{
	`CREATE TABLE join_tokens (
		secret_hash BLOB PRIMARY KEY,          -- SHA-256 of the token's secret
		role        TEXT NOT NULL,             -- nc | cc | walrus
		created_ms  INTEGER NOT NULL,
		expires_ms  INTEGER NOT NULL,
		used_ms     INTEGER NOT NULL DEFAULT 0, -- 0: not used yet
		used_by     TEXT NOT NULL DEFAULT ''    -- the host that joined with it
	)`,
	`CREATE TABLE host_certs (
		serial       TEXT PRIMARY KEY,         -- lower-case hex
		role         TEXT NOT NULL,
		host         TEXT NOT NULL,            -- the host name the certificate names
		names        TEXT NOT NULL,            -- JSON array of its DNS names and addresses
		created_ms   INTEGER NOT NULL,
		not_after_ms INTEGER NOT NULL,
		revoked_ms   INTEGER NOT NULL DEFAULT 0 -- 0: not revoked
	)`,
	`CREATE INDEX host_certs_host ON host_certs(host)`,
}
