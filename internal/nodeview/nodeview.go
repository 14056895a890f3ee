// Package nodeview is what the cloud controller tells the API layer about
// the nodes behind its zones: each node as its cluster last polled it, and
// the instances whose node cannot be reached. Plain values, so that the API
// packages (ec2api) see the clusters without importing the roles that run
// them (internal/archtest keeps that seam).
package nodeview

import "time"

// Node is one node of a zone as its cluster last polled it.
type Node struct {
	Host     string
	Port     int // 0: the cluster's NC_PORT
	Up       bool
	Asleep   bool // powered down by POWERSAVE
	Free     Resources
	Max      Resources
	LastSeen time.Time // zero: never answered
	Error    string    // why it is down
}

// Resources are a node's cores, memory (MiB) and disk (GiB).
type Resources struct{ Cores, MemoryMiB, DiskGiB int }

// Unreachable is why an instance's node cannot be reached, and since when
// (zero: not known).
type Unreachable struct {
	Why   string
	Since time.Time
}
