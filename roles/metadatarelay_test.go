package roles

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/pki"
)

// TestMetadataRelayRefusesJoinedFrontEnd: a cluster's metadata relay asks
// the front-end with the configuration that refuses a joined host's
// certificate, so a node whose certificate names the front-end's address
// cannot answer guests' metadata (user data, keys) in its place.
func TestMetadataRelayRefusesJoinedFrontEnd(t *testing.T) {
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.IssueHost(pki.HostRequest{Role: "nc", Host: "node1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: &key.PublicKey, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Bool
	impostor, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLSConfig(tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Store(true) })}
	go hs.Serve(impostor)
	t.Cleanup(func() { hs.Close() })

	ccCert, err := ca.IssueClient("cc:zone1")
	if err != nil {
		t.Fatal(err)
	}
	host := &remoteNode{server: impostor.Addr().String(),
		clientTLS:   pki.ExpectJoined(ca.ClientTLSConfig(ccCert), NC),
		frontEndTLS: pki.ExpectJoined(ca.ClientTLSConfig(ccCert))}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := conf.Defaults()
	cfg.MetadataPort = free.Addr().(*net.TCPAddr).Port
	free.Close()
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lim := httplimit.Defaults()
	addr, err := serveMetadataRelay(host, Options{Conf: cfg, Log: log, Limits: lim}, httplimit.NewConns(lim, log),
		func(_ string, f func(context.Context) error) { go f(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/latest/user-data")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if asked.Load() || resp.StatusCode == http.StatusOK {
		t.Fatalf("a node's certificate answered for the front-end (%s)", resp.Status)
	}
}
