package store

import (
	"context"
	"database/sql"
	"fmt"
)

// KeyPair is an SSH key pair of an account. Only the public half is kept:
// the private key of a pair the cloud creates is handed out once.
type KeyPair struct {
	ID          string // key-...
	AccountID   string
	Name        string
	Type        string // "rsa" or "ed25519"
	Fingerprint string // as EC2 shows it
	PublicKey   string // one authorized_keys line, what instances are given
	CreatedMS   int64
	Tags        []Tag
}

// CreateKeyPair inserts a key pair with its tags at once. ErrConflict when
// the account already has a key pair of that name; ErrTagLimit when the tags
// are too many.
func (s *Store) CreateKeyPair(ctx context.Context, k KeyPair) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_pairs (id, account_id, name, key_type, fingerprint, public_key, created_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, k.ID, k.AccountID, k.Name, k.Type, k.Fingerprint, k.PublicKey, now()); err != nil {
			return conflict(err, "key pair "+k.Name)
		}
		return putTags(ctx, tx, k.AccountID, k.ID, TypeKeyPair, k.Tags)
	})
}

const keyPairColumns = `id, account_id, name, key_type, fingerprint, public_key, created_ms`

func scanKeyPair(row interface{ Scan(...any) error }) (KeyPair, error) {
	var k KeyPair
	err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.Type, &k.Fingerprint, &k.PublicKey, &k.CreatedMS)
	return k, err
}

// KeyPairs lists an account's key pairs with their tags, by name.
func (s *Store) KeyPairs(ctx context.Context, accountID string) ([]KeyPair, error) {
	tags, err := tagsByResource(ctx, s.r, accountID, TypeKeyPair)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyPairColumns+` FROM key_pairs WHERE account_id = ? ORDER BY name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: key pairs: %w", err)
	}
	defer rows.Close()
	var out []KeyPair
	for rows.Next() {
		k, err := scanKeyPair(rows)
		if err != nil {
			return nil, err
		}
		k.Tags = tags[k.ID]
		out = append(out, k)
	}
	return out, rows.Err()
}

// KeyPairByName returns an account's key pair of that name (without tags):
// what a launch needs to give the instance its public key.
func (s *Store) KeyPairByName(ctx context.Context, accountID, name string) (KeyPair, error) {
	k, err := scanKeyPair(s.r.QueryRowContext(ctx, `SELECT `+keyPairColumns+` FROM key_pairs WHERE account_id = ? AND name = ?`, accountID, name))
	return k, notFound(err, "key pair "+name)
}

// KeyPairByID returns an account's key pair by id (without tags).
func (s *Store) KeyPairByID(ctx context.Context, accountID, id string) (KeyPair, error) {
	k, err := scanKeyPair(s.r.QueryRowContext(ctx, `SELECT `+keyPairColumns+` FROM key_pairs WHERE account_id = ? AND id = ?`, accountID, id))
	return k, notFound(err, "key pair "+id)
}

// DeleteKeyPair removes an account's key pair and its tags. ErrNotFound when
// the account has no key pair of that id.
func (s *Store) DeleteKeyPair(ctx context.Context, accountID, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM key_pairs WHERE account_id = ? AND id = ?`, accountID, id)
		if err != nil {
			return fmt.Errorf("store: delete key pair %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("key pair %s: %w", id, ErrNotFound)
		}
		return deleteAllTags(ctx, tx, id)
	})
}
