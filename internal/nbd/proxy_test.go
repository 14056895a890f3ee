package nbd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// restartable is an SC stand-in: a TLS Server on a fixed loopback address
// that can be killed and started again.
type restartable struct {
	t      *testing.T
	p      *testPKI
	addr   string
	export func() Export
	mu     sync.Mutex
	srv    *Server
}

func newRestartable(t *testing.T, p *testPKI, export func() Export) *restartable {
	r := &restartable{t: t, p: p, addr: "127.0.0.1:0", export: export}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *restartable) start() {
	r.t.Helper()
	r.mu.Lock()
	addr := r.addr
	r.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.t.Fatal(err)
	}
	s := &Server{TLS: r.p.serverTLS(), Lookup: func(context.Context, *tls.ConnectionState, string) (Export, error) {
		return r.export(), nil
	}}
	r.mu.Lock()
	r.srv = s
	r.addr = ln.Addr().String()
	r.mu.Unlock()
	go s.Serve(ln)
}

// kill closes the listener and every connection at once, as a SIGKILL of
// the SC would.
func (r *restartable) kill() {
	r.mu.Lock()
	s := r.srv
	r.srv = nil
	r.mu.Unlock()
	if s != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Shutdown(ctx)
	}
}

func (r *restartable) dial(ctx context.Context) (*Client, error) {
	r.mu.Lock()
	addr := r.addr
	r.mu.Unlock()
	return Dial(ctx, "tcp", addr, r.p.clientTLS(), "vol-a")
}

func startProxy(t *testing.T, dial func(context.Context) (*Client, error), retryFor time.Duration) *Proxy {
	t.Helper()
	px := &Proxy{Path: filepath.Join(t.TempDir(), "vol-a.sock"), Name: "vol-a", Dial: dial, RetryFor: retryFor}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	return px
}

func dialProxy(t *testing.T, px *Proxy) *Client {
	t.Helper()
	c, err := Dial(context.Background(), "unix", px.Path, nil, "vol-a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lostWrite holds its first write, then drops it without writing: the SC
// killed between receiving a WRITE and its pwrite.
type lostWrite struct {
	Export
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (l *lostWrite) WriteAt(p []byte, off int64) (int, error) {
	first := false
	l.once.Do(func() { first = true })
	if first {
		close(l.entered)
		<-l.release
		return 0, errors.New("killed")
	}
	return l.Export.WriteAt(p, off)
}

// waitBroken waits until c has lost its connection.
func waitBroken(t *testing.T, c *Client) {
	t.Helper()
	for c.Err() == nil {
		select {
		case <-c.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (px *Proxy) current() *Client {
	px.remote.mu.Lock()
	defer px.remote.mu.Unlock()
	return px.remote.c
}

// TestProxySurvivesServerRestart: the SC dies with a write in flight and
// comes back; the write completes through the proxy, the client sees no
// error, and the data is on disk.
func TestProxySurvivesServerRestart(t *testing.T) {
	p := newPKI(t)
	path, f := newImage(t, 8<<20)
	lost := &lostWrite{Export: f, entered: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	var current Export = noClose{lost}
	sc := newRestartable(t, p, func() Export { mu.Lock(); defer mu.Unlock(); return current })
	px := startProxy(t, sc.dial, time.Minute)
	c := dialProxy(t, px)

	// An acknowledged write before the crash, through a read-only path.
	before := bytes.Repeat([]byte{1}, 4096)
	if err := c.ZeroContext(context.Background(), 0, 4096); err != nil {
		t.Fatal(err)
	}
	data := randBytes(4 << 20)
	wrote := make(chan error, 1)
	go func() { wrote <- c.WriteAtContext(context.Background(), data, 1<<20, true) }()
	<-lost.entered

	old := px.current()
	killed := make(chan struct{})
	go func() { sc.kill(); close(killed) }()
	waitBroken(t, old)
	close(lost.release) // the SC "dies" before its pwrite
	<-killed

	mu.Lock()
	current = noClose{f}
	mu.Unlock()
	sc.start()

	if err := <-wrote; err != nil {
		t.Fatalf("write across the restart: %v", err)
	}
	if _, err := c.WriteAt(before, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk[1<<20:5<<20], data) || !bytes.Equal(onDisk[:4096], before) {
		t.Fatal("data on disk differs after the restart")
	}
	if px.current() == old {
		t.Fatal("the proxy did not reconnect")
	}
}

// TestProxySizeChanged: an export of another size after a reconnect is an
// I/O error, not a silently different disk.
func TestProxySizeChanged(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	_, g := newImage(t, 2<<20)
	var mu sync.Mutex
	var current Export = noClose{f}
	sc := newRestartable(t, p, func() Export { mu.Lock(); defer mu.Unlock(); return current })
	px := startProxy(t, sc.dial, time.Minute)
	c := dialProxy(t, px)
	if _, err := c.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	sc.kill()
	mu.Lock()
	current = noClose{g}
	mu.Unlock()
	sc.start()
	if _, err := c.ReadAt(make([]byte, 10), 0); !errors.Is(err, EIO) {
		t.Fatalf("read after the size changed: %v, want EIO", err)
	}
}

// TestProxyGivesUp: with the SC gone for longer than RetryFor a request
// fails with EIO, and the proxy still serves once the SC is back.
func TestProxyGivesUp(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	sc := newRestartable(t, p, func() Export { return noClose{f} })
	px := startProxy(t, sc.dial, 300*time.Millisecond)
	c := dialProxy(t, px)
	sc.kill()
	if _, err := c.ReadAt(make([]byte, 10), 0); !errors.Is(err, EIO) {
		t.Fatalf("read with the SC gone: %v, want EIO", err)
	}
	sc.start()
	if _, err := c.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatalf("read with the SC back: %v", err)
	}
}

// TestProxyNameAndClose: only the proxy's export name is served, and
// Close removes the socket.
func TestProxyNameAndClose(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	sc := newRestartable(t, p, func() Export { return noClose{f} })
	px := startProxy(t, sc.dial, time.Minute)
	fi, err := os.Stat(px.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v", fi.Mode().Perm())
	}
	var oe *OptionError
	if _, err := Dial(context.Background(), "unix", px.Path, nil, "vol-b"); !errors.As(err, &oe) || oe.Type != repErrUnknown {
		t.Errorf("other export through the proxy: %v", err)
	}
	c := dialProxy(t, px)
	if err := px.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(px.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if _, err := c.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("read after the proxy closed")
	}
	// The remote is not dialled at Start when it cannot be reached.
	sc.kill()
	px2 := &Proxy{Path: filepath.Join(t.TempDir(), "s"), Dial: sc.dial}
	if err := px2.Start(context.Background()); err == nil {
		px2.Close()
		t.Error("Start with the remote down succeeded")
	}
}

// TestProxyExportFenced: when the SC fences the export (Lookup refuses it,
// then Drop), the proxy does not retry for RetryFor: the request fails with
// EIO at once.
func TestProxyExportFenced(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	var mu sync.Mutex
	fenced := false
	s, addr := startServerLookup(t, p.serverTLS(), func(context.Context, *tls.ConnectionState, string) (Export, error) {
		mu.Lock()
		defer mu.Unlock()
		if fenced {
			return nil, ErrUnknownExport
		}
		return noClose{f}, nil
	})
	px := startProxy(t, func(ctx context.Context) (*Client, error) {
		return Dial(ctx, "tcp", addr, p.clientTLS(), "vol-a")
	}, time.Hour)
	c := dialProxy(t, px)
	if _, err := c.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fenced = true
	mu.Unlock()
	s.Drop("vol-a")
	if _, err := c.WriteAt([]byte("y"), 0); !errors.Is(err, EIO) {
		t.Fatalf("write after fencing: %v, want EIO", err)
	}
}

// TestProxyStartsWithRemoteDown: with the size known, the proxy serves
// before the SC is reachable, and a request waits for it.
func TestProxyStartsWithRemoteDown(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	sc := newRestartable(t, p, func() Export { return noClose{f} })
	sc.kill()
	px := &Proxy{Path: filepath.Join(t.TempDir(), "s"), Name: "vol-a", Dial: sc.dial, Size: 1 << 20, RetryFor: time.Minute}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	c := dialProxy(t, px)
	wrote := make(chan error, 1)
	go func() { _, err := c.WriteAt([]byte("late"), 100); wrote <- err }()
	sc.start()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	f.ReadAt(got, 100)
	if string(got) != "late" {
		t.Fatalf("file holds %q", got)
	}
	// A known size that the remote does not have is refused at Start.
	bad := &Proxy{Path: filepath.Join(t.TempDir(), "t"), Dial: sc.dial, Size: 2 << 20}
	if err := bad.Start(context.Background()); err == nil {
		bad.Close()
		t.Fatal("Start with the wrong size succeeded")
	}
}

// hangingExport hangs its first read and its syncs until released.
type hangingExport struct {
	Export
	once        sync.Once
	readHung    chan struct{}
	readRelease chan struct{}
	syncRelease chan struct{}
	syncCalled  chan struct{}
	syncOnce    sync.Once
}

func (h *hangingExport) ReadAt(p []byte, off int64) (int, error) {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.readHung)
		<-h.readRelease
	}
	return h.Export.ReadAt(p, off)
}

func (h *hangingExport) Sync() error {
	h.syncOnce.Do(func() { close(h.syncCalled) })
	<-h.syncRelease
	return h.Export.Sync()
}

// TestProxyRequestTimeout: a read the SC never answers is given up after
// RequestTimeout and resent on a new connection; a FLUSH slower than
// RequestTimeout is waited for on the same connection.
func TestProxyRequestTimeout(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	h := &hangingExport{Export: f, readHung: make(chan struct{}), readRelease: make(chan struct{}),
		syncRelease: make(chan struct{}), syncCalled: make(chan struct{})}
	sc := newRestartable(t, p, func() Export { return noClose{h} })
	px := &Proxy{Path: filepath.Join(t.TempDir(), "s"), Dial: sc.dial, RequestTimeout: 200 * time.Millisecond, RetryFor: time.Minute}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	defer close(h.readRelease)
	c := dialProxy(t, px)
	old := px.current()
	if _, err := c.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatalf("read past a hung attempt: %v", err)
	}
	if px.current() == old {
		t.Fatal("the hung connection was kept")
	}

	kept := px.current()
	flushed := make(chan error, 1)
	go func() { flushed <- c.Flush() }()
	<-h.syncCalled
	time.Sleep(4 * px.RequestTimeout) // longer than an attempt may take
	close(h.syncRelease)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if px.current() != kept {
		t.Fatal("a slow FLUSH was taken for a hung connection")
	}
}
