package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Export is one block device served over NBD.
//
// The server calls ReadAt, WriteAt, Punch and Zero concurrently (up to the
// connection's in-flight limit), only within [0, Size()), and calls Sync for
// NBD_CMD_FLUSH and after any request with NBD_CMD_FLAG_FUA. If an Export also
// implements io.Closer, the server closes it when the connection that looked
// it up ends (also after an NBD_OPT_INFO that only asked about it).
type Export interface {
	// Size is the export's size in bytes, fixed for a connection's lifetime.
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes every write completed so far durable (fdatasync).
	Sync() error
	// Punch discards the range (NBD_CMD_TRIM); its content is unspecified
	// afterwards, though a file export reads zeros there.
	Punch(off, n int64) error
	// Zero makes the range read as zeros; it may punch or write.
	Zero(off, n int64) error
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("nbd: server closed")

// Defaults for the Server's limits.
const (
	DefaultMaxConns         = 128
	DefaultMaxInFlight      = 16
	DefaultMaxInFlightBytes = 64 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = time.Minute
	// DefaultMaxHandshakesPerHost bounds the connections one address may
	// hold before the end of their handshake: anyone who can reach the
	// port may open connections, and without it a few hundred idle ones
	// (renewed each HandshakeTimeout) would take every MaxConns slot from
	// the nodes that reconnect after a restart.
	DefaultMaxHandshakesPerHost = 32
)

// Server serves exports over NBD: fixed newstyle handshake, simple replies
// only, pipelined requests. With TLS set it is TLS-only (the spec's
// FORCEDTLS mode): every option before NBD_OPT_STARTTLS is refused with
// NBD_REP_ERR_TLS_REQD, and NBD_OPT_EXPORT_NAME before TLS hangs up.
//
// A Server must not be copied after first use.
type Server struct {
	// TLS, when set, is required of every client. nil serves plain NBD,
	// for the proxy's root-only unix socket.
	TLS *tls.Config
	// Lookup opens the named export for a client; peer is the client's
	// verified TLS state (nil when plain). ErrUnknownExport and ErrDenied
	// choose the answer; any other error is reported without its text.
	// ctx ends with the handshake's deadline or the server's shutdown.
	Lookup func(ctx context.Context, peer *tls.ConnectionState, name string) (Export, error)
	Log    *slog.Logger

	// Limits; zero means the Default of the same name.
	MaxConns         int           // connections at once, handshaking or not
	MaxInFlight      int           // requests in progress per connection
	MaxInFlightBytes int           // payload bytes in progress per connection
	HandshakeTimeout time.Duration // from accept to the end of option haggling
	WriteTimeout     time.Duration // to send one reply to a client not reading
	// MaxHandshakesPerHost bounds one remote address's connections still
	// in their handshake (TLS and option haggling).
	MaxHandshakesPerHost int

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shaking   map[string]int // connections in their handshake, by remote host
	closing   bool
	handlers  sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
}

func (s *Server) init() {
	if s.conns == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.shaking = map[string]int{}
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// Serve accepts connections on ln until Shutdown or an accept error, and
// closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.init()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log().Warn("nbd: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("nbd: accept: %w", err)
		}
		backoff = 0
		if c := s.track(nc); c != nil {
			go c.serve()
		}
	}
}

// track registers a new connection, or closes it when the server is full
// or closing.
func (s *Server) track(nc net.Conn) *conn {
	c := &conn{s: s, raw: nc, nc: nc, done: make(chan struct{}), host: remoteHost(nc)}
	s.mu.Lock()
	full := len(s.conns) >= orDefault(s.MaxConns, DefaultMaxConns) ||
		s.shaking[c.host] >= orDefault(s.MaxHandshakesPerHost, DefaultMaxHandshakesPerHost)
	if s.closing || full {
		closing := s.closing
		s.mu.Unlock()
		nc.Close()
		if !closing {
			s.log().Warn("nbd: too many connections, refused one", "remote", nc.RemoteAddr().String())
		}
		return nil
	}
	s.shaking[c.host]++
	s.conns[c] = struct{}{}
	s.handlers.Add(1)
	s.mu.Unlock()
	return c
}

// Shutdown stops accepting, stops reading new requests, lets those in
// progress finish and be answered, then closes every connection. When ctx
// ends first, the connections are closed at once and ctx's error returned
// (after the requests still running in the exports have returned).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.closing = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.kill()
		}
		<-done
		return ctx.Err()
	}
}

// Drop closes every connection that asked for the export name, and returns
// once none of their requests is still running in the export: after Drop,
// no write from those connections reaches the export. New connections are
// Lookup's business: fence first (make Lookup refuse the name), then Drop,
// and no connection can slip between the two, because a connection is
// known by its export name before Lookup is called.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	var victims []*conn
	for c := range s.conns {
		if c.name == name {
			victims = append(victims, c)
		}
	}
	s.mu.Unlock()
	for _, c := range victims {
		c.kill()
	}
	for _, c := range victims {
		<-c.done
	}
	if len(victims) > 0 {
		s.log().Info("nbd: dropped connections", "export", loggable(name), "count", len(victims))
	}
}

// remoteHost is the address part of a connection's remote address.
func remoteHost(nc net.Conn) string {
	a := nc.RemoteAddr()
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// endHandshake takes c out of its host's handshaking count.
func (s *Server) endHandshake(c *conn) {
	s.mu.Lock()
	if s.shaking[c.host]--; s.shaking[c.host] <= 0 {
		delete(s.shaking, c.host)
	}
	s.mu.Unlock()
}

// conn is one client connection.
type conn struct {
	s    *Server
	host string   // remote address, for MaxHandshakesPerHost
	raw  net.Conn // the accepted connection, closed to kill
	name string   // export asked for, under s.mu
	done chan struct{}

	mu       sync.Mutex
	nc       net.Conn // raw, or the TLS connection over it
	stopping atomic.Bool

	wmu  sync.Mutex // serialises replies
	werr error
}

func (c *conn) current() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// stop makes the reader give up at once (Shutdown): requests already read
// are still answered.
func (c *conn) stop() {
	c.stopping.Store(true)
	c.current().SetReadDeadline(time.Unix(1, 0))
}

// kill closes the connection under everyone's feet.
func (c *conn) kill() {
	c.stopping.Store(true)
	c.raw.Close()
}

// clearDeadline removes a deadline unless stop has been called, in which
// case it reports false: stop stores the flag before setting its deadline,
// so either that deadline comes after this clear, or this sees the flag.
func (c *conn) clearDeadline() bool {
	c.current().SetDeadline(time.Time{})
	return !c.stopping.Load()
}

func (c *conn) serve() {
	s := c.s
	log := s.log().With("remote", c.raw.RemoteAddr().String())
	defer func() {
		c.raw.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		close(c.done)
		s.handlers.Done()
	}()
	shaking := true
	defer func() {
		if shaking {
			s.endHandshake(c)
		}
	}()
	c.raw.SetDeadline(time.Now().Add(orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout)))
	if c.stopping.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout))
	exp, err := c.handshake(ctx)
	cancel()
	shaking = false
	s.endHandshake(c)
	if err != nil {
		if !errors.Is(err, errAbort) {
			log.Debug("nbd: handshake failed", "err", err)
		}
		return
	}
	if cl, ok := exp.(io.Closer); ok {
		defer cl.Close()
	}
	if !c.clearDeadline() {
		return
	}
	log = log.With("export", loggable(c.name))
	log.Debug("nbd: transmission")
	if err := c.transmit(exp); err != nil {
		log.Debug("nbd: connection ended", "err", err)
	}
}

var errAbort = errors.New("nbd: client aborted")

// handshake runs the fixed newstyle negotiation up to transmission. It
// returns the export chosen, or an error after which the connection is
// simply closed (the protocol's way to refuse EXPORT_NAME).
func (c *conn) handshake(ctx context.Context) (Export, error) {
	s := c.s
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:], magicInit)
	binary.BigEndian.PutUint64(b[8:], magicOpt)
	binary.BigEndian.PutUint16(b[16:], flagFixedNewstyle|flagNoZeroes)
	if _, err := c.raw.Write(b[:18]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c.raw, b[:4]); err != nil {
		return nil, err
	}
	cflags := binary.BigEndian.Uint32(b[:4])
	if cflags&^(flagFixedNewstyle|flagNoZeroes) != 0 || cflags&flagFixedNewstyle == 0 {
		// Unknown client flags MUST end the session; and without fixed
		// newstyle there is no way to refuse an option.
		return nil, fmt.Errorf("nbd: client flags %#x", cflags)
	}
	noZeroes := cflags&flagNoZeroes != 0
	tlsDone := false
	var peer *tls.ConnectionState
	nc := c.raw

	for i := 0; ; i++ {
		if i >= maxOptions {
			return nil, errors.New("nbd: too many options")
		}
		var h [16]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint64(h[0:]) != magicOpt {
			return nil, errors.New("nbd: bad option magic")
		}
		opt := binary.BigEndian.Uint32(h[8:])
		n := binary.BigEndian.Uint32(h[12:])
		if n > maxOptionLen {
			return nil, fmt.Errorf("nbd: option %d of %d bytes", opt, n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(nc, data); err != nil {
			return nil, err
		}

		if s.TLS != nil && !tlsDone {
			switch opt {
			case optStartTLS:
				if n != 0 {
					if err := optReply(nc, opt, repErrInvalid, "STARTTLS takes no data"); err != nil {
						return nil, err
					}
					continue
				}
				if err := optReply(nc, opt, repAck, ""); err != nil {
					return nil, err
				}
				tc := tls.Server(c.raw, s.TLS)
				c.mu.Lock()
				c.nc = tc
				c.mu.Unlock()
				if c.stopping.Load() {
					return nil, ErrServerClosed
				}
				if err := tc.HandshakeContext(ctx); err != nil {
					return nil, fmt.Errorf("nbd: TLS handshake: %w", err)
				}
				st := tc.ConnectionState()
				peer = &st
				nc = tc
				tlsDone = true
			case optExportName:
				return nil, errors.New("nbd: EXPORT_NAME before STARTTLS")
			case optAbort:
				optReply(nc, opt, repAck, "")
				return nil, errAbort
			default:
				if err := optReply(nc, opt, repErrTLSReqd, "TLS required"); err != nil {
					return nil, err
				}
			}
			continue
		}

		switch opt {
		case optExportName:
			exp, err := c.lookup(ctx, peer, string(data))
			if err != nil {
				return nil, err
			}
			reply := make([]byte, 10, 10+124)
			binary.BigEndian.PutUint64(reply[0:], uint64(exp.Size()))
			binary.BigEndian.PutUint16(reply[8:], exportFlags)
			if !noZeroes {
				reply = reply[:10+124]
			}
			if _, err := nc.Write(reply); err != nil {
				closeExport(exp)
				return nil, err
			}
			return exp, nil
		case optGo, optInfo:
			name, ok := parseInfoRequest(data)
			if !ok {
				if err := optReply(nc, opt, repErrInvalid, "malformed request"); err != nil {
					return nil, err
				}
				continue
			}
			exp, err := c.lookup(ctx, peer, name)
			if err != nil {
				typ, msg := uint32(repErrPlatform), "export unavailable"
				switch {
				case errors.Is(err, ErrUnknownExport):
					typ, msg = repErrUnknown, "unknown export"
				case errors.Is(err, ErrDenied):
					typ, msg = repErrPolicy, "export not allowed"
				case errors.Is(err, errBadName):
					typ, msg = repErrInvalid, "bad export name"
				default:
					s.log().Warn("nbd: lookup failed", "export", loggable(name), "err", err)
				}
				if err := optReply(nc, opt, typ, msg); err != nil {
					return nil, err
				}
				continue
			}
			var info [12]byte
			binary.BigEndian.PutUint16(info[0:], infoExport)
			binary.BigEndian.PutUint64(info[2:], uint64(exp.Size()))
			binary.BigEndian.PutUint16(info[10:], exportFlags)
			var bs [14]byte
			binary.BigEndian.PutUint16(bs[0:], infoBlockSize)
			binary.BigEndian.PutUint32(bs[2:], 1)
			binary.BigEndian.PutUint32(bs[6:], preferredBlock)
			binary.BigEndian.PutUint32(bs[10:], MaxRequest)
			err = optReplyData(nc, opt, repInfo, info[:])
			if err == nil {
				err = optReplyData(nc, opt, repInfo, bs[:])
			}
			if err == nil {
				err = optReply(nc, opt, repAck, "")
			}
			if err != nil || opt == optInfo {
				closeExport(exp)
				if err != nil {
					return nil, err
				}
				continue
			}
			return exp, nil
		case optAbort:
			optReply(nc, opt, repAck, "")
			return nil, errAbort
		case optStartTLS:
			typ := uint32(repErrUnsup)
			if tlsDone {
				typ = repErrInvalid
			}
			if err := optReply(nc, opt, typ, ""); err != nil {
				return nil, err
			}
		case optList:
			// Export names are volume ids: not for listing.
			if err := optReply(nc, opt, repErrPolicy, "listing exports is not allowed"); err != nil {
				return nil, err
			}
		default:
			// Including STRUCTURED_REPLY: refusing it keeps every reply
			// simple, and QEMU then never asks for metadata contexts.
			if err := optReply(nc, opt, repErrUnsup, ""); err != nil {
				return nil, err
			}
		}
	}
}

var errBadName = errors.New("nbd: export name is not valid UTF-8 or holds NUL")

// lookup records the name on the connection before asking Lookup, so a
// Drop of that name from now on closes this connection too.
func (c *conn) lookup(ctx context.Context, peer *tls.ConnectionState, name string) (Export, error) {
	if !utf8.ValidString(name) || containsNUL(name) {
		return nil, errBadName
	}
	c.s.mu.Lock()
	c.name = name
	c.s.mu.Unlock()
	if c.stopping.Load() {
		return nil, ErrServerClosed
	}
	if c.s.Lookup == nil {
		return nil, ErrUnknownExport
	}
	exp, err := c.s.Lookup(ctx, peer, name)
	if err != nil {
		return nil, fmt.Errorf("nbd: lookup %q: %w", loggable(name), err)
	}
	if exp.Size() < 0 {
		closeExport(exp)
		return nil, fmt.Errorf("nbd: export %q has a negative size", name)
	}
	return exp, nil
}

// loggable is an export name as logs and errors show it: what follows its
// first '/' is left out, for a name may carry a secret there (the storage
// controller's are "vol-X/<nonce>", the nonce being what lets a node in).
func loggable(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i] + "/..."
	}
	return name
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func closeExport(exp Export) {
	if cl, ok := exp.(io.Closer); ok {
		cl.Close()
	}
}

// parseInfoRequest reads NBD_OPT_GO/INFO data: u32 name length, name, u16
// count, count × u16 info types. The info types are not needed: the
// server always sends INFO_EXPORT and INFO_BLOCK_SIZE, which the spec
// allows whether asked for or not.
func parseInfoRequest(data []byte) (string, bool) {
	if len(data) < 6 {
		return "", false
	}
	nl := binary.BigEndian.Uint32(data)
	if uint64(nl) > uint64(len(data)-6) {
		return "", false
	}
	name := string(data[4 : 4+nl])
	n := binary.BigEndian.Uint16(data[4+nl:])
	if len(data) != 4+int(nl)+2+2*int(n) {
		return "", false
	}
	return name, true
}

func optReply(w io.Writer, opt, typ uint32, msg string) error {
	return optReplyData(w, opt, typ, []byte(msg))
}

func optReplyData(w io.Writer, opt, typ uint32, data []byte) error {
	b := make([]byte, 20+len(data))
	binary.BigEndian.PutUint64(b[0:], magicOptReply)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	copy(b[20:], data)
	_, err := w.Write(b)
	return err
}

// request is one transmission-phase request as read off the wire.
type request struct {
	flags  uint16
	typ    uint16
	handle uint64
	off    uint64
	length uint32
}

func parseRequest(h []byte) (request, bool) {
	if binary.BigEndian.Uint32(h[0:]) != magicRequest {
		return request{}, false
	}
	return request{
		flags:  binary.BigEndian.Uint16(h[4:]),
		typ:    binary.BigEndian.Uint16(h[6:]),
		handle: binary.BigEndian.Uint64(h[8:]),
		off:    binary.BigEndian.Uint64(h[16:]),
		length: binary.BigEndian.Uint32(h[24:]),
	}, true
}

// transmit reads requests until the client disconnects, and runs each in
// its own goroutine, at most MaxInFlight (and MaxInFlightBytes of payload)
// at once per connection; replies go out in completion order.
func (c *conn) transmit(exp Export) error {
	s := c.s
	nc := c.current()
	r := bufio.NewReaderSize(nc, 64<<10)
	b := newBudget(orDefault(s.MaxInFlight, DefaultMaxInFlight), max(orDefault(s.MaxInFlightBytes, DefaultMaxInFlightBytes), MaxRequest))
	var workers sync.WaitGroup
	defer workers.Wait()
	size := uint64(exp.Size())
	var h [requestHeaderLen]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		req, ok := parseRequest(h[:])
		if !ok {
			return errors.New("nbd: bad request magic")
		}
		if req.typ == cmdDisc {
			// Soft disconnect: answer what is in progress, then close
			// (a TLS close_notify first, via the TLS connection's Close).
			workers.Wait()
			nc.Close()
			return nil
		}
		if (req.typ == cmdRead || req.typ == cmdWrite) && req.length > MaxRequest {
			// The payload of an oversize write cannot be skipped
			// safely, nor an oversize read's reply afforded: refuse and
			// hang up, as the spec allows.
			c.reply(req.handle, EINVAL)
			return fmt.Errorf("nbd: request of %d bytes", req.length)
		}
		if errno := validate(req, size); errno != 0 {
			// Refused before any buffer is allocated; a refused write's
			// payload is still read, to stay in step with the client.
			if req.typ == cmdWrite {
				if _, err := io.CopyN(io.Discard, r, int64(req.length)); err != nil {
					return err
				}
			}
			c.reply(req.handle, errno)
			continue
		}
		var n int
		if req.typ == cmdRead || req.typ == cmdWrite {
			n = int(req.length)
		}
		b.acquire(n)
		var buf *[]byte
		if n > 0 {
			// replyHeaderLen of headroom so a read's reply is one write.
			buf = getBuf(n)
		}
		if req.typ == cmdWrite && n > 0 {
			if _, err := io.ReadFull(r, (*buf)[replyHeaderLen:replyHeaderLen+n]); err != nil {
				putBuf(buf)
				b.release(n)
				return err
			}
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			defer b.release(n)
			if buf != nil {
				defer putBuf(buf)
			}
			var data []byte
			if buf != nil {
				data = *buf
			}
			errno := c.execute(exp, req, data)
			if req.typ == cmdRead && errno == 0 && data != nil {
				c.replyWithData(req.handle, data)
			} else {
				c.reply(req.handle, errno)
			}
		}()
	}
}

// validate refuses unknown commands, flags not advertised and ranges
// outside the export.
func validate(req request, size uint64) Errno {
	var allowed uint16
	switch req.typ {
	case cmdWrite, cmdTrim:
		allowed = cmdFlagFUA
	case cmdWriteZeroes:
		allowed = cmdFlagFUA | cmdFlagNoHole
	case cmdRead, cmdFlush:
	default:
		return EINVAL
	}
	if req.flags&^allowed != 0 {
		return EINVAL
	}
	if req.typ != cmdFlush && (req.off > size || uint64(req.length) > size-req.off) {
		return EINVAL
	}
	return 0
}

// execute runs one validated request against the export; data has
// replyHeaderLen bytes of headroom before the payload.
func (c *conn) execute(exp Export, req request, data []byte) Errno {
	off, length := int64(req.off), int64(req.length)
	var err error
	switch req.typ {
	case cmdRead:
		if length > 0 {
			var got int
			got, err = exp.ReadAt(data[replyHeaderLen:], off)
			if got == len(data)-replyHeaderLen {
				err = nil // io.EOF at the very end is no failure
			} else if err == nil {
				err = io.ErrUnexpectedEOF
			}
		}
	case cmdWrite:
		if length > 0 {
			_, err = exp.WriteAt(data[replyHeaderLen:], off)
		}
	case cmdFlush:
		err = exp.Sync()
	case cmdTrim:
		if length > 0 {
			err = exp.Punch(off, length)
		}
	case cmdWriteZeroes:
		if length > 0 {
			err = exp.Zero(off, length)
		}
	}
	if err == nil && req.flags&cmdFlagFUA != 0 {
		err = exp.Sync()
	}
	if err != nil {
		e := errnoOf(err)
		c.s.log().Warn("nbd: request failed", "export", loggable(c.name), "cmd", req.typ, "off", off, "len", length, "err", err, "errno", uint32(e))
		return e
	}
	return 0
}

// reply sends a simple reply without payload. After a READ error no data
// follows, as QEMU's client and qemu-nbd expect.
func (c *conn) reply(handle uint64, errno Errno) {
	var h [replyHeaderLen]byte
	putReplyHeader(h[:], handle, errno)
	c.send(h[:])
}

// replyWithData sends a successful READ reply; buf holds the header room
// followed by the data.
func (c *conn) replyWithData(handle uint64, buf []byte) {
	putReplyHeader(buf[:replyHeaderLen], handle, 0)
	c.send(buf)
}

func putReplyHeader(h []byte, handle uint64, errno Errno) {
	binary.BigEndian.PutUint32(h[0:], magicReply)
	binary.BigEndian.PutUint32(h[4:], uint32(errno))
	binary.BigEndian.PutUint64(h[8:], handle)
}

// send writes one reply whole; a client that does not take it within
// WriteTimeout, or any write error, ends the connection (the reader then
// stops, and the remaining workers' replies are dropped).
func (c *conn) send(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return
	}
	nc := c.current()
	nc.SetWriteDeadline(time.Now().Add(orDefault(c.s.WriteTimeout, DefaultWriteTimeout)))
	if _, err := nc.Write(b); err != nil {
		c.werr = err
		c.raw.Close()
	}
}

// budget bounds the requests in progress on one connection, by count and by
// payload bytes. Only the connection's reader acquires, so a waiting
// acquire is woken by a worker's release.
type budget struct {
	mu                 sync.Mutex
	cond               sync.Cond
	slots, bytes       int
	maxSlots, maxBytes int
}

func newBudget(slots, bytes int) *budget {
	b := &budget{maxSlots: slots, maxBytes: bytes}
	b.cond.L = &b.mu
	return b
}

func (b *budget) acquire(n int) {
	b.mu.Lock()
	for b.slots >= b.maxSlots || (b.bytes > 0 && b.bytes+n > b.maxBytes) {
		b.cond.Wait()
	}
	b.slots++
	b.bytes += n
	b.mu.Unlock()
}

func (b *budget) release(n int) {
	b.mu.Lock()
	b.slots--
	b.bytes -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Buffers come from pools by power-of-two size class of their payload, 4
// KiB up to MaxRequest, each with replyHeaderLen bytes of room in front, so
// a busy connection does not allocate a megabyte per request.
const minBufShift = 12

var bufPools [14]sync.Pool // 4 KiB << 13 = MaxRequest

func bufClass(n int) int {
	c := 0
	for (1 << (minBufShift + c)) < n {
		c++
	}
	return c
}

// getBuf returns a buffer of replyHeaderLen+n bytes.
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if c >= len(bufPools) {
		b := make([]byte, replyHeaderLen+n)
		return &b
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		*p = (*p)[:replyHeaderLen+n]
		return p
	}
	b := make([]byte, replyHeaderLen+n, replyHeaderLen+(1<<(minBufShift+c)))
	return &b
}

func putBuf(p *[]byte) {
	n := cap(*p) - replyHeaderLen
	c := bufClass(n)
	if c < len(bufPools) && n == 1<<(minBufShift+c) {
		bufPools[c].Put(p)
	}
}
