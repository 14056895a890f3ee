package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A join token is what the CLC prints for an operator to paste on a new node:
//
//	EUCA10<sha256 of the CA public key, 64 hex>::<secret, 64 hex>
//
// The hash lets the node trust the CA on first contact without copying any
// file (it pins the key, not the certificate file, so re-issuing the CA
// certificate over the same key keeps the pin). The secret proves to the CLC
// that the node was invited; the CLC stores only its hash and an expiry, so a
// leaked database does not let anyone join. Unlike k3s's early tokens, the
// secret is random and short-lived, never a long-term key or password.
const (
	tokenPrefix    = "EUCA10"
	tokenSeparator = "::"
	hashPrefix     = "sha256:"
	secretLen      = 32
)

// PublicKeyHash is "sha256:" and the hex SHA-256 of the CA certificate's
// SubjectPublicKeyInfo: the pin a join token carries.
func (ca *CA) PublicKeyHash() string {
	return publicKeyHash(ca.Cert)
}

func publicKeyHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewJoinToken makes a join token valid for ttl. The caller shows token once,
// stores secretHash and expires, and checks a joining node with
// [VerifyJoinSecret] and its own clock.
func NewJoinToken(ca *CA, ttl time.Duration) (token string, secretHash []byte, expires time.Time, err error) {
	if ca == nil || ca.Cert == nil {
		return "", nil, time.Time{}, errors.New("pki: join token needs a CA")
	}
	if ttl <= 0 {
		return "", nil, time.Time{}, fmt.Errorf("pki: join token lifetime must be positive, got %v", ttl)
	}
	secret := make([]byte, secretLen)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("pki: join secret: %w", err)
	}
	token = tokenPrefix + strings.TrimPrefix(ca.PublicKeyHash(), hashPrefix) + tokenSeparator + hex.EncodeToString(secret)
	return token, hashSecret(secret), time.Now().Add(ttl), nil
}

func hashSecret(secret []byte) []byte {
	sum := sha256.Sum256(secret)
	return sum[:]
}

// ParseJoinToken splits a token into the CA pin (in the "sha256:<hex>" form of
// [CA.PublicKeyHash]) and the secret. Surrounding white space is ignored, since
// tokens arrive pasted from terminals and files. A token without a pin is
// refused: an unpinned join would trust whoever answers first.
func ParseJoinToken(s string) (caHash string, secret []byte, err error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", nil, fmt.Errorf("pki: join token does not start with %s", tokenPrefix)
	}
	hashHex, secretHex, ok := strings.Cut(rest, tokenSeparator)
	if !ok {
		return "", nil, errors.New("pki: join token has no " + tokenSeparator + " separator")
	}
	if len(hashHex) != 2*sha256.Size {
		return "", nil, errors.New("pki: join token has no CA hash or a malformed one; refusing an unpinned join")
	}
	if _, err := hex.DecodeString(hashHex); err != nil {
		return "", nil, errors.New("pki: join token CA hash is not hex")
	}
	if len(secretHex) != 2*secretLen {
		return "", nil, errors.New("pki: join token secret has the wrong length")
	}
	secret, err = hex.DecodeString(secretHex)
	if err != nil {
		return "", nil, errors.New("pki: join token secret is not hex")
	}
	return hashPrefix + strings.ToLower(hashHex), secret, nil
}

// VerifyCAPin checks that cert, the CA a joining node was shown, has the public
// key the token pinned. caHash may be "sha256:<hex>" or bare hex. The compare
// is constant-time so the answer leaks nothing about how much of a guess matched.
func VerifyCAPin(caHash string, cert *x509.Certificate) error {
	if cert == nil {
		return errors.New("pki: no CA certificate to check against the pin")
	}
	want, err := decodePin(caHash)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if subtle.ConstantTimeCompare(want, sum[:]) != 1 {
		return errors.New("pki: CA public key does not match the join token's pin; refusing to trust it")
	}
	return nil
}

func decodePin(caHash string) ([]byte, error) {
	h := strings.TrimPrefix(strings.TrimSpace(caHash), hashPrefix)
	if len(h) != 2*sha256.Size {
		return nil, errors.New("pki: CA pin missing or malformed; refusing an unpinned join")
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, errors.New("pki: CA pin is not hex")
	}
	return b, nil
}

// VerifyJoinSecret reports whether secret, from a joining node's token,
// matches secretHash, as stored by the CLC from [NewJoinToken]. Expiry is the
// caller's to check: it holds the stored time and the clock.
func VerifyJoinSecret(secret, secretHash []byte) bool {
	if len(secret) == 0 || len(secretHash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(hashSecret(secret), secretHash) == 1
}
