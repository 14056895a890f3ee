package store

// schemaClusters is the cloud controller's register of its clusters (owned
// by the clc role), as Eucalyptus's console kept them (Add Cluster):
//
//   - clc_clusters: every cluster controller the cloud reaches over the
//     network, by the availability zone it serves (its CLUSTER_NAME), with
//     the host and CC_PORT it listens on. Written by `euca cluster register`
//     and `deregister` beside a running cloud controller, which re-reads it
//     every few seconds. The cluster of the cloud controller's own process
//     (CLUSTER_NAME of the front-end) is not listed: it is reached in
//     process.
var schemaClusters = []string{
	`CREATE TABLE clc_clusters (
		name          TEXT PRIMARY KEY,          -- the availability zone
		host          TEXT NOT NULL,
		port          INTEGER NOT NULL,          -- its CC_PORT
		registered_ms INTEGER NOT NULL
	)`,
}
