package pki

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// now is the clock Reissuing reads; tests move it.
var now = time.Now

// Reissuing is a certificate the CA issues in its own process (the
// front-end's roles) and issues again when a third of its validity is
// left: a front-end that runs longer than one certificate lives keeps
// presenting a valid one, to its nodes and to joining hosts.
type Reissuing struct {
	issue func() (tls.Certificate, error)

	mu   sync.Mutex
	cert *tls.Certificate
}

// NewReissuing issues a first certificate with issue and returns the holder
// that issues the next ones with it.
func NewReissuing(issue func() (tls.Certificate, error)) (*Reissuing, error) {
	r := &Reissuing{issue: issue}
	if _, err := r.Get(); err != nil {
		return nil, err
	}
	return r, nil
}

// Get is the current certificate, issued anew when less than a third of
// the last one's validity is left.
func (r *Reissuing) Get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil {
		l := r.cert.Leaf
		if now().Before(l.NotAfter.Add(-l.NotAfter.Sub(l.NotBefore) / 3)) {
			return r.cert, nil
		}
	}
	c, err := r.issue()
	if err != nil {
		return nil, fmt.Errorf("pki: reissue certificate: %w", err)
	}
	if c.Leaf == nil {
		return nil, fmt.Errorf("pki: reissue certificate: no parsed leaf")
	}
	r.cert = &c
	return r.cert, nil
}

// ReissuingClientTLSConfig is ClientTLSConfig under a client certificate
// cn that is issued again before it expires (Reissuing), for a role of the
// front-end's process calling roles on other hosts.
func (ca *CA) ReissuingClientTLSConfig(cn string) (*tls.Config, error) {
	r, err := NewReissuing(func() (tls.Certificate, error) { return ca.IssueClient(cn) })
	if err != nil {
		return nil, err
	}
	tc := ca.ClientTLSConfig(tls.Certificate{})
	tc.Certificates = nil
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.Get() }
	return tc, nil
}

// ReissuingServerTLSConfig is ServerTLSConfig under a server certificate
// for hosts and ips that is issued again before it expires (Reissuing),
// for an internal listener of the front-end's process.
func (ca *CA) ReissuingServerTLSConfig(hosts []string, ips []net.IP) (*tls.Config, error) {
	r, err := NewReissuing(func() (tls.Certificate, error) { return ca.IssueServer(hosts, ips) })
	if err != nil {
		return nil, err
	}
	tc := ca.ServerTLSConfig(tls.Certificate{})
	tc.Certificates = nil
	tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.Get() }
	return tc, nil
}
