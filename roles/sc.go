package roles

// The storage controller (sc), in the cloud controller's process: EBS
// volumes of CLUSTER_NAME's zone as files under SC_VOLUMES_PATH, served to
// the nodes over NBD with TLS on SC_NBD_PORT, and handed to the cloud
// controller in process. DISABLE_EBS="Y" leaves it out.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/join"
	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/snapshot"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus"
)

// withoutEBS takes the storage controller out of roles when DISABLE_EBS
// says so: the aliases "all" and "storage" run without it, and sc named
// alone has nothing left to run.
func withoutEBS(roles Set, cfg *conf.Config, log *slog.Logger) (Set, error) {
	if !cfg.DisableEBS || !roles[SC] {
		return roles, nil
	}
	out := Set{}
	for r := range roles {
		if r != SC {
			out[r] = true
		}
	}
	if len(out) == 0 {
		return nil, errors.New(`role sc is turned off by DISABLE_EBS="Y" in eucalyptus.conf: set it to "N" to run the storage controller`)
	}
	log.Warn(`DISABLE_EBS="Y": the storage controller (role sc) does not run; EBS volumes and snapshots are off`)
	return out, nil
}

// startStorage starts the storage controller of CLUSTER_NAME's zone in the
// cloud controller's process and hands it to the cloud controller: its
// volumes' files, its NBD listener on SC_NBD_PORT (TLS from the cloud's CA,
// a node's certificate required), and the recovery of what a previous run
// left half done.
func startStorage(ctx context.Context, o Options, st *store.Store, cloud *clc.Cloud, s3 *walrus.Walrus, background func(string, func(context.Context) error)) (*sc.SC, error) {
	cfg, log := o.Conf, o.Log.With("role", SC)
	if cloud == nil || s3 == nil {
		return nil, errors.New("role sc needs roles clc and walrus in the same process (for example --roles=clc,walrus,sc,cc or --roles=all)")
	}
	be, err := backend.NewFiles(cfg.SCVolumesPath)
	if err != nil {
		return nil, fmt.Errorf("sc: %w", err)
	}
	snaps, err := startSnapshots(ctx, st, s3, be, log, background)
	if err != nil {
		return nil, err
	}
	host := nbdAddress(cfg)
	s, err := sc.New(ctx, sc.Options{Zone: cfg.ClusterName, Store: st, Backend: be, Host: host.String(), Port: cfg.SCNBDPort,
		Snapshots: snaps, Log: log, Plain: !cfg.WSSecurity})
	if err != nil {
		return nil, err
	}
	srv, err := nbdServer(s, cfg, st, cloud, host, log)
	if err != nil {
		s.Close()
		return nil, err
	}
	addr := ":" + strconv.Itoa(cfg.SCNBDPort)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("listen on %s (SC_NBD_PORT): %w", addr, err)
	}
	background("SC_NBD_PORT", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			// Requests in progress are answered; a client that does not
			// read its answers is cut off.
			shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		}()
		if err := srv.Serve(ln); !errors.Is(err, nbd.ErrServerClosed) {
			return err
		}
		return nil
	})
	background("sc", s.Run)
	log.Info("storage controller running", "zone", cfg.ClusterName, "volumes", be.Dir(), "nbd", ln.Addr().String(), "nodes_dial", net.JoinHostPort(host.String(), strconv.Itoa(cfg.SCNBDPort)))
	cloud.SetStorage(cfg.ClusterName, s) // in process: the cloud controller calls it directly
	return s, nil
}

// nbdServer is the storage controller's NBD server: TLS only, under a
// certificate naming every address of this host and the one nodes are
// told (SC_NBD_ADDRESS may be a NAT's), for nodes' certificates that are
// not revoked; plain NBD, loudly, with ENABLE_WS_SECURITY="N".
func nbdServer(s *sc.SC, cfg *conf.Config, st *store.Store, cloud *clc.Cloud, host netip.Addr, log *slog.Logger) (*nbd.Server, error) {
	if !cfg.WSSecurity {
		log.Warn(`ENABLE_WS_SECURITY=N: volumes are served over PLAIN NBD on SC_NBD_PORT: anyone who reaches it and learns an export's name reads and writes that volume`)
		return s.NBDServer(nil), nil
	}
	hosts, ips := frontEndNames(cfg.VNetCloudIP.String())
	ips = append(ips, net.IP(host.AsSlice()))
	base, err := cloud.CA().ReissuingServerTLSConfig(hosts, ips)
	if err != nil {
		return nil, fmt.Errorf("sc: NBD certificate: %w", err)
	}
	// A node whose certificate was revoked (euca node revoke) reaches no
	// volume.
	base = join.RefuseRevoked(base, func(ctx context.Context, c *x509.Certificate) error { return join.CheckRevoked(ctx, st, c) })
	return s.NBDServer(sc.ServerTLS(base)), nil
}

// startSnapshots opens the snapshot engine over the Walrus of this process
// (the bucket snapshot.Bucket, owned by the admin account) before any
// volume is exported: it loads the pending snapshots whose points in time
// the NBD writes must respect. Pre-images of pending snapshots go beside
// the volumes (a local copy).
func startSnapshots(ctx context.Context, st *store.Store, s3 *walrus.Walrus, be *backend.Files, log *slog.Logger, background func(string, func(context.Context) error)) (*snapshot.Engine, error) {
	admin, err := st.AccountByName(ctx, clc.AdminAccount)
	if err != nil {
		return nil, fmt.Errorf("sc: snapshots: the admin account: %w", err)
	}
	objs, err := snapshot.WalrusObjects(ctx, s3, admin.ID)
	if err != nil {
		return nil, fmt.Errorf("sc: snapshots: %w", err)
	}
	e, err := snapshot.New(ctx, snapshot.Options{Store: st, Objects: objs, Dir: filepath.Join(be.Dir(), snapshotsDir),
		OpenVolume: func(ctx context.Context, id string) (snapshot.Volume, error) { return be.Open(id) },
		Log:        log.With("part", "snapshots")})
	if err != nil {
		return nil, err
	}
	background("sc snapshots", e.Run)
	return e, nil
}

// snapshotsDir holds the pre-images of pending snapshots, under
// SC_VOLUMES_PATH (not a volume's name: those end in .raw).
const snapshotsDir = "snapshots"

// nbdAddress is the address nodes are told to reach the NBD listener at:
// SC_NBD_ADDRESS, else VNET_CLOUDIP, else this host's first IPv4 address
// that is not a loopback one, else 127.0.0.1.
func nbdAddress(cfg *conf.Config) netip.Addr {
	if cfg.SCNBDAddress.IsValid() {
		return cfg.SCNBDAddress
	}
	if cfg.VNetCloudIP.IsValid() {
		return cfg.VNetCloudIP
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					ip = ip.Unmap()
					if ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
						return ip
					}
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}
