package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

func dialTLS(t *testing.T, p *testPKI, addr, export string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", addr, p.clientTLS(), export)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestCommands: every command over TLS against a file export, checked
// against the file itself.
func TestCommands(t *testing.T) {
	p := newPKI(t)
	const size = 8 << 20
	path, f := newImage(t, size)
	_, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-a": f})
	c := dialTLS(t, p, addr, "vol-a")
	if c.Size() != size {
		t.Fatalf("size %d, want %d", c.Size(), size)
	}
	want := make([]byte, size)

	data := randBytes(3 << 20)
	if _, err := c.WriteAt(data, 1000); err != nil {
		t.Fatal(err)
	}
	copy(want[1000:], data)
	fua := randBytes(4096)
	if err := c.WriteAtContext(context.Background(), fua, size-4096, true); err != nil {
		t.Fatal(err)
	}
	copy(want[size-4096:], fua)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Trim(1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(want[1<<20 : 2<<20]) // a file export reads zeros after a punch
	if err := c.Zero(3<<20, 100); err != nil {
		t.Fatal(err)
	}
	clear(want[3<<20 : 3<<20+100])

	got := make([]byte, size)
	if _, err := c.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("read back differs from what was written")
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, want) {
		t.Fatal("file differs from what was written")
	}

	// Out of range: the client checks, so go around it.
	if err := c.do(context.Background(), cmdRead, 0, size-10, 11, nil, make([]byte, 11)); !errors.Is(err, EINVAL) {
		t.Errorf("read past the end: %v, want EINVAL", err)
	}
	if err := c.do(context.Background(), cmdWrite, 0, 1<<63, 1, []byte{1}, nil); !errors.Is(err, EINVAL) {
		t.Errorf("write at 2^63: %v, want EINVAL", err)
	}
	if err := c.do(context.Background(), 5 /* CACHE, not advertised */, 0, 0, 1, nil, nil); !errors.Is(err, EINVAL) {
		t.Errorf("unknown command: %v, want EINVAL", err)
	}
	if err := c.do(context.Background(), cmdRead, 4 /* DF, not advertised */, 0, 1, nil, make([]byte, 1)); !errors.Is(err, EINVAL) {
		t.Errorf("read with an unknown flag: %v, want EINVAL", err)
	}
	// Zero-length requests are answered, with no data.
	if err := c.do(context.Background(), cmdRead, 0, 0, 0, nil, nil); err != nil {
		t.Errorf("zero-length read: %v", err)
	}
	if err := c.do(context.Background(), cmdWrite, 0, 0, 0, nil, nil); err != nil {
		t.Errorf("zero-length write: %v", err)
	}
	// The connection survives refused requests.
	if _, err := c.ReadAt(got[:10], 0); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentRequests: many goroutines on one client, pipelined, each
// on its own region.
func TestConcurrentRequests(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 16<<20)
	_, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-a": f})
	c := dialTLS(t, p, addr, "vol-a")
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(i) * (512 << 10)
			for round := range 8 {
				data := bytes.Repeat([]byte{byte(i), byte(round)}, 128<<10)
				if _, err := c.WriteAt(data, off); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(data))
				if _, err := c.ReadAt(got, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, data) {
					errs <- errors.New("concurrent read back differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// rawConn speaks the handshake by hand, for what the Client never does.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	r := &rawConn{t: t, nc: nc}
	var b [18]byte
	r.read(b[:])
	if binary.BigEndian.Uint64(b[:]) != magicInit || binary.BigEndian.Uint64(b[8:]) != magicOpt {
		t.Fatal("bad greeting")
	}
	if got := binary.BigEndian.Uint16(b[16:]); got != flagFixedNewstyle|flagNoZeroes {
		t.Fatalf("handshake flags %#x", got)
	}
	return r
}

func (r *rawConn) read(b []byte) {
	r.t.Helper()
	if _, err := io.ReadFull(r.nc, b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) flags(f uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], f)
	r.write(b[:])
}

func (r *rawConn) option(opt uint32, data []byte) (uint32, []byte) {
	r.t.Helper()
	if err := sendOption(r.nc, opt, data); err != nil {
		r.t.Fatal(err)
	}
	typ, reply, err := readOptReply(r.nc, opt)
	if err != nil {
		r.t.Fatal(err)
	}
	return typ, reply
}

// closed reports whether the server hung up.
func (r *rawConn) closed() bool {
	var b [1]byte
	_, err := r.nc.Read(b[:])
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func goData(name string) []byte {
	b := make([]byte, 4+len(name)+2)
	binary.BigEndian.PutUint32(b, uint32(len(name)))
	copy(b[4:], name)
	return b
}

// TestTLSRequired: before STARTTLS every option but ABORT is refused with
// ERR_TLS_REQD, and EXPORT_NAME hangs up.
func TestTLSRequired(t *testing.T) {
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	_, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-a": f})

	r := dialRaw(t, addr)
	r.flags(flagFixedNewstyle | flagNoZeroes)
	for _, opt := range []uint32{optGo, optInfo, optList, optStructuredReply, optSetMetaContext, 42} {
		data := []byte(nil)
		if opt == optGo || opt == optInfo {
			data = goData("vol-a")
		}
		if typ, _ := r.option(opt, data); typ != repErrTLSReqd {
			t.Errorf("option %d before TLS: reply %#x, want ERR_TLS_REQD", opt, typ)
		}
	}
	if err := sendOption(r.nc, optExportName, []byte("vol-a")); err != nil {
		t.Fatal(err)
	}
	if !r.closed() {
		t.Error("EXPORT_NAME before TLS: connection still open")
	}

	// The Client asks for GO without TLS and gets the refusal.
	_, err := Dial(context.Background(), "tcp", addr, nil, "vol-a")
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Type != repErrTLSReqd {
		t.Errorf("plain Dial: %v, want ERR_TLS_REQD", err)
	}

	// TLS without a client certificate fails the handshake.
	tc := p.clientTLS()
	tc.Certificates = nil
	if c, err := Dial(context.Background(), "tcp", addr, tc, "vol-a"); err == nil {
		// TLS 1.3 reports the refusal of the client's certificate on the
		// first read.
		if _, err := c.ReadAt(make([]byte, 1), 0); err == nil {
			t.Error("TLS without a client certificate was served")
		}
		c.Close()
	}

	// ABORT is acknowledged.
	r = dialRaw(t, addr)
	r.flags(flagFixedNewstyle)
	if typ, _ := r.option(optAbort, nil); typ != repAck {
		t.Errorf("ABORT: %#x", typ)
	}
}

// TestOptions: a plain server's answers to each option, and EXPORT_NAME's
// legacy reply with and without NO_ZEROES.
func TestOptions(t *testing.T) {
	path, f := newImage(t, 1<<20)
	os.WriteFile(path, bytes.Repeat([]byte{7}, 1<<20), 0o600)
	_, addr := startServer(t, nil, map[string]Export{"vol-a": f})

	r := dialRaw(t, addr)
	r.flags(flagFixedNewstyle | flagNoZeroes)
	for opt, want := range map[uint32]uint32{
		optList: repErrPolicy, optStructuredReply: repErrUnsup, optStartTLS: repErrUnsup,
		optSetMetaContext: repErrUnsup, 99: repErrUnsup,
	} {
		if typ, _ := r.option(opt, nil); typ != want {
			t.Errorf("option %d: reply %#x, want %#x", opt, typ, want)
		}
	}
	if typ, _ := r.option(optGo, goData("vol-b")); typ != repErrUnknown {
		t.Errorf("GO unknown export: %#x", typ)
	}
	if typ, _ := r.option(optGo, []byte{0, 0, 0, 9, 'x'}); typ != repErrInvalid {
		t.Errorf("GO malformed: %#x", typ)
	}
	if typ, _ := r.option(optGo, append(goData("vol\x00"), 0)); typ != repErrInvalid {
		t.Errorf("GO malformed count: %#x", typ)
	}
	// INFO answers, and haggling goes on.
	if err := sendOption(r.nc, optInfo, goData("vol-a")); err != nil {
		t.Fatal(err)
	}
	var sawExport, sawBlock bool
	for {
		typ, data, err := readOptReply(r.nc, optInfo)
		if err != nil {
			t.Fatal(err)
		}
		if typ == repAck {
			break
		}
		switch binary.BigEndian.Uint16(data) {
		case infoExport:
			sawExport = binary.BigEndian.Uint64(data[2:]) == 1<<20 && binary.BigEndian.Uint16(data[10:]) == exportFlags
		case infoBlockSize:
			sawBlock = binary.BigEndian.Uint32(data[2:]) == 1 && binary.BigEndian.Uint32(data[6:]) == 4096 && binary.BigEndian.Uint32(data[10:]) == MaxRequest
		}
	}
	if !sawExport || !sawBlock {
		t.Errorf("INFO: export info %v, block size info %v", sawExport, sawBlock)
	}
	// EXPORT_NAME: u64 size, u16 flags, no zeroes; then a read.
	if err := sendOption(r.nc, optExportName, []byte("vol-a")); err != nil {
		t.Fatal(err)
	}
	var b [10]byte
	r.read(b[:])
	if binary.BigEndian.Uint64(b[:]) != 1<<20 || binary.BigEndian.Uint16(b[8:]) != exportFlags {
		t.Fatalf("EXPORT_NAME reply % x", b)
	}
	var req [requestHeaderLen]byte
	putRequestHeader(req[:], cmdRead, 0, 77, 10, 4)
	r.write(req[:])
	var rep [replyHeaderLen + 4]byte
	r.read(rep[:])
	if binary.BigEndian.Uint32(rep[4:]) != 0 || binary.BigEndian.Uint64(rep[8:]) != 77 || !bytes.Equal(rep[16:], []byte{7, 7, 7, 7}) {
		t.Fatalf("read reply % x", rep)
	}
	// An oversize request: EINVAL, then the server hangs up.
	putRequestHeader(req[:], cmdRead, 0, 78, 0, MaxRequest+1)
	r.write(req[:])
	var rep2 [replyHeaderLen]byte
	r.read(rep2[:])
	if Errno(binary.BigEndian.Uint32(rep2[4:])) != EINVAL || binary.BigEndian.Uint64(rep2[8:]) != 78 {
		t.Fatalf("oversize read reply % x", rep2)
	}
	if !r.closed() {
		t.Error("still open after an oversize request")
	}

	// Without NO_ZEROES the legacy reply carries 124 zero bytes.
	r = dialRaw(t, addr)
	r.flags(flagFixedNewstyle)
	if err := sendOption(r.nc, optExportName, []byte("vol-a")); err != nil {
		t.Fatal(err)
	}
	var long [134]byte
	r.read(long[:])
	if !bytes.Equal(long[10:], make([]byte, 124)) {
		t.Error("no zero padding")
	}
	putRequestHeader(req[:], cmdDisc, 0, 1, 0, 0)
	r.write(req[:])
	if !r.closed() {
		t.Error("still open after DISC")
	}

	// Unknown client flags, and a client without fixed newstyle: hang up.
	for _, fl := range []uint32{flagFixedNewstyle | 4, 0} {
		r = dialRaw(t, addr)
		r.flags(fl)
		if !r.closed() {
			t.Errorf("client flags %#x: still open", fl)
		}
	}
	// An option longer than the limit: hang up.
	r = dialRaw(t, addr)
	r.flags(flagFixedNewstyle)
	var h [16]byte
	binary.BigEndian.PutUint64(h[:], magicOpt)
	binary.BigEndian.PutUint32(h[8:], optGo)
	binary.BigEndian.PutUint32(h[12:], maxOptionLen+1)
	r.write(h[:])
	if !r.closed() {
		t.Error("oversize option: still open")
	}
}

// TestDrop: dropping an export closes its connections, not the others',
// and no request of theirs runs afterwards.
func TestDrop(t *testing.T) {
	p := newPKI(t)
	_, fa := newImage(t, 1<<20)
	_, fb := newImage(t, 1<<20)
	s, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-a": fa, "vol-b": fb})
	a1 := dialTLS(t, p, addr, "vol-a")
	a2 := dialTLS(t, p, addr, "vol-a")
	b := dialTLS(t, p, addr, "vol-b")
	buf := make([]byte, 512)
	for _, c := range []*Client{a1, a2, b} {
		if _, err := c.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.Drop("vol-a")
	for _, c := range []*Client{a1, a2} {
		if _, err := c.WriteAt(buf, 0); err == nil {
			t.Error("write on a dropped connection succeeded")
		}
	}
	if _, err := b.WriteAt(buf, 0); err != nil {
		t.Errorf("the other export's connection: %v", err)
	}
}

// TestMaxConns: connections over the limit are closed at once.
func TestMaxConns(t *testing.T) {
	_, f := newImage(t, 1<<20)
	s := &Server{MaxConns: 1, Lookup: func(context.Context, *tls.ConnectionState, string) (Export, error) { return noClose{f}, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	c, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c2, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil, "x"); err == nil {
		c2.Close()
		t.Fatal("second connection served with MaxConns 1")
	}
	if _, err := c.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeTimeout: a client that never finishes the handshake is
// hung up on.
func TestHandshakeTimeout(t *testing.T) {
	s := &Server{HandshakeTimeout: 50 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	r := dialRaw(t, ln.Addr().String())
	if !r.closed() {
		t.Fatal("silent client still connected")
	}
}

// slowExport holds writes until released, to catch requests in flight.
type slowExport struct {
	Export
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *slowExport) WriteAt(p []byte, off int64) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Export.WriteAt(p, off)
}

// TestShutdownAnswersInFlight: Shutdown lets a request in progress finish
// and be answered.
func TestShutdownAnswersInFlight(t *testing.T) {
	_, f := newImage(t, 1<<20)
	slow := &slowExport{Export: f, entered: make(chan struct{}), release: make(chan struct{})}
	s := &Server{Lookup: func(context.Context, *tls.ConnectionState, string) (Export, error) { return slow, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrote := make(chan error, 1)
	go func() { _, err := c.WriteAt([]byte("hello"), 0); wrote <- err }()
	<-slow.entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	close(slow.release)
	if err := <-wrote; err != nil {
		t.Fatalf("in-flight write: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	got := make([]byte, 5)
	f.ReadAt(got, 0)
	if string(got) != "hello" {
		t.Fatalf("file holds %q", got)
	}
}
