// Package backend holds the storage controller's volume bytes behind one
// small interface, so that where they live (sparse files on the SC's host
// today, Ceph RBD images later) is invisible to the SC's API and its NBD
// exports.
//
// A backend knows volumes by id and nothing else: which volumes should
// exist, their states and exports are the SC's store's business. What a
// backend guarantees is that a volume is either wholly made or absent: a
// volume is built under a temporary name (filled, synced) and only then
// given its own name, so a crash while making one leaves at most a
// temporary leftover, which RemoveIncomplete sweeps at the next start.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// Backend stores volumes.
type Backend interface {
	// Create makes an empty (all zero) volume of size bytes. It is
	// harmless twice: a volume already there with that size is left as it
	// is (ErrExists when its size differs).
	Create(ctx context.Context, id string, size int64) error
	// CreateFrom makes a volume of size bytes whose content fill writes
	// (through the Device it is given, which starts all zero) before the
	// volume appears under its id. A volume already there is left as it is
	// and fill is not called: it was filled before it was named.
	CreateFrom(ctx context.Context, id string, size int64, fill func(context.Context, Device) error) error
	// Open opens a volume for reading and writing (ErrNotFound).
	Open(id string) (Device, error)
	// Resize grows a volume to size bytes; the new bytes read as zero.
	// Smaller than it is: ErrShrink. Devices already open keep their size.
	Resize(id string, size int64) error
	// Delete removes a volume; an absent one is not an error.
	Delete(id string) error
	// List lists the volumes wholly made, by id.
	List() ([]Info, error)
	// RemoveIncomplete removes what interrupted creations left (never a
	// volume that was made) and says which ids they were for.
	RemoveIncomplete() ([]string, error)
	// MoveAside puts a volume out of the way without destroying it (one the
	// SC's records do not know: the operator decides), so that a new
	// volume of the same id starts clean.
	MoveAside(id string) error
}

// Info is a volume a backend holds.
type Info struct {
	ID   string
	Size int64
}

// Device is an open volume. Its size is fixed while it is open (an NBD
// export's size is told to the client once).
type Device interface {
	Size() int64
	io.ReaderAt
	io.WriterAt
	// Sync makes every write returned before it durable (NBD FLUSH, FUA).
	Sync() error
	// Punch deallocates n bytes at off; they read as zero (NBD TRIM, and
	// WRITE_ZEROES that may leave holes).
	Punch(off, n int64) error
	// Zero makes n bytes at off read as zero and keeps them allocated (NBD
	// WRITE_ZEROES with NO_HOLE).
	Zero(off, n int64) error
	Close() error
}

// Errors.
var (
	ErrNotFound = errors.New("backend: no such volume")
	ErrExists   = errors.New("backend: volume exists with another size")
	ErrShrink   = errors.New("backend: a volume cannot shrink")
	ErrBadID    = errors.New("backend: invalid volume id")
	ErrNoSpace  = errors.New("backend: no space left")
)

// idPattern is what a volume id may be: it becomes a file or image name,
// so no separators, no dots, nothing a shell or a path would read.
var idPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// CheckID refuses an id that cannot name a volume.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q", ErrBadID, id)
	}
	return nil
}

// MaxSize bounds a volume's size: 16 TiB, EC2's largest gp2 volume, and far
// below what a file offset can hold.
const MaxSize = 16 << 40

func checkSize(size int64) error {
	if size <= 0 || size > MaxSize {
		return fmt.Errorf("backend: volume size %d out of range (1 byte to 16 TiB)", size)
	}
	return nil
}
