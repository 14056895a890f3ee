package clc

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// stuckStorage is a storage controller that, once blocked, does not
// answer Volumes until released (it tells entered when a call hangs).
type stuckStorage struct {
	*memStorage
	block   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *stuckStorage) Volumes(ctx context.Context, ids ...string) ([]scapi.Volume, error) {
	if s.block.Load() {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-s.release
	}
	return s.memStorage.Volumes(ctx, ids...)
}

// roomyCluster is the volumes' cluster with room on its nodes: an
// instance with volumes is run on the node the cloud controller picks.
type roomyCluster struct{ *volCluster }

func (r roomyCluster) Describe(ctx context.Context, types []ccapi.VMType) (ccapi.Status, error) {
	st, err := r.volCluster.Describe(ctx, types)
	for i := range st.Nodes {
		st.Nodes[i].Free = ncapi.Resources{Cores: 64, MemoryMiB: 1 << 16, DiskGiB: 1 << 10}
	}
	return st, err
}

// stuckLaunch launches one of alice's instances with a 1 GiB volume
// (deleted on termination) and stops its cloud controller while the
// instance waits for it: its goroutine hangs asking the storage controller
// (alive still when the next ones start), its records stay.
func stuckLaunch(t *testing.T) (*volFixture, store.Instance) {
	t.Helper()
	ctx := context.Background()
	f := newVolFixture(t)
	f.sc.hold = true // the volume stays creating
	stuck := &stuckStorage{memStorage: f.sc, entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(stuck.release) })
	f.c.SetStorage(f.zone, stuck)
	spec := f.spec(1, 1)
	spec.BlockDevices = []store.ImageBlockDevice{{Device: "/dev/sdf", EBS: true, VolumeSize: 1, DeleteOnTermination: true}}
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	in := insts[0]
	if in.State != store.InstancePending {
		t.Fatalf("launched: %+v", in)
	}
	stuck.block.Store(true)
	<-stuck.entered
	if got, err := f.c.store.InstanceByID(ctx, in.ID); err != nil || got.State != store.InstancePending || got.Node != "" {
		t.Fatalf("after the crash: %v %+v", err, got)
	}
	return f, in
}

// restarted is a new cloud controller over f's records.
func restarted(t *testing.T, f *volFixture) *Cloud {
	t.Helper()
	c, err := New(context.Background(), f.c.cfg, f.c.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetCluster(roomyCluster{f.vcl})
	c.SetStorage(f.zone, f.sc)
	return c
}

// TestRestartResumesLaunch: an instance launched with a volume of its
// block device mapping waits, pending, for the volume; the cloud
// controller stops meanwhile. The next ones over the same records finish
// the launch: the volume attached, exported to a node, the instance run
// there once, however many of them resume it at once (and the first one's
// goroutine still waiting).
func TestRestartResumesLaunch(t *testing.T) {
	ctx := context.Background()
	f, in := stuckLaunch(t)
	st := f.c.store

	// Two new cloud controllers over the same records, everything
	// answering, each reconciling twice at the same time.
	f.sc.hold = false
	next := []*Cloud{restarted(t, f), restarted(t, f)}
	var wg sync.WaitGroup
	for _, c := range append(next, next...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.reconcile(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, c := range next {
		c.inst.boots.Wait()
	}

	got, err := st.InstanceByID(ctx, in.ID)
	if err != nil || got.State != store.InstancePending || got.Node != "node1" {
		t.Fatalf("resumed: %v %+v", err, got)
	}
	if len(got.BlockDevices) != 1 || got.BlockDevices[0].Device != "/dev/sdf" {
		t.Fatalf("volumes: %+v", got.BlockDevices)
	}
	v, err := st.VolumeByID(ctx, got.BlockDevices[0].VolumeID)
	if err != nil || v.EC2State() != store.VolumeInUse || v.Attachment == nil || v.Attachment.InstanceID != in.ID {
		t.Fatalf("volume: %v %+v", err, v)
	}
	var runs int
	f.cl.mu.Lock()
	for _, reqs := range f.cl.runs {
		for _, r := range reqs {
			if r.ID == in.ID {
				runs++
				if r.Node != "node1" || len(r.Volumes) != 1 || r.Volumes[0].VolumeID != v.ID {
					t.Errorf("run request: %+v", r)
				}
			}
		}
	}
	f.cl.mu.Unlock()
	if runs != 1 {
		t.Errorf("the instance was run %d times, want once", runs)
	}
	if n := f.sc.liveExports(); n != 1 {
		t.Errorf("%d exports, want the volume's", n)
	}

	// The node reports it running: running, as after a launch.
	f.cl.set(in.ID, "running", "")
	if err := next[0].reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.InstanceByID(ctx, in.ID); err != nil || got.State != store.InstanceRunning {
		t.Fatalf("after the node reports it: %v %+v", err, got)
	}
}

// TestRestartResumedLaunchVolumeFails: a resumed launch whose volume
// failed is terminated as a launch that failed, nothing run.
func TestRestartResumedLaunchVolumeFails(t *testing.T) {
	ctx := context.Background()
	f, in := stuckLaunch(t)
	f.sc.mu.Lock()
	for _, v := range f.sc.volumes {
		if v.State == scapi.VolumeCreating {
			v.State, v.Error = scapi.VolumeError, "out of space"
		}
	}
	f.sc.mu.Unlock()
	c := restarted(t, f)
	if err := c.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	c.inst.boots.Wait()
	got, err := c.store.InstanceByID(ctx, in.ID)
	if err != nil || got.State != store.InstanceTerminated || got.StateReasonCode != "Server.InternalError" {
		t.Fatalf("instance: %v %+v", err, got)
	}
	f.cl.mu.Lock()
	defer f.cl.mu.Unlock()
	for _, reqs := range f.cl.runs {
		for _, r := range reqs {
			if r.ID == in.ID {
				t.Errorf("run: %+v", r)
			}
		}
	}
}
