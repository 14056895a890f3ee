package nc

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/rpc/rpctest"
	"github.com/euca-cloud/euca/roles/nc/imagecache"
)

// cuttingListener breaks its first cuts connections after limit bytes
// written, as a network that drops a long download would.
type cuttingListener struct {
	net.Listener
	limit int64
	mu    sync.Mutex
	cuts  int
}

func (l *cuttingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cuts == 0 {
		return c, nil
	}
	l.cuts--
	return &cuttingConn{Conn: c, left: l.limit}, nil
}

type cuttingConn struct {
	net.Conn
	left int64
}

func (c *cuttingConn) Write(p []byte) (int, error) {
	if c.left <= 0 {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Write(p)
	c.left -= int64(n)
	if c.left <= 0 {
		c.Conn.Close()
	}
	return n, err
}

// TestHTTPImageSourceResumes: a download the network breaks twice in the
// middle is resumed from where it stopped (range requests to the real
// Walrus image handler), and the image cached is whole and verified.
func TestHTTPImageSourceResumes(t *testing.T) {
	ctx := context.Background()
	defer func(b time.Duration) { resumeBackoff = b }(resumeBackoff)
	resumeBackoff = 10 * time.Millisecond
	ca := newCA(t)
	s, data, ref := walrusWithImage(t, ca)

	var ranged atomic.Int32
	h := s.Handler()
	srv := rpctest.Unstarted(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	// 200 KiB image: each broken connection carries about 60 KiB of it.
	srv.Listener = &cuttingListener{Listener: srv.Listener, limit: 60 << 10, cuts: 2}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := rpctest.Client(srv.Listener.Addr().String(), ca, rpctest.ClientCert(t, ca, "nc:test"))
	cache, err := imagecache.Open(ctx, imagecache.Options{Dir: t.TempDir(), Limit: 1 << 30, Source: HTTPImageSource(client)})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	got, err := cache.Get(ctx, ref, "")
	if err != nil {
		t.Fatalf("download broken twice: %v", err)
	}
	b, err := os.ReadFile(got.Path)
	got.Release()
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("cached image: %d bytes, %v", len(b), err)
	}
	if n := ranged.Load(); n != 2 {
		t.Errorf("%d range requests, want 2 (one per break)", n)
	}

	// A range past the end is refused in the API's own way, not served.
	if _, err := client.OpenFrom(ctx, "/images/"+ref.ID+"?sha256="+ref.SHA256, ref.Size); err == nil {
		t.Errorf("a range from the image's end was served")
	}
}
