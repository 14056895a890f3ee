package roles

import (
	"context"
	"net/netip"
	"strings"

	"github.com/euca-cloud/euca/internal/httplimit"
)

// serveNodeMetadataRelay serves the metadata relay of a node on a host of
// its own in STATIC or SYSTEM mode (internal/mdrelay) on this host's
// loopback at METADATA_PORT, and returns its address for the node's
// redirect (netmode/nodenet): the guests' router there is the LAN's, so
// no cluster controller is on their way to 169.254.169.254. It asks the
// front-end under the node's identity, which answers for instances running
// on this node only; guest is asked about each caller too, so that only a
// guest of this node is relayed, whatever reaches the listener. In other
// modes, or without internal TLS, the invalid address it returns means no
// relay (without TLS the front-end could not tell which node asks).
//
// Loopback rather than an address on VNET_BRIDGE: the node may have none
// there, and one it added (169.254.169.254/32, say) would be answered for
// on the LAN (ARP) and reachable by any of its hosts; a loopback listener
// is reached only through the redirect, which only a guest port's marked
// packets take (nft.PortsMetadataMark), behind the guard against
// everything else addressed to loopback that route_localnet would let in.
func serveNodeMetadataRelay(host *remoteNode, o Options, conns *httplimit.Conns, guest func(netip.Addr) bool, background func(string, func(context.Context) error)) (netip.AddrPort, error) {
	cfg, log := o.Conf, o.Log.With("role", NC)
	mode := strings.ToUpper(strings.TrimSpace(cfg.VNetMode))
	if (mode != "STATIC" && mode != "SYSTEM") || cfg.MetadataPort <= 0 || cfg.VNetBridge == "" {
		return netip.AddrPort{}, nil
	}
	if host.frontEndTLS == nil {
		log.Warn("ENABLE_WS_SECURITY=N: no metadata relay; this node's instances do not reach the metadata service")
		return netip.AddrPort{}, nil
	}
	return listenRelay(host, o, conns, log, guest, "METADATA_PORT (the node's guests' relay to the front-end)", background)
}
