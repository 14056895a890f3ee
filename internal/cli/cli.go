// Package cli implements euca's commands: running the roles and the
// administrator's subcommands. main.go declares the command line; the work
// is here so it can be tested without a process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/logging"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles"
)

// ConfFlag is the --conf flag every command takes, so it may stand before or
// after the subcommand.
func ConfFlag() cli.Flag {
	return &cli.StringFlag{Name: "conf", EnvVars: []string{"EUCA_CONF"},
		Usage: "eucalyptus.conf to read (default: $EUCALYPTUS/etc/eucalyptus/eucalyptus.conf if it exists, else built-in defaults)"}
}

// loadConf reads the configuration the command line names, printing
// warnings to stderr; errors stop the command.
func loadConf(c *cli.Context) (*conf.Config, error) {
	path := confPath(c)
	if path == "" {
		def := filepath.Join(conf.Defaults().ConfDir(), "eucalyptus.conf")
		if _, err := os.Stat(def); err == nil {
			path = def
		}
	}
	if path == "" {
		return conf.Defaults(), nil
	}
	cfg, diags, err := conf.Load(path)
	for _, d := range diags {
		if d.Severity != conf.Error {
			fmt.Fprintln(os.Stderr, d.String())
		}
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// Run runs the roles named by --roles until SIGINT or SIGTERM.
func Run(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("unknown command %q (see euca --help)", c.Args().First())
	}
	set, err := roles.Parse(c.String("roles"))
	if err != nil {
		return err
	}
	cfg, err := loadConf(c)
	if err != nil {
		return err
	}
	log := logging.Stderr(cfg.LogLevel)
	if c.Bool("log-files") {
		flog, closer, err := logging.Files(cfg.LogDir(), cfg.LogLevel)
		if err != nil {
			return err
		}
		defer closer.Close()
		log = flog
		fmt.Fprintf(os.Stderr, "euca: logging to %s\n", cfg.LogDir())
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return roles.Run(ctx, roles.Options{Roles: set, Conf: cfg, Log: log, Driver: c.String("driver"), KVMProbe: c.String("kvm-probe"), Version: c.App.Version,
		JoinToken: pki.Secret(c.String("join")), JoinServer: c.String("server")})
}

// ConfCheck prints the effective configuration and its diagnostics.
func ConfCheck(c *cli.Context) error {
	path := c.Args().First()
	if path == "" {
		path = confPath(c)
	}
	if path == "" {
		return errors.New("usage: euca conf check PATH")
	}
	cfg, diags, err := conf.Load(path)
	if cfg == nil {
		return err
	}
	conf.WriteReport(os.Stdout, cfg, diags)
	if err != nil {
		return cli.Exit("", 1)
	}
	return nil
}

// confPath finds --conf wherever it was given: urfave/cli answers a flag
// from the innermost command that defines it, even when it was only set on
// an outer one (euca --conf X credentials).
// urfave/cli also stops reading flags at the first argument, so a --conf
// written after one (euca account create bob --conf X) is found among the
// arguments rather than silently ignored.
func confPath(c *cli.Context) string {
	args := c.Args().Slice()
	for i, a := range args {
		switch {
		case (a == "--conf" || a == "-conf") && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--conf="):
			return strings.TrimPrefix(a, "--conf=")
		}
	}
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("conf") {
			return ctx.String("conf")
		}
	}
	return c.String("conf") // from EUCA_CONF
}

// operands are a command's arguments but --conf and its value, wherever
// --conf stands (urfave/cli stops reading flags at the first argument;
// confPath finds it there); any other flag is refused.
func operands(c *cli.Context) ([]string, error) {
	var out []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--conf" || a == "-conf":
			i++
		case strings.HasPrefix(a, "--conf="):
		case strings.HasPrefix(a, "-"):
			return nil, fmt.Errorf("unknown flag %s", a)
		default:
			out = append(out, a)
		}
	}
	return out, nil
}

// background is the context of one-shot admin commands.
func background(c *cli.Context) context.Context {
	if c.Context != nil {
		return c.Context
	}
	return context.Background()
}
