package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The cloud controller's register of remote clusters (schemaClusters).

// Cluster is a cluster controller the cloud reaches over the network: the
// zone it serves and where it listens.
type Cluster struct {
	Name         string // the availability zone
	Host         string
	Port         int
	RegisteredMS int64
}

// RegisterCluster adds a cluster; added is false when one of that name was
// registered already at the same host (its port then becomes c.Port). A
// name registered at another host is ErrConflict: the operator deregisters
// it first, so a typo cannot silently move a zone.
func (s *Store) RegisterCluster(ctx context.Context, c Cluster) (added bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var host string
		var port int
		switch err := tx.QueryRowContext(ctx, `SELECT host, port FROM clc_clusters WHERE name = ?`, c.Name).Scan(&host, &port); {
		case errors.Is(err, sql.ErrNoRows):
			added = true
			_, err = tx.ExecContext(ctx, `INSERT INTO clc_clusters (name, host, port, registered_ms) VALUES (?, ?, ?, ?)`,
				c.Name, c.Host, c.Port, now())
			return err
		case err != nil:
			return err
		case host != c.Host:
			return fmt.Errorf("cluster %s is registered at %s: %w", c.Name, host, ErrConflict)
		case port != c.Port:
			_, err = tx.ExecContext(ctx, `UPDATE clc_clusters SET port = ? WHERE name = ?`, c.Port, c.Name)
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: register cluster %s: %w", c.Name, err)
	}
	return added, nil
}

// DeregisterCluster removes a cluster; ErrNotFound when none has the name.
func (s *Store) DeregisterCluster(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM clc_clusters WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("store: deregister cluster %s: %w", name, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return fmt.Errorf("cluster %s: %w", name, ErrNotFound)
		}
		return nil
	})
}

// Clusters lists the registered clusters, oldest registration first (the
// order their zones are numbered in).
func (s *Store) Clusters(ctx context.Context) ([]Cluster, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, host, port, registered_ms FROM clc_clusters ORDER BY registered_ms, name`)
	if err != nil {
		return nil, fmt.Errorf("store: clusters: %w", err)
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		var c Cluster
		if err := rows.Scan(&c.Name, &c.Host, &c.Port, &c.RegisteredMS); err != nil {
			return nil, fmt.Errorf("store: clusters: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
