package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files keeps each volume as a sparse raw file <dir>/<id>.raw, as
// Eucalyptus kept its volumes as files in var/lib/eucalyptus/volumes. A
// volume is made as <id>.tmp (sized, filled, synced), renamed into place,
// and the directory synced, so after a crash <id>.raw is whole or absent.
// Volumes moved aside go to <dir>/aside/.
type Files struct {
	dir string

	mu    sync.Mutex
	locks map[string]*idLock // one creation or deletion per id at a time
}

type idLock struct {
	sync.Mutex
	users int
}

const (
	rawExt   = ".raw"
	tmpExt   = ".tmp"
	asideDir = "aside"
)

// NewFiles is a file backend over dir, made if missing (mode 0700: volumes
// hold the guests' data).
func NewFiles(dir string) (*Files, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("backend: volumes directory %q is not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	return &Files{dir: dir, locks: map[string]*idLock{}}, nil
}

// Dir is where the volumes are.
func (f *Files) Dir() string { return f.dir }

func (f *Files) path(id string) string    { return filepath.Join(f.dir, id+rawExt) }
func (f *Files) tmpPath(id string) string { return filepath.Join(f.dir, id+tmpExt) }

// lock serializes the operations that change one id's files.
func (f *Files) lock(id string) func() {
	f.mu.Lock()
	l := f.locks[id]
	if l == nil {
		l = &idLock{}
		f.locks[id] = l
	}
	l.users++
	f.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		f.mu.Lock()
		if l.users--; l.users == 0 {
			delete(f.locks, id)
		}
		f.mu.Unlock()
	}
}

func (f *Files) Create(ctx context.Context, id string, size int64) error {
	return f.CreateFrom(ctx, id, size, nil)
}

func (f *Files) CreateFrom(ctx context.Context, id string, size int64, fill func(context.Context, Device) error) (err error) {
	if err := CheckID(id); err != nil {
		return err
	}
	if err := checkSize(size); err != nil {
		return err
	}
	defer f.lock(id)()
	if st, err := os.Stat(f.path(id)); err == nil {
		if st.Size() != size {
			return fmt.Errorf("%w: %s holds %d bytes, not %d", ErrExists, id, st.Size(), size)
		}
		// Made before, maybe by a call whose directory sync failed: sync
		// it now, so that "made" means it survives a crash.
		return syncDir(f.dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backend: create %s: %w", id, err)
	}
	// A leftover of an interrupted creation is not trusted: start over.
	tmp := f.tmpPath(id)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backend: create %s: %w", id, err)
	}
	fh, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backend: create %s: %w", id, noSpace(err))
	}
	defer func() {
		if err != nil {
			fh.Close()
			os.Remove(tmp)
		}
	}()
	if err := fh.Truncate(size); err != nil {
		return fmt.Errorf("backend: create %s: size: %w", id, noSpace(err))
	}
	if fill != nil {
		d := &file{f: fh, size: size}
		if err := fill(ctx, d); err != nil {
			return fmt.Errorf("backend: create %s: fill: %w", id, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backend: create %s: %w", id, err)
	}
	if err := unix.Fdatasync(int(fh.Fd())); err != nil {
		return fmt.Errorf("backend: create %s: sync: %w", id, noSpace(err))
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("backend: create %s: %w", id, noSpace(err))
	}
	if err := os.Rename(tmp, f.path(id)); err != nil {
		return fmt.Errorf("backend: create %s: %w", id, err)
	}
	if err := syncDir(f.dir); err != nil {
		// Named, but the name may not survive a crash: report it so the
		// caller does not call the volume made; a retry finds it and
		// syncs again below.
		return fmt.Errorf("backend: create %s: %w", id, err)
	}
	return nil
}

func (f *Files) Open(id string) (Device, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	fh, err := os.OpenFile(f.path(id), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("backend: open %s: %w", id, err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("backend: open %s: %w", id, err)
	}
	return &file{f: fh, size: st.Size()}, nil
}

func (f *Files) Resize(id string, size int64) error {
	if err := CheckID(id); err != nil {
		return err
	}
	if err := checkSize(size); err != nil {
		return err
	}
	defer f.lock(id)()
	fh, err := os.OpenFile(f.path(id), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("backend: resize %s: %w", id, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("backend: resize %s: %w", id, err)
	}
	switch {
	case size == st.Size():
		return nil
	case size < st.Size():
		return fmt.Errorf("%w: %s holds %d bytes, asked for %d", ErrShrink, id, st.Size(), size)
	}
	if err := fh.Truncate(size); err != nil {
		return fmt.Errorf("backend: resize %s: %w", id, noSpace(err))
	}
	// The size is metadata: fsync, not fdatasync.
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("backend: resize %s: %w", id, err)
	}
	return nil
}

func (f *Files) Delete(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	defer f.lock(id)()
	gone := false
	for _, p := range []string{f.tmpPath(id), f.path(id)} {
		err := os.Remove(p)
		if err == nil {
			gone = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("backend: delete %s: %w", id, err)
		}
	}
	if gone {
		return syncDir(f.dir)
	}
	return nil
}

func (f *Files) List() ([]Info, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("backend: list: %w", err)
	}
	var out []Info
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), rawExt)
		if !ok || !e.Type().IsRegular() || CheckID(id) != nil {
			continue
		}
		st, err := e.Info()
		if errors.Is(err, os.ErrNotExist) { // deleted meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("backend: list: %w", err)
		}
		out = append(out, Info{ID: id, Size: st.Size()})
	}
	return out, nil
}

func (f *Files) RemoveIncomplete() ([]string, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("backend: sweep: %w", err)
	}
	var out []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), tmpExt)
		if !ok || CheckID(id) != nil {
			continue
		}
		unlock := f.lock(id)
		err := os.Remove(f.tmpPath(id))
		unlock()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return out, fmt.Errorf("backend: sweep: %w", err)
		}
		out = append(out, id)
	}
	if len(out) > 0 {
		return out, syncDir(f.dir)
	}
	return out, nil
}

func (f *Files) MoveAside(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	defer f.lock(id)()
	aside := filepath.Join(f.dir, asideDir)
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return fmt.Errorf("backend: move %s aside: %w", id, err)
	}
	// The time keeps two volumes once of the same id apart.
	dst := filepath.Join(aside, id+"."+time.Now().UTC().Format("20060102T150405.000000000")+rawExt)
	if err := os.Rename(f.path(id), dst); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("backend: move %s aside: %w", id, err)
	}
	return errors.Join(syncDir(aside), syncDir(f.dir))
}

// file is an open volume file.
type file struct {
	f    *os.File
	size int64
}

func (d *file) Size() int64 { return d.size }

// inRange refuses an access outside the volume: a write past the end
// would grow the file, which only Resize may do.
func (d *file) inRange(off, n int64) error {
	if off < 0 || n < 0 || off > d.size || n > d.size-off {
		return fmt.Errorf("backend: %d bytes at %d outside a volume of %d", n, off, d.size)
	}
	return nil
}

func (d *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.size {
		if off == d.size && len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	if rest := d.size - off; int64(len(p)) > rest {
		n, err := d.f.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return d.f.ReadAt(p, off)
}

func (d *file) WriteAt(p []byte, off int64) (int, error) {
	if err := d.inRange(off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := d.f.WriteAt(p, off)
	return n, noSpace(err)
}

func (d *file) Sync() error { return noSpace(unix.Fdatasync(int(d.f.Fd()))) }

func (d *file) Punch(off, n int64) error {
	if err := d.inRange(off, n); err != nil || n == 0 {
		return err
	}
	err := unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return d.writeZeros(off, n)
	}
	if err != nil {
		return fmt.Errorf("backend: punch %d at %d: %w", n, off, noSpace(err))
	}
	return nil
}

func (d *file) Zero(off, n int64) error {
	if err := d.inRange(off, n); err != nil || n == 0 {
		return err
	}
	err := unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return d.writeZeros(off, n) // tmpfs, for one, has no ZERO_RANGE
	}
	if err != nil {
		return fmt.Errorf("backend: zero %d at %d: %w", n, off, noSpace(err))
	}
	return nil
}

var zeros [1 << 20]byte

// writeZeros is Zero's and Punch's way on a file system that cannot
// allocate ranges.
func (d *file) writeZeros(off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := d.f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("backend: zero %d at %d: %w", k, off, noSpace(err))
		}
		off += k
		n -= k
	}
	return nil
}

func (d *file) Close() error { return d.f.Close() }

// NextData is the offset of the first byte at or after off that may hold
// data (SEEK_DATA), or the size when none does: a snapshot skips the holes
// of a sparse volume without reading them.
func (d *file) NextData(off int64) (int64, error) {
	if off >= d.size {
		return d.size, nil
	}
	n, err := unix.Seek(int(d.f.Fd()), off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // no data after off
		return d.size, nil
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP):
		return off, nil // no hole information: everything may be data
	case err != nil:
		return 0, fmt.Errorf("backend: seek data: %w", err)
	}
	return min(n, d.size), nil
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("backend: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("backend: sync %s: %w", dir, err)
	}
	return nil
}

// noSpace marks a full disk with ErrNoSpace, so the SC can say so.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
