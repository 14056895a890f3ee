package clcapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/logbuf"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/clc/clcapi"
	"github.com/euca-cloud/euca/store"
)

// testCloud is a cloud controller over a fresh store, with alice's access
// key and secret.
func testCloud(t *testing.T) (c *clc.Cloud, aliceID, akid, secret string) {
	t.Helper()
	ctx := context.Background()
	cfg := conf.Defaults()
	cfg.Home = t.TempDir()
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err = clc.New(ctx, cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.CreateAccount(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.AccessKeys(ctx, a.ID, "admin")
	if err != nil || len(keys) == 0 {
		t.Fatalf("alice's keys: %v %v", keys, err)
	}
	return c, a.ID, keys[0].ID, keys[0].Secret
}

// testDirectory is the one suite, run against each transport.
func testDirectory(t *testing.T, d clcapi.Directory, aliceID, akid, secret string) {
	ctx := context.Background()
	p, got, err := d.LookupAccessKey(ctx, akid)
	if err != nil || got != secret || p.AccountID != aliceID || p.AccountName != "alice" || p.AccessKeyID != akid {
		t.Fatalf("lookup: %+v, secret match %v, %v", p, got == secret, err)
	}
	if _, _, err := d.LookupAccessKey(ctx, "AKIANOSUCHKEY0000000"); !errors.Is(err, awsauth.ErrUnknownKey) {
		t.Errorf("unknown key: %v, want awsauth.ErrUnknownKey", err)
	}
	if name, err := d.AccountName(ctx, aliceID); err != nil || name != "alice" {
		t.Errorf("account name: %q, %v", name, err)
	}
	if _, err := d.AccountName(ctx, "000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v, want store.ErrNotFound", err)
	}
}

func TestDirectoryInProcess(t *testing.T) {
	c, alice, akid, secret := testCloud(t)
	testDirectory(t, c, alice, akid, secret)
}

// counting counts the calls that reach h.
type counting struct {
	n atomic.Int64
	h http.Handler
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.n.Add(1); c.h.ServeHTTP(w, r) }

func clientAs(t *testing.T, ca *pki.CA, addr, cn string) clcapi.Directory {
	t.Helper()
	cert := rpctest.ClientCert(t, ca, cn)
	return clcapi.NewClient(rpc.NewClientConfig(addr, ca.ClientTLSConfig(cert), slog.New(slog.DiscardHandler)))
}

// TestDirectoryOverHTTPS: the same answers over mutual TLS, to Walrus's
// certificate; a second lookup of a key is answered from the client's
// cache; no secret reaches the server's log.
func TestDirectoryOverHTTPS(t *testing.T) {
	c, alice, akid, secret := testCloud(t)
	var logs logbuf.Buffer
	h := &counting{h: clcapi.NewHandler(c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	addr := rpctest.Serve(t, c.CA(), h)
	d := clientAs(t, c.CA(), addr, "walrus:w1")
	testDirectory(t, d, alice, akid, secret)
	before := h.n.Load()
	if _, got, err := d.LookupAccessKey(context.Background(), akid); err != nil || got != secret {
		t.Fatalf("cached lookup: %v", err)
	}
	if h.n.Load() != before {
		t.Error("a key looked up a moment ago was asked again")
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("a secret key is in the log")
	}
}

// TestDirectoryOnlyForWalrus: a node's or a cluster's certificate, or one
// of another CA, gets no key.
func TestDirectoryOnlyForWalrus(t *testing.T) {
	c, _, akid, _ := testCloud(t)
	other := rpctest.NewCA(t)
	h := &counting{h: clcapi.NewHandler(c, slog.New(slog.DiscardHandler))}
	addr := rpctest.Serve(t, c.CA(), h)
	for _, cn := range []string{"nc:10.0.0.2", "cc:us-east-1a"} {
		if _, _, err := clientAs(t, c.CA(), addr, cn).LookupAccessKey(context.Background(), akid); err == nil {
			t.Errorf("%s was given a key", cn)
		}
	}
	foreign, err := other.IssueClient("walrus:w1")
	if err != nil {
		t.Fatal(err)
	}
	d := clcapi.NewClient(rpc.NewClientConfig(addr, c.CA().ClientTLSConfig(foreign), slog.New(slog.DiscardHandler)))
	if _, _, err := d.LookupAccessKey(context.Background(), akid); err == nil {
		t.Error("another CA's walrus was given a key")
	}
}
