package bundle

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseCertificatePEM returns the first certificate of a PEM document
// (EC2_CERT, EUCALYPTUS_CERT, cloud-cert.pem).
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
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

// ParsePrivateKeyPEM returns the first RSA private key of a PEM document,
// PKCS#1 (as Eucalyptus and euca write EC2_PRIVATE_KEY) or PKCS#8 (as
// openssl 3 writes by default).
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
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
