package nc

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// fakeNetwork stands for the host's network agent (nodenet, tested in
// its own package against the kernel): it records what it is given.
type fakeNetwork struct {
	mu   sync.Mutex
	sets []ncapi.Network
	fail error
}

func (f *fakeNetwork) Set(_ context.Context, n ncapi.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, n)
	return f.fail
}

func (f *fakeNetwork) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sets)
}

// TestSetNetwork: the node applies the network it is handed and reports
// its version; a failed apply reports none, so the cluster controller
// sends it again, and the reconcile loop applies the last one again.
func TestSetNetwork(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	ctx := context.Background()
	if v := status(t, n).Network; v != "" {
		t.Fatalf("a fresh node reports network %q", v)
	}
	nw := ncapi.Network{Subnet: netip.MustParsePrefix("10.1.0.0/16"), Segments: []ncapi.Segment{{Bridge: "euca-br0", VNI: 1,
		Gateway: netip.MustParseAddr("10.1.0.1"), Remotes: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}}}

	// Without an agent (a simulated host) the network is only recorded.
	if err := n.SetNetwork(ctx, nw); err != nil {
		t.Fatal(err)
	}
	if v := status(t, n).Network; v != nw.Version() {
		t.Errorf("network %q, want %q", v, nw.Version())
	}

	agent := &fakeNetwork{fail: errors.New("no br_netfilter")}
	n.UseNetwork(agent)
	if err := n.SetNetwork(ctx, nw); err == nil {
		t.Fatal("a failed apply reported success")
	}
	if v := status(t, n).Network; v != "" {
		t.Errorf("after a failed apply the node reports %q", v)
	}
	agent.mu.Lock()
	agent.fail = nil
	agent.mu.Unlock()
	n.reapplyNetwork(ctx) // what Run does at each reconcile
	if v := status(t, n).Network; v != nw.Version() || agent.count() != 2 {
		t.Errorf("after the reconcile: network %q, %d applies", v, agent.count())
	}

	bad := nw
	bad.Segments = []ncapi.Segment{{Bridge: "a-bridge-name-too-long"}}
	if err := n.SetNetwork(ctx, bad); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("a bridge name too long: %v, want ErrBadRequest", err)
	}
}
