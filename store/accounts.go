package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Account is a tenant of the cloud: everything it owns is invisible to others.
type Account struct {
	ID        string // 12 digits
	Name      string
	CreatedMS int64
}

// AccessKey is an API credential of a user of an account.
type AccessKey struct {
	ID        string
	AccountID string
	UserName  string
	Secret    string
	Active    bool
	CreatedMS int64
}

// UserCert is an X.509 certificate issued to a user (bundle signing).
type UserCert struct {
	Fingerprint string
	AccountID   string
	UserName    string
	CertPEM     string
	Active      bool
	CreatedMS   int64
}

// CreateAccount inserts an account with its first access key and certificate
// in one transaction, so an account never exists without credentials.
// ErrConflict when the name (or id) is taken.
func (s *Store) CreateAccount(ctx context.Context, a Account, key AccessKey, cert UserCert) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		ts := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, created_ms) VALUES (?, ?, ?)`, a.ID, a.Name, ts); err != nil {
			return conflict(err, "account "+a.Name)
		}
		if err := insertAccessKey(ctx, tx, key, ts); err != nil {
			return err
		}
		return insertUserCert(ctx, tx, cert, ts)
	})
}

func insertAccessKey(ctx context.Context, q queryer, k AccessKey, ts int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO access_keys (id, account_id, user_name, secret, active, created_ms) VALUES (?, ?, ?, ?, 1, ?)`,
		k.ID, k.AccountID, k.UserName, k.Secret, ts)
	return conflict(err, "access key")
}

func insertUserCert(ctx context.Context, q queryer, c UserCert, ts int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO user_certs (fingerprint, account_id, user_name, cert_pem, active, created_ms) VALUES (?, ?, ?, ?, 1, ?)`,
		c.Fingerprint, c.AccountID, c.UserName, c.CertPEM, ts)
	return conflict(err, "certificate")
}

// AddUserCert records another certificate for a user (each credentials
// download issues a new one, as Eucalyptus did; older ones stay valid).
func (s *Store) AddUserCert(ctx context.Context, c UserCert) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return insertUserCert(ctx, tx, c, now()) })
}

// Accounts lists every account, oldest first.
func (s *Store) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created_ms FROM accounts ORDER BY created_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("store: accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.ID, &a.Name, &a.CreatedMS); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AccountByName finds an account by its name.
func (s *Store) AccountByName(ctx context.Context, name string) (Account, error) {
	var a Account
	err := s.r.QueryRowContext(ctx, `SELECT id, name, created_ms FROM accounts WHERE name = ?`, name).Scan(&a.ID, &a.Name, &a.CreatedMS)
	return a, notFound(err, "account "+name)
}

// AccountByID finds an account by its id.
func (s *Store) AccountByID(ctx context.Context, id string) (Account, error) {
	var a Account
	err := s.r.QueryRowContext(ctx, `SELECT id, name, created_ms FROM accounts WHERE id = ?`, id).Scan(&a.ID, &a.Name, &a.CreatedMS)
	return a, notFound(err, "account "+id)
}

// AccessKeyByID finds an active access key: what signature verification needs.
func (s *Store) AccessKeyByID(ctx context.Context, id string) (AccessKey, error) {
	var k AccessKey
	err := s.r.QueryRowContext(ctx, `SELECT id, account_id, user_name, secret, active, created_ms FROM access_keys WHERE id = ? AND active = 1`, id).
		Scan(&k.ID, &k.AccountID, &k.UserName, &k.Secret, &k.Active, &k.CreatedMS)
	return k, notFound(err, "access key")
}

// AccessKeys lists a user's access keys, oldest first.
func (s *Store) AccessKeys(ctx context.Context, accountID, userName string) ([]AccessKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, account_id, user_name, secret, active, created_ms FROM access_keys
		WHERE account_id = ? AND user_name = ? ORDER BY created_ms, id`, accountID, userName)
	if err != nil {
		return nil, fmt.Errorf("store: access keys: %w", err)
	}
	defer rows.Close()
	var out []AccessKey
	for rows.Next() {
		var k AccessKey
		if err := rows.Scan(&k.ID, &k.AccountID, &k.UserName, &k.Secret, &k.Active, &k.CreatedMS); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// UserCerts lists the active certificates of an account's users.
func (s *Store) UserCerts(ctx context.Context, accountID string) ([]UserCert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT fingerprint, account_id, user_name, cert_pem, active, created_ms FROM user_certs
		WHERE account_id = ? AND active = 1 ORDER BY created_ms`, accountID)
	if err != nil {
		return nil, fmt.Errorf("store: user certs: %w", err)
	}
	defer rows.Close()
	var out []UserCert
	for rows.Next() {
		var c UserCert
		if err := rows.Scan(&c.Fingerprint, &c.AccountID, &c.UserName, &c.CertPEM, &c.Active, &c.CreatedMS); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
