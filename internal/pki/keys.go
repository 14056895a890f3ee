package pki

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"math/big"
)

// NewAccessKey mints an access key pair shaped like AWS's, because clients
// (boto, the AWS CLI, s3cmd) and users' own scripts validate that shape:
// the id is "AKIA" and 16 characters of upper-case base32 (80 random bits),
// the secret 40 characters of standard base64 (240 random bits).
func NewAccessKey() (accessKeyID, secretKey string, err error) {
	id := make([]byte, 10) // 80 bits = exactly 16 base32 characters, no padding
	if _, err := rand.Read(id); err != nil {
		return "", "", fmt.Errorf("pki: access key id: %w", err)
	}
	sec := make([]byte, 30) // 240 bits = exactly 40 base64 characters, no padding
	if _, err := rand.Read(sec); err != nil {
		return "", "", fmt.Errorf("pki: secret key: %w", err)
	}
	return "AKIA" + base32.StdEncoding.EncodeToString(id), base64.StdEncoding.EncodeToString(sec), nil
}

// NewAccountID returns a random 12-digit account id without a leading zero, so
// it survives tools that parse it as a number and print it back.
func NewAccountID() (string, error) {
	const lo = 100_000_000_000
	n, err := rand.Int(rand.Reader, big.NewInt(900_000_000_000))
	if err != nil {
		return "", fmt.Errorf("pki: account id: %w", err)
	}
	return fmt.Sprintf("%012d", n.Int64()+lo), nil
}
