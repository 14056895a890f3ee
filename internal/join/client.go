package join

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
)

// Files of an identity directory.
const (
	CAFile     = "ca.pem"
	CertFile   = "cert.pem"
	KeyFile    = "key.pem"
	ServerFile = "server" // the front-end's HOST:PORT, one line
)

// Options say how to join.
type Options struct {
	Token  string // as `euca token create` printed it
	Server string // the front-end's HOST:PORT (CLOUD_PORT)
	Role   string // nc, cc or walrus: what the token was made for
	// Host is this host's name (default: os.Hostname); DNSNames are more
	// names it answers to.
	Host     string
	DNSNames []string
	// Addresses are this host's addresses (default: those of its
	// interfaces but loopback and link-local); the front-end adds the one
	// the request comes from.
	Addresses []netip.Addr
	// Dir is where the identity is written (ca.pem, cert.pem, key.pem,
	// server); it must not hold one yet.
	Dir string
	// Wait is how long to keep trying while the front-end cannot be
	// reached (it may be starting too); 0 tries once. Refusals are final.
	Wait time.Duration
	Log  *slog.Logger
}

// Join obtains this host's certificate from the front-end with a token
// and writes it to o.Dir, returning the identity.
//
// The front-end is believed only if the CA certificate in its TLS chain
// has the public key the token pins and signed the certificate the
// front-end shows for o.Server: that is checked during the handshake,
// before the token's secret is sent.
func Join(ctx context.Context, o Options) (*Identity, error) {
	pin, secret, err := pki.ParseJoinToken(o.Token)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(o.Server)
	if err != nil {
		return nil, fmt.Errorf("join: server %q: want HOST:PORT: %w", o.Server, err)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, CertFile)); err == nil {
		return nil, fmt.Errorf("join: %s already holds an identity; remove it to join again", o.Dir)
	}
	if o.Host == "" {
		if o.Host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("join: host name: %w", err)
		}
	}
	if o.Addresses == nil {
		o.Addresses = HostAddresses()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("join: key: %w", err)
	}
	csr, err := certRequest(key, o.Role+":"+o.Host)
	if err != nil {
		return nil, err
	}
	req := joinRequest{Secret: hex.EncodeToString(secret), Role: o.Role, Host: o.Host, DNSNames: o.DNSNames, CSR: csr}
	for _, a := range o.Addresses {
		req.Addresses = append(req.Addresses, a.String())
	}
	tr := &http.Transport{
		TLSClientConfig:     pinnedTLS(pin, host),
		TLSHandshakeTimeout: 15 * time.Second,
		DisableKeepAlives:   true,
	}
	defer tr.CloseIdleConnections()
	c := &rpc.Client{BaseURL: "https://" + o.Server, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	var resp certResponse
	deadline := time.Now().Add(o.Wait)
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		err = Errors.Decode(c.Call(ctx, http.MethodPost, PathJoin, req, &resp))
		if err == nil || !unreachable(err) || time.Now().Add(backoff).After(deadline) {
			break
		}
		o.Log.Warn("join: front-end not reachable yet; retrying", "server", o.Server, "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("join %s: %w", o.Server, ctx.Err())
		case <-time.After(backoff):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", o.Server, err)
	}
	id, err := newIdentity(o.Dir, o.Server, key, []byte(resp.Certificate), []byte(resp.CA))
	if err != nil {
		return nil, fmt.Errorf("join %s: the answer: %w", o.Server, err)
	}
	if err := pki.VerifyCAPin(pin, id.CA); err != nil {
		return nil, fmt.Errorf("join %s: the answer's CA: %w", o.Server, ErrPinMismatch)
	}
	if err := id.writeNew(key); err != nil {
		return nil, fmt.Errorf("join: keep the identity: %w", err)
	}
	o.Log.Info("joined", "server", o.Server, "as", id.Leaf().Subject.CommonName, "serial", pki.SerialHex(id.Leaf()),
		"not_after", id.Leaf().NotAfter.UTC(), "dir", o.Dir)
	return id, nil
}

// unreachable: the front-end did not answer at all (not up yet), as
// opposed to answering no.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// pinnedTLS trusts the server only as the token says: no system roots, no
// certificate but the one the pinned CA signed for host, and not a joined
// host's (a node's certificate is valid for serving too, and must not let
// a node pose as the front-end to a host that is joining).
func pinnedTLS(pin, host string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verified below, against the pinned CA instead of system roots,
		// during the handshake and so before a byte of the request.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates[1:] {
				if c.IsCA && pki.VerifyCAPin(pin, c) == nil {
					ca = c
					break
				}
			}
			if ca == nil {
				return ErrPinMismatch
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return fmt.Errorf("the server's certificate is not the front-end's for %s: %w", host, err)
			}
			if !pki.IsInternal(leaf.Subject.Organization) || pki.CheckJoinedRole(leaf) != nil {
				return fmt.Errorf("the server at %s is not the cloud's front-end (its certificate is %s's)", host, leaf.Subject.CommonName)
			}
			return nil
		},
	}
}

func certRequest(key crypto.Signer, cn string) (string, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return "", fmt.Errorf("join: certificate request: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// HostAddresses are the addresses of this host's interfaces, but loopback
// and link-local ones and those of the cloud's own bridges and tunnels
// (named euca-*: instances' networks, not the host's): the addresses other
// hosts may reach it at.
func HostAddresses() []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	out := []netip.Addr{}
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, "euca") {
			continue
		}
		ifAddrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ia := range ifAddrs {
			p, err := netip.ParsePrefix(ia.String())
			if err != nil {
				continue
			}
			a := p.Addr().Unmap()
			if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
				continue
			}
			out = append(out, a)
		}
	}
	return out
}

// Identity is a joined host's certificate, key and CA, and the front-end it
// renews them at. The certificate may change while it runs (Renew); the
// TLS configurations it makes always present the current one.
type Identity struct {
	Dir    string
	Server string // the front-end's HOST:PORT
	CA     *x509.Certificate

	// RenewBefore is how long before expiry KeepRenewed renews; 0 is a
	// third of the certificate's lifetime.
	RenewBefore time.Duration

	mu   sync.RWMutex
	cert *tls.Certificate
}

func newIdentity(dir, server string, key crypto.Signer, certPEM, caPEM []byte) (*Identity, error) {
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, errors.New("the CA certificate is not a CA's")
	}
	id := &Identity{Dir: dir, Server: server, CA: ca}
	cert, err := id.check(key, certPEM)
	if err != nil {
		return nil, err
	}
	id.cert = cert
	return id, nil
}

// check parses a certificate of this identity for key: it must be signed
// by the CA, for key, and one of the cloud's joined hosts'.
func (id *Identity) check(key crypto.Signer, certPEM []byte) (*tls.Certificate, error) {
	leaf, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(id.CA)
	// Checked as of its start, so that an expired certificate is told
	// apart (Load) from one that is not the CA's.
	at := leaf.NotBefore
	if id.CA.NotBefore.After(at) {
		at = id.CA.NotBefore
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("the certificate is not for this host's key")
	}
	if !pki.IsJoined(leaf) || pki.RoleOf(leaf) == "" {
		return nil, fmt.Errorf("the certificate (%s) is not a joined host's", leaf.Subject.CommonName)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// writeNew writes a new identity: into a temporary directory beside Dir,
// renamed to Dir, so that a crash leaves either no identity or all of it.
func (id *Identity) writeNew(key *ecdsa.PrivateKey) error {
	parent := filepath.Dir(id.Dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(id.Dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone after the rename; left over only on failure
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600},
		{CertFile, pki.EncodeCertPEM(id.Leaf().Raw), 0o644},
		{CAFile, pki.EncodeCertPEM(id.CA.Raw), 0o644},
		{ServerFile, []byte(id.Server + "\n"), 0o644},
	} {
		if err := pki.WriteFileAtomic(filepath.Join(tmp, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Rename(tmp, id.Dir); err != nil {
		return fmt.Errorf("%w (does %s exist already?)", err, id.Dir)
	}
	d, err := os.Open(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load reads the identity a previous Join wrote to dir; ErrNotJoined (with
// fs.ErrNotExist) when there is none.
func Load(dir string) (*Identity, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (no %s in %s): %w", ErrNotJoined, name, dir, err)
		}
		return b, err
	}
	keyPEM, err := read(KeyFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(CertFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := read(CAFile)
	if err != nil {
		return nil, err
	}
	server, err := read(ServerFile)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil || b.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no EC PRIVATE KEY", filepath.Join(dir, KeyFile))
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, KeyFile), err)
	}
	id, err := newIdentity(dir, strings.TrimSpace(string(server)), key, certPEM, caPEM)
	if err != nil {
		return nil, fmt.Errorf("identity in %s: %w", dir, err)
	}
	if exp := id.Leaf().NotAfter; time.Now().After(exp) {
		return nil, fmt.Errorf("%w: the certificate in %s expired at %s (the host was away longer than it could renew): remove %s and join again with a new token",
			ErrExpired, dir, exp.UTC().Format(time.RFC3339), dir)
	}
	return id, nil
}

// Leaf is the current certificate.
func (id *Identity) Leaf() *x509.Certificate {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.cert.Leaf
}

func (id *Identity) current() *tls.Certificate {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.cert
}

// Role is the role the identity was issued to.
func (id *Identity) Role() string { return pki.RoleOf(id.Leaf()) }

func (id *Identity) caOnly() *pki.CA { return &pki.CA{Cert: id.CA} }

// ServerTLSConfig is the configuration of this host's internal listener
// (the NC's NC_PORT): mutual TLS, clients must be the cloud's roles, and the
// certificate presented is always the current one.
func (id *Identity) ServerTLSConfig() *tls.Config {
	c := id.caOnly().ServerTLSConfig(tls.Certificate{})
	c.Certificates = nil
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return id.current(), nil }
	return c
}

// ClientTLSConfig is the configuration this host calls other roles with
// (a cluster controller its nodes): it trusts only the CA, presents the
// current certificate, and takes a joined host's certificate only when it
// is one of roles' (pki.ExpectJoined: a cluster's peers are "nc").
func (id *Identity) ClientTLSConfig(roles ...string) *tls.Config {
	c := id.caOnly().ClientTLSConfig(tls.Certificate{})
	c.Certificates = nil
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return id.current(), nil }
	return pki.ExpectJoined(c, roles...)
}

// FrontEndTLSConfig is the configuration this host calls the front-end
// with (CLOUD_PORT: images, renewals, the cloud's accounts): as
// ClientTLSConfig, but the server must be one of the front-end's own
// roles, never a joined host, whatever names its certificate carries: the
// check Join makes of the front-end, kept for every call after it.
func (id *Identity) FrontEndTLSConfig() *tls.Config { return id.ClientTLSConfig() }

// Renew asks the front-end for a fresh certificate of the same identity
// (same key, so the key file never changes), writes it and swaps it in:
// connections made from then on present it.
func (id *Identity) Renew(ctx context.Context, log *slog.Logger) error {
	cur := id.current()
	key, ok := cur.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("renew: the key cannot sign")
	}
	csr, err := certRequest(key, cur.Leaf.Subject.CommonName)
	if err != nil {
		return err
	}
	c := rpc.NewClientConfig(id.Server, id.FrontEndTLSConfig(), log)
	c.HTTP.Timeout = 30 * time.Second
	defer c.HTTP.CloseIdleConnections()
	var resp certResponse
	if err := Errors.Decode(c.Call(ctx, http.MethodPost, PathRenew, renewRequest{CSR: csr}, &resp)); err != nil {
		return fmt.Errorf("renew at %s: %w", id.Server, err)
	}
	next, err := id.check(key, []byte(resp.Certificate))
	if err != nil {
		return fmt.Errorf("renew at %s: the answer: %w", id.Server, err)
	}
	if next.Leaf.Subject.CommonName != cur.Leaf.Subject.CommonName {
		return fmt.Errorf("renew at %s: the answer is for %s, not %s", id.Server, next.Leaf.Subject.CommonName, cur.Leaf.Subject.CommonName)
	}
	// One file, renamed into place: the key stays, so the pair on disk
	// always matches.
	if err := pki.WriteFileAtomic(filepath.Join(id.Dir, CertFile), pki.EncodeCertPEM(next.Leaf.Raw), 0o644); err != nil {
		return fmt.Errorf("renew: write %s: %w", CertFile, err)
	}
	id.mu.Lock()
	id.cert = next
	id.mu.Unlock()
	return nil
}

// renewAt is when the current certificate should be renewed.
func (id *Identity) renewAt() time.Time {
	leaf := id.Leaf()
	before := id.RenewBefore
	if before <= 0 {
		before = leaf.NotAfter.Sub(leaf.NotBefore) / 3
	}
	return leaf.NotAfter.Add(-before)
}

// KeepRenewed renews the certificate whenever it is due, until ctx ends. A
// failed renewal is retried with a growing wait (the front-end may be down
// for a while); a revoked certificate is not retried, since no retry can
// succeed, and is returned.
func (id *Identity) KeepRenewed(ctx context.Context, log *slog.Logger) error {
	retry := time.Duration(0)
	for {
		wait := time.Until(id.renewAt())
		if retry > 0 {
			wait = retry
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		err := id.Renew(ctx, log)
		switch {
		case err == nil:
			retry = 0
			log.Info("certificate renewed", "as", id.Leaf().Subject.CommonName, "serial", pki.SerialHex(id.Leaf()), "not_after", id.Leaf().NotAfter.UTC())
		case errors.Is(err, ErrRevoked):
			log.Error("certificate revoked: this host can no longer reach the cloud; join again with a new token", "err", err)
			return err
		case time.Now().After(id.Leaf().NotAfter):
			// No renewal can succeed: the front-end no longer takes it.
			err = fmt.Errorf("%w at %s, not renewed in time (%w): join again with a new token", ErrExpired, id.Leaf().NotAfter.UTC().Format(time.RFC3339), err)
			log.Error("certificate expired: this host can no longer reach the cloud", "err", err)
			return err
		case ctx.Err() != nil:
			return nil
		default:
			retry = min(max(2*retry, 10*time.Second), 30*time.Minute)
			if left := time.Until(id.Leaf().NotAfter); left < retry {
				retry = max(left/2, time.Second)
			}
			log.Warn("certificate renewal failed; retrying", "in", retry, "not_after", id.Leaf().NotAfter.UTC(), "err", err)
		}
	}
}
