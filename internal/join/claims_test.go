package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
)

// joinFrom makes a join call to c's join server as a host at from would
// (the handler reads the source address as a listener gives it), returning
// the status, the error code and the certificate's names.
func joinFrom(t *testing.T, c *cloud, from, token, host string, dnsNames, addrs []string) (int, string, []string) {
	t.Helper()
	_, secret, err := pki.ParseJoinToken(token)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certRequest(key, "nc:"+host)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(joinRequest{Secret: hex.EncodeToString(secret), Role: "nc", Host: host, DNSNames: dnsNames, Addresses: addrs, CSR: csr})
	r := httptest.NewRequest(http.MethodPost, PathJoin, strings.NewReader(string(body)))
	r.RemoteAddr = net.JoinHostPort(from, "40000")
	w := httptest.NewRecorder()
	c.srv.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		var e struct{ Code, Message string }
		json.Unmarshal(w.Body.Bytes(), &e)
		return w.Code, e.Code + ": " + e.Message, nil
	}
	var resp certResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertPEM([]byte(resp.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	return w.Code, "", recordNames(leaf)
}

// TestJoinRefusesClaimsOfOthers: only the source address of a join is
// proven, so a token holder may not claim the front-end's addresses or
// those another host's certificate in force names (it would pass for them
// to whoever dials there); names so held are left out of its certificate.
// The same host joining again, and anyone once the holder is revoked, may.
func TestJoinRefusesClaimsOfOthers(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	if _, err := c.srv.FrontEndTLSConfig([]string{"frontend", "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(192, 0, 2, 1)}); err != nil {
		t.Fatal(err)
	}
	if code, msg, names := joinFrom(t, c, "192.0.2.7", c.token(t, "nc", time.Hour), "node1", []string{"node1.lan"}, []string{"192.0.2.7", "198.51.100.7"}); code != 200 {
		t.Fatalf("node1's join: %d %s", code, msg)
	} else if !slices.Contains(names, "198.51.100.7") || !slices.Contains(names, "node1.lan") {
		t.Fatalf("node1's certificate names %v", names)
	}

	tok := c.token(t, "nc", time.Hour)
	for _, claim := range []string{"192.0.2.1", "192.0.2.7", "198.51.100.7"} {
		code, msg, _ := joinFrom(t, c, "192.0.2.8", tok, "node2", nil, []string{claim})
		if code != http.StatusForbidden || !strings.HasPrefix(msg, "AddressClaimed") {
			t.Errorf("a host at 192.0.2.8 claiming %s: %d %s", claim, code, msg)
		}
	}
	if used, err := c.st.JoinToken(ctx, secretHash(t, tok)); err != nil || used.UsedMS != 0 {
		t.Fatalf("a refused claim used the token: %+v %v", used, err)
	}
	// Names: the front-end's and node1's are left out.
	code, msg, names := joinFrom(t, c, "192.0.2.8", tok, "node1", []string{"frontend", "localhost", "node1.lan", "node2.lan"}, []string{"192.0.2.8"})
	if code != 200 {
		t.Fatalf("node2's join: %d %s", code, msg)
	}
	if !slices.Equal(names, []string{"node2.lan", "192.0.2.8"}) {
		t.Fatalf("node2's certificate names %v, want only its own", names)
	}

	// node1 joining again (from its address) claims what it holds.
	if code, msg, _ := joinFrom(t, c, "192.0.2.7", c.token(t, "nc", time.Hour), "node1", []string{"node1.lan"}, []string{"198.51.100.7"}); code != 200 {
		t.Fatalf("node1 joining again: %d %s", code, msg)
	}
	// Once node1 is revoked, its addresses are free.
	if _, err := c.st.RevokeHostCerts(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := joinFrom(t, c, "192.0.2.9", c.token(t, "nc", time.Hour), "node3", nil, []string{"198.51.100.7"}); code != 200 {
		t.Fatalf("claiming a revoked host's address: %d %s", code, msg)
	}
}

// TestFrontEndCallsRefuseJoinedHosts: after joining, a host's calls to the
// front-end (renewals here; images and the cloud's accounts go through the
// same configuration) refuse a server showing a joined host's certificate,
// even one from the cloud's CA naming the address dialled: a node cannot
// pass for the front-end to the others.
func TestFrontEndCallsRefuseJoinedHosts(t *testing.T) {
	c := newCloud(t)
	node1, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	node2, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node2")
	if err != nil {
		t.Fatal(err)
	}
	// node1's certificate names 127.0.0.1, where it joined from.
	var asked atomic.Bool
	impostor := serveTLS(t, node1.ServerTLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Store(true) }))
	node2.Server = impostor
	if err := node2.Renew(context.Background(), discard); !errors.Is(err, pki.ErrJoinedPeer) {
		t.Fatalf("renewal at a node posing as the front-end: %v", err)
	}
	if asked.Load() {
		t.Fatal("the renewal reached the impostor")
	}
	node2.Server = c.addr
	if err := node2.Renew(context.Background(), discard); err != nil {
		t.Fatalf("renewal at the front-end: %v", err)
	}
}
