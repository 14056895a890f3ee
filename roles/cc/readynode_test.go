package cc

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// TestNodeTakesNetworkBeforeInstance: a node on another host is handed
// the network that holds a new instance before it is asked to start it
// (in MANAGED the instance's segment, and its bridge on the node, may be
// new), not at the next poll; a launch that changes nothing of what the
// node took sends nothing more.
func TestNodeTakesNetworkBeforeInstance(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "GREEDY", []string{"192.0.2.9"}, room(4))
	e.cfg.VNetLocalIP = netip.MustParseAddr("192.0.2.1")
	c, err := New(ctx, e.cfg, e.st, e.dial, spanningFake{e.net}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	n := ccapi.Network{Subnet: netip.MustParsePrefix("10.242.2.0/24"), Groups: []ccapi.SecurityGroup{{ID: "sg-1"}}}
	if err := c.SetNetwork(ctx, n); err != nil {
		t.Fatal(err)
	}
	c.poll(ctx) // the node takes the network without instances
	node := e.nodes["192.0.2.9"]

	run := func(id, ip string) {
		t.Helper()
		n.Instances = append(n.Instances, ccapi.NetInstance{ID: id, MAC: "d0:0d:0a:f2:02:0" + ip[len(ip)-1:], PrivateIP: netip.MustParseAddr(ip), Groups: []string{"sg-1"}})
		if err := c.SetNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
		req := ccapi.InstanceRequest{InstanceRequest: ncapi.InstanceRequest{ID: id, VMType: "m1.small", Holds: small, PrivateIP: netip.MustParseAddr(ip)}}
		if _, err := c.RunInstances(ctx, []ccapi.InstanceRequest{req}); err != nil {
			t.Fatal(err)
		}
	}
	run("i-1", "10.242.2.2")
	calls := node.callList()
	i := slices.Index(calls, "run i-1")
	if i < 1 || !strings.HasPrefix(calls[i-1], "network ") || node.net == nil || len(node.net.Instances) != 1 {
		t.Fatalf("the node was asked to run i-1 without the network that holds it first: %v", calls)
	}
	// Asked again with what it holds: nothing more is sent.
	before := len(calls)
	c.readyNode(ctx, "192.0.2.9", node)
	if got := node.callList(); len(got) != before {
		t.Errorf("an unchanged network sent again: %v", got[before:])
	}
}
