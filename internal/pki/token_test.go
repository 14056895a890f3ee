package pki

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestJoinTokenRoundTrip(t *testing.T) {
	ca := testCA(t)
	tok, secretHash, expires, err := NewJoinToken(ca, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^EUCA10[0-9a-f]{64}::[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("token %q has the wrong shape", tok)
	}
	if !expires.After(time.Now()) {
		t.Errorf("token expires %v, in the past", expires)
	}
	if strings.Contains(tok, string(secretHash)) {
		t.Error("token contains the stored hash")
	}

	hash, secret, err := ParseJoinToken(" " + tok + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if hash != ca.PublicKeyHash() {
		t.Errorf("parsed pin %q, want %q", hash, ca.PublicKeyHash())
	}
	if err := VerifyCAPin(hash, ca.Cert); err != nil {
		t.Errorf("pin does not verify against its own CA: %v", err)
	}
	if err := VerifyCAPin(strings.TrimPrefix(hash, "sha256:"), ca.Cert); err != nil {
		t.Errorf("bare hex pin: %v", err)
	}
	if !VerifyJoinSecret(secret, secretHash) {
		t.Error("secret does not match its stored hash")
	}

	other := testCA(t)
	if err := VerifyCAPin(hash, other.Cert); err == nil {
		t.Error("pin accepted another CA")
	}
	secret[0] ^= 1
	if VerifyJoinSecret(secret, secretHash) {
		t.Error("altered secret accepted")
	}

	// Tamper with the pin inside the token: it parses, but no longer matches.
	h := []byte(tok)
	h[len("EUCA10")] = map[bool]byte{true: 'a', false: 'b'}[h[len("EUCA10")] != 'a']
	tampered, _, err := ParseJoinToken(string(h))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyCAPin(tampered, ca.Cert); err == nil {
		t.Error("tampered pin accepted")
	}
}

func TestParseJoinTokenRefuses(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	sec := strings.Repeat("cd", 32)
	for name, tok := range map[string]string{
		"empty":           "",
		"no prefix":       hash + "::" + sec,
		"k3s prefix":      "K10" + hash + "::" + sec,
		"unpinned":        "EUCA10::" + sec,
		"no separator":    "EUCA10" + hash + sec,
		"short hash":      "EUCA10" + hash[:62] + "::" + sec,
		"non-hex hash":    "EUCA10" + strings.Repeat("zz", 32) + "::" + sec,
		"short secret":    "EUCA10" + hash + "::" + sec[:10],
		"non-hex secret":  "EUCA10" + hash + "::" + strings.Repeat("zz", 32),
		"password secret": "EUCA10" + hash + "::admin:" + sec[:58],
	} {
		if _, _, err := ParseJoinToken(tok); err == nil {
			t.Errorf("%s: token %q accepted", name, tok)
		}
	}
	if err := VerifyCAPin("", testCA(t).Cert); err == nil {
		t.Error("empty pin accepted")
	}
	if _, _, _, err := NewJoinToken(testCA(t), 0); err == nil {
		t.Error("token with zero lifetime issued")
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add("EUCA10" + strings.Repeat("ab", 32) + "::" + strings.Repeat("cd", 32))
	f.Add("EUCA10::")
	f.Add("K10abc::user:pass")
	f.Fuzz(func(t *testing.T, s string) {
		hash, secret, err := ParseJoinToken(s)
		if err != nil {
			return
		}
		if len(secret) != 32 || !strings.HasPrefix(hash, "sha256:") || len(hash) != len("sha256:")+64 {
			t.Fatalf("accepted %q as pin %q secret %x", s, hash, secret)
		}
	})
}
