package roles

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/join"
	"github.com/euca-cloud/euca/internal/mdrelay"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/internal/tlssplit"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/clc/clcapi"
	"github.com/euca-cloud/euca/roles/nc"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/images"
)

// WalrusPrefix is where the front-end serves Walrus's images to nodes on
// other hosts (images.ImagePath under it), on CLOUD_PORT's TLS side.
const WalrusPrefix = "/internal/v1/walrus"

// joinWait is how long a joining host keeps trying to reach a front-end
// that is not up yet (both may be started together by an installer).
const joinWait = 2 * time.Minute

// nodeAlone reports a process that runs the node controller without the
// cloud's other roles: a compute host, reached by its cluster controller
// over the node API and pulling images from the front-end.
func nodeAlone(s Set) bool { return s[NC] && !s[CLC] && !s[CC] && !s[Walrus] }

// internalTLS is the TLS side of CLOUD_PORT: its configuration and router.
type internalTLS struct {
	config  *tls.Config
	handler http.Handler
}

// frontEnd makes the front-end's internal side of CLOUD_PORT: the join and
// renew calls and Walrus's images for nodes on other hosts, over TLS from
// the cloud's CA, beside the public APIs in plain HTTP. With
// ENABLE_WS_SECURITY="N" there is no TLS side: the images are served in
// plain HTTP, loudly, and hosts need not join. It returns the plain side's
// handler.
func frontEnd(cloud *clc.Cloud, imgs *images.Service, st *store.Store, public http.Handler, o Options) (http.Handler, *internalTLS, error) {
	if cloud == nil {
		return public, nil, nil
	}
	cfg, log := o.Conf, o.Log.With("role", CLC)
	internal := http.NewServeMux()
	if imgs != nil {
		internal.Handle(WalrusPrefix+"/", http.StripPrefix(WalrusPrefix, imgs.Handler()))
	}
	if !cfg.WSSecurity {
		log.Warn("ENABLE_WS_SECURITY=N: internal TLS is off; nodes on other hosts download images over PLAIN HTTP without authentication on CLOUD_PORT, and anyone who reaches it can")
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, join.InternalPrefix) {
				internal.ServeHTTP(w, r)
				return
			}
			public.ServeHTTP(w, r)
		}), nil, nil
	}
	// The cloud's accounts for Walrus on a host of its own (over TLS
	// only: the answers hold secret keys).
	internal.Handle(clcapi.Prefix, clcapi.NewHandler(cloud, log))
	// Metadata requests relayed by clusters on hosts of their own, for
	// their zones' instances (clc/metadatarelay.go).
	internal.Handle(mdrelay.Path+"/", cloud.MetadataRelayHandler())
	srv := join.NewServer(cloud.CA(), st, log)
	hosts, ips := frontEndNames(cfg.VNetCloudIP.String())
	tc, err := srv.FrontEndTLSConfig(hosts, ips)
	if err != nil {
		return nil, nil, err
	}
	log.Info("internal TLS on CLOUD_PORT: hosts join and nodes fetch images here", "names", strings.Join(hosts, " "), "addresses", len(ips))
	return public, &internalTLS{config: tc, handler: srv.FrontEndHandler(internal, public)}, nil
}

// frontEndNames are the names and addresses the front-end's certificate is
// valid for: the host name, localhost, every address of its interfaces, and
// VNET_CLOUDIP (the address clients are told, which may be a NAT's).
func frontEndNames(cloudIP string) ([]string, []net.IP) {
	hosts := []string{}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		hosts = append(hosts, h)
	}
	hosts = append(hosts, "localhost")
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	if ip := net.ParseIP(cloudIP); ip != nil {
		ips = append(ips, ip)
	}
	return hosts, ips
}

// serveEdge listens on CLOUD_PORT and serves the plain side with h and, when
// side is given, TLS connections (told apart by their first byte) with it.
func serveEdge(addr string, h http.Handler, side *internalTLS, conns *httplimit.Conns, lim httplimit.Config, log *slog.Logger, start func(what string, ln net.Listener, h http.Handler)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (CLOUD_PORT): %w", addr, err)
	}
	if side == nil {
		start("CLOUD_PORT", conns.Listener(ln), h)
		return nil
	}
	plain, tl := tlssplit.Split(conns.Listener(ln), lim.HeaderTimeout, log)
	start("CLOUD_PORT (internal TLS)", tls.NewListener(tl, side.config), side.handler)
	start("CLOUD_PORT", plain, h)
	return nil
}

// remoteNode is what a node (or cluster) controller on a host of its own
// needs from the front-end: its images, and its identity for its API's
// listener and its calls.
type remoteNode struct {
	images    nc.ImageSource
	listenTLS *tls.Config // nil: plain HTTP (ENABLE_WS_SECURITY="N")
	// clientTLS: a cluster calling its nodes (joined peers must be nodes
	// in force, as the front-end says); nil: plain HTTP.
	clientTLS *tls.Config
	// frontEndTLS calls the front-end (Walrus the cloud's accounts): the
	// peer must be the front-end's, not a joined host's; nil: plain HTTP.
	frontEndTLS *tls.Config
	// scTLS reaches storage controllers' NBD (a node's volumes): the
	// front-end's own, or joined hosts of role sc.
	scTLS  *tls.Config
	server string // the front-end's CLOUD_PORT it joined at
}

// joinNode gives a node controller on its own host its identity (loaded,
// or obtained with the join token the first time), keeps it renewed, and
// reaches Walrus's images at the front-end's CLOUD_PORT over mutual TLS.
func joinNode(ctx context.Context, o Options, background func(string, func(context.Context) error)) (*remoteNode, error) {
	return joinHost(ctx, o, NC, background)
}

// joinHost gives a role on a host without the cloud controller (a node
// controller, a cluster controller) the identity the host joined the cloud
// with for that role: loaded, or obtained with the join token the first
// time, and kept renewed. Its images come from Walrus at the front-end's
// CLOUD_PORT over mutual TLS under it.
func joinHost(ctx context.Context, o Options, role string, background func(string, func(context.Context) error)) (*remoteNode, error) {
	cfg, log := o.Conf, o.Log.With("role", role)
	token, server := o.JoinToken, o.JoinServer
	if token == "" {
		token = cfg.JoinToken
	}
	if server == "" {
		server = cfg.JoinServer
	}
	if !cfg.WSSecurity {
		log.Warn("ENABLE_WS_SECURITY=N: this " + role + " serves its API over PLAIN HTTP without authentication (anyone who reaches its port can drive it) and fetches images the same way")
		if token != "" {
			log.Warn("ENABLE_WS_SECURITY=N: the join token is ignored (nothing to join without internal TLS)")
		}
		if server == "" {
			return nil, errors.New("a " + role + " on a host of its own needs the front-end's address: --server HOST:PORT (or JOIN_SERVER in eucalyptus.conf)")
		}
		return &remoteNode{images: imagesAt(rpc.NewClientConfig(server, nil, log))}, nil
	}
	dir := IdentityDir(cfg.DataDir(), role)
	id, err := join.Load(dir)
	switch {
	case errors.Is(err, join.ErrNotJoined):
		if token == "" || server == "" {
			return nil, fmt.Errorf("this host has not joined the cloud: start it once with --join TOKEN --server HOST:PORT "+
				"(TOKEN from `euca token create --role %s` on the front-end, HOST:PORT its CLOUD_PORT), or set JOIN_TOKEN and JOIN_SERVER in eucalyptus.conf (%w)", role, err)
		}
		id, err = join.Join(ctx, join.Options{Token: token.Reveal(), Server: server, Role: role, Dir: dir, Wait: joinWait, Log: log})
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if token != "" {
			log.Warn("this host has joined already; the join token is ignored (remove "+dir+" to join again)", "as", id.Leaf().Subject.CommonName)
		}
		if server != "" && server != id.Server {
			log.Info("front-end address from --server/JOIN_SERVER, not the one joined at", "server", server, "joined_at", id.Server)
			id.Server = server
		}
		log.Info("identity loaded", "as", id.Leaf().Subject.CommonName, "serial", fmt.Sprintf("%x", id.Leaf().SerialNumber), "not_after", id.Leaf().NotAfter.UTC(), "server", id.Server)
	}
	if id.Role() != role {
		return nil, fmt.Errorf("the identity in %s is role %s's, not %s's", dir, id.Role(), role)
	}
	background(role+" identity renewal", func(ctx context.Context) error { return id.KeepRenewed(ctx, log) })
	revoked := id.Revocation(log)
	return &remoteNode{images: imagesAt(rpc.NewClientConfig(id.Server, id.FrontEndTLSConfig(), log)),
		// Both ways a revoked host is refused: the nodes this host calls
		// (a cluster's), and the hosts that call it (a cluster
		// controller calling a node), as the front-end says.
		listenTLS: join.RefuseRevoked(id.ServerTLSConfig(), revoked.Check), clientTLS: join.RefuseRevoked(id.ClientTLSConfig(NC), revoked.Check),
		frontEndTLS: id.FrontEndTLSConfig(), scTLS: join.RefuseRevoked(id.ClientTLSConfig(SC), revoked.Check), server: id.Server}, nil
}

// IdentityDir is where a host keeps the identity it joined the cloud with
// for role.
func IdentityDir(dataDir, role string) string { return filepath.Join(dataDir, "identity", role) }

// imagesAt is the image source of Walrus at the front-end c calls.
func imagesAt(c *rpc.Client) nc.ImageSource {
	c.BaseURL += WalrusPrefix
	return nc.HTTPImageSource(c)
}

// listenNode listens on NC_PORT (every address: the cluster controller is
// elsewhere) for the node API, over mutual TLS with the host's identity.
func listenNode(n *remoteNode, port int, conns *httplimit.Conns) (net.Listener, error) {
	addr := ":" + strconv.Itoa(port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (NC_PORT): %w", addr, err)
	}
	l := conns.Listener(ln)
	if n.listenTLS != nil {
		l = tls.NewListener(l, n.listenTLS)
	}
	return l, nil
}
