package sshkey

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tool skips the test when an external tool the check compares against is
// missing: the fingerprints are only worth testing against the real thing.
func tool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed: cannot compare with it", n)
		}
	}
}

func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// afterEquals takes the value of openssl's "(stdin)= value" output.
func afterEquals(s string) string {
	if i := strings.LastIndex(s, "= "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func sshKeygen(t *testing.T, dir, typ string) (priv, pub string) {
	t.Helper()
	priv = filepath.Join(dir, "id_"+typ)
	args := []string{"-q", "-t", typ, "-N", "", "-C", "me@host", "-f", priv}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	run(t, nil, "ssh-keygen", args...)
	return priv, priv + ".pub"
}

func TestImportFingerprintMatchesTools(t *testing.T) {
	tool(t, "ssh-keygen", "openssl")
	for _, typ := range []string{"rsa", "ed25519"} {
		t.Run(typ, func(t *testing.T) {
			_, pubFile := sshKeygen(t, t.TempDir(), typ)
			line, err := os.ReadFile(pubFile)
			if err != nil {
				t.Fatal(err)
			}
			k, err := Parse(line)
			if err != nil {
				t.Fatalf("Parse(%q): %v", line, err)
			}
			if string(k.Kind) != typ {
				t.Fatalf("kind %q, want %q", k.Kind, typ)
			}
			var want string
			if typ == "rsa" {
				// The acceptance check's own pipeline, as AWS documents it.
				der := run(t, nil, "sh", "-c", "ssh-keygen -e -m PKCS8 -f "+pubFile+" | openssl pkey -pubin -outform DER | openssl md5 -c")
				want = afterEquals(der)
			} else {
				// ssh-keygen -l prints "256 SHA256:<unpadded base64> comment (ED25519)".
				f := strings.Fields(run(t, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", pubFile))
				want = strings.TrimPrefix(f[1], "SHA256:") + "="
			}
			if got := k.ImportFingerprint(); got != want {
				t.Errorf("fingerprint %q, want %q", got, want)
			}
			if got, want := k.SHA256Fingerprint(), strings.Fields(run(t, nil, "ssh-keygen", "-l", "-f", pubFile))[1]; got != want {
				t.Errorf("sha256 fingerprint %q, want %q", got, want)
			}
			// Every other form ssh-keygen exports must read as the same key.
			forms := map[string]string{
				"RFC4716": run(t, nil, "ssh-keygen", "-e", "-f", pubFile),
			}
			if typ == "ed25519" {
				// ssh-keygen cannot export Ed25519 as PKCS8; the standard library can.
				der, err := x509.MarshalPKIXPublicKey(k.Ed25519)
				if err != nil {
					t.Fatal(err)
				}
				forms["PKCS8"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			} else {
				forms["PKCS8"] = run(t, nil, "ssh-keygen", "-e", "-m", "PKCS8", "-f", pubFile)
				forms["PEM"] = run(t, nil, "ssh-keygen", "-e", "-m", "PEM", "-f", pubFile)
				block, _ := pem.Decode([]byte(forms["PKCS8"]))
				forms["DER"] = string(block.Bytes)
				forms["base64 DER"] = base64.StdEncoding.EncodeToString(block.Bytes)
			}
			for name, text := range forms {
				got, err := Parse([]byte(text))
				if err != nil {
					t.Errorf("%s: Parse: %v\n%s", name, err, text)
					continue
				}
				if !got.Equal(k) {
					t.Errorf("%s: a different key", name)
				}
			}
		})
	}
}

func TestGeneratedKeysWorkWithOpenSSH(t *testing.T) {
	tool(t, "ssh-keygen", "openssl")
	for _, kind := range []Kind{RSA, Ed25519} {
		t.Run(string(kind), func(t *testing.T) {
			g, err := Generate(kind, "my-key")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(file, []byte(g.PrivatePEM), 0o600); err != nil {
				t.Fatal(err)
			}
			// ssh-keygen must read the private key and derive our public key.
			derived := strings.Fields(run(t, nil, "ssh-keygen", "-y", "-f", file))
			want := strings.Fields(g.Public.AuthorizedKey(""))
			if derived[0] != want[0] || derived[1] != want[1] {
				t.Fatalf("ssh-keygen -y: %v, want %v", derived, want)
			}
			var fp string
			if kind == RSA {
				if !strings.HasPrefix(g.PrivatePEM, "-----BEGIN RSA PRIVATE KEY-----\n") {
					t.Errorf("not PKCS#1 PEM: %.40q", g.PrivatePEM)
				}
				fp = afterEquals(run(t, nil, "sh", "-c", "openssl pkcs8 -topk8 -nocrypt -in "+file+" -outform DER | openssl sha1 -c"))
				if g.Public.Bits() != 2048 {
					t.Errorf("%d bits, want 2048", g.Public.Bits())
				}
			} else {
				f := strings.Fields(run(t, nil, "ssh-keygen", "-l", "-f", file))
				fp = strings.TrimPrefix(f[1], "SHA256:") + "="
				if f[2] != "my-key" {
					t.Errorf("comment %q, want my-key", f[2])
				}
			}
			if g.Fingerprint != fp {
				t.Errorf("fingerprint %q, want %q", g.Fingerprint, fp)
			}
			// The public half, imported back, is the same key.
			k, err := Parse([]byte(g.Public.AuthorizedKey("my-key")))
			if err != nil || !k.Equal(g.Public) {
				t.Errorf("round trip: %v", err)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	g, err := Generate(Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	good := g.Public.AuthorizedKey("c")
	blob := base64.StdEncoding.EncodeToString(g.Public.Blob())
	rsaLine := "ssh-rsa " + base64.StdEncoding.EncodeToString(append(appendString(appendString(nil, []byte("ssh-rsa")), []byte{1, 0, 1}), appendString(nil, bytes.Repeat([]byte{0x7f}, 64))...))
	cases := map[string]string{
		"empty":             "   \n",
		"garbage":           "hello world",
		"ecdsa":             "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBA== x",
		"type mismatch":     "ssh-rsa " + blob,
		"bad base64":        "ssh-ed25519 !!!!",
		"two keys":          good + "\n" + good,
		"options":           `from="10.0.0.1" ` + good,
		"truncated blob":    "ssh-ed25519 " + blob[:20],
		"small rsa":         rsaLine,
		"private key":       g.PrivatePEM,
		"rfc4716 no end":    rfc4716Begin + "\n" + blob + "\n",
		"pem trailing text": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\nmore",
	}
	for name, text := range cases {
		if k, err := Parse([]byte(text)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Parse = %v, %v; want ErrFormat", name, k, err)
		}
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Errorf("good key refused: %v", err)
	}
}

func TestParseRFC4716Headers(t *testing.T) {
	g, err := Generate(Ed25519, "")
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(g.Public.Blob())
	text := rfc4716Begin + "\r\nComment: \"a comment that goes \\\r\non: and on\"\r\nx-private: yes\r\n" +
		b64[:30] + "\r\n" + b64[30:] + "\r\n" + rfc4716End + "\r\n"
	k, err := Parse([]byte(text))
	if err != nil || !k.Equal(g.Public) {
		t.Fatalf("Parse = %v", err)
	}
}
