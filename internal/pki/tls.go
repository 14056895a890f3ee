package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ServerTLSConfig is the configuration of a role's internal listener: it
// presents cert, requires a client certificate chaining to the CA, and accepts
// only the cloud's own roles (see [InternalOrg]), not its users.
func (ca *CA) ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        ca.Pool(),
		VerifyConnection: requireInternalPeer,
	}
}

// ClientTLSConfig is the configuration a role uses to call another role: it
// trusts only the cloud's CA (never the system roots) and presents cert.
// The caller sets ServerName when it dials by address.
func (ca *CA) ClientTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		RootCAs:          ca.Pool(),
		VerifyConnection: requireInternalPeer,
	}
}

// requireInternalPeer runs after the chain has been verified against the CA;
// it narrows "signed by our CA" to "one of our roles".
func requireInternalPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pki: peer sent no certificate")
	}
	if !IsInternal(cs.PeerCertificates[0].Subject.Organization) {
		return errors.New("pki: peer certificate is not one of the cloud's roles")
	}
	return nil
}

// IsInternal reports whether a certificate's Subject organisations mark it as
// issued to one of the cloud's roles.
func IsInternal(organization []string) bool {
	return slices.Contains(organization, InternalOrg)
}

// ErrJoinedPeer: the peer presented a joined host's certificate where
// another role was expected (a node's certificate is valid for serving
// too, and must not let that node pass for the front-end or for a host of
// another role).
var ErrJoinedPeer = errors.New("pki: the peer is a joined host of a role that may not answer here")

// CheckJoinedRole refuses cert when it is a joined host's whose role is not
// one of roles; with no roles, every joined host's certificate is refused:
// the peer must be one of the front-end's own roles (whose certificates
// only the CA's process holds). Other certificates pass.
func CheckJoinedRole(cert *x509.Certificate, roles ...string) error {
	if !IsJoined(cert) || slices.Contains(roles, RoleOf(cert)) {
		return nil
	}
	if len(roles) == 0 {
		return fmt.Errorf("%w: %s is a joined host's certificate, not the front-end's", ErrJoinedPeer, cert.Subject.CommonName)
	}
	return fmt.Errorf("%w: %s is not a joined %s", ErrJoinedPeer, cert.Subject.CommonName, strings.Join(roles, " or "))
}

// ExpectJoined narrows tc, a client configuration, to servers that are the
// front-end's own roles or joined hosts of one of roles (CheckJoinedRole):
// a cluster controller reaches only nodes ("nc"), a host reaches the
// front-end with none. It changes and returns tc.
func ExpectJoined(tc *tls.Config, roles ...string) *tls.Config {
	return AlsoCheckPeer(tc, func(cert *x509.Certificate) error { return CheckJoinedRole(cert, roles...) })
}

// AlsoCheckPeer makes tc, a client's or a server's configuration, run check
// on the peer's leaf certificate after the checks tc already makes (its
// VerifyConnection, if any), so that narrowing who may connect adds to the
// configuration rather than replacing it. A peer without a certificate is
// refused. It changes and returns tc.
func AlsoCheckPeer(tc *tls.Config, check func(*x509.Certificate) error) *tls.Config {
	verify := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pki: peer sent no certificate")
		}
		return check(cs.PeerCertificates[0])
	}
	return tc
}
