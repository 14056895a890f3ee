package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned for requests on a Client after Close.
var ErrClosed = errors.New("nbd: client closed")

// Client is an NBD client for one export. It is safe for concurrent use:
// requests are pipelined on the one connection and their replies matched by
// cookie. A broken connection fails every request in progress and all later
// ones; making a new Client is the caller's choice (the Proxy does).
type Client struct {
	nc       net.Conn
	size     int64
	flags    uint16
	maxBlock int

	wmu sync.Mutex // serialises requests on the wire

	mu      sync.Mutex
	pending map[uint64]*call
	cookie  uint64
	err     error
	done    chan struct{} // closed when the reader has stopped
}

type call struct {
	buf       []byte // where a READ's data goes
	abandoned bool   // caller gave up: read the data into nothing
	err       error
	done      chan struct{}
}

// DefaultDialTimeout bounds a Dial whose context has no deadline.
const DefaultDialTimeout = 30 * time.Second

// Dial connects to an NBD server and opens export with NBD_OPT_GO. With
// tlsConfig set, TLS is started before any other option and required.
func Dial(ctx context.Context, network, addr string, tlsConfig *tls.Config, export string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("nbd: dial %s: %w", addr, err)
	}
	c, err := NewClient(ctx, nc, tlsConfig, export)
	if err != nil {
		return nil, fmt.Errorf("nbd: %s: %w", addr, err)
	}
	return c, nil
}

// NewClient runs the handshake on an established connection; the Client
// owns nc from then on, also when it fails.
func NewClient(ctx context.Context, nc net.Conn, tlsConfig *tls.Config, export string) (*Client, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultDialTimeout)
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	c, err := handshakeClient(ctx, nc, tlsConfig, export)
	if !stop() || err != nil {
		nc.Close()
		if err == nil || ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, err
	}
	c.nc.SetDeadline(time.Time{})
	go c.read()
	return c, nil
}

func handshakeClient(ctx context.Context, nc net.Conn, tlsConfig *tls.Config, export string) (*Client, error) {
	var b [18]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return nil, fmt.Errorf("nbd: read greeting: %w", err)
	}
	if binary.BigEndian.Uint64(b[0:]) != magicInit || binary.BigEndian.Uint64(b[8:]) != magicOpt {
		return nil, errors.New("nbd: not a newstyle NBD server")
	}
	sflags := binary.BigEndian.Uint16(b[16:])
	if sflags&flagFixedNewstyle == 0 {
		return nil, errors.New("nbd: server does not speak fixed newstyle")
	}
	cflags := uint32(flagFixedNewstyle)
	noZeroes := sflags&flagNoZeroes != 0
	if noZeroes {
		cflags |= flagNoZeroes
	}
	binary.BigEndian.PutUint32(b[:4], cflags)
	if _, err := nc.Write(b[:4]); err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		if err := sendOption(nc, optStartTLS, nil); err != nil {
			return nil, err
		}
		typ, data, err := readOptReply(nc, optStartTLS)
		if err != nil {
			return nil, err
		}
		if typ != repAck {
			return nil, &OptionError{Option: optStartTLS, Type: typ, Message: string(data)}
		}
		tc := tls.Client(nc, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("nbd: TLS handshake: %w", err)
		}
		nc = tc
	}

	// NBD_OPT_GO asking for the block size constraints.
	req := make([]byte, 4+len(export)+2+2)
	binary.BigEndian.PutUint32(req[0:], uint32(len(export)))
	copy(req[4:], export)
	binary.BigEndian.PutUint16(req[4+len(export):], 1)
	binary.BigEndian.PutUint16(req[6+len(export):], infoBlockSize)
	if err := sendOption(nc, optGo, req); err != nil {
		return nil, err
	}
	c := &Client{nc: nc, size: -1, maxBlock: MaxRequest, pending: map[uint64]*call{}, done: make(chan struct{})}
	for {
		typ, data, err := readOptReply(nc, optGo)
		if err != nil {
			return nil, err
		}
		switch {
		case typ == repAck:
			if c.size < 0 {
				return nil, errors.New("nbd: server sent no export information")
			}
			if c.flags&tflagHasFlags == 0 {
				c.flags = 0
			}
			return c, nil
		case typ == repInfo && len(data) >= 2:
			switch binary.BigEndian.Uint16(data) {
			case infoExport:
				if len(data) != 12 {
					return nil, errors.New("nbd: bad NBD_INFO_EXPORT")
				}
				size := binary.BigEndian.Uint64(data[2:])
				if size > 1<<62 {
					return nil, fmt.Errorf("nbd: export size %d", size)
				}
				c.size = int64(size)
				c.flags = binary.BigEndian.Uint16(data[10:])
			case infoBlockSize:
				if len(data) != 14 {
					return nil, errors.New("nbd: bad NBD_INFO_BLOCK_SIZE")
				}
				if m := binary.BigEndian.Uint32(data[10:]); m > 0 && int(m) < c.maxBlock {
					c.maxBlock = int(m)
				}
			}
		case typ&repErrBit != 0:
			return nil, &OptionError{Option: optGo, Type: typ, Message: string(data)}
		}
	}
}

func sendOption(w io.Writer, opt uint32, data []byte) error {
	b := make([]byte, 16+len(data))
	binary.BigEndian.PutUint64(b[0:], magicOpt)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], uint32(len(data)))
	copy(b[16:], data)
	_, err := w.Write(b)
	return err
}

func readOptReply(r io.Reader, opt uint32) (uint32, []byte, error) {
	var h [20]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("nbd: read option reply: %w", err)
	}
	if binary.BigEndian.Uint64(h[0:]) != magicOptReply || binary.BigEndian.Uint32(h[8:]) != opt {
		return 0, nil, errors.New("nbd: bad option reply")
	}
	n := binary.BigEndian.Uint32(h[16:])
	if n > 64<<10 {
		return 0, nil, fmt.Errorf("nbd: option reply of %d bytes", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, fmt.Errorf("nbd: read option reply: %w", err)
	}
	return binary.BigEndian.Uint32(h[12:]), data, nil
}

// Size is the export's size in bytes.
func (c *Client) Size() int64 { return c.size }

// read is the reply reader: it matches each reply to its request.
func (c *Client) read() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var h [replyHeaderLen]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			c.fail(fmt.Errorf("nbd: connection lost: %w", err))
			return
		}
		if binary.BigEndian.Uint32(h[0:]) != magicReply {
			c.fail(errors.New("nbd: bad reply magic"))
			return
		}
		errno := Errno(binary.BigEndian.Uint32(h[4:]))
		cookie := binary.BigEndian.Uint64(h[8:])
		c.mu.Lock()
		cl := c.pending[cookie]
		delete(c.pending, cookie)
		abandoned := cl != nil && cl.abandoned
		c.mu.Unlock()
		if cl == nil {
			c.fail(fmt.Errorf("nbd: reply to unknown cookie %d", cookie))
			return
		}
		if errno != 0 {
			cl.err = errno
		} else if len(cl.buf) > 0 {
			var err error
			if abandoned {
				_, err = io.CopyN(io.Discard, r, int64(len(cl.buf)))
			} else {
				_, err = io.ReadFull(r, cl.buf)
			}
			if err != nil {
				err = fmt.Errorf("nbd: connection lost: %w", err)
				cl.err = err
				close(cl.done)
				c.fail(err)
				return
			}
		}
		close(cl.done)
	}
}

// fail breaks the client: every request waiting and every later one gets
// err (the first one recorded).
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	pending := c.pending
	c.pending = map[uint64]*call{}
	c.mu.Unlock()
	c.nc.Close()
	for _, cl := range pending {
		cl.err = err
		close(cl.done)
	}
}

// Err reports why the client is broken, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close sends NBD_CMD_DISC when it can and closes the connection; requests
// in progress fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	healthy := c.err == nil
	c.mu.Unlock()
	if healthy {
		var h [requestHeaderLen]byte
		putRequestHeader(h[:], cmdDisc, 0, 0, 0, 0)
		c.wmu.Lock()
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(h[:])
		c.wmu.Unlock()
	}
	c.fail(ErrClosed)
	<-c.done
	return nil
}

func putRequestHeader(h []byte, typ, flags uint16, cookie, off uint64, length uint32) {
	binary.BigEndian.PutUint32(h[0:], magicRequest)
	binary.BigEndian.PutUint16(h[4:], flags)
	binary.BigEndian.PutUint16(h[6:], typ)
	binary.BigEndian.PutUint64(h[8:], cookie)
	binary.BigEndian.PutUint64(h[16:], off)
	binary.BigEndian.PutUint32(h[24:], length)
}

// do sends one request and waits for its reply. wdata is a WRITE's
// payload, rbuf a READ's destination. If ctx ends while the request is
// being sent the connection is broken (a half-sent request cannot be
// taken back); if it ends while waiting, the reply is awaited in the
// background and thrown away, and rbuf is not touched after do returns.
func (c *Client) do(ctx context.Context, typ, flags uint16, off uint64, length uint32, wdata, rbuf []byte) error {
	cl := &call{buf: rbuf, done: make(chan struct{})}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.cookie++
	cookie := c.cookie
	c.pending[cookie] = cl
	c.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { c.fail(fmt.Errorf("nbd: request abandoned while sent: %w", ctx.Err())) })
	c.wmu.Lock()
	var err error
	if len(wdata) > 0 && len(wdata) <= 64<<10 {
		// One write, so a small request is one TLS record.
		b := make([]byte, requestHeaderLen+len(wdata))
		putRequestHeader(b, typ, flags, cookie, off, length)
		copy(b[requestHeaderLen:], wdata)
		_, err = c.nc.Write(b)
	} else {
		var h [requestHeaderLen]byte
		putRequestHeader(h[:], typ, flags, cookie, off, length)
		_, err = c.nc.Write(h[:])
		if err == nil && len(wdata) > 0 {
			_, err = c.nc.Write(wdata)
		}
	}
	c.wmu.Unlock()
	stop()
	if err != nil {
		c.fail(fmt.Errorf("nbd: connection lost: %w", err))
	}
	select {
	case <-cl.done:
		return cl.err
	case <-ctx.Done():
		c.mu.Lock()
		if _, waiting := c.pending[cookie]; waiting {
			cl.abandoned = true
			c.mu.Unlock()
			return ctx.Err()
		}
		c.mu.Unlock()
		// The reader holds the call: it is filling rbuf right now.
		<-cl.done
		return cl.err
	}
}

// chunks splits [off, off+n) into requests of at most max bytes.
func chunks(off, n int64, max int64, f func(off, n int64) error) error {
	for n > 0 {
		k := min(n, max)
		if err := f(off, k); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

func (c *Client) check(off, n int64) error {
	if off < 0 || n < 0 || off > c.size || n > c.size-off {
		return fmt.Errorf("nbd: range %d+%d outside the export's %d bytes: %w", off, n, c.size, EINVAL)
	}
	return nil
}

// ReadAtContext reads len(p) bytes at off.
func (c *Client) ReadAtContext(ctx context.Context, p []byte, off int64) error {
	if err := c.check(off, int64(len(p))); err != nil {
		return err
	}
	return chunks(off, int64(len(p)), int64(c.maxBlock), func(o, n int64) error {
		return c.do(ctx, cmdRead, 0, uint64(o), uint32(n), nil, p[o-off:o-off+n])
	})
}

// WriteAtContext writes p at off; with fua the data is durable on return.
func (c *Client) WriteAtContext(ctx context.Context, p []byte, off int64, fua bool) error {
	if err := c.check(off, int64(len(p))); err != nil {
		return err
	}
	var flags uint16
	if fua {
		flags = cmdFlagFUA
	}
	return chunks(off, int64(len(p)), int64(c.maxBlock), func(o, n int64) error {
		return c.do(ctx, cmdWrite, flags, uint64(o), uint32(n), p[o-off:o-off+n], nil)
	})
}

// FlushContext makes every write completed so far durable.
func (c *Client) FlushContext(ctx context.Context) error {
	return c.do(ctx, cmdFlush, 0, 0, 0, nil, nil)
}

// maxRange is the largest TRIM or WRITE_ZEROES sent at once (the length
// field is 32 bits).
const maxRange = 1 << 30

// TrimContext discards [off, off+n).
func (c *Client) TrimContext(ctx context.Context, off, n int64) error {
	if err := c.check(off, n); err != nil {
		return err
	}
	return chunks(off, n, maxRange, func(o, k int64) error {
		return c.do(ctx, cmdTrim, 0, uint64(o), uint32(k), nil, nil)
	})
}

// ZeroContext makes [off, off+n) read as zeros.
func (c *Client) ZeroContext(ctx context.Context, off, n int64) error {
	if err := c.check(off, n); err != nil {
		return err
	}
	return chunks(off, n, maxRange, func(o, k int64) error {
		return c.do(ctx, cmdWriteZeroes, 0, uint64(o), uint32(k), nil, nil)
	})
}

// ReadAt implements io.ReaderAt.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.size {
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > c.size-off {
		n, eof = int(c.size-off), io.EOF
	}
	if err := c.ReadAtContext(context.Background(), p[:n], off); err != nil {
		return 0, err
	}
	return n, eof
}

// WriteAt implements io.WriterAt; it cannot write past the end.
func (c *Client) WriteAt(p []byte, off int64) (int, error) {
	if err := c.WriteAtContext(context.Background(), p, off, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush is FlushContext without a deadline.
func (c *Client) Flush() error { return c.FlushContext(context.Background()) }

// Trim is TrimContext without a deadline.
func (c *Client) Trim(off, n int64) error { return c.TrimContext(context.Background(), off, n) }

// Zero is ZeroContext without a deadline.
func (c *Client) Zero(off, n int64) error { return c.ZeroContext(context.Background(), off, n) }
