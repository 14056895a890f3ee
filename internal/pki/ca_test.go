package pki

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if c.Subject.CommonName != "euca cloud" || !c.IsCA {
		t.Errorf("CA subject %q IsCA %v", c.Subject.CommonName, c.IsCA)
	}
	wantKU := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if c.KeyUsage != wantKU {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, wantKU)
	}
	if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("validity %.2f years, want 10", years)
	}
	if c.SerialNumber.BitLen() < 100 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial has %d bits, want a random 128-bit one", c.SerialNumber.BitLen())
	}
	if ca.Key.N.BitLen() != 2048 {
		t.Errorf("key has %d bits", ca.Key.N.BitLen())
	}

	for name, want := range map[string]os.FileMode{CertFile: 0o644, KeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "RSA PRIVATE KEY" {
		t.Errorf("key file is not a PKCS#1 RSA PRIVATE KEY PEM")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("CA directory holds %d entries, want 2 (temporary files left behind?)", len(ents))
	}

	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Key.Equal(ca.Key) || !bytes.Equal(again.Cert.Raw, ca.Cert.Raw) || !bytes.Equal(again.CertPEM, ca.CertPEM) {
		t.Error("reloaded CA differs from the one created")
	}
	if again.PublicKeyHash() != ca.PublicKeyHash() {
		t.Error("public key hash changed across reload")
	}
}

func TestLoadOrCreateCARefusesHalf(t *testing.T) {
	for _, keep := range []string{CertFile, KeyFile} {
		t.Run(keep, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateCA(dir); err != nil {
				t.Fatal(err)
			}
			gone := CertFile
			if keep == CertFile {
				gone = KeyFile
			}
			kept, _ := os.ReadFile(filepath.Join(dir, keep))
			os.Remove(filepath.Join(dir, gone))
			_, err := LoadOrCreateCA(dir)
			if err == nil || !strings.Contains(err.Error(), gone) {
				t.Fatalf("err = %v, want a refusal naming %s", err, gone)
			}
			now, _ := os.ReadFile(filepath.Join(dir, keep))
			if !bytes.Equal(now, kept) {
				t.Error("the remaining file was overwritten")
			}
			if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
				t.Error("the missing file was re-created")
			}
		})
	}
}

func TestLoadOrCreateCARefusesMismatch(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := LoadOrCreateCA(a); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(b); err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(filepath.Join(b, KeyFile))
	if err := os.WriteFile(filepath.Join(a, KeyFile), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(a); err == nil || !strings.Contains(err.Error(), "do not belong together") {
		t.Fatalf("err = %v, want key/certificate mismatch", err)
	}
}

func testCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssueUser(t *testing.T) {
	ca := testCA(t)
	certPEM, keyPEM, err := ca.IssueUser("123456789012", "alice")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Fatalf("user certificate does not verify against the CA pool: %v", err)
	}
	if cert.Subject.CommonName != "alice" || len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != "123456789012" {
		t.Errorf("subject = %v", cert.Subject)
	}
	if IsInternal(cert.Subject.Organization) {
		t.Error("user certificate is marked internal")
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil || b.Type != "RSA PRIVATE KEY" {
		t.Fatal("user key is not PKCS#1 PEM")
	}
	key, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(cert.PublicKey.(*rsa.PublicKey)) || key.N.BitLen() != 2048 {
		t.Error("user key does not match its certificate, or is not RSA 2048")
	}
	if _, _, err := ca.IssueUser("", "alice"); err == nil {
		t.Error("user certificate without an account id was issued")
	}
}

func TestIssueServerNames(t *testing.T) {
	ca := testCA(t)
	c, err := ca.IssueServer([]string{"clc.example"}, []net.IP{net.ParseIP("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"clc.example", "10.0.0.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := ca.IssueServer(nil, nil); err == nil {
		t.Error("server certificate with no names was issued")
	}
}
