package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// JoinedOU is the Subject organisational unit of certificates issued to
// hosts that joined with a token (package join). Such a certificate names
// its host's addresses, and a peer holding one is believed only when it
// calls from one of them: a certificate copied to another host is refused
// there ([CheckPeerAddress]).
const JoinedOU = "joined host"

// HostRequest is what a joined host's certificate says: the role it runs,
// its host name and the names and addresses it is reached at, for the key
// the host made itself (its private key never leaves it).
type HostRequest struct {
	Role, Host string
	DNSNames   []string
	IPs        []net.IP
	PublicKey  crypto.PublicKey
	Validity   time.Duration
}

// IssueHost issues a joined host's certificate: Subject CN "role:host" in
// [InternalOrg] and [JoinedOU], valid for both ends of mutual TLS (a node
// serves the node API and calls Walrus), naming the host's DNS names and
// addresses.
func (ca *CA) IssueHost(req HostRequest) (*x509.Certificate, error) {
	if req.Role == "" || req.Host == "" || strings.Contains(req.Role, ":") {
		return nil, errors.New("pki: host certificate needs a role and a host name")
	}
	if len(req.IPs) == 0 {
		return nil, errors.New("pki: host certificate needs at least one address")
	}
	if err := checkHostKey(req.PublicKey); err != nil {
		return nil, err
	}
	if req.Validity <= 0 {
		req.Validity = internalValidity
	}
	return ca.sign(&x509.Certificate{
		Subject: pkix.Name{
			CommonName:         req.Role + ":" + req.Host,
			Organization:       []string{InternalOrg},
			OrganizationalUnit: []string{JoinedOU},
		},
		DNSNames:    slices.Clone(req.DNSNames),
		IPAddresses: slices.Clone(req.IPs),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, req.PublicKey, req.Validity)
}

// checkHostKey accepts the keys a host may bring: ECDSA on P-256 or P-384,
// Ed25519, or RSA of at least 2048 bits.
func checkHostKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("pki: ECDSA key on curve %s; use P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if k.N.BitLen() >= rsaBits {
			return nil
		}
		return fmt.Errorf("pki: RSA key of %d bits; at least %d are needed", k.N.BitLen(), rsaBits)
	case nil:
		return errors.New("pki: no public key")
	}
	return fmt.Errorf("pki: unsupported key type %T", pub)
}

// RoleOf is the role an internal certificate was issued to: its Subject CN
// is "role:name" ("nc:node1", "cc:cluster1"). "" for a certificate that is
// not one of the cloud's roles'.
func RoleOf(cert *x509.Certificate) string {
	if cert == nil || !IsInternal(cert.Subject.Organization) {
		return ""
	}
	role, _, ok := strings.Cut(cert.Subject.CommonName, ":")
	if !ok {
		return ""
	}
	return role
}

// IsJoined reports whether cert was issued to a host through a join token.
func IsJoined(cert *x509.Certificate) bool {
	return cert != nil && slices.Contains(cert.Subject.OrganizationalUnit, JoinedOU)
}

// ErrWrongHost: a joined host's certificate presented from an address it
// does not name, that is, by another host.
var ErrWrongHost = errors.New("pki: certificate presented by another host")

// CheckPeerAddress refuses a joined host's certificate presented from an
// address it does not name: a certificate stolen from one node does not let
// another host act as that node. Certificates the CA issued to roles in its
// own process carry no address and are not checked.
func CheckPeerAddress(cert *x509.Certificate, from netip.Addr) error {
	if !IsJoined(cert) {
		return nil
	}
	from = from.Unmap()
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == from {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is issued to %s, but was presented from %s", ErrWrongHost, cert.Subject.CommonName, ipList(cert.IPAddresses), from)
}

func ipList(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

// SerialHex is how certificates' serials are written in the store and logs.
func SerialHex(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// WriteFileAtomic writes data to path so that after a crash path holds
// either its old content or all of data, never a part (temporary file in
// the same directory, synced, renamed, directory synced). perm is set
// whatever the umask.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm)
}

// EncodeCertPEM is a DER certificate as a PEM CERTIFICATE block.
func EncodeCertPEM(der []byte) []byte { return encodeCert(der) }
