package snapshot_test

import (
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/snapshot"
)

// The storage controller takes the engine as it is, and its volumes are
// what the engine reads and writes.
var (
	_ sc.Snapshots    = (*snapshot.Engine)(nil)
	_ snapshot.Volume = backend.Device(nil)
	_ snapshot.Dest   = backend.Device(nil)
)
