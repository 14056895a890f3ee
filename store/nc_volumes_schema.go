package store

// schemaNCVolumes holds the EBS volumes a node controller has attached to
// its instances: what it was asked to attach (the attachment, as the NC
// API's JSON: where the storage controller serves it) and how far it got.
// A restarted NC serves each row's volume again (the guest's disk talks to
// the NC's socket) and finishes an attach or detach it was in the middle
// of. Rows go with their instance.
var schemaNCVolumes = []string{
	`CREATE TABLE nc_volumes (
		instance_id TEXT NOT NULL,            -- i-...
		volume_id   TEXT NOT NULL,            -- vol-...
		attachment  TEXT NOT NULL,            -- ncapi.VolumeAttachment as JSON
		state       TEXT NOT NULL,            -- attaching | attached | detaching
		updated_ms  INTEGER NOT NULL,
		PRIMARY KEY (instance_id, volume_id)
	)`,
}
