package nc

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/netmode/guestport"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// fakePorts records what the node asks its guard.
type fakePorts struct {
	mu   sync.Mutex
	last []guestport.Port
	sets int
	err  error // what Set fails with
}

func (f *fakePorts) Set(ps []guestport.Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.last, f.sets = slices.Clone(ps), f.sets+1
	return nil
}

func (f *fakePorts) ports() []guestport.Port {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.last)
}

// TestPorts: a guest's port is guarded with its MAC and address before
// its guest starts, and no longer once it is terminated.
func TestPorts(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	fp := &fakePorts{}
	n.UsePorts(fp)
	req := h.req("i-0000000000000031")
	req.PrivateIP = netip.MustParseAddr("172.31.0.9")
	running(t, n, req)
	ps := fp.ports()
	if len(ps) != 1 || ps[0].ID != req.ID || ps[0].Name != "euvm-0000000000" || ps[0].MAC.String() != req.MAC ||
		ps[0].Addr != req.PrivateIP || ps[0].Learn {
		t.Fatalf("ports %+v", ps)
	}
	if err := n.TerminateInstance(context.Background(), req.ID); err != nil {
		t.Fatal(err)
	}
	if ps := fp.ports(); len(ps) != 0 {
		t.Fatalf("ports after termination %+v", ps)
	}
}

// TestLearned: in SYSTEM a port learns; the learned address is reported,
// guarded, and kept by a restarted node.
func TestLearned(t *testing.T) {
	h := newHost(t, func(c *conf.Config) { c.VNetMode = "SYSTEM" })
	n := h.start()
	fp := &fakePorts{}
	n.UsePorts(fp)
	req := h.req("i-0000000000000032")
	req.MAC = "d2:00:00:00:00:32"
	is := running(t, n, req)
	if is.PrivateIP.IsValid() {
		t.Fatalf("an address before any was learned: %v", is.PrivateIP)
	}
	if ps := fp.ports(); len(ps) != 1 || !ps[0].Learn || ps[0].Addr.IsValid() {
		t.Fatalf("ports before learning %+v", ps)
	}
	addr := netip.MustParseAddr("10.243.4.20")
	n.Learned(req.ID, addr)
	n.Learned("i-nobody", addr) // not an instance of this node: nothing
	if ps := fp.ports(); len(ps) != 1 || ps[0].Addr != addr || !ps[0].Learn {
		t.Fatalf("ports after learning %+v", ps)
	}
	if got := waitState(t, n, req.ID, ncapi.StateRunning); got.PrivateIP != addr {
		t.Fatalf("Describe reports %v, want the learned %v", got.PrivateIP, addr)
	}
	n.stop()
	n2 := h.start()
	if got := waitState(t, n2, req.ID, ncapi.StateRunning); got.PrivateIP != addr {
		t.Fatalf("a restarted node reports %v, want the learned %v", got.PrivateIP, addr)
	}
}

// TestPortsOldRequest: an instance accepted before requests carried its
// address (a node upgraded with guests running) is held to the address
// its managed-mode MAC stands for, not cut off until it leases again.
func TestPortsOldRequest(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	fp := &fakePorts{}
	n.UsePorts(fp)
	req := h.req("i-0000000000000033")
	req.MAC = "d0:0d:ac:1f:00:21"
	running(t, n, req)
	if ps := fp.ports(); len(ps) != 1 || ps[0].Addr != netip.MustParseAddr("172.31.0.33") || ps[0].Learn {
		t.Fatalf("ports %+v", ps)
	}
}

// TestLearnedHeld: an address another instance holds (a guest of this
// node, or one the cluster's network names on another) is not learned:
// a DHCP server talked into handing it out again (a forged release on
// the holder's behalf, a client id copied) would otherwise let the
// learner's port send from it, and the metadata service, which knows
// its caller by that address, answer with the holder's user data.
func TestLearnedHeld(t *testing.T) {
	h := newHost(t, func(c *conf.Config) { c.VNetMode = "SYSTEM" })
	n := h.start()
	fp := &fakePorts{}
	n.UsePorts(fp)
	a, b := h.req("i-0000000000000034"), h.req("i-0000000000000035")
	a.MAC, b.MAC = "d2:00:00:00:00:34", "d2:00:00:00:00:35"
	running(t, n, a)
	running(t, n, b)
	held := netip.MustParseAddr("10.243.4.34")
	n.Learned(a.ID, held)
	n.Learned(b.ID, held)
	for _, p := range fp.ports() {
		if p.ID == b.ID && p.Addr.IsValid() {
			t.Fatalf("%s learned %v, which %s holds on this node", b.ID, p.Addr, a.ID)
		}
	}
	// Held by an instance of another node, as the cluster's network says.
	elsewhere := netip.MustParseAddr("10.243.4.36")
	if err := n.SetNetwork(context.Background(), ncapi.Network{Filter: true,
		Instances: []ncapi.NetInstance{{ID: "i-0000000000000036", PrivateIP: elsewhere}}}); err != nil {
		t.Fatal(err)
	}
	n.Learned(b.ID, elsewhere)
	for _, p := range fp.ports() {
		if p.ID == b.ID && p.Addr.IsValid() {
			t.Fatalf("%s learned %v, which another node's instance holds", b.ID, p.Addr)
		}
	}
	// A free one is learned; the instance's own address in the network
	// (the cloud recorded it) is no conflict at a renewal.
	free := netip.MustParseAddr("10.243.4.35")
	n.Learned(b.ID, free)
	if err := n.SetNetwork(context.Background(), ncapi.Network{Filter: true,
		Instances: []ncapi.NetInstance{{ID: b.ID, PrivateIP: free}}}); err != nil {
		t.Fatal(err)
	}
	n.Learned(b.ID, netip.MustParseAddr("10.243.4.37"))
	n.Learned(b.ID, free)
	for _, p := range fp.ports() {
		if p.ID == b.ID && p.Addr != free {
			t.Fatalf("%s holds %v, want %v", b.ID, p.Addr, free)
		}
	}
}

// TestPortsUnguarded: a guest whose port cannot be guarded does not start
// (failed, saying why): unguarded, it could send as any guest, and the
// groups and the metadata service would take it for that guest.
func TestPortsUnguarded(t *testing.T) {
	h := newHost(t, nil)
	n := h.start()
	n.UsePorts(&fakePorts{err: errors.New("nftables: the kernel refused")})
	req := h.req("i-0000000000000037")
	req.PrivateIP = netip.MustParseAddr("172.31.0.37")
	if err := n.RunInstance(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if st := waitState(t, n, req.ID, ncapi.StateFailed); !strings.Contains(st.Reason, "guest ports not guarded") {
		t.Errorf("failed for %q", st.Reason)
	}
}
