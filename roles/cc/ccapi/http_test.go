package ccapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/internal/reqid"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// fakeCluster is a Cluster in memory with the behaviour the interface
// documents: all or nothing launches against a fixed room, terminate of an
// unknown id harmless, reboot only of a running instance.
type fakeCluster struct {
	mu      sync.Mutex
	zone    string
	room    ncapi.Resources
	insts   map[string]ccapi.InstanceStatus
	network ccapi.Network
	lastID  string // the request id of the last call

	lastAttach ncapi.VolumeAttachment
	lastForce  bool
}

func newFake() *fakeCluster {
	return &fakeCluster{zone: "euca-1a", room: ncapi.Resources{Cores: 4, MemoryMiB: 4096, DiskGiB: 100}, insts: map[string]ccapi.InstanceStatus{}}
}

func (f *fakeCluster) seen(ctx context.Context) { f.lastID = reqid.From(ctx) }

func (f *fakeCluster) Zone() string { return f.zone }

func (f *fakeCluster) freeLocked() ncapi.Resources {
	free := f.room
	for _, i := range f.insts {
		free = free.Sub(i.Holds)
	}
	return free
}

func (f *fakeCluster) Describe(ctx context.Context, types []ccapi.VMType) (ccapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	free := f.freeLocked()
	s := ccapi.Status{Zone: f.zone, Capacity: map[string]ccapi.Capacity{},
		Nodes: []ccapi.NodeInfo{{Host: "10.0.0.2", Driver: "sim", Max: f.room, Free: free, Up: true, LastSeen: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}}}
	for _, t := range types {
		per := func(r ncapi.Resources) int {
			return min(r.Cores/t.Cores, r.MemoryMiB/t.MemoryMiB, r.DiskGiB/t.DiskGiB)
		}
		s.Capacity[t.Name] = ccapi.Capacity{Free: per(free), Max: per(f.room)}
	}
	for _, i := range f.insts {
		s.Instances = append(s.Instances, i)
	}
	return s, nil
}

func (f *fakeCluster) RunInstances(ctx context.Context, reqs []ccapi.InstanceRequest) ([]ccapi.Placement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	free := f.freeLocked()
	for _, r := range reqs {
		if !strings.HasPrefix(r.ID, "i-") {
			return nil, fmt.Errorf("instance id %q: %w", r.ID, ccapi.ErrBadRequest)
		}
		if !free.Fits(r.Holds) {
			return nil, fmt.Errorf("%w: %s", ccapi.ErrInsufficientCapacity, r.ID)
		}
		free = free.Sub(r.Holds)
	}
	var out []ccapi.Placement
	for _, r := range reqs {
		f.insts[r.ID] = ccapi.InstanceStatus{Node: "10.0.0.2", InstanceStatus: ncapi.InstanceStatus{ID: r.ID, State: ncapi.StatePending, Holds: r.Holds}}
		out = append(out, ccapi.Placement{ID: r.ID, Node: "10.0.0.2"})
	}
	return out, nil
}

func (f *fakeCluster) TerminateInstances(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	for _, id := range ids {
		delete(f.insts, id)
	}
	return nil
}

func (f *fakeCluster) RebootInstances(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	for _, id := range ids {
		i, ok := f.insts[id]
		if !ok {
			return fmt.Errorf("%w: %s", ccapi.ErrNoSuchInstance, id)
		}
		if i.State != ncapi.StateRunning {
			return fmt.Errorf("instance %s on node %s: %w", id, i.Node, ncapi.ErrIncorrectState)
		}
	}
	return nil
}

var console = []byte("boot\x00\xff\xfe ok\n")

func (f *fakeCluster) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	if _, ok := f.insts[id]; !ok {
		return nil, ccapi.ErrNoSuchInstance
	}
	return console, nil
}

func (f *fakeCluster) SetNetwork(ctx context.Context, n ccapi.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	f.network = n
	return nil
}

// testCluster is the one suite: it runs against whatever Cluster
// makeCluster gives over the fake.
func testCluster(t *testing.T, makeCluster func(t *testing.T, f *fakeCluster) ccapi.Cluster) {
	f := newFake()
	cl := makeCluster(t, f)
	ctx := reqid.With(context.Background(), "req-42")
	if cl.Zone() != "euca-1a" {
		t.Fatalf("zone %q", cl.Zone())
	}
	small := ncapi.Resources{Cores: 1, MemoryMiB: 128, DiskGiB: 2}
	req := func(id string, holds ncapi.Resources) ccapi.InstanceRequest {
		return ccapi.InstanceRequest{InstanceRequest: ncapi.InstanceRequest{
			ID: id, VMType: "m1.small", Holds: holds, MAC: "d0:0d:ac:1f:00:05", PrivateIP: netip.MustParseAddr("172.31.0.5"),
			Image: ncapi.ImageRef{ID: "emi-1", SHA256: strings.Repeat("a", 64), Size: 10}}}
	}

	net := ccapi.Network{Subnet: netip.MustParsePrefix("172.31.0.0/16"), Metadata: netip.MustParseAddrPort("127.0.0.1:8780"),
		Instances: []ccapi.NetInstance{{ID: "i-1", MAC: "d0:0d:ac:1f:00:05", PrivateIP: netip.MustParseAddr("172.31.0.5"), Groups: []string{"sg-1"}}},
		Groups: []ccapi.SecurityGroup{{ID: "sg-1", Ingress: []ccapi.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")}, {Protocol: "-1", PeerGroup: "sg-1"}},
			Egress: []ccapi.Rule{{Protocol: "udp", FromPort: 53, ToPort: 53, CIDR: netip.MustParsePrefix("10.0.0.0/8")}}}}}
	if err := cl.SetNetwork(ctx, net); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.network) != fmt.Sprint(net) {
		t.Errorf("network arrived as %+v", f.network)
	}

	placed, err := cl.RunInstances(ctx, []ccapi.InstanceRequest{req("i-1", small), req("i-2", small)})
	if err != nil {
		t.Fatal(err)
	}
	if f.lastID != "req-42" {
		t.Errorf("cluster saw request id %q", f.lastID)
	}
	if len(placed) != 2 || placed[0] != (ccapi.Placement{ID: "i-1", Node: "10.0.0.2"}) {
		t.Errorf("placements %+v", placed)
	}
	types := []ccapi.VMType{{Name: "m1.small", Cores: 1, MemoryMiB: 128, DiskGiB: 2}, {Name: "c1.xlarge", Cores: 4, MemoryMiB: 2048, DiskGiB: 20}}
	s, err := cl.Describe(ctx, types)
	if err != nil {
		t.Fatal(err)
	}
	if s.Zone != "euca-1a" || len(s.Instances) != 2 || s.Capacity["m1.small"] != (ccapi.Capacity{Free: 2, Max: 4}) ||
		s.Capacity["c1.xlarge"] != (ccapi.Capacity{Free: 0, Max: 1}) || len(s.Nodes) != 1 || !s.Nodes[0].Up ||
		!s.Nodes[0].LastSeen.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) || s.Nodes[0].Free != f.room.Sub(small).Sub(small) {
		t.Fatalf("describe: %+v", s)
	}

	if _, err := cl.RunInstances(ctx, []ccapi.InstanceRequest{req("i-3", small), req("i-4", ncapi.Resources{Cores: 64})}); !errors.Is(err, ccapi.ErrInsufficientCapacity) {
		t.Errorf("too big: %v, want ErrInsufficientCapacity", err)
	}
	if _, err := cl.RunInstances(ctx, []ccapi.InstanceRequest{req("x", small)}); !errors.Is(err, ccapi.ErrBadRequest) {
		t.Errorf("bad id: %v, want ErrBadRequest", err)
	}
	if err := cl.RebootInstances(ctx, []string{"i-1"}); !errors.Is(err, ncapi.ErrIncorrectState) {
		t.Errorf("reboot pending: %v, want ncapi.ErrIncorrectState", err)
	}
	if err := cl.RebootInstances(ctx, []string{"i-nope"}); !errors.Is(err, ccapi.ErrNoSuchInstance) {
		t.Errorf("reboot unknown: %v, want ErrNoSuchInstance", err)
	}
	out, err := cl.ConsoleOutput(ctx, "i-1")
	if err != nil || !bytes.Equal(out, console) {
		t.Errorf("console: %q, %v", out, err)
	}
	if _, err := cl.ConsoleOutput(ctx, "i-nope"); !errors.Is(err, ccapi.ErrNoSuchInstance) {
		t.Errorf("console unknown: %v, want ErrNoSuchInstance", err)
	}
	if err := cl.TerminateInstances(ctx, []string{"i-1", "i-2"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.TerminateInstances(ctx, []string{"i-1"}); err != nil {
		t.Errorf("terminate twice: %v", err)
	}
	if s, err := cl.Describe(ctx, types); err != nil || len(s.Instances) != 0 || s.Capacity["m1.small"].Free != 4 {
		t.Errorf("after terminate: %+v, %v", s, err)
	}
}

func testCAs(t *testing.T) (*pki.CA, *pki.CA) { return rpctest.CAs(t) }

// serve serves h over a real loopback listener with mutual TLS and returns
// its address.
func serve(t *testing.T, h http.Handler) string {
	ca, _ := testCAs(t)
	return rpctest.Serve(t, ca, h)
}

func clientOf(t *testing.T, addr, zone string, trust *pki.CA, cert tls.Certificate) ccapi.Cluster {
	return ccapi.NewClient(rpctest.Client(addr, trust, cert), zone)
}

func clcCert(t *testing.T) tls.Certificate {
	ca, _ := testCAs(t)
	return rpctest.ClientCert(t, ca, "clc:test")
}

func TestClusterInProcess(t *testing.T) {
	testCluster(t, func(t *testing.T, f *fakeCluster) ccapi.Cluster { return f })
}

func TestClusterOverHTTPS(t *testing.T) {
	testCluster(t, func(t *testing.T, f *fakeCluster) ccapi.Cluster {
		ca, _ := testCAs(t)
		return clientOf(t, serve(t, ccapi.NewHandler(f, slog.New(slog.DiscardHandler))), f.zone, ca, clcCert(t))
	})
}

// TestClusterRefusesStrangers: a certificate of another CA, a user's
// certificate of this one, or another role's (a node's) gets no answer.
func TestClusterRefusesStrangers(t *testing.T) {
	ca, other := testCAs(t)
	f := newFake()
	addr := serve(t, ccapi.NewHandler(f, slog.New(slog.DiscardHandler)))

	certs := rpctest.Strangers(t, ca, other, "clc:test")
	certs["a node"] = rpctest.ClientCert(t, ca, "nc:10.0.0.2")
	certs["another cluster"] = rpctest.ClientCert(t, ca, "cc:zone2")
	certs["walrus"] = rpctest.ClientCert(t, ca, "walrus:host3")
	for name, cert := range certs {
		if _, err := clientOf(t, addr, f.zone, ca, cert).Describe(context.Background(), nil); err == nil {
			t.Errorf("%s: a call was answered", name)
		}
	}
	if f.lastID != "" {
		t.Error("the cluster was reached")
	}
}

// TestClusterWrongZone: a cluster registered under one zone that serves
// another refuses every call, so nothing lands in the wrong zone.
func TestClusterWrongZone(t *testing.T) {
	ca, _ := testCAs(t)
	f := newFake()
	cl := clientOf(t, serve(t, ccapi.NewHandler(f, slog.New(slog.DiscardHandler))), "euca-1b", ca, clcCert(t))
	if _, err := cl.Describe(context.Background(), nil); !errors.Is(err, ccapi.ErrWrongZone) || !strings.Contains(err.Error(), "euca-1a") {
		t.Errorf("describe: %v, want ErrWrongZone naming the zone served", err)
	}
	_, err := cl.RunInstances(context.Background(), []ccapi.InstanceRequest{{InstanceRequest: ncapi.InstanceRequest{ID: "i-1", Holds: ncapi.Resources{Cores: 1}}}})
	if !errors.Is(err, ccapi.ErrWrongZone) || len(f.insts) != 0 {
		t.Errorf("run: %v, %d instances", err, len(f.insts))
	}
}

// TestClusterRetriesIdempotentCalls: a describe, terminate, reboot,
// console or network call whose connection breaks is made again; a launch
// is not (its caller rolls it back instead of starting twice).
func TestClusterRetriesIdempotentCalls(t *testing.T) {
	ca, _ := testCAs(t)
	for _, tc := range []struct {
		name  string
		call  func(context.Context, ccapi.Cluster) error
		calls int64
	}{
		{"describe", func(ctx context.Context, cl ccapi.Cluster) error { _, err := cl.Describe(ctx, nil); return err }, 2},
		{"terminate", func(ctx context.Context, cl ccapi.Cluster) error { return cl.TerminateInstances(ctx, []string{"i-1"}) }, 2},
		{"network", func(ctx context.Context, cl ccapi.Cluster) error { return cl.SetNetwork(ctx, ccapi.Network{}) }, 2},
		{"console", func(ctx context.Context, cl ccapi.Cluster) error {
			_, err := cl.ConsoleOutput(ctx, "i-1")
			if errors.Is(err, ccapi.ErrNoSuchInstance) {
				return nil // answered
			}
			return err
		}, 2},
		{"run", func(ctx context.Context, cl ccapi.Cluster) error {
			_, err := cl.RunInstances(ctx, []ccapi.InstanceRequest{{InstanceRequest: ncapi.InstanceRequest{ID: "i-1", Holds: ncapi.Resources{Cores: 1}}}})
			if err == nil {
				return errors.New("a launch whose connection broke was sent again")
			}
			return nil
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			d := &rpctest.DropFirst{N: 1, Next: ccapi.NewHandler(f, slog.New(slog.DiscardHandler))}
			cl := clientOf(t, serve(t, d), f.zone, ca, clcCert(t))
			if err := tc.call(context.Background(), cl); err != nil {
				t.Fatal(err)
			}
			if got := d.Calls(); got != tc.calls {
				t.Errorf("%d calls reached the cluster, want %d", got, tc.calls)
			}
		})
	}
}

// Volumes are not modelled by this fake: the EBS issue's tests drive them.
// AttachVolume records the volume on a running instance.
func (f *fakeCluster) AttachVolume(ctx context.Context, id string, v ncapi.VolumeAttachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	i, ok := f.insts[id]
	if !ok {
		return ccapi.ErrNoSuchInstance
	}
	if i.State != ncapi.StateRunning {
		return ncapi.ErrIncorrectState
	}
	if v.Port == 0 {
		return fmt.Errorf("%w: no port", ccapi.ErrBadRequest)
	}
	i.Volumes = append(i.Volumes, ncapi.VolumeStatus{VolumeID: v.VolumeID, Device: v.Device, State: ncapi.VolumeAttached})
	f.insts[id] = i
	f.lastAttach = v
	return nil
}

func (f *fakeCluster) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	i, ok := f.insts[id]
	if !ok {
		return nil
	}
	i.Volumes = slices.DeleteFunc(i.Volumes, func(v ncapi.VolumeStatus) bool { return v.VolumeID == volumeID })
	f.insts[id] = i
	f.lastForce = force
	return nil
}

func (f *fakeCluster) StopInstances(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	for _, id := range ids {
		delete(f.insts, id)
	}
	return nil
}

// Volume calls and stops cross the transport with their arguments and
// errors.
func testClusterVolumes(t *testing.T, makeCluster func(t *testing.T, f *fakeCluster) ccapi.Cluster) {
	f := newFake()
	cl := makeCluster(t, f)
	ctx := reqid.With(context.Background(), "req-7")
	f.insts["i-1"] = ccapi.InstanceStatus{InstanceStatus: ncapi.InstanceStatus{ID: "i-1", State: ncapi.StateRunning}, Node: "10.0.0.2"}
	f.insts["i-2"] = ccapi.InstanceStatus{InstanceStatus: ncapi.InstanceStatus{ID: "i-2", State: ncapi.StatePending}, Node: "10.0.0.2"}
	v := ncapi.VolumeAttachment{VolumeID: "vol-1", Device: "/dev/sdf", Serial: "vol1", Host: "10.0.0.9", Port: 10809,
		Export: "vol-1/0123", SizeBytes: 1 << 30}
	if err := cl.AttachVolume(ctx, "i-1", v); err != nil {
		t.Fatal(err)
	}
	if f.lastAttach != v || f.lastID != "req-7" {
		t.Errorf("attachment arrived as %+v (request %q)", f.lastAttach, f.lastID)
	}
	s, err := cl.Describe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range s.Instances {
		if in.ID == "i-1" && (len(in.Volumes) != 1 || in.Volumes[0] != (ncapi.VolumeStatus{VolumeID: "vol-1", Device: "/dev/sdf", State: ncapi.VolumeAttached})) {
			t.Errorf("described volumes %+v", in.Volumes)
		}
	}
	if err := cl.AttachVolume(ctx, "i-nope", v); !errors.Is(err, ccapi.ErrNoSuchInstance) {
		t.Errorf("attach to unknown: %v", err)
	}
	if err := cl.AttachVolume(ctx, "i-2", v); !errors.Is(err, ncapi.ErrIncorrectState) {
		t.Errorf("attach to pending: %v", err)
	}
	bad := v
	bad.Port = 0
	if err := cl.AttachVolume(ctx, "i-1", bad); !errors.Is(err, ccapi.ErrBadRequest) {
		t.Errorf("bad attachment: %v", err)
	}
	if err := cl.DetachVolume(ctx, "i-1", "vol-1", true); err != nil || !f.lastForce {
		t.Errorf("detach: %v, force arrived %v", err, f.lastForce)
	}
	if err := cl.StopInstances(ctx, []string{"i-1", "i-2"}); err != nil {
		t.Fatal(err)
	}
	if s, err := cl.Describe(ctx, nil); err != nil || len(s.Instances) != 0 {
		t.Errorf("after stop: %+v, %v", s.Instances, err)
	}
}

func TestClusterVolumesInProcess(t *testing.T) {
	testClusterVolumes(t, func(t *testing.T, f *fakeCluster) ccapi.Cluster { return f })
}

func TestClusterVolumesOverHTTPS(t *testing.T) {
	testClusterVolumes(t, func(t *testing.T, f *fakeCluster) ccapi.Cluster {
		ca, _ := testCAs(t)
		return clientOf(t, serve(t, ccapi.NewHandler(f, slog.New(slog.DiscardHandler))), f.zone, ca, clcCert(t))
	})
}
