package join

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/store"
)

var discard = slog.New(slog.DiscardHandler)

// cloud is a front-end's internal TLS side on loopback: the join server and
// an internal API that answers who called it.
type cloud struct {
	ca   *pki.CA
	st   *store.Store
	srv  *Server
	addr string // 127.0.0.1:port
}

type who struct {
	CN string `json:"cn"`
}

func newCloud(t *testing.T) *cloud {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := NewServer(ca, st, discard)
	internal := rpc.NewMux(nil, discard)
	internal.AllowRoles("nc", "cc", "clc")
	rpc.Func(internal, "POST /internal/v1/whoami", func(ctx context.Context, _ struct{}) (who, error) {
		return who{rpc.PeerOf(ctx).Cert.Subject.CommonName}, nil
	})
	public := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "public") })
	tc, err := srv.FrontEndTLSConfig([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, tc, srv.FrontEndHandler(internal, public))
	return &cloud{ca: ca, st: st, srv: srv, addr: addr}
}

// serveTLS serves h over tc on loopback as the roles do (tls.NewListener:
// httptest's StartTLS would put a certificate of its own before
// tc.GetCertificate).
func serveTLS(t *testing.T, tc *tls.Config, h http.Handler) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(h)
	hs.Listener = tls.NewListener(hs.Listener, tc)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	hs.Start()
	t.Cleanup(hs.Close)
	return hs.Listener.Addr().String()
}

// token makes a join token for role, as `euca token create` does.
func (c *cloud) token(t *testing.T, role string, ttl time.Duration) string {
	t.Helper()
	tok, hash, exp, err := pki.NewJoinToken(c.ca, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp = exp.Add(ttl - time.Hour)
	if err := c.st.CreateJoinToken(context.Background(), store.JoinToken{SecretHash: hash, Role: role, ExpiresMS: exp.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	return tok
}

func (c *cloud) join(t *testing.T, token, role, host string) (*Identity, error) {
	t.Helper()
	return Join(context.Background(), Options{Token: token, Server: c.addr, Role: role, Host: host,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.7")}, Dir: filepath.Join(t.TempDir(), "identity"), Log: discard})
}

// whoami calls the front-end's internal API with tc.
func (c *cloud) whoami(tc *tls.Config) (string, error) {
	cl := rpc.NewClientConfig(c.addr, tc, discard)
	defer cl.HTTP.CloseIdleConnections()
	var out who
	err := Errors.Decode(cl.Call(context.Background(), http.MethodPost, "/internal/v1/whoami", struct{}{}, &out))
	return out.CN, err
}

func TestJoinAndLoad(t *testing.T) {
	c := newCloud(t)
	id, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	leaf := id.Leaf()
	if leaf.Subject.CommonName != "nc:node1" || id.Role() != "nc" || !pki.IsJoined(leaf) {
		t.Fatalf("certificate %s", leaf.Subject)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	// The address it said, and the one it came from.
	if strings.Join(ips, " ") != "127.0.0.1 192.0.2.7" || strings.Join(leaf.DNSNames, " ") != "node1 localhost" {
		t.Fatalf("names %v, addresses %v", leaf.DNSNames, ips)
	}
	if time.Until(leaf.NotAfter) < HostValidity-time.Hour {
		t.Fatalf("valid until %v only", leaf.NotAfter)
	}
	fi, err := os.Stat(filepath.Join(id.Dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(id.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("identity directory: %v %v", fi.Mode(), err)
	}
	// A later start needs no token.
	again, err := Load(id.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if pki.SerialHex(again.Leaf()) != pki.SerialHex(leaf) || again.Server != c.addr || !again.CA.Equal(c.ca.Cert) {
		t.Fatalf("loaded %s at %s", again.Leaf().Subject, again.Server)
	}
	if cn, err := c.whoami(again.ClientTLSConfig()); err != nil || cn != "nc:node1" {
		t.Fatalf("the internal API with the joined certificate: %q %v", cn, err)
	}
	// Joining again over an identity is refused before the token is spent.
	tok := c.token(t, "nc", time.Hour)
	if _, err := Join(context.Background(), Options{Token: tok, Server: c.addr, Role: "nc", Host: "node1", Dir: id.Dir}); err == nil || !strings.Contains(err.Error(), "already holds an identity") {
		t.Fatalf("join over an identity: %v", err)
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNotJoined) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("load of nothing: %v", err)
	}
	// The record, so it can be revoked.
	recs, err := c.st.HostCerts(context.Background())
	if err != nil || len(recs) != 1 || recs[0].Serial != pki.SerialHex(leaf) || recs[0].Host != "node1" || recs[0].Role != "nc" {
		t.Fatalf("records %+v %v", recs, err)
	}
}

func secretHash(t *testing.T, token string) []byte {
	t.Helper()
	_, secret, err := pki.ParseJoinToken(token)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(secret)
	return h[:]
}

func TestJoinRefusals(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()

	t.Run("wrong pin", func(t *testing.T) {
		// A token of another cloud whose secret this cloud would take:
		// the secret must not be sent, so the token stays unused.
		other, err := pki.LoadOrCreateCA(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		good := c.token(t, "nc", time.Hour)
		_, secret, _ := pki.ParseJoinToken(good)
		pin := strings.TrimPrefix(other.PublicKeyHash(), "sha256:")
		forgedPin := "EUCA10" + pin + "::" + good[len(good)-64:]
		_, err = c.join(t, forgedPin, "nc", "node1")
		if !errors.Is(err, ErrPinMismatch) || !strings.Contains(err.Error(), "the server's CA does not match the token's pin") {
			t.Fatalf("wrong pin: %v", err)
		}
		if tok, err := c.st.JoinToken(ctx, secretHash(t, good)); err != nil || tok.UsedMS != 0 {
			t.Fatalf("the secret reached the server: %+v %v", tok, err)
		}
		_ = secret
	})
	t.Run("unknown", func(t *testing.T) {
		forged := "EUCA10" + strings.TrimPrefix(c.ca.PublicKeyHash(), "sha256:") + "::" + strings.Repeat("f", 64)
		_, err := c.join(t, forged, "nc", "node1")
		if !errors.Is(err, ErrTokenUnknown) || !strings.Contains(err.Error(), "unknown") {
			t.Fatalf("forged token: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		_, err := c.join(t, c.token(t, "nc", -time.Minute), "nc", "node1")
		if !errors.Is(err, ErrTokenExpired) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired token: %v", err)
		}
	})
	t.Run("used", func(t *testing.T) {
		tok := c.token(t, "nc", time.Hour)
		if _, err := c.join(t, tok, "nc", "node1"); err != nil {
			t.Fatal(err)
		}
		_, err := c.join(t, tok, "nc", "node2")
		if !errors.Is(err, ErrTokenUsed) || !strings.Contains(err.Error(), "already used") || !strings.Contains(err.Error(), "node1") {
			t.Fatalf("used token: %v", err)
		}
	})
	t.Run("wrong role", func(t *testing.T) {
		tok := c.token(t, "nc", time.Hour)
		if _, err := c.join(t, tok, "cc", "node1"); !errors.Is(err, ErrWrongRole) {
			t.Fatalf("token for nc used as cc: %v", err)
		}
		if _, err := c.join(t, tok, "nc", "node1"); err != nil {
			t.Fatalf("a refused request spent the token: %v", err)
		}
	})
	t.Run("bad host name", func(t *testing.T) {
		if _, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1;rm -rf"); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("odd host name: %v", err)
		}
	})
}

// TestJoinRefusesImpostors: a server that is not the front-end the token
// pins never gets the secret, even with a certificate from the same CA.
func TestJoinRefusesImpostors(t *testing.T) {
	c := newCloud(t)
	node, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Bool
	serveWith := func(cert tls.Certificate) string {
		return serveTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Store(true) }))
	}
	tok := c.token(t, "nc", time.Hour)
	try := func(addr string) error {
		_, err := Join(context.Background(), Options{Token: tok, Server: addr, Role: "nc", Host: "node2", Dir: filepath.Join(t.TempDir(), "id")})
		return err
	}

	// A joined node's certificate (valid for serving, from the same CA)
	// shown with the CA: not the front-end.
	nodeCert := *node.current()
	nodeCert.Certificate = append(nodeCert.Certificate, c.ca.Cert.Raw)
	if err := try(serveWith(nodeCert)); err == nil || !strings.Contains(err.Error(), "not the cloud's front-end") {
		t.Fatalf("a node posing as the front-end: %v", err)
	}
	// The front-end's certificate for another name.
	other, err := c.ca.IssueServer([]string{"elsewhere"}, []net.IP{net.IPv4(192, 0, 2, 99)})
	if err != nil {
		t.Fatal(err)
	}
	other.Certificate = append(other.Certificate, c.ca.Cert.Raw)
	if err := try(serveWith(other)); err == nil || !strings.Contains(err.Error(), "is not the front-end's for 127.0.0.1") {
		t.Fatalf("a certificate for another host: %v", err)
	}
	// No CA in the chain.
	bare, err := c.ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := try(serveWith(bare)); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("no CA shown: %v", err)
	}
	if asked.Load() {
		t.Fatal("a request (and the secret) reached a server that is not the pinned front-end")
	}
	if tok, err := c.st.JoinToken(context.Background(), secretHash(t, tok)); err != nil || tok.UsedMS != 0 {
		t.Fatalf("token state: %+v %v", tok, err)
	}
}

// TestRenewSwapsCertificate: a renewal is presented by running listeners
// and clients from the next connection on, and kept on disk.
func TestRenewSwapsCertificate(t *testing.T) {
	c := newCloud(t)
	id, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	// The node's own listener, as the NC serves its API.
	nodeAddr := serveTLS(t, id.ServerTLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "node") }))
	ccCert, err := c.ca.IssueClient("cc:test")
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		conf := c.ca.ClientTLSConfig(ccCert)
		conf.ServerName = "127.0.0.1"
		conn, err := tls.Dial("tcp", nodeAddr, conf)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return pki.SerialHex(conn.ConnectionState().PeerCertificates[0])
	}
	first := pki.SerialHex(id.Leaf())
	if got := served(); got != first {
		t.Fatalf("listener serves %s, want %s", got, first)
	}
	if err := id.Renew(context.Background(), discard); err != nil {
		t.Fatal(err)
	}
	second := pki.SerialHex(id.Leaf())
	if second == first || id.Leaf().Subject.CommonName != "nc:node1" {
		t.Fatalf("renewed to %s %s", second, id.Leaf().Subject)
	}
	if got := served(); got != second {
		t.Fatalf("after renewal the listener serves %s, want %s", got, second)
	}
	if cn, err := c.whoami(id.ClientTLSConfig()); err != nil || cn != "nc:node1" {
		t.Fatalf("client after renewal: %q %v", cn, err)
	}
	loaded, err := Load(id.Dir)
	if err != nil || pki.SerialHex(loaded.Leaf()) != second {
		t.Fatalf("on disk after renewal: %v", err)
	}
	if _, err := c.st.HostCert(context.Background(), second); err != nil {
		t.Fatalf("renewal not recorded: %v", err)
	}
}

func TestKeepRenewed(t *testing.T) {
	c := newCloud(t)
	c.srv.Validity = time.Hour
	id, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	// Due at once.
	id.RenewBefore = 2 * time.Hour
	first := pki.SerialHex(id.Leaf())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.KeepRenewed(ctx, discard) }()
	deadline := time.Now().Add(30 * time.Second)
	for pki.SerialHex(id.Leaf()) == first {
		if time.Now().After(deadline) {
			t.Fatal("not renewed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRevoked(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	id, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.st.RevokeHostCerts(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	if err := id.Renew(ctx, discard); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("renewal of a revoked certificate: %v", err)
	}
	if _, err := c.whoami(id.ClientTLSConfig()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("internal call with a revoked certificate: %v", err)
	}
	id.RenewBefore = 2 * HostValidity // due at once
	if err := id.KeepRenewed(ctx, discard); !errors.Is(err, ErrRevoked) {
		t.Fatalf("the renewal loop goes on after revocation: %v", err)
	}
	// A joined host's certificate the store does not know is refused too.
	stray, err := c.ca.IssueHost(pki.HostRequest{Role: "nc", Host: "stray", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: id.Leaf().PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.srv.Revoked(ctx, stray); !errors.Is(err, ErrRevoked) {
		t.Fatalf("unrecorded certificate: %v", err)
	}
}

// TestStolenCertificate: a certificate used from an address it does not
// name (another host) is refused, with that reason.
func TestStolenCertificate(t *testing.T) {
	c := newCloud(t)
	id, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	// node2's certificate (it names only node2's address) and key, copied
	// to this host (127.0.0.1).
	node2, err := c.ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node2", IPs: []net.IP{net.IPv4(192, 0, 2, 2)}, PublicKey: id.Leaf().PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.st.AddHostCert(context.Background(), record(node2, "nc", "node2")); err != nil {
		t.Fatal(err)
	}
	stolen := &Identity{Dir: t.TempDir(), Server: c.addr, CA: c.ca.Cert,
		cert: &tls.Certificate{Certificate: [][]byte{node2.Raw}, PrivateKey: id.current().PrivateKey, Leaf: node2}}
	if _, err := c.whoami(stolen.ClientTLSConfig()); err == nil || !strings.Contains(err.Error(), "presented by another host") {
		t.Fatalf("internal call with another host's certificate: %v", err)
	}
	if err := stolen.Renew(context.Background(), discard); !errors.Is(err, pki.ErrWrongHost) {
		t.Fatalf("renewal with another host's certificate: %v", err)
	}
}

// TestRoles: the internal API takes the roles it names only.
func TestRoles(t *testing.T) {
	c := newCloud(t)
	walrus, err := c.join(t, c.token(t, "walrus", time.Hour), "walrus", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.whoami(walrus.ClientTLSConfig()); err == nil || !strings.Contains(err.Error(), "may not make this call") {
		t.Fatalf("a role the API does not take: %v", err)
	}
	// No certificate: the public side answers, never the internal API.
	pool := c.ca.Pool()
	anon := rpc.NewClientConfig(c.addr, &tls.Config{RootCAs: pool, ServerName: "localhost"}, discard)
	if err := anon.Call(context.Background(), http.MethodPost, "/internal/v1/whoami", struct{}{}, nil); err == nil {
		t.Fatal("an internal call without a certificate was served")
	}
	rc, err := anon.Open(context.Background(), "/bucket")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "public" {
		t.Fatalf("public side over TLS: %q", b)
	}
}

// TestExpired: a host away longer than its certificate lived is told to
// join again, at start (Load) and by the renewal loop, instead of retrying
// what cannot succeed.
func TestExpired(t *testing.T) {
	c := newCloud(t)
	id, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	// The same certificate, but expired a minute ago.
	tmpl := *id.Leaf()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-30*time.Minute), time.Now().Add(-time.Minute)
	tmpl.SerialNumber = new(big.Int).Add(tmpl.SerialNumber, big.NewInt(1))
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, c.ca.Cert, id.Leaf().PublicKey, c.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	old, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.st.AddHostCert(context.Background(), record(old, "nc", "node1")); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFileAtomic(filepath.Join(id.Dir, CertFile), pki.EncodeCertPEM(der), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(id.Dir); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "join again") {
		t.Fatalf("load of an expired identity: %v", err)
	}
	expired := &Identity{Dir: id.Dir, Server: c.addr, CA: c.ca.Cert,
		cert: &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.current().PrivateKey, Leaf: old}}
	done := make(chan error, 1)
	go func() { done <- expired.KeepRenewed(context.Background(), discard) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrExpired) {
			t.Fatalf("renewal loop of an expired certificate: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the renewal loop keeps retrying an expired certificate")
	}
}
