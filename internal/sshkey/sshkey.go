// Package sshkey reads the SSH public keys users import into the cloud, makes
// the key pairs the cloud creates for them, and computes the fingerprints EC2
// shows for each.
//
// Only the two key types EC2 accepts are supported: RSA and Ed25519. The
// SSH wire format is small enough to read and write here with the standard
// library alone, so the package adds no dependency.
//
// Fingerprints follow EC2 exactly, which is not what ssh-keygen prints:
//
//	created RSA    SHA-1 of the DER PKCS#8 private key, colon-separated hex
//	imported RSA   MD5 of the DER SubjectPublicKeyInfo, colon-separated hex
//	Ed25519        SHA-256 of the SSH public key blob, base64 with padding
package sshkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Kind is a key type as EC2's KeyType names it.
type Kind string

const (
	RSA     Kind = "rsa"
	Ed25519 Kind = "ed25519"
)

// SSH names of the supported key types.
const (
	sshRSA     = "ssh-rsa"
	sshEd25519 = "ssh-ed25519"
)

// RSA sizes accepted on import. EC2 documents 1024, 2048 and 4096; OpenSSH's
// default has been 3072 since 8.0, so any size in the range is taken.
const (
	MinRSABits = 1024
	MaxRSABits = 16384
)

// ErrFormat is wrapped by every error Parse returns: the material is not a
// public key this package accepts.
var ErrFormat = errors.New("sshkey: not a valid public key")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// PublicKey is an RSA or Ed25519 public key.
type PublicKey struct {
	Kind    Kind
	RSA     *rsa.PublicKey    // when Kind is RSA
	Ed25519 ed25519.PublicKey // when Kind is Ed25519
}

// SSHType is the key's name in the SSH protocol ("ssh-rsa", "ssh-ed25519").
func (k PublicKey) SSHType() string {
	if k.Kind == RSA {
		return sshRSA
	}
	return sshEd25519
}

// Bits is the key's size.
func (k PublicKey) Bits() int {
	if k.Kind == RSA {
		return k.RSA.N.BitLen()
	}
	return 256
}

// Blob is the key in the SSH wire format (RFC 4253 section 6.6), the part
// an authorized_keys line carries in base64.
func (k PublicKey) Blob() []byte {
	var b []byte
	b = appendString(b, []byte(k.SSHType()))
	if k.Kind == RSA {
		b = appendMPInt(b, big.NewInt(int64(k.RSA.E)))
		b = appendMPInt(b, k.RSA.N)
	} else {
		b = appendString(b, k.Ed25519)
	}
	return b
}

// AuthorizedKey is the key as one authorized_keys line, without a newline.
// EC2 puts the key pair's name in the comment (that is what instances read
// from the metadata service); a comment with line breaks is dropped.
func (k PublicKey) AuthorizedKey(comment string) string {
	line := k.SSHType() + " " + base64.StdEncoding.EncodeToString(k.Blob())
	if comment = strings.TrimSpace(comment); comment != "" && !strings.ContainsAny(comment, "\r\n") {
		line += " " + comment
	}
	return line
}

// Equal reports whether two keys are the same key.
func (k PublicKey) Equal(o PublicKey) bool {
	return k.Kind == o.Kind && bytes.Equal(k.Blob(), o.Blob())
}

// ImportFingerprint is the fingerprint EC2 shows for an imported key: for
// RSA the MD5 of the DER SubjectPublicKeyInfo (what `openssl pkey -pubin
// -outform DER | openssl md5 -c` prints), for Ed25519 the SHA-256 of the
// blob in padded base64.
func (k PublicKey) ImportFingerprint() string {
	if k.Kind == Ed25519 {
		return ed25519Fingerprint(k)
	}
	der, err := x509.MarshalPKIXPublicKey(k.RSA)
	if err != nil { // an *rsa.PublicKey always marshals
		panic(fmt.Sprintf("sshkey: marshal rsa public key: %v", err))
	}
	sum := md5.Sum(der)
	return colonHex(sum[:])
}

// SHA256Fingerprint is the fingerprint ssh-keygen prints by default
// ("SHA256:" + unpadded base64), for logs and humans.
func (k PublicKey) SHA256Fingerprint() string {
	sum := sha256.Sum256(k.Blob())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

func ed25519Fingerprint(k PublicKey) string {
	sum := sha256.Sum256(k.Blob())
	// EC2 pads its base64 with '='; ssh-keygen does not.
	return base64.StdEncoding.EncodeToString(sum[:])
}

// createdRSAFingerprint is EC2's fingerprint of an RSA key pair it created:
// the SHA-1 of the private key in DER PKCS#8.
func createdRSAFingerprint(priv *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("sshkey: marshal private key: %w", err)
	}
	sum := sha1.Sum(der)
	return colonHex(sum[:]), nil
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// appendString appends an SSH string: a uint32 length and the bytes.
func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendMPInt appends a non-negative SSH mpint: big-endian two's complement,
// with a zero byte in front when the top bit would read as a sign.
func appendMPInt(b []byte, n *big.Int) []byte {
	v := n.Bytes()
	if len(v) > 0 && v[0]&0x80 != 0 {
		v = append([]byte{0}, v...)
	}
	return appendString(b, v)
}

// reader takes SSH wire-format fields off a byte slice.
type reader struct{ b []byte }

func (r *reader) string() ([]byte, bool) {
	if len(r.b) < 4 {
		return nil, false
	}
	n := binary.BigEndian.Uint32(r.b)
	if uint64(n) > uint64(len(r.b)-4) {
		return nil, false
	}
	s := r.b[4 : 4+n]
	r.b = r.b[4+n:]
	return s, true
}

func (r *reader) mpint() (*big.Int, bool) {
	s, ok := r.string()
	if !ok || (len(s) > 0 && s[0]&0x80 != 0) { // negative: never a key
		return nil, false
	}
	return new(big.Int).SetBytes(s), true
}
