package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// A cluster's node registry and its nodes' last polled status
// (schemaCCNodes).

// CCNode is a node registered in a cluster.
type CCNode struct {
	Zone         string
	Host         string
	Port         int
	RegisteredMS int64
}

// CCNodeStatus is what a cluster controller's last poll of a node said.
type CCNodeStatus struct {
	Zone, Host            string
	Up                    bool
	CoresFree, CoresMax   int
	MemoryFree, MemoryMax int // MiB
	DiskFree, DiskMax     int // GiB
	Instances             int
	LastSeenMS            int64 // 0: never answered
	Version, Error        string
}

// RegisterCCNode adds a node to zone; added is false when the host was
// already registered there (its port is then updated to port).
func (s *Store) RegisterCCNode(ctx context.Context, zone, host string, port int) (added bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var old int
		switch err := tx.QueryRowContext(ctx, `SELECT port FROM cc_nodes WHERE zone = ? AND host = ?`, zone, host).Scan(&old); {
		case errors.Is(err, sql.ErrNoRows):
			added = true
			_, err = tx.ExecContext(ctx, `INSERT INTO cc_nodes (zone, host, port, registered_ms) VALUES (?, ?, ?, ?)`, zone, host, port, now())
			return err
		case err != nil:
			return err
		case old != port:
			_, err = tx.ExecContext(ctx, `UPDATE cc_nodes SET port = ? WHERE zone = ? AND host = ?`, port, zone, host)
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: register node %s in %s: %w", host, zone, err)
	}
	return added, nil
}

// DeregisterCCNode removes a node and its status from zone; ErrNotFound
// when it was not registered there.
func (s *Store) DeregisterCCNode(ctx context.Context, zone, host string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM cc_nodes WHERE zone = ? AND host = ?`, zone, host)
		if err != nil {
			return fmt.Errorf("store: deregister node %s: %w", host, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fmt.Errorf("node %s in zone %s: %w", host, zone, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM cc_node_status WHERE zone = ? AND host = ?`, zone, host); err != nil {
			return fmt.Errorf("store: deregister node %s: %w", host, err)
		}
		return nil
	})
}

// CCNodes lists the nodes registered in zone ("" is every zone), oldest
// registration first.
func (s *Store) CCNodes(ctx context.Context, zone string) ([]CCNode, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT zone, host, port, registered_ms FROM cc_nodes
		WHERE ? = '' OR zone = ? ORDER BY zone, registered_ms, host`, zone, zone)
	if err != nil {
		return nil, fmt.Errorf("store: nodes: %w", err)
	}
	defer rows.Close()
	var out []CCNode
	for rows.Next() {
		var n CCNode
		if err := rows.Scan(&n.Zone, &n.Host, &n.Port, &n.RegisteredMS); err != nil {
			return nil, fmt.Errorf("store: nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PutCCNodeStatuses records nodes' polled status, replacing the earlier
// one; a node no longer registered is skipped (a poll that raced its
// deregistration must not bring its row back).
func (s *Store) PutCCNodeStatuses(ctx context.Context, sts []CCNodeStatus) error {
	if len(sts) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, n := range sts {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO cc_node_status
				(zone, host, up, cores_free, cores_max, memory_free, memory_max, disk_free, disk_max, instances, last_seen_ms, version, error)
				SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM cc_nodes WHERE zone = ? AND host = ?)`,
				n.Zone, n.Host, n.Up, n.CoresFree, n.CoresMax, n.MemoryFree, n.MemoryMax, n.DiskFree, n.DiskMax,
				n.Instances, n.LastSeenMS, n.Version, n.Error, n.Zone, n.Host); err != nil {
				return fmt.Errorf("store: node status %s: %w", n.Host, err)
			}
		}
		return nil
	})
}

// CCNodeStatuses is the last recorded status of the nodes of zone ("" is
// every zone), by host; a node never polled has none.
func (s *Store) CCNodeStatuses(ctx context.Context, zone string) (map[CCNodeKey]CCNodeStatus, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT zone, host, up, cores_free, cores_max, memory_free, memory_max,
		disk_free, disk_max, instances, last_seen_ms, version, error FROM cc_node_status WHERE ? = '' OR zone = ?`, zone, zone)
	if err != nil {
		return nil, fmt.Errorf("store: node status: %w", err)
	}
	defer rows.Close()
	out := map[CCNodeKey]CCNodeStatus{}
	for rows.Next() {
		var n CCNodeStatus
		if err := rows.Scan(&n.Zone, &n.Host, &n.Up, &n.CoresFree, &n.CoresMax, &n.MemoryFree, &n.MemoryMax,
			&n.DiskFree, &n.DiskMax, &n.Instances, &n.LastSeenMS, &n.Version, &n.Error); err != nil {
			return nil, fmt.Errorf("store: node status: %w", err)
		}
		out[CCNodeKey{n.Zone, n.Host}] = n
	}
	return out, rows.Err()
}

// CCNodeAsleep is the Error of a node's status while POWERSAVE has it
// powered down (Up is false: it answers nothing, but it is not failing).
const CCNodeAsleep = "asleep (powered down by POWERSAVE)"

// CCNodeKey names a node: its zone and host.
type CCNodeKey struct{ Zone, Host string }
