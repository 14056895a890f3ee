package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// kpStore opens a store in a temp dir with the given accounts (ids 1000...).
func kpStore(t *testing.T, accounts ...string) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i, id := range accounts {
		err := s.CreateAccount(ctx, Account{ID: id, Name: "acct" + id},
			AccessKey{ID: fmt.Sprintf("AKIATEST%d", i), AccountID: id, UserName: "admin", Secret: "s"},
			UserCert{Fingerprint: fmt.Sprintf("fp%d", i), AccountID: id, UserName: "admin", CertPEM: "x"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestKeyPairs(t *testing.T) {
	ctx := context.Background()
	s := kpStore(t, "111111111111", "222222222222")
	k := KeyPair{ID: "key-0123456789abcdef0", AccountID: "111111111111", Name: "web", Type: "ed25519",
		Fingerprint: "fp=", PublicKey: "ssh-ed25519 AAAA web", Tags: []Tag{{"env", "prod"}}}
	if err := s.CreateKeyPair(ctx, k); err != nil {
		t.Fatal(err)
	}
	dup := k
	dup.ID = "key-0123456789abcdef1"
	if err := s.CreateKeyPair(ctx, dup); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name: %v, want ErrConflict", err)
	}
	// The same name in another account is another key pair.
	other := dup
	other.AccountID = "222222222222"
	if err := s.CreateKeyPair(ctx, other); err != nil {
		t.Fatalf("same name, other account: %v", err)
	}
	many := KeyPair{ID: "key-0123456789abcdef2", AccountID: "111111111111", Name: "many", Type: "rsa", Fingerprint: "f", PublicKey: "p"}
	for i := 0; i <= MaxTags; i++ {
		many.Tags = append(many.Tags, Tag{Key: fmt.Sprint(i)})
	}
	if err := s.CreateKeyPair(ctx, many); !errors.Is(err, ErrTagLimit) {
		t.Fatalf("51 tags: %v, want ErrTagLimit", err)
	}

	list, err := s.KeyPairs(ctx, "111111111111")
	if err != nil || len(list) != 1 {
		t.Fatalf("KeyPairs = %v, %v; want only web (the 51-tag one rolled back)", list, err)
	}
	got := list[0]
	if got.ID != k.ID || got.Name != "web" || got.Type != "ed25519" || got.Fingerprint != "fp=" || got.PublicKey != k.PublicKey ||
		got.CreatedMS == 0 || len(got.Tags) != 1 || got.Tags[0] != (Tag{"env", "prod"}) {
		t.Errorf("KeyPairs()[0] = %+v", got)
	}
	if byName, err := s.KeyPairByName(ctx, "111111111111", "web"); err != nil || byName.ID != k.ID {
		t.Errorf("KeyPairByName = %+v, %v", byName, err)
	}
	if _, err := s.KeyPairByName(ctx, "222222222222", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("KeyPairByName(missing) = %v", err)
	}
	if _, err := s.KeyPairByID(ctx, "222222222222", k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("KeyPairByID(other account's) = %v, want ErrNotFound", err)
	}

	if err := s.DeleteKeyPair(ctx, "222222222222", k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete another account's key: %v, want ErrNotFound", err)
	}
	if err := s.DeleteKeyPair(ctx, "111111111111", k.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.KeyPairs(ctx, "111111111111"); len(list) != 0 {
		t.Errorf("after delete: %v", list)
	}
	if tags, _ := s.Tags(ctx, "111111111111"); len(tags) != 0 {
		t.Errorf("tags outlived their key pair: %v", tags)
	}
}
