package cli

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/store"
)

// ClusterCommand is `euca cluster`: the cloud's clusters, each an
// availability zone, as Eucalyptus's console added them (Add Cluster: a
// name and the cluster controller's host). It writes the store beside a
// running cloud controller, which connects a new cluster within seconds and
// gives every account a default subnet in its zone.
func ClusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "register, deregister and list the clusters (availability zones) the cloud controller reaches",
		Subcommands: []*cli.Command{
			{
				Name: "register", ArgsUsage: "NAME HOST[:PORT]",
				Usage: "add the cluster controller at HOST (PORT defaults to CC_PORT) as availability zone NAME, its CLUSTER_NAME",
				Flags: []cli.Flag{ConfFlag()}, Action: ClusterRegister,
			},
			{
				Name: "deregister", ArgsUsage: "NAME",
				Usage: "stop using a cluster: its zone goes; its instances stay recorded until it is registered again",
				Flags: []cli.Flag{ConfFlag()}, Action: ClusterDeregister,
			},
			{
				Name:  "list",
				Usage: "list the registered clusters",
				Flags: []cli.Flag{ConfFlag()}, Action: ClusterList,
			},
		},
	}
}

// zoneName is an availability zone's shape, as CLUSTER_NAME takes it.
var zoneName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// openClusters reads a cluster command's operands, which check may
// refuse, then the configuration, and opens the store.
func openClusters(c *cli.Context, check func(args []string) error) (*store.Store, *conf.Config, []string, error) {
	args, err := operands(c)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := check(args); err != nil {
		return nil, nil, nil, err
	}
	cfg, err := loadConf(c)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := store.Open(background(c), cfg.DataDir())
	if err != nil {
		return nil, nil, nil, err
	}
	return st, cfg, args, nil
}

// parseClusterHost reads HOST[:PORT] of a cluster controller.
func parseClusterHost(s string, defPort int) (string, int, error) {
	if strings.Contains(s, "/") {
		return "", 0, fmt.Errorf("cluster host %q: want HOST or HOST:PORT (a host name or an IP address), not a URL", s)
	}
	host, port := s, defPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("cluster host %q: port %q is not a number from 1 to 65535", s, p)
		}
		host, port = h, n
	} else if strings.Count(s, ":") > 1 {
		host = strings.Trim(s, "[]")
	}
	if host == "" || strings.ContainsAny(host, " \t/@?#\"'[]") || strings.HasPrefix(host, "-") {
		return "", 0, fmt.Errorf("cluster host %q: want HOST or HOST:PORT (a host name or an IP address)", s)
	}
	return host, port, nil
}

// ClusterRegister adds a cluster.
func ClusterRegister(c *cli.Context) error {
	st, cfg, args, err := openClusters(c, func(args []string) error {
		if len(args) != 2 {
			return errors.New("usage: euca cluster register NAME HOST[:PORT]")
		}
		if !zoneName.MatchString(args[0]) {
			return fmt.Errorf("cluster name %q: not an availability zone name (lowercase letters, digits and dashes, like us-east-1b)", args[0])
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer st.Close()
	name := args[0]
	host, port, err := parseClusterHost(args[1], cfg.CCPort)
	if err != nil {
		return err
	}
	added, err := st.RegisterCluster(background(c), store.Cluster{Name: name, Host: host, Port: port})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w; to move it, `euca cluster deregister %s` first", err, name)
	}
	if err != nil {
		return err
	}
	what := "registered"
	if !added {
		what = "already registered"
	}
	fmt.Fprintf(c.App.Writer, "cluster %s at %s %s\n", name, net.JoinHostPort(host, strconv.Itoa(port)), what)
	if name == cfg.ClusterName {
		fmt.Fprintf(c.App.Writer, "note: %s is this host's CLUSTER_NAME; a cluster controller running in the front-end's own process serves it instead\n", name)
	}
	return nil
}

// ClusterDeregister removes a cluster.
func ClusterDeregister(c *cli.Context) error {
	st, _, args, err := openClusters(c, func(args []string) error {
		if len(args) != 1 {
			return errors.New("usage: euca cluster deregister NAME")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.DeregisterCluster(background(c), args[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cluster %s is not registered (euca cluster list)", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "cluster %s deregistered\n", args[0])
	return nil
}

// ClusterList prints the registered clusters; the front-end's own
// (CLUSTER_NAME, when it runs the cc role) is not among them.
func ClusterList(c *cli.Context) error {
	st, _, _, err := openClusters(c, func(args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("cluster list: unexpected %q", args[0])
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Clusters(background(c))
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tHOST\tPORT\tREGISTERED")
	for _, cl := range list {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", cl.Name, cl.Host, cl.Port, store.Time(cl.RegisteredMS).Format("2006-01-02 15:04:05Z"))
	}
	return w.Flush()
}
