package roles

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/cc"
	"github.com/euca-cloud/euca/roles/nc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// clusterNodes is how the cluster controller reaches its registered nodes:
// the node controller of this process (registered as cc.LocalNode, so that
// it is in `euca node list` and counted once) in process, every other one
// over the node API on its NC_PORT, with mutual TLS under a client
// certificate of the cluster ("cc:ZONE") from the cloud's CA.
func clusterNodes(ctx context.Context, cfg *conf.Config, st *store.Store, ca *pki.CA, local *nc.Node, o Options) (cc.Dialer, error) {
	if local != nil {
		if _, err := st.RegisterCCNode(ctx, cfg.ClusterName, cc.LocalNode, cfg.NCPort); err != nil {
			return nil, err
		}
	}
	log := o.Log.With("role", CC)
	var cert *tls.Certificate // issued at the first remote node; calls come one at a time (the cluster's lock)
	return func(host string, port int) (ncapi.Node, error) {
		if host == cc.LocalNode && local != nil {
			return local, nil
		}
		if ca == nil {
			return nil, fmt.Errorf("no cloud CA in this process to reach node %s with", host)
		}
		if cert == nil {
			c, err := ca.IssueClient("cc:" + cfg.ClusterName)
			if err != nil {
				return nil, fmt.Errorf("cluster client certificate: %w", err)
			}
			cert = &c
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if !cfg.WSSecurity {
			return ncapi.NewClient(rpc.NewClient(addr, ca, *cert, false, log)), nil
		}
		// A node whose certificate was revoked (euca node revoke) is
		// not driven, whatever it still presents.
		return ncapi.NewClient(rpc.NewClientConfig(addr, refuseRevoked(ca.ClientTLSConfig(*cert), st), log)), nil
	}, nil
}
