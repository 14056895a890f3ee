package sc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/store"
)

// NBD limits of the storage controller's listener: a node's QEMU opens one
// connection per attached volume (and a new one when it reconnects), so
// the cap is on volumes attached at once, not on guests' I/O.
const (
	NBDMaxConns = 512
	// NBDMaxInFlight is QEMU's own pipeline depth (MAX_NBD_REQUESTS).
	NBDMaxInFlight = 16
)

// NBDServer is the NBD server of the storage controller's exports: TLS
// only with tc (ServerTLS), each connection let in by Lookup. Unexport
// drops through it once SetDropper is given it.
func (s *SC) NBDServer(tc *tls.Config) *nbd.Server {
	srv := &nbd.Server{TLS: tc, Lookup: s.Lookup, Log: s.log.With("listener", "SC_NBD_PORT"),
		MaxConns: NBDMaxConns, MaxInFlight: NBDMaxInFlight}
	s.SetDropper(srv)
	return srv
}

// ServerTLS is the NBD listener's TLS configuration over base (the cloud
// CA's server configuration: a client certificate of one of the cloud's
// roles is required). A joined host's certificate is further believed only
// from an address it names (pki.CheckPeerAddress), as on the other
// internal listeners: a node's certificate copied elsewhere reaches no
// volume.
func ServerTLS(base *tls.Config) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		var from netip.Addr
		if hello.Conn != nil {
			if ap, err := netip.ParseAddrPort(hello.Conn.RemoteAddr().String()); err == nil {
				from = ap.Addr().Unmap()
			}
		}
		c := base.Clone()
		return pki.AlsoCheckPeer(c, func(cert *x509.Certificate) error { return pki.CheckPeerAddress(cert, from) }), nil
	}}
}

// cutExport splits an export name "vol-X/<nonce>".
func cutExport(name string) (volumeID, nonce string, ok bool) {
	volumeID, nonce, ok = strings.Cut(name, "/")
	return volumeID, nonce, ok && backend.CheckID(volumeID) == nil && len(nonce) == 32
}

// Lookup lets a node's connection reach an export: the peer must hold a
// node's certificate from the cloud's CA, the name must be a live export
// of an available volume, and the export must be for that node.
func (s *SC) Lookup(ctx context.Context, peer *tls.ConnectionState, name string) (nbd.Export, error) {
	var cert *x509.Certificate
	switch {
	case peer != nil && len(peer.PeerCertificates) > 0:
		cert = peer.PeerCertificates[0]
		if role := pki.RoleOf(cert); role != "nc" {
			return nil, fmt.Errorf("%w: %s is not a node controller's certificate", nbd.ErrDenied, cert.Subject.CommonName)
		}
	case peer == nil && s.plain: // ENABLE_WS_SECURITY="N": the name is the only key
	default:
		return nil, fmt.Errorf("%w: no client certificate", nbd.ErrDenied)
	}
	volumeID, _, ok := cutExport(name)
	if !ok {
		return nil, nbd.ErrUnknownExport
	}
	e, err := s.st.SCExport(ctx, name)
	if errors.Is(err, store.ErrNotFound) || err == nil && e.VolumeID != volumeID {
		return nil, nbd.ErrUnknownExport
	}
	if err != nil {
		return nil, fmt.Errorf("sc: export %s: %w", volumeID, err)
	}
	if cert != nil && !nodeIs(cert, e.Node) {
		s.log.Warn("NBD export refused: the export is another node's", "volume", volumeID, "node", e.Node, "peer", cert.Subject.CommonName)
		return nil, fmt.Errorf("%w: export of %s is for node %s, not %s", nbd.ErrDenied, volumeID, e.Node, cert.Subject.CommonName)
	}
	v, err := s.st.SCVolume(ctx, volumeID)
	if err != nil {
		return nil, fmt.Errorf("sc: export %s: %w", volumeID, err)
	}
	if v.State != store.SCVolumeAvailable {
		return nil, nbd.ErrUnknownExport
	}
	dev, err := s.be.Open(volumeID)
	if err != nil {
		return nil, fmt.Errorf("sc: export %s: %w", volumeID, err)
	}
	s.log.Debug("NBD export connected", "volume", volumeID, "node", e.Node)
	return &export{Device: dev, id: volumeID, snaps: s.snaps}, nil
}

// nodeIs reports whether cert is the certificate of node, the host name
// the volume's export was made for (as its cluster names it). A joined
// host's certificate (CN "nc:HOST") is node's when HOST, one of its DNS
// names or one of its addresses is node; a certificate the front-end's
// CA issued to its own process's node (CN "nc:localhost", no addresses)
// when its name is.
func nodeIs(cert *x509.Certificate, node string) bool {
	_, host, _ := strings.Cut(cert.Subject.CommonName, ":")
	if host != "" && strings.EqualFold(host, node) {
		return true
	}
	if !pki.IsJoined(cert) {
		return false
	}
	for _, n := range cert.DNSNames {
		if strings.EqualFold(n, node) {
			return true
		}
	}
	if a, err := netip.ParseAddr(node); err == nil {
		for _, ip := range cert.IPAddresses {
			if b, ok := netip.AddrFromSlice(ip); ok && b.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

// export is a volume served to one connection: every change first passes
// the snapshot engine's copy-on-write hook, so a pending snapshot keeps
// the bytes it was taken with. A change the hook could not protect is not
// applied.
type export struct {
	backend.Device
	id    string
	snaps Snapshots
}

func (e *export) before(off, n int64) error {
	if e.snaps == nil {
		return nil
	}
	if err := e.snaps.BeforeWrite(e.id, e.Device, off, n); err != nil {
		return fmt.Errorf("sc: volume %s: keep a snapshot's bytes: %w", e.id, err)
	}
	return nil
}

func (e *export) WriteAt(p []byte, off int64) (int, error) {
	if err := e.before(off, int64(len(p))); err != nil {
		return 0, err
	}
	return e.Device.WriteAt(p, off)
}

func (e *export) Punch(off, n int64) error {
	if err := e.before(off, n); err != nil {
		return err
	}
	return e.Device.Punch(off, n)
}

func (e *export) Zero(off, n int64) error {
	if err := e.before(off, n); err != nil {
		return err
	}
	return e.Device.Zero(off, n)
}
