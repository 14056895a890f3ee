// Package tlssplit serves plain HTTP and TLS on one port, as the
// front-end's CLOUD_PORT does: the public APIs in plain HTTP (as Eucalyptus
// served them on 8773, and as clients are configured), and the roles'
// internal calls over TLS. A connection is told apart by its first byte:
// a TLS connection starts with a handshake record (0x16), which no HTTP
// request line can start with.
//
// The first byte is read under a deadline, so a client that connects and
// sends nothing holds its connection no longer than it could hold a plain
// HTTP server's before its header timeout. The listener split is
// usually one from httplimit.Conns, so both sides count against the same
// connection limits.
package tlssplit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// recordTypeHandshake is the first byte of a TLS ClientHello record.
const recordTypeHandshake = 0x16

// Split accepts from ln and hands each connection to plain or tls by its
// first byte, read within sniff (no deadline when sniff is 0). Closing
// either listener closes ln and both.
func Split(ln net.Listener, sniff time.Duration, log *slog.Logger) (plain, tls net.Listener) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &splitter{ln: ln, sniff: sniff, log: log, done: make(chan struct{})}
	s.plain = &side{s: s, ch: make(chan net.Conn)}
	s.tls = &side{s: s, ch: make(chan net.Conn)}
	go s.accept()
	return s.plain, s.tls
}

type splitter struct {
	ln    net.Listener
	sniff time.Duration
	log   *slog.Logger

	plain, tls *side

	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error // why accepting stopped
}

func (s *splitter) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.stop(err)
			return
		}
		go s.route(c)
	}
}

// route reads the first byte and hands the connection over, that byte
// still to be read.
func (s *splitter) route(c net.Conn) {
	if s.sniff > 0 {
		if err := c.SetReadDeadline(time.Now().Add(s.sniff)); err != nil {
			c.Close()
			return
		}
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close() // silent or gone before saying anything
		return
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		c.Close()
		return
	}
	to := s.plain
	if b[0] == recordTypeHandshake {
		to = s.tls
	}
	select {
	case to.ch <- &conn{Conn: c, first: b[0], has: true}:
	case <-s.done:
		c.Close()
	}
}

func (s *splitter) stop(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
		s.ln.Close()
	})
}

// side is one of the two listeners Split returns.
type side struct {
	s  *splitter
	ch chan net.Conn
}

func (d *side) Accept() (net.Conn, error) {
	select {
	case c := <-d.ch:
		return c, nil
	case <-d.s.done:
		d.s.mu.Lock()
		defer d.s.mu.Unlock()
		if d.s.err != nil && !errors.Is(d.s.err, net.ErrClosed) {
			return nil, d.s.err
		}
		return nil, net.ErrClosed
	}
}

func (d *side) Close() error {
	d.s.stop(net.ErrClosed)
	return nil
}

func (d *side) Addr() net.Addr { return d.s.ln.Addr() }

// conn gives back the byte read to tell it apart, then reads on.
type conn struct {
	net.Conn
	first byte
	has   bool
}

func (c *conn) Read(p []byte) (int, error) {
	if c.has && len(p) > 0 {
		p[0] = c.first
		c.has = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// ReadFrom keeps the sendfile path of the connection underneath (net/http
// serves object data through it).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close, as it does on a TCP connection.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
