// Package rpctest serves handlers over loopback mutual TLS as the roles'
// internal endpoints serve them, and makes the certificates their callers
// (and strangers) present, for the tests of the internal APIs (ncapi,
// ccapi, clcapi, Walrus's image download).
package rpctest

import (
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
)

// NewCA is a fresh CA in a temporary directory of t.
func NewCA(t testing.TB) *pki.CA {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

var (
	casOnce             sync.Once
	sharedCA, anotherCA *pki.CA
)

// CAs is the cloud's CA and another, made once per test binary: an RSA
// CA takes a while to make, and the tests that share them only issue.
func CAs(t testing.TB) (cloud, other *pki.CA) {
	t.Helper()
	casOnce.Do(func() {
		sharedCA, anotherCA = NewCA(t), NewCA(t)
	})
	if sharedCA == nil || anotherCA == nil {
		t.Fatal("rpctest: the shared CAs could not be made")
	}
	return sharedCA, anotherCA
}

// Unstarted is a server of h with ca's mutual TLS and a certificate for
// localhost and 127.0.0.1, not yet started, for a test that changes its
// listener first. Its handshake errors are not logged: refused handshakes
// are the point of some tests.
func Unstarted(t testing.TB, ca *pki.CA, h http.Handler) *httptest.Server {
	t.Helper()
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = ca.ServerTLSConfig(cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	return srv
}

// Serve serves h on a loopback listener with ca's mutual TLS until the
// test ends, and returns its address.
func Serve(t testing.TB, ca *pki.CA, h http.Handler) string {
	t.Helper()
	srv := Unstarted(t, ca, h)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// ClientCert is a client certificate of ca with common name cn
// ("nc:10.0.0.2", "cc:test", "walrus:w1", ...).
func ClientCert(t testing.TB, ca *pki.CA, cn string) tls.Certificate {
	t.Helper()
	cert, err := ca.IssueClient(cn)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// Client is an rpc client of addr that trusts ca and presents cert.
func Client(addr string, ca *pki.CA, cert tls.Certificate) *rpc.Client {
	return rpc.NewClient(addr, ca, cert, true, slog.New(slog.DiscardHandler))
}

// Strangers are the certificates an internal endpoint of ca must refuse
// whatever the role: "other CA" (cn, issued by other), "user" (a user's
// X.509 certificate of ca itself) and "none".
func Strangers(t testing.TB, ca, other *pki.CA, cn string) map[string]tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueUser("123456789012", "mallory")
	if err != nil {
		t.Fatal(err)
	}
	user, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]tls.Certificate{"other CA": ClientCert(t, other, cn), "user": user, "none": {}}
}

// DropFirst closes the connection of the first N calls without an answer,
// as a controller restarting or a flaky link does, and counts the calls.
type DropFirst struct {
	N     int64
	Next  http.Handler
	calls atomic.Int64
}

// Calls is how many calls reached d, dropped or not.
func (d *DropFirst) Calls() int64 { return d.calls.Load() }

func (d *DropFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.calls.Add(1) <= d.N {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	d.Next.ServeHTTP(w, r)
}
