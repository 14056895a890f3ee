// Package conformance is the behaviour every hypervisor.Driver must show,
// as one test suite each driver's tests run against their own host: start
// (twice is harmless), console markers, reboot, stop and start again, an NC
// restart that adopts running guests without duplicating them, volumes
// hot-plugged and unplugged (and given at start), other tools' domains left
// alone, destroy, and failures that leave nothing behind.
//
// It is a library for tests: Run takes the *testing.T of the caller.
package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
)

// Harness describes the host under test.
type Harness struct {
	// New returns a driver for the host. The suite calls it again to play
	// a node controller restarting: the new driver must find what the
	// old one started. Closing is the suite's.
	New func(t *testing.T) hypervisor.Driver
	// Spec returns a bootable spec for instance id, its files made (in a
	// t.TempDir(), say).
	Spec func(t *testing.T, id string) hypervisor.InstanceSpec
	// Foreign makes a domain named hypervisor.DomainName(id) that this
	// project did not make, and removes it when t ends.
	Foreign func(t *testing.T, id string)
	// Volume serves an EBS volume for the suite to attach (an NBD export
	// on a unix socket, for a driver that runs guests), and stops serving
	// it when t ends.
	Volume func(t *testing.T, volumeID string) hypervisor.VolumeDisk
	// Markers are what one boot prints on the console, in order.
	Markers []string
	// Boot bounds the wait for one boot's markers (not a timing assertion:
	// a bound past which the guest is taken to be stuck).
	Boot time.Duration
}

// Run runs the suite. Its subtests share the host and run in order.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	d := h.New(t)
	defer func() { d.Close() }()
	suffix := randHex()
	idA, idB, idF := "i-ca"+suffix, "i-cb"+suffix, "i-cf"+suffix
	// Whatever fails, no domain of this run outlives it.
	t.Cleanup(func() {
		c := h.New(t)
		defer c.Close()
		for _, id := range []string{idA, idB, "i-cx" + suffix} {
			c.Destroy(ctx, id)
		}
	})
	specA, specB := h.Spec(t, idA), h.Spec(t, idB)

	t.Run("Describe", func(t *testing.T) {
		if d.Name() == "" {
			t.Error("empty Name")
		}
		c, err := d.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Cores < 1 || c.MemoryMiB < 1 || c.DiskGiB < 1 {
			t.Errorf("capacity %+v: want every field positive", c)
		}
	})

	t.Run("RefusesBadSpecs", func(t *testing.T) {
		bad := []func(s *hypervisor.InstanceSpec){
			func(s *hypervisor.InstanceSpec) { s.ID = "" },
			func(s *hypervisor.InstanceSpec) { s.ID = "i-x/../../etc" },
			func(s *hypervisor.InstanceSpec) { s.Cores = 0 },
			func(s *hypervisor.InstanceSpec) { s.MemoryMiB = 0 },
			func(s *hypervisor.InstanceSpec) { s.RootDisk = hypervisor.Disk{} },
			func(s *hypervisor.InstanceSpec) { s.RootDisk.Format = "vmdk" },
			func(s *hypervisor.InstanceSpec) { s.ConsoleLog = "console.log" },
			func(s *hypervisor.InstanceSpec) { s.Kernel = ""; s.Ramdisk = "/r" },
			func(s *hypervisor.InstanceSpec) { s.NICs = []hypervisor.NIC{{}} },
			func(s *hypervisor.InstanceSpec) { s.NICs = []hypervisor.NIC{{Tap: "t", MAC: "01:00:00:00:00:01"}} },
			func(s *hypervisor.InstanceSpec) { s.Accel = "xen" },
		}
		for i, f := range bad {
			s := h.Spec(t, "i-cx"+suffix)
			f(&s)
			if _, err := d.Start(ctx, s); !errors.Is(err, hypervisor.ErrInvalidSpec) {
				t.Errorf("bad spec %d: Start = %v, want ErrInvalidSpec", i, err)
			}
		}
		assertAbsent(t, d, "i-cx"+suffix)
	})

	t.Run("FailedStartLeavesNothing", func(t *testing.T) {
		s := h.Spec(t, "i-cx"+suffix)
		s.RootDisk.Path += ".missing"
		if _, err := d.Start(ctx, s); err == nil {
			t.Fatal("Start with a missing root disk succeeded")
		}
		assertAbsent(t, d, "i-cx"+suffix)
	})

	t.Run("StartTwiceIsOneDomain", func(t *testing.T) {
		dom, err := d.Start(ctx, specA)
		if err != nil {
			t.Fatal(err)
		}
		if dom.ID != idA || dom.Name != hypervisor.DomainName(idA) || dom.State != hypervisor.Running || dom.StartedAt.IsZero() {
			t.Errorf("Start = %+v", dom)
		}
		if dom.Spec.Accel == "" {
			t.Error("Start's domain does not say which accelerator runs it")
		}
		again, err := d.Start(ctx, specA)
		if err != nil {
			t.Fatal(err)
		}
		if !again.StartedAt.Equal(dom.StartedAt) {
			t.Errorf("second Start booted again: started %v, then %v", dom.StartedAt, again.StartedAt)
		}
		// Two concurrent Starts of one id: one domain.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		doms := make([]hypervisor.Domain, 2)
		for i := range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); doms[i], errs[i] = d.Start(ctx, specB) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if !doms[0].StartedAt.Equal(doms[1].StartedAt) {
			t.Errorf("concurrent Starts booted twice: %v, %v", doms[0].StartedAt, doms[1].StartedAt)
		}
		assertListed(t, d, map[string]hypervisor.InstanceSpec{idA: specA, idB: specB})
	})

	t.Run("ConsoleShowsBoot", func(t *testing.T) {
		waitMarkers(t, d, h, idA, 1)
		waitMarkers(t, d, h, idB, 1)
	})

	t.Run("Reboot", func(t *testing.T) {
		if err := d.Reboot(ctx, idA); err != nil {
			t.Fatal(err)
		}
		waitMarkers(t, d, h, idA, 2) // the console carries on across the reset
		if st, err := d.State(ctx, idA); err != nil || st != hypervisor.Running {
			t.Errorf("State after reboot = %v, %v", st, err)
		}
	})

	t.Run("StopThenStartAgain", func(t *testing.T) {
		if err := d.Stop(ctx, idA, time.Second); err != nil {
			t.Fatal(err)
		}
		if st, err := d.State(ctx, idA); err != nil || st.Active() {
			t.Fatalf("State after Stop = %v, %v: want inactive", st, err)
		}
		if err := d.Stop(ctx, idA, 0); err != nil {
			t.Errorf("Stop of a stopped domain = %v", err)
		}
		if con, err := d.Console(ctx, idA); err != nil || len(con) == 0 {
			t.Errorf("Console after Stop = %d bytes, %v: want the last boot's", len(con), err)
		}
		if err := d.Reboot(ctx, idA); !errors.Is(err, hypervisor.ErrNotRunning) {
			t.Errorf("Reboot of a stopped domain = %v, want ErrNotRunning", err)
		}
		assertListed(t, d, map[string]hypervisor.InstanceSpec{idA: specA, idB: specB})
		if _, err := d.Start(ctx, specA); err != nil {
			t.Fatal(err)
		}
		waitMarkers(t, d, h, idA, 1) // emptied at boot: exactly one boot again
	})

	t.Run("RestartAdopts", func(t *testing.T) {
		d.Close()
		d = h.New(t)
		doms, err := d.Recover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, dom := range doms {
			seen[dom.ID]++
			if (dom.ID == idA || dom.ID == idB) && dom.State != hypervisor.Running {
				t.Errorf("recovered %s %s, want running", dom.ID, dom.State)
			}
		}
		if seen[idA] != 1 || seen[idB] != 1 {
			t.Errorf("Recover saw %s %d times and %s %d times, want once each", idA, seen[idA], idB, seen[idB])
		}
		before, _ := d.List(ctx)
		dom, err := d.Start(ctx, specA)
		if err != nil || dom.State != hypervisor.Running {
			t.Fatalf("Start of an adopted domain = %+v, %v", dom, err)
		}
		after, _ := d.List(ctx)
		if len(after) != len(before) {
			t.Errorf("Start after the restart made a domain: %d, then %d", len(before), len(after))
		}
		assertListed(t, d, map[string]hypervisor.InstanceSpec{idA: specA, idB: specB})
		waitMarkers(t, d, h, idA, 1) // still the one boot: not restarted
	})

	t.Run("Volumes", func(t *testing.T) {
		v1, v2 := h.Volume(t, "vol-c1"+suffix), h.Volume(t, "vol-c2"+suffix)
		// Hot-plugged into the running guest, harmless twice, kept in the
		// spec across a restart of the NC.
		for range 2 {
			if err := d.AttachVolume(ctx, idA, v1); err != nil {
				t.Fatal(err)
			}
		}
		assertVolumes(t, d, idA, v1)
		d.Close()
		d = h.New(t)
		if _, err := d.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, idA, v1)
		if err := d.AttachVolume(ctx, idA, v2); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, idA, v1, v2)
		if st, err := d.State(ctx, idA); err != nil || st != hypervisor.Running {
			t.Errorf("State after attaching = %v, %v", st, err)
		}
		// Refused: a boot volume hot-plugged, a bad volume, no domain.
		boot := v2
		boot.VolumeID, boot.Boot = "vol-cb"+suffix, true
		if err := d.AttachVolume(ctx, idA, boot); !errors.Is(err, hypervisor.ErrInvalidSpec) {
			t.Errorf("hot-plugging a boot volume = %v, want ErrInvalidSpec", err)
		}
		bad := v2
		bad.VolumeID, bad.Serial = "vol-cx"+suffix, "a serial longer than twenty bytes"
		if err := d.AttachVolume(ctx, idA, bad); !errors.Is(err, hypervisor.ErrInvalidSpec) {
			t.Errorf("a 33-byte serial = %v, want ErrInvalidSpec", err)
		}
		if err := d.AttachVolume(ctx, "i-cx"+suffix, v1); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("attach to no domain = %v, want ErrNotFound", err)
		}
		if err := d.DetachVolume(ctx, "i-cx"+suffix, v1.VolumeID, false); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("detach from no domain = %v, want ErrNotFound", err)
		}
		// Unplugged once the guest lets go; then again, and a volume the
		// domain never had, are no errors.
		for range 2 {
			if err := d.DetachVolume(ctx, idA, v1.VolumeID, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.DetachVolume(ctx, idA, "vol-cn"+suffix, false); err != nil {
			t.Errorf("detach of a volume never attached = %v", err)
		}
		assertVolumes(t, d, idA, v2)
		if err := d.DetachVolume(ctx, idA, v2.VolumeID, true); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, idA)
		// A shut-off domain takes a volume into its definition.
		if err := d.Stop(ctx, idB, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.AttachVolume(ctx, idB, v1); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, idB, v1)
		if err := d.DetachVolume(ctx, idB, v1.VolumeID, false); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, idB)
		if resumed, err := d.ResumeIOError(ctx, idA); err != nil || resumed {
			t.Errorf("ResumeIOError of a running guest = %v, %v: want nothing to resume", resumed, err)
		}
	})

	t.Run("StartWithVolumes", func(t *testing.T) {
		// Volumes given to Start are plugged before the guest boots; a
		// boot volume would be its first disk (Validate's rules are
		// checked here, booting from one is the NC's integration test).
		id := "i-cv" + suffix
		s := h.Spec(t, id)
		v := h.Volume(t, "vol-c3"+suffix)
		s.Volumes = []hypervisor.VolumeDisk{v}
		t.Cleanup(func() { d.Destroy(ctx, id) })
		if _, err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, id, v)
		waitMarkers(t, d, h, id, 1)
		if err := d.DetachVolume(ctx, id, v.VolumeID, false); err != nil {
			t.Fatal(err)
		}
		assertVolumes(t, d, id)
		if err := d.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
		boot := v
		boot.Boot = true
		for i, f := range []func(s *hypervisor.InstanceSpec){
			func(s *hypervisor.InstanceSpec) { s.Volumes = []hypervisor.VolumeDisk{boot} },                           // and a root disk
			func(s *hypervisor.InstanceSpec) { s.Volumes = []hypervisor.VolumeDisk{v, v}; s.Volumes[1].Boot = true }, // one id twice
			func(s *hypervisor.InstanceSpec) {
				s.Volumes = []hypervisor.VolumeDisk{{VolumeID: "vol-x", Serial: "x", Socket: "rel"}}
			},
		} {
			s := h.Spec(t, id)
			f(&s)
			if _, err := d.Start(ctx, s); !errors.Is(err, hypervisor.ErrInvalidSpec) {
				t.Errorf("bad volume spec %d: Start = %v, want ErrInvalidSpec", i, err)
			}
		}
		s = h.Spec(t, id)
		s.RootDisk, s.Volumes = hypervisor.Disk{}, []hypervisor.VolumeDisk{boot}
		if err := s.Validate(); err != nil {
			t.Errorf("a spec booting from a volume: %v", err)
		}
	})

	t.Run("LeavesForeignDomainsAlone", func(t *testing.T) {
		h.Foreign(t, idF)
		for _, call := range []struct {
			what string
			f    func() error
		}{
			{"State", func() error { _, err := d.State(ctx, idF); return err }},
			{"Console", func() error { _, err := d.Console(ctx, idF); return err }},
			{"Reboot", func() error { return d.Reboot(ctx, idF) }},
			{"Stop", func() error { return d.Stop(ctx, idF, 0) }},
			{"Destroy", func() error { return d.Destroy(ctx, idF) }},
			{"Start", func() error { _, err := d.Start(ctx, h.Spec(t, idF)); return err }},
		} {
			if err := call.f(); !errors.Is(err, hypervisor.ErrForeign) {
				t.Errorf("%s of a foreign domain = %v, want ErrForeign", call.what, err)
			}
		}
		for _, list := range []func(context.Context) ([]hypervisor.Domain, error){d.List, d.Recover} {
			doms, err := list(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, dom := range doms {
				if dom.ID == idF {
					t.Errorf("a foreign domain listed: %+v", dom)
				}
			}
		}
	})

	t.Run("Destroy", func(t *testing.T) {
		for _, id := range []string{idA, idB} {
			if err := d.Destroy(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := d.Destroy(ctx, id); err != nil {
				t.Errorf("second Destroy of %s = %v, want nil", id, err)
			}
			assertAbsent(t, d, id)
		}
		if _, err := os.Stat(specA.ConsoleLog); err != nil {
			t.Errorf("Destroy removed the console log (the NC's to keep or remove): %v", err)
		}
	})
}

// assertVolumes checks that id's domain lists exactly want, in order.
func assertVolumes(t *testing.T, d hypervisor.Driver, id string, want ...hypervisor.VolumeDisk) {
	t.Helper()
	doms, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.ID != id {
			continue
		}
		got := dom.Spec.Volumes
		if len(got) != len(want) {
			t.Errorf("%s has volumes %+v, want %+v", id, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s volume %d = %+v, want %+v", id, i, got[i], want[i])
			}
		}
		return
	}
	t.Errorf("%s not listed", id)
}

// assertAbsent checks that d knows no domain of id.
func assertAbsent(t *testing.T, d hypervisor.Driver, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.State(ctx, id); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("State(%s) = %v, want ErrNotFound", id, err)
	}
	if _, err := d.Console(ctx, id); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Console(%s) = %v, want ErrNotFound", id, err)
	}
	if err := d.Reboot(ctx, id); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Reboot(%s) = %v, want ErrNotFound", id, err)
	}
	if err := d.Stop(ctx, id, 0); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Stop(%s) = %v, want ErrNotFound", id, err)
	}
	doms, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.ID == id {
			t.Errorf("List has %s: %+v", id, dom)
		}
	}
}

// assertListed checks that List has each of want once, with the spec it
// was started with.
func assertListed(t *testing.T, d hypervisor.Driver, want map[string]hypervisor.InstanceSpec) {
	t.Helper()
	doms, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, dom := range doms {
		n[dom.ID]++
		w, ok := want[dom.ID]
		if !ok {
			continue
		}
		g := dom.Spec
		if g.ID != w.ID || g.Cores != w.Cores || g.MemoryMiB != w.MemoryMiB || g.Kernel != w.Kernel ||
			g.Ramdisk != w.Ramdisk || g.RootDisk != w.RootDisk || g.EphemeralDisk != w.EphemeralDisk ||
			g.SwapDisk != w.SwapDisk || g.ConsoleLog != w.ConsoleLog || len(g.NICs) != len(w.NICs) {
			t.Errorf("listed spec of %s:\n got %+v\nwant %+v", dom.ID, g, w)
		}
		if dom.Name != hypervisor.DomainName(dom.ID) {
			t.Errorf("domain %s named %q", dom.ID, dom.Name)
		}
	}
	for id := range want {
		if n[id] != 1 {
			t.Errorf("List has %s %d times, want once", id, n[id])
		}
	}
}

// waitMarkers waits until id's console shows h.Markers in order, the last
// of them boots times.
func waitMarkers(t *testing.T, d hypervisor.Driver, h Harness, id string, boots int) {
	t.Helper()
	deadline := time.Now().Add(h.Boot * time.Duration(boots))
	var con []byte
	for {
		var err error
		con, err = d.Console(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if inOrder(con, h.Markers) && bytes.Count(con, []byte(h.Markers[len(h.Markers)-1])) >= boots {
			if n := bytes.Count(con, []byte(h.Markers[0])); n != boots {
				t.Errorf("console of %s shows %d boots, want %d:\n%s", id, n, boots, con)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("console of %s lacks %q (boot %d) after %v:\n%s", id, h.Markers, boots, h.Boot, con)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func inOrder(b []byte, markers []string) bool {
	for _, m := range markers {
		i := bytes.Index(b, []byte(m))
		if i < 0 {
			return false
		}
		b = b[i+len(m):]
	}
	return true
}

func randHex() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
