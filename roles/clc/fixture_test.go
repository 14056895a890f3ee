package clc

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/store"
)

// testConfig is the default configuration with its home in a temp dir.
func testConfig(t *testing.T) *conf.Config {
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	return cfg
}

// newTestCloud is a cloud controller over a fresh store in cfg's home
// (testConfig's when cfg is nil), with the accounts named: admin, which New
// makes, is looked up and any other is created, in order. It returns the
// controller, its store and the accounts as named.
func newTestCloud(t *testing.T, cfg *conf.Config, accounts ...string) (*Cloud, *store.Store, []store.Account) {
	t.Helper()
	ctx := context.Background()
	if cfg == nil {
		cfg = testConfig(t)
	}
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := New(ctx, cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]store.Account, len(accounts))
	for i, name := range accounts {
		if name == AdminAccount {
			out[i], err = st.AccountByName(ctx, name)
		} else {
			out[i], err = c.CreateAccount(ctx, name)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return c, st, out
}

// aliceAndBob is a cloud controller over a fresh store with two accounts
// besides admin; it returns their ids.
func aliceAndBob(t *testing.T) (c *Cloud, alice, bob string) {
	t.Helper()
	c, _, accounts := newTestCloud(t, nil, "alice", "bob")
	return c, accounts[0].ID, accounts[1].ID
}

// wantCode fails unless err is an API error with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok || e.Code != code {
		t.Errorf("%s: error %v, want code %s", what, err, code)
	}
}
