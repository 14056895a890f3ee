package snapshot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// benchSize is the benchmarks' volume: 256 MiB of data, no holes (the
// worst case for a first snapshot).
const benchSize = 256 << 20

// BenchmarkSnapshot measures snapshot throughput against a plain copy of
// the same volume file (read, write, fdatasync: what a snapshot without
// chunks or Walrus would cost), all bytes counted as the volume's size:
//
//	copy           cp of the volume file, synced (copy_file_range: no
//	               bytes through user space)
//	copy-buffered  the same through a 4 MiB buffer (dd bs=4M conv=fsync)
//	first          a first snapshot: every chunk hashed, stored in Walrus
//	incremental    a second snapshot after one chunk changed: every chunk
//	               read and hashed, one stored
//	restore        a volume made from the snapshot
//	sparse-1GiB    a first snapshot of a 1 GiB volume with 3 chunks of data
//	               (bytes: the volume's size; holes found with SEEK_DATA)
//
// go test -run '^$' -bench Snapshot -benchtime 3x ./roles/sc/snapshot/
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	v := newEnv(b)
	e := v.engine(nil)
	v.run(e)
	f := v.volume("vol-1", benchSize)
	for i := int64(0); i < benchSize/ChunkSize; i++ {
		if _, err := f.WriteAt(pattern(uint64(i), ChunkSize), i*ChunkSize); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	n := 0
	snapID := func() string { n++; return fmt.Sprintf("snap-%d", n) }

	b.Run("copy", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			if err := copyFile(v.volPath("vol-1"), filepath.Join(v.vols, "copy.raw")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy-buffered", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			if err := copyBuffered(v.volPath("vol-1"), filepath.Join(v.vols, "copy.raw")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			id := snapID()
			if s := v.snap(e, id, "vol-1", f); s.NewChunks != benchSize/ChunkSize {
				b.Fatalf("first snapshot stored %d chunks", s.NewChunks)
			}
			b.StopTimer()
			if err := e.Delete(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	base := snapID()
	v.snap(e, base, "vol-1", f)
	b.Run("incremental", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			b.StopTimer()
			write(b, e, "vol-1", f, 7*ChunkSize, pattern(uint64(n)+1000, ChunkSize))
			id := snapID()
			b.StartTimer()
			if s := v.snap(e, id, "vol-1", f); s.NewChunks != 1 {
				b.Fatalf("incremental snapshot stored %d chunks", s.NewChunks)
			}
			b.StopTimer()
			if err := e.Delete(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			out, err := os.Create(filepath.Join(v.vols, "restored.raw"))
			if err != nil {
				b.Fatal(err)
			}
			if err := out.Truncate(benchSize); err != nil {
				b.Fatal(err)
			}
			if err := e.Restore(ctx, base, out); err != nil {
				b.Fatal(err)
			}
			out.Close()
		}
	})
	sparse := v.volume("vol-2", 1<<30)
	for _, i := range []int64{0, 100, 255} {
		write(b, e, "vol-2", sparse, i*ChunkSize, pattern(uint64(i), 1000))
	}
	b.Run("sparse-1GiB", func(b *testing.B) {
		b.SetBytes(1 << 30)
		for b.Loop() {
			id := snapID()
			if s := v.snap(e, id, "vol-2", sparse); s.Chunks != 3 {
				b.Fatalf("sparse snapshot: %+v", s)
			}
			b.StopTimer()
			if err := e.Delete(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// copyFile copies src to dst and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyBuffered copies src to dst through a 4 MiB buffer and syncs it.
func copyBuffered(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	buf := make([]byte, ChunkSize)
	for off := int64(0); ; off += ChunkSize {
		n, rerr := in.ReadAt(buf, off)
		if n > 0 {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				out.Close()
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkBeforeWriteIdle is the copy-on-write hook's cost on the write
// path of a volume with no snapshot pending (other volumes' are).
func BenchmarkBeforeWriteIdle(b *testing.B) {
	v := newEnv(b)
	e := v.engine(nil)
	f := v.volume("vol-1", volSize)
	v.volume("vol-2", volSize)
	v.create(e, "snap-1", "vol-2")
	for b.Loop() {
		if err := e.BeforeWrite("vol-1", f, 4096, 4096); err != nil {
			b.Fatal(err)
		}
	}
}
