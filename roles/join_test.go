package roles

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/join"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles/clc"
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
		c, err := tls.Dial("tcp", ln.Addr().String(), join.RefuseRevoked(ca.ClientTLSConfig(ccCert), func(ctx context.Context, c *x509.Certificate) error { return join.CheckRevoked(ctx, st, c) }))
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

// TestCloudRefusesRevokedCluster: the cloud controller reaches a
// registered cluster on another host only while that host's certificate
// is in force and a cluster controller's: once `euca node revoke` ends it
// (or a node's certificate answers at the cluster's address), the call
// fails instead of driving it.
func TestCloudRefusesRevokedCluster(t *testing.T) {
	ctx := context.Background()
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cloud, err := clc.New(ctx, cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ca := cloud.CA()
	serveAs := func(role, host string) (string, *x509.Certificate) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.IssueHost(pki.HostRequest{Role: role, Host: host, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: &key.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddHostCert(ctx, store.HostCert{Serial: pki.SerialHex(leaf), Role: role, Host: host, Names: []string{"127.0.0.1"}, NotAfterMS: leaf.NotAfter.UnixMilli()}); err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLSConfig(tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}))
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "{}", http.StatusTeapot) })}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
		return ln.Addr().String(), leaf
	}
	dial := dialClusters(cloud, st, Options{Conf: cfg, Log: slog.New(slog.DiscardHandler)})
	describe := func(addr string) error {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		cl, err := dial(store.Cluster{Name: "zone2", Host: host, Port: p})
		if err != nil {
			return err
		}
		_, err = cl.Describe(ctx, nil)
		return err
	}
	clusterAddr, _ := serveAs("cc", "cluster2")
	// In force: the TLS handshake passes and the cluster answers (here,
	// an error of its own).
	if err := describe(clusterAddr); err == nil || strings.Contains(err.Error(), "tls") {
		t.Fatalf("a cluster in force: %v", err)
	}
	if _, err := st.RevokeHostCerts(ctx, "cluster2"); err != nil {
		t.Fatal(err)
	}
	if err := describe(clusterAddr); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked cluster: %v", err)
	}
	nodeAddr, _ := serveAs("nc", "node7")
	if err := describe(nodeAddr); err == nil || !strings.Contains(err.Error(), "is not a joined cc") {
		t.Fatalf("a node at a cluster's address: %v", err)
	}
}
