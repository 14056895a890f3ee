package nbd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fuzzConn is a client that sends the fuzzer's bytes and throws away
// whatever the server answers (keeping its start, to check the greeting).
type fuzzConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	out    []byte
	closed bool
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.out) < 64 {
		c.out = append(c.out, p[:min(len(p), 64-len(c.out))]...)
	}
	return len(p), nil
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *fuzzConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 10809} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// memExport is an in-memory export.
type memExport struct {
	mu   sync.Mutex
	data []byte
}

func (m *memExport) Size() int64 { return int64(len(m.data)) }
func (m *memExport) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off > int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memExport) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		panic("write outside the export reached the Export")
	}
	return copy(m.data[off:], p), nil
}
func (m *memExport) Sync() error { return nil }
func (m *memExport) Punch(off, n int64) error {
	return m.Zero(off, n)
}
func (m *memExport) Zero(off, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || n < 0 || off+n > int64(len(m.data)) {
		panic("zero outside the export reached the Export")
	}
	clear(m.data[off : off+n])
	return nil
}

// FuzzServer feeds arbitrary client bytes to a server, the first byte
// choosing plain (even) or TLS-only (odd): option haggling and the
// request parser must neither panic, hang, nor let a request outside the
// export reach it. Seeds: testdata/fuzz/FuzzServer.
func FuzzServer(f *testing.F) {
	p := newPKI(f)
	serverTLS := p.serverTLS()
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		s := &Server{
			Lookup: func(_ context.Context, _ *tls.ConnectionState, name string) (Export, error) {
				if name != "vol" {
					return nil, ErrUnknownExport
				}
				return &memExport{data: make([]byte, 64<<10)}, nil
			},
			HandshakeTimeout: 5 * time.Second,
		}
		if in[0]&1 == 1 {
			s.TLS = serverTLS
		}
		s.mu.Lock()
		s.init()
		s.mu.Unlock()
		fc := &fuzzConn{r: bytes.NewReader(in[1:])}
		c := s.track(fc)
		c.serve()
		if len(fc.out) < 18 || binary.BigEndian.Uint64(fc.out) != magicInit {
			t.Fatalf("no greeting: % x", fc.out)
		}
	})
}
