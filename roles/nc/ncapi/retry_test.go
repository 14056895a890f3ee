package ncapi_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

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
			d := &rpctest.DropFirst{N: 1, Next: ncapi.NewHandler(newFake(), slog.New(slog.DiscardHandler))}
			addr := rpctest.Serve(t, ca, d)
			err := tc.call(context.Background(), clientOf(t, addr, ca, rpctest.ClientCert(t, ca, "cc:test")))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v", err)
			}
			if got := d.Calls(); got != tc.calls {
				t.Errorf("%d calls reached the node, want %d", got, tc.calls)
			}
		})
	}
}
