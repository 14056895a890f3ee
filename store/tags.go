package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// Tag is a key/value label on a resource.
type Tag struct{ Key, Value string }

// TagRow is a tag together with the resource it labels.
type TagRow struct {
	ResourceID   string
	ResourceType string
	Tag
}

// MaxTags is AWS's limit of tags on one resource.
const MaxTags = 50

// putTags adds or overwrites tags on one resource inside a transaction; the
// create calls of every resource use it so TagSpecification lands atomically
// with the resource.
func putTags(ctx context.Context, q queryer, accountID, resourceID, resourceType string, tags []Tag) error {
	for _, t := range tags {
		if _, err := q.ExecContext(ctx, `INSERT INTO tags (account_id, resource_id, resource_type, key, value) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (resource_id, key) DO UPDATE SET value = excluded.value`, accountID, resourceID, resourceType, t.Key, t.Value); err != nil {
			return fmt.Errorf("store: tag %s: %w", resourceID, err)
		}
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM tags WHERE resource_id = ?`, resourceID).Scan(&n); err != nil {
		return err
	}
	if n > MaxTags {
		return fmt.Errorf("%s has %d tags, more than %d: %w", resourceID, n, MaxTags, ErrTagLimit)
	}
	return nil
}

// ErrTagLimit is returned when a resource would carry more than MaxTags tags.
var ErrTagLimit = fmt.Errorf("store: tag limit exceeded")

// Resource names one resource for tagging.
type Resource struct{ ID, Type string }

// CreateTags puts the same tags on each resource, all or nothing.
func (s *Store) CreateTags(ctx context.Context, accountID string, resources []Resource, tags []Tag) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range resources {
			if err := putTags(ctx, tx, accountID, r.ID, r.Type, tags); err != nil {
				return err
			}
		}
		return nil
	})
}

// TagMatch selects tags to delete: a key, and optionally its value (a tag
// whose value differs stays, as in EC2's DeleteTags).
type TagMatch struct {
	Key      string
	Value    string
	HasValue bool
}

// DeleteTags removes tags from resources; with no matches, every tag.
func (s *Store) DeleteTags(ctx context.Context, accountID string, resourceIDs []string, matches []TagMatch) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range resourceIDs {
			if len(matches) == 0 {
				if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE account_id = ? AND resource_id = ?`, accountID, id); err != nil {
					return err
				}
				continue
			}
			for _, m := range matches {
				q, args := `DELETE FROM tags WHERE account_id = ? AND resource_id = ? AND key = ?`, []any{accountID, id, m.Key}
				if m.HasValue {
					q += ` AND value = ?`
					args = append(args, m.Value)
				}
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// deleteAllTags removes a deleted resource's tags, inside its delete.
func deleteAllTags(ctx context.Context, q queryer, resourceID string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM tags WHERE resource_id = ?`, resourceID)
	return err
}

// Tags lists every tag of an account, ordered by resource then key.
func (s *Store) Tags(ctx context.Context, accountID string) ([]TagRow, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT resource_id, resource_type, key, value FROM tags WHERE account_id = ? ORDER BY resource_id, key`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: tags: %w", err)
	}
	defer rows.Close()
	var out []TagRow
	for rows.Next() {
		var t TagRow
		if err := rows.Scan(&t.ResourceID, &t.ResourceType, &t.Key, &t.Value); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// tagsByResource loads the tags of an account's resources of one type, keyed
// by resource id: one query for a whole Describe instead of one per item.
func tagsByResource(ctx context.Context, q queryer, accountID, resourceType string) (map[string][]Tag, error) {
	rows, err := q.QueryContext(ctx, `SELECT resource_id, key, value FROM tags WHERE account_id = ? AND resource_type = ? ORDER BY resource_id, key`, accountID, resourceType)
	if err != nil {
		return nil, fmt.Errorf("store: tags of %s: %w", resourceType, err)
	}
	defer rows.Close()
	out := map[string][]Tag{}
	for rows.Next() {
		var id string
		var t Tag
		if err := rows.Scan(&id, &t.Key, &t.Value); err != nil {
			return nil, err
		}
		out[id] = append(out[id], t)
	}
	return out, rows.Err()
}

// tagsOf loads the tags of some of an account's resources of one type
// (at most a few hundred ids: one parameter each), keyed by resource id.
func tagsOf(ctx context.Context, q queryer, accountID, resourceType string, ids []string) (map[string][]Tag, error) {
	out := map[string][]Tag{}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{accountID, resourceType}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := q.QueryContext(ctx, `SELECT resource_id, key, value FROM tags WHERE account_id = ? AND resource_type = ?
		AND resource_id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`) ORDER BY resource_id, key`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: tags of %s: %w", resourceType, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var t Tag
		if err := rows.Scan(&id, &t.Key, &t.Value); err != nil {
			return nil, err
		}
		out[id] = append(out[id], t)
	}
	return out, rows.Err()
}

// SortTags orders tags by key, the order responses list them in.
func SortTags(tags []Tag) {
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
}
