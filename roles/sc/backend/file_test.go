package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func newFiles(t *testing.T) *Files {
	t.Helper()
	f, err := NewFiles(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// allocated is how many bytes of the file the file system holds.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestFilesCreateIsSparseAndIdempotent(t *testing.T) {
	ctx := context.Background()
	f := newFiles(t)
	const size = 1 << 30
	if err := f.Create(ctx, "vol-1", size); err != nil {
		t.Fatal(err)
	}
	if a := allocated(t, f.path("vol-1")); a > 1<<20 {
		t.Errorf("a new 1 GiB volume holds %d bytes on disk; want it sparse", a)
	}
	// Twice with the same size: nothing happens; another size: refused.
	d, _ := f.Open("vol-1")
	if _, err := d.WriteAt([]byte("keep"), 4096); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := f.Create(ctx, "vol-1", size); err != nil {
		t.Fatalf("second create: %v", err)
	}
	if err := f.Create(ctx, "vol-1", size*2); !errors.Is(err, ErrExists) {
		t.Fatalf("create with another size: %v, want ErrExists", err)
	}
	d, _ = f.Open("vol-1")
	defer d.Close()
	buf := make([]byte, 4)
	if _, err := d.ReadAt(buf, 4096); err != nil || string(buf) != "keep" {
		t.Fatalf("after a second create: %q %v", buf, err)
	}
	if d.Size() != size {
		t.Errorf("size %d", d.Size())
	}
	list, err := f.List()
	if err != nil || !slices.Equal(list, []Info{{"vol-1", size}}) {
		t.Fatalf("list %v %v", list, err)
	}
}

func TestFilesBadIDsAndSizes(t *testing.T) {
	ctx := context.Background()
	f := newFiles(t)
	for _, id := range []string{"", "../x", "vol/x", "vol-1.raw", "Vol-1", "-x", string(make([]byte, 70))} {
		if err := f.Create(ctx, id, 1); !errors.Is(err, ErrBadID) {
			t.Errorf("create %q: %v", id, err)
		}
		if _, err := f.Open(id); !errors.Is(err, ErrBadID) {
			t.Errorf("open %q: %v", id, err)
		}
	}
	for _, size := range []int64{0, -1, MaxSize + 1} {
		if err := f.Create(ctx, "vol-1", size); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
	if _, err := f.Open("vol-none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("open of a missing volume: %v", err)
	}
}

func TestFilesDeviceIO(t *testing.T) {
	ctx := context.Background()
	f := newFiles(t)
	const size = 8 << 20
	if err := f.Create(ctx, "vol-io", size); err != nil {
		t.Fatal(err)
	}
	d, err := f.Open("vol-io")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data := bytes.Repeat([]byte{0xab}, 2<<20)
	if _, err := d.WriteAt(data, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	before := allocated(t, f.path("vol-io"))
	if before < 2<<20 {
		t.Fatalf("after writing 2 MiB the file holds %d bytes", before)
	}
	// Punch the first MiB of the data: reads zero, and the space is given back.
	if err := d.Punch(1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2<<20)
	if _, err := d.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, 1<<20), data[:1<<20]...)
	if !bytes.Equal(got, want) {
		t.Error("punched range does not read as zeros, or the rest changed")
	}
	if after := allocated(t, f.path("vol-io")); after > before-(1<<20)+4096 {
		t.Errorf("punch gave back nothing: %d -> %d bytes", before, after)
	}
	// Zero keeps the range allocated and reads zero.
	if err := d.Zero(2<<20+4096, 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(got[:8192], 2<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:4096], data[:4096]) || !bytes.Equal(got[4096:8192], make([]byte, 4096)) {
		t.Error("zeroed range wrong")
	}
	// The holes are skipped: the data starts at 2 MiB now.
	sp := d.(interface{ NextData(int64) (int64, error) })
	if n, err := sp.NextData(0); err != nil || n > 2<<20 || n < 1<<20 {
		t.Errorf("NextData(0) = %d, %v; want the data at 2 MiB", n, err)
	}
	if n, err := sp.NextData(4 << 20); err != nil || n != size {
		t.Errorf("NextData past the data = %d, %v; want the size", n, err)
	}
	// Nothing outside the volume: no write grows it.
	if _, err := d.WriteAt([]byte{1}, size); err == nil {
		t.Error("write at the end accepted")
	}
	if _, err := d.WriteAt([]byte{1, 2}, size-1); err == nil {
		t.Error("write across the end accepted")
	}
	if err := d.Punch(size-1, 2); err == nil {
		t.Error("punch across the end accepted")
	}
	if err := d.Zero(-1, 2); err == nil {
		t.Error("zero before the start accepted")
	}
	n, err := d.ReadAt(make([]byte, 10), size-4)
	if n != 4 || err != io.EOF {
		t.Errorf("read across the end: %d %v", n, err)
	}
	if st, _ := os.Stat(f.path("vol-io")); st.Size() != size {
		t.Errorf("file grew to %d", st.Size())
	}
}

func TestFilesResizeAndDelete(t *testing.T) {
	ctx := context.Background()
	f := newFiles(t)
	if err := f.Create(ctx, "vol-r", 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Resize("vol-r", 1<<19); !errors.Is(err, ErrShrink) {
		t.Fatalf("shrink: %v", err)
	}
	if err := f.Resize("vol-r", 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Resize("vol-r", 4<<20); err != nil {
		t.Fatalf("same size again: %v", err)
	}
	d, _ := f.Open("vol-r")
	if d.Size() != 4<<20 {
		t.Errorf("size after resize %d", d.Size())
	}
	d.Close()
	if err := f.Resize("vol-none", 1<<20); !errors.Is(err, ErrNotFound) {
		t.Errorf("resize of a missing volume: %v", err)
	}
	for range 2 {
		if err := f.Delete("vol-r"); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := f.List(); len(l) != 0 {
		t.Errorf("after delete: %v", l)
	}
}

func TestFilesCreateFromFailsWhole(t *testing.T) {
	ctx := context.Background()
	f := newFiles(t)
	boom := errors.New("snapshot unreadable")
	err := f.CreateFrom(ctx, "vol-f", 1<<20, func(ctx context.Context, d Device) error {
		if _, err := d.WriteAt([]byte("half"), 0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("create: %v", err)
	}
	ents, _ := os.ReadDir(f.Dir())
	if len(ents) != 0 {
		t.Fatalf("a failed creation left %v", ents)
	}
	// A filled volume is whole and named; a second CreateFrom does not fill again.
	fill := func(ctx context.Context, d Device) error { _, err := d.WriteAt([]byte("data"), 100); return err }
	if err := f.CreateFrom(ctx, "vol-f", 1<<20, fill); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateFrom(ctx, "vol-f", 1<<20, func(context.Context, Device) error { return boom }); err != nil {
		t.Fatalf("second CreateFrom filled again: %v", err)
	}
	d, _ := f.Open("vol-f")
	defer d.Close()
	buf := make([]byte, 4)
	d.ReadAt(buf, 100)
	if string(buf) != "data" {
		t.Errorf("read %q", buf)
	}
}

func TestFilesMoveAside(t *testing.T) {
	ctx := context.Background()
	f := newFiles(t)
	if err := f.Create(ctx, "vol-o", 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.MoveAside("vol-o"); err != nil {
		t.Fatal(err)
	}
	if err := f.MoveAside("vol-o"); err != nil { // gone already
		t.Fatal(err)
	}
	if l, _ := f.List(); len(l) != 0 {
		t.Errorf("listed after moving aside: %v", l)
	}
	aside, _ := filepath.Glob(filepath.Join(f.Dir(), asideDir, "vol-o.*.raw"))
	if len(aside) != 1 {
		t.Errorf("aside: %v", aside)
	}
}

// The child of TestFilesKilledDuringCreate: it starts making a volume, says
// so on stdout, and waits inside fill to be killed.
func TestFilesHelperCreateForever(t *testing.T) {
	dir := os.Getenv("EUCA_SC_BACKEND_CHILD")
	if dir == "" {
		t.Skip("helper of TestFilesKilledDuringCreate")
	}
	f, err := NewFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.CreateFrom(context.Background(), "vol-k", 64<<20, func(ctx context.Context, d Device) error {
		if _, err := d.WriteAt(bytes.Repeat([]byte{7}, 1<<20), 0); err != nil {
			return err
		}
		os.Stdout.WriteString("filling\n")
		select {}
	})
}

// A process killed (SIGKILL: no deferred cleanup) while it makes a volume
// leaves no volume, only a leftover the next start removes.
func TestFilesKilledDuringCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "volumes")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFilesHelperCreateForever$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EUCA_SC_BACKEND_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "filling\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q: %v", line, err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	f, err := NewFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := f.List(); len(l) != 0 {
		t.Fatalf("a half-made volume is listed: %v", l)
	}
	if _, err := f.Open("vol-k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a half-made volume opens: %v", err)
	}
	ids, err := f.RemoveIncomplete()
	if err != nil || !slices.Equal(ids, []string{"vol-k"}) {
		t.Fatalf("sweep: %v %v", ids, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("after the sweep: %v", ents)
	}
	// Made again from the start, it is whole.
	if err := f.Create(context.Background(), "vol-k", 64<<20); err != nil {
		t.Fatal(err)
	}
	d, _ := f.Open("vol-k")
	defer d.Close()
	b := make([]byte, 1)
	d.ReadAt(b, 0)
	if b[0] != 0 {
		t.Error("the new volume holds the killed creation's bytes")
	}
}
