// Package roles decides which of euca's roles run in this process, starts
// them over one shared store and one edge listener, and stops them cleanly.
//
// Start order follows the dependencies: the store; the cloud controller (it
// owns accounts, so every API's signature check needs it); Walrus and its
// image cache; the node controller over its hypervisor driver; the cluster
// controller over its nodes and network mode, handed to the cloud
// controller; then the listeners (the edge on CLOUD_PORT, the metadata
// service on METADATA_PORT). Stopping runs the other way: listeners close,
// background loops end, the store closes last. Guests and the kernel's
// network state outlive a stop: the next start adopts them.
//
// A node controller may run alone on a compute host (join.go): it joins
// the cloud with a token once, serves the node API on NC_PORT over mutual
// TLS and fetches images from the front-end's CLOUD_PORT, whose TLS side
// (told apart from the public APIs' plain HTTP by the first byte) serves
// joining, renewal and Walrus's images. A cluster controller may run on a
// host of its own too (clusters.go), with or without node controllers
// beside it: it joins likewise and serves the cluster API on CC_PORT; the
// cloud controller reaches the clusters registered in its store. Walrus
// may too (walrus.go): it serves S3 and checks signatures against the
// cloud controller's accounts over its internal API. Other mixes that need
// a role elsewhere are refused at start. A role that is not built yet is
// refused by name rather than pretended.
package roles

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/euca-cloud/euca/ec2api"
	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/drivers"
	"github.com/euca-cloud/euca/hypervisor/libvirt"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/edge"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/iamapi"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/guestport"
	"github.com/euca-cloud/euca/netmode/nodenet"
	"github.com/euca-cloud/euca/roles/cc"
	"github.com/euca-cloud/euca/roles/cc/power"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus"
	"github.com/euca-cloud/euca/walrus/images"
)

// Role names.
const (
	CLC    = "clc"
	CC     = "cc"
	NC     = "nc"
	Walrus = "walrus"
	SC     = "sc"
)

// all is every role, in start order.
var all = []string{CLC, Walrus, SC, CC, NC}

// aliases expand to several roles.
var aliases = map[string][]string{
	"all":     all,
	"storage": {Walrus, SC},
}

// built says which roles this build can run; the others are refused at
// start-up with the reason.
var built = map[string]bool{CLC: true, Walrus: true, SC: true, CC: true, NC: true}

// Set is a set of role names.
type Set map[string]bool

// Parse reads a comma-separated role list with aliases.
func Parse(list string) (Set, error) {
	s := Set{}
	for _, f := range strings.Split(list, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if ex, ok := aliases[f]; ok {
			for _, r := range ex {
				// "all" is every role this build has; a role named in any
				// other way must be built (Unbuilt says so).
				if f != "all" || built[r] {
					s[r] = true
				}
			}
			continue
		}
		known := false
		for _, r := range all {
			if r == f {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("unknown role %q (roles: %s; aliases: all, storage)", f, strings.Join(all, ", "))
		}
		s[f] = true
	}
	if len(s) == 0 {
		return nil, errors.New("no roles given (for example --roles=all)")
	}
	return s, nil
}

// String lists the set in start order.
func (s Set) String() string {
	var out []string
	for _, r := range all {
		if s[r] {
			out = append(out, r)
		}
	}
	return strings.Join(out, ",")
}

// Unbuilt returns the roles of s this build cannot run yet.
func (s Set) Unbuilt() []string {
	var out []string
	for r := range s {
		if !built[r] {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// Options configure Run.
type Options struct {
	Roles Set
	Conf  *conf.Config
	Log   *slog.Logger
	// Driver names the node controller's hypervisor driver ("" is libvirt;
	// "sim" runs no guests, for scale tests).
	Driver string
	// KVMProbe is a directory holding vmlinuz and initrd.img of a guest
	// that proves KVM works before HYPERVISOR=auto uses it (make
	// guest-image builds one); "" lets auto fall back to emulation.
	KVMProbe string
	// Ready, when not nil, receives the listener's address once serving.
	Ready chan<- net.Addr
	// Version is the euca version this binary runs (main's, stamped by the
	// Makefile); a node reports it to its cluster (euca node list).
	Version string
	// JoinToken and JoinServer (--join, --server) let a host on its own
	// join the cloud; empty, JOIN_TOKEN and JOIN_SERVER of the
	// configuration apply.
	JoinToken  pki.Secret
	JoinServer string
	// Limits bound the listeners' clients; the zero value means
	// httplimit.Defaults (tests give shorter timeouts).
	Limits httplimit.Config
}

// Run starts the roles and blocks until ctx is cancelled, then stops them.
func Run(ctx context.Context, o Options) error {
	if missing := o.Roles.Unbuilt(); len(missing) > 0 {
		return fmt.Errorf("role %s is not built yet in this version of euca; run the roles that are (%s)", strings.Join(missing, ", "), builtList())
	}
	roles, err := withoutEBS(o.Roles, o.Conf, o.Log) // sc.go
	if err != nil {
		return err
	}
	o.Roles = roles
	// Refuse a mix that could not work rather than start half a cloud.
	for _, dep := range []struct{ role, needs string }{{NC, CC}, {NC, Walrus}, {SC, CLC}, {SC, Walrus}} {
		// A node or cluster host on its own joins the cloud and fetches
		// images from the front-end (join.go, clusters.go).
		if o.Roles[dep.role] && !o.Roles[dep.needs] && !(dep.role == NC && (nodeAlone(o.Roles) || clusterAlone(o.Roles))) {
			return fmt.Errorf("role %s needs role %s in the same process (for example --roles=all)", dep.role, dep.needs)
		}
	}
	cfg, log := o.Conf, o.Log
	if o.Limits == (httplimit.Config{}) {
		o.Limits = httplimit.Defaults()
	}
	// One count of connections for all the listeners: a client's
	// connections count together, and they share the open-files budget.
	conns := httplimit.NewConns(o.Limits, log)
	st, err := store.Open(ctx, cfg.DataDir())
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("store open", "path", st.Path(), "schema", store.SchemaVersion())

	// Background loops (reconcilers, pollers) run until ctx ends; Run
	// waits for all of them before it closes what they use. A start that
	// fails half way cancels the loops already started (cancel runs before
	// the wait: defers run last first).
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	background := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				log.Error("background loop stopped", "loop", name, "err", err)
			}
		}()
	}

	router := &edge.Router{}
	var cloud *clc.Cloud
	if o.Roles[CLC] {
		cloud, err = clc.New(ctx, cfg, st, log.With("role", CLC))
		if err != nil {
			return err
		}
		router.EC2 = ec2api.New(cloud, cloud, log.With("role", CLC))
		router.STS = iamapi.NewSTS(cloud, log.With("role", CLC))
		router.IAM = iamapi.NewIAM(cloud, cloud, log.With("role", CLC))
	}
	var imgs *images.Service
	var s3 *walrus.Walrus
	if o.Roles[Walrus] {
		keys, err := walrusKeys(ctx, o, cloud, background) // walrus.go
		if err != nil {
			return err
		}
		s3, err = walrus.New(ctx, walrus.Options{Conf: cfg, Store: st, Keys: keys, Log: log.With("role", Walrus)})
		if err != nil {
			return err
		}
		router.S3 = s3
	}
	if o.Roles[Walrus] && cloud != nil {
		// The storage side of images: bundles read for RegisterImage, and
		// the decrypted image cache nodes download from.
		imgs, err = images.New(ctx, images.Options{Conf: cfg, Store: st, CloudKey: cloud.CA().Key, Log: log.With("role", Walrus)})
		if err != nil {
			return err
		}
		cloud.SetBundleSource(imgs)
	}
	if o.Roles[SC] {
		if _, err := startStorage(ctx, o, st, cloud, s3, background); err != nil { // sc.go
			return err
		}
	}
	var node *nc.Node
	var alone *remoteNode  // a node on a host of its own (join.go)
	var ccHost *remoteNode // a cluster on a host of its own (clusters.go)
	if clusterAlone(o.Roles) {
		if ccHost, err = joinHost(ctx, o, CC, background); err != nil {
			return err
		}
	}
	if o.Roles[NC] {
		// The node fetches images from Walrus over an authenticated
		// internal request (mutual TLS from the cloud's CA), even in one
		// process: the same path a node on another host takes.
		var src nc.ImageSource
		switch {
		case nodeAlone(o.Roles):
			alone, err = joinNode(ctx, o, background)
			if alone != nil {
				src = alone.images
			}
		case ccHost != nil: // beside its cluster, under the cluster's identity
			src = ccHost.images
		default:
			src, err = internalImages(cloud, imgs, o, conns, background)
		}
		if err != nil {
			return err
		}
		var relay netip.AddrPort
		var relayed atomic.Pointer[nc.Node] // set before a guest can be accepted, so before the relay hears from one
		if alone != nil {
			relay, err = serveNodeMetadataRelay(alone, o, conns, func(a netip.Addr) bool {
				n := relayed.Load()
				return n != nil && n.GuestAt(a)
			}, background)
			if err != nil {
				return err
			}
		}
		node, err = startNode(ctx, o, st, src, relay, background)
		relayed.Store(node)
		if err != nil {
			return err
		}
		if err := useVolumeTLS(node, o, cloud, alone, ccHost); err != nil { // nodevolumes.go
			return err
		}
	}
	// The cluster of this process and the registered ones (clusters.go).
	ccAddr, err := startClusters(ctx, o, st, cloud, ccHost, node, conns, background)
	if err != nil {
		return err
	}
	if cloud != nil {
		background("clc", cloud.Run)
	}

	var servers []*http.Server
	ready := "CLOUD_PORT"
	if alone != nil {
		ready = "NC_PORT"
	}
	start := func(what string, ln net.Listener, h http.Handler) {
		srv := o.Limits.Server(h, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Stopping, the listener shared with the internal TLS side
			// may close under this server before its own Shutdown.
			err := srv.Serve(ln)
			stopping := ctx.Err() != nil && errors.Is(err, net.ErrClosed)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !stopping {
				log.Error("listener stopped", "listener", what, "err", err)
			}
		}()
		log.Info("listening", "listener", what, "addr", ln.Addr().String())
		if what == ready && o.Ready != nil {
			o.Ready <- ln.Addr()
		}
	}
	serve := func(what, addr string, h http.Handler) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s (%s): %w", addr, what, err)
		}
		start(what, conns.Listener(ln), h)
		return nil
	}
	stop := func() {
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(shutCtx)
		}
	}
	if cloud != nil {
		// The metadata service identifies instances by their source
		// address, so it has a listener of its own, never behind a proxy,
		// on loopback only: the clusters' redirect is the way in.
		if err := serve("METADATA_PORT", cloud.MetadataListenAddr().String(), cloud.MetadataHandler()); err != nil {
			stop()
			return err
		}
	}
	switch {
	case alone != nil:
		ln, err := listenNode(alone, cfg.NCPort, conns)
		if err != nil {
			stop()
			return err
		}
		start("NC_PORT", ln, ncapi.NewHandler(node, log.With("role", NC)))
	case clusterAlone(o.Roles) && !o.Roles[Walrus]:
		// A cluster host: the cloud controller calls it on CC_PORT.
		if o.Ready != nil {
			o.Ready <- ccAddr
		}
	default:
		edgeH, side, err := frontEnd(cloud, imgs, st, router, o)
		if err == nil {
			err = serveEdge(":"+strconv.Itoa(cfg.CloudPort), edgeH, side, conns, o.Limits, log, start)
		}
		if err != nil {
			stop()
			return err
		}
	}
	log.Info("euca running", "roles", o.Roles.String(), "region", cfg.Region)
	<-ctx.Done()
	log.Info("stopping")
	stop()
	wg.Wait()
	log.Info("stopped")
	return nil
}

// startNode makes the node controller over the hypervisor driver, pulling
// images from Walrus's image cache in process.
//
// relay, when valid, is this host's metadata relay for its guests (a node
// on a host of its own in STATIC or SYSTEM mode), where the node redirects
// their metadata requests.
func startNode(ctx context.Context, o Options, st *store.Store, src nc.ImageSource, relay netip.AddrPort, background func(string, func(context.Context) error)) (*nc.Node, error) {
	cfg, log := o.Conf, o.Log.With("role", NC)
	// The probe's files live under INSTANCE_PATH so that a probe guest a
	// killed NC left behind is recognised and removed at the next start.
	probe := libvirt.Probe{Dir: filepath.Join(cfg.InstancePath, ".kvm-probe")}
	if err := os.MkdirAll(probe.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("nc: %w", err)
	}
	if o.KVMProbe != "" {
		probe.Kernel = filepath.Join(o.KVMProbe, "vmlinuz")
		probe.Ramdisk = filepath.Join(o.KVMProbe, "initrd.img")
		if _, err := os.Stat(probe.Kernel); err != nil {
			log.Warn("no KVM probe guest: HYPERVISOR=auto will use emulation", "dir", o.KVMProbe)
			probe.Kernel, probe.Ramdisk = "", ""
		}
	}
	drv, err := drivers.Load(ctx, o.Driver, drivers.Config{Hypervisor: cfg.Hypervisor, InstancePath: cfg.InstancePath, Probe: probe, Log: log,
		SimHost: hypervisor.Resources{Cores: cfg.MaxCores, MemoryMiB: cfg.MaxMemMB, DiskGiB: cfg.MaxDiskGB}})
	if err != nil {
		return nil, fmt.Errorf("nc: hypervisor: %w", err)
	}
	node, err := nc.New(ctx, cfg, st, drv, src, log)
	if err != nil {
		drv.Close()
		return nil, err
	}
	node.SetVersion(o.Version)
	if os.Geteuid() == 0 {
		// On a host without the cluster controller, the node makes its
		// cluster's segments itself (bridge, VXLAN, security groups).
		agent, err := nodenet.New(nodenet.Config{PrivInterface: cfg.VNetPrivInterface, LocalIP: cfg.VNetLocalIP,
			Bridge: cfg.VNetBridge, Metadata: relay}, log)
		if err != nil {
			drv.Close()
			return nil, fmt.Errorf("nc: network: %w", err)
		}
		node.UseNetwork(nc.NodeNetwork(agent))
		// Its guests may send only as themselves, in every mode; in
		// SYSTEM it learns their addresses from their DHCP. The sim
		// driver's guests have no ports to guard.
		if drv.Name() != "sim" {
			node.UsePorts(guestport.New(func(id string, l guestport.Lease) { node.Learned(id, l.Addr) }, log))
		}
	}
	background("nc", func(ctx context.Context) error {
		defer drv.Close()
		return node.Run(ctx)
	})
	if sl, ok := drv.(hypervisor.Sleeper); ok {
		// A host that sleeps in software (the sim driver's) wakes on a
		// Wake-on-LAN magic packet to one of its MACs, as a real host's
		// network card powers it on, so POWERSAVE's wake reaches it.
		wakeOnLAN(log, sl, background)
	}
	log.Info("node controller running", "driver", drv.Name())
	return node, nil
}

// internalImages serves Walrus's decrypted images on a loopback internal
// listener (mutual TLS with role certificates from the cloud's CA; plain
// HTTP, loudly, with ENABLE_WS_SECURITY="N") and returns the node's image
// source over it.
func internalImages(cloud *clc.Cloud, imgs *images.Service, o Options, conns *httplimit.Conns, background func(string, func(context.Context) error)) (nc.ImageSource, error) {
	cfg, log := o.Conf, o.Log
	ca := cloud.CA()
	// Both certificates are issued again before they expire: a front-end
	// running longer than one lives still serves its own node images.
	srvTLS, err := ca.ReissuingServerTLSConfig([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("walrus internal certificate: %w", err)
	}
	ncTLS, err := ca.ReissuingClientTLSConfig("nc:" + localNode)
	if err != nil {
		return nil, fmt.Errorf("nc certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("walrus internal listener: %w", err)
	}
	srv := rpc.NewServer(ca, tls.Certificate{}, cfg.WSSecurity, imgs.Handler(), o.Limits, log.With("role", Walrus))
	if !cfg.WSSecurity {
		ncTLS = nil
	} else {
		srv.TLSConfig = srvTLS
	}
	background("walrus-internal", func(ctx context.Context) error {
		go func() { <-ctx.Done(); srv.Close() }()
		if err := rpc.Serve(srv, conns.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nc.HTTPImageSource(rpc.NewClientConfig(ln.Addr().String(), ncTLS, log.With("role", NC))), nil
}

// startCluster makes the cluster controller over its registered nodes (the
// node in this process among them: nodes.go) and the network mode
// VNET_MODE names.
//
// relay, when valid, is this host's metadata relay, where guests go when
// the cloud names no metadata target (a cluster on a host of its own).
func startCluster(ctx context.Context, o Options, st *store.Store, clientTLS func() (*tls.Config, error), node *nc.Node, relay netip.AddrPort, background func(string, func(context.Context) error)) (*cc.Cluster, error) {
	cfg, log := o.Conf, o.Log.With("role", CC)
	dial, err := clusterNodes(ctx, cfg, st, clientTLS, node, o)
	if err != nil {
		return nil, err
	}
	var network cc.Network
	if os.Geteuid() == 0 {
		mode, err := netmode.FromConf(cfg, log)
		if err != nil {
			return nil, fmt.Errorf("cc: network: %w", err)
		}
		network = cc.NetworkOf(mode)
		if relay.IsValid() {
			network = cc.NetworkRelayingMetadata(mode, relay)
		}
	} else {
		log.Warn("not root: the cluster's network (bridge, DHCP, NAT, filtering) is not set up; instances get no network")
	}
	cluster, err := cc.New(ctx, cfg, st, dial, network, log)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(strings.TrimSpace(cfg.SchedPolicy), "POWERSAVE") {
		// Idle nodes power their hosts down when asked (the node API's
		// power-down); a sleeping one is woken with a magic packet to the
		// MAC the ARP table had for it.
		cluster.SetPower(power.WakeOnLAN{MAC: power.ARPMAC(power.ARPTable)})
	}
	background("cc", cluster.Run)
	return cluster, nil
}

// wakeOnLAN listens for Wake-on-LAN magic packets (UDP port 9, which
// needs root) and wakes the sleeping host when one names this host's MAC.
func wakeOnLAN(log *slog.Logger, host hypervisor.Sleeper, background func(string, func(context.Context) error)) {
	macs, err := power.HostMACs()
	if err != nil || len(macs) == 0 {
		log.Info("no Ethernet interface: the simulated host cannot be woken on LAN", "err", err)
		return
	}
	pc, err := net.ListenPacket("udp4", ":"+strconv.Itoa(power.WakePort))
	if err != nil {
		log.Info("not listening for Wake-on-LAN: the simulated host cannot be woken on LAN", "err", err)
		return
	}
	background("wake-on-lan", func(ctx context.Context) error {
		return power.ServeWake(ctx, pc, macs, host.Wake, log)
	})
}

// localNode is the NODES name of a node controller in the same process.
const localNode = cc.LocalNode

func builtList() string {
	var out []string
	for _, r := range all {
		if built[r] {
			out = append(out, r)
		}
	}
	return strings.Join(out, ", ")
}
