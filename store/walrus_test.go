package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func openWalrus(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var ownerACL = []WalrusGrant{{Type: "CanonicalUser", ID: "111122223333", Permission: "FULL_CONTROL"}}

func TestWalrusBuckets(t *testing.T) {
	ctx := context.Background()
	s := openWalrus(t)
	for _, c := range []struct {
		name, account string
		max           int
		want          error
	}{
		{"alpha", "111122223333", 2, nil},
		{"alpha", "111122223333", 2, ErrConflict}, // again, same owner
		{"alpha", "444455556666", 2, ErrConflict}, // names are global
		{"beta", "111122223333", 2, nil},
		{"gamma", "111122223333", 2, ErrWalrusLimit},
		{"gamma", "111122223333", 0, nil}, // 0: no limit
		{"delta", "444455556666", 2, nil},
	} {
		err := s.CreateWalrusBucket(ctx, WalrusBucket{Name: c.name, AccountID: c.account, Location: "us-euca-1", ACL: ownerACL}, c.max)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("create %s for %s (max %d): %v, want %v", c.name, c.account, c.max, err, c.want)
		}
	}
	mine, err := s.WalrusBuckets(ctx, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range mine {
		names = append(names, b.Name)
	}
	if !reflect.DeepEqual(names, []string{"alpha", "beta", "gamma"}) {
		t.Errorf("buckets %v", names)
	}
	b, err := s.WalrusBucket(ctx, "alpha")
	if err != nil || b.AccountID != "111122223333" || !reflect.DeepEqual(b.ACL, ownerACL) || b.Location != "us-euca-1" || b.CreatedMS == 0 {
		t.Errorf("bucket %+v %v", b, err)
	}
	if _, err := s.WalrusBucket(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bucket: %v", err)
	}
	pub := append([]WalrusGrant{{Type: "Group", URI: "http://acs.amazonaws.com/groups/global/AllUsers", Permission: "READ"}}, ownerACL...)
	if err := s.SetWalrusBucketACL(ctx, "alpha", pub); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.WalrusBucket(ctx, "alpha"); !reflect.DeepEqual(b.ACL, pub) {
		t.Errorf("acl %v", b.ACL)
	}
	if err := s.SetWalrusBucketACL(ctx, "nope", pub); !errors.Is(err, ErrNotFound) {
		t.Errorf("acl of missing bucket: %v", err)
	}

	// Configuration documents.
	if _, err := s.WalrusBucketConfig(ctx, "alpha", "policy"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no policy yet: %v", err)
	}
	for _, body := range []string{`{"Version":"2012-10-17"}`, `{"Version":"2008-10-17"}`} {
		if err := s.PutWalrusBucketConfig(ctx, "alpha", "policy", body); err != nil {
			t.Fatal(err)
		}
		if got, err := s.WalrusBucketConfig(ctx, "alpha", "policy"); err != nil || got != body {
			t.Errorf("policy %q %v", got, err)
		}
	}
	if err := s.PutWalrusBucketConfig(ctx, "nope", "policy", "{}"); !errors.Is(err, ErrNotFound) {
		t.Errorf("config of a missing bucket: %v", err)
	}
	if err := s.DeleteWalrusBucketConfig(ctx, "alpha", "policy"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WalrusBucketConfig(ctx, "alpha", "policy"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted policy: %v", err)
	}

	// Several kinds in one read: those the bucket has, by kind.
	for kind, body := range map[string]string{"policy": "{}", "publicAccessBlock": "<P/>", "cors": "<C/>"} {
		if err := s.PutWalrusBucketConfig(ctx, "alpha", kind, body); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.WalrusBucketConfigs(ctx, "alpha", "policy", "ownershipControls", "publicAccessBlock")
	if want := map[string]string{"policy": "{}", "publicAccessBlock": "<P/>"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("configs %v %v, want %v", got, err, want)
	}
	if got, err := s.WalrusBucketConfigs(ctx, "nope", "policy"); err != nil || len(got) != 0 {
		t.Errorf("configs of a missing bucket: %v %v", got, err)
	}
}

func putObj(t *testing.T, s *Store, bucket, key, blob string, size int64, opt WalrusPutOptions) (string, error) {
	t.Helper()
	return s.PutWalrusObject(context.Background(), WalrusObject{
		Bucket: bucket, Key: key, Blob: blob, Size: size, ETag: "etag-" + blob, OwnerID: "111122223333", ACL: ownerACL,
		Headers: map[string]string{"Content-Type": "text/plain", "X-Amz-Meta-A": "b"},
	}, opt)
}

func TestWalrusObjects(t *testing.T) {
	ctx := context.Background()
	s := openWalrus(t)
	if err := s.CreateWalrusBucket(ctx, WalrusBucket{Name: "b", AccountID: "111122223333", ACL: ownerACL}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := putObj(t, s, "nobucket", "k", "x", 1, WalrusPutOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("put into missing bucket: %v", err)
	}
	old, err := putObj(t, s, "b", "k", "blob1", 100, WalrusPutOptions{MaxBucketBytes: 150})
	if err != nil || old != "" {
		t.Fatalf("first put: %q %v", old, err)
	}
	// Over the bucket limit: refused, and the object already stored stays.
	if _, err := putObj(t, s, "b", "k2", "blob2", 60, WalrusPutOptions{MaxBucketBytes: 150}); !errors.Is(err, ErrWalrusLimit) {
		t.Errorf("over limit: %v", err)
	}
	// Replacing counts the old size out.
	old, err = putObj(t, s, "b", "k", "blob3", 140, WalrusPutOptions{MaxBucketBytes: 150})
	if err != nil || old != "blob1" {
		t.Fatalf("replace: %q %v", old, err)
	}
	if _, err := putObj(t, s, "b", "k", "blob4", 1, WalrusPutOptions{IfNoneMatch: true}); !errors.Is(err, ErrWalrusPrecondition) {
		t.Errorf("if-none-match on existing: %v", err)
	}
	if _, err := putObj(t, s, "b", "k", "blob4", 1, WalrusPutOptions{IfMatch: "wrong"}); !errors.Is(err, ErrWalrusPrecondition) {
		t.Errorf("if-match wrong etag: %v", err)
	}
	if _, err := putObj(t, s, "b", "absent", "blob4", 1, WalrusPutOptions{IfMatch: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("if-match on missing: %v", err)
	}
	o, err := s.WalrusObject(ctx, "b", "k")
	if err != nil || o.Blob != "blob3" || o.Size != 140 || o.Headers["X-Amz-Meta-A"] != "b" || o.ModifiedMS == 0 || len(o.Tags) != 0 {
		t.Fatalf("object %+v %v", o, err)
	}
	b, _ := s.WalrusBucket(ctx, "b")
	if b.SizeBytes != 140 || b.Objects != 1 {
		t.Errorf("bucket accounting %d bytes %d objects", b.SizeBytes, b.Objects)
	}
	tags := []Tag{{"k1", "v1"}, {"k2", ""}}
	if err := s.SetWalrusObjectTags(ctx, "b", "k", tags); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWalrusObjectACL(ctx, "b", "k", nil); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.WalrusObject(ctx, "b", "k"); !reflect.DeepEqual(o.Tags, tags) || len(o.ACL) != 0 {
		t.Errorf("tags %v acl %v", o.Tags, o.ACL)
	}
	if err := s.SetWalrusObjectTags(ctx, "b", "nope", tags); !errors.Is(err, ErrNotFound) {
		t.Errorf("tags of missing object: %v", err)
	}
	if _, err := s.DeleteWalrusBucket(ctx, "b"); !errors.Is(err, ErrWalrusNotEmpty) {
		t.Errorf("delete non-empty bucket: %v", err)
	}
	blob, err := s.DeleteWalrusObject(ctx, "b", "k")
	if err != nil || blob != "blob3" {
		t.Fatalf("delete object: %q %v", blob, err)
	}
	if blob, err := s.DeleteWalrusObject(ctx, "b", "k"); err != nil || blob != "" {
		t.Errorf("delete again: %q %v", blob, err)
	}
	b, _ = s.WalrusBucket(ctx, "b")
	if b.SizeBytes != 0 || b.Objects != 0 {
		t.Errorf("bucket accounting after delete: %d bytes %d objects", b.SizeBytes, b.Objects)
	}
	if _, err := s.DeleteWalrusBucket(ctx, "b"); err != nil {
		t.Errorf("delete empty bucket: %v", err)
	}
	if _, err := s.DeleteWalrusBucket(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete missing bucket: %v", err)
	}
}

func TestWalrusListOrder(t *testing.T) {
	ctx := context.Background()
	s := openWalrus(t)
	if err := s.CreateWalrusBucket(ctx, WalrusBucket{Name: "b", AccountID: "1", ACL: ownerACL}, 0); err != nil {
		t.Fatal(err)
	}
	// UTF-8 byte order, as S3 lists: upper case before lower, "é" after "z".
	keys := []string{"a/b", "a/c", "a", "B", "z", "é", "a/", "ab", "a\x01"}
	for i, k := range keys {
		if _, err := putObj(t, s, "b", k, string(rune('A'+i)), 1, WalrusPutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix, after string, limit int) []string {
		objs, err := s.ListWalrusObjects(ctx, "b", prefix, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.Key)
		}
		return out
	}
	if got, want := list("", "", 100), []string{"B", "a", "a\x01", "a/", "a/b", "a/c", "ab", "z", "é"}; !reflect.DeepEqual(got, want) {
		t.Errorf("all: %q, want %q", got, want)
	}
	if got, want := list("a/", "", 100), []string{"a/", "a/b", "a/c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("prefix a/: %q", got)
	}
	if got, want := list("a", "a/", 2), []string{"a/b", "a/c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a/: %q", got)
	}
	// Skipping a whole common prefix the way delimiter listing does.
	if got, want := list("", "a/\xff", 2), []string{"ab", "z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a/*: %q", got)
	}
}

func TestWalrusMultipart(t *testing.T) {
	ctx := context.Background()
	s := openWalrus(t)
	if err := s.CreateWalrusBucket(ctx, WalrusBucket{Name: "b", AccountID: "1", ACL: ownerACL}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWalrusUpload(ctx, WalrusUpload{ID: "u0", Bucket: "nobucket", Key: "k"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("upload to missing bucket: %v", err)
	}
	for _, u := range []WalrusUpload{
		{ID: "u1", Bucket: "b", Key: "k", OwnerID: "1", ACL: ownerACL, Headers: map[string]string{"Content-Type": "x/y"}},
		{ID: "u2", Bucket: "b", Key: "j", OwnerID: "1"},
		{ID: "u3", Bucket: "b", Key: "k", OwnerID: "1"},
	} {
		if err := s.CreateWalrusUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	ups, err := s.WalrusUploads(ctx, "b", "k")
	if err != nil || len(ups) != 2 || ups[0].ID != "u1" || ups[0].Headers["Content-Type"] != "x/y" {
		t.Fatalf("uploads %+v %v", ups, err)
	}
	for _, p := range []WalrusPart{{UploadID: "u1", Number: 2, Blob: "p2", Size: 5}, {UploadID: "u1", Number: 1, Blob: "p1", Size: 5}} {
		if old, err := s.PutWalrusPart(ctx, p); err != nil || old != "" {
			t.Fatalf("part: %q %v", old, err)
		}
	}
	if old, err := s.PutWalrusPart(ctx, WalrusPart{UploadID: "u1", Number: 2, Blob: "p2b", Size: 6}); err != nil || old != "p2" {
		t.Fatalf("replace part: %q %v", old, err)
	}
	if _, err := s.PutWalrusPart(ctx, WalrusPart{UploadID: "nope", Number: 1, Blob: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("part of missing upload: %v", err)
	}
	parts, err := s.WalrusParts(ctx, "u1")
	if err != nil || len(parts) != 2 || parts[0].Number != 1 || parts[1].Blob != "p2b" {
		t.Fatalf("parts %+v %v", parts, err)
	}
	blobs, err := s.WalrusBlobs(ctx, "b")
	if err != nil || !blobs["p1"] || !blobs["p2b"] || blobs["p2"] {
		t.Errorf("blobs %v %v", blobs, err)
	}
	old, partBlobs, err := s.CompleteWalrusUpload(ctx, "u1", WalrusObject{Bucket: "b", Key: "k", Blob: "whole", Size: 11, ETag: "x-2", Parts: 2, OwnerID: "1"}, WalrusPutOptions{})
	if err != nil || old != "" || len(partBlobs) != 2 {
		t.Fatalf("complete: %q %v %v", old, partBlobs, err)
	}
	if _, _, err := s.CompleteWalrusUpload(ctx, "u1", WalrusObject{Bucket: "b", Key: "k", Blob: "again"}, WalrusPutOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("complete twice: %v", err)
	}
	if o, err := s.WalrusObject(ctx, "b", "k"); err != nil || o.Parts != 2 || o.Blob != "whole" {
		t.Errorf("completed object %+v %v", o, err)
	}
	if _, err := s.PutWalrusPart(ctx, WalrusPart{UploadID: "u3", Number: 1, Blob: "q1"}); err != nil {
		t.Fatal(err)
	}
	if pb, err := s.AbortWalrusUpload(ctx, "u3"); err != nil || !reflect.DeepEqual(pb, []string{"q1"}) {
		t.Errorf("abort: %v %v", pb, err)
	}
	if _, err := s.AbortWalrusUpload(ctx, "u3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("abort twice: %v", err)
	}
	// Deleting the bucket ends the uploads left and hands back their parts.
	if _, err := s.DeleteWalrusObject(ctx, "b", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutWalrusPart(ctx, WalrusPart{UploadID: "u2", Number: 1, Blob: "r1"}); err != nil {
		t.Fatal(err)
	}
	if pb, err := s.DeleteWalrusBucket(ctx, "b"); err != nil || !reflect.DeepEqual(pb, []string{"r1"}) {
		t.Errorf("delete bucket with an upload: %v %v", pb, err)
	}
	if _, err := s.WalrusUpload(ctx, "u2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("upload outlived its bucket: %v", err)
	}
}

func init() {
	// Rows in every table of schemaWalrus, for TestMigrationsKeepData.
	tableSeeds["walrus_buckets"] = []string{
		`INSERT INTO walrus_buckets (name, account_id, location, acl, size_bytes, object_count, created_ms) VALUES
			('bkt', '111122223333', 'us-euca-1', '[{"type":"CanonicalUser","id":"111122223333","perm":"FULL_CONTROL"}]', 5, 1, 8)`,
		`INSERT INTO walrus_bucket_configs (bucket, kind, body) VALUES ('bkt', 'policy', '{"Statement":[]}')`,
		`INSERT INTO walrus_objects (bucket, key, blob, size, etag, parts, owner_id, acl, headers, tags, checksum, modified_ms) VALUES
			('bkt', 'dir/obj', '0123456789abcdef0123456789abcdef', 5, '5d41402abc4b2a76b9719d911017c592', 0, '111122223333', '[]', '{"content-type":"text/plain"}', '[]', '', 9)`,
		`INSERT INTO walrus_uploads (id, bucket, key, owner_id, acl, headers, tags, initiated_ms) VALUES
			('upload1', 'bkt', 'big', '111122223333', '[]', '{}', '[]', 10)`,
		`INSERT INTO walrus_parts (upload_id, number, blob, size, etag, modified_ms) VALUES
			('upload1', 1, 'fedcba9876543210fedcba9876543210', 5242880, 'e1', 11)`,
	}
	tableSeeds["walrus_completed_uploads"] = []string{
		`UPDATE walrus_objects SET part_list = '[{"n":1,"size":5,"etag":"e1"}]', parts = 1 WHERE key = 'dir/obj'`,
		`INSERT INTO walrus_completed_uploads (id, bucket, key, etag, parts, completed_ms) VALUES
			('upload0', 'bkt', 'dir/obj', 'ab-1', '[{"n":1,"size":5,"etag":"e1"}]', 12)`,
	}
}

// TestWalrusCompletedUploads: a completed upload is remembered with the
// object's part list for WalrusCompletionTTL, then forgotten.
func TestWalrusCompletedUploads(t *testing.T) {
	ctx := context.Background()
	s := openWalrus(t)
	if err := s.CreateWalrusBucket(ctx, WalrusBucket{Name: "b", AccountID: "1", ACL: ownerACL}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWalrusUpload(ctx, WalrusUpload{ID: "u1", Bucket: "b", Key: "k", OwnerID: "1"}); err != nil {
		t.Fatal(err)
	}
	parts := []WalrusObjectPart{{Number: 1, Size: 5, ETag: "e1"}, {Number: 3, Size: 2, ETag: "e3"}}
	if _, _, err := s.CompleteWalrusUpload(ctx, "u1", WalrusObject{Bucket: "b", Key: "k", Blob: "whole", Size: 7, ETag: "x-2", Parts: 2, PartList: parts}, WalrusPutOptions{}); err != nil {
		t.Fatal(err)
	}
	if o, err := s.WalrusObject(ctx, "b", "k"); err != nil || !reflect.DeepEqual(o.PartList, parts) {
		t.Errorf("object part list %+v %v", o.PartList, err)
	}
	c, err := s.WalrusCompletedUpload(ctx, "u1")
	if err != nil || c.Bucket != "b" || c.Key != "k" || c.ETag != "x-2" || !reflect.DeepEqual(c.Parts, parts) {
		t.Errorf("completion %+v %v", c, err)
	}
	if _, err := s.WalrusCompletedUpload(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown completion: %v", err)
	}
	// A single PUT over the key has no part list.
	if _, err := s.PutWalrusObject(ctx, WalrusObject{Bucket: "b", Key: "k", Blob: "single", Size: 1, ETag: "e"}, WalrusPutOptions{}); err != nil {
		t.Fatal(err)
	}
	if o, err := s.WalrusObject(ctx, "b", "k"); err != nil || o.PartList != nil {
		t.Errorf("part list outlived its object: %+v %v", o.PartList, err)
	}
	old := now
	now = func() int64 { return old() + WalrusCompletionTTL + 1000 }
	defer func() { now = old }()
	if _, err := s.WalrusCompletedUpload(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("completion remembered past its TTL: %v", err)
	}
}
