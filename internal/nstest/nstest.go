// Package nstest gives kernel tests (the network layer's, and end-to-end
// tests playing guests) fresh network namespaces, so that bridges,
// nftables rules and DHCP run against the real kernel without touching
// the host's own network. Tests that need it skip
// with the reason when the process is not root or cannot create a
// namespace; under CI (CI set) they fail instead, since CI runs as root.
package nstest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Need skips (or, under CI, fails) t unless it may make namespaces.
func Need(t testing.TB) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root to create network namespaces"
	} else if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		reason = "no network namespaces: " + err.Error()
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI runs as root: %s", reason)
	}
	t.Skip(reason)
}

// New returns a fresh network namespace with its loopback up, closed when
// the test ends (the kernel drops it once nothing holds it).
func New(t testing.TB) netns.NsHandle {
	t.Helper()
	Need(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New() // also moves this thread into it
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("cannot create a network namespace: %v", err)
		}
		t.Fatalf("new netns: %v", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if rerr := netns.Set(orig); rerr != nil {
		panic(fmt.Sprintf("cannot return to the original netns: %v", rerr))
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// Do runs fn on a thread inside ns and returns its error. Sockets opened by
// fn stay in ns after Do returns, whichever goroutine uses them.
func Do(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	err = fn()
	if rerr := netns.Set(orig); rerr != nil {
		// The thread stays locked to this goroutine, so no other goroutine
		// runs in the wrong namespace; the runtime ends it with the goroutine.
		return fmt.Errorf("cannot return to the original netns: %w", rerr)
	}
	runtime.UnlockOSThread()
	return err
}

// MustDo is Do failing t on error.
func MustDo(t testing.TB, ns netns.NsHandle, fn func() error) {
	t.Helper()
	if err := Do(ns, fn); err != nil {
		t.Fatal(err)
	}
}

// Veth links namespace a to b with a veth pair named aName (in a) and bName
// (in b), gives the b end mac when not nil, and brings both ends up.
func Veth(t testing.TB, a netns.NsHandle, aName string, b netns.NsHandle, bName string, mac net.HardwareAddr) {
	t.Helper()
	MustDo(t, a, func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName,
			PeerNamespace: netlink.NsFd(int(b)), PeerHardwareAddr: mac}
		if err := netlink.LinkAdd(v); err != nil {
			return fmt.Errorf("veth %s/%s: %w", aName, bName, err)
		}
		return netlink.LinkSetUp(v)
	})
	MustDo(t, b, func() error {
		l, err := netlink.LinkByName(bName)
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
}

// Addr gives link name in ns the address cidr ("10.0.0.1/24").
func Addr(t testing.TB, ns netns.NsHandle, name, cidr string) {
	t.Helper()
	MustDo(t, ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		return netlink.AddrAdd(l, a)
	})
}

// DefaultRoute makes gw the default gateway of ns.
func DefaultRoute(t testing.TB, ns netns.NsHandle, gw net.IP) {
	t.Helper()
	MustDo(t, ns, func() error {
		return netlink.RouteAdd(&netlink.Route{Gw: gw})
	})
}

// Inside runs fn on a goroutine whose thread is in a fresh network
// namespace (its loopback down), and waits for it: what fn makes there
// goes with the namespace. The thread is never unlocked, so the runtime
// ends it with the goroutine and no other goroutine runs in the namespace.
// fn reports failures with t.Error, not t.Fatal (it is not the test's
// goroutine).
func Inside(t testing.TB, fn func()) {
	t.Helper()
	Need(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			t.Errorf("new netns: %v", err)
			return
		}
		defer ns.Close()
		fn()
	}()
	<-done
}
