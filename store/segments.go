package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schemaSegments is MANAGED mode's register of which security group holds
// which segment of a zone (owned by the clc role). A segment is a block of
// VNET_ADDRSPERNET addresses of VNET_SUBNET with its own bridge and VLAN
// tag or VXLAN id; the cluster controller builds it for the instances whose
// first group holds it.
//
// As in Eucalyptus, a group takes a segment when an instance is launched
// into it and gives it back once its last instance has ended: segments are
// few (a /16 in blocks of 64 holds 1,024) and groups are many, most of them
// without instances at any one time, so holding one per group from its
// creation would run a cloud out of segments with the network idle. A row
// whose group has no live instance left is free: the next launch that needs
// a segment reclaims it (assignSegment), and deleting the group deletes
// the row.
var schemaSegments = []string{
	`CREATE TABLE clc_segments (
		zone        TEXT NOT NULL,
		segment     INTEGER NOT NULL,         -- the block's index in VNET_SUBNET (VLAN tag = segment + 2)
		group_id    TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
		assigned_ms INTEGER NOT NULL,
		PRIMARY KEY (zone, segment),
		UNIQUE (zone, group_id)
	)`,
}

// SegmentRange is the segments a zone's groups may hold: First up to
// First+Count-1. Count 0: the zone's network has no segments (every mode
// but MANAGED).
type SegmentRange struct{ First, Count int }

// ErrNoSegment is returned when every segment of a zone's range is held by
// a group with a live instance.
var ErrNoSegment = errors.New("store: every network segment is in use")

// liveFirstGroup is true for a clc_segments row whose group is the first
// group of a live instance in the row's zone: such a group keeps its segment.
const liveFirstGroup = `EXISTS (SELECT 1 FROM instance_groups g JOIN instances i ON i.id = g.instance_id
	WHERE g.group_id = clc_segments.group_id AND g.position = 0 AND i.zone = clc_segments.zone AND i.state != 'terminated')`

// assignSegment gives groupID a segment of zone within r: the one it holds
// already, or the lowest one no group with a live instance holds. It frees
// the segments of the zone's groups that have no live instance left first.
// Run inside the launch's transaction (one writer at a time), two launches
// never take one segment.
func assignSegment(ctx context.Context, tx *sql.Tx, zone, groupID string, r SegmentRange) (int, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM clc_segments WHERE zone = ? AND group_id != ? AND NOT `+liveFirstGroup,
		zone, groupID); err != nil {
		return 0, fmt.Errorf("store: free idle segments of %s: %w", zone, err)
	}
	var held int
	err := tx.QueryRowContext(ctx, `SELECT segment FROM clc_segments WHERE zone = ? AND group_id = ?`, zone, groupID).Scan(&held)
	switch {
	case err == nil && held >= r.First && held < r.First+r.Count:
		return held, nil
	case err == nil: // the range changed (VNET_ADDRSPERNET, the zones): take a new one
		if _, err := tx.ExecContext(ctx, `DELETE FROM clc_segments WHERE zone = ? AND group_id = ?`, zone, groupID); err != nil {
			return 0, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("store: segment of %s: %w", groupID, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT segment FROM clc_segments WHERE zone = ? AND segment >= ? AND segment < ?`,
		zone, r.First, r.First+r.Count)
	if err != nil {
		return 0, fmt.Errorf("store: segments of %s: %w", zone, err)
	}
	taken := map[int]bool{}
	for rows.Next() {
		var s int
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return 0, err
		}
		taken[s] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for s := r.First; s < r.First+r.Count; s++ {
		if taken[s] {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO clc_segments (zone, segment, group_id, assigned_ms) VALUES (?, ?, ?, ?)`,
			zone, s, groupID, now()); err != nil {
			return 0, conflict(err, fmt.Sprintf("segment %d of %s", s, zone))
		}
		return s, nil
	}
	return 0, fmt.Errorf("%s: all %d segments held: %w", zone, r.Count, ErrNoSegment)
}

// ZoneSegments returns the segment each group holds in zone, by group id:
// those of groups with a live instance only (a freed one is not a network).
func (s *Store) ZoneSegments(ctx context.Context, zone string) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT group_id, segment FROM clc_segments WHERE zone = ? AND `+liveFirstGroup, zone)
	if err != nil {
		return nil, fmt.Errorf("store: segments of %s: %w", zone, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var g string
		var seg int
		if err := rows.Scan(&g, &seg); err != nil {
			return nil, err
		}
		out[g] = seg
	}
	return out, rows.Err()
}
