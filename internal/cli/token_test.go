package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
)

// tokenRun runs `euca ARGS...` with the token and node commands; stdout
// and stderr apart.
func tokenRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw bytes.Buffer
	app := &cli.App{Name: "euca", Writer: &out, ErrWriter: &errw, Flags: []cli.Flag{ConfFlag()},
		Commands: []*cli.Command{TokenCommand(), NodeCommand()}}
	err = app.Run(append([]string{"euca"}, args...))
	return out.String(), errw.String(), err
}

func TestTokenCreate(t *testing.T) {
	home := t.TempDir()
	confPath := filepath.Join(home, "eucalyptus.conf")
	if err := os.WriteFile(confPath, []byte(`EUCALYPTUS="`+home+`"`+"\nCLOUD_PORT=\"9773\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, hint, err := tokenRun(t, "--conf", confPath, "token", "create", "--role", "nc", "--ttl", "30m", "--host", "10.250.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	if !regexp.MustCompile(`^EUCA10[^[:space:]]+$`).MatchString(tok) {
		t.Fatalf("stdout %q is not the token alone", out)
	}
	if !strings.Contains(hint, "euca --roles=nc --join "+tok+" --server 10.250.0.1:9773") || !strings.Contains(hint, "JOIN_TOKEN=") {
		t.Fatalf("what to run: %q", hint)
	}
	_, secret, err := pki.ParseJoinToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	// Only the hash is kept.
	db := filepath.Join(home, "var/lib/eucalyptus", store.FileName)
	st, err := store.Open(context.Background(), filepath.Dir(db))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := sha256.Sum256(secret)
	if got, err := st.JoinToken(context.Background(), h[:]); err != nil || got.Role != "nc" {
		t.Fatalf("stored token: %+v %v", got, err)
	}
	for _, f := range []string{db, db + "-wal"} {
		raw, _ := os.ReadFile(f)
		if bytes.Contains(raw, secret) || bytes.Contains(raw, []byte(hex.EncodeToString(secret))) {
			t.Fatalf("%s holds the token's secret", f)
		}
	}
	for _, bad := range [][]string{{"--role", "clc"}, {"--ttl", "0s"}, {"--ttl", "800h"}} {
		if _, _, err := tokenRun(t, append([]string{"--conf", confPath, "token", "create"}, bad...)...); err == nil {
			t.Errorf("token create %v: no error", bad)
		}
	}

	// euca node revoke, by address.
	if err := st.AddHostCert(context.Background(), store.HostCert{Serial: "abc1", Role: "nc", Host: "node1", Names: []string{"node1", "10.250.0.2"}, NotAfterMS: 1}); err != nil {
		t.Fatal(err)
	}
	out, _, err = tokenRun(t, "node", "revoke", "10.250.0.2", "--conf", confPath)
	if err != nil || !strings.Contains(out, "revoked certificate abc1 of nc:node1") {
		t.Fatalf("revoke: %q %v", out, err)
	}
	if c, err := st.HostCert(context.Background(), "abc1"); err != nil || c.RevokedMS == 0 {
		t.Fatalf("not revoked: %+v %v", c, err)
	}
	if _, _, err := tokenRun(t, "--conf", confPath, "node", "revoke", "node1"); err == nil || !strings.Contains(err.Error(), "no certificate in force for node1") {
		t.Fatalf("revoke again: %v", err)
	}
	if _, _, err := tokenRun(t, "--conf", confPath, "node", "revoke"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("revoke nothing: %v", err)
	}
}
