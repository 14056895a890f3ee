package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/store"
)

// NodeRevokeCommand is `euca node revoke HOST...`: it ends the
// certificates of joined hosts, so the front-end refuses them and they
// cannot renew; the host must join again with a new token.
func NodeRevokeCommand() *cli.Command {
	return &cli.Command{
		Name: "revoke", ArgsUsage: "HOST...",
		Usage: "end the certificates of joined hosts (by host name or address): the front-end refuses them from now on; the host must join again with a new token",
		Flags: []cli.Flag{ConfFlag()}, Action: NodeRevoke,
	}
}

// NodeRevoke revokes every certificate in force of each host named; a host
// without one is an error (the others are still revoked).
func NodeRevoke(c *cli.Context) error {
	cfg, err := loadConf(c)
	if err != nil {
		return err
	}
	hosts, err := operands(c)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return errors.New("usage: euca node revoke HOST...")
	}
	st, err := store.Open(background(c), cfg.DataDir())
	if err != nil {
		return err
	}
	defer st.Close()
	var errs []error
	for _, h := range hosts {
		certs, err := st.RevokeHostCerts(background(c), h)
		if errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("node revoke: no certificate in force for %s (it never joined, or is revoked already)", h))
			continue
		}
		if err != nil {
			return err
		}
		for _, cert := range certs {
			fmt.Fprintf(c.App.Writer, "revoked certificate %s of %s:%s (%s)\n", cert.Serial, cert.Role, cert.Host, strings.Join(cert.Names, " "))
		}
	}
	if len(errs) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "a revoked node may still be registered: euca node deregister HOST takes it out of its cluster")
	}
	return errors.Join(errs...)
}
