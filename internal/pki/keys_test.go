package pki

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestNewAccessKey(t *testing.T) {
	idRE := regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretRE := regexp.MustCompile(`^[A-Za-z0-9/+]{40}$`)
	ids, secrets := map[string]bool{}, map[string]bool{}
	for range 1000 {
		id, secret, err := NewAccessKey()
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(id) {
			t.Fatalf("access key id %q", id)
		}
		if !secretRE.MatchString(secret) {
			t.Fatalf("secret key %q", secret)
		}
		if ids[id] || secrets[secret] {
			t.Fatalf("repeated key %s", id)
		}
		ids[id], secrets[secret] = true, true
	}
}

func TestNewAccountID(t *testing.T) {
	re := regexp.MustCompile(`^[1-9][0-9]{11}$`)
	seen := map[string]bool{}
	for range 1000 {
		id, err := NewAccountID()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(id) {
			t.Fatalf("account id %q", id)
		}
		if seen[id] {
			t.Fatalf("repeated account id %s", id)
		}
		seen[id] = true
	}
}

func TestSecretRedacts(t *testing.T) {
	const value = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	s := Secret(value)
	if s.Reveal() != value {
		t.Fatal("Reveal lost the value")
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("login", "secret", s, slog.Any("any", s), slog.Group("g", "s", s),
		"struct", struct{ Key Secret }{s})
	log.Info(fmt.Sprintf("formatted %v %s %q %x %#v", s, s, s, s, s))
	if strings.Contains(buf.String(), value) || strings.Contains(buf.String(), fmt.Sprintf("%x", value)) {
		t.Fatalf("secret reached the log:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `"secret":"[REDACTED]"`) {
		t.Errorf("log does not show the redaction marker:\n%s", buf.String())
	}
	if b, _ := json.Marshal(map[string]Secret{"k": s}); strings.Contains(string(b), value) {
		t.Errorf("json leaks: %s", b)
	}
}
