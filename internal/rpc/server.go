package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/reqid"
)

// MaxRequest bounds the JSON body of a call: calls carry descriptions, never
// data (images travel as responses).
const MaxRequest = 1 << 20

// NewServer is the http.Server of a role's internal listener serving h. With
// secure, it requires a client certificate of one of the cloud's roles
// (pki.CA.ServerTLSConfig); without (ENABLE_WS_SECURITY="N") it is plain HTTP
// and says so loudly. lim bounds its clients as the public listeners' are
// (httplimit.Defaults in production): a peer that stalls holds nothing for
// long. Serve it with Serve, on a listener from httplimit.Conns.
func NewServer(ca *pki.CA, cert tls.Certificate, secure bool, h http.Handler, lim httplimit.Config, log *slog.Logger) *http.Server {
	srv := lim.Server(h, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	if secure {
		srv.TLSConfig = ca.ServerTLSConfig(cert)
	} else {
		log.Warn("ENABLE_WS_SECURITY=N: internal listener is PLAIN HTTP without authentication; anyone who reaches it can drive this role")
	}
	return srv
}

// Serve serves srv on ln, over TLS when srv has a TLS configuration.
func Serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// Mux routes an API's calls (http.ServeMux patterns, "POST /nc/v1/run") and
// applies, once for all of them: the role check of the peer, the request id
// and the error encoding by the API's table.
type Mux struct {
	mux  http.ServeMux
	errs Errors
	log  *slog.Logger
	// roles, when set, are the only roles (pki.RoleOf) whose certificates
	// may call; anonymous lets callers without a certificate in (the
	// handlers authenticate them otherwise: a join token).
	roles     []string
	anonymous bool
}

// AllowRoles lets only peers whose certificates were issued to one of roles
// call, so that one node's certificate cannot drive another node: the node
// API answers the cluster and cloud controllers only.
func (m *Mux) AllowRoles(roles ...string) { m.roles = roles }

// AllowAnonymous serves peers without a certificate too; the handlers must
// authenticate them by other means (the join call's token secret). A
// certificate a peer does present is still checked (Peer has it).
func (m *Mux) AllowAnonymous() { m.anonymous = true }

// Peer is who made a call: its address and, over mutual TLS, its verified
// certificate (nil over plain HTTP or from an anonymous peer).
type Peer struct {
	Addr netip.Addr
	Cert *x509.Certificate
}

type peerKey struct{}

// PeerOf is the caller of the call ctx belongs to (handlers under a Mux).
func PeerOf(ctx context.Context) Peer {
	p, _ := ctx.Value(peerKey{}).(Peer)
	return p
}

// NewMux makes a Mux whose errors are encoded with errs.
func NewMux(errs Errors, log *slog.Logger) *Mux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mux{errs: errs, log: log}
}

// ServeHTTP checks the peer, puts the request id in the context and the
// answer's header, and routes.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(reqid.Header)
	if id == "" || len(id) > 128 {
		id = reqid.New()
	}
	var peer Peer
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer.Addr = ap.Addr().Unmap()
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		peer.Cert = r.TLS.PeerCertificates[0]
	}
	r = r.WithContext(context.WithValue(reqid.With(r.Context(), id), peerKey{}, peer))
	w.Header().Set(reqid.Header, id)
	if err := m.authorize(r, peer); err != nil {
		// A refusal the API names (a join's "WrongHost") keeps its name;
		// the rest are Forbidden.
		code, status := m.errs.encode(err)
		if status >= 500 {
			code, status = CodeForbidden, http.StatusForbidden
		}
		writeError(w, &Error{Status: status, Code: code, Message: err.Error()})
		return
	}
	if _, pattern := m.mux.Handler(r); pattern == "" {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: r.Method + " " + r.URL.Path + ": no such call"})
		return
	}
	m.mux.ServeHTTP(w, r)
}

// authorize checks the peer of a call over TLS. The TLS configuration
// already refuses peers that are not roles; this keeps a handler mounted on
// a listener configured otherwise (the front-end's, where certificates are
// optional) from serving them, and adds what TLS cannot know: which roles
// may call this API, and whether a joined host's certificate comes from
// that host.
func (m *Mux) authorize(r *http.Request, p Peer) error {
	if r.TLS == nil { // ENABLE_WS_SECURITY="N": nothing to check, said loudly at start
		return nil
	}
	if p.Cert == nil {
		if m.anonymous {
			return nil
		}
		return errors.New("not one of the cloud's roles (no client certificate)")
	}
	if !pki.IsInternal(p.Cert.Subject.Organization) {
		return errors.New("not one of the cloud's roles")
	}
	if len(m.roles) > 0 && !slices.Contains(m.roles, pki.RoleOf(p.Cert)) {
		return fmt.Errorf("%s may not make this call (only roles %s may)", p.Cert.Subject.CommonName, strings.Join(m.roles, ", "))
	}
	return pki.CheckPeerAddress(p.Cert, p.Addr)
}

// Handle mounts a handler that writes its own answer (a stream); it reports
// errors with m.Error.
func (m *Mux) Handle(pattern string, h http.Handler) { m.mux.Handle(pattern, h) }

// Error answers err encoded by the API's table; an error outside it is
// logged and answered as InternalError.
func (m *Mux) Error(w http.ResponseWriter, r *http.Request, err error) {
	code, status := m.errs.encode(err)
	if status >= 500 {
		m.log.ErrorContext(r.Context(), "internal call failed", "call", r.Method+" "+r.URL.Path, "error", err)
	}
	writeError(w, &Error{Status: status, Code: code, Message: err.Error()})
}

// Func mounts f as the call pattern names: the body decodes into In, and
// f's Out is the answer.
func Func[In, Out any](m *Mux, pattern string, f func(ctx context.Context, in In) (Out, error)) {
	m.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		var in In
		// The whole body is read, so that the connection can carry the
		// next call.
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequest))
		if errors.Is(err, httplimit.ErrBodyTimeout) {
			writeError(w, &Error{Status: http.StatusRequestTimeout, Code: CodeTimeout, Message: fmt.Sprintf("read %s: %v", r.URL.Path, err)})
			return
		}
		if err != nil {
			writeError(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("read %s: %v", r.URL.Path, err)})
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeError(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("decode %s: %v", r.URL.Path, err)})
			return
		}
		out, err := f(r.Context(), in)
		if err != nil {
			m.Error(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(out); err != nil && !errors.Is(err, context.Canceled) {
			m.log.WarnContext(r.Context(), "write answer", "call", r.URL.Path, "error", err)
		}
	})
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}
