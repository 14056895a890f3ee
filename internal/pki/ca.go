// Package pki is the cloud's certificate authority and the identities it hands out.
//
// The CLC owns one CA. It is RSA, not ECDSA, because image bundles made by
// ec2-bundle-image and euca-bundle-image encrypt their AES key to the cloud's
// certificate, and those tools only speak RSA. The same CA signs:
//
//   - user certificates (RSA, for bundling images with euca2ools), put in the
//     credentials zip by package credentials;
//   - server and client certificates (ECDSA) for mutual TLS between roles.
//
// Because users hold CA-signed client certificates too, a chain to the CA is not
// enough to be trusted as a role: internal certificates also carry the
// organisation [InternalOrg], and the TLS configurations from
// [CA.ServerTLSConfig] and [CA.ClientTLSConfig] refuse a peer without it.
//
// A node joins with a token that pins the hash of the CA's public key (not of
// the certificate file, so re-issuing the CA certificate over the same key keeps
// tokens valid) and carries a short-lived random secret of which the CLC stores
// only the hash. The token never contains or derives from a key.
//
// The package also mints AWS-shaped access keys and account ids, and [Secret],
// a string that redacts itself in logs.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names of the CA inside its directory: the names Eucalyptus used, so an
// operator's scripts and habits keep working.
const (
	CertFile = "cloud-cert.pem"
	KeyFile  = "cloud-pk.pem"
)

// InternalOrg is the Subject organisation of certificates issued to the cloud's
// own roles. User certificates never carry it, so a user's certificate cannot
// be used to talk to an NC or a CC even though it chains to the same CA.
const InternalOrg = "euca internal"

const (
	caCommonName = "euca cloud"
	caValidity   = 10 * 365 * 24 * time.Hour
	// User certificates live in credentials zips that users keep for years,
	// as they did with Eucalyptus; internal ones are re-issued by the roles.
	userValidity     = 5 * 365 * 24 * time.Hour
	internalValidity = 365 * 24 * time.Hour
	// Backdating absorbs clock skew between hosts, so a certificate issued a
	// second ago is not "not yet valid" on a node whose clock runs behind.
	backdate = time.Hour
	rsaBits  = 2048
)

// CA is the cloud's certificate authority. Its methods only read it, so one CA
// may be shared by goroutines.
type CA struct {
	Cert    *x509.Certificate
	Key     *rsa.PrivateKey
	CertPEM []byte
}

// LoadOrCreateCA loads the CA from dir, or creates it there on first use.
//
// Each file is written to a temporary file, synced and renamed, so a crash
// never leaves half a key. If only one of the two files exists the CA is
// refused, never re-created: a new key would silently orphan every certificate
// and token issued so far, which the operator must decide, not us.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CertFile)
	keyPath := filepath.Join(dir, KeyFile)
	haveCert, err := exists(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	haveKey, err := exists(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	switch {
	case haveCert && haveKey:
		return loadCA(certPath, keyPath)
	case haveCert:
		return nil, halfCA(certPath, keyPath)
	case haveKey:
		return nil, halfCA(keyPath, certPath)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create CA directory: %w", err)
	}
	ca, keyPEM, err := newCA()
	if err != nil {
		return nil, err
	}
	// Key first: a crash between the two renames leaves a key without a
	// certificate, which the check above refuses instead of re-keying.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("pki: write CA key: %w", err)
	}
	if err := writeAtomic(certPath, ca.CertPEM, 0o644); err != nil {
		return nil, fmt.Errorf("pki: write CA certificate: %w", err)
	}
	return ca, nil
}

func halfCA(present, missing string) error {
	return fmt.Errorf("pki: %s exists but %s does not; refusing to create a new CA over half of the old one "+
		"(restore %s, or remove %s to start a new CA, which invalidates every certificate and join token issued so far)",
		present, missing, filepath.Base(missing), filepath.Base(present))
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// writeAtomic writes data to path through a temporary file in the same
// directory (so the rename cannot cross filesystems) and syncs the directory,
// so that after a crash path holds either nothing or all of data.
func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Chmod, not the umask-filtered create mode, so the key is 0600 whatever
	// the umask, and the certificate readable by the tools that need it.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func loadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	key, err := ParseRSAKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s and %s do not belong together (the key does not match the certificate)", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw)}, nil
}

// ParseCertPEM returns the first certificate of a PEM document (a CA's,
// EC2_CERT, EUCALYPTUS_CERT, cloud-cert.pem).
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ParseRSAKeyPEM returns the first RSA private key of a PEM document. It
// reads PKCS#1, as we, Eucalyptus and euca2ools write it (EC2_PRIVATE_KEY),
// and PKCS#8, as openssl 3 writes it by default, so an operator may bring a
// key made by hand. Only RSA will do: image bundles are signed with the
// user's key and encrypted to the cloud's.
func ParseRSAKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM RSA PRIVATE KEY block")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("the key is %T; bundles need RSA", k)
			}
			return rk, nil
		}
	}
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeRSAKey(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// serial returns a random positive 128-bit serial number; random serials keep
// two certificates from ever sharing one without a counter to persist.
func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n, nil
}

func newCA() (*CA, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// The CA signs only leaves; no intermediate may hang under it.
		MaxPathLenZero: true,
		// KeyEncipherment because bundle tools encrypt their AES key to it.
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, encodeRSAKey(key), nil
}

// sign issues a certificate from tmpl for pub, filling in serial and validity.
// A leaf never outlives the CA: such a certificate would only fail later and
// more confusingly.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, validity time.Duration) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = sn
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// IssueUser issues a user's X.509 certificate and its key, both PEM, in the
// shapes euca2ools and ec2-bundle-image read: RSA, key as PKCS#1.
func (ca *CA) IssueUser(accountID, userName string) (certPEM, keyPEM []byte, err error) {
	if accountID == "" || userName == "" {
		return nil, nil, errors.New("pki: user certificate needs an account id and a user name")
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate user key: %w", err)
	}
	cert, err := ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: userName, OrganizationalUnit: []string{accountID}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &key.PublicKey, userValidity)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(cert.Raw), encodeRSAKey(key), nil
}

// IssueServer issues an internal HTTPS certificate for the given names and
// addresses. ECDSA here: nothing outside the cloud reads it, and it is cheap.
func (ca *CA) IssueServer(hosts []string, ipAddrs []net.IP) (tls.Certificate, error) {
	if len(hosts) == 0 && len(ipAddrs) == 0 {
		return tls.Certificate{}, errors.New("pki: server certificate needs at least one host name or address")
	}
	var cn string
	if len(hosts) > 0 {
		cn = hosts[0]
	} else {
		cn = ipAddrs[0].String()
	}
	return ca.issueInternal(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{InternalOrg}},
		DNSNames:    slices.Clone(hosts),
		IPAddresses: slices.Clone(ipAddrs),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// IssueClient issues the certificate a role presents when it calls another
// role; cn names the caller (for example "cc:cluster1") for the callee's logs.
func (ca *CA) IssueClient(cn string) (tls.Certificate, error) {
	if cn == "" {
		return tls.Certificate{}, errors.New("pki: client certificate needs a common name")
	}
	return ca.issueInternal(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{InternalOrg}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) issueInternal(tmpl *x509.Certificate) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate key: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	cert, err := ca.sign(tmpl, &key.PublicKey, internalValidity)
	if err != nil {
		return tls.Certificate{}, err
	}
	// Only the leaf is sent: every peer already holds the CA, and sending the
	// root would invite a peer to trust whatever arrives with it.
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// Pool returns a new pool holding only the cloud's CA. A new pool each time, so
// a caller adding to it cannot widen another caller's trust.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}
