package eipnat

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/netmode"
	"github.com/euca-cloud/euca/netmode/link"
)

const (
	port      = 5201
	guestIP   = "10.240.0.2"
	elasticIP = "10.240.200.10"
)

// path is one way from a client to a guest: where the client dials.
type path struct {
	client, guest netns.NsHandle
	dial          string
}

// plumb makes a router namespace joined to a client (pub0 10.240.201.1/24,
// the client 10.240.201.2) and a guest (vi1 on a bridge, the guest
// 10.240.0.2/20 behind gateway 10.240.0.1), with the guest's MAC.
func plumb(b *testing.B, mac net.HardwareAddr) (router, client, guest netns.NsHandle) {
	router, client, guest = nstest.New(b), nstest.New(b), nstest.New(b)
	nstest.Veth(b, router, "vi1", guest, "eth0", mac)
	nstest.Veth(b, router, "pub0", client, "eth0", nil)
	nstest.Addr(b, router, "pub0", "10.240.201.1/24")
	nstest.Addr(b, client, "eth0", "10.240.201.2/24")
	nstest.Addr(b, guest, "eth0", guestIP+"/20")
	nstest.DefaultRoute(b, guest, net.ParseIP("10.240.0.1"))
	nstest.DefaultRoute(b, client, net.ParseIP("10.240.201.1"))
	return router, client, guest
}

// bare is the path with no filter and no NAT: a bridge holding the
// gateway address and forwarding, nothing else; the client dials the
// guest's own address.
func bare(b *testing.B, mtu int) path {
	router, client, guest := plumb(b, nil)
	nstest.MustDo(b, router, func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", MTU: mtu}}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(br); err != nil {
			return err
		}
		a, _ := netlink.ParseAddr("10.240.0.1/20")
		if err := netlink.AddrAdd(br, a); err != nil {
			return err
		}
		_, err := link.WriteSysctl("/proc/sys/net/ipv4/ip_forward", "1")
		return err
	})
	nstest.Attach(b, router, "vi1", "br0")
	setMTU(b, router, "vi1", mtu)
	setMTU(b, guest, "eth0", mtu)
	return path{client: client, guest: guest, dial: fmt.Sprintf("%s:%d", guestIP, port)}
}

// cloud is the path through the cloud: MANAGED-NOVLAN built by netmode in
// the router (the pool's address on pub0, its bridge, the security group
// admitting the port, 1:1 NAT); the client dials the elastic IP. It
// returns the bridge's MTU, which the bare path then takes.
func cloud(b *testing.B) (path, int) {
	mac, _ := net.ParseMAC("d0:0d:0a:f0:00:02")
	router, client, guest := plumb(b, mac)
	m, err := netmode.New(netmode.Config{Mode: netmode.ManagedNoVLAN, Subnet: netip.MustParsePrefix("10.240.0.0/20"),
		DNS: []netip.Addr{netip.MustParseAddr("10.240.201.53")}, PublicIPs: []netip.Addr{netip.MustParseAddr(elasticIP)}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(func() { nstest.Do(router, func() error { return m.Close(ctx) }) })
	all := netip.MustParsePrefix("0.0.0.0/0")
	st := netmode.State{
		Instances: []netmode.Instance{{ID: "i-bench", MAC: mac, PrivateIP: netip.MustParseAddr(guestIP),
			PublicIP: netip.MustParseAddr(elasticIP), Groups: []string{"sg-bench"}}},
		Groups: []netmode.Group{{ID: "sg-bench",
			Ingress: []netmode.Rule{{Protocol: "tcp", FromPort: port, ToPort: port, CIDR: all}},
			Egress:  []netmode.Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: all}}}},
	}
	nstest.MustDo(b, router, func() error {
		// pub0 is the public interface: the default route's.
		if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP("10.240.201.2")}); err != nil {
			return err
		}
		return m.Set(ctx, st)
	})
	nstest.Attach(b, router, "vi1", "euca-br0")
	mtu := 0
	nstest.MustDo(b, router, func() error {
		br, err := netlink.LinkByName("euca-br0")
		if err == nil {
			mtu = br.Attrs().MTU
		}
		return err
	})
	setMTU(b, router, "vi1", mtu)
	setMTU(b, guest, "eth0", mtu)
	return path{client: client, guest: guest, dial: fmt.Sprintf("%s:%d", elasticIP, port)}, mtu
}

func setMTU(b *testing.B, ns netns.NsHandle, name string, mtu int) {
	nstest.MustDo(b, ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkSetMTU(l, mtu)
	})
}

// serve discards what each connection to the guest's port sends.
func serve(b *testing.B, p path) {
	var ln net.Listener
	nstest.MustDo(b, p.guest, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
}

// send writes n bytes from the client over one connection and returns the
// rate in MB/s, the connection's setup included.
func send(b *testing.B, p path, n int64) float64 {
	buf := make([]byte, 128<<10)
	var rate float64
	nstest.MustDo(b, p.client, func() error {
		start := time.Now()
		c, err := net.DialTimeout("tcp4", p.dial, 5*time.Second)
		if err != nil {
			return fmt.Errorf("dial %s: %w", p.dial, err)
		}
		for sent := int64(0); sent < n; sent += int64(len(buf)) {
			if _, err := c.Write(buf); err != nil {
				c.Close()
				return err
			}
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		// The guest closes once it has read everything.
		io.Copy(io.Discard, c)
		c.Close()
		rate = float64(n) / time.Since(start).Seconds() / 1e6
		return nil
	})
	return rate
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkElasticIP sends 256 MiB per round over each path, alternating,
// and reports each path's median rate and their ratio (the cloud's path
// over the bare one).
func BenchmarkElasticIP(b *testing.B) {
	nat, mtu := cloud(b)
	plain := bare(b, mtu)
	serve(b, nat)
	serve(b, plain)
	const n = 256 << 20
	send(b, nat, 1<<20) // warm up: ARP, conntrack, the first lookups
	send(b, plain, 1<<20)
	var withNAT, without []float64
	b.ResetTimer()
	for range max(b.N, 9) {
		without = append(without, send(b, plain, n))
		withNAT = append(withNAT, send(b, nat, n))
	}
	b.StopTimer()
	b.ReportMetric(median(without), "MB/s-bare")
	b.ReportMetric(median(withNAT), "MB/s-eip")
	b.ReportMetric(median(withNAT)/median(without), "ratio")
	b.Logf("MTU %d; MB/s without filter and NAT %.0f, through the elastic IP %.0f (rounds: %.0f / %.0f)",
		mtu, median(without), median(withNAT), without, withNAT)
}
