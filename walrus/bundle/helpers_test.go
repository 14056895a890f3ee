package bundle

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/euca-cloud/euca/internal/pki"
)

// creds are a cloud (the CA, as cloud-cert.pem) and two users, made once.
type creds struct {
	dir                 string // PEM files: cloud-cert.pem, cloud-pk.pem, user-cert.pem, user-pk.pem, other-…
	cloudCert           *x509.Certificate
	cloudKey            *rsa.PrivateKey
	userCert, otherCert *x509.Certificate
	userKey, otherKey   *rsa.PrivateKey
	userID              string
}

var (
	credsOnce sync.Once
	credsVal  *creds
	credsErr  error
)

func testCreds(t testing.TB) *creds {
	t.Helper()
	credsOnce.Do(func() { credsVal, credsErr = makeCreds() })
	if credsErr != nil {
		t.Fatal(credsErr)
	}
	return credsVal
}

func makeCreds() (*creds, error) {
	dir, err := os.MkdirTemp("", "bundle-test-creds-")
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		return nil, err
	}
	c := &creds{dir: dir, cloudCert: ca.Cert, cloudKey: ca.Key, userID: "123456789012"}
	write := func(name string, data []byte) error { return os.WriteFile(filepath.Join(dir, name), data, 0o600) }
	if err := write("cloud-cert.pem", ca.CertPEM); err != nil {
		return nil, err
	}
	caKey, err := os.ReadFile(filepath.Join(dir, "ca", pki.KeyFile))
	if err != nil {
		return nil, err
	}
	if err := write("cloud-pk.pem", caKey); err != nil {
		return nil, err
	}
	for _, u := range []struct {
		prefix string
		cert   **x509.Certificate
		key    **rsa.PrivateKey
	}{{"user", &c.userCert, &c.userKey}, {"other", &c.otherCert, &c.otherKey}} {
		certPEM, keyPEM, err := ca.IssueUser(c.userID, u.prefix)
		if err != nil {
			return nil, err
		}
		if *u.cert, err = pki.ParseCertPEM(certPEM); err != nil {
			return nil, err
		}
		if *u.key, err = pki.ParseRSAKeyPEM(keyPEM); err != nil {
			return nil, err
		}
		if err := write(u.prefix+"-cert.pem", certPEM); err != nil {
			return nil, err
		}
		if err := write(u.prefix+"-pk.pem", keyPEM); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *creds) path(name string) string { return filepath.Join(c.dir, name) }

func (c *creds) options(prefix string) Options {
	return Options{
		Prefix: prefix, Arch: "x86_64", UserCert: c.userCert, UserKey: c.userKey,
		CloudCert: c.cloudCert, UserID: c.userID, BundlerName: "euca", BundlerVersion: "test",
	}
}

// randomImage writes n pseudo-random (so incompressible) bytes.
func randomImage(t testing.TB, dir, name string, n int, seed uint64) (string, []byte) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// dirParts opens parts from a directory, as a bundle on disk.
func dirParts(dir string) func(string) (io.ReadCloser, error) {
	return func(name string) (io.ReadCloser, error) { return os.Open(filepath.Join(dir, name)) }
}

// memParts opens parts from a map, with fs.ErrNotExist for the missing.
func memParts(parts map[string][]byte) func(string) (io.ReadCloser, error) {
	return func(name string) (io.ReadCloser, error) {
		b, ok := parts[name]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// readBundle loads a bundle directory's manifest and parts into memory.
func readBundle(t testing.TB, manifestPath string) (*Manifest, map[string][]byte) {
	t.Helper()
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]byte{}
	for _, p := range m.Parts {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(manifestPath), p.Filename))
		if err != nil {
			t.Fatal(err)
		}
		parts[p.Filename] = b
	}
	return m, parts
}

// unbundleAll decrypts with the cloud key and unbundles into memory.
func unbundleAll(t testing.TB, c *creds, m *Manifest, open func(string) (io.ReadCloser, error)) ([]byte, error) {
	t.Helper()
	key, iv, err := m.DecryptKey(c.cloudKey)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, _, err = Unbundle(context.Background(), m, key, iv, open, &out)
	return out.Bytes(), err
}
