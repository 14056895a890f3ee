package cc

import (
	"context"
	"log/slog"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/store"
)

// Reporter answers the cloud controller's capacity question (the clc's
// Capacity seam, behind DescribeAvailabilityZones verbose) from its
// clusters: it asks each to Describe with the cloud's VM types, read from
// the cloud controller's store at each call so an administrator's change
// shows at once.
type Reporter struct {
	st       *store.Store
	log      *slog.Logger
	clusters []ccapi.Cluster
}

// NewReporter reports the capacity of clusters; st is the cloud
// controller's store (it holds the VM types).
func NewReporter(st *store.Store, log *slog.Logger, clusters ...ccapi.Cluster) *Reporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{st: st, log: log, clusters: clusters}
}

// Capacity is, per zone and VM type, how many instances fit now and on
// empty nodes. A cluster that does not answer is left out (its zone reads
// as zero) and logged, rather than failing every zone's answer.
func (r *Reporter) Capacity(ctx context.Context) (map[string]map[string]store.VMTypeCapacity, error) {
	types, err := r.st.VMTypes(ctx)
	if err != nil {
		return nil, err
	}
	vt := VMTypesOf(types)
	out := make(map[string]map[string]store.VMTypeCapacity, len(r.clusters))
	for _, cl := range r.clusters {
		s, err := cl.Describe(ctx, vt)
		if err != nil {
			r.log.WarnContext(ctx, "cc: cluster did not report its capacity", "zone", cl.Zone(), "err", err)
			continue
		}
		m := make(map[string]store.VMTypeCapacity, len(s.Capacity))
		for name, c := range s.Capacity {
			m[name] = store.VMTypeCapacity{Free: c.Free, Max: c.Max}
		}
		out[cl.Zone()] = m
	}
	return out, nil
}

// VMTypesOf turns the store's VM types into the cluster API's.
func VMTypesOf(types []store.VMType) []ccapi.VMType {
	out := make([]ccapi.VMType, len(types))
	for i, t := range types {
		out[i] = ccapi.VMType{Name: t.Name, Cores: t.Cores, MemoryMiB: t.MemoryMB, DiskGiB: t.DiskGB}
	}
	return out
}
