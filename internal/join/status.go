package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/store"
)

// PathStatus is the call a cluster controller on a host of its own makes to
// learn whether a node's certificate is in force (it has no copy of the
// CA's records, and must not drive a revoked node), and a node to learn
// whether the cluster controller calling it is.
const PathStatus = "/internal/v1/certificate-status"

// statusRequest names a joined host's certificate by its serial (hex).
type statusRequest struct {
	Serial string `json:"serial"`
}

// statusResponse answers a certificate in force; a revoked or unknown one
// is answered ErrRevoked.
type statusResponse struct {
	NotAfter time.Time `json:"not_after"`
}

// statusHandler serves PathStatus to joined cluster controllers (about
// their nodes) and nodes (about the cluster controllers that call them);
// a serial's status is no secret.
func (s *Server) statusHandler() http.Handler {
	m := rpc.NewMux(Errors, s.log)
	m.AllowRoles("cc", "nc")
	rpc.Func(m, "POST "+PathStatus, func(ctx context.Context, req statusRequest) (statusResponse, error) {
		if req.Serial == "" || len(req.Serial) > 64 {
			return statusResponse{}, fmt.Errorf("%w: no certificate serial", ErrBadRequest)
		}
		rec, err := checkSerial(ctx, s.store, req.Serial, "")
		if err != nil {
			return statusResponse{}, err
		}
		return statusResponse{NotAfter: store.Time(rec.NotAfterMS)}, nil
	})
	return m
}

// checkSerial is CheckRevoked for the certificate with serial (name, its
// subject, for the message).
func checkSerial(ctx context.Context, st *store.Store, serial, name string) (store.HostCert, error) {
	rec, err := st.HostCert(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return rec, fmt.Errorf("%w: certificate %s %s is not in this cloud's records", ErrRevoked, serial, name)
	case err != nil:
		return rec, fmt.Errorf("check revocation: %w", err)
	case rec.RevokedMS != 0:
		return rec, fmt.Errorf("%w (%s:%s, serial %s, revoked at %s)", ErrRevoked, rec.Role, rec.Host, rec.Serial, store.Time(rec.RevokedMS).Format(time.RFC3339))
	}
	return rec, nil
}

// Revocation checks joined hosts' certificates at the front-end for a role
// away from the CA's records (a cluster controller on a host of its own,
// checking its nodes). It fails safe: a certificate the front-end has not
// said is in force is refused. An answer "in force" is kept Fresh, and
// while the front-end cannot be reached it is believed up to Stale old, so
// that a front-end restart does not cut a cluster from its nodes; a
// revocation is kept for good.
type Revocation struct {
	Fresh, Stale time.Duration

	id  *Identity
	log *slog.Logger

	mu   sync.Mutex
	seen map[string]statusEntry
}

type statusEntry struct {
	at      time.Time
	revoked error // nil: in force at
}

// Revocation is the revocation checker of certificates this host's role
// meets, asking the front-end it joined.
func (id *Identity) Revocation(log *slog.Logger) *Revocation {
	return &Revocation{Fresh: time.Minute, Stale: time.Hour, id: id, log: log, seen: map[string]statusEntry{}}
}

// Check refuses cert when it is a joined host's that the front-end does
// not hold in force (ErrRevoked), or when the front-end cannot tell and no
// recent enough answer is kept. Certificates of the front-end's own roles
// pass.
func (r *Revocation) Check(ctx context.Context, cert *x509.Certificate) error {
	if !pki.IsJoined(cert) {
		return nil
	}
	serial := pki.SerialHex(cert)
	r.mu.Lock()
	e, ok := r.seen[serial]
	r.mu.Unlock()
	if ok && (e.revoked != nil || time.Since(e.at) < r.Fresh) {
		return e.revoked
	}
	c := rpc.NewClientConfig(r.id.Server, r.id.FrontEndTLSConfig(), r.log)
	c.HTTP.Timeout = 10 * time.Second
	defer c.HTTP.CloseIdleConnections()
	var resp statusResponse
	err := Errors.Decode(c.Call(ctx, http.MethodPost, PathStatus, statusRequest{Serial: serial}, &resp))
	switch {
	case err == nil:
		r.keep(serial, statusEntry{at: time.Now()})
		return nil
	case errors.Is(err, ErrRevoked):
		err = fmt.Errorf("%s: %w", cert.Subject.CommonName, err)
		r.keep(serial, statusEntry{at: time.Now(), revoked: err})
		return err
	case ok && time.Since(e.at) < r.Stale:
		r.log.WarnContext(ctx, "cannot ask the front-end whether a certificate is revoked; believing its last answer", "peer", cert.Subject.CommonName, "serial", serial, "answered", e.at.UTC(), "err", err)
		return nil
	}
	return fmt.Errorf("%w: cannot learn from the front-end at %s whether %s (serial %s) is revoked: %w", ErrRevocationUnknown, r.id.Server, cert.Subject.CommonName, serial, err)
}

func (r *Revocation) keep(serial string, e statusEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[serial] = e
}

// ErrRevocationUnknown: a certificate refused because whether it is revoked
// could not be learnt (failing safe).
var ErrRevocationUnknown = errors.New("revocation unknown")

// RefuseRevoked makes tc, a client's or a server's configuration, refuse a
// peer whose joined-host certificate check refuses: on the front-end, the
// CA's records (CheckRevoked: revoked or unknown); on another host, the
// front-end's answer (Revocation.Check, which fails safe). A revoked host
// is refused from its next connection. It changes and returns tc.
func RefuseRevoked(tc *tls.Config, check func(context.Context, *x509.Certificate) error) *tls.Config {
	return pki.AlsoCheckPeer(tc, func(cert *x509.Certificate) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		return check(ctx, cert)
	})
}
