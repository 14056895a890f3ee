package store

import (
	"context"
	"database/sql"
	"fmt"
)

// VMType is a size of instance the cloud offers: Eucalyptus's VM type, which
// EC2 calls an instance type. Types are ordered from smallest to largest
// (Position), and the cloud keeps that order true: a larger type never has
// fewer cores, less memory or less disk than a smaller one, so a scheduler
// that finds room for a type finds room for every smaller one.
type VMType struct {
	Name     string
	Cores    int
	MemoryMB int
	DiskGB   int
	Position int // 1 for the smallest
}

// VMTypeCapacity is how many instances of one VM type a zone can take: Free
// with what runs now, Max on empty nodes. The cluster controllers compute it
// from their nodes' resources; it is never stored, but lives beside VMType so
// the roles and the API can share it without importing each other.
type VMTypeCapacity struct{ Free, Max int }

// VMTypeOrderError is a change refused because it would break the order of
// VM types: Type would become smaller than the smaller Neighbour, or larger
// than the larger one, in Resource.
type VMTypeOrderError struct {
	Type, Neighbour string
	NeighbourLarger bool   // the neighbour is the larger type
	Resource        string // "cores", "memory" or "disk"
	Value, Limit    int    // the refused value, the neighbour's
}

func (e *VMTypeOrderError) Error() string {
	unit := map[string]string{"cores": " cores", "memory": " MB of memory", "disk": " GB of disk"}[e.Resource]
	if e.NeighbourLarger {
		return fmt.Sprintf("%s would have %d%s, more than the larger type %s (%d): a larger type is never smaller than a smaller one",
			e.Type, e.Value, unit, e.Neighbour, e.Limit)
	}
	return fmt.Sprintf("%s would have %d%s, less than the smaller type %s (%d): a larger type is never smaller than a smaller one",
		e.Type, e.Value, unit, e.Neighbour, e.Limit)
}

// CheckVMTypeOrder reports the first place where types, ordered from
// smallest to largest, break the rule. changed names the type being edited,
// so the message speaks of it rather than of the neighbour it would cross.
func CheckVMTypeOrder(types []VMType, changed string) error {
	for i := 1; i < len(types); i++ {
		small, large := types[i-1], types[i]
		for _, r := range []struct {
			name         string
			small, large int
		}{
			{"cores", small.Cores, large.Cores},
			{"memory", small.MemoryMB, large.MemoryMB},
			{"disk", small.DiskGB, large.DiskGB},
		} {
			if r.small <= r.large {
				continue
			}
			if large.Name == changed {
				return &VMTypeOrderError{Type: large.Name, Neighbour: small.Name, Resource: r.name, Value: r.large, Limit: r.small}
			}
			return &VMTypeOrderError{Type: small.Name, Neighbour: large.Name, NeighbourLarger: true, Resource: r.name, Value: r.small, Limit: r.large}
		}
	}
	return nil
}

// VMTypes lists the VM types from smallest to largest.
func (s *Store) VMTypes(ctx context.Context) ([]VMType, error) {
	return vmTypes(ctx, s.r)
}

func vmTypes(ctx context.Context, q queryer) ([]VMType, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, cores, memory_mb, disk_gb, position FROM vm_types ORDER BY position, name`)
	if err != nil {
		return nil, fmt.Errorf("store: vm types: %w", err)
	}
	defer rows.Close()
	var out []VMType
	for rows.Next() {
		var t VMType
		if err := rows.Scan(&t.Name, &t.Cores, &t.MemoryMB, &t.DiskGB, &t.Position); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// VMType returns one VM type by name (ErrNotFound when there is none).
func (s *Store) VMType(ctx context.Context, name string) (VMType, error) {
	var t VMType
	err := s.r.QueryRowContext(ctx, `SELECT name, cores, memory_mb, disk_gb, position FROM vm_types WHERE name = ?`, name).
		Scan(&t.Name, &t.Cores, &t.MemoryMB, &t.DiskGB, &t.Position)
	return t, notFound(err, "vm type "+name)
}

// SetVMType changes the size of an existing type. The order is checked
// inside the same transaction as the write, so two administrators changing
// neighbours at once cannot break it between them. It returns ErrNotFound for
// an unknown name, a *VMTypeOrderError for a change that breaks the order,
// and an error for a value that is not positive.
func (s *Store) SetVMType(ctx context.Context, name string, cores, memoryMB, diskGB int) (VMType, error) {
	var out VMType
	err := s.tx(ctx, func(tx *sql.Tx) error {
		types, err := vmTypes(ctx, tx)
		if err != nil {
			return err
		}
		found := false
		for i := range types {
			if types[i].Name == name {
				types[i].Cores, types[i].MemoryMB, types[i].DiskGB = cores, memoryMB, diskGB
				out, found = types[i], true
			}
		}
		if !found {
			return fmt.Errorf("vm type %s: %w", name, ErrNotFound)
		}
		if cores <= 0 || memoryMB <= 0 || diskGB <= 0 {
			return fmt.Errorf("vm type %s: cores, memory and disk must be positive (got %d, %d, %d)", name, cores, memoryMB, diskGB)
		}
		if err := CheckVMTypeOrder(types, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE vm_types SET cores = ?, memory_mb = ?, disk_gb = ? WHERE name = ?`, cores, memoryMB, diskGB, name)
		return err
	})
	if err != nil {
		return VMType{}, err
	}
	return out, nil
}
