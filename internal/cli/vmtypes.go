package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/store"
)

// VMTypesCommand is `euca vmtypes`: list the VM types, or change one with
// `euca vmtypes set NAME --cpus N --memory MB --disk GB` (what Eucalyptus's
// web console did). Types keep their order: a change that would make a
// larger type smaller than a smaller one is refused.
func VMTypesCommand() *cli.Command {
	list := &cli.Command{
		Name: "list", Usage: "list VM types, smallest first",
		Flags: []cli.Flag{ConfFlag()}, Action: VMTypesList,
	}
	return &cli.Command{
		Name:  "vmtypes",
		Usage: "list and change VM types (instance types)",
		Flags: []cli.Flag{ConfFlag()},
		Subcommands: []*cli.Command{
			list,
			{
				Name:      "set",
				Usage:     "change a VM type's cores, memory or disk (unset values are kept)",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					ConfFlag(),
					&cli.IntFlag{Name: "cpus", Usage: "virtual CPUs (cores)"},
					&cli.IntFlag{Name: "memory", Usage: "memory in MB"},
					&cli.IntFlag{Name: "disk", Usage: "disk in GB"},
				},
				Action: VMTypesSet,
			},
		},
		Action: VMTypesList,
	}
}

// VMTypesList prints the VM types.
func VMTypesList(c *cli.Context) error {
	cloud, st, _, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	types, err := cloud.VMTypes(background(c))
	if err != nil {
		return err
	}
	return writeVMTypes(c.App.Writer, types)
}

func writeVMTypes(out io.Writer, types []store.VMType) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCPUS\tMEMORY(MB)\tDISK(GB)")
	for _, t := range types {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", t.Name, t.Cores, t.MemoryMB, t.DiskGB)
	}
	return w.Flush()
}

// VMTypesSet changes one VM type and prints the result.
func VMTypesSet(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) == 0 {
		return errors.New("usage: euca vmtypes set NAME [--cpus N] [--memory MB] [--disk GB]")
	}
	name := args[0]
	sizes := map[string]int{}
	for _, f := range []string{"cpus", "memory", "disk"} {
		if c.IsSet(f) {
			sizes[f] = c.Int(f)
		}
	}
	// urfave/cli stops at the first argument, so flags written after NAME
	// (the natural order) arrive as arguments: read them here.
	if len(args) > 1 {
		fs := flag.NewFlagSet("vmtypes set", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cpus := fs.Int("cpus", 0, "")
		memory := fs.Int("memory", 0, "")
		disk := fs.Int("disk", 0, "")
		confPath := fs.String("conf", "", "")
		if err := fs.Parse(args[1:]); err != nil {
			return fmt.Errorf("vmtypes set: %w", err)
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("vmtypes set: unexpected %q (one VM type at a time)", fs.Arg(0))
		}
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "conf" {
				sizes[f.Name] = map[string]int{"cpus": *cpus, "memory": *memory, "disk": *disk}[f.Name]
			}
		})
		if *confPath != "" {
			if err := c.Set("conf", *confPath); err != nil {
				return err
			}
		}
	}
	if len(sizes) == 0 {
		return errors.New("vmtypes set: give at least one of --cpus, --memory, --disk")
	}
	for f, v := range sizes {
		if v <= 0 {
			return fmt.Errorf("vmtypes set: --%s must be positive, not %d", f, v)
		}
	}
	cloud, st, _, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := background(c)
	types, err := cloud.VMTypes(ctx)
	if err != nil {
		return err
	}
	cur := store.VMType{Name: name}
	for _, t := range types {
		if t.Name == name {
			cur = t
		}
	}
	cores, memory, disk := cur.Cores, cur.MemoryMB, cur.DiskGB
	if v, ok := sizes["cpus"]; ok {
		cores = v
	}
	if v, ok := sizes["memory"]; ok {
		memory = v
	}
	if v, ok := sizes["disk"]; ok {
		disk = v
	}
	t, err := cloud.SetVMType(ctx, name, cores, memory, disk)
	if err != nil {
		return err
	}
	return writeVMTypes(c.App.Writer, []store.VMType{t})
}
