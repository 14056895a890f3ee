package link

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/vishvananda/netlink"
)

func TestNames(t *testing.T) {
	if got := TapName("i-0a1b2c3d4e5f60718"); got != "euca-0a1b2c3d4e" || len(got) != MaxName {
		t.Errorf("TapName = %q", got)
	}
	if got := TapName("i-1234"); got != "euca-1234" {
		t.Errorf("TapName short = %q", got)
	}
	if got := VLANName(4094); got != "euca-vl4094" || CheckName(got) != nil {
		t.Errorf("VLANName = %q", got)
	}
	for _, bad := range []string{"", "averyveryverylongname", "a b", "a/b", "eth0:1", ".."} {
		if CheckName(bad) == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
	for _, good := range []string{"euca-br0", "br0", "eth0.10", "abcdefghijklmno"} {
		if err := CheckName(good); err != nil {
			t.Errorf("CheckName(%q): %v", good, err)
		}
	}
	if !Owned("euca-br0") || Owned("br0") {
		t.Error("Owned")
	}
}

func TestMACs(t *testing.T) {
	guest, _ := net.ParseMAC("d0:0d:ac:1f:00:02")
	if got := TapMAC(guest).String(); got != "fe:0d:ac:1f:00:02" {
		t.Errorf("TapMAC = %s", got)
	}
	if guest[0] != 0xd0 {
		t.Error("TapMAC changed its argument")
	}
	if got := BridgeMAC(netip.MustParseAddr("172.31.0.1")).String(); got != "02:0d:ac:1f:00:01" {
		t.Errorf("BridgeMAC = %s", got)
	}
}

// The VLAN code cannot run on a kernel without 802.1Q; what it asks netlink
// for is checked here.
func TestVLANLink(t *testing.T) {
	v := VLANLink("euca-vl12", 7, 12)
	if v.Name != "euca-vl12" || v.ParentIndex != 7 || v.VlanId != 12 || v.VlanProtocol != netlink.VLAN_PROTOCOL_8021Q || v.Type() != KindVLAN {
		t.Fatalf("VLANLink = %+v", v)
	}
	for _, tag := range []int{0, 1, 4095, -3} {
		if CheckVLAN(tag) == nil {
			t.Errorf("VLAN %d accepted", tag)
		}
	}
	if CheckVLAN(2) != nil || CheckVLAN(4094) != nil {
		t.Error("valid VLAN refused")
	}
}

func TestKernelBridgeTapAddrs(t *testing.T) {
	ns := nstest.New(t)
	nstest.MustDo(t, ns, func() error {
		gw := netip.MustParseAddr("10.77.0.1")
		br, created, err := EnsureBridge("euca-br0", BridgeMAC(gw))
		if err != nil || !created {
			t.Fatalf("EnsureBridge = %v, %v", created, err)
		}
		if br.Attrs().HardwareAddr.String() != "02:0d:0a:4d:00:01" {
			t.Errorf("bridge mac %s", br.Attrs().HardwareAddr)
		}
		if _, created, err = EnsureBridge("euca-br0", nil); err != nil || created {
			t.Fatalf("EnsureBridge again = %v, %v", created, err)
		}
		guest, _ := net.ParseMAC("d0:0d:0a:4d:00:02")
		for i := 0; i < 2; i++ { // twice: harmless
			if err := EnsureTap("euca-t1", br, TapMAC(guest)); err != nil {
				t.Fatalf("EnsureTap #%d: %v", i, err)
			}
		}
		tap, err := netlink.LinkByName("euca-t1")
		if err != nil {
			t.Fatal(err)
		}
		if tap.Attrs().MasterIndex != br.Attrs().Index || tap.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("tap not attached and up: %+v", tap.Attrs())
		}
		if tap.Attrs().HardwareAddr.String() != "fe:0d:0a:4d:00:02" {
			t.Errorf("tap mac %s", tap.Attrs().HardwareAddr)
		}
		taps, _ := List(KindTap)
		bridges, _ := List(KindBridge)
		if len(taps) != 1 || len(bridges) != 1 {
			t.Errorf("List: %d taps, %d bridges", len(taps), len(bridges))
		}
		if err := EnsureTap("euca-br0", br, nil); err == nil {
			t.Error("a bridge taken for a tap")
		}

		// Addresses: ours replaced, the operator's kept.
		operator := netip.MustParsePrefix("192.168.50.1/24")
		if err := SetAddrs(br, []netip.Prefix{operator}, nil); err != nil {
			t.Fatal(err)
		}
		ours := func(p netip.Prefix) bool { return p.Addr().Is4() && p.Addr().As4()[0] == 10 }
		want := netip.MustParsePrefix("10.77.0.1/16")
		for i := 0; i < 2; i++ {
			if err := SetAddrs(br, []netip.Prefix{want}, ours); err != nil {
				t.Fatal(err)
			}
		}
		other := netip.MustParsePrefix("10.78.0.1/16")
		if err := SetAddrs(br, []netip.Prefix{other}, ours); err != nil {
			t.Fatal(err)
		}
		got, _ := Addrs(br)
		if len(got) != 2 || !containsPrefix(got, operator) || !containsPrefix(got, other) {
			t.Errorf("addresses %v", got)
		}

		if err := Delete("euca-t1"); err != nil {
			t.Fatal(err)
		}
		if err := Delete("euca-t1"); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if Exists("euca-t1") {
			t.Error("tap still there")
		}
		return nil
	})
}

func TestKernelVLAN(t *testing.T) {
	ns := nstest.New(t)
	nstest.MustDo(t, ns, func() error {
		// No dummy driver on this kind of kernel: a veth is the parent.
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "priv0"}, PeerName: "priv1"}); err != nil {
			t.Fatal(err)
		}
		br, _, err := EnsureBridge("euca-br12", nil)
		if err != nil {
			t.Fatal(err)
		}
		err = EnsureVLAN(VLANName(12), "priv0", 12, br)
		if errors.Is(err, ErrNoVLAN) {
			t.Skipf("kernel without 802.1Q (MACHINE.md): %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := EnsureVLAN(VLANName(12), "priv0", 12, br); err != nil {
			t.Fatalf("again: %v", err)
		}
		if err := EnsureVLAN(VLANName(12), "priv0", 13, br); err == nil {
			t.Error("a VLAN device reused for another tag")
		}
		return nil
	})
}

func TestKernelDefaultRouteSysctl(t *testing.T) {
	ns := nstest.New(t)
	nstest.Veth(t, ns, "up0", nstest.New(t), "peer0", nil)
	nstest.Addr(t, ns, "up0", "10.9.0.1/24")
	nstest.MustDo(t, ns, func() error {
		if name, err := DefaultRouteInterface(); err != nil || name != "" {
			t.Errorf("no default route: %q, %v", name, err)
		}
		return nil
	})
	nstest.DefaultRoute(t, ns, net.ParseIP("10.9.0.2"))
	nstest.MustDo(t, ns, func() error {
		if name, err := DefaultRouteInterface(); err != nil || name != "up0" {
			t.Errorf("DefaultRouteInterface = %q, %v", name, err)
		}
		const p = "/proc/sys/net/ipv4/ip_forward"
		// A new namespace may inherit the host's value (devconf_inherit_init_net):
		// start from a known one.
		if _, err := WriteSysctl(p, "0"); err != nil {
			t.Errorf("WriteSysctl 0: %v", err)
		}
		if changed, err := WriteSysctl(p, "1"); err != nil || !changed {
			t.Errorf("WriteSysctl = %v, %v", changed, err)
		}
		if changed, err := WriteSysctl(p, "1"); err != nil || changed {
			t.Errorf("WriteSysctl again = %v, %v", changed, err)
		}
		return nil
	})
}
