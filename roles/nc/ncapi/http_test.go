package ncapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/reqid"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// fakeNode is a Node in memory, with the behaviour the interface documents.
type fakeNode struct {
	mu     sync.Mutex
	max    ncapi.Resources
	insts  map[string]ncapi.InstanceStatus
	lastID string // the request id of the last call
	net    ncapi.Network

	lastAttach ncapi.VolumeAttachment
	lastForce  bool
	lastRun    ncapi.InstanceRequest
}

func newFake() *fakeNode {
	return &fakeNode{max: ncapi.Resources{Cores: 4, MemoryMiB: 4096, DiskGiB: 100}, insts: map[string]ncapi.InstanceStatus{}}
}

func (f *fakeNode) seen(ctx context.Context) { f.lastID = reqid.From(ctx) }

func (f *fakeNode) Describe(ctx context.Context) (ncapi.NodeStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	s := ncapi.NodeStatus{Host: "fake", Driver: "sim", Max: f.max, Free: f.max}
	if f.net.Segments != nil {
		s.Network = f.net.Version()
	}
	for _, i := range f.insts {
		s.Free = s.Free.Sub(i.Holds)
		s.Instances = append(s.Instances, i)
	}
	return s, nil
}

func (f *fakeNode) RunInstance(ctx context.Context, req ncapi.InstanceRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	if !strings.HasPrefix(req.ID, "i-") {
		return fmt.Errorf("instance id %q: %w", req.ID, ncapi.ErrBadRequest)
	}
	f.lastRun = req
	if _, ok := f.insts[req.ID]; ok {
		return nil
	}
	free := f.max
	for _, i := range f.insts {
		free = free.Sub(i.Holds)
	}
	if !free.Fits(req.Holds) {
		return ncapi.ErrNoCapacity
	}
	f.insts[req.ID] = ncapi.InstanceStatus{ID: req.ID, State: ncapi.StatePending, Holds: req.Holds,
		LaunchedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), PrivateIP: req.PrivateIP}
	return nil
}

func (f *fakeNode) TerminateInstance(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	delete(f.insts, id)
	return nil
}

func (f *fakeNode) RebootInstance(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	i, ok := f.insts[id]
	if !ok {
		return ncapi.ErrNoSuchInstance
	}
	if i.State != ncapi.StateRunning {
		return ncapi.ErrIncorrectState
	}
	return nil
}

var console = []byte("boot\x00\xff\xfe ok\n")

func (f *fakeNode) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	if _, ok := f.insts[id]; !ok {
		return nil, ncapi.ErrNoSuchInstance
	}
	return console, nil
}

func (f *fakeNode) SetNetwork(ctx context.Context, n ncapi.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	for _, s := range n.Segments {
		if s.Bridge == "" {
			return fmt.Errorf("segment without a bridge: %w", ncapi.ErrBadRequest)
		}
	}
	f.net = n
	return nil
}

// testNode is the one suite: it runs against whatever Node makeNode gives
// over the fake.
func testNode(t *testing.T, makeNode func(t *testing.T, f *fakeNode) ncapi.Node) {
	f := newFake()
	n := makeNode(t, f)
	ctx := reqid.With(context.Background(), "req-42")
	small := ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2}
	req := ncapi.InstanceRequest{ID: "i-0123456789abcdef0", VMType: "m1.small", Holds: small,
		Image: ncapi.ImageRef{ID: "emi-1", SHA256: strings.Repeat("a", 64), Size: 10}, MAC: "d0:0d:01:02:03:04", Bridge: "euca-br0",
		PrivateIP: netip.MustParseAddr("10.1.2.3")}

	if err := n.RunInstance(ctx, req); err != nil {
		t.Fatal(err)
	}
	if f.lastID != "req-42" {
		t.Errorf("node saw request id %q", f.lastID)
	}
	if err := n.RunInstance(ctx, req); err != nil {
		t.Fatalf("second run of the same id: %v", err)
	}
	s, err := n.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Instances) != 1 || s.Instances[0].ID != req.ID || s.Instances[0].State != ncapi.StatePending ||
		!s.Instances[0].LaunchedAt.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || s.Free != f.max.Sub(small) ||
		s.Instances[0].PrivateIP != req.PrivateIP {
		t.Fatalf("describe: %+v", s)
	}

	big := req
	big.ID, big.Holds = "i-0000000000000000b", ncapi.Resources{Cores: 64}
	if err := n.RunInstance(ctx, big); !errors.Is(err, ncapi.ErrNoCapacity) {
		t.Errorf("too big: %v, want ErrNoCapacity", err)
	}
	bad := req
	bad.ID = "x"
	if err := n.RunInstance(ctx, bad); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("bad id: %v", err)
	}
	if err := n.RebootInstance(ctx, req.ID); !errors.Is(err, ncapi.ErrIncorrectState) {
		t.Errorf("reboot pending: %v, want ErrIncorrectState", err)
	}
	if err := n.RebootInstance(ctx, "i-nope"); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Errorf("reboot unknown: %v, want ErrNoSuchInstance", err)
	}
	out, err := n.ConsoleOutput(ctx, req.ID)
	if err != nil || !bytes.Equal(out, console) {
		t.Errorf("console: %q, %v", out, err)
	}
	if _, err := n.ConsoleOutput(ctx, "i-nope"); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Errorf("console unknown: %v, want ErrNoSuchInstance", err)
	}
	if err := n.TerminateInstance(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if err := n.TerminateInstance(ctx, req.ID); err != nil {
		t.Errorf("terminate twice: %v", err)
	}
	if s, err := n.Describe(ctx); err != nil || len(s.Instances) != 0 {
		t.Errorf("after terminate: %+v, %v", s, err)
	}

	// The network arrives whole, and Describe names its version.
	nw := ncapi.Network{
		Segments: []ncapi.Segment{{Bridge: "euca-br0", VNI: 1, Gateway: netip.MustParseAddr("10.1.0.1"),
			Remotes: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.3")}}},
		Subnet:    netip.MustParsePrefix("10.1.0.0/16"),
		Instances: []ncapi.NetInstance{{ID: "i-1", PrivateIP: netip.MustParseAddr("10.1.0.2"), Groups: []string{"sg-1"}}},
		Groups: []ncapi.SecurityGroup{{ID: "sg-1", Ingress: []ncapi.Rule{
			{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")},
			{Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroup: "sg-1"}},
			Egress: []ncapi.Rule{{Protocol: "icmp", FromPort: 8, ToPort: 0, PeerGroup: "sg-1"}}}},
		Filter: true,
	}
	if err := n.SetNetwork(ctx, nw); err != nil {
		t.Fatal(err)
	}
	if got := f.net; got.Version() != nw.Version() || !reflect.DeepEqual(got, nw) {
		t.Errorf("network arrived as %+v", got)
	}
	if s, err := n.Describe(ctx); err != nil || s.Network != nw.Version() {
		t.Errorf("describe network %q, %v; want %q", s.Network, err, nw.Version())
	}
	bad2 := nw
	bad2.Segments = []ncapi.Segment{{}}
	if err := n.SetNetwork(ctx, bad2); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("segment without a bridge: %v, want ErrBadRequest", err)
	}
}

// TestNetworkVersion: equal networks share a version, any change makes
// another.
func TestNetworkVersion(t *testing.T) {
	a := ncapi.Network{Subnet: netip.MustParsePrefix("10.1.0.0/16"),
		Segments: []ncapi.Segment{{Bridge: "euca-br0", VNI: 1, Remotes: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}}}
	b := a
	b.Segments = []ncapi.Segment{a.Segments[0]}
	if a.Version() != b.Version() || len(a.Version()) != 24 {
		t.Errorf("versions %q %q", a.Version(), b.Version())
	}
	b.Segments[0].Remotes = append(b.Segments[0].Remotes, netip.MustParseAddr("192.0.2.2"))
	if a.Version() == b.Version() {
		t.Error("a new remote kept the version")
	}
}

func testCAs(t *testing.T) (*pki.CA, *pki.CA) { return rpctest.CAs(t) }

// serveNode serves f over a real loopback listener with mutual TLS and
// returns its address.
func serveNode(t *testing.T, f ncapi.Node) string {
	ca, _ := testCAs(t)
	return rpctest.Serve(t, ca, ncapi.NewHandler(f, slog.New(slog.DiscardHandler)))
}

func clientOf(t *testing.T, addr string, trust *pki.CA, cert tls.Certificate) ncapi.Node {
	return ncapi.NewClient(rpctest.Client(addr, trust, cert))
}

func TestNodeInProcess(t *testing.T) {
	testNode(t, func(t *testing.T, f *fakeNode) ncapi.Node { return f })
}

func TestNodeOverHTTPS(t *testing.T) {
	testNode(t, func(t *testing.T, f *fakeNode) ncapi.Node {
		ca, _ := testCAs(t)
		return clientOf(t, serveNode(t, f), ca, rpctest.ClientCert(t, ca, "cc:test"))
	})
}

// TestNodeRefusesStrangers: a certificate of another CA, or a user's
// certificate of this one, gets no answer.
func TestNodeRefusesStrangers(t *testing.T) {
	ca, other := testCAs(t)
	f := newFake()
	addr := serveNode(t, f)

	certs := rpctest.Strangers(t, ca, other, "cc:test")
	// Another node's certificate, from this CA: a node cannot drive a node.
	certs["node"] = rpctest.ClientCert(t, ca, "nc:node2")
	certs["walrus"] = rpctest.ClientCert(t, ca, "walrus:host3")
	for name, cert := range certs {
		if _, err := clientOf(t, addr, ca, cert).Describe(context.Background()); err == nil {
			t.Errorf("%s: a call was answered", name)
		}
		// Nor may it set the node's network (bridges, tunnels, filters).
		if err := clientOf(t, addr, ca, cert).SetNetwork(context.Background(), ncapi.Network{}); err == nil {
			t.Errorf("%s: SetNetwork was answered", name)
		}
	}
	if f.lastID != "" {
		t.Error("the node was reached")
	}
}

// powerNode is a fake node that can power its host down.
type powerNode struct {
	*fakeNode
	mu   sync.Mutex
	down int
}

func (p *powerNode) PowerDown(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down++
	return nil
}

// TestPowerDownOverHTTPS: a node that can power its host down is asked to
// over the wire; one that cannot answers ErrUnsupported.
func TestPowerDownOverHTTPS(t *testing.T) {
	ca, _ := testCAs(t)
	cert := rpctest.ClientCert(t, ca, "cc:test")
	ctx := context.Background()
	p := &powerNode{fakeNode: newFake()}
	n := clientOf(t, serveNode(t, p), ca, cert)
	pd, ok := n.(ncapi.PowerDowner)
	if !ok {
		t.Fatal("the client cannot ask for a power-down")
	}
	if err := pd.PowerDown(ctx); err != nil || p.down != 1 {
		t.Fatalf("power down: %v, %d calls", err, p.down)
	}
	plain := clientOf(t, serveNode(t, newFake()), ca, cert).(ncapi.PowerDowner)
	if err := plain.PowerDown(ctx); !errors.Is(err, ncapi.ErrUnsupported) {
		t.Fatalf("a node without power control: %v, want ErrUnsupported", err)
	}
}

// AttachVolume records the volume on a running instance.
func (f *fakeNode) AttachVolume(ctx context.Context, id string, v ncapi.VolumeAttachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	i, ok := f.insts[id]
	if !ok {
		return ncapi.ErrNoSuchInstance
	}
	if i.State != ncapi.StateRunning {
		return ncapi.ErrIncorrectState
	}
	if v.Port == 0 {
		return fmt.Errorf("%w: no port", ncapi.ErrBadRequest)
	}
	i.Volumes = append(i.Volumes, ncapi.VolumeStatus{VolumeID: v.VolumeID, Device: v.Device, State: ncapi.VolumeAttached})
	f.insts[id] = i
	f.lastAttach = v
	return nil
}

func (f *fakeNode) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	i, ok := f.insts[id]
	if !ok {
		return ncapi.ErrNoSuchInstance
	}
	i.Volumes = slices.DeleteFunc(i.Volumes, func(v ncapi.VolumeStatus) bool { return v.VolumeID == volumeID })
	f.insts[id] = i
	f.lastForce = force
	return nil
}

func (f *fakeNode) StopInstance(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	delete(f.insts, id)
	return nil
}

// Volume calls, boot volumes in a launch and stops cross the transport
// with their arguments and errors.
func testNodeVolumes(t *testing.T, makeNode func(t *testing.T, f *fakeNode) ncapi.Node) {
	f := newFake()
	n := makeNode(t, f)
	ctx := reqid.With(context.Background(), "req-7")
	f.insts["i-1"] = ncapi.InstanceStatus{ID: "i-1", State: ncapi.StateRunning}
	f.insts["i-2"] = ncapi.InstanceStatus{ID: "i-2", State: ncapi.StatePending}
	v := ncapi.VolumeAttachment{VolumeID: "vol-1", Device: "/dev/sdf", Serial: "vol1", Host: "10.0.0.9", Port: 10809,
		Export: "vol-1/0123", SizeBytes: 1 << 30}
	if err := n.AttachVolume(ctx, "i-1", v); err != nil {
		t.Fatal(err)
	}
	if f.lastAttach != v || f.lastID != "req-7" {
		t.Errorf("attachment arrived as %+v (request %q)", f.lastAttach, f.lastID)
	}
	s, err := n.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range s.Instances {
		if in.ID == "i-1" && (len(in.Volumes) != 1 || in.Volumes[0] != (ncapi.VolumeStatus{VolumeID: "vol-1", Device: "/dev/sdf", State: ncapi.VolumeAttached})) {
			t.Errorf("described volumes %+v", in.Volumes)
		}
	}
	if err := n.AttachVolume(ctx, "i-nope", v); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Errorf("attach to unknown: %v", err)
	}
	if err := n.AttachVolume(ctx, "i-2", v); !errors.Is(err, ncapi.ErrIncorrectState) {
		t.Errorf("attach to pending: %v", err)
	}
	bad := v
	bad.Port = 0
	if err := n.AttachVolume(ctx, "i-1", bad); !errors.Is(err, ncapi.ErrBadRequest) {
		t.Errorf("bad attachment: %v", err)
	}
	if err := n.DetachVolume(ctx, "i-1", "vol-1", true); err != nil || !f.lastForce {
		t.Errorf("detach: %v, force arrived %v", err, f.lastForce)
	}
	if err := n.DetachVolume(ctx, "i-nope", "vol-1", false); !errors.Is(err, ncapi.ErrNoSuchInstance) {
		t.Errorf("detach from unknown: %v", err)
	}
	// A launch that boots from a volume carries it.
	boot := v
	boot.Boot = true
	req := ncapi.InstanceRequest{ID: "i-3", VMType: "m1.small", Holds: ncapi.Resources{Cores: 1, MemoryMiB: 128},
		MAC: "d0:0d:01:02:03:04", Volumes: []ncapi.VolumeAttachment{boot}}
	if err := n.RunInstance(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRun.Volumes; len(got) != 1 || got[0] != boot || f.lastRun.Image != (ncapi.ImageRef{}) {
		t.Errorf("launch arrived with volumes %+v, image %+v", got, f.lastRun.Image)
	}
	for _, id := range []string{"i-1", "i-3", "i-nope"} {
		if err := n.StopInstance(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := n.Describe(ctx); err != nil || len(s.Instances) != 1 {
		t.Errorf("after stop: %+v, %v", s.Instances, err)
	}
}

func TestNodeVolumesInProcess(t *testing.T) {
	testNodeVolumes(t, func(t *testing.T, f *fakeNode) ncapi.Node { return f })
}

func TestNodeVolumesOverHTTPS(t *testing.T) {
	testNodeVolumes(t, func(t *testing.T, f *fakeNode) ncapi.Node {
		ca, _ := testCAs(t)
		return clientOf(t, serveNode(t, f), ca, rpctest.ClientCert(t, ca, "cc:test"))
	})
}
