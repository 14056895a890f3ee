package sc_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// TestRestartRedrivesStates: whatever a killed storage controller left
// half done, the next start finishes: a volume recorded as creating is
// made (its leftover .tmp thrown away first), one deleting is removed, an
// available one whose data vanished is in error, one killed inside a
// resize grows, and data no record knows is moved aside, not deleted.
func TestRestartRedrivesStates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.close()

	// The state a kill at various points leaves, written directly.
	st, err := store.Open(ctx, filepath.Join(e.dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []store.SCVolume{{ID: "vol-creating", SizeBytes: 1 << 20}, {ID: "vol-deleting", SizeBytes: 1 << 20},
		{ID: "vol-lost", SizeBytes: 1 << 20}, {ID: "vol-grow", SizeBytes: 4 << 20}} {
		if _, _, err := st.SCCreateVolume(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	for id, state := range map[string]string{"vol-deleting": store.SCVolumeDeleting, "vol-lost": store.SCVolumeAvailable, "vol-grow": store.SCVolumeAvailable} {
		if err := st.SCSetVolumeState(ctx, id, state, ""); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	vols := filepath.Join(e.dir, "volumes")
	write := func(name string, size int64, b byte) {
		if err := os.WriteFile(filepath.Join(vols, name), bytes.Repeat([]byte{b}, int(size)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("vol-creating.tmp", 1<<20, 9) // the half-made file of the kill
	write("vol-deleting.raw", 1<<20, 1)
	write("vol-grow.raw", 1<<20, 2)
	write("vol-orphan.raw", 1<<20, 3)

	e.open(t)
	waitState(t, e.sc, "vol-creating", scapi.VolumeAvailable)
	waitState(t, e.sc, "vol-deleting", "")
	lost := waitState(t, e.sc, "vol-lost", scapi.VolumeError)
	if lost.Error == "" {
		t.Error("a volume in error says not why")
	}
	list, err := e.be.List()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b backend.Info) int { return cmpString(a.ID, b.ID) })
	if !slices.Equal(list, []backend.Info{{ID: "vol-creating", Size: 1 << 20}, {ID: "vol-grow", Size: 4 << 20}}) {
		t.Errorf("volumes after the restart: %+v", list)
	}
	d, err := e.be.Open("vol-creating")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, 1)
	d.ReadAt(b, 0)
	if b[0] != 0 {
		t.Error("the volume made again holds the interrupted creation's bytes")
	}
	aside, _ := filepath.Glob(filepath.Join(vols, "aside", "vol-orphan.*"))
	if len(aside) != 1 {
		t.Errorf("the orphan was not moved aside: %v", aside)
	}
	if _, err := os.Stat(filepath.Join(vols, "vol-creating.tmp")); !os.IsNotExist(err) {
		t.Errorf("the .tmp leftover is still there: %v", err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// slowSnapshots restores a volume by writing a pattern; block makes it
// stop half way and wait for ever (until the process is killed).
type slowSnapshots struct {
	block bool
}

func (s slowSnapshots) Create(context.Context, scapi.CreateSnapshotRequest, sc.SnapshotSource) error {
	return nil
}
func (s slowSnapshots) BeforeWrite(string, io.ReaderAt, int64, int64) error { return nil }
func (s slowSnapshots) Restore(ctx context.Context, id string, dst sc.SnapshotDest) error {
	if _, err := dst.WriteAt(bytes.Repeat([]byte{0x5a}, 1<<20), 0); err != nil {
		return err
	}
	if s.block {
		os.Stdout.WriteString("restoring\n")
		select {}
	}
	_, err := dst.WriteAt(bytes.Repeat([]byte{0x5a}, 1<<20), 1<<20)
	return err
}
func (s slowSnapshots) Copy(context.Context, scapi.CopySnapshotRequest) error { return nil }
func (s slowSnapshots) Delete(context.Context, string) error                  { return nil }
func (s slowSnapshots) Snapshots(_ context.Context, ids ...string) ([]scapi.Snapshot, error) {
	return []scapi.Snapshot{{ID: "snap-1", State: scapi.SnapshotCompleted, SizeBytes: 2 << 20}}, nil
}

func openWith(t *testing.T, dir string, snaps sc.Snapshots) (*sc.SC, *store.Store, *backend.Files) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	be, err := backend.NewFiles(filepath.Join(dir, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sc.New(ctx, sc.Options{Zone: zone, Store: st, Backend: be, Snapshots: snaps, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, be
}

// The child of TestKilledDuringCreateVolume.
func TestHelperCreateVolumeForever(t *testing.T) {
	dir := os.Getenv("EUCA_SC_CHILD")
	if dir == "" {
		t.Skip("helper of TestKilledDuringCreateVolume")
	}
	s, _, _ := openWith(t, dir, slowSnapshots{block: true})
	if err := s.CreateVolume(context.Background(), scapi.CreateVolumeRequest{ID: "vol-k", SizeBytes: 4 << 20, SnapshotID: "snap-1"}); err != nil {
		t.Fatal(err)
	}
	select {}
}

// TestKilledDuringCreateVolume: a storage controller killed (SIGKILL) while
// it fills a volume from a snapshot leaves no volume anyone can attach,
// and the next start makes it whole.
func TestKilledDuringCreateVolume(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCreateVolumeForever$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EUCA_SC_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if line != "restoring\n" {
		t.Fatalf("child said %q: %v", line, err)
	}

	// What the kill left, before a new start touches it: a record saying
	// creating, nothing attachable.
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.SCVolume(ctx, "vol-k"); err != nil || v.State != store.SCVolumeCreating {
		t.Fatalf("after the kill: %+v %v", v, err)
	}
	st.Close()
	be, _ := backend.NewFiles(filepath.Join(dir, "volumes"))
	if l, _ := be.List(); len(l) != 0 {
		t.Fatalf("a half-made volume is there: %+v", l)
	}

	s, st, be := openWith(t, dir, slowSnapshots{})
	defer st.Close()
	defer s.Close()
	if _, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-k", Node: "n"}); err == nil {
		v, _ := s.Volumes(ctx, "vol-k")
		if v[0].State != scapi.VolumeAvailable {
			t.Fatal("a volume still being made was exported")
		}
	}
	waitState(t, s, "vol-k", scapi.VolumeAvailable)
	d, err := be.Open("vol-k")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make([]byte, 4<<20)
	d.ReadAt(got, 0)
	want := append(bytes.Repeat([]byte{0x5a}, 2<<20), make([]byte, 2<<20)...)
	if !bytes.Equal(got, want) {
		t.Error("the volume made after the restart does not hold the snapshot's data")
	}
}
