package join

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
)

// TestRevocationAtFrontEnd: a cluster controller on a host of its own has
// no copy of the CA's records; it asks the front-end whether a node's
// certificate is in force, and fails safe: a revoked or unknown node is
// refused, and so is one the front-end could not be asked about, unless it
// answered "in force" recently. Only cluster controllers and nodes may ask.
func TestRevocationAtFrontEnd(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	cc, err := c.join(t, c.token(t, "cc", time.Hour), "cc", "cluster1")
	if err != nil {
		t.Fatal(err)
	}
	node1, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	node2, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node2")
	if err != nil {
		t.Fatal(err)
	}
	r := cc.Revocation(discard)
	r.Fresh = 0
	if err := r.Check(ctx, node1.Leaf()); err != nil {
		t.Fatalf("a node in force: %v", err)
	}
	if err := r.Check(ctx, node2.Leaf()); err != nil {
		t.Fatalf("a node in force: %v", err)
	}
	// Only clusters and nodes may ask.
	walrus, err := c.join(t, c.token(t, "walrus", time.Hour), "walrus", "walrus1")
	if err != nil {
		t.Fatal(err)
	}
	if err := walrus.Revocation(discard).Check(ctx, node2.Leaf()); err == nil || !strings.Contains(err.Error(), "may not make this call") {
		t.Fatalf("a Walrus host asking about a node: %v", err)
	}
	// A certificate the records do not know (a stolen CA key).
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := c.ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node9", IPs: []net.IP{net.IPv4(192, 0, 2, 9)}, PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, forged); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a certificate the records do not know: %v", err)
	}
	if _, err := c.st.RevokeHostCerts(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, node1.Leaf()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a revoked node: %v", err)
	}

	// The front-end away: node2's recent answer holds, a node never asked
	// about is refused, and so is node2 once its answer is too old.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc.Server = ln.Addr().String()
	ln.Close()
	if err := r.Check(ctx, node2.Leaf()); err != nil {
		t.Fatalf("a node answered in force a moment ago, front-end away: %v", err)
	}
	node3, err := c.ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node3", IPs: []net.IP{net.IPv4(192, 0, 2, 3)}, PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, node3); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("a node never asked about, front-end away: %v", err)
	}
	r.Stale = 0
	if err := r.Check(ctx, node2.Leaf()); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("a node answered too long ago, front-end away: %v", err)
	}
	// The front-end's own roles' certificates are not joined hosts'.
	own, err := c.ca.IssueClient("clc:zone")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx, own.Leaf); err != nil {
		t.Fatalf("a front-end role's certificate: %v", err)
	}
}

// TestNodeRefusesRevokedCluster: a node's listener asks the front-end
// about the joined cluster controller calling it, and refuses it once it
// is revoked: a revoked cluster host no longer drives nodes.
func TestNodeRefusesRevokedCluster(t *testing.T) {
	c := newCloud(t)
	ctx := context.Background()
	cc, err := c.join(t, c.token(t, "cc", time.Hour), "cc", "cluster1")
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.join(t, c.token(t, "nc", time.Hour), "nc", "node1")
	if err != nil {
		t.Fatal(err)
	}
	r := node.Revocation(discard)
	r.Fresh = 0
	ln, err := tls.Listen("tcp", "127.0.0.1:0", RefuseRevoked(node.ServerTLSConfig(), r.Check))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				conn.(*tls.Conn).Handshake()
				conn.Write([]byte("x"))
				conn.Close()
			}()
		}
	}()
	call := func() error {
		tc := cc.ClientTLSConfig("nc")
		tc.ServerName = "127.0.0.1"
		conn, err := tls.Dial("tcp", ln.Addr().String(), tc)
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3: the server's verdict on the client certificate
		// arrives with the first read.
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := call(); err != nil {
		t.Fatalf("a cluster controller in force: %v", err)
	}
	if _, err := c.st.RevokeHostCerts(ctx, "cluster1"); err != nil {
		t.Fatal(err)
	}
	if err := call(); err == nil {
		t.Fatal("a revoked cluster controller still reaches the node")
	}
}
