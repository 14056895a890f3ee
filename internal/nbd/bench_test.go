package nbd

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSequential: sequential 1 MiB reads and writes of a 64 MiB
// page-cached image, directly on the file and through the data path (Go
// client over TLS to the Server; Go client over the proxy's unix socket,
// then TLS to the Server). Besides MB/s, each path through NBD reports
// x-direct: its time over the same operations on the file directly.
func BenchmarkSequential(b *testing.B) {
	const size, block = 64 << 20, 1 << 20
	p := newPKI(b)
	_, f := newImage(b, size)
	buf := make([]byte, block)
	for off := int64(0); off < size; off += block { // allocate the file
		f.WriteAt(buf, off)
	}
	_, addr := startServer(b, p.serverTLS(), map[string]Export{"vol-a": f})
	ctx := context.Background()
	direct, err := Dial(ctx, "tcp", addr, p.clientTLS(), "vol-a")
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	px := &Proxy{Path: filepath.Join(b.TempDir(), "s"), Dial: func(ctx context.Context) (*Client, error) {
		return Dial(ctx, "tcp", addr, p.clientTLS(), "vol-a")
	}}
	if err := px.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer px.Close()
	proxied, err := Dial(ctx, "unix", px.Path, nil, "vol-a")
	if err != nil {
		b.Fatal(err)
	}
	defer proxied.Close()

	type rw interface {
		ReadAt(p []byte, off int64) (int, error)
		WriteAt(p []byte, off int64) (int, error)
	}
	run := func(b *testing.B, target rw, write bool) time.Duration {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			off := int64(i%(size/block)) * block
			var err error
			if write {
				_, err = target.WriteAt(buf, off)
			} else {
				_, err = target.ReadAt(buf, off)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for _, op := range []struct {
		name  string
		write bool
	}{{"read", false}, {"write", true}} {
		for _, path := range []struct {
			name   string
			target rw
		}{{"file", f}, {"server", direct}, {"proxy", proxied}} {
			b.Run(op.name+"/"+path.name, func(b *testing.B) {
				b.SetBytes(block)
				elapsed := run(b, path.target, op.write)
				if path.target != rw(f) {
					b.StopTimer()
					base := run(b, f, op.write)
					b.ReportMetric(float64(elapsed)/float64(base), "x-direct")
				}
			})
		}
	}
}
