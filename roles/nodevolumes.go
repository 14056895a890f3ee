package roles

import (
	"fmt"

	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc"
)

// useVolumeTLS gives the node the identity it reaches storage controllers'
// NBD with (its volumes): a node on a host of its own uses the identity it
// joined with; a node in the front-end's process a node certificate of the
// cloud's CA ("nc:" + localNode, the name its cluster knows it by, which
// the storage controller checks an export against). A node beside a
// cluster on a cluster's host has only the cluster's identity, which a
// storage controller refuses: its instances get no volumes (said once).
func useVolumeTLS(node *nc.Node, o Options, cloud *clc.Cloud, alone, ccHost *remoteNode) error {
	switch {
	case !o.Conf.WSSecurity:
		node.UseVolumeTLS(nil)
	case alone != nil:
		node.UseVolumeTLS(alone.scTLS)
	case ccHost != nil:
		o.Log.Warn("a node beside a cluster on a host of its own has no node identity: storage controllers will refuse its volumes", "role", NC)
	case cloud != nil:
		tc, err := cloud.CA().ReissuingClientTLSConfig("nc:" + localNode)
		if err != nil {
			return fmt.Errorf("nc: volume certificate: %w", err)
		}
		node.UseVolumeTLS(tc)
	}
	return nil
}
