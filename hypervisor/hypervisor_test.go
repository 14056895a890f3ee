package hypervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func goodSpec() InstanceSpec {
	return InstanceSpec{ID: "i-0123456789abcdef0", Cores: 1, MemoryMiB: 128,
		Kernel: "/k", Ramdisk: "/r",
		RootDisk:      Disk{Path: "/i/root.qcow2", Format: QCOW2},
		EphemeralDisk: Disk{Path: "/i/ephemeral.img"},
		NICs:          []NIC{{Bridge: "euca-br0", Tap: "euca-t1", MAC: "d0:0d:12:34:56:78"}},
		ConsoleLog:    "/i/console.log"}
}

func TestValidate(t *testing.T) {
	if s := goodSpec(); s.Validate() != nil {
		t.Fatalf("good spec refused: %v", s.Validate())
	}
	for _, c := range []struct {
		name string
		f    func(*InstanceSpec)
		want string
	}{
		{"empty id", func(s *InstanceSpec) { s.ID = "" }, "id"},
		{"id with a slash", func(s *InstanceSpec) { s.ID = "i-1/../x" }, "id"},
		{"id too long", func(s *InstanceSpec) { s.ID = strings.Repeat("a", 65) }, "id"},
		{"no cores", func(s *InstanceSpec) { s.Cores = 0 }, "cores"},
		{"tiny memory", func(s *InstanceSpec) { s.MemoryMiB = 8 }, "memory"},
		{"ramdisk alone", func(s *InstanceSpec) { s.Kernel = "" }, "ramdisk needs a kernel"},
		{"relative kernel", func(s *InstanceSpec) { s.Kernel = "vmlinuz" }, "kernel"},
		{"no root", func(s *InstanceSpec) { s.RootDisk = Disk{} }, "no root disk"},
		{"relative root", func(s *InstanceSpec) { s.RootDisk.Path = "root.img" }, "root disk"},
		{"unknown format", func(s *InstanceSpec) { s.EphemeralDisk.Format = "vmdk" }, "ephemeral disk format"},
		{"format without path", func(s *InstanceSpec) { s.SwapDisk.Format = Raw }, "swap disk"},
		{"nic without link", func(s *InstanceSpec) { s.NICs = []NIC{{MAC: "d0:0d:00:00:00:01"}} }, "nic 0"},
		{"long tap", func(s *InstanceSpec) { s.NICs[0].Tap = "euca-0123456789ab" }, "at most 15"},
		{"multicast mac", func(s *InstanceSpec) { s.NICs[0].MAC = "01:00:5e:00:00:01" }, "mac"},
		{"bad mac", func(s *InstanceSpec) { s.NICs[0].MAC = "d0:0d" }, "mac"},
		{"no console", func(s *InstanceSpec) { s.ConsoleLog = "" }, "console"},
		{"bad accel", func(s *InstanceSpec) { s.Accel = "xen" }, "accel"},
	} {
		s := goodSpec()
		c.f(&s)
		err := s.Validate()
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate = %v, want ErrInvalidSpec about %q", c.name, err, c.want)
		}
	}
}

func TestReadConsoleFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "console.log")
	if b, err := ReadConsoleFile(p); err != nil || len(b) != 0 {
		t.Errorf("missing console = %q, %v; want empty", b, err)
	}
	big := append([]byte(strings.Repeat("x", ConsoleMax)), "the end\n"...)
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := ReadConsoleFile(p)
	if err != nil || len(b) != ConsoleMax || !strings.HasSuffix(string(b), "the end\n") {
		t.Errorf("console = %d bytes ending %q, %v; want the last %d", len(b), b[len(b)-8:], err, ConsoleMax)
	}
}

func TestStates(t *testing.T) {
	for s, active := range map[State]bool{Running: true, Paused: true, ShuttingDown: true, Shutoff: false, Crashed: false, Unknown: false} {
		if s.Active() != active {
			t.Errorf("%s.Active() = %v", s, !active)
		}
	}
}

// TestGuestDisks: disks are named in attach order, absent ones skipped.
func TestGuestDisks(t *testing.T) {
	for _, tc := range []struct {
		eph, swap     bool
		wantE, wantSw string
	}{{true, true, "vdb", "vdc"}, {true, false, "vdb", ""}, {false, true, "", "vdb"}, {false, false, "", ""}} {
		if e, s := GuestDisks(tc.eph, tc.swap); e != tc.wantE || s != tc.wantSw {
			t.Errorf("GuestDisks(%v, %v) = %q, %q; want %q, %q", tc.eph, tc.swap, e, s, tc.wantE, tc.wantSw)
		}
	}
}
