// Command euca is a private cloud in one binary: the roles of Eucalyptus
// (cloud controller, Walrus, storage controller, cluster controller, node
// controller) in any mix, driven by the AWS tools people already use.
//
//	euca --roles=all                    everything on one host
//	euca --roles=clc,cc --conf FILE     a front-end
//	euca --roles=nc --join TOKEN --server HOST:PORT
//	                                    a compute host, the first time
//	euca --roles=nc                     a compute host
//
// This file only declares the command line; each command's work is in
// internal/cli, and the roles themselves in roles/.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	ecli "github.com/euca-cloud/euca/internal/cli"
)

// version is stamped by the Makefile (-ldflags -X main.version=...).
var version = "dev"

func main() {
	app := &cli.App{
		Name:    "euca",
		Usage:   "a private EC2/S3-compatible cloud in the line of Eucalyptus",
		Version: version,
		Flags: []cli.Flag{
			ecli.ConfFlag(),
			&cli.StringFlag{Name: "roles", Value: "all", EnvVars: []string{"EUCA_ROLES"},
				Usage: "roles to run: clc, walrus, sc, cc, nc; aliases storage (walrus,sc) and all"},
			&cli.StringFlag{Name: "driver", Value: "libvirt", Usage: "the node controller's hypervisor driver: libvirt, or sim (no guests, for scale tests)"},
			&cli.StringFlag{Name: "kvm-probe", Usage: "directory with vmlinuz and initrd.img of a guest that proves KVM works before HYPERVISOR=auto uses it (make guest-image: build/guest)"},
			&cli.StringFlag{Name: "join", EnvVars: []string{"EUCA_JOIN_TOKEN"}, Usage: "join the cloud with this token (from `euca token create` on the front-end) the first time this host starts; afterwards it starts from the certificate it got (JOIN_TOKEN in eucalyptus.conf)"},
			&cli.StringFlag{Name: "server", Usage: "the front-end's HOST:PORT (its CLOUD_PORT) to join and fetch images from (JOIN_SERVER in eucalyptus.conf)"},
			&cli.BoolFlag{Name: "log-files", Usage: "log to $EUCALYPTUS/var/log/eucalyptus/ (cloud-output.log, cloud-debug.log, cloud-error.log, cc.log, nc.log) instead of stderr, as a service does"},
		},
		Action: ecli.Run,
		Commands: []*cli.Command{
			{
				Name:   "version",
				Usage:  "print the version",
				Action: func(c *cli.Context) error { fmt.Println("euca", version); return nil },
			},
			{
				Name:  "conf",
				Usage: "inspect eucalyptus.conf",
				Subcommands: []*cli.Command{{
					Name:      "check",
					Usage:     "print the effective configuration (every key, its value and source) and all warnings; exit 1 on errors",
					ArgsUsage: "[PATH]",
					Flags:     []cli.Flag{ecli.ConfFlag()},
					Action:    ecli.ConfCheck,
				}},
			},
			{
				Name:  "credentials",
				Usage: "write an account's credentials bundle (eucarc, keys, certificates) as a zip",
				Flags: []cli.Flag{
					ecli.ConfFlag(),
					&cli.StringFlag{Name: "account", Value: "admin", Usage: "account name"},
					&cli.StringFlag{Name: "zip", Required: true, Usage: "zip file to write"},
					&cli.StringFlag{Name: "host", Usage: "host name or address clients reach the cloud at (default: VNET_CLOUDIP, else 127.0.0.1)"},
				},
				Action: ecli.Credentials,
			},
			{
				Name:  "account",
				Usage: "manage accounts",
				Subcommands: []*cli.Command{
					{
						Name: "create", Usage: "add an account", ArgsUsage: "NAME",
						Flags: []cli.Flag{ecli.ConfFlag()}, Action: ecli.AccountCreate,
					},
					{
						Name: "list", Usage: "list accounts",
						Flags: []cli.Flag{ecli.ConfFlag()}, Action: ecli.AccountList,
					},
				},
			},
			ecli.VMTypesCommand(),
			ecli.NetworkCommand(),
			ecli.NodeCommand(),
			ecli.AddressCommand(),
			ecli.TokenCommand(),
			ecli.ClusterCommand(),
		},
	}
	app.Commands = append(app.Commands, ecli.BundleCommands()...)
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "euca:", err)
		os.Exit(1)
	}
}
