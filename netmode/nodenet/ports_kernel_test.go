package nodenet

import (
	"context"
	"testing"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
)

// TestKernelFilterOnOperatorBridge: in STATIC and SYSTEM a node's guests
// sit on the operator's bridge with the LAN's other hosts, and the node
// enforces their groups itself (Network.Filter, no segments):
//
//	node: br (the operator's bridge)
//	      ├ stsa ── a  10.243.7.10 i-a (sg-web: tcp 80 from the client; egress as the test sets)
//	      ├ stsb ── b  10.243.7.11 i-b (sg-none: nothing in)
//	      ├ stsc ── cl 10.243.7.1  a client on the LAN
//	      └ stsd ── d  10.243.7.2  another LAN host
//
// The client reaches a's port 80 and no other, and b not at all; the
// LAN's hosts reach each other (the groups are not theirs to decide);
// a's own connection out passes with its answers, and is cut once its
// group may send nothing; a guest not yet with an address (SYSTEM,
// unlearned) is no target, and nothing fails.
func TestKernelFilterOnOperatorBridge(t *testing.T) {
	node := nstest.New(t)
	a, b, cl, d := nstest.New(t), nstest.New(t), nstest.New(t), nstest.New(t)
	nstest.Veth(t, node, "stsa", a, "eth0", nil)
	nstest.Veth(t, node, "stsb", b, "eth0", nil)
	nstest.Veth(t, node, "stsc", cl, "eth0", nil)
	nstest.Veth(t, node, "stsd", d, "eth0", nil)
	lanBridge(t, node, "stsa", "stsb", "stsc", "stsd")
	nstest.Addr(t, a, "eth0", "10.243.7.10/24")
	nstest.Addr(t, b, "eth0", "10.243.7.11/24")
	nstest.Addr(t, cl, "eth0", "10.243.7.1/24")
	nstest.Addr(t, d, "eth0", "10.243.7.2/24")
	nstest.ServeWho(t, a, "0.0.0.0:80")
	nstest.ServeWho(t, a, "0.0.0.0:81")
	nstest.ServeWho(t, b, "0.0.0.0:80")
	nstest.ServeWho(t, cl, "0.0.0.0:7000")
	nstest.ServeWho(t, d, "0.0.0.0:7000")

	ag, err := New(Config{}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	network := func(webOut []netmode.Rule) Network {
		return Network{Filter: true,
			Instances: []netmode.Instance{
				{ID: "i-a", PrivateIP: ma("10.243.7.10"), Groups: []string{"sg-web"}},
				{ID: "i-b", PrivateIP: ma("10.243.7.11"), Groups: []string{"sg-none"}},
				{ID: "i-unlearned", Groups: []string{"sg-web"}},
			},
			Groups: []netmode.Group{
				{ID: "sg-web", Ingress: []netmode.Rule{{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDR: mp("10.243.7.1/32")}}, Egress: webOut},
				{ID: "sg-none", Egress: allOut},
			}}
	}
	ctx := context.Background()
	nstest.MustDo(t, node, func() error { return ag.Set(ctx, network(allOut)) })
	defer nstest.MustDo(t, node, func() error { return ag.Close(ctx) })

	nstest.MustWho(t, cl, "10.243.7.10:80", "10.243.7.1")
	nstest.MustNotConnect(t, cl, "10.243.7.10:81")
	nstest.MustNotConnect(t, cl, "10.243.7.11:80")
	nstest.MustNotConnect(t, d, "10.243.7.10:80") // the rule names the client only
	nstest.MustWho(t, cl, "10.243.7.2:7000", "10.243.7.1")
	nstest.MustWho(t, d, "10.243.7.1:7000", "10.243.7.2")
	nstest.MustWho(t, a, "10.243.7.1:7000", "10.243.7.10") // out, and its answers back
	nstest.MustNotConnect(t, a, "10.243.7.11:80")          // b admits nothing, a guest neither

	// sg-web may send nothing: a's connection out is cut, the LAN's
	// hosts still reach each other.
	nstest.MustDo(t, node, func() error { return ag.Set(ctx, network(nil)) })
	nstest.MustNotConnect(t, a, "10.243.7.1:7000")
	nstest.MustWho(t, cl, "10.243.7.10:80", "10.243.7.1")
	nstest.MustWho(t, d, "10.243.7.1:7000", "10.243.7.2")

	// No filter wanted any more (the network has none): the table goes.
	nstest.MustDo(t, node, func() error { return ag.Set(ctx, Network{}) })
	nstest.MustDo(t, node, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		if ok, err := nft.Exists(c, nft.NodeTableName); ok || err != nil {
			t.Errorf("table %s left (%v)", nft.NodeTableName, err)
		}
		return nil
	})
	nstest.MustWho(t, cl, "10.243.7.11:80", "10.243.7.1")
}
