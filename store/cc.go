package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// The cluster controller's records (schemaCC): its zone's desired network
// and the placements it has made.

// CCPlacement is an instance the cluster controller started on a node.
type CCPlacement struct {
	InstanceID string
	Zone       string
	Node       string
	Cores      int
	MemoryMiB  int
	DiskGiB    int
	CreatedMS  int64
}

// PutCCPlacements records placements, replacing any earlier one of the same
// instance (a retried launch that went to the same node).
func (s *Store) PutCCPlacements(ctx context.Context, ps []CCPlacement) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, p := range ps {
			created := p.CreatedMS
			if created == 0 {
				created = now()
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO cc_placements
				(instance_id, zone, node, cores, memory_mib, disk_gib, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				p.InstanceID, p.Zone, p.Node, p.Cores, p.MemoryMiB, p.DiskGiB, created); err != nil {
				return fmt.Errorf("store: put placement %s: %w", p.InstanceID, err)
			}
		}
		return nil
	})
}

// DeleteCCPlacements forgets placements; unknown ids are ignored.
func (s *Store) DeleteCCPlacements(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		q := `DELETE FROM cc_placements WHERE instance_id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: delete placements: %w", err)
		}
		return nil
	})
}

// CCPlacements lists a zone's placements, oldest first.
func (s *Store) CCPlacements(ctx context.Context, zone string) ([]CCPlacement, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT instance_id, zone, node, cores, memory_mib, disk_gib, created_ms
		FROM cc_placements WHERE zone = ? ORDER BY created_ms, instance_id`, zone)
	if err != nil {
		return nil, fmt.Errorf("store: placements: %w", err)
	}
	defer rows.Close()
	var out []CCPlacement
	for rows.Next() {
		var p CCPlacement
		if err := rows.Scan(&p.InstanceID, &p.Zone, &p.Node, &p.Cores, &p.MemoryMiB, &p.DiskGiB, &p.CreatedMS); err != nil {
			return nil, fmt.Errorf("store: placements: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutCCNetwork records a zone's desired network document, replacing the
// previous one.
func (s *Store) PutCCNetwork(ctx context.Context, zone string, doc []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cc_networks (zone, doc, updated_ms) VALUES (?, ?, ?)
			ON CONFLICT (zone) DO UPDATE SET doc = excluded.doc, updated_ms = excluded.updated_ms`,
			zone, string(doc), now()); err != nil {
			return fmt.Errorf("store: put network of %s: %w", zone, err)
		}
		return nil
	})
}

// CCNetwork is a zone's desired network document; ErrNotFound when none was
// ever recorded.
func (s *Store) CCNetwork(ctx context.Context, zone string) ([]byte, error) {
	var doc string
	err := s.r.QueryRowContext(ctx, `SELECT doc FROM cc_networks WHERE zone = ?`, zone).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("network of zone %s: %w", zone, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: network of %s: %w", zone, err)
	}
	return []byte(doc), nil
}
