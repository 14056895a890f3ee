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
// over the node API on its NC_PORT, with mutual TLS under the cluster's
// client configuration (clientTLS: a certificate "cc:ZONE" from the cloud's
// CA in the front-end's process, the cluster host's joined identity on a
// host of its own; asked for at the first remote node).
func clusterNodes(ctx context.Context, cfg *conf.Config, st *store.Store, clientTLS func() (*tls.Config, error), local *nc.Node, o Options) (cc.Dialer, error) {
	if local != nil {
		if _, err := st.RegisterCCNode(ctx, cfg.ClusterName, cc.LocalNode, cfg.NCPort); err != nil {
			return nil, err
		}
	}
	log := o.Log.With("role", CC)
	var tc *tls.Config // calls come one at a time (the cluster's lock)
	return func(host string, port int) (ncapi.Node, error) {
		if host == cc.LocalNode && local != nil {
			return local, nil
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if !cfg.WSSecurity {
			return ncapi.NewClient(rpc.NewClientConfig(addr, nil, log)), nil
		}
		if tc == nil {
			c, err := clientTLS()
			if err != nil {
				return nil, fmt.Errorf("reach node %s: %w", host, err)
			}
			// A node whose certificate was revoked (euca node revoke) is
			// not driven, whatever it still presents.
			// A joined host answering at a node's address must be a
			// node, not a cluster or Walrus host posing as one; a
			// revoked one is refused by clientTLS (clusters.go).
			tc = pki.ExpectJoined(c, NC)
		}
		return ncapi.NewClient(rpc.NewClientConfig(addr, tc, log)), nil
	}, nil
}
