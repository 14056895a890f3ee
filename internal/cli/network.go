package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/drivers"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
)

// NetworkCommand is `euca network flush`: remove the cluster network a
// stopped cloud leaves on this host. A stop keeps it on purpose (guests
// outlive a stop and keep their network); this is the way to take it down
// once no guest needs it.
func NetworkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "manage this host's cluster network",
		Subcommands: []*cli.Command{{
			Name: "flush",
			Usage: "remove what the cluster network made on this host: the euca- bridges, VXLAN and VLAN devices and taps, " +
				"the nftables tables inet euca and euca-node, its addresses (root; refused while instances of this host run)",
			Flags:  []cli.Flag{ConfFlag()},
			Action: NetworkFlush,
		}},
	}
}

// NetworkFlush removes this host's cluster network with the network mode's
// own teardown (netmode.Mode.Close: everything carrying the project's
// names), after asking the hypervisor that no instance of this host runs:
// a guest would lose its network.
func NetworkFlush(c *cli.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("network flush: must run as root (bridges and nftables)")
	}
	cfg, err := loadConf(c)
	if err != nil {
		return err
	}
	ctx := background(c)
	running, err := runningInstances(ctx, c.String("driver"), cfg)
	if err != nil {
		return fmt.Errorf("network flush: cannot tell whether instances of this host run: %w", err)
	}
	if len(running) > 0 {
		return fmt.Errorf("network flush: refused: instances of this host still run (%s): terminate them first (aws ec2 terminate-instances --instance-ids %s)",
			strings.Join(running, ", "), strings.Join(running, " "))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	mode, err := netmode.FromConf(cfg, log)
	if err != nil {
		return err
	}
	if err := mode.Close(ctx); err != nil {
		return fmt.Errorf("network flush: %w", err)
	}
	// The node's guard of its guests' ports (package guestport), the
	// bridge table: no guest runs, so none is left unguarded.
	nc, err := nftables.New()
	if err == nil {
		err = nft.RemovePorts(nc)
	}
	if err != nil {
		return fmt.Errorf("network flush: %w", err)
	}
	return nil
}

// runningInstances lists the instances whose guests run on this host: the
// driver's domains whose files lie under INSTANCE_PATH (other clouds' and
// anyone else's guests on the same libvirtd are not this host's cloud's).
func runningInstances(ctx context.Context, driver string, cfg *conf.Config) ([]string, error) {
	if driver == "" {
		driver = drivers.Default
	}
	// Listing needs no accelerator: naming one skips HYPERVISOR=auto's
	// KVM probe.
	drv, err := drivers.Load(ctx, driver, drivers.Config{Hypervisor: "qemu", InstancePath: cfg.InstancePath,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer drv.Close()
	doms, err := drv.List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range doms {
		if d.State.Active() || d.State == hypervisor.Unknown {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}
