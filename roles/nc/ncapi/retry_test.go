package ncapi_test

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// dropFirst closes the connection of the first call without an answer, as
// a node controller restarting or a flaky link does.
type dropFirst struct {
	calls atomic.Int64
	next  http.Handler
}

func (d *dropFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.calls.Add(1) == 1 {
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	d.next.ServeHTTP(w, r)
}

// TestNodeRetriesWhenNoAnswer: a call harmless twice whose connection
// breaks is made again (a launch too: the node starts one guest for an id
// however often it is asked); the poll is not, its next round asks again.
func TestNodeRetriesWhenNoAnswer(t *testing.T) {
	ca, _ := testCAs(t)
	req := ncapi.InstanceRequest{ID: "i-0123456789abcdef0", VMType: "m1.small", Holds: ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2},
		Image: ncapi.ImageRef{ID: "emi-1", SHA256: strings.Repeat("a", 64), Size: 10}}
	for _, tc := range []struct {
		name    string
		call    func(context.Context, ncapi.Node) error
		calls   int64
		wantErr bool
	}{
		{"run", func(ctx context.Context, n ncapi.Node) error { return n.RunInstance(ctx, req) }, 2, false},
		{"terminate", func(ctx context.Context, n ncapi.Node) error { return n.TerminateInstance(ctx, "i-1") }, 2, false},
		{"network", func(ctx context.Context, n ncapi.Node) error { return n.SetNetwork(ctx, ncapi.Network{}) }, 2, false},
		{"poll", func(ctx context.Context, n ncapi.Node) error { _, err := n.Describe(ctx); return err }, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dropFirst{next: ncapi.NewHandler(newFake(), slog.New(slog.DiscardHandler))}
			cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(d)
			srv.TLS = ca.ServerTLSConfig(cert)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			client, err := ca.IssueClient("cc:test")
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(context.Background(), clientOf(t, srv.Listener.Addr().String(), ca, client))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v", err)
			}
			if got := d.calls.Load(); got != tc.calls {
				t.Errorf("%d calls reached the node, want %d", got, tc.calls)
			}
		})
	}
}
