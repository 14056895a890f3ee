package nodenet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/mdrelay"
	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/vishvananda/netns"
)

// TestKernelMetadataRelayOnOperatorBridge: in STATIC and SYSTEM a node's
// guests have the LAN's router as theirs, which knows nothing of
// 169.254.169.254; the node redirects its own guests' requests, marked by
// their ports, to its relay on its loopback (Config.Metadata), and no one
// else's:
//
//	node: lan0 10.247.7.5 (the operator's bridge; the relay on 127.0.0.1)
//	      ├ nmdg ── g  10.247.7.10 i-g, a guest of this node
//	      ├ nmdh ── h  10.247.7.11 i-h, a guest the relay does not answer
//	      ├ nmdl ── l  10.247.7.20 a LAN host
//	      └ nmdr ── r  10.247.7.254 the LAN's router (everyone's default route)
//
// g reads its metadata through the relay, which names it to the front-end;
// the LAN host's request, crossing the same bridge towards the router,
// is not redirected; h's, redirected, is refused by the relay (its Allow),
// and the front-end hears nothing of it.
func TestKernelMetadataRelayOnOperatorBridge(t *testing.T) {
	node := nstest.New(t)
	g, h, l, r := nstest.New(t), nstest.New(t), nstest.New(t), nstest.New(t)
	gMAC, _ := net.ParseMAC("02:47:07:00:00:0a")
	hMAC, _ := net.ParseMAC("02:47:07:00:00:0b")
	nstest.Veth(t, node, "nmdg", g, "eth0", gMAC)
	nstest.Veth(t, node, "nmdh", h, "eth0", hMAC)
	nstest.Veth(t, node, "nmdl", l, "eth0", nil)
	nstest.Veth(t, node, "nmdr", r, "eth0", nil)
	lanBridge(t, node, "nmdg", "nmdh", "nmdl", "nmdr")
	nstest.Addr(t, node, "lan0", "10.247.7.5/24")
	for _, x := range []struct {
		ns   netns.NsHandle
		addr string
	}{{g, "10.247.7.10/24"}, {h, "10.247.7.11/24"}, {l, "10.247.7.20/24"}, {r, "10.247.7.254/24"}} {
		nstest.Addr(t, x.ns, "eth0", x.addr)
		if x.ns != r {
			nstest.DefaultRoute(t, x.ns, net.IPv4(10, 247, 7, 254))
		}
	}

	// The front-end: what it hears is the path and the caller the relay
	// names.
	var mu sync.Mutex
	var asked []string
	fe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get(mdrelay.CallerHeader))
		mu.Unlock()
		fmt.Fprintf(w, "%s %s", strings.TrimPrefix(r.URL.Path, mdrelay.Path), r.Header.Get(mdrelay.CallerHeader))
	}))
	t.Cleanup(fe.Close)
	var ln net.Listener
	nstest.MustDo(t, node, func() (err error) { ln, err = net.Listen("tcp4", "127.0.0.1:0"); return err })
	t.Cleanup(func() { ln.Close() })
	guest := ma("10.247.7.10")
	relay := &mdrelay.Relay{BaseURL: fe.URL, HTTP: fe.Client(), Allow: func(a netip.Addr) bool { return a == guest }}
	go http.Serve(ln, relay)

	ports := []nft.Port{{ID: "i-g", Name: "nmdg", MAC: gMAC, Addr: guest}, {ID: "i-h", Name: "nmdh", MAC: hMAC, Addr: ma("10.247.7.11")}}
	nstest.MustDo(t, node, func() error { _, err := nft.SyncPorts(ports); return err })
	defer nstest.MustDo(t, node, func() error { _, err := nft.SyncPorts(nil); return err })
	ag, err := New(Config{Bridge: "lan0", Metadata: netip.MustParseAddrPort(ln.Addr().String())}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nstest.MustDo(t, node, func() error {
		return ag.Set(ctx, Network{Filter: true,
			Instances: []netmode.Instance{{ID: "i-g", PrivateIP: guest, Groups: []string{"sg-a"}}, {ID: "i-h", PrivateIP: ma("10.247.7.11"), Groups: []string{"sg-a"}}},
			Groups:    []netmode.Group{{ID: "sg-a", Egress: allOut}}})
	})
	defer nstest.MustDo(t, node, func() error { return ag.Close(ctx) })

	metadata(t, g, "10.247.7.10")
	if body, err := nstest.Metadata(l, 2*time.Second); err == nil {
		t.Errorf("a LAN host crossing the node's bridge was answered: %q", body)
	}
	if body, err := nstest.Metadata(h, 3*time.Second); err != nil || strings.Contains(body, "instance-id") {
		t.Errorf("a guest the relay does not answer: %q %v, want 404", body, err)
	}
	mu.Lock()
	if len(asked) != 1 || asked[0] != "10.247.7.10" {
		t.Errorf("the front-end was asked for %q, want 10.247.7.10 once", asked)
	}
	mu.Unlock()
	// The LAN's hosts still talk across the bridge as before.
	nstest.ServeWho(t, r, "0.0.0.0:7000")
	nstest.MustWho(t, l, "10.247.7.254:7000", "10.247.7.20")

	// Closed, the guard goes, and route_localnet with it.
	localnet := func() string {
		var v []byte
		nstest.MustDo(t, node, func() (err error) { v, err = os.ReadFile("/proc/sys/net/ipv4/conf/lan0/route_localnet"); return err })
		return strings.TrimSpace(string(v))
	}
	if v := localnet(); v != "1" {
		t.Errorf("route_localnet on lan0 is %s while the relay is redirected to", v)
	}
	nstest.MustDo(t, node, func() error { return ag.Close(ctx) })
	if v := localnet(); v != "0" {
		t.Errorf("route_localnet on lan0 is %s once the agent closed", v)
	}
}
