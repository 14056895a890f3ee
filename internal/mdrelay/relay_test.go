package mdrelay

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// seen is what the front-end received of a relayed request.
type seen struct {
	method, uri string
	header      http.Header
	body        string
}

func frontEnd(t *testing.T, got *seen) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = seen{method: r.Method, uri: r.URL.RequestURI(), header: r.Header.Clone(), body: string(b)}
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "answer")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func relayed(h http.Handler, method, path, from string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, strings.NewReader(body))
	r.RemoteAddr = from
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestRelayCarriesTheRequest: method, path, query, the guest's headers and
// body reach the front-end, with the caller named by the connection only;
// the answer comes back as the front-end gave it.
func TestRelayCarriesTheRequest(t *testing.T) {
	var got seen
	srv := frontEnd(t, &got)
	rl := &Relay{BaseURL: srv.URL, HTTP: srv.Client()}
	w := relayed(rl, http.MethodPut, "/latest/api/token?x=1", "172.31.0.7:41000", map[string]string{
		"X-aws-ec2-metadata-token-ttl-seconds": "60",
		"X-Forwarded-For":                      "10.0.0.1",
		CallerHeader:                           "172.31.0.9",
		"Proxy-Authorization":                  "secret",
	}, "b")
	if w.Code != http.StatusTeapot || w.Body.String() != "answer" || w.Header().Get("X-aws-ec2-metadata-token-ttl-seconds") != "60" {
		t.Errorf("answer: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	if w.Header().Get("Connection") != "" {
		t.Errorf("the front-end's hop header reached the guest: %v", w.Header())
	}
	if got.method != http.MethodPut || got.uri != Path+"/latest/api/token?x=1" || got.body != "b" {
		t.Errorf("front-end got %s %s %q", got.method, got.uri, got.body)
	}
	if v := got.header.Values(CallerHeader); len(v) != 1 || v[0] != "172.31.0.7" {
		t.Errorf("caller %q, want the connection's 172.31.0.7 only", v)
	}
	if got.header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "60" || got.header.Get("X-Forwarded-For") != "10.0.0.1" {
		t.Errorf("the guest's headers did not pass: %v", got.header)
	}
	if got.header.Get("Proxy-Authorization") != "" {
		t.Errorf("a hop header passed: %v", got.header)
	}
}

// TestRelayLimits: a body over MaxBody is refused before the front-end is
// asked; an unreachable front-end is a 502 to the guest.
func TestRelayLimits(t *testing.T) {
	var got seen
	srv := frontEnd(t, &got)
	rl := &Relay{BaseURL: srv.URL, HTTP: srv.Client()}
	if w := relayed(rl, http.MethodPut, "/latest/api/token", "172.31.0.7:41000", nil, strings.Repeat("x", MaxBody+1)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %d", w.Code)
	}
	if got.method != "" {
		t.Errorf("the front-end was asked: %+v", got)
	}
	srv.Close()
	if w := relayed(rl, http.MethodGet, "/latest/meta-data/", "172.31.0.7:41000", nil, ""); w.Code != http.StatusBadGateway {
		t.Errorf("front-end down: %d", w.Code)
	}
}

// TestRelayAllow: a caller Allow refuses (no guest of the node serving
// the relay) gets 404 and the front-end hears nothing of it; an allowed
// one is relayed.
func TestRelayAllow(t *testing.T) {
	var got seen
	srv := frontEnd(t, &got)
	guest := "10.247.0.5"
	rl := &Relay{BaseURL: srv.URL, HTTP: srv.Client(), Allow: func(a netip.Addr) bool { return a.String() == guest }}
	if w := relayed(rl, http.MethodGet, "/latest/meta-data/instance-id", "10.247.0.6:41000", nil, ""); w.Code != http.StatusNotFound {
		t.Errorf("another caller: %d %q, want 404", w.Code, w.Body.String())
	}
	if got.method != "" {
		t.Errorf("the front-end was asked for another caller: %+v", got)
	}
	if w := relayed(rl, http.MethodGet, "/latest/meta-data/instance-id", "[::ffff:"+guest+"]:41000", nil, ""); w.Code != http.StatusTeapot {
		t.Errorf("the guest: %d %q", w.Code, w.Body.String())
	}
	if got.header.Get(CallerHeader) != guest {
		t.Errorf("caller named %q, want %s", got.header.Get(CallerHeader), guest)
	}
}
