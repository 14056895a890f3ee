package join

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
)

// InternalPrefix starts every internal path on the front-end's TLS side.
const InternalPrefix = "/internal/"

// FrontEndTLSConfig is the configuration of the front-end's internal TLS
// side: it presents a certificate from the cloud's CA for hosts and ips
// together with the CA's own certificate (a joining host has nothing else
// to check the pin against), and asks for a client certificate without
// requiring one (a joining host has none yet; the handler decides per
// call). The certificate is re-issued when a third of its life is left, so
// a front-end that runs for a year keeps a valid one.
func (s *Server) FrontEndTLSConfig(hosts []string, ips []net.IP) (*tls.Config, error) {
	s.frontHosts, s.frontIPs = slices.Clone(hosts), slices.Clone(ips)
	fc, err := pki.NewReissuing(func() (tls.Certificate, error) {
		c, err := s.ca.IssueServer(hosts, ips)
		if err != nil {
			return c, fmt.Errorf("front-end certificate: %w", err)
		}
		c.Certificate = append(c.Certificate, s.ca.Cert.Raw)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return fc.Get() },
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      s.ca.Pool(),
	}, nil
}

// FrontEndHandler routes the front-end's internal TLS side: the join and
// renew calls to the join server; other internal paths, to internal (which
// checks its callers' roles), once a joined host's certificate is known
// not to be revoked; everything else to public, the same APIs as on the
// plain side.
func (s *Server) FrontEndHandler(internal, public http.Handler) http.Handler {
	joinH, statusH := s.Handler(), s.statusHandler()
	errs := rpc.NewMux(Errors, s.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == PathJoin || r.URL.Path == PathRenew {
			joinH.ServeHTTP(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, InternalPrefix) {
			public.ServeHTTP(w, r)
			return
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			if err := s.Revoked(r.Context(), r.TLS.PeerCertificates[0]); err != nil {
				errs.Error(w, r, err)
				return
			}
		}
		if r.URL.Path == PathStatus {
			statusH.ServeHTTP(w, r)
			return
		}
		internal.ServeHTTP(w, r)
	})
}
