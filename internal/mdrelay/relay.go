// Package mdrelay relays guests' requests to the instance metadata service
// from a cluster controller on a host of its own to the front-end.
//
// The metadata service identifies an instance by the source address of its
// request, and lives on the front-end only. A cluster on another host
// redirects its guests' 169.254.169.254:80 to a Relay on its own loopback
// (METADATA_PORT, as the front-end does for its own cluster), which sends
// each request on to the front-end over the internal mutual TLS on
// CLOUD_PORT, under Path, naming the guest's address in CallerHeader. That
// address is the relay's connection's source, never anything the guest
// sent: a CallerHeader from the guest is dropped. The front-end answers as
// its metadata service would for that address, for instances of the
// calling cluster's zone only (roles/clc).
//
// A node in STATIC or SYSTEM mode on a host of its own serves one too, for
// its own guests only (Allow), under its node identity: the front-end
// answers it for instances running on that node only.
package mdrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/reqid"
)

// Path is where the front-end serves relayed metadata requests on
// CLOUD_PORT's TLS side; the guest's path follows it.
const Path = "/internal/v1/metadata"

// CallerHeader names the guest's address in a relayed request.
const CallerHeader = "X-Euca-Metadata-Caller"

// Limits of a relayed request: the metadata service reads no body (a PUT
// of a token carries none), and its largest answer is user-data (16 KiB on
// EC2) or an index; the deadline covers the front-end's wait for a pending
// instance to be seen running (5 s) with room for the hop.
const (
	MaxBody   = 16 << 10
	MaxAnswer = 1 << 20
	Deadline  = 20 * time.Second
)

// hopHeaders are a connection's own, never passed on (RFC 9110 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}

// Relay is the metadata service as a cluster's guests reach it: it serves
// every path, and trusts the connection's source address, so it must be
// mounted on a listener of its own that only the cluster's redirect
// reaches (loopback), never behind a proxy.
type Relay struct {
	// BaseURL is the front-end's CLOUD_PORT ("https://host:port"); HTTP
	// carries the host's identity (mutual TLS).
	BaseURL string
	HTTP    *http.Client
	Log     *slog.Logger
	// Allow, when set, is asked about each caller's address: a caller it
	// refuses gets 404, as an address no instance holds does, and nothing
	// is asked of the front-end.
	Allow func(netip.Addr) bool
}

func (rl *Relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if rl.Allow != nil && !rl.Allow(ap.Addr().Unmap()) {
		rl.log().WarnContext(r.Context(), "metadata relay: a caller that is no guest of this host", "caller", ap.Addr().String())
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	if len(body) > MaxBody {
		http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), Deadline)
	defer cancel()
	id := reqid.New()
	ctx = reqid.With(ctx, id)
	target := strings.TrimSuffix(rl.BaseURL, "/") + Path + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, nil)
	if err != nil {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	if len(body) > 0 {
		out.Body = io.NopCloser(strings.NewReader(string(body)))
		out.ContentLength = int64(len(body))
	}
	// The guest's headers as it sent them (the token headers, and any
	// X-Forwarded-For, which the service judges), but the caller's
	// address is this connection's only.
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.Header.Del(CallerHeader)
	out.Header.Set(CallerHeader, ap.Addr().Unmap().String())
	out.Header.Set(reqid.Header, id)
	hc := rl.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(out)
	if err != nil {
		rl.log().WarnContext(ctx, "metadata relay: front-end unreachable", "caller", ap.Addr().String(), "err", err)
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// The front-end refused this cluster (not a cluster's certificate,
		// or a revoked one): the operator's problem, not the guest's.
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		rl.log().ErrorContext(ctx, "metadata relay: the front-end refuses this host", "answer", fmt.Sprintf("%.300s", raw))
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.Header().Del(reqid.Header)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, io.LimitReader(resp.Body, MaxAnswer)); err != nil {
		rl.log().DebugContext(ctx, "metadata relay: answer cut", "err", err)
	}
}

func (rl *Relay) log() *slog.Logger {
	if rl.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rl.Log
}
