package nodenet

import (
	"net/netip"
	"strings"
	"testing"
)

// TestCheckRefusesMalformedNetworks: what a cluster controller hands a
// node is checked before the kernel is touched: interface names, VNIs,
// unicast addresses, and bounds on how many devices and flood entries one
// message can ask for.
func TestCheckRefusesMalformedNetworks(t *testing.T) {
	seg := func(mod func(*Segment)) Network {
		s := Segment{Bridge: "euca-br1", VNI: 7, Gateway: netip.MustParseAddr("10.1.0.1"), Remotes: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
		if mod != nil {
			mod(&s)
		}
		return Network{Subnet: netip.MustParsePrefix("10.1.0.0/16"), Segments: []Segment{s}}
	}
	if err := check(seg(nil)); err != nil {
		t.Fatalf("a good network: %v", err)
	}
	many := func(k int) []netip.Addr {
		out := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
		for i := 1; i < k; i++ {
			out = append(out, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		}
		return out
	}
	for name, tc := range map[string]struct {
		n    Network
		want string
	}{
		"bridge with a slash": {seg(func(s *Segment) { s.Bridge = "../eth0" }), "not a network interface name"},
		"bridge too long":     {seg(func(s *Segment) { s.Bridge = "euca-0123456789ab" }), "not a network interface name"},
		"VNI 0":               {seg(func(s *Segment) { s.VNI = 0 }), "VNI"},
		"VNI too large":       {seg(func(s *Segment) { s.VNI = 1 << 24 }), "VNI"},
		"multicast remote":    {seg(func(s *Segment) { s.Remotes = append(s.Remotes, netip.MustParseAddr("239.1.1.1")) }), "not a unicast"},
		"broadcast remote":    {seg(func(s *Segment) { s.Remotes = append(s.Remotes, netip.MustParseAddr("255.255.255.255")) }), "not a unicast"},
		"unspecified remote":  {seg(func(s *Segment) { s.Remotes = append(s.Remotes, netip.MustParseAddr("0.0.0.0")) }), "not a unicast"},
		"loopback controller": {seg(func(s *Segment) { s.Remotes = []netip.Addr{netip.MustParseAddr("127.0.0.1")} }), "not a unicast"},
		"multicast gateway":   {seg(func(s *Segment) { s.Gateway = netip.MustParseAddr("224.0.0.1") }), "not a unicast"},
		"too many remotes":    {seg(func(s *Segment) { s.Remotes = many(maxRemotes + 1) }), "more than"},
		"too many segments":   {Network{Subnet: netip.MustParsePrefix("10.1.0.0/16"), Segments: make([]Segment, maxSegments+1)}, "more than"},
		"IPv6 remote":         {seg(func(s *Segment) { s.Remotes = append(s.Remotes, netip.MustParseAddr("2001:db8::1")) }), "not a unicast"},
	} {
		if err := check(tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
