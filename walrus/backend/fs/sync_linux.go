//go:build linux

package fs

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to start writing a range of f to disk
// without waiting for it, so that the fsync at the end of a large write
// finds most of the data already written.
func startWriteback(f *os.File, off, n int64) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
			_ = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite)
		})
	}
}

// datasync flushes f's data and the metadata needed to read it back.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Sync()
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	return serr
}
