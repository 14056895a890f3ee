package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/cc"
	"github.com/euca-cloud/euca/store"
)

// NodeCommand is `euca node`: the cluster's node registry, as Eucalyptus's
// `euca_conf --register-nodes`, `--deregister-nodes` and `--list-nodes`
// kept it. It writes the store beside a running cluster controller, which
// picks a change up at its next poll round (within seconds; a
// deregistration leaves the capacity totals at the next look).
func NodeCommand() *cli.Command {
	zone := &cli.StringFlag{Name: "zone", Usage: "the cluster (availability zone) of the nodes (default: CLUSTER_NAME)"}
	return &cli.Command{
		Name:  "node",
		Usage: "register, deregister and list a cluster's nodes (compute hosts)",
		Subcommands: []*cli.Command{
			{
				Name: "register", ArgsUsage: "HOST[:PORT]...",
				Usage: "add nodes to the cluster (PORT defaults to NC_PORT); the cluster controller polls them within seconds",
				Flags: []cli.Flag{ConfFlag(), zone}, Action: NodeRegister,
			},
			{
				Name: "deregister", ArgsUsage: "HOST...",
				Usage: "remove nodes from the cluster: their capacity leaves at once; their instances show unreachable until the node is registered again",
				Flags: []cli.Flag{ConfFlag(), zone}, Action: NodeDeregister,
			},
			{
				Name:  "list",
				Usage: "list the registered nodes with their state as the cluster controller last polled it",
				Flags: []cli.Flag{ConfFlag(), zone}, Action: NodeList,
			},
			NodeRevokeCommand(),
		},
	}
}

// nodeArgs reads the hosts of a node command and its --zone, which may
// also come after the hosts (urfave/cli stops reading flags at the first
// argument; confPath finds --conf there).
func nodeArgs(c *cli.Context, cfg *conf.Config) (hosts []string, zone string, err error) {
	zone = c.String("zone")
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--conf" || a == "-conf" || a == "--zone" || a == "-zone":
			if i+1 >= len(args) {
				return nil, "", fmt.Errorf("%s needs a value", a)
			}
			if strings.HasSuffix(a, "zone") {
				zone = args[i+1]
			}
			i++
		case strings.HasPrefix(a, "--conf="):
		case strings.HasPrefix(a, "--zone="):
			zone = strings.TrimPrefix(a, "--zone=")
		case strings.HasPrefix(a, "-"):
			return nil, "", fmt.Errorf("unknown flag %s", a)
		default:
			hosts = append(hosts, a)
		}
	}
	if zone == "" {
		zone = cfg.ClusterName
	}
	return hosts, zone, nil
}

// openNodes opens the configuration and the store for a node command.
func openNodes(c *cli.Context) (*store.Store, *conf.Config, []string, string, error) {
	cfg, err := loadConf(c)
	if err != nil {
		return nil, nil, nil, "", err
	}
	hosts, zone, err := nodeArgs(c, cfg)
	if err != nil {
		return nil, nil, nil, "", err
	}
	st, err := store.Open(background(c), cfg.DataDir())
	if err != nil {
		return nil, nil, nil, "", err
	}
	return st, cfg, hosts, zone, nil
}

// NodeRegister adds nodes to a cluster. Every host is checked before any is
// registered; one registered already keeps its registration (its port
// changes when another is given).
func NodeRegister(c *cli.Context) error {
	st, cfg, hosts, zone, err := openNodes(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(hosts) == 0 {
		return errors.New("usage: euca node register HOST[:PORT]...")
	}
	type node struct {
		host string
		port int
	}
	var nodes []node
	for _, h := range hosts {
		host, port, err := cc.ParseNode(h, cfg.NCPort)
		if err != nil {
			return fmt.Errorf("node register: %w", err)
		}
		nodes = append(nodes, node{host, port})
	}
	out := c.App.Writer
	for _, n := range nodes {
		added, err := st.RegisterCCNode(background(c), zone, n.host, n.port)
		if err != nil {
			return err
		}
		what := "registered"
		if !added {
			what = "already registered"
		}
		fmt.Fprintf(out, "node %s:%d %s in %s\n", n.host, n.port, what, zone)
	}
	return nil
}

// NodeDeregister removes nodes from a cluster; a host that is not
// registered is an error (the others are still removed).
func NodeDeregister(c *cli.Context) error {
	st, cfg, hosts, zone, err := openNodes(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(hosts) == 0 {
		return errors.New("usage: euca node deregister HOST...")
	}
	var errs []error
	for _, h := range hosts {
		host, _, err := cc.ParseNode(h, cfg.NCPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("node deregister: %w", err))
			continue
		}
		err = st.DeregisterCCNode(background(c), zone, host)
		if errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("node %s is not registered in %s (euca node list)", host, zone))
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "node %s deregistered from %s\n", host, zone)
	}
	return errors.Join(errs...)
}

// NodeList prints the registered nodes of the zone (--zone), or of every
// zone, with their last polled status.
func NodeList(c *cli.Context) error {
	st, _, hosts, _, err := openNodes(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(hosts) > 0 {
		return fmt.Errorf("node list: unexpected %q", hosts[0])
	}
	zone := c.String("zone")
	nodes, err := st.CCNodes(background(c), zone)
	if err != nil {
		return err
	}
	sts, err := st.CCNodeStatuses(background(c), zone)
	if err != nil {
		return err
	}
	return writeNodes(c.App.Writer, nodes, sts, time.Now())
}

// writeNodes prints the node table: free/total for cores, memory (MiB)
// and disk (GiB), as `euca-describe-availability-zones verbose` counts them.
func writeNodes(out io.Writer, nodes []store.CCNode, sts map[store.CCNodeKey]store.CCNodeStatus, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ZONE\tHOST\tSTATE\tCORES\tMEMORY(MB)\tDISK(GB)\tINSTANCES\tLAST SEEN\tVERSION")
	for _, n := range nodes {
		s, ok := sts[store.CCNodeKey{Zone: n.Zone, Host: n.Host}]
		host := n.Host + ":" + strconv.Itoa(n.Port)
		if !ok {
			fmt.Fprintf(w, "%s\t%s\tunknown\t-\t-\t-\t-\tnever\t-\n", n.Zone, host)
			continue
		}
		state := "up"
		switch {
		case !s.Up && s.Error == store.CCNodeAsleep:
			state = "asleep"
		case !s.Up:
			state = "down"
		}
		seen := "never"
		if s.LastSeenMS > 0 {
			t := store.Time(s.LastSeenMS)
			seen = t.Format("2006-01-02 15:04:05Z") + " (" + ago(now.Sub(t)) + ")"
		}
		version := s.Version
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%d/%d\t%d/%d\t%d\t%s\t%s\n", n.Zone, host, state,
			s.CoresFree, s.CoresMax, s.MemoryFree, s.MemoryMax, s.DiskFree, s.DiskMax, s.Instances, seen, version)
	}
	return w.Flush()
}

// ago is a duration as a person reads it: 4s ago, 3m ago, 2h ago.
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}
