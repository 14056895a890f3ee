package pki

import (
	"crypto/tls"
	"errors"
	"slices"
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
