package clc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/euca-cloud/euca/internal/mdrelay"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
)

// relayFrontEnd serves MetadataRelayHandler over TLS from the cloud's CA,
// asking for client certificates as CLOUD_PORT's internal side does.
func relayFrontEnd(t *testing.T, c *Cloud) *httptest.Server {
	t.Helper()
	cert, err := c.CA().IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(c.MetadataRelayHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: c.CA().Pool(), MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// joinedHost is a certificate the CA issues to a host joined as role,
// calling from 127.0.0.1 (the test's connections come from there) and
// named at the further addresses ips.
func joinedHost(t *testing.T, c *Cloud, role, host string, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.CA().IssueHost(pki.HostRequest{Role: role, Host: host, DNSNames: []string{host}, IPs: append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...), PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// relayAs is a cluster host's relay to srv under cert (none: no client
// certificate).
func relayAs(c *Cloud, srv *httptest.Server, cert *tls.Certificate) *mdrelay.Relay {
	tc := &tls.Config{RootCAs: c.CA().Pool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &mdrelay.Relay{BaseURL: srv.URL, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
}

// TestIMDSv2ThroughRelay: a guest of a cluster on another host gets its
// own metadata through its cluster's relay, IMDSv2 included, and cannot
// pass for another instance or get a token through a proxy of its own.
func TestIMDSv2ThroughRelay(t *testing.T) {
	ctx := context.Background()
	f, in := metadataFixture(t)
	other, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	otherIn := f.running(t, other[0].ID)
	// The instances' zone is served by the cluster at host "cc-a".
	if _, err := f.c.store.RegisterCluster(ctx, store.Cluster{Name: in.Zone, Host: "cc-a", Port: 8774}); err != nil {
		t.Fatal(err)
	}
	srv := relayFrontEnd(t, f.c)
	cert := joinedHost(t, f.c, "cc", "cc-a")
	c := &imdsClient{t: t, h: relayAs(f.c, srv, &cert), addr: in.PrivateIP}

	if code, _ := c.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "60", "X-Forwarded-For": "10.1.1.1"}); code != http.StatusForbidden {
		t.Errorf("PUT through the guest's own proxy: %d", code)
	}
	code, tok := c.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "60"})
	if code != http.StatusOK || tok == "" {
		t.Fatalf("token through the relay: %d %q", code, tok)
	}
	c.token = tok
	if code, id := c.get("/latest/meta-data/instance-id"); code != http.StatusOK || id != in.ID {
		t.Fatalf("GET with token through the relay: %d %q", code, id)
	}
	c.token = "garbage"
	if code, _ := c.get("/latest/meta-data/instance-id"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token through the relay: %d", code)
	}
	c.token = ""
	if code, body := c.get("/latest/user-data"); code != http.StatusOK || body != string(in.UserData) {
		t.Errorf("user-data through the relay: %d %q", code, body)
	}
	// The guest names another instance's address: the relay's connection
	// says who asks, not the guest.
	code, id := c.do(http.MethodGet, "/latest/meta-data/instance-id", map[string]string{mdrelay.CallerHeader: otherIn.PrivateIP})
	if code != http.StatusOK || id != in.ID {
		t.Errorf("a guest naming %s as caller: %d %q, want its own id %s", otherIn.PrivateIP, code, id, in.ID)
	}
	stranger := &imdsClient{t: t, h: relayAs(f.c, srv, &cert), addr: "172.31.99.99"}
	if code, id := stranger.do(http.MethodGet, "/latest/meta-data/instance-id", map[string]string{mdrelay.CallerHeader: in.PrivateIP}); code != http.StatusNotFound {
		t.Errorf("an address no instance holds, naming %s as caller: %d %q", in.PrivateIP, code, id)
	}
}

// TestMetadataRelayZoneCheck: a cluster learns only its own zone's
// instances' metadata; other roles, and hosts that are no registered
// cluster, are refused.
func TestMetadataRelayZoneCheck(t *testing.T) {
	ctx := context.Background()
	f, in := metadataFixture(t)
	for _, r := range []store.Cluster{{Name: in.Zone, Host: "cc-a", Port: 8774}, {Name: "us-east-1b", Host: "10.9.0.2", Port: 8774}} {
		if _, err := f.c.store.RegisterCluster(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	srv := relayFrontEnd(t, f.c)
	get := func(relay *mdrelay.Relay) int {
		c := &imdsClient{t: t, h: relay, addr: in.PrivateIP}
		code, _ := c.get("/latest/meta-data/instance-id")
		return code
	}
	ownZone := joinedHost(t, f.c, "cc", "cc-a")
	if code := get(relayAs(f.c, srv, &ownZone)); code != http.StatusOK {
		t.Errorf("the instance's own cluster: %d", code)
	}
	// Zone B's cluster (registered at its address) asks for zone A's
	// instance: no answer, as for an address no instance holds.
	zoneB := joinedHost(t, f.c, "cc", "cc-b", net.IPv4(10, 9, 0, 2))
	if code := get(relayAs(f.c, srv, &zoneB)); code != http.StatusNotFound {
		t.Errorf("another zone's cluster: %d, want 404", code)
	}
	inProcB, err := f.c.CA().IssueClient("cc:us-east-1b")
	if err != nil {
		t.Fatal(err)
	}
	if code := get(relayAs(f.c, srv, &inProcB)); code != http.StatusNotFound {
		t.Errorf("cc:us-east-1b: %d, want 404", code)
	}
	// Refused outright (the relay answers its guest 502 and logs why):
	// the front-end's own node (it needs no relay), a cluster host no
	// cluster is registered at, no certificate.
	inProcNode, err := f.c.CA().IssueClient("nc:local")
	if err != nil {
		t.Fatal(err)
	}
	unregistered := joinedHost(t, f.c, "cc", "cc-z")
	for name, cert := range map[string]*tls.Certificate{"nc:local": &inProcNode, "unregistered cc": &unregistered, "none": nil} {
		if code := get(relayAs(f.c, srv, cert)); code != http.StatusBadGateway {
			t.Errorf("%s: %d, want 502", name, code)
		}
	}
	// And without the relay: the front-end answers a cluster host no
	// cluster is registered at 403.
	nodeClient := relayAs(f.c, srv, &unregistered).HTTP
	req, _ := http.NewRequest(http.MethodGet, srv.URL+mdrelay.Path+"/latest/meta-data/instance-id", nil)
	req.Header.Set(mdrelay.CallerHeader, in.PrivateIP)
	resp, err := nodeClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an unregistered cluster host asking the front-end directly: %d", resp.StatusCode)
	}
}

// TestMetadataRelayNodeCheck: a node on a host of its own (STATIC,
// SYSTEM) learns the metadata of the instances running on it only: not
// another node's, even of its zone.
func TestMetadataRelayNodeCheck(t *testing.T) {
	ctx := context.Background()
	f, in := metadataFixture(t)
	if err := f.c.store.SetInstanceNodes(ctx, map[string]string{in.ID: "10.247.0.2"}); err != nil {
		t.Fatal(err)
	}
	srv := relayFrontEnd(t, f.c)
	get := func(cert tls.Certificate) (int, string) {
		c := &imdsClient{t: t, h: relayAs(f.c, srv, &cert), addr: in.PrivateIP}
		return c.get("/latest/meta-data/instance-id")
	}
	if code, id := get(joinedHost(t, f.c, "nc", "n1", net.IPv4(10, 247, 0, 2))); code != http.StatusOK || id != in.ID {
		t.Errorf("the instance's own node: %d %q", code, id)
	}
	if code, id := get(joinedHost(t, f.c, "nc", "n2", net.IPv4(10, 247, 0, 3))); code != http.StatusNotFound {
		t.Errorf("another node: %d %q, want 404", code, id)
	}
}
