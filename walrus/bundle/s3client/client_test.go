package s3client

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
)

// fakeS3 keeps buckets and objects in memory and checks every request's
// signature with the project's verifier, as Walrus will.
type fakeS3 struct {
	t       *testing.T
	prefix  string
	mu      sync.Mutex
	buckets map[string]map[string][]byte
	acls    map[string]string
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, err := awsauth.Verify(r.Context(), awsauth.Request{HTTP: r, Style: awsauth.StyleS3},
		func(_ context.Context, ak string) (string, error) {
			if ak != "AKIDEXAMPLE" {
				return "", awsauth.ErrUnknownKey
			}
			return "secret/key+example", nil
		}, time.Now())
	if err != nil {
		f.fail(w, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
		return
	}
	if res.Version != 4 {
		f.fail(w, http.StatusForbidden, "AccessDenied", "not SigV4")
		return
	}
	body, _ := io.ReadAll(r.Body)
	if res.PayloadHash != fmt.Sprintf("%x", sha256Sum(body)) {
		f.fail(w, http.StatusBadRequest, "XAmzContentSHA256Mismatch", "")
		return
	}
	if md := r.Header.Get("Content-MD5"); md != "" {
		s := md5.Sum(body)
		if md != base64.StdEncoding.EncodeToString(s[:]) {
			f.fail(w, http.StatusBadRequest, "BadDigest", "")
			return
		}
	}
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix+"/")
	if !ok {
		f.fail(w, http.StatusNotFound, "NoSuchBucket", "wrong prefix "+r.URL.Path)
		return
	}
	bucket, key, _ := strings.Cut(path, "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, exists := f.buckets[bucket]
	switch {
	case key == "" && r.Method == http.MethodHead:
		if !exists {
			w.WriteHeader(http.StatusNotFound)
		}
	case key == "" && r.Method == http.MethodPut:
		if exists {
			f.fail(w, http.StatusConflict, "BucketAlreadyOwnedByYou", "")
			return
		}
		f.buckets[bucket] = map[string][]byte{}
	case key == "" && r.Method == http.MethodDelete:
		if len(objs) > 0 {
			f.fail(w, http.StatusConflict, "BucketNotEmpty", "")
			return
		}
		delete(f.buckets, bucket)
		w.WriteHeader(http.StatusNoContent)
	case !exists:
		f.fail(w, http.StatusNotFound, "NoSuchBucket", "")
	case r.Method == http.MethodPut:
		objs[key] = body
		f.acls[bucket+"/"+key] = r.Header.Get("X-Amz-Acl")
	case r.Method == http.MethodGet:
		b, ok := objs[key]
		if !ok {
			f.fail(w, http.StatusNotFound, "NoSuchKey", "")
			return
		}
		w.Write(b)
	case r.Method == http.MethodDelete:
		delete(objs, key)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeS3) fail(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

func newFake(t *testing.T) (*fakeS3, *Client) {
	f := &fakeS3{t: t, prefix: "/services/Walrus", buckets: map[string]map[string][]byte{}, acls: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/services/Walrus/", "AKIDEXAMPLE", "secret/key+example", "", "us-euca-1")
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func TestClient(t *testing.T) {
	f, c := newFake(t)
	ctx := context.Background()
	ok, err := c.HeadBucket(ctx, "images")
	if err != nil || ok {
		t.Fatalf("head missing bucket: %v %v", ok, err)
	}
	if err := c.CreateBucket(ctx, "images", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateBucket(ctx, "images", "us-euca-1"); !IsCode(err, "BucketAlreadyOwnedByYou") {
		t.Fatalf("second create: %v", err)
	}
	if ok, err := c.HeadBucket(ctx, "images"); err != nil || !ok {
		t.Fatalf("head bucket: %v %v", ok, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "part")
	data := strings.Repeat("bundle part ", 100000)
	os.WriteFile(path, []byte(data), 0o644)
	var last int64
	// A key with characters that need escaping in the signed path.
	key := "prefix/my image+1 (é).part.00"
	if err := c.PutFile(ctx, "images", key, path, "aws-exec-read", func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) {
		t.Errorf("progress ended at %d", last)
	}
	if string(f.buckets["images"][key]) != data || f.acls["images/"+key] != "aws-exec-read" {
		t.Fatalf("stored %d bytes with ACL %q", len(f.buckets["images"][key]), f.acls["images/"+key])
	}
	got, err := c.Get(ctx, "images", key, 10<<20)
	if err != nil || string(got) != data {
		t.Fatalf("get: %v", err)
	}
	if _, err := c.Get(ctx, "images", key, 10); err == nil {
		t.Error("get past the limit accepted")
	}
	if _, err := c.Get(ctx, "images", "nope", 10); !IsCode(err, "NoSuchKey") {
		t.Errorf("get missing: %v", err)
	}
	if err := c.DeleteBucket(ctx, "images"); !IsCode(err, "BucketNotEmpty") {
		t.Errorf("delete full bucket: %v", err)
	}
	if err := c.Delete(ctx, "images", key); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBucket(ctx, "images"); err != nil {
		t.Fatal(err)
	}
	// A wrong secret is refused by the verifier.
	bad, _ := New(strings.TrimSuffix(c.endpoint.String(), "/services/Walrus")+"/services/Walrus", "AKIDEXAMPLE", "wrong", "", "")
	if err := bad.CreateBucket(ctx, "x", ""); !IsCode(err, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, ep := range []string{"", "ftp://x", "not a url", "http://"} {
		if _, err := New(ep, "a", "b", "", ""); err == nil {
			t.Errorf("%q accepted", ep)
		}
	}
	if _, err := New("http://x", "", "b", "", ""); err == nil {
		t.Error("no access key accepted")
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
