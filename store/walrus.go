package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Walrus's sentinels, beside ErrNotFound and ErrConflict.
var (
	// ErrWalrusLimit: the write would take an account or a bucket over a
	// configured limit (WALRUS_MAX_BUCKETS, WALRUS_MAX_BUCKET_SIZE_MB).
	ErrWalrusLimit = errors.New("store: walrus limit reached")
	// ErrWalrusNotEmpty: a bucket that still holds objects.
	ErrWalrusNotEmpty = errors.New("store: bucket not empty")
	// ErrWalrusPrecondition: a conditional write whose condition failed.
	ErrWalrusPrecondition = errors.New("store: precondition failed")
)

// WalrusGrant is one entry of an S3 access control list.
type WalrusGrant struct {
	// Type is the grantee's xsi:type: CanonicalUser, Group or
	// AmazonCustomerByEmail.
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	URI        string `json:"uri,omitempty"`
	Email      string `json:"email,omitempty"`
	Permission string `json:"perm"` // FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP
}

// WalrusBucket is a bucket's row.
type WalrusBucket struct {
	Name      string
	AccountID string
	Location  string
	ACL       []WalrusGrant
	SizeBytes int64
	Objects   int64
	CreatedMS int64
}

// WalrusObject is an object's metadata; its data is the backend's blob.
type WalrusObject struct {
	Bucket, Key string
	Blob        string
	Size        int64
	ETag        string // without quotes
	Parts       int    // 0 for a single PUT
	// PartList is a multipart object's parts in order; nil for a single
	// PUT, and for a multipart object stored before part lists were kept.
	PartList []WalrusObjectPart
	OwnerID  string
	ACL      []WalrusGrant
	// Headers are what is returned with the data: Content-Type,
	// Content-Encoding, ..., and the user metadata X-Amz-Meta-*.
	Headers    map[string]string
	Tags       []Tag
	Checksum   string
	ModifiedMS int64
}

// WalrusObjectPart is one part of an object made by a multipart upload.
type WalrusObjectPart struct {
	Number int    `json:"n"` // as uploaded
	Size   int64  `json:"size"`
	ETag   string `json:"etag"`
}

// WalrusCompletion is a multipart upload completed within the last
// WalrusCompletionTTL: what its Complete answered.
type WalrusCompletion struct {
	UploadID, Bucket, Key string
	ETag                  string
	Parts                 []WalrusObjectPart
	CompletedMS           int64
}

// WalrusCompletionTTL is how long a completed upload is remembered.
const WalrusCompletionTTL = 24 * 60 * 60 * 1000 // ms

// WalrusUpload is a multipart upload in progress.
type WalrusUpload struct {
	ID, Bucket, Key string
	OwnerID         string
	ACL             []WalrusGrant
	Headers         map[string]string
	Tags            []Tag
	InitiatedMS     int64
}

// WalrusPart is an uploaded part of a multipart upload.
type WalrusPart struct {
	UploadID   string
	Number     int
	Blob       string
	Size       int64
	ETag       string
	ModifiedMS int64
}

// WalrusPutOptions are the conditions and limits of an object write.
type WalrusPutOptions struct {
	// MaxBucketBytes refuses a write that would take the bucket's total
	// size over it (ErrWalrusLimit); 0 means no limit.
	MaxBucketBytes int64
	// IfNoneMatch refuses to overwrite an existing object
	// (ErrWalrusPrecondition): PutObject's If-None-Match: *.
	IfNoneMatch bool
	// IfMatch, when set, refuses the write unless the current object has
	// this ETag (ErrWalrusPrecondition; ErrNotFound when there is none).
	IfMatch string
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil { // plain structs and maps of strings
		panic(err)
	}
	return string(b)
}

func fromJSON[T any](s string, what string) (T, error) {
	var v T
	if s == "" {
		return v, nil
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}

// Buckets.

const walrusBucketColumns = `name, account_id, location, acl, size_bytes, object_count, created_ms`

func scanWalrusBucket(row interface{ Scan(...any) error }) (WalrusBucket, error) {
	var b WalrusBucket
	var acl string
	if err := row.Scan(&b.Name, &b.AccountID, &b.Location, &acl, &b.SizeBytes, &b.Objects, &b.CreatedMS); err != nil {
		return b, err
	}
	var err error
	b.ACL, err = fromJSON[[]WalrusGrant](acl, "bucket acl")
	return b, err
}

// CreateWalrusBucket adds a bucket. ErrConflict when the name is taken (by
// any account: bucket names are global); ErrWalrusLimit when the account
// already owns maxPerAccount buckets (0: no limit).
func (s *Store) CreateWalrusBucket(ctx context.Context, b WalrusBucket, maxPerAccount int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM walrus_buckets WHERE name = ?`, b.Name).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return fmt.Errorf("bucket %s: %w", b.Name, ErrConflict)
		}
		if maxPerAccount > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM walrus_buckets WHERE account_id = ?`, b.AccountID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerAccount {
				return fmt.Errorf("account %s owns %d buckets: %w", b.AccountID, n, ErrWalrusLimit)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO walrus_buckets (name, account_id, location, acl, created_ms) VALUES (?, ?, ?, ?, ?)`,
			b.Name, b.AccountID, b.Location, toJSON(b.ACL), now())
		return conflict(err, "bucket "+b.Name)
	})
}

// WalrusBucket returns a bucket by name.
func (s *Store) WalrusBucket(ctx context.Context, name string) (WalrusBucket, error) {
	b, err := scanWalrusBucket(s.r.QueryRowContext(ctx, `SELECT `+walrusBucketColumns+` FROM walrus_buckets WHERE name = ?`, name))
	return b, notFound(err, "bucket "+name)
}

// WalrusBuckets lists an account's buckets by name; every bucket when
// accountID is "".
func (s *Store) WalrusBuckets(ctx context.Context, accountID string) ([]WalrusBucket, error) {
	q := `SELECT ` + walrusBucketColumns + ` FROM walrus_buckets`
	var args []any
	if accountID != "" {
		q += ` WHERE account_id = ?`
		args = append(args, accountID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: buckets: %w", err)
	}
	defer rows.Close()
	var out []WalrusBucket
	for rows.Next() {
		b, err := scanWalrusBucket(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteWalrusBucket removes an empty bucket with its configuration and
// its unfinished multipart uploads, returning the blobs of their parts for
// the caller to delete. ErrWalrusNotEmpty when it holds objects.
func (s *Store) DeleteWalrusBucket(ctx context.Context, name string) (partBlobs []string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT account_id FROM walrus_buckets WHERE name = ?`, name).Scan(&owner)
		if err != nil {
			return notFound(err, "bucket "+name)
		}
		var has int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM walrus_objects WHERE bucket = ? LIMIT 1)`, name).Scan(&has); err != nil {
			return err
		}
		if has > 0 {
			return fmt.Errorf("bucket %s: %w", name, ErrWalrusNotEmpty)
		}
		if partBlobs, err = blobsOfUploads(ctx, tx, `u.bucket = ?`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM walrus_buckets WHERE name = ?`, name)
		return err
	})
	return partBlobs, err
}

func blobsOfUploads(ctx context.Context, q queryer, where string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT p.blob FROM walrus_parts p JOIN walrus_uploads u ON u.id = p.upload_id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: parts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SetWalrusBucketACL replaces a bucket's access control list.
func (s *Store) SetWalrusBucketACL(ctx context.Context, name string, acl []WalrusGrant) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE walrus_buckets SET acl = ? WHERE name = ?`, toJSON(acl), name)
		return affected(res, err, "bucket "+name)
	})
}

func affected(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// WalrusBucketConfig returns one configuration document of a bucket (its
// policy, CORS rules, ...). ErrNotFound when it has none of that kind.
func (s *Store) WalrusBucketConfig(ctx context.Context, bucket, kind string) (string, error) {
	var body string
	err := s.r.QueryRowContext(ctx, `SELECT body FROM walrus_bucket_configs WHERE bucket = ? AND kind = ?`, bucket, kind).Scan(&body)
	return body, notFound(err, kind+" of bucket "+bucket)
}

// WalrusBucketConfigs returns, by kind, those of the asked kinds of
// configuration document that a bucket has, in one read (Walrus reads the
// documents that govern access on every request).
func (s *Store) WalrusBucketConfigs(ctx context.Context, bucket string, kinds ...string) (map[string]string, error) {
	out := map[string]string{}
	if len(kinds) == 0 {
		return out, nil
	}
	args := []any{bucket}
	marks := make([]string, len(kinds))
	for i, k := range kinds {
		marks[i] = "?"
		args = append(args, k)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT kind, body FROM walrus_bucket_configs WHERE bucket = ? AND kind IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: configs of bucket %s: %w", bucket, err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, body string
		if err := rows.Scan(&kind, &body); err != nil {
			return nil, err
		}
		out[kind] = body
	}
	return out, rows.Err()
}

// PutWalrusBucketConfig stores a configuration document, replacing the
// previous one of its kind.
func (s *Store) PutWalrusBucketConfig(ctx context.Context, bucket, kind, body string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO walrus_bucket_configs (bucket, kind, body) VALUES (?, ?, ?)
			ON CONFLICT (bucket, kind) DO UPDATE SET body = excluded.body`, bucket, kind, body)
		if err != nil && isForeignKeyViolation(err) {
			return fmt.Errorf("bucket %s: %w", bucket, ErrNotFound)
		}
		return err
	})
}

// isForeignKeyViolation reports SQLITE_CONSTRAINT_FOREIGNKEY (787).
func isForeignKeyViolation(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code() == 787
}

// DeleteWalrusBucketConfig removes a configuration document; harmless when
// there is none.
func (s *Store) DeleteWalrusBucketConfig(ctx context.Context, bucket, kind string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM walrus_bucket_configs WHERE bucket = ? AND kind = ?`, bucket, kind)
		return err
	})
}

// Objects.

const walrusObjectColumns = `bucket, key, blob, size, etag, parts, owner_id, acl, headers, tags, checksum, modified_ms, part_list`

func scanWalrusObject(row interface{ Scan(...any) error }) (WalrusObject, error) {
	var o WalrusObject
	var acl, headers, tags, partList string
	if err := row.Scan(&o.Bucket, &o.Key, &o.Blob, &o.Size, &o.ETag, &o.Parts, &o.OwnerID, &acl, &headers, &tags, &o.Checksum, &o.ModifiedMS, &partList); err != nil {
		return o, err
	}
	var err error
	if o.PartList, err = fromJSON[[]WalrusObjectPart](partList, "object part list"); err != nil {
		return o, err
	}
	if o.ACL, err = fromJSON[[]WalrusGrant](acl, "object acl"); err != nil {
		return o, err
	}
	if o.Headers, err = fromJSON[map[string]string](headers, "object headers"); err != nil {
		return o, err
	}
	o.Tags, err = fromJSON[[]Tag](tags, "object tags")
	return o, err
}

// WalrusObject returns an object's metadata.
func (s *Store) WalrusObject(ctx context.Context, bucket, key string) (WalrusObject, error) {
	o, err := scanWalrusObject(s.r.QueryRowContext(ctx, `SELECT `+walrusObjectColumns+` FROM walrus_objects WHERE bucket = ? AND key = ?`, bucket, key))
	return o, notFound(err, "object "+bucket+"/"+key)
}

// PutWalrusObject makes o the object at its key, replacing what was there,
// and keeps the bucket's size and count. It returns the blob of the object
// it replaced ("" when there was none), for the caller to delete once the
// new one is visible. ErrNotFound when the bucket is gone; ErrWalrusLimit
// or ErrWalrusPrecondition as opt says.
func (s *Store) PutWalrusObject(ctx context.Context, o WalrusObject, opt WalrusPutOptions) (oldBlob string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var e error
		oldBlob, e = putWalrusObject(ctx, tx, o, opt)
		return e
	})
	return oldBlob, err
}

func putWalrusObject(ctx context.Context, tx *sql.Tx, o WalrusObject, opt WalrusPutOptions) (string, error) {
	var size int64
	if err := tx.QueryRowContext(ctx, `SELECT size_bytes FROM walrus_buckets WHERE name = ?`, o.Bucket).Scan(&size); err != nil {
		return "", notFound(err, "bucket "+o.Bucket)
	}
	var oldBlob, oldETag string
	var oldSize int64
	err := tx.QueryRowContext(ctx, `SELECT blob, size, etag FROM walrus_objects WHERE bucket = ? AND key = ?`, o.Bucket, o.Key).Scan(&oldBlob, &oldSize, &oldETag)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	switch {
	case opt.IfNoneMatch && exists:
		return "", fmt.Errorf("object %s exists: %w", o.Key, ErrWalrusPrecondition)
	case opt.IfMatch != "" && !exists:
		return "", fmt.Errorf("object %s: %w", o.Key, ErrNotFound)
	case opt.IfMatch != "" && opt.IfMatch != oldETag:
		return "", fmt.Errorf("object %s has another ETag: %w", o.Key, ErrWalrusPrecondition)
	}
	newSize := size - oldSize + o.Size
	if opt.MaxBucketBytes > 0 && o.Size > oldSize && newSize > opt.MaxBucketBytes {
		return "", fmt.Errorf("bucket %s would hold %d bytes: %w", o.Bucket, newSize, ErrWalrusLimit)
	}
	if o.ModifiedMS == 0 {
		o.ModifiedMS = now()
	}
	if o.Tags == nil {
		o.Tags = []Tag{}
	}
	partList := ""
	if len(o.PartList) > 0 {
		partList = toJSON(o.PartList)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO walrus_objects (`+walrusObjectColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (bucket, key) DO UPDATE SET blob = excluded.blob, size = excluded.size, etag = excluded.etag,
			parts = excluded.parts, owner_id = excluded.owner_id, acl = excluded.acl, headers = excluded.headers,
			tags = excluded.tags, checksum = excluded.checksum, modified_ms = excluded.modified_ms, part_list = excluded.part_list`,
		o.Bucket, o.Key, o.Blob, o.Size, o.ETag, o.Parts, o.OwnerID, toJSON(o.ACL), toJSON(o.Headers), toJSON(o.Tags), o.Checksum, o.ModifiedMS, partList); err != nil {
		return "", fmt.Errorf("store: put object: %w", err)
	}
	added := int64(1)
	if exists {
		added = 0
	}
	if _, err := tx.ExecContext(ctx, `UPDATE walrus_buckets SET size_bytes = ?, object_count = object_count + ? WHERE name = ?`, newSize, added, o.Bucket); err != nil {
		return "", err
	}
	return oldBlob, nil
}

// DeleteWalrusObject removes an object, returning its blob ("" when there
// was no such object).
func (s *Store) DeleteWalrusObject(ctx context.Context, bucket, key string) (blob string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var size int64
		err := tx.QueryRowContext(ctx, `DELETE FROM walrus_objects WHERE bucket = ? AND key = ? RETURNING blob, size`, bucket, key).Scan(&blob, &size)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE walrus_buckets SET size_bytes = size_bytes - ?, object_count = object_count - 1 WHERE name = ?`, size, bucket)
		return err
	})
	return blob, err
}

// ListWalrusObjects returns up to limit objects of a bucket whose keys
// start with prefix and sort after after, in key order.
func (s *Store) ListWalrusObjects(ctx context.Context, bucket, prefix, after string, limit int) ([]WalrusObject, error) {
	q := `SELECT ` + walrusObjectColumns + ` FROM walrus_objects WHERE bucket = ? AND key > ?`
	args := []any{bucket, after}
	if prefix != "" {
		// Every key that starts with prefix sorts below prefix+"\xff": no
		// byte of UTF-8 text is 0xff.
		q += ` AND key >= ? AND key < ?`
		args = append(args, prefix, prefix+"\xff")
	}
	q += ` ORDER BY key LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list objects: %w", err)
	}
	defer rows.Close()
	var out []WalrusObject
	for rows.Next() {
		o, err := scanWalrusObject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// SetWalrusObjectACL replaces an object's access control list.
func (s *Store) SetWalrusObjectACL(ctx context.Context, bucket, key string, acl []WalrusGrant) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE walrus_objects SET acl = ? WHERE bucket = ? AND key = ?`, toJSON(acl), bucket, key)
		return affected(res, err, "object "+bucket+"/"+key)
	})
}

// SetWalrusObjectTags replaces an object's tags (none: nil).
func (s *Store) SetWalrusObjectTags(ctx context.Context, bucket, key string, tags []Tag) error {
	if tags == nil {
		tags = []Tag{}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE walrus_objects SET tags = ? WHERE bucket = ? AND key = ?`, toJSON(tags), bucket, key)
		return affected(res, err, "object "+bucket+"/"+key)
	})
}

// WalrusBlobs returns every blob a bucket's rows refer to, objects' and
// parts': what a sweep of the backend must keep.
func (s *Store) WalrusBlobs(ctx context.Context, bucket string) (map[string]bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT blob FROM walrus_objects WHERE bucket = ?
		UNION ALL SELECT p.blob FROM walrus_parts p JOIN walrus_uploads u ON u.id = p.upload_id WHERE u.bucket = ?`, bucket, bucket)
	if err != nil {
		return nil, fmt.Errorf("store: blobs: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out[b] = true
	}
	return out, rows.Err()
}

// Multipart uploads.

const walrusUploadColumns = `id, bucket, key, owner_id, acl, headers, tags, initiated_ms`

func scanWalrusUpload(row interface{ Scan(...any) error }) (WalrusUpload, error) {
	var u WalrusUpload
	var acl, headers, tags string
	if err := row.Scan(&u.ID, &u.Bucket, &u.Key, &u.OwnerID, &acl, &headers, &tags, &u.InitiatedMS); err != nil {
		return u, err
	}
	var err error
	if u.ACL, err = fromJSON[[]WalrusGrant](acl, "upload acl"); err != nil {
		return u, err
	}
	if u.Headers, err = fromJSON[map[string]string](headers, "upload headers"); err != nil {
		return u, err
	}
	u.Tags, err = fromJSON[[]Tag](tags, "upload tags")
	return u, err
}

// CreateWalrusUpload records a new multipart upload. ErrNotFound when the
// bucket is gone.
func (s *Store) CreateWalrusUpload(ctx context.Context, u WalrusUpload) error {
	if u.Tags == nil {
		u.Tags = []Tag{}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO walrus_uploads (`+walrusUploadColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Bucket, u.Key, u.OwnerID, toJSON(u.ACL), toJSON(u.Headers), toJSON(u.Tags), now())
		if err != nil && isForeignKeyViolation(err) {
			return fmt.Errorf("bucket %s: %w", u.Bucket, ErrNotFound)
		}
		return conflict(err, "upload "+u.ID)
	})
}

// WalrusUpload returns a multipart upload by id.
func (s *Store) WalrusUpload(ctx context.Context, id string) (WalrusUpload, error) {
	u, err := scanWalrusUpload(s.r.QueryRowContext(ctx, `SELECT `+walrusUploadColumns+` FROM walrus_uploads WHERE id = ?`, id))
	return u, notFound(err, "upload "+id)
}

// WalrusUploads lists a bucket's uploads whose keys start with prefix, by
// key, then by when they started.
func (s *Store) WalrusUploads(ctx context.Context, bucket, prefix string) ([]WalrusUpload, error) {
	q := `SELECT ` + walrusUploadColumns + ` FROM walrus_uploads WHERE bucket = ?`
	args := []any{bucket}
	if prefix != "" {
		q += ` AND key >= ? AND key < ?`
		args = append(args, prefix, prefix+"\xff")
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY key, initiated_ms, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: uploads: %w", err)
	}
	defer rows.Close()
	var out []WalrusUpload
	for rows.Next() {
		u, err := scanWalrusUpload(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// PutWalrusPart records an uploaded part, replacing an earlier upload of
// the same number, whose blob it returns ("" when there was none).
// ErrNotFound when the upload is gone (completed or aborted meanwhile).
func (s *Store) PutWalrusPart(ctx context.Context, p WalrusPart) (oldBlob string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM walrus_uploads WHERE id = ?`, p.UploadID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("upload %s: %w", p.UploadID, ErrNotFound)
		}
		err := tx.QueryRowContext(ctx, `SELECT blob FROM walrus_parts WHERE upload_id = ? AND number = ?`, p.UploadID, p.Number).Scan(&oldBlob)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO walrus_parts (upload_id, number, blob, size, etag, modified_ms) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (upload_id, number) DO UPDATE SET blob = excluded.blob, size = excluded.size, etag = excluded.etag, modified_ms = excluded.modified_ms`,
			p.UploadID, p.Number, p.Blob, p.Size, p.ETag, now())
		return err
	})
	return oldBlob, err
}

// WalrusParts lists an upload's parts by number.
func (s *Store) WalrusParts(ctx context.Context, uploadID string) ([]WalrusPart, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT upload_id, number, blob, size, etag, modified_ms FROM walrus_parts WHERE upload_id = ? ORDER BY number`, uploadID)
	if err != nil {
		return nil, fmt.Errorf("store: parts: %w", err)
	}
	defer rows.Close()
	var out []WalrusPart
	for rows.Next() {
		var p WalrusPart
		if err := rows.Scan(&p.UploadID, &p.Number, &p.Blob, &p.Size, &p.ETag, &p.ModifiedMS); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CompleteWalrusUpload makes o (whose blob is the concatenated parts, and
// whose PartList names them) the object and ends the upload in one
// transaction, remembering it as completed (WalrusCompletedUpload) and
// forgetting completions older than WalrusCompletionTTL. It returns the
// replaced object's blob and the blobs of all the upload's parts, for the
// caller to delete. ErrNotFound when the upload is gone.
func (s *Store) CompleteWalrusUpload(ctx context.Context, uploadID string, o WalrusObject, opt WalrusPutOptions) (oldBlob string, partBlobs []string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM walrus_uploads WHERE id = ?`, uploadID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("upload %s: %w", uploadID, ErrNotFound)
		}
		var err error
		if oldBlob, err = putWalrusObject(ctx, tx, o, opt); err != nil {
			return err
		}
		if partBlobs, err = blobsOfUploads(ctx, tx, `u.id = ?`, uploadID); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM walrus_uploads WHERE id = ?`, uploadID); err != nil {
			return err
		}
		t := now()
		if _, err := tx.ExecContext(ctx, `DELETE FROM walrus_completed_uploads WHERE completed_ms < ?`, t-WalrusCompletionTTL); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO walrus_completed_uploads (id, bucket, key, etag, parts, completed_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			uploadID, o.Bucket, o.Key, o.ETag, toJSON(o.PartList), t)
		return err
	})
	return oldBlob, partBlobs, err
}

// WalrusCompletedUpload returns an upload completed within the last
// WalrusCompletionTTL; ErrNotFound otherwise.
func (s *Store) WalrusCompletedUpload(ctx context.Context, id string) (WalrusCompletion, error) {
	var c WalrusCompletion
	var parts string
	err := s.r.QueryRowContext(ctx, `SELECT id, bucket, key, etag, parts, completed_ms FROM walrus_completed_uploads WHERE id = ? AND completed_ms >= ?`,
		id, now()-WalrusCompletionTTL).Scan(&c.UploadID, &c.Bucket, &c.Key, &c.ETag, &parts, &c.CompletedMS)
	if err != nil {
		return c, notFound(err, "completed upload "+id)
	}
	c.Parts, err = fromJSON[[]WalrusObjectPart](parts, "completed upload parts")
	return c, err
}

// AbortWalrusUpload ends an upload without an object, returning its parts'
// blobs. ErrNotFound when it is gone.
func (s *Store) AbortWalrusUpload(ctx context.Context, uploadID string) (partBlobs []string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var e error
		if partBlobs, e = blobsOfUploads(ctx, tx, `u.id = ?`, uploadID); e != nil {
			return e
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM walrus_uploads WHERE id = ?`, uploadID)
		return affected(res, err, "upload "+uploadID)
	})
	return partBlobs, err
}
