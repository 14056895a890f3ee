package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestReissuingClientTLSConfig: the front-end's client certificate (its
// cluster controller's, for its nodes) is issued again once a third of its
// validity is left, and not before, so a front-end that runs longer than
// one certificate lives keeps reaching its nodes.
func TestReissuingClientTLSConfig(t *testing.T) {
	t.Cleanup(func() { now = time.Now })
	ca := testCA(t)
	tc, err := ca.ReissuingClientTLSConfig("cc:cluster1")
	if err != nil {
		t.Fatal(err)
	}
	first, err := tc.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	l := first.Leaf
	life := l.NotAfter.Sub(l.NotBefore)

	now = func() time.Time { return l.NotBefore.Add(life / 2) }
	if c, _ := tc.GetClientCertificate(&tls.CertificateRequestInfo{}); c.Leaf.SerialNumber.Cmp(l.SerialNumber) != 0 {
		t.Fatal("reissued with half its validity left")
	}
	late := l.NotAfter.Add(-life / 4)
	now = func() time.Time { return late }
	next, err := tc.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Leaf.SerialNumber.Cmp(l.SerialNumber) == 0 {
		t.Fatalf("not reissued with a quarter of its validity left (expires %s)", l.NotAfter)
	}
	if next.Leaf.Subject.CommonName != "cc:cluster1" {
		t.Fatalf("reissued certificate for %s", next.Leaf.Subject.CommonName)
	}
	// And it is what the handshake presents.
	now = time.Now
	srv := startInternal(t, ca)
	if got, err := get(srv, tc); err != nil || got != "cc:cluster1" {
		t.Fatalf("call with the reissuing configuration: %q %v", got, err)
	}
}

// serveAs serves with the server side of the CA's mutual TLS under cert.
func serveAs(t *testing.T, ca *CA, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = ca.ServerTLSConfig(cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestExpectJoined: a client narrowed to the front-end refuses a joined
// host's certificate, even one naming the address dialled; a client of
// nodes takes a node's and refuses a cluster host's.
func TestExpectJoined(t *testing.T) {
	ca := testCA(t)
	client, err := ca.IssueClient("clc:cluster1")
	if err != nil {
		t.Fatal(err)
	}
	joined := func(role string) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.IssueHost(HostRequest{Role: role, Host: "host1", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: &key.PublicKey, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	}
	node, cluster := serveAs(t, ca, joined("nc")), serveAs(t, ca, joined("cc"))
	front := startInternal(t, ca)

	if _, err := get(node, ExpectJoined(ca.ClientTLSConfig(client))); !errors.Is(err, ErrJoinedPeer) {
		t.Fatalf("a node's certificate taken for the front-end's: %v", err)
	}
	if got, err := get(front, ExpectJoined(ca.ClientTLSConfig(client))); err != nil || got != "clc:cluster1" {
		t.Fatalf("the front-end's own certificate refused: %q %v", got, err)
	}
	if got, err := get(node, ExpectJoined(ca.ClientTLSConfig(client), "nc")); err != nil || got != "ok" {
		t.Fatalf("a node's certificate refused by a client of nodes: %q %v", got, err)
	}
	if _, err := get(cluster, ExpectJoined(ca.ClientTLSConfig(client), "nc")); err == nil || !strings.Contains(err.Error(), "is not a joined nc") {
		t.Fatalf("a cluster host's certificate taken for a node's: %v", err)
	}
}

// TestReissuingServerTLSConfig: the front-end's internal listeners (its
// own node's images) present a certificate issued again once a third of
// its validity is left, and clients of the CA take it.
func TestReissuingServerTLSConfig(t *testing.T) {
	t.Cleanup(func() { now = time.Now })
	ca := testCA(t)
	tc, err := ca.ReissuingServerTLSConfig([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	l := first.Leaf
	late := l.NotAfter.Add(-l.NotAfter.Sub(l.NotBefore) / 4)
	now = func() time.Time { return late }
	next, err := tc.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if next.Leaf.SerialNumber.Cmp(l.SerialNumber) == 0 {
		t.Fatal("not reissued with a quarter of its validity left")
	}
	now = time.Now
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	client, err := ca.IssueClient("nc:local")
	if err != nil {
		t.Fatal(err)
	}
	cc := ca.ClientTLSConfig(client)
	cc.ServerName = "localhost"
	c, err := tls.Dial("tcp", ln.Addr().String(), cc)
	if err != nil {
		t.Fatalf("handshake with the reissuing listener: %v", err)
	}
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(next.Leaf.SerialNumber) != 0 {
		t.Errorf("the listener presented serial %x, not the reissued %x", got, next.Leaf.SerialNumber)
	}
	c.Close()
}
