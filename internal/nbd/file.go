package nbd

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// File is an Export backed by a regular file (a raw volume image). Writes
// are pwrite(2) into the page cache; Sync is fdatasync(2); Punch and Zero
// punch holes, so trimmed and zeroed ranges give their space back.
type File struct {
	f    *os.File
	size int64
}

// OpenFile opens the raw image at path for reading and writing; its size is
// the file's size now.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("nbd: open export: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("nbd: stat export: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("nbd: export %s is not a regular file", path)
	}
	return &File{f: f, size: fi.Size()}, nil
}

func (e *File) Size() int64                              { return e.size }
func (e *File) ReadAt(p []byte, off int64) (int, error)  { return e.f.ReadAt(p, off) }
func (e *File) WriteAt(p []byte, off int64) (int, error) { return e.f.WriteAt(p, off) }
func (e *File) Close() error                             { return e.f.Close() }

// Sync is fdatasync: the data and the metadata needed to read it back, not
// the modification time.
func (e *File) Sync() error {
	if err := unix.Fdatasync(int(e.f.Fd())); err != nil {
		return fmt.Errorf("nbd: fdatasync: %w", err)
	}
	return nil
}

// Punch deallocates the range. TRIM is advisory, so a file system that
// cannot punch holes is no error.
func (e *File) Punch(off, n int64) error {
	err := unix.Fallocate(int(e.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nbd: punch hole: %w", err)
	}
	return nil
}

// Zero punches the range, where the file system can; otherwise it writes
// zeros, since the range must read as zeros afterwards.
func (e *File) Zero(off, n int64) error {
	err := unix.Fallocate(int(e.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("nbd: zero range: %w", err)
	}
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := e.f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("nbd: zero range: %w", err)
		}
		off += k
		n -= k
	}
	return nil
}
