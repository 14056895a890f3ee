package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/store"
)

// TestAddressList: `euca address list` shows every address of the pool,
// the allocated one with its account and allocation, the others free.
func TestAddressList(t *testing.T) {
	home := t.TempDir()
	confPath := filepath.Join(home, "eucalyptus.conf")
	if err := os.WriteFile(confPath, []byte(`EUCALYPTUS="`+home+`"`+"\nVNET_PUBLICIPS=\"192.0.2.8/30\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := conf.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := clc.New(ctx, cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := cloud.CreateAccount(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a, err := cloud.AllocateAddress(ctx, alice.ID, "", "", nil)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	app := &cli.App{Name: "euca", Writer: &out, ErrWriter: &out, Flags: []cli.Flag{ConfFlag()},
		Commands: []*cli.Command{AddressCommand()}}
	if err := app.Run([]string{"euca", "--conf", confPath, "address", "list"}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`(?m)^ADDRESS\s+ACCOUNT\s+ALLOCATION\s+INSTANCE$`,
		`(?m)^192\.0\.2\.9\s+alice \(` + alice.ID + `\)\s+` + a.AllocationID + `\s+-$`,
		`(?m)^192\.0\.2\.10\s+-\s+-\s+-$`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("no line like %s in:\n%s", want, out.String())
		}
	}
}
