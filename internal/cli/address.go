package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/roles/clc"
)

// AddressCommand is `euca address`: the administrator's view of the public
// address pool (VNET_PUBLICIPS), what `euca-describe-addresses verbose`
// showed Eucalyptus's administrator. It reads the store beside a running
// cloud controller.
func AddressCommand() *cli.Command {
	list := &cli.Command{
		Name:  "list",
		Usage: "list the pool's public addresses with the account, allocation and instance holding each",
		Flags: []cli.Flag{ConfFlag()}, Action: AddressList,
	}
	return &cli.Command{
		Name:        "address",
		Usage:       "the public address pool (elastic IPs and addresses lent to instances)",
		Flags:       []cli.Flag{ConfFlag()},
		Subcommands: []*cli.Command{list},
		Action:      AddressList,
	}
}

// AddressList prints every address of the pool.
func AddressList(c *cli.Context) error {
	cloud, st, _, err := openCloud(c)
	if err != nil {
		return err
	}
	defer st.Close()
	pool, err := cloud.PoolView(background(c))
	if err != nil {
		return err
	}
	return writeAddresses(c.App.Writer, pool)
}

// writeAddresses prints the pool table. An address lent to an instance
// from the pool (not an allocation) shows "(lent)" as its allocation; a
// free one dashes.
func writeAddresses(out io.Writer, pool []clc.PoolAddress) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ADDRESS\tACCOUNT\tALLOCATION\tINSTANCE")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, a := range pool {
		account := a.AccountName
		if account != "" {
			account += " (" + a.AccountID + ")"
		}
		alloc := a.AllocationID
		if alloc == "" && a.InstanceID != "" {
			alloc = "(lent)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.PublicIP, dash(account), dash(alloc), dash(a.InstanceID))
	}
	return w.Flush()
}
