package link

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/vishvananda/netlink"
)

func TestVXLANName(t *testing.T) {
	if got := VXLANName(MaxVNI); got != "euca-vx16777215" || CheckName(got) != nil {
		t.Errorf("VXLANName = %q", got)
	}
	for _, vni := range []int{0, -1, MaxVNI + 1} {
		if CheckVNI(vni) == nil {
			t.Errorf("VNI %d accepted", vni)
		}
	}
}

// TestKernelVXLAN makes a VXLAN device on a bridge over a veth underlay,
// reconciles its flood entries, and remakes it when its VNI changes.
func TestKernelVXLAN(t *testing.T) {
	ns := nstest.New(t)
	nstest.Veth(t, ns, "lan0", nstest.New(t), "peer0", nil)
	nstest.Addr(t, ns, "lan0", "192.0.2.1/24")
	nstest.MustDo(t, ns, func() error {
		p1, p2, p3 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4")
		u, err := FindUnderlay("", netip.Addr{}, p1)
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != "lan0" || u.Local != netip.MustParseAddr("192.0.2.1") || u.MTU != 1500 {
			t.Errorf("underlay by route %+v", u)
		}
		if u2, err := FindUnderlay("lan0", netip.MustParseAddr("192.0.2.1"), netip.Addr{}); err != nil || u2 != u {
			t.Errorf("underlay named %+v, %v", u2, err)
		}
		br, _, err := EnsureBridge("euca-br0", nil)
		if err != nil {
			t.Fatal(err)
		}
		v := VXLAN{Name: VXLANName(7), VNI: 7, Local: u.Local, Dev: u.Dev, MTU: u.MTU - VXLANOverhead}
		for i := 0; i < 2; i++ {
			if err := EnsureVXLAN(v, br); err != nil {
				t.Fatalf("EnsureVXLAN #%d: %v", i, err)
			}
		}
		l, err := netlink.LinkByName(v.Name)
		if err != nil {
			t.Fatal(err)
		}
		x := l.(*netlink.Vxlan)
		if x.VxlanId != 7 || x.Port != VXLANPort || x.MTU != 1450 || x.MasterIndex != br.Attrs().Index || !x.Learning {
			t.Errorf("vxlan %+v", x)
		}
		if err := SetFDB(v.Name, []netip.Addr{p1, p2}); err != nil {
			t.Fatal(err)
		}
		if err := SetFDB(v.Name, []netip.Addr{p2, p3}); err != nil {
			t.Fatal(err)
		}
		if got, err := FDB(v.Name); err != nil || !slices.Equal(got, []netip.Addr{p2, p3}) {
			t.Errorf("FDB = %v, %v; want %v %v", got, err, p2, p3)
		}
		// The bridge takes the lowest MTU of its ports: the tunnel's.
		if b, _ := netlink.LinkByName("euca-br0"); b.Attrs().MTU != 1450 {
			t.Errorf("bridge MTU %d", b.Attrs().MTU)
		}
		idx := x.Index
		v.VNI = 8
		if err := EnsureVXLAN(v, br); err != nil {
			t.Fatal(err)
		}
		l, _ = netlink.LinkByName(v.Name)
		if l.(*netlink.Vxlan).VxlanId != 8 || l.Attrs().Index == idx {
			t.Errorf("a VXLAN device of another VNI kept: %+v", l)
		}
		if ls, _ := List(KindVXLAN); len(ls) != 1 {
			t.Errorf("List(vxlan) = %d", len(ls))
		}
		if err := EnsureVXLAN(VXLAN{Name: "euca-br0", VNI: 9}, nil); err == nil {
			t.Error("a bridge taken for a VXLAN")
		}
		return nil
	})
}
