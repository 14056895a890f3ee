package clc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/sshkey"
	"github.com/euca-cloud/euca/store"
)

func TestCreateKeyPair(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	for _, typ := range []string{"rsa", "ed25519"} {
		kp, priv, err := c.CreateKeyPair(ctx, alice, "k-"+typ, typ, []store.Tag{{Key: "env", Value: "dev"}})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !strings.HasPrefix(kp.ID, "key-") || kp.Type != typ || kp.Fingerprint == "" || len(kp.Tags) != 1 {
			t.Errorf("%s: %+v", typ, kp)
		}
		if !strings.HasSuffix(kp.PublicKey, " k-"+typ) {
			t.Errorf("%s: public key %q is not commented with the key's name", typ, kp.PublicKey)
		}
		if !strings.Contains(priv, "PRIVATE KEY") {
			t.Errorf("%s: private key %.30q", typ, priv)
		}
		// The stored public key is what the private key derives.
		if _, err := exec.LookPath("ssh-keygen"); err == nil {
			file := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(file, []byte(priv), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("ssh-keygen", "-y", "-f", file).Output()
			if err != nil {
				t.Fatalf("ssh-keygen -y: %v", err)
			}
			if got, want := strings.Fields(string(out))[1], strings.Fields(kp.PublicKey)[1]; got != want {
				t.Errorf("%s: stored public key differs from the private key's", typ)
			}
		}
	}
	_, _, err := c.CreateKeyPair(ctx, alice, "k-rsa", "rsa", nil)
	wantCode(t, "duplicate", err, "InvalidKeyPair.Duplicate")
	if _, _, err := c.CreateKeyPair(ctx, bob, "k-rsa", "rsa", nil); err != nil {
		t.Errorf("the same name in another account: %v", err)
	}
	_, _, err = c.CreateKeyPair(ctx, alice, "x", "dsa", nil)
	wantCode(t, "key type dsa", err, "InvalidParameterValue")
	_, _, err = c.CreateKeyPair(ctx, alice, strings.Repeat("n", 256), "rsa", nil)
	wantCode(t, "256-character name", err, "InvalidParameterValue")
	_, _, err = c.CreateKeyPair(ctx, alice, "clé", "rsa", nil)
	wantCode(t, "non-ASCII name", err, "InvalidParameterValue")
	_, _, err = c.CreateKeyPair(ctx, alice, "", "rsa", nil)
	wantCode(t, "empty name", err, "MissingParameter")
	if _, _, err := c.CreateKeyPair(ctx, alice, strings.Repeat("n", 255), "ed25519", nil); err != nil {
		t.Errorf("255-character name: %v", err)
	}
}

func TestImportKeyPair(t *testing.T) {
	ctx := context.Background()
	c, alice, _ := aliceAndBob(t)
	gen, err := sshkey.Generate(sshkey.RSA, "")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := c.ImportKeyPair(ctx, alice, "imported", []byte(gen.Public.AuthorizedKey("me@laptop")+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// An imported RSA key has EC2's MD5 fingerprint, not the SHA-1 of creation.
	if kp.Fingerprint != gen.Public.ImportFingerprint() || kp.Fingerprint == gen.Fingerprint || kp.Type != "rsa" {
		t.Errorf("imported: %+v", kp)
	}
	if kp.PublicKey != gen.Public.AuthorizedKey("imported") {
		t.Errorf("public key %q", kp.PublicKey)
	}
	_, err = c.ImportKeyPair(ctx, alice, "imported", []byte(gen.Public.AuthorizedKey("")), nil)
	wantCode(t, "duplicate", err, "InvalidKeyPair.Duplicate")
	_, err = c.ImportKeyPair(ctx, alice, "bad", []byte("ssh-rsa bm90IGEga2V5"), nil)
	wantCode(t, "garbage", err, "InvalidKey.Format")
}

func TestDeleteAndDescribeKeyPairs(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	a, _, err := c.CreateKeyPair(ctx, alice, "a", "ed25519", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := c.CreateKeyPair(ctx, alice, "b", "ed25519", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CreateKeyPair(ctx, bob, "bobs", "ed25519", nil); err != nil {
		t.Fatal(err)
	}

	all, err := c.DescribeKeyPairs(ctx, alice, nil, nil)
	if err != nil || len(all) != 2 || all[0].Name != "a" || all[1].Name != "b" {
		t.Fatalf("all of alice's: %v, %v", all, err)
	}
	sel, err := c.DescribeKeyPairs(ctx, alice, []string{"b"}, []string{a.ID})
	if err != nil || len(sel) != 2 {
		t.Errorf("by name and id: %v, %v", sel, err)
	}
	_, err = c.DescribeKeyPairs(ctx, alice, []string{"a", "nope", "bobs"}, nil)
	wantCode(t, "unknown names", err, "InvalidKeyPair.NotFound")
	if e, _ := awserr.As(err); e == nil || !strings.Contains(e.Message, "'nope', 'bobs'") {
		t.Errorf("the error should name both unknown keys: %v", err)
	}
	_, err = c.DescribeKeyPairs(ctx, bob, nil, []string{a.ID})
	wantCode(t, "another account's id", err, "InvalidKeyPair.NotFound")

	// By name: a name that names nothing is deleted successfully.
	if id, err := c.DeleteKeyPair(ctx, alice, "nope", ""); err != nil || id != "" {
		t.Errorf("delete unknown name: %q, %v", id, err)
	}
	if id, err := c.DeleteKeyPair(ctx, bob, "a", ""); err != nil || id != "" {
		t.Errorf("bob deleting alice's key by name: %q, %v", id, err)
	}
	if id, err := c.DeleteKeyPair(ctx, alice, "a", ""); err != nil || id != a.ID {
		t.Errorf("delete a: %q, %v", id, err)
	}
	// By id: an unknown id is an error.
	_, err = c.DeleteKeyPair(ctx, bob, "", b.ID)
	wantCode(t, "bob deleting alice's key by id", err, "InvalidKeyPair.NotFound")
	if id, err := c.DeleteKeyPair(ctx, alice, "", b.ID); err != nil || id != b.ID {
		t.Errorf("delete b by id: %q, %v", id, err)
	}
	if all, _ := c.DescribeKeyPairs(ctx, alice, nil, nil); len(all) != 0 {
		t.Errorf("left: %v", all)
	}
}
