package clc

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// managedConf is MANAGED with a /24 in four segments of 64 addresses.
func managedConf(t *testing.T) *conf.Config {
	c := testConfig(t)
	c.VNetMode = "MANAGED"
	c.VNetSubnet = netip.MustParsePrefix("10.242.0.0/24")
	c.VNetAddrsPerNet = 64
	return c
}

// TestManagedSegments: in MANAGED each security group's instances take
// their addresses from the segment the group holds (the network the
// cluster is handed says which), a group gives its segment back with its
// last instance, and a launch that finds every segment held is refused
// for capacity.
func TestManagedSegments(t *testing.T) {
	ctx := context.Background()
	f := newInstFixtureConf(t, 100, managedConf(t))
	var groups []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		g, err := f.c.CreateSecurityGroup(ctx, f.alice, name, name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g.ID)
	}
	launch := func(n int, ip string, groupIDs ...string) ([]store.Instance, error) {
		spec := f.spec(n, n)
		spec.GroupIDs, spec.PrivateIP = groupIDs, ip
		return f.c.RunInstances(ctx, f.alice, spec)
	}
	a, err := launch(2, "", groups[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := launch(1, "", groups[1], groups[0])
	if err != nil {
		t.Fatal(err)
	}
	if a[0].PrivateIP != "10.242.0.2" || a[1].PrivateIP != "10.242.0.3" || b[0].PrivateIP != "10.242.0.66" {
		t.Fatalf("addresses %s %s %s: want the groups' segments 10.242.0.0/26 and 10.242.0.64/26", a[0].PrivateIP, a[1].PrivateIP, b[0].PrivateIP)
	}
	n := f.cl.lastNetwork(t)
	segOf := map[string]int{}
	for _, g := range n.Groups {
		segOf[g.ID] = g.Segment
	}
	if len(n.Groups) != 2 || segOf[groups[0]] != 0 || segOf[groups[1]] != 1 {
		t.Fatalf("network groups %+v", n.Groups)
	}
	// An address asked for must be in the first group's segment.
	if in, err := launch(1, "10.242.0.10", groups[0]); err != nil || in[0].PrivateIP != "10.242.0.10" {
		t.Fatalf("address in the segment: %+v %v", in, err)
	}
	_, err = launch(1, "10.242.0.70", groups[0])
	wantCode(t, "address of another group's segment", err, "InvalidParameterValue")
	_, err = launch(1, "10.242.0.129", groups[2])
	wantCode(t, "a segment's gateway", err, "InvalidParameterValue")

	// The first group cannot change under a live instance; the others can.
	err = f.c.ModifyInstanceAttribute(ctx, f.alice, b[0].ID, store.InstanceUpdate{}, []string{groups[0]})
	wantCode(t, "first group changed", err, "InvalidParameterValue")
	if err := f.c.ModifyInstanceAttribute(ctx, f.alice, b[0].ID, store.InstanceUpdate{}, []string{groups[1], groups[3]}); err != nil {
		t.Fatal(err)
	}

	// Four segments: c and d take the last two, e finds none.
	if _, err := launch(1, "", groups[2]); err != nil {
		t.Fatal(err)
	}
	if d, err := launch(1, "", groups[3]); err != nil || d[0].PrivateIP != "10.242.0.194" {
		t.Fatalf("fourth group: %+v %v", d, err)
	}
	_, err = launch(1, "", groups[4])
	wantCode(t, "fifth group in four segments", err, "InsufficientInstanceCapacity")
	// A segment holds 61 instances (64 less network, gateway, broadcast):
	// d's has room for 60 more, not 61.
	_, err = launch(61, "", groups[3])
	wantCode(t, "a full segment", err, "InsufficientFreeAddressesInSubnet")
	if e, ok := awserr.As(err); !ok || !strings.Contains(e.Message, groups[3]) {
		t.Errorf("a full segment's refusal does not name the group: %v", err)
	}

	// b's last instance ends: its segment is e's to take.
	if _, err := f.c.TerminateInstances(ctx, f.alice, []string{b[0].ID}); err != nil {
		t.Fatal(err)
	}
	f.cl.set(b[0].ID, ncapi.StateTerminated, "")
	f.reconcile(t)
	e, err := launch(1, "", groups[4])
	if err != nil || e[0].PrivateIP != "10.242.0.66" {
		t.Fatalf("freed segment: %+v %v", e, err)
	}
	if g := groupOf(f.cl.lastNetwork(t), groups[4]); g == nil || g.Segment != 1 {
		t.Fatalf("e's segment in the network: %+v", g)
	}
}

func groupOf(n ccapi.Network, id string) *ccapi.SecurityGroup {
	for i := range n.Groups {
		if n.Groups[i].ID == id {
			return &n.Groups[i]
		}
	}
	return nil
}
