package cli

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/join"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
)

// maxTokenTTL bounds a join token's life: a token is a standing invitation
// to the cloud, so it should not outlive the job of adding a host.
const maxTokenTTL = 7 * 24 * time.Hour

// TokenCommand is `euca token`: join tokens for new hosts.
func TokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "make join tokens for new hosts (run on the front-end)",
		Subcommands: []*cli.Command{{
			Name:  "create",
			Usage: "print a single-use token with which a new host joins the cloud: euca --roles=nc --join TOKEN --server HOST:PORT",
			Flags: []cli.Flag{
				ConfFlag(),
				&cli.StringFlag{Name: "role", Value: "nc", Usage: "the role the new host will run: " + strings.Join(join.Roles, ", ")},
				&cli.DurationFlag{Name: "ttl", Value: time.Hour, Usage: "how long the token may be used (at most " + maxTokenTTL.String() + ")"},
				&cli.StringFlag{Name: "host", Usage: "the front-end's address as the new host reaches it, for the command printed (default: VNET_CLOUDIP, else this host's first address)"},
			},
			Action: TokenCreate,
		}},
	}
}

// TokenCreate makes a join token: the pin of the cloud's CA and a random
// secret of which only the hash is stored. The token alone is printed on
// standard output (for scripts); what to do with it, on standard error.
func TokenCreate(c *cli.Context) error {
	role := c.String("role")
	if !slices.Contains(join.Roles, role) {
		return fmt.Errorf("token create: --role %q: want one of %s", role, strings.Join(join.Roles, ", "))
	}
	ttl := c.Duration("ttl")
	if ttl <= 0 || ttl > maxTokenTTL {
		return fmt.Errorf("token create: --ttl %s: want more than 0 and at most %s", ttl, maxTokenTTL)
	}
	cloud, st, cfg, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	token, hash, expires, err := pki.NewJoinToken(cloud.CA(), ttl)
	if err != nil {
		return err
	}
	if err := st.CreateJoinToken(background(c), store.JoinToken{SecretHash: hash, Role: role, ExpiresMS: expires.UnixMilli()}); err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	fmt.Fprintln(c.App.Writer, token)
	server := net.JoinHostPort(frontEndHost(c.String("host"), cfg), strconv.Itoa(cfg.CloudPort))
	fmt.Fprintf(c.App.ErrWriter, "join token for role %s, usable once until %s. On the new host run:\n"+
		"  euca --roles=%s --join %s --server %s\n"+
		"or, for an unattended install, put in its eucalyptus.conf:\n"+
		"  JOIN_TOKEN=\"%s\"\n  JOIN_SERVER=\"%s\"\n",
		role, expires.UTC().Format(time.RFC3339), role, token, server, token, server)
	return nil
}

// frontEndHost is the address new hosts reach this front-end at.
func frontEndHost(flag string, cfg *conf.Config) string {
	switch {
	case flag != "":
		return flag
	case cfg.VNetCloudIP.IsValid():
		return cfg.VNetCloudIP.String()
	}
	if as := join.HostAddresses(); len(as) > 0 {
		return as[0].String()
	}
	return "127.0.0.1"
}
