package cc

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Volumes go to the node that runs the instance; an instance no node has
// is ErrNoSuchInstance for an attach and nothing for a detach.
func TestVolumesRouteToTheNode(t *testing.T) {
	e := newEnv(t, "ROUNDROBIN", []string{"a", "b"}, room(4), room(4))
	c := e.cluster(t)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 2)); err != nil { // i-0 on a, i-1 on b
		t.Fatal(err)
	}
	v := ncapi.VolumeAttachment{VolumeID: "vol-1", Device: "/dev/sdf", Host: "10.0.0.1", Port: 10809, Export: "vol-1/n"}
	if err := c.AttachVolume(ctx, "i-1", v); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	st, err := c.Describe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range st.Instances {
		want := []ncapi.VolumeStatus(nil)
		if in.ID == "i-1" {
			want = []ncapi.VolumeStatus{{VolumeID: "vol-1", Device: "/dev/sdf", State: ncapi.VolumeAttached}}
		}
		if !reflect.DeepEqual(in.Volumes, want) {
			t.Errorf("%s volumes %+v, want %+v", in.ID, in.Volumes, want)
		}
	}
	if err := c.DetachVolume(ctx, "i-1", "vol-1", false); err != nil {
		t.Fatal(err)
	}
	if got, want := e.nodes["b"].callList(), []string{"run i-1", "attach i-1 vol-1", "detach i-1 vol-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("node b calls %v, want %v", got, want)
	}
	if got := e.nodes["a"].callList(); !reflect.DeepEqual(got, []string{"run i-0"}) {
		t.Errorf("node a calls %v", got)
	}
	if err := c.AttachVolume(ctx, "i-unknown", v); !errors.Is(err, ccapi.ErrNoSuchInstance) {
		t.Errorf("attach to an unknown instance: %v", err)
	}
	if err := c.DetachVolume(ctx, "i-unknown", "vol-1", true); err != nil {
		t.Errorf("detach from an unknown instance: %v", err)
	}
	bad := v
	bad.Port = 0
	if err := c.AttachVolume(ctx, "i-0", bad); !errors.Is(err, ccapi.ErrBadRequest) {
		t.Errorf("a node's bad request: %v, want ccapi.ErrBadRequest", err)
	}
}

// A stopped instance leaves its node and the cluster's reports without
// being taken for lost, and its id can be placed again.
func TestStopInstancesFreesTheNode(t *testing.T) {
	e := newEnv(t, "ROUNDROBIN", []string{"a"}, room(1))
	c := e.cluster(t)
	ctx := context.Background()
	if _, err := c.RunInstances(ctx, reqs("i", 1)); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	for range 2 {
		if err := c.StopInstances(ctx, []string{"i-0", "i-unknown"}); err != nil {
			t.Fatal(err)
		}
	}
	c.poll(ctx)
	st, err := c.Describe(ctx, []ccapi.VMType{{Name: "m1.small", Cores: small.Cores, MemoryMiB: small.MemoryMiB, DiskGiB: small.DiskGiB}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Instances) != 0 || st.Capacity["m1.small"].Free != 1 {
		t.Errorf("after stop: instances %+v, capacity %+v", st.Instances, st.Capacity)
	}
	if ps, _ := e.st.CCPlacements(ctx, c.Zone()); len(ps) != 0 {
		t.Errorf("placements after stop: %+v", ps)
	}
	// Started again: the same id is placed anew.
	if _, err := c.RunInstances(ctx, reqs("i", 1)); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx)
	st, _ = c.Describe(ctx, nil)
	if len(st.Instances) != 1 || st.Instances[0].ID != "i-0" || st.Instances[0].Lost {
		t.Errorf("after a start: %+v", st.Instances)
	}
	e.nodes["a"].set(func(f *fakeNode) { f.down = true })
	if err := c.StopInstances(ctx, []string{"i-0"}); err == nil {
		t.Error("stop on a node that does not answer succeeded")
	}
}
