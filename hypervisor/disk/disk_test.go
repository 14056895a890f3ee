package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (CI installs qemu-utils and e2fsprogs)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

func TestNewOverlay(t *testing.T) {
	need(t, "qemu-img")
	ctx, dir := context.Background(), t.TempDir()
	base := filepath.Join(dir, "base.img")
	if err := os.WriteFile(base, bytes.Repeat([]byte{7}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(dir, "root.qcow2")
	if err := NewOverlay(ctx, base, ov); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "info", "--output=json", ov).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format        string `json:"format"`
		VirtualSize   int64  `json:"virtual-size"`
		BackingFile   string `json:"backing-filename"`
		BackingFormat string `json:"backing-filename-format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.BackingFile != base || info.BackingFormat != "raw" || info.VirtualSize != 1<<20 {
		t.Errorf("overlay info = %+v, want qcow2 over %s (raw, 1 MiB)", info, base)
	}
	if fi, _ := os.Stat(ov); fi.Size() > 1<<20 {
		t.Errorf("overlay is %d bytes: a copy, not an overlay", fi.Size())
	}
	// Never replaced: the overlay holds what its guest wrote.
	if err := NewOverlay(ctx, base, ov); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second NewOverlay = %v, want ErrExist", err)
	}
	if err := NewOverlay(ctx, filepath.Join(dir, "missing.img"), filepath.Join(dir, "x.qcow2")); err == nil {
		t.Error("overlay of a missing base succeeded")
	}
	assertNoTemp(t, dir)
}

func TestNewEphemeral(t *testing.T) {
	need(t, "mkfs.ext4")
	ctx, dir := context.Background(), t.TempDir()
	p := filepath.Join(dir, "ephemeral.img")
	if err := NewEphemeral(ctx, p, 20); err != nil {
		t.Fatal(err)
	}
	sb := readAt(t, p, 1024, 1024)
	if magic := binary.LittleEndian.Uint16(sb[56:]); magic != 0xEF53 {
		t.Fatalf("no ext superblock (magic %#x)", magic)
	}
	if label := string(bytes.TrimRight(sb[120:136], "\x00")); label != EphemeralLabel {
		t.Errorf("label %q, want %q", label, EphemeralLabel)
	}
	fi, _ := os.Stat(p)
	if fi.Size() != 20<<30 {
		t.Errorf("size %d, want 20 GiB", fi.Size())
	}
	if err := NewEphemeral(ctx, p, 1); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second NewEphemeral = %v, want ErrExist", err)
	}
	if err := NewEphemeral(ctx, filepath.Join(dir, "zero.img"), 0); err == nil {
		t.Error("a 0 GiB ephemeral disk was made")
	}
	assertNoTemp(t, dir)
}

func TestNewSwap(t *testing.T) {
	need(t, "mkswap")
	ctx, dir := context.Background(), t.TempDir()
	p := filepath.Join(dir, "swap.img")
	if err := NewSwap(ctx, p, 64); err != nil {
		t.Fatal(err)
	}
	page := readAt(t, p, 0, 4096)
	if string(page[4086:]) != "SWAPSPACE2" {
		t.Fatalf("no swap signature: %q", page[4086:])
	}
	if label := string(bytes.TrimRight(page[1024+28:1024+44], "\x00")); label != SwapLabel {
		t.Errorf("label %q, want %q", label, SwapLabel)
	}
	assertNoTemp(t, dir)
}

func readAt(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
