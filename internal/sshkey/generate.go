package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
)

// GeneratedRSABits is the size of the RSA keys CreateKeyPair makes, as EC2.
const GeneratedRSABits = 2048

// Generated is a key pair the cloud made. The private key is handed to the
// caller once and never stored.
type Generated struct {
	Public      PublicKey
	PrivatePEM  string // RSA: PKCS#1 "RSA PRIVATE KEY"; Ed25519: "OPENSSH PRIVATE KEY"
	Fingerprint string // as EC2 shows it for a key it created
}

// Generate makes a new key pair of the given kind. comment goes into the
// Ed25519 private key file (OpenSSH keeps one there); RSA PEM has none.
func Generate(kind Kind, comment string) (Generated, error) {
	switch kind {
	case RSA:
		priv, err := rsa.GenerateKey(rand.Reader, GeneratedRSABits)
		if err != nil {
			return Generated{}, fmt.Errorf("sshkey: generate rsa: %w", err)
		}
		fp, err := createdRSAFingerprint(priv)
		if err != nil {
			return Generated{}, err
		}
		// EC2 hands out RSA keys in PKCS#1, the form every ssh and PuTTYgen reads.
		doc := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
		pub := PublicKey{Kind: RSA, RSA: &priv.PublicKey}
		return Generated{Public: pub, PrivatePEM: string(doc), Fingerprint: fp}, nil
	case Ed25519:
		pubKey, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return Generated{}, fmt.Errorf("sshkey: generate ed25519: %w", err)
		}
		pub := PublicKey{Kind: Ed25519, Ed25519: pubKey}
		doc, err := marshalOpenSSHEd25519(rand.Reader, pub, priv, comment)
		if err != nil {
			return Generated{}, err
		}
		return Generated{Public: pub, PrivatePEM: string(doc), Fingerprint: ed25519Fingerprint(pub)}, nil
	}
	return Generated{}, fmt.Errorf("sshkey: unknown key type %q", kind)
}

// marshalOpenSSHEd25519 writes an unencrypted private key in OpenSSH's own
// format (PROTOCOL.key), the only one OpenSSH reads Ed25519 keys from.
func marshalOpenSSHEd25519(random io.Reader, pub PublicKey, priv ed25519.PrivateKey, comment string) ([]byte, error) {
	var check [4]byte
	if _, err := io.ReadFull(random, check[:]); err != nil {
		return nil, fmt.Errorf("sshkey: random: %w", err)
	}
	// The private section: the same check number twice (it proves a
	// passphrase right when the section is encrypted), the key, the comment,
	// then padding 1, 2, 3... to the cipher's block size (8 for "none").
	var sec []byte
	sec = append(sec, check[:]...)
	sec = append(sec, check[:]...)
	sec = appendString(sec, []byte(sshEd25519))
	sec = appendString(sec, pub.Ed25519)
	sec = appendString(sec, priv) // seed || public, 64 bytes
	sec = appendString(sec, []byte(comment))
	for i := byte(1); len(sec)%8 != 0; i++ {
		sec = append(sec, i)
	}
	out := []byte("openssh-key-v1\x00")
	out = appendString(out, []byte("none")) // cipher
	out = appendString(out, []byte("none")) // kdf
	out = appendString(out, nil)            // kdf options
	out = binary.BigEndian.AppendUint32(out, 1)
	out = appendString(out, pub.Blob())
	out = appendString(out, sec)
	return pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: out}), nil
}
