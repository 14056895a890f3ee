// Package disk makes the files an instance's disks live in: the root disk as
// a copy-on-write overlay of a cached image (never a copy, so a warm launch
// costs the same for a 10 GB image as for a 10 MB one), and sparse ephemeral
// and swap disks. The node controller calls these before
// hypervisor.Driver.Start and removes the files itself when the instance is
// gone.
//
// Each function refuses to replace an existing file (the error wraps
// fs.ErrExist): an overlay holds what its guest wrote, and a restarted NC
// must never wipe it by making it again. Each writes to a temporary name and
// renames, so a crash leaves either the whole file or none.
//
// The tools are qemu-img (qemu-utils), mkfs.ext4 (e2fsprogs) and mkswap
// (util-linux).
package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// Labels the guest finds its disks by, whatever order they are attached in.
const (
	EphemeralLabel = "ephemeral0"
	SwapLabel      = "swap"
)

// NewOverlay makes path a qcow2 overlay whose backing file is the raw image
// base: reads fall through to base, writes stay in path. base must not
// change while any overlay uses it. The overlay records base's absolute path
// and its format (raw), so QEMU never probes the image's contents.
func NewOverlay(ctx context.Context, base, path string) error {
	abs, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("overlay of %s: %w", base, err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return fmt.Errorf("overlay of %s: %w", base, err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("overlay of %s: not a regular file", base)
	}
	return create(ctx, path, func(tmp string) error {
		return run(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-b", abs, "-F", "raw", tmp)
	})
}

// NewEphemeral makes path a sparse raw disk of sizeGiB formatted ext4 and
// labelled EphemeralLabel, as EC2 hands out instance-store disks ready to
// mount. Formatting is lazy: a 20 GiB disk takes milliseconds and a few MiB.
func NewEphemeral(ctx context.Context, path string, sizeGiB int) error {
	if sizeGiB < 1 {
		return fmt.Errorf("ephemeral disk %s: size %d GiB: want at least 1", path, sizeGiB)
	}
	return create(ctx, path, func(tmp string) error {
		if err := os.Truncate(tmp, int64(sizeGiB)<<30); err != nil {
			return err
		}
		return run(ctx, "mkfs.ext4", "-q", "-F", "-L", EphemeralLabel,
			"-E", "lazy_itable_init=1,lazy_journal_init=1", tmp)
	})
}

// NewSwap makes path a sparse raw disk of sizeMiB holding a swap area
// labelled SwapLabel (SWAP_SIZE).
func NewSwap(ctx context.Context, path string, sizeMiB int) error {
	if sizeMiB < 1 {
		return fmt.Errorf("swap disk %s: size %d MiB: want at least 1", path, sizeMiB)
	}
	return create(ctx, path, func(tmp string) error {
		if err := os.Truncate(tmp, int64(sizeMiB)<<20); err != nil {
			return err
		}
		// mkswap warns that a sparse file may be refused as a swap file;
		// this one is a disk image, which the guest sees as a block device.
		return run(ctx, "mkswap", "-L", SwapLabel, tmp)
	})
}

// create makes path through fill on a temporary file beside it, then links
// it into place; link, unlike rename, fails if path appeared meanwhile.
func create(ctx context.Context, path string, fill func(tmp string) error) (err error) {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return fmt.Errorf("%s is not installed: %w", name, err)
		}
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
