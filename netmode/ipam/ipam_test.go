package ipam

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, ma(a))
	}
	return out
}

func TestGatewayBroadcast(t *testing.T) {
	for _, tc := range []struct{ p, gw, bc string }{
		{"172.31.0.0/16", "172.31.0.1", "172.31.255.255"},
		{"10.1.2.0/24", "10.1.2.1", "10.1.2.255"},
		{"10.1.2.64/27", "10.1.2.65", "10.1.2.95"},
		{"10.1.2.77/27", "10.1.2.65", "10.1.2.95"}, // host bits ignored
	} {
		if g := Gateway(mp(tc.p)); g != ma(tc.gw) {
			t.Errorf("Gateway(%s) = %s, want %s", tc.p, g, tc.gw)
		}
		if b := Broadcast(mp(tc.p)); b != ma(tc.bc) {
			t.Errorf("Broadcast(%s) = %s, want %s", tc.p, b, tc.bc)
		}
	}
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        string
		used     []netip.Addr
		reserved []netip.Addr
		want     string // "" : exhausted
	}{
		{"first after gateway", "172.31.0.0/16", nil, nil, "172.31.0.2"},
		{"skips used", "172.31.0.0/16", addrs("172.31.0.2", "172.31.0.3"), nil, "172.31.0.4"},
		{"fills a hole", "172.31.0.0/16", addrs("172.31.0.2", "172.31.0.4"), nil, "172.31.0.3"},
		{"skips reserved", "10.0.0.0/24", nil, addrs("10.0.0.2"), "10.0.0.3"},
		{"crosses a byte", "10.0.0.0/23", addrs(seq("10.0.0.2", 254)...), nil, "10.0.1.0"},
		{"never broadcast", "10.0.0.0/30", addrs("10.0.0.2"), nil, ""},
		{"smallest network", "10.0.0.0/30", nil, nil, "10.0.0.2"},
		{"used outside ignored", "10.0.0.0/29", addrs("192.168.0.2"), nil, "10.0.0.2"},
		{"exhausted", "10.0.0.0/29", addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Next(mp(tc.p), tc.used, tc.reserved...)
			if tc.want == "" {
				if !errors.Is(err, ErrExhausted) {
					t.Fatalf("Next = %v, %v; want ErrExhausted", got, err)
				}
				return
			}
			if err != nil || got != ma(tc.want) {
				t.Fatalf("Next = %v, %v; want %s", got, err, tc.want)
			}
			// Deterministic: the same inputs, the same answer.
			if again, _ := Next(mp(tc.p), tc.used, tc.reserved...); again != got {
				t.Fatalf("second call %s, first %s", again, got)
			}
		})
	}
	if _, err := Next(mp("10.0.0.0/31"), nil); err == nil {
		t.Error("a /31 has no host addresses")
	}
	if _, err := Next(mp("fd00::/64"), nil); err == nil {
		t.Error("IPv6 refused")
	}
}

func seq(first string, n int) []string {
	var out []string
	a := ma(first)
	for i := 0; i < n; i++ {
		out = append(out, a.String())
		a = a.Next()
	}
	return out
}

func TestSegments(t *testing.T) {
	p := mp("172.31.0.0/16")
	if n := Segments(p, 32); n != 2048 {
		t.Fatalf("Segments = %d", n)
	}
	for _, tc := range []struct {
		i    int
		want string
	}{{0, "172.31.0.0/27"}, {1, "172.31.0.32/27"}, {8, "172.31.1.0/27"}, {2047, "172.31.255.224/27"}} {
		got, err := Segment(p, 32, tc.i)
		if err != nil || got != mp(tc.want) {
			t.Errorf("Segment(%d) = %v, %v; want %s", tc.i, got, err, tc.want)
		}
	}
	if _, err := Segment(p, 32, 2048); err == nil {
		t.Error("segment past the end accepted")
	}
	if _, err := Segment(p, 48, 0); err == nil {
		t.Error("48 is not a power of two")
	}
	if Segments(mp("10.0.0.0/24"), 512) != 0 {
		t.Error("512 addresses do not fit a /24")
	}
	if Segments(mp("10.0.0.0/24"), 256) != 1 {
		t.Error("a /24 is one segment of 256")
	}
	// A segment's own gateway and first instance address.
	s, _ := Segment(p, 32, 3)
	if g := Gateway(s); g != ma("172.31.0.97") {
		t.Errorf("gateway of segment 3 = %s", g)
	}
	if a, _ := Next(s, nil); a != ma("172.31.0.98") {
		t.Errorf("first address of segment 3 = %s", a)
	}
}

func TestMAC(t *testing.T) {
	if got := MAC(ma("172.31.0.2")).String(); got != "d0:0d:ac:1f:00:02" {
		t.Fatalf("MAC = %s", got)
	}
	if ip, ok := AddrOfMAC(MAC(ma("172.31.0.2"))); !ok || ip != ma("172.31.0.2") {
		t.Fatalf("AddrOfMAC(MAC(172.31.0.2)) = %v, %v", ip, ok)
	}
	r1, r2 := RandomMAC(), RandomMAC()
	if _, ok := AddrOfMAC(r1); ok {
		t.Fatalf("AddrOfMAC(%s) of a random MAC", r1)
	}
	if r1[0] != SystemMACPrefix || len(r1) != 6 {
		t.Fatalf("RandomMAC = %s", r1)
	}
	if r1.String() == r2.String() {
		t.Fatalf("two random MACs equal: %s", r1)
	}
	if r1[0]&1 != 0 || r1[0]&2 == 0 {
		t.Fatalf("RandomMAC %s: not a locally administered unicast address", r1)
	}
}

func TestNextPair(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	pairs := []conf.MACIP{
		{MAC: mac("d0:0d:00:00:00:01"), IP: ma("192.168.1.10")},
		{MAC: mac("d0:0d:00:00:00:02"), IP: ma("192.168.1.11")},
	}
	p, err := NextPair(pairs, addrs("192.168.1.10"))
	if err != nil || p.IP != ma("192.168.1.11") {
		t.Fatalf("NextPair = %v, %v", p, err)
	}
	if _, err := NextPair(pairs, addrs("192.168.1.10", "192.168.1.11")); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want ErrExhausted, got %v", err)
	}
}

func TestSegmentsIn(t *testing.T) {
	for _, tc := range []struct {
		p           string
		per         int
		part        string
		first, want int
	}{
		{"192.168.0.0/16", 64, "192.168.0.0/16", 0, 1024},    // one zone: all of them
		{"192.168.0.0/16", 64, "192.168.128.0/17", 512, 512}, // the second of two zones
		{"192.168.0.0/16", 64, "192.168.1.32/27", 0, 0},      // a slice smaller than a segment
		{"192.168.0.0/16", 64, "192.168.1.64/26", 5, 1},
		{"10.0.0.0/8", 32, "10.0.0.0/8", 0, MaxSegments}, // as many as VLAN ids allow
		{"10.0.0.0/8", 32, "10.128.0.0/9", 0, 0},         // past the last VLAN id
		{"192.168.0.0/16", 64, "10.0.0.0/24", 0, 0},      // not inside
		{"192.168.0.0/24", 64, "192.168.0.0/16", 0, 0},   // wider than p
		{"192.168.0.0/16", 48, "192.168.0.0/16", 0, 0},   // not a power of two
		{"0.0.0.0/0", 1 << 24, "0.0.0.0/0", 0, 256},
	} {
		first, n := SegmentsIn(mp(tc.p), tc.per, mp(tc.part))
		if first != tc.first || n != tc.want {
			t.Errorf("SegmentsIn(%s, %d, %s) = %d, %d; want %d, %d", tc.p, tc.per, tc.part, first, n, tc.first, tc.want)
		}
	}
}
