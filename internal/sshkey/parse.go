package sshkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
)

// MaxMaterial bounds the material Parse looks at; the largest RSA key in
// any of the accepted forms is far smaller.
const MaxMaterial = 16 << 10

// unsupported are SSH key types that exist but EC2 does not import, so the
// error can say so instead of "not a key".
var unsupported = map[string]bool{
	"ssh-dss": true, "ecdsa-sha2-nistp256": true, "ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true,
	"sk-ecdsa-sha2-nistp256@openssh.com": true, "sk-ssh-ed25519@openssh.com": true,
}

const (
	rfc4716Begin = "---- BEGIN SSH2 PUBLIC KEY ----"
	rfc4716End   = "---- END SSH2 PUBLIC KEY ----"
)

// Parse reads a public key in any form ImportKeyPair accepts:
//
//   - an OpenSSH authorized_keys line: "ssh-rsa AAAA... comment"
//   - RFC 4716: "---- BEGIN SSH2 PUBLIC KEY ----", headers, base64 body
//   - PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1)
//   - the DER of either, raw or in base64
//
// Every failure wraps ErrFormat.
func Parse(material []byte) (PublicKey, error) {
	if len(material) > MaxMaterial {
		return PublicKey{}, formatErr("the key is larger than %d bytes", MaxMaterial)
	}
	text := strings.TrimSpace(strings.TrimPrefix(string(material), "\ufeff"))
	switch {
	case text == "":
		return PublicKey{}, formatErr("the key is empty")
	case strings.HasPrefix(text, rfc4716Begin):
		return parseRFC4716(text)
	case strings.HasPrefix(text, "-----BEGIN "):
		return parsePEM([]byte(text))
	}
	if k, err := parseAuthorizedKey(text); err == nil || !isBase64Only(text) {
		if err != nil && isDER(material) {
			return parseDER(material)
		}
		return k, err
	}
	// A single run of base64: the DER of a public key (or, from tools that
	// drop the type word, the SSH blob alone).
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		return PublicKey{}, formatErr("the key is not in a known format")
	}
	if isDER(der) {
		return parseDER(der)
	}
	return parseBlob(der)
}

// parseAuthorizedKey reads one "type base64 [comment]" line. Key options
// (from="...") are not part of a public key and are refused, as is more than
// one key: an import names exactly one.
func parseAuthorizedKey(text string) (PublicKey, error) {
	if strings.ContainsAny(text, "\r\n") {
		return PublicKey{}, formatErr("the key must be a single line")
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return PublicKey{}, formatErr("the key is not in a known format")
	}
	typ := f[0]
	if unsupported[typ] {
		return PublicKey{}, formatErr("key type %s is not supported; use ssh-rsa or ssh-ed25519", typ)
	}
	if typ != sshRSA && typ != sshEd25519 {
		return PublicKey{}, formatErr("the key is not in a known format")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return PublicKey{}, formatErr("the key's base64 is invalid")
	}
	k, err := parseBlob(blob)
	if err != nil {
		return PublicKey{}, err
	}
	if k.SSHType() != typ {
		return PublicKey{}, formatErr("the key says %s but holds %s", typ, k.SSHType())
	}
	return k, nil
}

// parseRFC4716 reads the SSH2 public key file format: the BEGIN line,
// "Tag: value" headers (a line ending in '\' continues on the next), the
// base64 of the blob, the END line.
func parseRFC4716(text string) (PublicKey, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var body strings.Builder
	inHeaders, continued, ended := true, false, false
	for _, raw := range lines[1:] {
		line := strings.TrimSpace(raw)
		switch {
		case ended:
			if line != "" {
				return PublicKey{}, formatErr("text after %q", rfc4716End)
			}
			continue
		case line == rfc4716End:
			ended = true
			continue
		case continued:
			continued = strings.HasSuffix(line, `\`)
			continue
		case inHeaders && strings.Contains(line, ":"):
			continued = strings.HasSuffix(line, `\`)
			continue
		}
		inHeaders = false
		body.WriteString(line)
	}
	if !ended {
		return PublicKey{}, formatErr("missing %q", rfc4716End)
	}
	blob, err := base64.StdEncoding.DecodeString(body.String())
	if err != nil {
		return PublicKey{}, formatErr("the key's base64 is invalid")
	}
	return parseBlob(blob)
}

func parsePEM(text []byte) (PublicKey, error) {
	block, rest := pem.Decode(text)
	if block == nil {
		return PublicKey{}, formatErr("the PEM block is invalid")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return PublicKey{}, formatErr("text after the PEM block")
	}
	if len(block.Headers) > 0 {
		return PublicKey{}, formatErr("encrypted or annotated PEM is not a public key")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return parsePKIX(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return PublicKey{}, formatErr("the RSA public key is invalid")
		}
		return checkRSA(pub)
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return PublicKey{}, formatErr("this is a private key; import only the public key")
	}
	return PublicKey{}, formatErr("PEM type %q is not a public key", block.Type)
}

func parseDER(der []byte) (PublicKey, error) {
	if k, err := parsePKIX(der); err == nil {
		return k, nil
	}
	if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return checkRSA(pub)
	}
	return PublicKey{}, formatErr("the key is not in a known format")
}

func parsePKIX(der []byte) (PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return PublicKey{}, formatErr("the public key is invalid")
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return checkRSA(p)
	case ed25519.PublicKey:
		return PublicKey{Kind: Ed25519, Ed25519: p}, nil
	}
	return PublicKey{}, formatErr("key type %T is not supported; use RSA or Ed25519", pub)
}

// parseBlob reads the SSH wire format of an ssh-rsa or ssh-ed25519 key.
func parseBlob(blob []byte) (PublicKey, error) {
	r := &reader{b: blob}
	typ, ok := r.string()
	if !ok {
		return PublicKey{}, formatErr("the key blob is truncated")
	}
	var k PublicKey
	switch string(typ) {
	case sshRSA:
		e, ok1 := r.mpint()
		n, ok2 := r.mpint()
		if !ok1 || !ok2 {
			return PublicKey{}, formatErr("the RSA key blob is truncated")
		}
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return PublicKey{}, formatErr("the RSA exponent is too large")
		}
		var err error
		if k, err = checkRSA(&rsa.PublicKey{N: n, E: int(e.Int64())}); err != nil {
			return PublicKey{}, err
		}
	case sshEd25519:
		pub, ok := r.string()
		if !ok || len(pub) != ed25519.PublicKeySize {
			return PublicKey{}, formatErr("the Ed25519 key blob is invalid")
		}
		k = PublicKey{Kind: Ed25519, Ed25519: ed25519.PublicKey(bytes.Clone(pub))}
	default:
		if unsupported[string(typ)] {
			return PublicKey{}, formatErr("key type %s is not supported; use ssh-rsa or ssh-ed25519", typ)
		}
		return PublicKey{}, formatErr("the key is not in a known format")
	}
	if len(r.b) != 0 {
		return PublicKey{}, formatErr("extra bytes after the key")
	}
	return k, nil
}

// checkRSA refuses keys no SSH server would take: sizes outside the range,
// even or tiny exponents.
func checkRSA(p *rsa.PublicKey) (PublicKey, error) {
	if p.N == nil || p.N.Sign() <= 0 {
		return PublicKey{}, formatErr("the RSA modulus is invalid")
	}
	if bits := p.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
		return PublicKey{}, formatErr("RSA keys must have %d to %d bits, not %d", MinRSABits, MaxRSABits, bits)
	}
	if p.E < 3 || p.E%2 == 0 {
		return PublicKey{}, formatErr("the RSA exponent is invalid")
	}
	if p.N.Bit(0) == 0 {
		return PublicKey{}, formatErr("the RSA modulus is even")
	}
	return PublicKey{Kind: RSA, RSA: p}, nil
}

// isBase64Only reports a text made only of base64 characters and spaces.
func isBase64Only(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '+', c == '/', c == '=', c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return false
		}
	}
	return true
}

// isDER reports material that starts like a DER SEQUENCE.
func isDER(b []byte) bool { return len(b) > 2 && b[0] == 0x30 }
