package netmode

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/netmode/ipam"
	"github.com/euca-cloud/euca/netmode/nft"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestFromConf(t *testing.T) {
	dir := t.TempDir()
	ResolvConf = filepath.Join(dir, "resolv.conf")
	t.Cleanup(func() { ResolvConf = "/etc/resolv.conf" })
	os.WriteFile(ResolvConf, []byte("# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fd00::1\noptions edns0\nnameserver 9.9.9.9\n"), 0o644)

	c := conf.Defaults()
	cfg := ConfigFrom(c)
	if cfg.Mode != ManagedNoVLAN || cfg.Subnet != mp("172.31.0.0/16") || cfg.AddrsPerNet != 32 {
		t.Fatalf("ConfigFrom = %+v", cfg)
	}
	if !slices.Equal(cfg.DNS, []netip.Addr{ma("10.255.255.53"), ma("9.9.9.9")}) {
		t.Errorf("host resolvers %v (loopback and IPv6 left out)", cfg.DNS)
	}
	c.VNetDNS = []netip.Addr{ma("1.1.1.1")}
	if got := ConfigFrom(c).DNS; !slices.Equal(got, c.VNetDNS) {
		t.Errorf("VNET_DNS wins: %v", got)
	}

	m, err := FromConf(conf.Defaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != ManagedNoVLAN || m.Bridge(0) != DefaultBridge || m.Segments() != 0 {
		t.Errorf("default mode %s bridge %s segments %d", m.Name(), m.Bridge(0), m.Segments())
	}
}

func TestNewErrors(t *testing.T) {
	ok := Config{Subnet: mp("10.0.0.0/16"), AddrsPerNet: 32}
	for name, cfg := range map[string]Config{
		"unknown mode":       {Mode: "BRIDGED", Subnet: ok.Subnet},
		"no subnet":          {Mode: ManagedNoVLAN},
		"subnet too small":   {Mode: ManagedNoVLAN, Subnet: mp("10.0.0.0/31")},
		"bad bridge":         {Mode: ManagedNoVLAN, Subnet: ok.Subnet, Bridge: "a very long bridge name"},
		"bad pubinterface":   {Mode: ManagedNoVLAN, Subnet: ok.Subnet, PubInterface: "x/y"},
		"segments too big":   {Mode: Managed, Subnet: mp("10.0.0.0/28"), AddrsPerNet: 32},
		"bad privinterface":  {Mode: Managed, Subnet: ok.Subnet, AddrsPerNet: 32, PrivInterface: "a b"},
		"static no bridge":   {Mode: Static, Subnet: ok.Subnet, MACMap: []conf.MACIP{{MAC: mac("d0:0d:00:00:00:01"), IP: ma("10.0.0.5")}}},
		"static bad iface":   {Mode: Static, Subnet: ok.Subnet, PrivInterface: "a b", MACMap: []conf.MACIP{{MAC: mac("d0:0d:00:00:00:01"), IP: ma("10.0.0.5")}}},
		"static no macmap":   {Mode: Static, Subnet: ok.Subnet, Bridge: "br0"},
		"system long bridge": {Mode: System, Bridge: "averyveryverylongname"},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A front-end of the 1.5 documentation: SYSTEM with VNET_MODE alone,
	// STATIC serving on VNET_INTERFACE; neither bridges guests itself.
	if m, err := New(Config{Mode: System}, nil); err != nil || m.Bridge(0) != "" {
		t.Errorf("SYSTEM front-end without VNET_BRIDGE: %v", err)
	}
	if m, err := New(Config{Mode: Static, Subnet: ok.Subnet, PrivInterface: "eth0",
		MACMap: []conf.MACIP{{MAC: mac("d0:0d:00:00:00:01"), IP: ma("10.0.0.5")}}}, nil); err != nil || m.Bridge(0) != "" {
		t.Errorf("STATIC front-end on VNET_INTERFACE: %v", err)
	}
}

func TestAllocate(t *testing.T) {
	nv, _ := New(Config{Mode: ManagedNoVLAN, Subnet: mp("172.31.0.0/16")}, nil)
	a, err := nv.Allocate([]netip.Addr{ma("172.31.0.2")}, 0)
	if err != nil || a.PrivateIP != ma("172.31.0.3") || a.MAC.String() != "d0:0d:ac:1f:00:03" {
		t.Errorf("MANAGED-NOVLAN Allocate = %+v, %v", a, err)
	}

	mg, _ := New(Config{Mode: Managed, Subnet: mp("172.31.0.0/16"), AddrsPerNet: 32}, nil)
	if mg.Segments() != 2048 || mg.Bridge(0) != "euca-br2" || mg.Bridge(5) != "euca-br7" {
		t.Errorf("MANAGED segments %d bridges %s %s", mg.Segments(), mg.Bridge(0), mg.Bridge(5))
	}
	a, err = mg.Allocate(nil, 1)
	if err != nil || a.PrivateIP != ma("172.31.0.34") {
		t.Errorf("MANAGED Allocate segment 1 = %+v, %v (gateway .33)", a, err)
	}
	if _, err := mg.Allocate(nil, 5000); err == nil {
		t.Error("segment past the VLAN range")
	}
	big, _ := New(Config{Mode: Managed, Subnet: mp("10.0.0.0/8"), AddrsPerNet: 16}, nil)
	if big.Segments() != ipam.MaxSegments {
		t.Errorf("segments capped at the VLAN ids: %d", big.Segments())
	}

	st, _ := New(Config{Mode: Static, Subnet: mp("192.168.1.0/24"), Bridge: "br0", MACMap: []conf.MACIP{
		{MAC: mac("d0:0d:00:00:00:0a"), IP: ma("192.168.1.10")},
		{MAC: mac("d0:0d:00:00:00:0b"), IP: ma("192.168.1.11")},
	}}, nil)
	a, err = st.Allocate([]netip.Addr{ma("192.168.1.10")}, 0)
	if err != nil || a.PrivateIP != ma("192.168.1.11") || a.MAC.String() != "d0:0d:00:00:00:0b" || st.Bridge(0) != "br0" {
		t.Errorf("STATIC Allocate = %+v, %v", a, err)
	}
	if _, err := st.Allocate([]netip.Addr{ma("192.168.1.10"), ma("192.168.1.11")}, 0); err == nil {
		t.Error("STATIC: pairs exhausted")
	}

	sy, _ := New(Config{Mode: System, Bridge: "br0"}, nil)
	a, err = sy.Allocate(nil, 0)
	if err != nil || a.PrivateIP.IsValid() || a.MAC[0] != ipam.SystemMACPrefix {
		t.Errorf("SYSTEM Allocate = %+v, %v", a, err)
	}
}

func TestProtocol(t *testing.T) {
	for in, want := range map[string]int{"-1": -1, "all": -1, "tcp": 6, "TCP": 6, "udp": 17, "icmp": 1, "47": 47, "0": 0} {
		if n, ok, err := protocol(in); err != nil || !ok || n != want {
			t.Errorf("protocol(%q) = %d %v %v", in, n, ok, err)
		}
	}
	if _, ok, err := protocol("icmpv6"); ok || err != nil {
		t.Error("icmpv6 is skipped, not an error")
	}
	for _, bad := range []string{"", "sctpish", "256", "-2"} {
		if _, _, err := protocol(bad); err == nil {
			t.Errorf("protocol(%q) accepted", bad)
		}
	}
}

// state is a small cloud: a web server in sg-web open to the world on 80
// and to sg-app on 5432, and an app server in sg-app.
func state() State {
	return State{
		Metadata: netip.MustParseAddrPort("172.31.0.1:8773"),
		Instances: []Instance{
			{ID: "i-web", MAC: mac("d0:0d:ac:1f:00:02"), PrivateIP: ma("172.31.0.2"), PublicIP: ma("203.0.113.10"), Groups: []string{"sg-web"}, Tap: "euca-web"},
			{ID: "i-app", MAC: mac("d0:0d:ac:1f:00:03"), PrivateIP: ma("172.31.0.3"), Groups: []string{"sg-app", "sg-web"}},
		},
		Groups: []Group{
			{ID: "sg-web", Segment: 0, Ingress: []Rule{
				{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDR: mp("0.0.0.0/0")},
				{Protocol: "tcp", FromPort: 5432, ToPort: 5432, PeerGroup: "sg-app"},
				{Protocol: "icmpv6", FromPort: -1, ToPort: -1, CIDR: mp("0.0.0.0/0")},
			}},
			{ID: "sg-app", Segment: 1},
		},
	}
}

func TestRulesFromState(t *testing.T) {
	m, _ := New(Config{Mode: ManagedNoVLAN, Subnet: mp("172.31.0.0/16")}, nil)
	mm := m.(*managed)
	st := state()
	nets, _, err := mm.networks(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 1 || nets[0].bridge != "euca-br0" || nets[0].gateway != ma("172.31.0.1") || len(nets[0].instances) != 2 {
		t.Fatalf("networks %+v", nets[0])
	}
	spec, err := mm.rules(st, nets)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := nft.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.Comments("group-sg-web"); !slices.Equal(got, []string{"tcp 80-80 from 0.0.0.0/0", "tcp 5432-5432 from group sg-app"}) {
		t.Errorf("sg-web rules %q (peer group sg-app; icmpv6 left out)", got)
	}
	if i := slices.IndexFunc(rs.Maps, func(m *nft.Map) bool { return m.Set.Name == nft.MembersSet("sg-app") }); i < 0 ||
		!slices.Equal(rs.Maps[i].Texts(), []string{"172.31.0.3"}) {
		t.Errorf("sg-app's members are not i-app's address: %v", rs.Maps)
	}
	if got := rs.Comments(nft.ChainPrerouting); !slices.Equal(got, []string{"metadata from euca-br0 to 172.31.0.1:8773", "elastic 203.0.113.10 to 172.31.0.2"}) {
		t.Errorf("prerouting %q", got)
	}
	if got := rs.Comments("inst-i-app"); !slices.Equal(got, []string{"group sg-app", "group sg-web", "default drop"}) {
		t.Errorf("i-app %q", got)
	}

	st.Groups[0].Ingress[0].Protocol = "bogus"
	if _, err := mm.rules(st, nets); err == nil {
		t.Error("bad protocol accepted")
	}
}

func TestStateErrors(t *testing.T) {
	nv, _ := New(Config{Mode: ManagedNoVLAN, Subnet: mp("172.31.0.0/16")}, nil)
	mg, _ := New(Config{Mode: Managed, Subnet: mp("172.31.0.0/16"), AddrsPerNet: 32}, nil)
	for name, tc := range map[string]struct {
		m      Mode
		mutate func(*State)
	}{
		"outside the subnet":   {nv, func(s *State) { s.Instances[0].PrivateIP = ma("10.0.0.2") }},
		"the gateway":          {nv, func(s *State) { s.Instances[0].PrivateIP = ma("172.31.0.1") }},
		"the broadcast":        {nv, func(s *State) { s.Instances[0].PrivateIP = ma("172.31.255.255") }},
		"shared address":       {nv, func(s *State) { s.Instances[1].PrivateIP = s.Instances[0].PrivateIP }},
		"shared MAC":           {nv, func(s *State) { s.Instances[1].MAC = s.Instances[0].MAC }},
		"no MAC":               {nv, func(s *State) { s.Instances[1].MAC = nil }},
		"no id":                {nv, func(s *State) { s.Instances[1].ID = "" }},
		"tap not ours":         {nv, func(s *State) { s.Instances[0].Tap = "vnet0" }},
		"tap too long":         {nv, func(s *State) { s.Instances[0].Tap = "euca-0123456789abc" }},
		"shared tap":           {nv, func(s *State) { s.Instances[1].Tap = s.Instances[0].Tap }},
		"IPv6 public":          {nv, func(s *State) { s.Instances[0].PublicIP = ma("2001:db8::1") }},
		"MANAGED, no group":    {mg, func(s *State) { s.Instances[0].Groups = nil }},
		"MANAGED, wrong range": {mg, func(s *State) { s.Instances[1].PrivateIP = ma("172.31.0.4") }}, // segment 1 is .32/27
		"MANAGED, no such grp": {mg, func(s *State) { s.Instances[0].Groups = []string{"sg-gone"} }},
	} {
		st := state()
		st.Instances[1].PrivateIP = ma("172.31.0.34") // segment 1 for MANAGED
		if tc.m.Name() == ManagedNoVLAN {
			st.Instances[1].PrivateIP = ma("172.31.0.3")
		}
		tc.mutate(&st)
		if _, _, err := tc.m.(*managed).networks(st); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The same state is valid in MANAGED with each instance in its segment.
	st := state()
	st.Instances[1].PrivateIP = ma("172.31.0.34")
	nets, _, err := mg.(*managed).networks(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 || nets[0].bridge != "euca-br2" || nets[1].bridge != "euca-br3" || nets[1].gateway != ma("172.31.0.33") || nets[1].tag != 3 {
		t.Errorf("MANAGED networks %+v %+v", nets[0], nets[1])
	}
}
