package snapshot

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus"
)

// env is an engine over a real store and a real in-process Walrus (its
// filesystem backend in a temp dir), with volumes as sparse files.
type env struct {
	t      testing.TB
	st     *store.Store
	bucket *walrus.SystemBucket
	dir    string // pre-images
	vols   string // volume files
	e      *Engine
	stop   context.CancelFunc
	done   chan struct{}
}

const testOwner = "000011112222"

func newEnv(t testing.TB) *env { return openEnv(t, t.TempDir()) }

// openEnv opens the env kept under root (its store, Walrus, pre-images
// and volumes), making what is missing: two processes may open the same.
func openEnv(t testing.TB, root string) *env {
	t.Helper()
	ctx := context.Background()
	cfg := conf.Defaults()
	cfg.Region = "us-euca-1"
	cfg.Home = filepath.Join(root, "home")
	cfg.WalrusBucketsPath = filepath.Join(root, "walrus")
	st, err := store.Open(ctx, filepath.Join(root, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := walrus.New(ctx, walrus.Options{Conf: cfg, Store: st, Hostname: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := WalrusObjects(ctx, w, testOwner)
	if err != nil {
		t.Fatal(err)
	}
	v := &env{t: t, st: st, bucket: b, dir: filepath.Join(root, "pre"), vols: filepath.Join(root, "vols")}
	if err := os.MkdirAll(v.vols, 0o700); err != nil {
		t.Fatal(err)
	}
	return v
}

// engine opens a new engine over env's store, bucket and directories
// (objects replaces the bucket when set).
func (v *env) engine(objects ObjectStore) *Engine {
	v.t.Helper()
	if objects == nil {
		objects = v.bucket
	}
	e, err := New(context.Background(), Options{Store: v.st, Objects: objects, Dir: v.dir, Log: slog.New(slog.DiscardHandler),
		OpenVolume: func(ctx context.Context, id string) (Volume, error) { return OpenFile(v.volPath(id)) }})
	if err != nil {
		v.t.Fatal(err)
	}
	return e
}

// run starts e.Run; stop ends it and waits.
func (v *env) run(e *Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	v.e, v.stop, v.done = e, cancel, make(chan struct{})
	go func() {
		defer close(v.done)
		if err := e.Run(ctx); err != nil {
			v.t.Error(err)
		}
	}()
	v.t.Cleanup(v.halt)
}

func (v *env) halt() {
	if v.stop != nil {
		v.stop()
		<-v.done
		v.stop = nil
	}
}

func (v *env) volPath(id string) string { return filepath.Join(v.vols, id+".raw") }

// volume makes a sparse volume file of size bytes.
func (v *env) volume(id string, size int64) *os.File {
	v.t.Helper()
	f, err := os.OpenFile(v.volPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { f.Close() })
	return f
}

// write writes to a volume as the storage controller's NBD path does:
// the copy-on-write hook first, then the write.
func write(t testing.TB, e *Engine, id string, f *os.File, off int64, data []byte) {
	t.Helper()
	if err := e.BeforeWrite(id, f, off, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// pattern is n bytes that differ with seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// snap takes a snapshot of volume id (its file f) and waits for its end.
func (v *env) snap(e *Engine, snapID, volID string, f *os.File) scapi.Snapshot {
	v.t.Helper()
	v.create(e, snapID, volID)
	return v.wait(e, snapID)
}

func (v *env) create(e *Engine, snapID, volID string) {
	v.t.Helper()
	src, err := OpenFile(v.volPath(volID))
	if err != nil {
		v.t.Fatal(err)
	}
	if err := e.Create(context.Background(), scapi.CreateSnapshotRequest{ID: snapID, VolumeID: volID}, src); err != nil {
		v.t.Fatal(err)
	}
}

// wait waits until the snapshot is no longer pending.
func (v *env) wait(e *Engine, snapID string) scapi.Snapshot {
	v.t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // a bound on a hang, not a measure
	for {
		ss, err := e.Snapshots(context.Background(), snapID)
		if err != nil {
			v.t.Fatal(err)
		}
		if len(ss) != 1 {
			v.t.Fatalf("snapshot %s: %v", snapID, ss)
		}
		if ss[0].State != scapi.SnapshotPending {
			return ss[0]
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("snapshot %s still pending: %+v", snapID, ss[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restore makes a new volume file from a snapshot and returns its bytes.
func (v *env) restore(e *Engine, snapID string, size int64) ([]byte, error) {
	v.t.Helper()
	f, err := os.Create(filepath.Join(v.vols, "restored-"+snapID+"-"+time.Now().Format("150405.000000000")))
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		v.t.Fatal(err)
	}
	if err := e.Restore(context.Background(), snapID, f); err != nil {
		return nil, err
	}
	return contents(v.t, f), nil
}

// contents reads a volume file whole.
func contents(t testing.TB, f *os.File) []byte {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// keys lists the bucket's objects under prefix.
func (v *env) keys(prefix string) []string {
	v.t.Helper()
	k, err := v.bucket.Keys(context.Background(), prefix)
	if err != nil {
		v.t.Fatal(err)
	}
	return k
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: first difference at byte %d (chunk %d): %#x, want %#x", what, i, i/ChunkSize, got[i], want[i])
		}
	}
}

// punch deallocates n bytes at off, as an NBD TRIM does.
func punch(f *os.File, off, n int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}
