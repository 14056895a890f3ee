package store

// schemaImages holds the images registered from bundles (owned by the clc):
// machine (emi-), kernel (eki-) and ramdisk (eri-) images, and who besides
// their owner may launch them.
var schemaImages = []string{
	`CREATE TABLE images (
		id            TEXT PRIMARY KEY,       -- emi-, eki-, eri-
		account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
		kind          TEXT NOT NULL,          -- machine | kernel | ramdisk
		name          TEXT NOT NULL,
		description   TEXT NOT NULL DEFAULT '',
		location      TEXT NOT NULL,          -- bucket/prefix.manifest.xml
		architecture  TEXT NOT NULL,
		kernel_id     TEXT NOT NULL DEFAULT '',
		ramdisk_id    TEXT NOT NULL DEFAULT '',
		state         TEXT NOT NULL,          -- pending | available | failed | deregistered
		state_reason  TEXT NOT NULL DEFAULT '',
		is_public     INTEGER NOT NULL DEFAULT 0,
		size_bytes    INTEGER NOT NULL DEFAULT 0,  -- of the plain image
		sha256        TEXT NOT NULL DEFAULT '',    -- of the plain image, once unbundled
		created_ms    INTEGER NOT NULL,
		UNIQUE (account_id, name)
	)`,
	`CREATE INDEX images_account ON images(account_id)`,
	`CREATE TABLE image_launch_permissions (
		image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
		account_id TEXT NOT NULL,
		PRIMARY KEY (image_id, account_id)
	)`,
}
