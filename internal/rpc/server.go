package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

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
	r = r.WithContext(reqid.With(r.Context(), id))
	w.Header().Set(reqid.Header, id)
	// The TLS configuration already refuses other peers; this keeps a
	// handler mounted on a listener configured otherwise from serving them.
	if r.TLS != nil && (len(r.TLS.PeerCertificates) == 0 || !pki.IsInternal(r.TLS.PeerCertificates[0].Subject.Organization)) {
		writeError(w, &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "not one of the cloud's roles"})
		return
	}
	if _, pattern := m.mux.Handler(r); pattern == "" {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: r.Method + " " + r.URL.Path + ": no such call"})
		return
	}
	m.mux.ServeHTTP(w, r)
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
