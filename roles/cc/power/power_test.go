package power

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestMagicPacket(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	b, err := MagicPacket(mac)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 102 || !bytes.Equal(b[:6], bytes.Repeat([]byte{0xff}, 6)) {
		t.Fatalf("packet %x", b)
	}
	for i := range 16 {
		if !bytes.Equal(b[6+6*i:12+6*i], mac) {
			t.Fatalf("repetition %d: %x", i, b[6+6*i:12+6*i])
		}
	}
	long, _ := net.ParseMAC("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01")
	if _, err := MagicPacket(long); err == nil {
		t.Fatal("a 20-byte address made a packet")
	}
}

// TestWakeOnLANSends listens where the packet goes (loopback, not the LAN's
// broadcast) and checks what arrives.
func TestWakeOnLANSends(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	mac, _ := net.ParseMAC("52:54:00:ab:cd:ef")
	w := WakeOnLAN{Addr: pc.LocalAddr().String(), MAC: func(node string) (net.HardwareAddr, error) {
		if node != "node-1" {
			return nil, errors.New("unknown")
		}
		return mac, nil
	}}
	if err := w.Wake(context.Background(), "node-1"); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 200)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := MagicPacket(mac)
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("received %x, want %x", buf[:n], want)
	}
	if err := w.Wake(context.Background(), "node-2"); err == nil {
		t.Fatal("woke a node without a MAC")
	}
	if err := w.PowerOff(context.Background(), "node-1"); !errors.Is(err, ErrNoPowerOff) {
		t.Fatalf("power off without Off: %v", err)
	}
}

func TestLookupARP(t *testing.T) {
	table := `IP address       HW type     Flags       HW address            Mask     Device
10.250.0.2       0x1         0x2         52:54:00:00:00:02     *        eth0
10.250.0.3       0x1         0x0         00:00:00:00:00:00     *        eth0
`
	mac, err := lookupARP(strings.NewReader(table), netip.MustParseAddr("10.250.0.2"))
	if err != nil || mac.String() != "52:54:00:00:00:02" {
		t.Fatalf("%v %v", mac, err)
	}
	if _, err := lookupARP(strings.NewReader(table), netip.MustParseAddr("10.250.0.3")); err == nil {
		t.Fatal("an incomplete entry gave a MAC")
	}
	if _, err := lookupARP(strings.NewReader(table), netip.MustParseAddr("10.250.0.9")); err == nil {
		t.Fatal("a missing entry gave a MAC")
	}
}

type host struct{ off, woken int }

func (h *host) PowerOff() error { h.off++; return nil }
func (h *host) Wake() error     { h.woken++; return nil }

func TestHosts(t *testing.T) {
	h := &host{}
	sw := Hosts{"a": h}
	ctx := context.Background()
	if err := sw.PowerOff(ctx, "a"); err != nil || h.off != 1 {
		t.Fatal(err, h.off)
	}
	if err := sw.Wake(ctx, "a"); err != nil || h.woken != 1 {
		t.Fatal(err, h.woken)
	}
	if err := sw.Wake(ctx, "b"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
}

// TestServeWake: a magic packet for one of the host's MACs wakes it; one
// for another host, or noise, does not.
func TestServeWake(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := net.ParseMAC("52:54:00:00:00:01")
	other, _ := net.ParseMAC("52:54:00:00:00:02")
	woke := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeWake(ctx, pc, []net.HardwareAddr{mine}, func() error { woke <- struct{}{}; return nil }, slog.New(slog.DiscardHandler))
	}()
	addr := pc.LocalAddr().String()
	if err := SendMagicPacket(ctx, addr, other); err != nil {
		t.Fatal(err)
	}
	c, _ := net.Dial("udp4", addr)
	c.Write([]byte("noise"))
	c.Close()
	if err := SendMagicPacket(ctx, addr, mine); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by its magic packet")
	}
	select {
	case <-woke:
		t.Fatal("woken twice: by another host's packet or noise")
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBroadcastIn(t *testing.T) {
	_, lan, _ := net.ParseCIDR("10.250.0.1/24")
	lan.IP = net.ParseIP("10.250.0.1")
	_, wide, _ := net.ParseCIDR("172.16.0.0/12")
	wide.IP = net.ParseIP("172.16.3.4")
	addrs := []net.Addr{wide, lan}
	for _, tt := range []struct{ ip, want string }{
		{"10.250.0.3", "10.250.0.255"},
		{"172.20.1.1", "172.31.255.255"},
		{"192.0.2.7", "255.255.255.255"},
	} {
		if got := broadcastIn([]net.IP{net.ParseIP(tt.ip)}, addrs).String(); got != tt.want {
			t.Errorf("broadcast for %s: %s, want %s", tt.ip, got, tt.want)
		}
	}
}
