package store

// schemaNC holds a node controller's own record of its instances: what it
// was asked to run (the request, as the NC API's JSON), where it stands, and
// the files it made (the hypervisor spec, as JSON, which names every disk
// and the console log). The hypervisor's domains are reconciled towards
// these rows when the NC starts; they are never the source of truth.
//
// No foreign keys: on a compute host of its own the NC's database holds no
// other role's tables, and its rows never point at another role's.
var schemaNC = []string{
	`CREATE TABLE nc_instances (
		id          TEXT PRIMARY KEY,         -- i-...
		request     TEXT NOT NULL,            -- ncapi.InstanceRequest as JSON
		state       TEXT NOT NULL,            -- pending | running | shutting-down | terminated | failed
		reason      TEXT NOT NULL DEFAULT '', -- why it failed or ended
		dir         TEXT NOT NULL,            -- INSTANCE_PATH/<id>
		spec        TEXT NOT NULL DEFAULT '', -- hypervisor.InstanceSpec as JSON once its files are made
		created_ms  INTEGER NOT NULL,         -- accepted
		launched_ms INTEGER NOT NULL DEFAULT 0, -- the guest booted (0: not yet)
		updated_ms  INTEGER NOT NULL          -- last state change
	)`,
	`CREATE INDEX nc_instances_state ON nc_instances(state)`,
}
