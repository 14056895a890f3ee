package roles

// Clusters across hosts. A cluster controller may run on a host of its own
// (`euca --roles=cc`, with the node controllers of its zone elsewhere): it
// serves the cluster API on CC_PORT over mutual TLS with the identity the
// host joined the cloud with (a token made with `euca token create --role
// cc`), and reaches its nodes with the same identity. The cloud controller
// follows its register of clusters (`euca cluster register NAME HOST`) and
// calls each over the cluster API with a certificate of its own CA;
// the cluster of its own process, if it runs one, serves CLUSTER_NAME in
// process.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/join"
	"github.com/euca-cloud/euca/internal/mdrelay"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc"
	"github.com/euca-cloud/euca/store"
)

// clusterAlone reports a process that runs a cluster controller without the
// cloud controller: the cloud reaches it over the cluster API.
func clusterAlone(s Set) bool { return s[CC] && !s[CLC] }

// issuedClientTLS is a client configuration under a certificate the
// cloud's CA issues in this process (cn "role:name"), trusting only the CA.
func issuedClientTLS(ca *pki.CA, cn string) func() (*tls.Config, error) {
	return func() (*tls.Config, error) {
		if ca == nil {
			return nil, errors.New("no identity: the cloud's CA is not in this process")
		}
		// Issued again before it expires: a front-end that runs longer
		// than one certificate lives keeps reaching its nodes and clusters.
		tc, err := ca.ReissuingClientTLSConfig(cn)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s: %w", cn, err)
		}
		return tc, nil
	}
}

// serveCluster serves the cluster API of cl on CC_PORT (every address: the
// cloud controller is elsewhere), over mutual TLS with id, until ctx ends;
// it returns the listener's address once listening.
func serveCluster(cl ccapi.Cluster, id *remoteNode, o Options, conns *httplimit.Conns, background func(string, func(context.Context) error)) (net.Addr, error) {
	cfg, log := o.Conf, o.Log.With("role", CC)
	addr := ":" + strconv.Itoa(cfg.CCPort)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (CC_PORT): %w", addr, err)
	}
	srv := o.Limits.Server(ccapi.NewHandler(cl, log), slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	srv.TLSConfig = id.listenTLS // nil: plain HTTP (ENABLE_WS_SECURITY="N")
	background("CC_PORT", func(ctx context.Context) error {
		go func() { <-ctx.Done(); srv.Close() }()
		if err := rpc.Serve(srv, conns.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	log.Info("listening", "listener", "CC_PORT", "addr", ln.Addr().String(), "zone", cl.Zone())
	return ln.Addr(), nil
}

// dialClusters is how the cloud controller reaches a registered cluster:
// the cluster API at its HOST:CC_PORT, under a certificate "clc:HOST" of the
// cloud's CA, issued again before it expires.
func dialClusters(cloud *clc.Cloud, st *store.Store, o Options) clc.DialCluster {
	cfg, log := o.Conf, o.Log.With("role", CLC)
	issue := issuedClientTLS(cloud.CA(), "clc:"+o.Conf.ClusterName)
	var tc *tls.Config // WatchClusters dials one at a time
	return func(r store.Cluster) (ccapi.Cluster, error) {
		addr := net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
		if !cfg.WSSecurity {
			return ccapi.NewClient(rpc.NewClientConfig(addr, nil, log), r.Name), nil
		}
		if tc == nil {
			c, err := issue()
			if err != nil {
				return nil, err
			}
			// A joined host answering at a cluster's address must be a
			// cluster controller in force, not a node posing as one nor
			// a revoked one.
			tc = join.RefuseRevoked(pki.ExpectJoined(c, CC), func(ctx context.Context, c *x509.Certificate) error {
				return join.CheckRevoked(ctx, st, c)
			})
		}
		return ccapi.NewClient(rpc.NewClientConfig(addr, tc, log), r.Name), nil
	}
}

// startClusters wires the cluster controller of this process, if any, and
// the registered ones: in process to the cloud controller when it runs
// here, else served on CC_PORT with the host's identity (host, from
// joinHost). It returns CC_PORT's address when it serves it.
func startClusters(ctx context.Context, o Options, st *store.Store, cloud *clc.Cloud, host *remoteNode, node *nc.Node, conns *httplimit.Conns, background func(string, func(context.Context) error)) (net.Addr, error) {
	if cloud != nil {
		background("clusters", func(ctx context.Context) error { return cloud.WatchClusters(ctx, dialClusters(cloud, st, o)) })
	}
	if !o.Roles[CC] {
		return nil, nil
	}
	if cloud != nil {
		issue := issuedClientTLS(cloud.CA(), "cc:"+o.Conf.ClusterName)
		clientTLS := func() (*tls.Config, error) {
			tc, err := issue()
			if err != nil {
				return nil, err
			}
			// A node whose certificate was revoked (euca node revoke), or
			// that the CA's records do not know, is not driven.
			return join.RefuseRevoked(tc, func(ctx context.Context, c *x509.Certificate) error { return join.CheckRevoked(ctx, st, c) }), nil
		}
		cluster, err := startCluster(ctx, o, st, clientTLS, node, netip.AddrPort{}, background)
		if err != nil {
			return nil, err
		}
		cloud.SetCluster(cluster)
		return nil, nil
	}
	relay, err := serveMetadataRelay(host, o, conns, background)
	if err != nil {
		return nil, err
	}
	clientTLS := func() (*tls.Config, error) { return host.clientTLS, nil }
	cluster, err := startCluster(ctx, o, st, clientTLS, node, relay, background)
	if err != nil {
		return nil, err
	}
	return serveCluster(cluster, host, o, conns, background)
}

// serveMetadataRelay serves the metadata relay of a cluster on a host of
// its own (internal/mdrelay) on this host's loopback at METADATA_PORT, as
// the front-end serves the metadata service itself: only the cluster's
// redirect of 169.254.169.254:80 reaches it. It asks the front-end over the
// host's identity; without internal TLS (ENABLE_WS_SECURITY="N") the
// front-end cannot tell which cluster asks, so there is no relay, and the
// invalid address it returns then means no redirect.
func serveMetadataRelay(host *remoteNode, o Options, conns *httplimit.Conns, background func(string, func(context.Context) error)) (netip.AddrPort, error) {
	cfg, log := o.Conf, o.Log.With("role", CC)
	if cfg.MetadataPort <= 0 {
		return netip.AddrPort{}, nil
	}
	if host.frontEndTLS == nil {
		log.Warn("ENABLE_WS_SECURITY=N: no metadata relay; this cluster's instances do not reach the metadata service")
		return netip.AddrPort{}, nil
	}
	return listenRelay(host, o, conns, log, nil, "METADATA_PORT (relay to the front-end)", background)
}

// listenRelay serves a metadata relay to the front-end host joined at, on
// this host's loopback at METADATA_PORT, relaying the callers allow
// accepts (nil: all).
func listenRelay(host *remoteNode, o Options, conns *httplimit.Conns, log *slog.Logger, allow func(netip.Addr) bool, what string, background func(string, func(context.Context) error)) (netip.AddrPort, error) {
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(o.Conf.MetadataPort))
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen on %s (METADATA_PORT, the metadata relay): %w", addr, err)
	}
	// The front-end's configuration: a joined host (a node whose
	// certificate names the front-end's address) must not answer guests'
	// metadata in its place.
	fe := rpc.NewClientConfig(host.server, host.frontEndTLS, log)
	relay := &mdrelay.Relay{BaseURL: fe.BaseURL, HTTP: fe.HTTP, Log: log, Allow: allow}
	srv := o.Limits.Server(relay, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	background("METADATA_PORT", func(ctx context.Context) error {
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(conns.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	log.Info("listening", "listener", what, "addr", addr.String(), "front_end", host.server)
	return addr, nil
}
