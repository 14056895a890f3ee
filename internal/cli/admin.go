package cli

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/credentials"
	"github.com/euca-cloud/euca/internal/edge"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/store"
)

// openCloud opens the store and the cloud controller for an admin command.
// It works beside a running cloud: SQLite's WAL lets both use the file.
func openCloud(c *cli.Context) (*clc.Cloud, *store.Store, *conf.Config, error) {
	cfg, err := loadConf(c)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx := background(c)
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		return nil, nil, nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cloud, err := clc.New(ctx, cfg, st, quiet)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return cloud, st, cfg, nil
}

// Credentials writes an account's credentials zip.
func Credentials(c *cli.Context) error {
	cloud, st, cfg, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	host := c.String("host")
	if host == "" {
		host = "127.0.0.1"
		if cfg.VNetCloudIP.IsValid() {
			host = cfg.VNetCloudIP.String()
		}
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(cfg.CloudPort))
	b, err := cloud.Credentials(background(c), c.String("account"), clc.Endpoints{
		EC2: base + edge.PathEC2, S3: base + edge.PathS3, STS: base + edge.PathSTS, IAM: base + edge.PathIAM,
	})
	if err != nil {
		return err
	}
	path := c.String("zip")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".euca-credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := credentials.WriteZip(tmp, b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote credentials of account %s (%s) to %s\n", b.AccountName, b.AccountID, path)
	return nil
}

// AccountCreate adds an account.
func AccountCreate(c *cli.Context) error {
	name := c.Args().First()
	if name == "" {
		return fmt.Errorf("usage: euca account create NAME")
	}
	cloud, st, _, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := cloud.CreateAccount(background(c), name)
	if err != nil {
		return err
	}
	fmt.Printf("%s\t%s\n", a.Name, a.ID)
	return nil
}

// AccountList lists accounts.
func AccountList(c *cli.Context) error {
	_, st, _, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	accts, err := st.Accounts(background(c))
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tCREATED")
	for _, a := range accts {
		fmt.Fprintf(w, "%s\t%s\t%s\n", a.Name, a.ID, store.Time(a.CreatedMS).Format("2006-01-02 15:04:05Z"))
	}
	return w.Flush()
}
