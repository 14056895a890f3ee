package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Why a join token is refused, besides ErrNotFound (no such token: unknown
// or forged). Callers tell the joining host which, so an operator knows
// whether to make a new token or look for who used the old one.
var (
	ErrTokenExpired = errors.New("store: join token expired")
	ErrTokenUsed    = errors.New("store: join token already used")
)

// JoinToken is a join token as the CA keeps it: the hash of its secret,
// never the secret.
type JoinToken struct {
	SecretHash []byte
	Role       string
	CreatedMS  int64
	ExpiresMS  int64
	UsedMS     int64 // 0: not used
	UsedBy     string
}

// HostCert is a certificate issued to a joined host.
type HostCert struct {
	Serial     string // lower-case hex
	Role       string
	Host       string
	Names      []string // DNS names and addresses it is valid for
	CreatedMS  int64
	NotAfterMS int64
	RevokedMS  int64 // 0: not revoked
}

// CreateJoinToken records a new token; ErrConflict if its hash is already
// known (two random 256-bit secrets never collide, so that is a bug).
// A zero CreatedMS is set to now.
func (s *Store) CreateJoinToken(ctx context.Context, t JoinToken) error {
	if len(t.SecretHash) == 0 || t.Role == "" || t.ExpiresMS == 0 {
		return errors.New("store: join token needs a secret hash, a role and an expiry")
	}
	if t.CreatedMS == 0 {
		t.CreatedMS = now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO join_tokens (secret_hash, role, created_ms, expires_ms) VALUES (?, ?, ?, ?)`,
			t.SecretHash, t.Role, t.CreatedMS, t.ExpiresMS)
		return conflict(err, "join token")
	})
}

const joinTokenCols = `secret_hash, role, created_ms, expires_ms, used_ms, used_by`

func scanJoinToken(sc interface{ Scan(...any) error }) (JoinToken, error) {
	var t JoinToken
	err := sc.Scan(&t.SecretHash, &t.Role, &t.CreatedMS, &t.ExpiresMS, &t.UsedMS, &t.UsedBy)
	return t, err
}

// JoinToken checks, without using it, the token whose secret hashes to
// secretHash: ErrNotFound if there is none, ErrTokenUsed or ErrTokenExpired
// (in that order) if it can no longer be used. The join server checks first
// and signs only for a usable token, then redeems it with RedeemJoinToken.
func (s *Store) JoinToken(ctx context.Context, secretHash []byte) (JoinToken, error) {
	return joinToken(ctx, s.r, secretHash, now())
}

func joinToken(ctx context.Context, q queryer, secretHash []byte, at int64) (JoinToken, error) {
	t, err := scanJoinToken(q.QueryRowContext(ctx, `SELECT `+joinTokenCols+` FROM join_tokens WHERE secret_hash = ?`, secretHash))
	if err != nil {
		return JoinToken{}, notFound(err, "join token")
	}
	switch {
	case t.UsedMS != 0:
		return t, fmt.Errorf("used by %s at %s: %w", t.UsedBy, Time(t.UsedMS).Format("2006-01-02 15:04:05Z"), ErrTokenUsed)
	case at >= t.ExpiresMS:
		return t, fmt.Errorf("expired at %s: %w", Time(t.ExpiresMS).Format("2006-01-02 15:04:05Z"), ErrTokenExpired)
	}
	return t, nil
}

// RedeemJoinToken uses the token whose secret hashes to secretHash for
// cert.Host and records cert, in one transaction: of two hosts racing with
// one token exactly one gets a certificate, and a certificate is never
// handed out without its record (so it can be revoked). The errors are
// JoinToken's.
func (s *Store) RedeemJoinToken(ctx context.Context, secretHash []byte, cert HostCert) (JoinToken, error) {
	var t JoinToken
	err := s.tx(ctx, func(tx *sql.Tx) error {
		at := now()
		var err error
		if t, err = joinToken(ctx, tx, secretHash, at); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE join_tokens SET used_ms = ?, used_by = ? WHERE secret_hash = ? AND used_ms = 0`,
			at, cert.Host, secretHash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("join token: %w", ErrTokenUsed)
		}
		t.UsedMS, t.UsedBy = at, cert.Host
		return insertHostCert(ctx, tx, cert, at)
	})
	return t, err
}

// AddHostCert records a certificate issued without a token (a renewal).
func (s *Store) AddHostCert(ctx context.Context, cert HostCert) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return insertHostCert(ctx, tx, cert, now()) })
}

func insertHostCert(ctx context.Context, tx *sql.Tx, c HostCert, at int64) error {
	if c.Serial == "" || c.Role == "" || c.Host == "" || c.NotAfterMS == 0 {
		return errors.New("store: host certificate needs a serial, a role, a host and an expiry")
	}
	if c.CreatedMS == 0 {
		c.CreatedMS = at
	}
	names, err := json.Marshal(nonNil(c.Names))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO host_certs (serial, role, host, names, created_ms, not_after_ms, revoked_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		c.Serial, c.Role, c.Host, string(names), c.CreatedMS, c.NotAfterMS, c.RevokedMS)
	return conflict(err, "host certificate "+c.Serial)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const hostCertCols = `serial, role, host, names, created_ms, not_after_ms, revoked_ms`

func scanHostCert(sc interface{ Scan(...any) error }) (HostCert, error) {
	var c HostCert
	var names string
	if err := sc.Scan(&c.Serial, &c.Role, &c.Host, &names, &c.CreatedMS, &c.NotAfterMS, &c.RevokedMS); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(names), &c.Names); err != nil {
		return c, fmt.Errorf("host certificate %s: names: %w", c.Serial, err)
	}
	return c, nil
}

// HostCert returns the certificate with serial; ErrNotFound if none was
// issued to a joined host (the front-end's own certificates are not kept).
func (s *Store) HostCert(ctx context.Context, serial string) (HostCert, error) {
	c, err := scanHostCert(s.r.QueryRowContext(ctx, `SELECT `+hostCertCols+` FROM host_certs WHERE serial = ?`, serial))
	return c, notFound(err, "host certificate "+serial)
}

// HostCerts lists the certificates issued to hosts, oldest first.
func (s *Store) HostCerts(ctx context.Context) ([]HostCert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+hostCertCols+` FROM host_certs ORDER BY created_ms, serial`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HostCert
	for rows.Next() {
		c, err := scanHostCert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeHostCerts revokes every certificate not yet revoked of the host that
// name designates: its host name, or any of the names and addresses its
// certificates carry (operators know a node by the address in NODES). It
// returns those it revoked; none is ErrNotFound, so a typo does not pass
// for a revocation.
func (s *Store) RevokeHostCerts(ctx context.Context, name string) ([]HostCert, error) {
	var out []HostCert
	err := s.tx(ctx, func(tx *sql.Tx) error {
		at := now()
		rows, err := tx.QueryContext(ctx, `SELECT `+hostCertCols+` FROM host_certs
			WHERE revoked_ms = 0 AND (host = ? OR EXISTS (SELECT 1 FROM json_each(host_certs.names) WHERE value = ?))
			ORDER BY created_ms, serial`, name, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			c, err := scanHostCert(rows)
			if err != nil {
				rows.Close()
				return err
			}
			c.RevokedMS = at
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
			return fmt.Errorf("no certificate in force for host %s: %w", name, ErrNotFound)
		}
		for _, c := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE host_certs SET revoked_ms = ? WHERE serial = ?`, at, c.Serial); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
