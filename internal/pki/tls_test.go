package pki

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// startInternal serves over a real loopback listener with the server side of
// the CA's mutual TLS.
func startInternal(t *testing.T, ca *CA) *httptest.Server {
	t.Helper()
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = ca.ServerTLSConfig(cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(srv *httptest.Server, cfg *tls.Config) (string, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestMutualTLS(t *testing.T) {
	ca := testCA(t)
	srv := startInternal(t, ca)

	client, err := ca.IssueClient("cc:cluster1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := get(srv, ca.ClientTLSConfig(client))
	if err != nil {
		t.Fatalf("mutual TLS between two of the cloud's roles failed: %v", err)
	}
	if got != "cc:cluster1" {
		t.Errorf("server saw client %q", got)
	}

	other := testCA(t)
	otherClient, err := other.IssueClient("cc:cluster1")
	if err != nil {
		t.Fatal(err)
	}

	// A client certificate from another CA is refused by the server.
	cfg := ca.ClientTLSConfig(otherClient)
	if _, err := get(srv, cfg); err == nil {
		t.Error("server accepted a client certificate from another CA")
	} else {
		t.Logf("refused as it should be: %v", err)
	}

	// A client that pins another CA refuses our server.
	if _, err := get(srv, other.ClientTLSConfig(otherClient)); err == nil {
		t.Error("client trusting another CA accepted our server")
	} else {
		t.Logf("refused as it should be: %v", err)
	}

	// No client certificate at all is refused.
	cfg = ca.ClientTLSConfig(client)
	cfg.Certificates = nil
	if _, err := get(srv, cfg); err == nil {
		t.Error("server accepted a client without a certificate")
	} else {
		t.Logf("refused as it should be: %v", err)
	}

	// A user's certificate chains to the same CA, but is not a role.
	certPEM, keyPEM, err := ca.IssueUser("123456789012", "mallory")
	if err != nil {
		t.Fatal(err)
	}
	userCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(srv, ca.ClientTLSConfig(userCert)); err == nil {
		t.Error("server accepted a user's certificate as a role")
	} else {
		t.Logf("refused as it should be: %v", err)
	}
}
