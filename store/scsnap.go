package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// States of a storage controller's snapshot row: scapi's three, and
// deleting (the intent of DeleteSnapshot, redone at start-up until the row
// is gone).
const (
	SCSnapPending   = "pending"
	SCSnapCompleted = "completed"
	SCSnapError     = "error"
	SCSnapDeleting  = "deleting"
)

// ErrSCSnapState: the snapshot is not in a state that allows the change
// (a copy of a snapshot not completed, a chunk added to one no longer
// pending).
var ErrSCSnapState = errors.New("store: snapshot in the wrong state")

// SCSnapshot is a storage controller's snapshot row.
type SCSnapshot struct {
	ID, VolumeID string
	State        string
	SizeBytes    int64
	ChunkSize    int64
	ChunkCount   int // chunk indexes: ceil(SizeBytes / ChunkSize)
	// NextChunk: every index below it is recorded, as data (a row of
	// SCSnapshotChunks) or as a hole (no row).
	NextChunk  int
	DataChunks int
	NewChunks  int // data chunks this snapshot stored (the others were in Walrus)
	NewBytes   int64
	SourceID   string // the snapshot a copy was made of
	Error      string
	StartedMS  int64
	// CompletedMS is when it completed; 0 until then.
	CompletedMS int64
}

// SCSnapshotChunk is one chunk of data of a snapshot.
type SCSnapshotChunk struct {
	Idx  int
	Hash string
	Size int64
}

// SCChunk is a stored chunk and how many snapshot chunks refer to it.
type SCChunk struct {
	Hash string
	Size int64
	Refs int
}

const scSnapshotColumns = `id, volume_id, state, size_bytes, chunk_size, chunk_count, next_chunk, data_chunks,
	new_chunks, new_bytes, source_id, error, started_ms, completed_ms`

func scanSCSnapshot(row interface{ Scan(...any) error }) (SCSnapshot, error) {
	var s SCSnapshot
	err := row.Scan(&s.ID, &s.VolumeID, &s.State, &s.SizeBytes, &s.ChunkSize, &s.ChunkCount, &s.NextChunk, &s.DataChunks,
		&s.NewChunks, &s.NewBytes, &s.SourceID, &s.Error, &s.StartedMS, &s.CompletedMS)
	return s, err
}

// CreateSCSnapshot records a new pending snapshot with nothing recorded
// yet. ErrConflict when the id is taken.
func (s *Store) CreateSCSnapshot(ctx context.Context, sn SCSnapshot) error {
	if sn.StartedMS == 0 {
		sn.StartedMS = now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sc_snapshots (id, volume_id, state, size_bytes, chunk_size, chunk_count, started_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, sn.ID, sn.VolumeID, SCSnapPending, sn.SizeBytes, sn.ChunkSize, sn.ChunkCount, sn.StartedMS)
		return conflict(err, "snapshot "+sn.ID)
	})
}

// SCSnapshot returns a snapshot's row.
func (s *Store) SCSnapshot(ctx context.Context, id string) (SCSnapshot, error) {
	sn, err := scanSCSnapshot(s.r.QueryRowContext(ctx, `SELECT `+scSnapshotColumns+` FROM sc_snapshots WHERE id = ?`, id))
	return sn, notFound(err, "snapshot "+id)
}

// SCSnapshots returns the snapshots named, every one when none is; by id.
// Unknown ids are left out.
func (s *Store) SCSnapshots(ctx context.Context, ids ...string) ([]SCSnapshot, error) {
	q := `SELECT ` + scSnapshotColumns + ` FROM sc_snapshots`
	var args []any
	if len(ids) > 0 {
		q += ` WHERE id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: snapshots: %w", err)
	}
	defer rows.Close()
	var out []SCSnapshot
	for rows.Next() {
		sn, err := scanSCSnapshot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// SCSnapshotChunks returns a snapshot's data chunks by index.
func (s *Store) SCSnapshotChunks(ctx context.Context, id string) ([]SCSnapshotChunk, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT sc.idx, sc.hash, c.size FROM sc_snapshot_chunks sc JOIN sc_chunks c ON c.hash = sc.hash
		WHERE sc.snapshot_id = ? ORDER BY sc.idx`, id)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot chunks: %w", err)
	}
	defer rows.Close()
	var out []SCSnapshotChunk
	for rows.Next() {
		var c SCSnapshotChunk
		if err := rows.Scan(&c.Idx, &c.Hash, &c.Size); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SCChunk returns a chunk's row.
func (s *Store) SCChunk(ctx context.Context, hash string) (SCChunk, error) {
	c := SCChunk{Hash: hash}
	err := s.r.QueryRowContext(ctx, `SELECT size, refs FROM sc_chunks WHERE hash = ?`, hash).Scan(&c.Size, &c.Refs)
	return c, notFound(err, "chunk "+hash)
}

// IntendSCChunk is the step before a chunk's upload: it reports whether
// the chunk is stored and referenced already (then no upload is needed);
// otherwise it makes sure the chunk has a row, with no reference, so that
// an upload a crash interrupts leaves garbage that SCGarbageChunks finds
// rather than an object nothing names.
func (s *Store) IntendSCChunk(ctx context.Context, hash string, size int64) (stored bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var refs int
		err := tx.QueryRowContext(ctx, `SELECT refs FROM sc_chunks WHERE hash = ?`, hash).Scan(&refs)
		switch {
		case err == nil:
			stored = refs > 0
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sc_chunks (hash, size, refs) VALUES (?, ?, 0)`, hash, size)
		return err
	})
	return stored, err
}

// AddSCSnapshotChunk records chunk idx of a pending snapshot as the data
// hash, takes a reference on the chunk, and moves the snapshot's next
// chunk past idx, in one transaction. The chunk counts as new to the
// snapshot when it uploaded it and no other reference came first.
// ErrSCSnapState when the snapshot is not pending or idx is already
// behind it; ErrNotFound when it does not exist.
func (s *Store) AddSCSnapshotChunk(ctx context.Context, id string, idx int, hash string, size int64, stored bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := pendingAt(ctx, tx, id, idx); err != nil {
			return err
		}
		var refs int
		if err := tx.QueryRowContext(ctx, `INSERT INTO sc_chunks (hash, size, refs) VALUES (?, ?, 1)
			ON CONFLICT (hash) DO UPDATE SET refs = refs + 1 RETURNING refs`, hash, size).Scan(&refs); err != nil {
			return err
		}
		stored = stored && refs == 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO sc_snapshot_chunks (snapshot_id, idx, hash) VALUES (?, ?, ?)`, id, idx, hash); err != nil {
			return conflict(err, fmt.Sprintf("snapshot %s chunk %d", id, idx))
		}
		var newChunks, newBytes int64
		if stored {
			newChunks, newBytes = 1, size
		}
		_, err := tx.ExecContext(ctx, `UPDATE sc_snapshots SET next_chunk = ?, data_chunks = data_chunks + 1,
			new_chunks = new_chunks + ?, new_bytes = new_bytes + ? WHERE id = ?`, idx+1, newChunks, newBytes, id)
		return err
	})
}

// pendingAt checks that snapshot id is pending and has not recorded idx.
func pendingAt(ctx context.Context, tx *sql.Tx, id string, idx int) error {
	var state string
	var next, count int
	err := tx.QueryRowContext(ctx, `SELECT state, next_chunk, chunk_count FROM sc_snapshots WHERE id = ?`, id).Scan(&state, &next, &count)
	if err != nil {
		return notFound(err, "snapshot "+id)
	}
	if state != SCSnapPending {
		return fmt.Errorf("snapshot %s is %s: %w", id, state, ErrSCSnapState)
	}
	if idx < next || idx >= count {
		return fmt.Errorf("snapshot %s: chunk %d is not after %d and within %d: %w", id, idx, next, count, ErrSCSnapState)
	}
	return nil
}

// SkipSCSnapshotChunks records the indexes from the snapshot's next chunk
// up to next (excluded) as holes. ErrSCSnapState when the snapshot is not
// pending or next lies behind or beyond it.
func (s *Store) SkipSCSnapshotChunks(ctx context.Context, id string, next int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := pendingAt(ctx, tx, id, next-1); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE sc_snapshots SET next_chunk = ? WHERE id = ?`, next, id)
		return err
	})
}

// CompleteSCSnapshot marks a pending snapshot whose every chunk is
// recorded completed. ErrSCSnapState otherwise.
func (s *Store) CompleteSCSnapshot(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sc_snapshots SET state = ?, completed_ms = ?
			WHERE id = ? AND state = ? AND next_chunk = chunk_count`, SCSnapCompleted, now(), id, SCSnapPending)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return fmt.Errorf("complete snapshot %s: %w", id, ErrSCSnapState)
	})
}

// FailSCSnapshot puts a pending or completed snapshot in the error state
// with the reason (one already failed keeps its first reason). Its chunks
// stay referenced until it is deleted. ErrSCSnapState when it is being
// deleted; ErrNotFound when it is gone.
func (s *Store) FailSCSnapshot(ctx context.Context, id, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM sc_snapshots WHERE id = ?`, id).Scan(&state); err != nil {
			return notFound(err, "snapshot "+id)
		}
		switch state {
		case SCSnapDeleting:
			return fmt.Errorf("snapshot %s is %s: %w", id, state, ErrSCSnapState)
		case SCSnapError:
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE sc_snapshots SET state = ?, error = ? WHERE id = ?`, SCSnapError, reason, id)
		return err
	})
}

// CopySCSnapshot makes snapshot id a pending copy of the completed
// snapshot sourceID: the same chunks, each referenced once more, and every
// chunk recorded (what is left is its manifest). ErrNotFound when the
// source does not exist, ErrSCSnapState when it is not completed,
// ErrConflict when id is taken.
func (s *Store) CopySCSnapshot(ctx context.Context, id, sourceID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		src, err := scanSCSnapshot(tx.QueryRowContext(ctx, `SELECT `+scSnapshotColumns+` FROM sc_snapshots WHERE id = ?`, sourceID))
		if err != nil {
			return notFound(err, "snapshot "+sourceID)
		}
		if src.State != SCSnapCompleted {
			return fmt.Errorf("snapshot %s is %s: %w", sourceID, src.State, ErrSCSnapState)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sc_snapshots (id, volume_id, state, size_bytes, chunk_size, chunk_count,
			next_chunk, data_chunks, source_id, started_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, src.VolumeID, SCSnapPending, src.SizeBytes, src.ChunkSize, src.ChunkCount, src.ChunkCount, src.DataChunks, sourceID, now())
		if err != nil {
			return conflict(err, "snapshot "+id)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sc_snapshot_chunks (snapshot_id, idx, hash)
			SELECT ?, idx, hash FROM sc_snapshot_chunks WHERE snapshot_id = ?`, id, sourceID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sc_chunks SET refs = refs +
			(SELECT count(*) FROM sc_snapshot_chunks sc WHERE sc.snapshot_id = ? AND sc.hash = sc_chunks.hash)
			WHERE hash IN (SELECT hash FROM sc_snapshot_chunks WHERE snapshot_id = ?)`, id, id)
		return err
	})
}

// MarkSCSnapshotDeleting records the intent to delete a snapshot and
// returns its row as it was. ErrNotFound when it does not exist.
func (s *Store) MarkSCSnapshotDeleting(ctx context.Context, id string) (SCSnapshot, error) {
	var sn SCSnapshot
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		sn, err = scanSCSnapshot(tx.QueryRowContext(ctx, `SELECT `+scSnapshotColumns+` FROM sc_snapshots WHERE id = ?`, id))
		if err != nil {
			return notFound(err, "snapshot "+id)
		}
		_, err = tx.ExecContext(ctx, `UPDATE sc_snapshots SET state = ? WHERE id = ?`, SCSnapDeleting, id)
		return err
	})
	return sn, err
}

// DeleteSCSnapshot removes a snapshot and its references to chunks in one
// transaction, and returns the chunks no snapshot refers to any more: the
// caller deletes their objects, then their rows (DeleteSCChunk). Deleting
// a snapshot that does not exist does nothing.
func (s *Store) DeleteSCSnapshot(ctx context.Context, id string) (unused []string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hash, count(*) FROM sc_snapshot_chunks WHERE snapshot_id = ? GROUP BY hash`, id)
		if err != nil {
			return err
		}
		counts := map[string]int{}
		for rows.Next() {
			var h string
			var n int
			if err := rows.Scan(&h, &n); err != nil {
				rows.Close()
				return err
			}
			counts[h] = n
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sc_snapshot_chunks WHERE snapshot_id = ?`, id); err != nil {
			return err
		}
		for h, n := range counts {
			var refs int
			if err := tx.QueryRowContext(ctx, `UPDATE sc_chunks SET refs = refs - ? WHERE hash = ? RETURNING refs`, n, h).Scan(&refs); err != nil {
				return fmt.Errorf("chunk %s: %w", h, err)
			}
			if refs < 0 {
				return fmt.Errorf("chunk %s: %d references left: the counts are wrong", h, refs)
			}
			if refs == 0 {
				unused = append(unused, h)
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sc_snapshots WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: delete snapshot %s: %w", id, err)
	}
	return unused, nil
}

// SCGarbageChunks returns the chunks no snapshot refers to.
func (s *Store) SCGarbageChunks(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT hash FROM sc_chunks WHERE refs = 0 ORDER BY hash`)
	if err != nil {
		return nil, fmt.Errorf("store: garbage chunks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteSCChunk removes a chunk's row if nothing refers to it (its object
// is already deleted) and reports whether it did.
func (s *Store) DeleteSCChunk(ctx context.Context, hash string) (bool, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sc_chunks WHERE hash = ? AND refs = 0`, hash)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}
