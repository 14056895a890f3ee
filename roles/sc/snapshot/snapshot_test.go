package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

const volSize = 64 << 20 // 16 chunks

// TestIncremental: a sparse volume with data in three chunks stores three
// chunks; after one chunk changes, a second snapshot stores exactly one;
// each restores byte for byte; deleting the first keeps what the second
// shares, deleting both leaves the bucket without chunks.
func TestIncremental(t *testing.T) {
	v := newEnv(t)
	e := v.engine(nil)
	v.run(e)
	f := v.volume("vol-1", volSize)
	write(t, e, "vol-1", f, 1*ChunkSize+100, pattern(1, 5000))
	write(t, e, "vol-1", f, 5*ChunkSize, pattern(2, ChunkSize))
	write(t, e, "vol-1", f, 15*ChunkSize+ChunkSize-10, pattern(3, 10)) // the last chunk's end
	first := contents(t, f)

	s1 := v.snap(e, "snap-1", "vol-1", f)
	if s1.State != scapi.SnapshotCompleted || s1.Progress != 100 || s1.Chunks != 3 || s1.NewChunks != 3 || s1.NewBytes != 3*ChunkSize || s1.SizeBytes != volSize {
		t.Fatalf("first snapshot: %+v", s1)
	}
	if got := v.keys("chunks/"); len(got) != 3 {
		t.Fatalf("chunks stored after the first snapshot: %v", got)
	}
	if got := v.keys("manifests/"); !reflect.DeepEqual(got, []string{"manifests/snap-1.json"}) {
		t.Fatalf("manifests: %v", got)
	}

	write(t, e, "vol-1", f, 5*ChunkSize+7, []byte("changed"))
	second := contents(t, f)
	s2 := v.snap(e, "snap-2", "vol-1", f)
	if s2.State != scapi.SnapshotCompleted || s2.Chunks != 3 || s2.NewChunks != 1 || s2.NewBytes != ChunkSize {
		t.Fatalf("second snapshot: %+v, want 3 chunks of which 1 new", s2)
	}
	if got := v.keys("chunks/"); len(got) != 4 {
		t.Fatalf("chunks stored after the second snapshot: %d, want 4", len(got))
	}

	got, err := v.restore(e, "snap-1", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "snap-1 restored", got, first)
	got, err = v.restore(e, "snap-2", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "snap-2 restored", got, second)

	if err := e.Delete(context.Background(), "snap-1"); err != nil {
		t.Fatal(err)
	}
	if got := v.keys("chunks/"); len(got) != 3 {
		t.Fatalf("chunks after deleting snap-1: %d, want the 3 snap-2 holds", len(got))
	}
	if got, err = v.restore(e, "snap-2", volSize); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "snap-2 restored after snap-1 deleted", got, second)
	if err := e.Delete(context.Background(), "snap-2"); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(context.Background(), "snap-2"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if got := v.keys(""); len(got) != 0 {
		t.Fatalf("objects left after deleting both: %v", got)
	}
	if g, _ := v.st.SCGarbageChunks(context.Background()); len(g) != 0 {
		t.Fatalf("chunk rows left: %v", g)
	}
	if ss, _ := e.Snapshots(context.Background()); len(ss) != 0 {
		t.Fatalf("snapshots left: %+v", ss)
	}
	if _, err := e.Snapshots(context.Background(), "snap-1"); err != nil {
		t.Fatal(err)
	}
}

// TestPointInTime: writes, trims and zeroings after Create (through
// BeforeWrite) are in the volume but not in the snapshot.
func TestPointInTime(t *testing.T) {
	v := newEnv(t)
	e := v.engine(nil)
	f := v.volume("vol-1", volSize)
	write(t, e, "vol-1", f, 2*ChunkSize, pattern(1, 2*ChunkSize)) // chunks 2, 3
	write(t, e, "vol-1", f, 9*ChunkSize, pattern(2, 100))
	before := contents(t, f)

	// Not running yet: the upload cannot start before the writes below.
	v.create(e, "snap-1", "vol-1")
	if ss, _ := e.Snapshots(context.Background(), "snap-1"); len(ss) != 1 || ss[0].State != scapi.SnapshotPending {
		t.Fatalf("after Create: %+v", ss)
	}
	write(t, e, "vol-1", f, 2*ChunkSize+ChunkSize-2, []byte("spans 2 and 3")) // two chunks at once
	write(t, e, "vol-1", f, 7*ChunkSize, pattern(3, 4096))                    // into a hole
	// A trim of chunk 9, as the NBD path punches it.
	if err := e.BeforeWrite("vol-1", f, 9*ChunkSize, ChunkSize); err != nil {
		t.Fatal(err)
	}
	if err := punch(f, 9*ChunkSize, ChunkSize); err != nil {
		t.Fatal(err)
	}
	after := contents(t, f)
	if bytes.Equal(before, after) {
		t.Fatal("the writes changed nothing")
	}
	v.run(e)
	s := v.wait(e, "snap-1")
	if s.State != scapi.SnapshotCompleted || s.Chunks != 3 {
		t.Fatalf("snapshot: %+v", s)
	}
	got, err := v.restore(e, "snap-1", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "snapshot", got, before)
	sameBytes(t, "volume", contents(t, f), after)
	if entries, _ := os.ReadDir(v.dir); len(entries) != 0 {
		t.Fatalf("pre-images left: %v", entries)
	}
	// Completed: writes no longer save anything.
	write(t, e, "vol-1", f, 0, []byte("x"))
	if entries, _ := os.ReadDir(v.dir); len(entries) != 0 {
		t.Fatalf("pre-image saved for a completed snapshot: %v", entries)
	}
}

// hookObjects is the real bucket with a hook before each chunk's Put (to
// crash the engine mid-upload).
type hookObjects struct {
	ObjectStore
	beforePut func(key string) error
}

func (h hookObjects) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := h.beforePut(key); err != nil {
		return err
	}
	return h.ObjectStore.Put(ctx, key, r, size)
}

// TestResume: an engine stopped half-way (its context cancelled during a
// chunk's upload) leaves the snapshot pending; a write arriving meanwhile
// is kept out of it; a new engine over the same store and directory
// resumes from the next chunk to a snapshot with the right data.
func TestResume(t *testing.T) {
	v := newEnv(t)
	f := v.volume("vol-1", volSize)
	ctx, cancel := context.WithCancel(context.Background())
	third := sha256.Sum256(pattern(2, ChunkSize)) // the third chunk of data
	e1 := v.engine(hookObjects{v.bucket, func(key string) error {
		if key != chunkKey(hex.EncodeToString(third[:])) {
			return nil
		}
		// The process dies here, once the two chunks before are recorded.
		for range 10000 {
			if sn, _ := v.st.SCSnapshot(context.Background(), "snap-1"); sn.DataChunks >= 2 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		return ctx.Err()
	}})
	for i := range 6 {
		write(t, e1, "vol-1", f, int64(2*i)*ChunkSize, pattern(uint64(i), ChunkSize))
	}
	before := contents(t, f)
	v.create(e1, "snap-1", "vol-1")
	if err := e1.Run(ctx); err != nil {
		t.Fatal(err)
	}
	ss, _ := e1.Snapshots(context.Background(), "snap-1")
	if ss[0].State != scapi.SnapshotPending || ss[0].Chunks != 2 || ss[0].Progress >= 100 {
		t.Fatalf("after the crash: %+v, want pending with 2 chunks", ss[0])
	}
	// The old engine still guards the volume until the process is gone.
	write(t, e1, "vol-1", f, 8*ChunkSize+1, []byte("after the point in time"))
	after := contents(t, f)

	e2 := v.engine(nil)
	v.run(e2)
	s := v.wait(e2, "snap-1")
	if s.State != scapi.SnapshotCompleted || s.Chunks != 6 || s.NewChunks != 6 {
		t.Fatalf("resumed: %+v", s)
	}
	got, err := v.restore(e2, "snap-1", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "resumed snapshot", got, before)
	sameBytes(t, "volume", contents(t, f), after)
	if got := v.keys("chunks/"); len(got) != 6 {
		t.Fatalf("chunks stored: %d, want 6 (none orphaned)", len(got))
	}
	if g, _ := v.st.SCGarbageChunks(context.Background()); len(g) != 0 {
		t.Fatalf("unreferenced chunk rows left: %v", g)
	}
}

// TestLostPreImages: a pending snapshot whose pre-images are gone cannot
// keep its point in time: the restarted engine puts it in error.
func TestLostPreImages(t *testing.T) {
	v := newEnv(t)
	f := v.volume("vol-1", volSize)
	e1 := v.engine(nil)
	write(t, e1, "vol-1", f, 0, pattern(1, 100))
	v.create(e1, "snap-1", "vol-1")
	write(t, e1, "vol-1", f, 0, pattern(2, 100))
	if err := os.RemoveAll(v.dir + "/snap-1"); err != nil {
		t.Fatal(err)
	}
	e2 := v.engine(nil)
	v.run(e2)
	s := v.wait(e2, "snap-1")
	if s.State != scapi.SnapshotError || !strings.Contains(s.Error, "pre-images") {
		t.Fatalf("snapshot: %+v, want error", s)
	}
	if _, err := v.restore(e2, "snap-1", volSize); !errors.Is(err, scapi.ErrIncorrectState) {
		t.Fatalf("restore of a failed snapshot: %v", err)
	}
	if err := e2.Delete(context.Background(), "snap-1"); err != nil {
		t.Fatal(err)
	}
}

// TestCorrupt: a chunk changed or gone in Walrus, or a manifest that says
// otherwise than the store, gives an error and a failed snapshot, never
// wrong data.
func TestCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(v *env, chunk string)
	}{
		{"chunk changed", func(v *env, chunk string) {
			bad := pattern(99, ChunkSize)
			if err := v.bucket.Put(ctx, chunk, bytes.NewReader(bad), int64(len(bad))); err != nil {
				t.Fatal(err)
			}
		}},
		{"chunk missing", func(v *env, chunk string) {
			if err := v.bucket.Delete(ctx, chunk); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest lies", func(v *env, chunk string) {
			m := `{"volume_size":67108864,"chunk_size":4194304,"chunks":["","","","","","","","","","","","","","","",""]}`
			if err := v.bucket.Put(ctx, "manifests/snap-1.json", strings.NewReader(m), int64(len(m))); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest missing", func(v *env, chunk string) {
			if err := v.bucket.Delete(ctx, "manifests/snap-1.json"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			e := v.engine(nil)
			v.run(e)
			f := v.volume("vol-1", volSize)
			write(t, e, "vol-1", f, 3*ChunkSize, pattern(1, 1000))
			v.snap(e, "snap-1", "vol-1", f)
			tc.damage(v, v.keys("chunks/")[0])
			if _, err := v.restore(e, "snap-1", volSize); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("restore: %v, want ErrCorrupt", err)
			}
			ss, _ := e.Snapshots(ctx, "snap-1")
			if ss[0].State != scapi.SnapshotError || ss[0].Error == "" {
				t.Fatalf("snapshot after a corrupt restore: %+v", ss[0])
			}
			if err := e.Delete(ctx, "snap-1"); err != nil {
				t.Fatal(err)
			}
			if got := v.keys(""); len(got) != 0 {
				t.Fatalf("objects left: %v", got)
			}
		})
	}
}

// TestCopy: a copy shares every chunk; it outlives its source.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	e := v.engine(nil)
	v.run(e)
	f := v.volume("vol-1", volSize)
	write(t, e, "vol-1", f, 0, pattern(1, 3*ChunkSize))
	want := contents(t, f)
	v.create(e, "snap-1", "vol-1")
	if err := e.Copy(ctx, scapi.CopySnapshotRequest{ID: "snap-2", SourceID: "snap-1"}); !errors.Is(err, scapi.ErrIncorrectState) {
		// A copy of a pending snapshot is refused, unless it completed already.
		if s := v.wait(e, "snap-1"); s.State != scapi.SnapshotCompleted || err != nil {
			t.Fatalf("copy of a pending snapshot: %v", err)
		}
	}
	v.wait(e, "snap-1")
	if err := e.Copy(ctx, scapi.CopySnapshotRequest{ID: "snap-2", SourceID: "snap-1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Copy(ctx, scapi.CopySnapshotRequest{ID: "snap-2", SourceID: "snap-1"}); err != nil {
		t.Fatalf("second copy: %v", err)
	}
	if err := e.Copy(ctx, scapi.CopySnapshotRequest{ID: "snap-3", SourceID: "snap-9"}); !errors.Is(err, scapi.ErrNoSuchSnapshot) {
		t.Fatalf("copy of nothing: %v", err)
	}
	s := v.wait(e, "snap-2")
	if s.State != scapi.SnapshotCompleted || s.Chunks != 3 || s.NewChunks != 0 || s.VolumeID != "vol-1" {
		t.Fatalf("copy: %+v", s)
	}
	if err := e.Delete(ctx, "snap-1"); err != nil {
		t.Fatal(err)
	}
	got, err := v.restore(e, "snap-2", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "copy restored", got, want)
	if err := e.Delete(ctx, "snap-2"); err != nil {
		t.Fatal(err)
	}
	if got := v.keys(""); len(got) != 0 {
		t.Fatalf("objects left: %v", got)
	}
}

// memVolume is a volume that cannot tell where its holes are: zero
// chunks are found by reading them.
type memVolume struct{ *bytes.Reader }

func (m memVolume) Size() int64 { return m.Reader.Size() }

func TestZeroChunksWithoutSparse(t *testing.T) {
	v := newEnv(t)
	e := v.engine(nil)
	v.run(e)
	data := make([]byte, 10*ChunkSize+12345) // a short last chunk
	copy(data[4*ChunkSize:], pattern(1, 10))
	copy(data[len(data)-5:], "tail!")
	if err := e.Create(context.Background(), scapi.CreateSnapshotRequest{ID: "snap-1", VolumeID: "vol-1"}, memVolume{bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	s := v.wait(e, "snap-1")
	if s.State != scapi.SnapshotCompleted || s.Chunks != 2 || s.SizeBytes != int64(len(data)) {
		t.Fatalf("snapshot: %+v", s)
	}
	got, err := v.restore(e, "snap-1", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "restored", got, data)
}

// TestDeletePending: deleting a snapshot mid-upload stops it and leaves
// nothing behind; a restore holds off a deletion.
func TestDeletePending(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	e := v.engine(hookObjects{v.bucket, func(key string) error {
		if strings.HasPrefix(key, "chunks/") {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-block
		}
		return nil
	}})
	v.run(e)
	f := v.volume("vol-1", volSize)
	write(t, e, "vol-1", f, 0, pattern(1, 4*ChunkSize))
	v.create(e, "snap-1", "vol-1")
	<-entered
	deleted := make(chan error)
	go func() { deleted <- e.Delete(ctx, "snap-1") }()
	close(block)
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if ss, _ := e.Snapshots(ctx); len(ss) != 0 {
		t.Fatalf("snapshots left: %+v", ss)
	}
	if got := v.keys(""); len(got) != 0 {
		t.Fatalf("objects left: %v", got)
	}
	if entries, _ := os.ReadDir(v.dir); len(entries) != 0 {
		t.Fatalf("pre-images left: %v", entries)
	}
	if n := len(e.byVolume.load()); n != 0 {
		t.Fatalf("volume still copied on write after delete")
	}
	// Restoring holds a deletion off.
	e.mu.Lock()
	e.restoring["snap-x"]++
	e.mu.Unlock()
	if err := e.Delete(ctx, "snap-x"); !errors.Is(err, scapi.ErrInUse) {
		t.Fatalf("delete while restoring: %v", err)
	}
}

// TestCreateTwice: Create is harmless twice; an id of another volume is refused.
func TestCreateTwice(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	e := v.engine(nil)
	v.run(e)
	f := v.volume("vol-1", volSize)
	v.volume("vol-2", volSize)
	write(t, e, "vol-1", f, 0, pattern(1, 10))
	v.create(e, "snap-1", "vol-1")
	v.create(e, "snap-1", "vol-1")
	src, _ := OpenFile(v.volPath("vol-2"))
	if err := e.Create(ctx, scapi.CreateSnapshotRequest{ID: "snap-1", VolumeID: "vol-2"}, src); !errors.Is(err, scapi.ErrBadRequest) {
		t.Fatalf("same id, other volume: %v", err)
	}
	if s := v.wait(e, "snap-1"); s.State != scapi.SnapshotCompleted || s.Chunks != 1 {
		t.Fatalf("snapshot: %+v", s)
	}
	if _, err := v.restore(e, "snap-9", volSize); !errors.Is(err, scapi.ErrNoSuchSnapshot) {
		t.Fatalf("restore of nothing: %v", err)
	}
	if sn, _ := v.st.SCSnapshot(ctx, "snap-1"); sn.State != store.SCSnapCompleted {
		t.Fatalf("row: %+v", sn)
	}
}

// TestDiscardWholeVolume: a guest discarding its whole volume while a
// snapshot is pending (mkfs does) saves the chunks of data and one marker
// per run of holes, found without reading them; the snapshot keeps the
// data, the volume is empty.
func TestDiscardWholeVolume(t *testing.T) {
	v := newEnv(t)
	e := v.engine(nil)
	f := v.volume("vol-1", volSize)
	write(t, e, "vol-1", f, 2*ChunkSize, pattern(1, 2*ChunkSize))
	before := contents(t, f)
	v.create(e, "snap-1", "vol-1")
	dev, err := NewFile(f) // what the NBD path passes: its device, which knows its holes
	if err != nil {
		t.Fatal(err)
	}
	if err := e.BeforeWrite("vol-1", dev, 0, volSize); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries, _ := os.ReadDir(v.dir + "/snap-1")
	for _, d := range entries {
		names = append(names, d.Name())
	}
	if want := []string{"2", "3", "z0-2", "z4-16"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("pre-images %v, want %v", names, want)
	}
	if err := punch(f, 0, volSize); err != nil {
		t.Fatal(err)
	}
	// The second discard finds every chunk saved.
	if err := e.BeforeWrite("vol-1", dev, 0, volSize); err != nil {
		t.Fatal(err)
	}
	// A restart in between: the markers are read back.
	e2 := v.engine(nil)
	v.run(e2)
	s := v.wait(e2, "snap-1")
	if s.State != scapi.SnapshotCompleted || s.Chunks != 2 {
		t.Fatalf("snapshot: %+v", s)
	}
	got, err := v.restore(e2, "snap-1", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "snapshot", got, before)
	sameBytes(t, "volume", contents(t, f), make([]byte, volSize))
}
