// Package simcloud starts, in one process, a whole cloud over many
// simulated hosts: a cloud controller, the cluster controller of its zone,
// and N node controllers (roles/nc) over the sim driver, each served on an
// endpoint of its own (ncapi over mutual TLS on 127.0.0.1:0, certificates
// from the cloud controller's CA), so that the cluster and cloud
// controllers are exercised as they would be by N real hosts: one
// connection, one TLS session and one poll per node. The scale test and the
// scheduling benchmarks (bench/sched) run on it.
//
// Each node has its own store, INSTANCE_PATH and image cache, as a host
// has; images come from memory through the node's image source (the
// instances boot nothing, so any bytes do).
package simcloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/sim"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/cc"
	"github.com/euca-cloud/euca/roles/cc/power"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// Options configure a simulated cloud.
type Options struct {
	Dir    string // everything is kept under it; required
	Nodes  int    // simulated hosts
	Policy string // SCHEDPOLICY; "" is GREEDY
	// Host is each host's size; zero fields are the sim driver's defaults.
	Host hypervisor.Resources
	// Local makes the first host the front-end's own node (cc.LocalNode),
	// which the cluster controller holds in process, as `euca --roles=all`
	// does; the others are reached over the node API, as joined hosts are.
	Local bool
	// Conf, when not nil, edits the cloud's configuration (the CLC's and
	// CC's; POWER_IDLETHRESH, ...) before anything starts.
	Conf func(*conf.Config)
	Log  *slog.Logger
}

// Cloud is a running simulated cloud.
type Cloud struct {
	CLC     *clc.Cloud
	Cluster *cc.Cluster
	Store   *store.Store // the cloud controller's (and cluster controller's)
	Admin   string       // the admin account's id
	Image   string       // an available machine image (emi-) with kernel and ramdisk
	Hosts   []*Host      // in NODES order

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Host is one simulated compute host.
type Host struct {
	// Name is its NODES entry's host ("sim-0001"); its node controller
	// listens on 127.0.0.1:Port, where the cluster controller's dialer
	// takes the name (as /etc/hosts would, for hosts of their own).
	Name   string
	Port   int
	Node   *nc.Node
	Driver *sim.Driver
	Store  *store.Store
	srv    *http.Server
	ln     net.Listener
}

// Kill stops the host's node controller listener and every connection to
// it, as a host that dies: the next poll finds nothing there.
func (h *Host) Kill() { h.srv.Close() }

// FilesPerHost is about how many file descriptors each host takes (its
// store's connections and journal, its listener, the two ends of the
// cluster controller's connection): what Start checks RLIMIT_NOFILE for.
const FilesPerHost = 16

// RaiseFileLimit raises RLIMIT_NOFILE's soft limit to its hard limit and
// reports whether it allows need descriptors.
func RaiseFileLimit(need int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return err
		}
	}
	if rl.Cur < uint64(need) {
		return fmt.Errorf("simcloud: RLIMIT_NOFILE is %d, %d hosts need about %d (raise the hard limit: ulimit -Hn)", rl.Cur, need/FilesPerHost, need)
	}
	return nil
}

// Start starts the cloud: the hosts, then the cluster controller over
// them, then the cloud controller. Close stops it.
func Start(ctx context.Context, o Options) (_ *Cloud, err error) {
	if o.Dir == "" || o.Nodes < 1 {
		return nil, errors.New("simcloud: a directory and at least one node are needed")
	}
	if err := RaiseFileLimit(o.Nodes*FilesPerHost + 256); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := conf.Defaults()
	cfg.Home = filepath.Join(o.Dir, "frontend")
	if o.Policy != "" {
		cfg.SchedPolicy = o.Policy
	}
	if o.Conf != nil {
		o.Conf(cfg)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Cloud{cancel: cancel}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.Store, err = store.Open(ctx, cfg.DataDir())
	if err != nil {
		return nil, err
	}
	c.CLC, err = clc.New(ctx, cfg, c.Store, log.With("role", "clc"))
	if err != nil {
		return nil, err
	}
	admin, err := c.Store.AccountByName(ctx, clc.AdminAccount)
	if err != nil {
		return nil, err
	}
	c.Admin = admin.ID
	images, err := c.images(ctx)
	if err != nil {
		return nil, err
	}

	ca := c.CLC.CA()
	srvCert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	lim := httplimit.Defaults()
	c.Hosts = make([]*Host, o.Nodes)
	errs := make([]error, o.Nodes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // stores open in parallel, a few at a time
	for i := range c.Hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("sim-%04d", i)
			if o.Local && i == 0 {
				name = cc.LocalNode
			}
			c.Hosts[i], errs[i] = c.startHost(ctx, runCtx, name, filepath.Join(o.Dir, name), o.Host, images, lim, srvCert, log)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	ccCert, err := ca.IssueClient("cc:" + cfg.ClusterName)
	if err != nil {
		return nil, err
	}
	sw := power.Hosts{}
	cfg.Nodes = nil
	for _, h := range c.Hosts {
		sw[h.Name] = h.Driver
		if h.Name == cc.LocalNode {
			cfg.Nodes = append(cfg.Nodes, cc.LocalNode)
			continue
		}
		cfg.Nodes = append(cfg.Nodes, net.JoinHostPort(h.Name, strconv.Itoa(h.Port)))
	}
	dial := func(host string, port int) (ncapi.Node, error) {
		if host == cc.LocalNode && o.Local {
			return c.Hosts[0].Node, nil
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return ncapi.NewClient(rpc.NewClient(addr, ca, ccCert, true, log.With("role", "cc"))), nil
	}
	c.Cluster, err = cc.New(ctx, cfg, c.Store, dial, nil, log.With("role", "cc"))
	if err != nil {
		return nil, err
	}
	c.Cluster.SetPower(sw)
	c.CLC.SetCluster(c.Cluster)
	c.CLC.SetCapacity(cc.NewReporter(c.Store, log.With("role", "cc"), c.Cluster))
	c.background(runCtx, c.Cluster.Run)
	c.background(runCtx, c.CLC.Run)
	return c, nil
}

// startHost starts one host's node controller and serves it.
func (c *Cloud) startHost(ctx, runCtx context.Context, name, dir string, size hypervisor.Resources, images nc.ImageSource,
	lim httplimit.Config, cert tls.Certificate, log *slog.Logger) (*Host, error) {
	cfg := conf.Defaults()
	cfg.Home = dir
	cfg.InstancePath = filepath.Join(dir, "instances")
	cfg.SwapSizeMB = 0
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		return nil, err
	}
	drv, err := sim.New(ctx, sim.Options{Dir: filepath.Join(dir, "sim"), Capacity: size})
	if err != nil {
		st.Close()
		return nil, err
	}
	node, err := nc.New(ctx, cfg, st, drv, images, log.With("role", "nc"))
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	h := &Host{Name: name, Port: ln.Addr().(*net.TCPAddr).Port, Node: node, Driver: drv, Store: st, ln: ln}
	h.srv = rpc.NewServer(c.CLC.CA(), cert, true, ncapi.NewHandler(node, log.With("role", "nc")), lim, log.With("role", "nc"))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = rpc.Serve(h.srv, ln)
	}()
	c.background(runCtx, node.Run)
	return h, nil
}

func (c *Cloud) background(ctx context.Context, f func(context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_ = f(ctx)
	}()
}

// images records a kernel, a ramdisk and a machine image in the cloud's
// store, as a registration leaves them, and returns the source the nodes
// read them from.
func (c *Cloud) images(ctx context.Context) (nc.ImageSource, error) {
	blobs := map[string][]byte{}
	add := func(prefix string, kind string, body []byte, kernel, ramdisk string) (string, error) {
		id := ids.New(prefix)
		sum := sha256.Sum256(body)
		blobs[id] = body
		return id, c.Store.CreateImage(ctx, store.Image{ID: id, AccountID: c.Admin, Kind: kind, Name: id,
			Location: "sim/" + id + ".manifest.xml", Architecture: "x86_64", KernelID: kernel, RamdiskID: ramdisk,
			State: store.ImageAvailable, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(body))})
	}
	eki, err := add("eki", store.ImageKernel, []byte("a simulated kernel"), "", "")
	if err != nil {
		return nil, err
	}
	eri, err := add("eri", store.ImageRamdisk, []byte("a simulated ramdisk"), "", "")
	if err != nil {
		return nil, err
	}
	c.Image, err = add("emi", store.ImageMachine, bytes.Repeat([]byte{0}, 64<<10), eki, eri)
	if err != nil {
		return nil, err
	}
	return nc.ImageSourceFunc(func(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
		b, ok := blobs[ref.ID]
		if !ok {
			return nil, fmt.Errorf("simcloud: no image %s", ref.ID)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}), nil
}

// Close stops everything and closes the stores.
func (c *Cloud) Close() {
	c.cancel()
	for _, h := range c.Hosts {
		if h != nil {
			h.srv.Close()
		}
	}
	c.wg.Wait()
	for _, h := range c.Hosts {
		if h != nil {
			h.Store.Close()
		}
	}
	if c.Store != nil {
		c.Store.Close()
	}
}
