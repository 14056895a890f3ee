package nbd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
)

// need skips the test when a program is missing, or fails it under CI,
// where nothing may be missing.
func need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI but not installed", p)
			}
			t.Skipf("%s not installed", p)
		}
	}
}

// testPKI is a cloud CA with a server certificate for 127.0.0.1 and a
// client certificate, all from internal/pki, as the SC and NC will use.
type testPKI struct {
	ca     *pki.CA
	server tls.Certificate
	client tls.Certificate
}

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
	pkiErr  error
)

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nbd-pki-")
		if err != nil {
			pkiErr = err
			return
		}
		defer os.RemoveAll(dir)
		ca, err := pki.LoadOrCreateCA(dir)
		if err != nil {
			pkiErr = err
			return
		}
		srv, err := ca.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
		if err != nil {
			pkiErr = err
			return
		}
		cli, err := ca.IssueClient("nc:test")
		if err != nil {
			pkiErr = err
			return
		}
		pkiVal = &testPKI{ca: ca, server: srv, client: cli}
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

func (p *testPKI) serverTLS() *tls.Config { return p.ca.ServerTLSConfig(p.server) }

func (p *testPKI) clientTLS() *tls.Config {
	c := p.ca.ClientTLSConfig(p.client)
	c.ServerName = "127.0.0.1"
	return c
}

// qemuDir writes the files QEMU's tls-creds-x509 endpoint=client reads.
func (p *testPKI) qemuDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	key, err := x509.MarshalPKCS8PrivateKey(p.client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ca-cert.pem":     p.ca.CertPEM,
		"client-cert.pem": pki.EncodeCertPEM(p.client.Certificate[0]),
		"client-key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newImage makes a sparse raw image of size bytes and opens it as a File.
func newImage(t testing.TB, size int64) (string, *File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vol.raw")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}

// noClose hides an export's Close from the server, so a test's export
// outlives the connections that used it.
type noClose struct{ Export }

// startServer serves exports (by name) on a loopback TCP port.
func startServer(t testing.TB, tc *tls.Config, exports map[string]Export) (*Server, string) {
	t.Helper()
	return startServerLookup(t, tc, func(ctx context.Context, peer *tls.ConnectionState, name string) (Export, error) {
		if tc != nil && peer == nil {
			return nil, errors.New("no TLS state")
		}
		e, ok := exports[name]
		if !ok {
			return nil, ErrUnknownExport
		}
		return noClose{e}, nil
	})
}

func startServerLookup(t testing.TB, tc *tls.Config, lookup func(context.Context, *tls.ConnectionState, string) (Export, error)) (*Server, string) {
	t.Helper()
	s := &Server{TLS: tc, Lookup: lookup}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, ln.Addr().String()
}
