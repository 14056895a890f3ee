package nc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/nc/imagecache"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
	wfs "github.com/euca-cloud/euca/walrus/backend/fs"
	"github.com/euca-cloud/euca/walrus/bundle"
	"github.com/euca-cloud/euca/walrus/images"
)

// walrusWithImage is a real image service holding one image unbundled from
// a real bundle in Walrus, as RegisterImage leaves it.
func walrusWithImage(t *testing.T, ca *pki.CA) (*images.Service, []byte, ncapi.ImageRef) {
	t.Helper()
	ctx := context.Background()
	const owner = "111122223333"
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	cfg.WalrusBucketsPath = filepath.Join(cfg.Home, "buckets")
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateAccount(ctx, store.Account{ID: owner, Name: "owner"},
		store.AccessKey{ID: "AKIA" + owner, AccountID: owner, UserName: "admin", Secret: "s"},
		store.UserCert{Fingerprint: "fp", AccountID: owner, UserName: "admin", CertPEM: "x"}); err != nil {
		t.Fatal(err)
	}
	be, err := wfs.New(cfg.WalrusBucketsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWalrusBucket(ctx, store.WalrusBucket{Name: "imgs", AccountID: owner, Location: "us-euca-1"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := be.CreateBucket(ctx, "imgs"); err != nil {
		t.Fatal(err)
	}
	put := func(key string, body []byte) {
		blob, err := be.Write(ctx, "imgs", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		grants := []store.WalrusGrant{{Type: "CanonicalUser", ID: owner, Permission: "FULL_CONTROL"}}
		if _, err := st.PutWalrusObject(ctx, store.WalrusObject{Bucket: "imgs", Key: key, Blob: blob.ID, Size: blob.Size,
			ETag: "e", OwnerID: owner, ACL: grants, Headers: map[string]string{}}, store.WalrusPutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	certPEM, keyPEM, err := ca.IssueUser(owner, "admin")
	if err != nil {
		t.Fatal(err)
	}
	userCert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	userKey, err := pki.ParseRSAKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	res, err := bundle.CreateFrom(ctx, bytes.NewReader(data), int64(len(data)), t.TempDir(), bundle.Options{
		Prefix: "img", Arch: "x86_64", UserCert: userCert, UserKey: userKey, CloudCert: ca.Cert,
		UserID: owner, BundlerName: "euca", BundlerVersion: "test", PartSize: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(res.PartPaths, res.ManifestPath) {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		put(filepath.Base(p), body)
	}

	s, err := images.New(ctx, images.Options{Conf: cfg, Store: st, Backend: be, CloudKey: ca.Key})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Base(res.ManifestPath)
	raw, err := s.Manifest(ctx, owner, "imgs", key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum, size, err := s.Unbundle(ctx, owner, "imgs", key, m)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if sum != hex.EncodeToString(want[:]) || size != int64(len(data)) {
		t.Fatalf("unbundled %s (%d bytes)", sum, size)
	}
	if err := st.CreateImage(ctx, store.Image{ID: "emi-00000000000000001", AccountID: owner, Kind: store.ImageMachine, Name: "img",
		Location: "imgs/" + key, Architecture: "x86_64", State: store.ImageAvailable, SizeBytes: size, SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	return s, data, ncapi.ImageRef{ID: "emi-00000000000000001", SHA256: sum, Size: size}
}

// serveInternal serves h over a loopback listener with the CA's mutual TLS
// and returns a client of it presenting cert.
func serveInternal(t *testing.T, ca *pki.CA, h http.Handler, cert tls.Certificate) *rpc.Client {
	t.Helper()
	return rpctest.Client(rpctest.Serve(t, ca, h), ca, cert)
}

func newCA(t *testing.T) *pki.CA { return rpctest.NewCA(t) }

// TestHTTPImageSource: a node fetches a registered image from a real
// Walrus image service over mutual TLS into its image cache, which checks
// the digest; Walrus's errors arrive as its sentinels; strangers get nothing.
func TestHTTPImageSource(t *testing.T) {
	ctx := context.Background()
	ca := newCA(t)
	s, data, ref := walrusWithImage(t, ca)
	nodeCert, err := ca.IssueClient("nc:test")
	if err != nil {
		t.Fatal(err)
	}
	client := serveInternal(t, ca, s.Handler(), nodeCert)
	src := HTTPImageSource(client)

	cache, err := imagecache.Open(ctx, imagecache.Options{Dir: t.TempDir(), Limit: 1 << 30, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	h, err := cache.Get(ctx, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(h.Path)
	h.Release()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached image: %d bytes, %v", len(got), err)
	}

	unknown := ref
	unknown.ID = "emi-00000000000000002"
	unknown.SHA256 = hex.EncodeToString(make([]byte, 32))
	if _, err := src.Open(ctx, unknown); !errors.Is(err, images.ErrUnknownImage) {
		t.Errorf("unknown image: %v, want ErrUnknownImage", err)
	}
	wrongSum := ref
	wrongSum.SHA256 = hex.EncodeToString(make([]byte, 32))
	if _, err := src.Open(ctx, wrongSum); !errors.Is(err, images.ErrDigest) {
		t.Errorf("registered image asked with another digest: %v, want ErrDigest", err)
	}
	wrongSize := ref
	wrongSize.Size++
	if _, err := src.Open(ctx, wrongSize); !errors.Is(err, images.ErrDigest) {
		t.Errorf("registered image asked with another size: %v, want ErrDigest", err)
	}

	certPEM, keyPEM, err := ca.IssueUser("111122223333", "admin")
	if err != nil {
		t.Fatal(err)
	}
	user, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newCA(t).IssueClient("nc:test")
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]tls.Certificate{"user": user, "other CA": other} {
		c := *client
		c.HTTP = rpc.NewClient("x", ca, cert, true, slog.New(slog.DiscardHandler)).HTTP
		if rc, err := HTTPImageSource(&c).Open(ctx, ref); err == nil {
			rc.Close()
			t.Errorf("%s certificate: image served", name)
		}
	}
}

// TestHTTPImageSourceTampered: bytes changed on the way (or a Walrus that
// lies) are refused by the cache and never cached.
func TestHTTPImageSourceTampered(t *testing.T) {
	ctx := context.Background()
	ca := newCA(t)
	data := []byte("the real image")
	sum := sha256.Sum256(data)
	ref := ncapi.ImageRef{ID: "emi-00000000000000001", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	m := rpc.NewMux(images.Errors, nil)
	m.Handle("GET "+images.ImagePath+"{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the fake image")
	}))
	cert, err := ca.IssueClient("nc:test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cache, err := imagecache.Open(ctx, imagecache.Options{Dir: dir, Limit: 1 << 30, Source: HTTPImageSource(serveInternal(t, ca, m, cert))})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if _, err := cache.Get(ctx, ref, ""); !errors.Is(err, imagecache.ErrDigest) {
		t.Fatalf("tampered image: %v, want ErrDigest", err)
	}
	if st := cache.Stats(); st.Entries != 0 {
		t.Fatalf("a tampered image was cached: %+v", st)
	}
}
