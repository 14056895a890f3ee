// Package store keeps the cloud's records in one embedded SQLite database per
// host (modernc.org/sqlite: pure Go, so the binary stays static).
//
// Every SQL statement of the project lives in this package, behind typed
// methods, so that a second dialect (PostgreSQL for a highly available
// front-end) is a contained change. Roles own their tables and never write
// another role's. The schema evolves through the numbered migrations in
// migrations.go.
//
// Concurrency: one writer connection (SQLite allows one writer; a pool of
// writers only trades SQLITE_BUSY for latency) with immediate transactions,
// and a separate pool of read-only connections that WAL lets run beside it.
// Other processes (the `euca credentials` subcommand while the cloud runs)
// share the file through WAL and the busy timeout.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinels the API layers map to their own error codes.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
)

// Store is the handle every role shares.
type Store struct {
	w    *sql.DB // the one writer
	r    *sql.DB // readers
	path string
}

// FileName is the database's name inside the data directory.
const FileName = "euca.db"

// Open opens (creating if needed) the database in dir and brings its schema
// up to date.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.NumCPU()))
	s := &Store{w: w, r: r, path: path}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// The database holds secret keys: only the owner may read it.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Chmod(p, 0o600)
	}
	return s, nil
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// tx runs fn in one immediate write transaction, committing when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(t); err != nil {
		_ = t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// now is the store's clock, in Unix milliseconds; a var so tests can pin it.
var now = func() int64 { return time.Now().UnixMilli() }

// Time converts a stored timestamp back to time.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// queryer is what reads need; both *sql.DB and *sql.Tx satisfy it, so a read
// helper can run inside a write transaction too.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// notFound turns sql.ErrNoRows into ErrNotFound, naming what was missing.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var e interface{ Code() int }
	if errors.As(err, &e) {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return e.Code() == 2067 || e.Code() == 1555
	}
	return false
}

// conflict maps unique violations to ErrConflict, keeping other errors.
func conflict(err error, what string) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return err
}
