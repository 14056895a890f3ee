package cli

import "github.com/urfave/cli/v2"

// VMTypesCommand is `euca vmtypes` (placeholder until VM types are built).
func VMTypesCommand() *cli.Command {
	return &cli.Command{Name: "vmtypes", Usage: "list and change VM types", Hidden: true,
		Action: func(c *cli.Context) error { return cli.Exit("vmtypes: not built yet", 1) }}
}
