package clc

// The metadata service for zones whose cluster runs on another host. That
// cluster redirects its guests to a relay on its own host
// (internal/mdrelay), which asks here over the internal mutual TLS, naming
// the guest's address. Only a cluster controller may ask, and only about
// an instance of its own zone: a cluster cannot read the metadata
// (user-data, keys) of another zone's instances by naming their addresses.
//
// A node on a host of its own relays too in STATIC and SYSTEM mode, where
// its guests' router is the LAN's and no cluster is on their path: it may
// ask only about an instance running on it (the instance's node is a host
// its certificate is issued to), so a node cannot read another node's
// guests' metadata either.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/euca-cloud/euca/internal/mdrelay"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
)

// MetadataRelayHandler answers relayed metadata requests under
// mdrelay.Path, for cluster controllers only; it is mounted on CLOUD_PORT's
// internal TLS side.
func (c *Cloud) MetadataRelayHandler() http.Handler {
	m := rpc.NewMux(relayErrors, c.log)
	m.AllowRoles("cc", "nc")
	m.Handle(mdrelay.Path+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := rpc.PeerOf(r.Context())
		var srv metadataServer
		if peer.Cert != nil && pki.RoleOf(peer.Cert) == "nc" {
			if !pki.IsJoined(peer.Cert) {
				m.Error(w, r, fmt.Errorf("%w: the front-end's own node needs no relay", errRelayRefused))
				return
			}
			srv = metadataServer{c: c, node: peer.Cert}
		} else {
			zones, err := c.clusterZonesOf(r.Context(), peer.Cert)
			if err != nil {
				m.Error(w, r, err)
				return
			}
			srv = metadataServer{c: c, zones: zones}
		}
		caller, err := netip.ParseAddr(r.Header.Get(mdrelay.CallerHeader))
		if err != nil {
			http.Error(w, "Bad Request", http.StatusBadRequest)
			return
		}
		in := r.Clone(r.Context())
		in.URL.Path = "/" + strings.TrimLeft(strings.TrimPrefix(r.URL.Path, mdrelay.Path), "/")
		in.URL.RawPath = ""
		in.RemoteAddr = netip.AddrPortFrom(caller.Unmap(), 0).String()
		in.Header.Del(mdrelay.CallerHeader)
		srv.ServeHTTP(w, in)
	}))
	return m
}

// errRelayRefused: the caller may not relay metadata requests.
var errRelayRefused = errors.New("refused")

var relayErrors = rpc.Errors{{Code: rpc.CodeForbidden, Status: http.StatusForbidden, Err: errRelayRefused}}

// errNotACluster refuses a relay call from a certificate that is no
// registered cluster's.
type errNotACluster struct{ cn string }

func (e errNotACluster) Error() string {
	return fmt.Sprintf("%s is not the host of a registered cluster (euca cluster register NAME HOST)", e.cn)
}

// clusterZonesOf are the zones a cluster controller's certificate speaks
// for. A certificate issued in this process ("cc:ZONE") names its zone; a
// joined host's ("cc:HOST") speaks for the registered clusters whose HOST
// is one of the addresses or names it is issued to (the TLS side has
// checked that the host calls from one of its addresses).
func (c *Cloud) clusterZonesOf(ctx context.Context, cert *x509.Certificate) ([]string, error) {
	if cert == nil || pki.RoleOf(cert) != "cc" {
		return nil, fmt.Errorf("%w: only a cluster controller relays metadata requests", errRelayRefused)
	}
	_, name, _ := strings.Cut(cert.Subject.CommonName, ":")
	if !pki.IsJoined(cert) {
		return []string{name}, nil
	}
	regs, err := c.store.Clusters(ctx)
	if err != nil {
		return nil, fmt.Errorf("registered clusters: %w", err)
	}
	var zones []string
	for _, r := range regs {
		if certNames(cert, r.Host) {
			zones = append(zones, r.Name)
		}
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("%w: %w", errRelayRefused, errNotACluster{cert.Subject.CommonName})
	}
	return zones, nil
}

// certNames reports whether a joined host's certificate is issued to host
// (an address, or a name).
func certNames(cert *x509.Certificate, host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool {
			b, ok := netip.AddrFromSlice(ip)
			return ok && b.Unmap() == a.Unmap()
		})
	}
	return slices.ContainsFunc(cert.DNSNames, func(n string) bool { return strings.EqualFold(n, host) })
}
