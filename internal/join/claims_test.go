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
// proven, so a token holder's claims of the front-end's addresses and
// names, or of those another host's certificate in force names, are left
// out of its certificate (it would pass for them to whoever dials there).
// The same host joining again, and anyone once the holder is revoked, may
// claim them.
func TestJoinRefusesClaimsOfOthers(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	if _, err := c.srv.FrontEndTLSConfig([]string{"frontend", "localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(192, 0, 2, 1), net.IPv4(192, 168, 122, 1)}); err != nil {
		t.Fatal(err)
	}
	join := func(from, host string, names, addrs []string, want ...string) {
		t.Helper()
		code, msg, got := joinFrom(t, c, from, c.token(t, "nc", time.Hour), host, names, addrs)
		if code != http.StatusOK {
			t.Fatalf("%s's join from %s: %d %s", host, from, code, msg)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s's join from %s: the certificate names %v, want %v", host, from, got, want)
		}
	}
	// Libvirt's virbr0 address is on every host: left out, the join goes on.
	join("192.0.2.7", "node1", []string{"node1.lan"}, []string{"192.0.2.7", "198.51.100.7", "192.168.122.1"},
		"node1", "node1.lan", "192.0.2.7", "198.51.100.7")
	// Another host claiming the front-end's and node1's names and
	// addresses gets only its own.
	join("192.0.2.8", "node1", []string{"frontend", "localhost", "NODE1.lan", "node2.lan"}, []string{"192.0.2.1", "192.0.2.7", "198.51.100.7", "203.0.113.8"},
		"node2.lan", "192.0.2.8", "203.0.113.8")
	// node1 joining again (from its address) claims what it holds.
	join("192.0.2.7", "node1", []string{"node1.lan"}, []string{"198.51.100.7"},
		"node1", "node1.lan", "192.0.2.7", "198.51.100.7")
	// Once node1 is revoked, its addresses are free.
	if _, err := c.st.RevokeHostCerts(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	join("192.0.2.9", "node3", nil, []string{"198.51.100.7"}, "node3", "192.0.2.9", "198.51.100.7")
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
