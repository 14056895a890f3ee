package images

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/backend"
	wfs "github.com/euca-cloud/euca/walrus/backend/fs"
	"github.com/euca-cloud/euca/walrus/bundle"
)

// keys are two clouds and a user, made once per test binary (RSA key
// generation is slow).
type keys struct {
	cloud, other *pki.CA
	userCert     *x509.Certificate
	userKey      *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  *keys
	keysErr  error
)

const (
	owner    = "111122223333"
	stranger = "444455556666"
)

func testKeys(t testing.TB) *keys {
	t.Helper()
	keysOnce.Do(func() {
		dir, err := os.MkdirTemp("", "images-test-keys-")
		if err != nil {
			keysErr = err
			return
		}
		defer os.RemoveAll(dir)
		k := &keys{}
		if k.cloud, keysErr = pki.LoadOrCreateCA(filepath.Join(dir, "cloud")); keysErr != nil {
			return
		}
		if k.other, keysErr = pki.LoadOrCreateCA(filepath.Join(dir, "other")); keysErr != nil {
			return
		}
		certPEM, keyPEM, err := k.cloud.IssueUser(owner, "admin")
		if err != nil {
			keysErr = err
			return
		}
		if k.userCert, keysErr = pki.ParseCertPEM(certPEM); keysErr != nil {
			return
		}
		k.userKey, keysErr = pki.ParseRSAKeyPEM(keyPEM)
		keysVal = k
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keysVal
}

// countingBackend counts blob opens and can hold them until a gate opens.
type countingBackend struct {
	backend.Backend
	opens atomic.Int64
	mu    sync.Mutex
	gate  chan struct{}
}

func (b *countingBackend) Open(ctx context.Context, bucket, id string) (backend.Reader, int64, error) {
	b.opens.Add(1)
	b.mu.Lock()
	g := b.gate
	b.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return b.Backend.Open(ctx, bucket, id)
}

func (b *countingBackend) hold() func() {
	g := make(chan struct{})
	b.mu.Lock()
	b.gate = g
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.gate = nil
		b.mu.Unlock()
		close(g)
	}
}

type fixture struct {
	t    *testing.T
	ctx  context.Context
	cfg  *conf.Config
	st   *store.Store
	be   *countingBackend
	s    *Service
	keys *keys
}

// newFixture is a store with the owner's and a stranger's accounts, the
// bucket "imgs" of the owner, and the image service with a cache of
// cacheMB.
func newFixture(t *testing.T, cacheMB int64) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	cfg.WalrusBucketsPath = filepath.Join(cfg.Home, "buckets")
	cfg.WalrusImageCacheMB = cacheMB
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i, id := range []string{owner, stranger} {
		name := []string{"owner", "stranger"}[i]
		err := st.CreateAccount(ctx, store.Account{ID: id, Name: name},
			store.AccessKey{ID: "AKIA" + id, AccountID: id, UserName: "admin", Secret: "s"},
			store.UserCert{Fingerprint: "fp" + id, AccountID: id, UserName: "admin", CertPEM: "x"})
		if err != nil {
			t.Fatal(err)
		}
	}
	fsb, err := wfs.New(cfg.WalrusBucketsPath)
	if err != nil {
		t.Fatal(err)
	}
	be := &countingBackend{Backend: fsb}
	if err := st.CreateWalrusBucket(ctx, store.WalrusBucket{Name: "imgs", AccountID: owner, Location: "us-euca-1"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := be.CreateBucket(ctx, "imgs"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, cfg: cfg, st: st, be: be, keys: testKeys(t)}
	f.s = f.open()
	return f
}

// open (re)opens the service over the fixture's directories.
func (f *fixture) open() *Service {
	f.t.Helper()
	s, err := New(f.ctx, Options{Conf: f.cfg, Store: f.st, Backend: f.be, CloudKey: f.keys.cloud.Key})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// put stores an object in imgs with a canned ACL of "private" or
// "aws-exec-read".
func (f *fixture) put(key string, data []byte, acl string) {
	f.t.Helper()
	blob, err := f.be.Write(f.ctx, "imgs", bytes.NewReader(data))
	if err != nil {
		f.t.Fatal(err)
	}
	grants := []store.WalrusGrant{{Type: "CanonicalUser", ID: owner, Permission: "FULL_CONTROL"}}
	switch acl {
	case "aws-exec-read":
		grants = append(grants, store.WalrusGrant{Type: "CanonicalUser", ID: cloudReaderID, Permission: "READ"})
	case "public-read":
		grants = append(grants, store.WalrusGrant{Type: "Group", URI: groupAllUsers, Permission: "READ"})
	}
	old, err := f.st.PutWalrusObject(f.ctx, store.WalrusObject{Bucket: "imgs", Key: key, Blob: blob.ID, Size: blob.Size,
		ETag: "e", OwnerID: owner, ACL: grants, Headers: map[string]string{}}, store.WalrusPutOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if old != "" {
		_ = f.be.Delete(f.ctx, "imgs", old)
	}
}

// bundled is an image bundled and uploaded under a prefix.
type bundled struct {
	prefix, key string // key: the manifest's object key
	data        []byte
	sum         string
	m           *bundle.Manifest
	parts       []string // object keys
	res         *bundle.Result
}

// upload bundles n pseudo-random bytes (seeded) for the cloud cert and
// uploads the parts and the manifest under dir/ with aws-exec-read.
func (f *fixture) upload(dir, prefix string, n int, seed uint64, cloudCert *x509.Certificate) *bundled {
	f.t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	out := f.t.TempDir()
	res, err := bundle.CreateFrom(f.ctx, bytes.NewReader(data), int64(n), out, bundle.Options{
		Prefix: prefix, Arch: "x86_64", UserCert: f.keys.userCert, UserKey: f.keys.userKey, CloudCert: cloudCert,
		UserID: owner, BundlerName: "euca", BundlerVersion: "test", PartSize: 64 << 10,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	b := &bundled{prefix: prefix, data: data, m: res.Manifest, res: res}
	sum := sha256.Sum256(data)
	b.sum = hex.EncodeToString(sum[:])
	for _, p := range res.PartPaths {
		body, err := os.ReadFile(p)
		if err != nil {
			f.t.Fatal(err)
		}
		k := joinKey(dir, filepath.Base(p))
		f.put(k, body, "aws-exec-read")
		b.parts = append(b.parts, k)
	}
	raw, err := os.ReadFile(res.ManifestPath)
	if err != nil {
		f.t.Fatal(err)
	}
	b.key = joinKey(dir, filepath.Base(res.ManifestPath))
	f.put(b.key, raw, "aws-exec-read")
	return b
}

func joinKey(dir, name string) string {
	if dir == "" {
		return name
	}
	return strings.TrimSuffix(dir, "/") + "/" + name
}

// register records an image of b in the store, as the clc does once
// Unbundle has succeeded.
func (f *fixture) register(id string, b *bundled) {
	f.t.Helper()
	err := f.st.CreateImage(f.ctx, store.Image{ID: id, AccountID: owner, Kind: store.ImageMachine, Name: id,
		Location: "imgs/" + b.key, Architecture: "x86_64", State: store.ImageAvailable, SizeBytes: int64(len(b.data)), SHA256: b.sum})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) unbundle(b *bundled) (string, int64, error) {
	m, err := bundle.ParseManifest(f.manifest(b))
	if err != nil {
		f.t.Fatal(err)
	}
	return f.s.Unbundle(f.ctx, owner, "imgs", b.key, m)
}

func (f *fixture) manifest(b *bundled) []byte {
	f.t.Helper()
	raw, err := f.s.Manifest(f.ctx, owner, "imgs", b.key)
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// readAll opens ref and reads it whole.
func (f *fixture) readAll(ref Ref) ([]byte, error) {
	r, err := f.s.Open(f.ctx, ref)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// cacheFiles lists the names in the cache directory.
func (f *fixture) cacheFiles() []string {
	f.t.Helper()
	des, err := os.ReadDir(f.s.cache.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}
