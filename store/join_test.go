package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
)

func init() {
	tableSeeds["join_tokens"] = []string{
		`INSERT INTO join_tokens (secret_hash, role, created_ms, expires_ms, used_ms, used_by) VALUES
			(X'00112233', 'nc', 1, 2, 0, ''), (X'44556677', 'cc', 1, 2, 2, 'node2')`,
		`INSERT INTO host_certs (serial, role, host, names, created_ms, not_after_ms, revoked_ms) VALUES
			('0a1b', 'nc', 'node2', '["node2","10.0.0.2"]', 2, 3, 0)`,
	}
}

func openJoinStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func joinHash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestJoinTokenRedeemedOnce(t *testing.T) {
	ctx := context.Background()
	s := openJoinStore(t)
	h := joinHash("secret")
	if err := s.CreateJoinToken(ctx, JoinToken{SecretHash: h, Role: "nc", ExpiresMS: now() + 60_000}); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.JoinToken(ctx, h); err != nil || tok.Role != "nc" || tok.UsedMS != 0 {
		t.Fatalf("check before use: %+v %v", tok, err)
	}
	// Hosts racing with one token: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	var used int
	for _, host := range []string{"a", "b", "c", "d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.RedeemJoinToken(ctx, h, HostCert{Serial: "s-" + host, Role: "nc", Host: host, Names: []string{host}, NotAfterMS: now() + 1000})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, host)
			case errors.Is(err, ErrTokenUsed):
				used++
			default:
				t.Errorf("host %s: %v", host, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || used != 3 {
		t.Fatalf("winners %v, refused as used %d", won, used)
	}
	certs, err := s.HostCerts(ctx)
	if err != nil || len(certs) != 1 || certs[0].Host != won[0] {
		t.Fatalf("a certificate is recorded for the winner only: %+v %v", certs, err)
	}
	tok, err := s.JoinToken(ctx, h)
	if !errors.Is(err, ErrTokenUsed) || tok.UsedBy != won[0] {
		t.Fatalf("check after use: %+v %v", tok, err)
	}
}

func TestJoinTokenRefusals(t *testing.T) {
	ctx := context.Background()
	s := openJoinStore(t)
	if _, err := s.JoinToken(ctx, joinHash("forged")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := s.RedeemJoinToken(ctx, joinHash("forged"), HostCert{Serial: "1", Role: "nc", Host: "h", NotAfterMS: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token redeemed: %v", err)
	}
	old := joinHash("old")
	if err := s.CreateJoinToken(ctx, JoinToken{SecretHash: old, Role: "nc", ExpiresMS: now() - 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemJoinToken(ctx, old, HostCert{Serial: "2", Role: "nc", Host: "h", NotAfterMS: 1}); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
	if c, _ := s.HostCerts(ctx); len(c) != 0 {
		t.Fatalf("a refused token left a certificate: %+v", c)
	}
}

func TestRevokeHostCerts(t *testing.T) {
	ctx := context.Background()
	s := openJoinStore(t)
	for _, c := range []HostCert{
		{Serial: "01", Role: "nc", Host: "node1", Names: []string{"node1", "10.0.0.1"}, NotAfterMS: 10},
		{Serial: "02", Role: "nc", Host: "node1", Names: []string{"node1", "10.0.0.1"}, NotAfterMS: 20},
		{Serial: "03", Role: "nc", Host: "node2", Names: []string{"node2", "10.0.0.2"}, NotAfterMS: 20},
	} {
		if err := s.AddHostCert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddHostCert(ctx, HostCert{Serial: "03", Role: "nc", Host: "x", NotAfterMS: 1}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a serial twice: %v", err)
	}
	// By address, as NODES names the node.
	got, err := s.RevokeHostCerts(ctx, "10.0.0.1")
	if err != nil || len(got) != 2 || got[0].Serial != "01" || got[1].Serial != "02" || got[0].RevokedMS == 0 {
		t.Fatalf("revoke node1 by address: %+v %v", got, err)
	}
	if _, err := s.RevokeHostCerts(ctx, "node1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking again: %v", err)
	}
	if _, err := s.RevokeHostCerts(ctx, "10.0.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a prefix of an address revoked something: %v", err)
	}
	c, err := s.HostCert(ctx, "03")
	if err != nil || c.RevokedMS != 0 || c.Names[1] != "10.0.0.2" {
		t.Fatalf("node2 untouched: %+v %v", c, err)
	}
	if got, err := s.RevokeHostCerts(ctx, "node2"); err != nil || len(got) != 1 {
		t.Fatalf("revoke node2 by name: %+v %v", got, err)
	}
	if c, _ := s.HostCert(ctx, "03"); c.RevokedMS == 0 {
		t.Fatal("node2's certificate not revoked")
	}
	if _, err := s.HostCert(ctx, "ff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}
}
