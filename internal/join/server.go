package join

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/store"
)

// Server issues and renews joined hosts' certificates. It is the CA's
// side: it needs the CA's key and the store holding the tokens' hashes.
type Server struct {
	ca    *pki.CA
	store *store.Store
	log   *slog.Logger
	// Validity of the certificates it issues; HostValidity unless a test
	// wants renewals soon.
	Validity time.Duration

	// The front-end's own names and addresses (FrontEndTLSConfig): a
	// joining host may not claim them.
	frontHosts []string
	frontIPs   []net.IP
}

// NewServer is the join server of the CA ca over st.
func NewServer(ca *pki.CA, st *store.Store, log *slog.Logger) *Server {
	return &Server{ca: ca, store: st, log: log, Validity: HostValidity}
}

// Handler serves PathJoin (no client certificate: the token's secret
// authenticates the host) and PathRenew (the host's certificate does). Mount
// it on a TLS listener that requests client certificates but does not
// require them.
func (s *Server) Handler() http.Handler {
	m := rpc.NewMux(Errors, s.log)
	m.AllowAnonymous()
	rpc.Func(m, "POST "+PathJoin, s.join)
	rpc.Func(m, "POST "+PathRenew, s.renew)
	return m
}

// Revoked refuses a joined host's certificate that was revoked, or that
// the store does not know (issued by a CA whose records are lost, or
// forged with a stolen CA key). Certificates the CA issued to roles in
// its own process are not joined hosts' and pass.
func (s *Server) Revoked(ctx context.Context, cert *x509.Certificate) error {
	return CheckRevoked(ctx, s.store, cert)
}

// CheckRevoked is Server.Revoked for a caller holding only the store.
func CheckRevoked(ctx context.Context, st *store.Store, cert *x509.Certificate) error {
	if !pki.IsJoined(cert) {
		return nil
	}
	_, err := checkSerial(ctx, st, pki.SerialHex(cert), cert.Subject.CommonName)
	return err
}

func (s *Server) join(ctx context.Context, req joinRequest) (certResponse, error) {
	peer := rpc.PeerOf(ctx)
	secret, err := hex.DecodeString(req.Secret)
	if err != nil || len(secret) != sha256.Size {
		return certResponse{}, fmt.Errorf("%w: the secret is not 64 hex digits", ErrBadRequest)
	}
	sum := sha256.Sum256(secret)
	hash := sum[:]
	tok, err := s.store.JoinToken(ctx, hash)
	if err != nil {
		return certResponse{}, s.refuse(ctx, "join", req.Host, peer.Addr, tokenError(err))
	}
	if req.Role != tok.Role {
		return certResponse{}, s.refuse(ctx, "join", req.Host, peer.Addr, fmt.Errorf("%w: made for role %s, asked for role %q", ErrWrongRole, tok.Role, req.Role))
	}
	if err := checkHostName(req.Host); err != nil {
		return certResponse{}, err
	}
	names, ips, err := sans(req, peer.Addr)
	if err != nil {
		return certResponse{}, err
	}
	if names, ips, err = s.checkClaims(ctx, req.Host, names, ips, peer.Addr); err != nil {
		return certResponse{}, err
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return certResponse{}, err
	}
	cert, err := s.ca.IssueHost(pki.HostRequest{Role: tok.Role, Host: req.Host, DNSNames: names, IPs: ips, PublicKey: csr.PublicKey, Validity: s.Validity})
	if err != nil {
		return certResponse{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	// The token is used and the certificate recorded together: of two
	// hosts racing with one token, one gets a certificate.
	if _, err := s.store.RedeemJoinToken(ctx, hash, record(cert, tok.Role, req.Host)); err != nil {
		return certResponse{}, s.refuse(ctx, "join", req.Host, peer.Addr, tokenError(err))
	}
	s.log.InfoContext(ctx, "host joined", "role", tok.Role, "host", req.Host, "from", peer.Addr, "serial", pki.SerialHex(cert),
		"names", strings.Join(recordNames(cert), " "), "not_after", cert.NotAfter.UTC())
	return certResponse{Certificate: string(pki.EncodeCertPEM(cert.Raw)), CA: string(s.ca.CertPEM)}, nil
}

func (s *Server) renew(ctx context.Context, req renewRequest) (certResponse, error) {
	peer := rpc.PeerOf(ctx)
	old := peer.Cert
	if old == nil || !pki.IsJoined(old) {
		return certResponse{}, fmt.Errorf("%w: renewal needs the certificate of a joined host", ErrBadRequest)
	}
	// The Mux has checked that it comes from one of its addresses.
	if err := s.Revoked(ctx, old); err != nil {
		return certResponse{}, s.refuse(ctx, "renew", old.Subject.CommonName, peer.Addr, err)
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return certResponse{}, err
	}
	role, host, _ := strings.Cut(old.Subject.CommonName, ":")
	cert, err := s.ca.IssueHost(pki.HostRequest{Role: role, Host: host, DNSNames: old.DNSNames, IPs: old.IPAddresses, PublicKey: csr.PublicKey, Validity: s.Validity})
	if err != nil {
		return certResponse{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err := s.store.AddHostCert(ctx, record(cert, role, host)); err != nil {
		return certResponse{}, err
	}
	s.log.InfoContext(ctx, "host certificate renewed", "role", role, "host", host, "from", peer.Addr,
		"old_serial", pki.SerialHex(old), "serial", pki.SerialHex(cert), "not_after", cert.NotAfter.UTC())
	return certResponse{Certificate: string(pki.EncodeCertPEM(cert.Raw)), CA: string(s.ca.CertPEM)}, nil
}

// checkClaims checks the names and addresses a joining host claims: only
// the address the request came from is proven. An address or name that is
// the front-end's own, or that another host's certificate in force (not
// revoked, not expired) names, is left out of the certificate: with it a
// token holder could pass for the front-end or for that node to whoever
// dials it. They are left out rather than refused, since hosts commonly
// share some (libvirt's virbr0 192.168.122.1, docker0's 172.17.0.1, one host
// name in containers or network namespaces), which no one dials to reach
// a host. A request from the front-end's own host, or from an address the
// other certificate names (the same host joining again, or with another
// role), may claim what that host holds. It returns what is kept.
func (s *Server) checkClaims(ctx context.Context, host string, names []string, ips []net.IP, from netip.Addr) ([]string, []net.IP, error) {
	from = from.Unmap()
	fromFront := from.IsLoopback() || slices.ContainsFunc(s.frontIPs, func(ip net.IP) bool { return sameAddr(ip, from) })
	held := map[string]string{} // lower-case name or address -> who holds it
	if !fromFront {
		for _, h := range s.frontHosts {
			held[strings.ToLower(h)] = "the front-end"
		}
		held["localhost"] = "the front-end"
		for _, ip := range s.frontIPs {
			if a, ok := netip.AddrFromSlice(ip); ok {
				held[a.Unmap().String()] = "the front-end"
			}
		}
	}
	certs, err := s.store.HostCerts(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("check the names claimed: %w", err)
	}
	at := time.Now().UnixMilli()
	for _, c := range certs {
		if c.RevokedMS != 0 || c.NotAfterMS <= at || slices.Contains(c.Names, from.String()) {
			continue
		}
		for _, n := range c.Names {
			if _, ok := held[strings.ToLower(n)]; !ok {
				held[strings.ToLower(n)] = c.Role + ":" + c.Host + " (serial " + c.Serial + ")"
			}
		}
	}
	leftOut := func(what string) bool {
		who, ok := held[strings.ToLower(what)]
		if ok {
			s.log.WarnContext(ctx, "join: claim left out of the certificate: another host holds it", "host", host, "from", from, "claim", what, "held_by", who)
		}
		return ok
	}
	var keptIPs []net.IP
	for _, ip := range ips {
		a, _ := netip.AddrFromSlice(ip)
		if a = a.Unmap(); a == from || !leftOut(a.String()) {
			keptIPs = append(keptIPs, ip)
		}
	}
	var kept []string
	for _, n := range names {
		if !leftOut(n) {
			kept = append(kept, n)
		}
	}
	return kept, keptIPs, nil
}

func sameAddr(ip net.IP, a netip.Addr) bool {
	b, ok := netip.AddrFromSlice(ip)
	return ok && b.Unmap() == a
}

// refuse logs a refused join or renewal (never the secret) and returns err.
func (s *Server) refuse(ctx context.Context, call, host string, from netip.Addr, err error) error {
	s.log.WarnContext(ctx, "refused "+call, "host", host, "from", from, "reason", err)
	return err
}

// tokenError gives the store's refusals their API's names.
func tokenError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrTokenUnknown
	case errors.Is(err, store.ErrTokenExpired):
		return fmt.Errorf("%w (%v)", ErrTokenExpired, err)
	case errors.Is(err, store.ErrTokenUsed):
		return fmt.Errorf("%w (%v)", ErrTokenUsed, err)
	}
	return err
}

func record(cert *x509.Certificate, role, host string) store.HostCert {
	return store.HostCert{Serial: pki.SerialHex(cert), Role: role, Host: host, Names: recordNames(cert), NotAfterMS: cert.NotAfter.UnixMilli()}
}

func recordNames(cert *x509.Certificate) []string {
	out := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// hostName is what a DNS name may be (RFC 1123 labels); it keeps anything
// odd out of certificates, logs and the store.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func checkHostName(h string) error {
	if len(h) == 0 || len(h) > maxNameLen || !hostName.MatchString(h) {
		return fmt.Errorf("%w: %.64q is not a host name", ErrBadRequest, h)
	}
	return nil
}

// sans are the names and addresses the certificate will carry: the host's
// name and the names it gave, the addresses it gave and always the one the
// request came from (the address the front-end knows it by). A loopback
// address is taken only when the request came from it: otherwise any host
// could be "localhost".
func sans(req joinRequest, from netip.Addr) ([]string, []net.IP, error) {
	if len(req.DNSNames) > maxNames || len(req.Addresses) > maxNames {
		return nil, nil, fmt.Errorf("%w: more than %d names or addresses", ErrBadRequest, maxNames)
	}
	names := []string{req.Host}
	for _, n := range req.DNSNames {
		if err := checkHostName(n); err != nil {
			return nil, nil, err
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var addrs []netip.Addr
	if from.IsValid() {
		addrs = append(addrs, from.Unmap())
		// A host that reaches the front-end over loopback is the
		// front-end's own host, which the cluster controller there may
		// know as localhost.
		if from.IsLoopback() && !slices.Contains(names, "localhost") {
			names = append(names, "localhost")
		}
	}
	for _, s := range req.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, nil, fmt.Errorf("%w: %.64q is not an IP address", ErrBadRequest, s)
		}
		a = a.Unmap()
		if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() {
			continue
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, nil, fmt.Errorf("%w: no address", ErrBadRequest)
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = net.IP(a.AsSlice())
	}
	return names, ips, nil
}

// parseCSR reads a PEM certificate request and checks its signature: the
// host holds the key it asks a certificate for.
func parseCSR(s string) (*x509.CertificateRequest, error) {
	if len(s) > maxCSR {
		return nil, fmt.Errorf("%w: certificate request over %d bytes", ErrBadRequest, maxCSR)
	}
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: no PEM CERTIFICATE REQUEST", ErrBadRequest)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate request: %w", ErrBadRequest, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: certificate request signature: %w", ErrBadRequest, err)
	}
	return csr, nil
}
