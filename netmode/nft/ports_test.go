package nft

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/google/nftables"
)

func TestBuildPorts(t *testing.T) {
	gm, _ := net.ParseMAC("02:43:00:00:00:0a")
	p := Port{ID: "i-1", Name: "euvm-1", MAC: gm, Addr: ma("10.243.2.10")}
	rs, err := BuildPorts([]Port{p, {ID: "i-2", Name: "euvm-2", MAC: gm}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rs.Comments(ChainPorts), []string{"from i-1 euvm-1", "from i-2 euvm-2"}; !slices.Equal(got, want) {
		t.Errorf("ports chain %q, want %q", got, want)
	}
	if got, want := rs.Comments(PortChain("i-1")), []string{"not from 02:43:00:00:00:0a", "no dhcp answers", "dhcp as another client", "dhcp in fragments", "arp as 10.243.2.10",
		"metadata from 10.243.2.10", "ipv4 from 10.243.2.10", "arp probe", "dhcp from 0.0.0.0", "nothing else"}; !slices.Equal(got, want) {
		t.Errorf("port chain %q, want %q", got, want)
	}
	// Before its address is known a port may send DHCP and probes only.
	if got, want := rs.Comments(PortChain("i-2")), []string{"not from 02:43:00:00:00:0a", "no dhcp answers", "dhcp as another client", "dhcp in fragments", "arp probe", "dhcp from 0.0.0.0",
		"nothing else"}; !slices.Equal(got, want) {
		t.Errorf("port chain without an address %q, want %q", got, want)
	}
	for _, bad := range [][]Port{
		{{ID: "i-1", Name: "x", MAC: gm[:5]}},
		{{ID: "i-1", Name: "", MAC: gm}},
		{{ID: "i-1", Name: "a-name-too-long-for-linux", MAC: gm}},
		{{ID: "i-1", Name: "x", MAC: gm, Addr: ma("::1")}},
		{{ID: "i-1", Name: "x", MAC: gm, Addr: ma("0.0.0.0")}},
		{{ID: "i-1", Name: "x", MAC: gm}, {ID: "i-2", Name: "x", MAC: gm}},
	} {
		if _, err := BuildPorts(bad); err == nil {
			t.Errorf("BuildPorts(%+v) accepted", bad)
		}
	}
}

// TestKernelPorts sends, from a guest namespace through a bridge to a LAN
// namespace, frames a guest could forge, and checks which arrive: with the
// table, only those from the guest's own MAC and address (or DHCP and ARP
// probes from 0.0.0.0) pass; without it, everything does.
//
//	guest eth0 02:43:00:00:00:0a 10.243.2.10 ── stsg ─ stsbr ─ stsl ── lan eth0
func TestKernelPorts(t *testing.T) {
	host, guest, lan := nstest.New(t), nstest.New(t), nstest.New(t)
	gm, _ := net.ParseMAC("02:43:00:00:00:0a")
	om, _ := net.ParseMAC("02:43:00:00:00:66")
	gip, oip, dst := ma("10.243.2.10"), ma("10.243.2.66"), ma("10.243.2.1")
	zero, bcast := ma("0.0.0.0"), ma("255.255.255.255")
	nstest.Veth(t, host, "stsg", guest, "eth0", gm)
	nstest.Veth(t, host, "stsl", lan, "eth0", nil)
	nstest.Bridge(t, host, "stsbr", "stsg", "stsl")
	capture := nstest.Listen(t, lan, "eth0")

	udp := func(srcMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, marker string) []byte {
		return nstest.UDPFrame(srcMAC, nstest.Broadcast, src, dst, sport, dport, []byte(marker))
	}
	type frame struct {
		marker string
		b      []byte
	}
	frames := func(round int) []frame {
		m := func(s string) string { return fmt.Sprintf("STS-%d-%s.", round, s) }
		ipv6 := append([]byte{0x60, 0, 0, 0, 0, byte(len(m("ipv6"))), 59, 64}, make([]byte, 32)...)
		vlan := append([]byte{0, 5, 8, 0}, nstest.IPv4Packet(gip, dst, 17, []byte(m("vlan")))...)
		return []frame{
			{m("udp"), udp(gm, gip, dst, 4000, 5000, m("udp"))},
			{m("spoof-ip"), udp(gm, oip, dst, 4000, 5000, m("spoof-ip"))},
			{m("spoof-mac"), udp(om, gip, dst, 4000, 5000, m("spoof-mac"))},
			{m("arp"), nstest.ARPFrame(gm, gm, gip, dst, m("arp"))},
			{m("arp-probe"), nstest.ARPFrame(gm, gm, zero, gip, m("arp-probe"))},
			{m("arp-spoof-ip"), nstest.ARPFrame(gm, gm, oip, dst, m("arp-spoof-ip"))},
			{m("arp-spoof-sha"), nstest.ARPFrame(gm, om, gip, dst, m("arp-spoof-sha"))},
			{m("dhcp"), udp(gm, zero, bcast, 68, 67, m("dhcp"))},
			{m("zero-not-dhcp"), udp(gm, zero, bcast, 68, 53, m("zero-not-dhcp"))},
			{m("dhcp-answer"), udp(gm, gip, bcast, 67, 68, m("dhcp-answer"))},
			{m("dhcp-own"), udp(gm, zero, bcast, 68, 67, string(bootp(gm, m("dhcp-own"))))},
			{m("dhcp-other"), udp(gm, zero, bcast, 68, 67, string(bootp(om, m("dhcp-other"))))},
			{m("renew-own"), udp(gm, gip, dst, 68, 67, string(bootp(gm, m("renew-own"))))},
			{m("release-other"), udp(gm, gip, dst, 68, 67, string(bootp(om, m("release-other"))))},
			{m("dhcp-fragment"), firstFragment(udp(gm, zero, bcast, 68, 67, m("dhcp-fragment")))},
			{m("ipv6"), nstest.EtherFrame(gm, nstest.Broadcast, 0x86dd, append(ipv6, m("ipv6")...))},
			{m("vlan"), nstest.EtherFrame(gm, nstest.Broadcast, 0x8100, vlan)},
			// Last, and passing in every round: once it is in, whatever
			// else passed is in too (one path, in order).
			{m("end"), udp(gm, zero, bcast, 68, 67, m("end"))},
		}
	}
	// send sends a round and returns which of its frames arrived.
	send := func(round int) map[string]bool {
		t.Helper()
		fs := frames(round)
		var bs [][]byte
		for _, f := range fs {
			bs = append(bs, f.b)
		}
		if err := nstest.SendFrames(guest, "eth0", bs...); err != nil {
			t.Fatal(err)
		}
		capture.WaitFor(t, fs[len(fs)-1].marker, 5*time.Second)
		got := map[string]bool{}
		for _, f := range fs {
			name := strings.TrimSuffix(strings.TrimPrefix(f.marker, fmt.Sprintf("STS-%d-", round)), ".")
			got[name] = capture.Seen(f.marker)
		}
		return got
	}
	check := func(what string, got map[string]bool, pass ...string) {
		t.Helper()
		for m, arrived := range got {
			if want := slices.Contains(pass, m) || m == "end"; arrived != want {
				t.Errorf("%s: frame %s arrived=%v, want %v", what, m, arrived, want)
			}
		}
	}
	sync := func(ports ...Port) {
		t.Helper()
		nstest.MustDo(t, host, func() error { _, err := SyncPorts(ports); return err })
	}

	sync(Port{ID: "i-g", Name: "stsg", MAC: gm, Addr: gip})
	check("with its address", send(1), "udp", "arp", "arp-probe", "dhcp", "dhcp-own", "renew-own")
	sync(Port{ID: "i-g", Name: "stsg", MAC: gm})
	check("before its address is known", send(2), "arp-probe", "dhcp", "dhcp-own")
	nstest.MustDo(t, host, func() error {
		changed, err := SyncPorts([]Port{{ID: "i-g", Name: "stsg", MAC: gm}})
		if err == nil && changed {
			err = fmt.Errorf("the same ports twice changed the table")
		}
		return err
	})
	sync()
	check("without the table", send(3), "udp", "spoof-ip", "spoof-mac", "arp", "arp-probe", "arp-spoof-ip",
		"arp-spoof-sha", "dhcp", "zero-not-dhcp", "dhcp-answer", "ipv6", "vlan", "dhcp-own", "dhcp-other", "renew-own",
		"release-other", "dhcp-fragment")
	nstest.MustDo(t, host, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		if had, err := exists(c, nftables.TableFamilyBridge, PortsTableName); had || err != nil {
			return fmt.Errorf("no ports left the table in place (%v)", err)
		}
		return nil
	})
}

// bootp is a BOOTP request from client hardware address chaddr, marker
// after its fixed header.
func bootp(chaddr net.HardwareAddr, marker string) []byte {
	b := make([]byte, 236)
	b[0], b[1], b[2] = 1, 1, 6
	copy(b[28:], chaddr)
	return append(b, marker...)
}

// firstFragment marks an Ethernet frame's IPv4 packet as the first of
// several fragments (more fragments), its header checksummed again.
func firstFragment(f []byte) []byte {
	f = slices.Clone(f)
	h := f[14:34]
	h[6] |= 0x20
	h[10], h[11] = 0, 0
	sum := nstest.Checksum(h)
	h[10], h[11] = byte(sum>>8), byte(sum)
	return f
}
