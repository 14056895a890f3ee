package ec2api

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/store"
)

// testConfig is the default configuration with its home in a temp dir.
func testConfig(t *testing.T) *conf.Config {
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	return cfg
}

// newTestCloud is a real cloud controller over a fresh store in cfg's home
// (testConfig's when cfg is nil), with the accounts named: admin, which
// the controller makes, is looked up and any other is created, in order. It
// returns the controller, its store and the accounts' ids as named.
func newTestCloud(t *testing.T, cfg *conf.Config, accounts ...string) (*clc.Cloud, *store.Store, []string) {
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
	c, err := clc.New(ctx, cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(accounts))
	for i, name := range accounts {
		var a store.Account
		if name == clc.AdminAccount {
			a, err = st.AccountByName(ctx, name)
		} else {
			a, err = c.CreateAccount(ctx, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = a.ID
	}
	return c, st, ids
}
