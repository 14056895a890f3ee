package rpc

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/reqid"
)

var errGone = errors.New("gone")

var testErrors = Errors{{Code: "Gone", Status: http.StatusGone, Err: errGone}}

type echo struct {
	Text string `json:"text"`
	ID   string `json:"id,omitempty"`
}

func testMux(t *testing.T) *Mux {
	m := NewMux(testErrors, slog.New(slog.DiscardHandler))
	Func(m, "POST /echo", func(ctx context.Context, in echo) (echo, error) {
		switch in.Text {
		case "gone":
			return echo{}, errGone
		case "boom":
			return echo{}, errors.New("boom")
		}
		return echo{Text: in.Text, ID: reqid.From(ctx)}, nil
	})
	m.Handle("GET /stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			m.Error(w, r, errGone)
			return
		}
		io.WriteString(w, "streamed")
	}))
	return m
}

// serve starts h on loopback: mutual TLS when secure, else plain HTTP.
func serve(t *testing.T, ca *pki.CA, secure bool, h http.Handler) string {
	t.Helper()
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	s := NewServer(ca, cert, secure, h, httplimit.Defaults(), slog.New(slog.DiscardHandler))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	if secure {
		srv.TLS = s.TLSConfig
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCall(t *testing.T) {
	ca := testCA(t)
	for _, secure := range []bool{true, false} {
		name := map[bool]string{true: "mtls", false: "plain"}[secure]
		t.Run(name, func(t *testing.T) {
			addr := serve(t, ca, secure, testMux(t))
			cert, err := ca.IssueClient("test")
			if err != nil {
				t.Fatal(err)
			}
			c := NewClient(addr, ca, cert, secure, slog.New(slog.DiscardHandler))
			if !strings.HasPrefix(c.BaseURL, map[bool]string{true: "https://", false: "http://"}[secure]) {
				t.Fatalf("base URL %s", c.BaseURL)
			}
			ctx := reqid.With(context.Background(), "req-1")

			var out echo
			if err := c.Call(ctx, "POST", "/echo", echo{Text: "hi"}, &out); err != nil {
				t.Fatal(err)
			}
			if out.Text != "hi" || out.ID != "req-1" {
				t.Fatalf("got %+v, want the text and the caller's request id", out)
			}

			err = testErrors.Decode(c.Call(ctx, "POST", "/echo", echo{Text: "gone"}, &out))
			var re *Error
			if !errors.Is(err, errGone) || !errors.As(err, &re) || re.Status != http.StatusGone || re.RequestID != "req-1" {
				t.Fatalf("sentinel error: %#v", err)
			}

			err = testErrors.Decode(c.Call(ctx, "POST", "/echo", echo{Text: "boom"}, nil))
			if !errors.As(err, &re) || re.Code != CodeInternal || re.Status != 500 || errors.Is(err, errGone) {
				t.Fatalf("untyped error: %#v", err)
			}

			err = c.Call(ctx, "POST", "/echo", map[string]int{"bogus": 1}, nil)
			if !errors.As(err, &re) || re.Code != CodeBadRequest {
				t.Fatalf("bad input: %v", err)
			}
			err = c.Call(ctx, "POST", "/nothing", echo{}, nil)
			if !errors.As(err, &re) || re.Code != CodeNotFound {
				t.Fatalf("unknown call: %v", err)
			}

			rc, err := c.Open(ctx, "/stream")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "streamed" {
				t.Fatalf("stream: %q", b)
			}
			if _, err := c.Open(ctx, "/stream?fail=1"); !errors.Is(testErrors.Decode(err), errGone) {
				t.Fatalf("stream error: %v", err)
			}
		})
	}
}

// TestRefused: only the cloud's roles get through mutual TLS.
func TestRefused(t *testing.T) {
	ca, other := testCA(t), testCA(t)
	addr := serve(t, ca, true, testMux(t))
	discard := slog.New(slog.DiscardHandler)

	foreign, err := other.IssueClient("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := NewClient(addr, ca, foreign, true, discard).Call(context.Background(), "POST", "/echo", echo{Text: "x"}, nil); err == nil {
		t.Error("a certificate of another CA was accepted")
	}
	if err := NewClient(addr, other, foreign, true, discard).Call(context.Background(), "POST", "/echo", echo{Text: "x"}, nil); err == nil {
		t.Error("a client pinning another CA accepted our server")
	}
	plain := &Client{BaseURL: "http://" + addr}
	if err := plain.Call(context.Background(), "POST", "/echo", echo{Text: "x"}, nil); err == nil {
		t.Error("plain HTTP was accepted by a TLS listener")
	}
}
