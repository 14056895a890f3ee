package roles

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/join"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
)

// TestClusterRefusesRevokedNode: once `euca node revoke` ends a node's
// certificate, the front-end's cluster controller's connections to it
// fail; so do they to a node whose certificate the CA's records do not
// know (failing safe: a certificate made with a stolen CA key).
func TestClusterRefusesRevokedNode(t *testing.T) {
	ctx := context.Background()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	node := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLSConfig(node))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	ccCert, err := ca.IssueClient("cc:zone")
	if err != nil {
		t.Fatal(err)
	}
	dial := func() error {
		c, err := tls.Dial("tcp", ln.Addr().String(), refuseRevoked(ca.ClientTLSConfig(ccCert), func(ctx context.Context, c *x509.Certificate) error { return join.CheckRevoked(ctx, st, c) }))
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err == nil || !strings.Contains(err.Error(), "not in this cloud's records") {
		t.Fatalf("a node the store does not know: %v", err)
	}
	if err := st.AddHostCert(ctx, store.HostCert{Serial: pki.SerialHex(leaf), Role: "nc", Host: "node1", Names: []string{"127.0.0.1"}, NotAfterMS: leaf.NotAfter.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("a node in force: %v", err)
	}
	if _, err := st.RevokeHostCerts(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked node: %v", err)
	}
}
