package httplimit

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Conns counts the open connections of the listeners it wraps, per client
// address and in all. One Conns is shared by a process's listeners: a
// client's connections count together wherever they go, and the total is
// one budget of open files.
type Conns struct {
	perAddr int
	stall   time.Duration // SendStall
	slots   chan struct{} // one token per open connection; nil when no total cap
	log     *slog.Logger

	mu         sync.Mutex
	addrs      map[netip.Addr]*addrCount
	warnedFull time.Time
}

type addrCount struct {
	n int
	// warned: a refusal was logged since the address last fell to no
	// connection, so a client hammering at the cap logs one line.
	warned bool
}

// NewConns counts connections against c.PerAddr and c.Total.
func NewConns(c Config, log *slog.Logger) *Conns {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cs := &Conns{perAddr: c.PerAddr, stall: c.SendStall, log: log, addrs: map[netip.Addr]*addrCount{}}
	if c.Total > 0 {
		cs.slots = make(chan struct{}, c.Total)
	}
	return cs
}

// Open is the number of connections open from the address of a (as in
// net.Conn.RemoteAddr).
func (cs *Conns) Open(a net.Addr) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.addrs[clientKey(a)]; c != nil {
		return c.n
	}
	return 0
}

// Listener wraps ln: Accept waits while the total is at its cap, and
// closes at once a connection from an address already at its own.
func (cs *Conns) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, cs: cs, done: make(chan struct{})}
}

// clientKey is what a client's connections are counted under: its IP
// address, or for IPv6 its /64 (one host usually holds a whole /64).
func clientKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip = t.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			ip = p.Addr()
		}
	}
	return ip
}

func (cs *Conns) acquire(key netip.Addr) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.addrs[key]
	if c == nil {
		c = &addrCount{}
		cs.addrs[key] = c
	}
	if cs.perAddr > 0 && c.n >= cs.perAddr {
		if !c.warned {
			c.warned = true
			cs.log.Warn("client at its connection cap: refusing more connections from it", "client", key.String(), "cap", cs.perAddr)
		}
		return false
	}
	c.n++
	return true
}

// warnFull says, at most once a minute, that new connections wait.
func (cs *Conns) warnFull() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if now := time.Now(); now.Sub(cs.warnedFull) > time.Minute {
		cs.warnedFull = now
		cs.log.Warn("all connections in use: new ones wait until one closes", "cap", cap(cs.slots))
	}
}

func (cs *Conns) release(key netip.Addr) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.addrs[key]; c != nil {
		c.n--
		if c.n <= 0 {
			delete(cs.addrs, key)
		}
	}
}

type listener struct {
	net.Listener
	cs        *Conns
	done      chan struct{}
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		if l.cs.slots != nil {
			select {
			case l.cs.slots <- struct{}{}:
			default:
				l.cs.warnFull()
				select {
				case l.cs.slots <- struct{}{}:
				case <-l.done:
					return nil, net.ErrClosed
				}
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.freeSlot()
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		if !l.cs.acquire(key) {
			l.freeSlot()
			// No answer: the client has more connections open than any
			// real one needs; an HTTP answer would be garbage on TLS.
			c.Close()
			continue
		}
		return &conn{Conn: c, stall: l.cs.stall, release: func() { l.cs.release(key); l.freeSlot() }}, nil
	}
}

func (l *listener) freeSlot() {
	if l.cs.slots != nil {
		<-l.cs.slots
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// conn gives its counts back when closed, and gives up a write the client
// does not take any of for stall.
type conn struct {
	net.Conn
	once    sync.Once
	release func()

	stall    time.Duration
	deadline time.Time // the write deadline as last set
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// armWrite moves the write deadline to stall from now; net/http writes
// from one goroutine at a time, so no lock.
func (c *conn) armWrite() {
	if c.stall <= 0 {
		return
	}
	if t := time.Now().Add(c.stall); t.Sub(c.deadline) > deadlineSlack {
		if c.Conn.SetWriteDeadline(t) == nil {
			c.deadline = t
		}
	}
}

// SetWriteDeadline is the caller's (the TLS handshake's): the next write
// arms its own again.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.Conn.SetDeadline(t)
}

func (c *conn) Write(p []byte) (int, error) {
	c.armWrite()
	return c.Conn.Write(p)
}

// sendChunk is what a client must take within the stall limit when a file
// is sent (256 KiB a minute is 4 KiB/s): sendfile goes on in chunks this
// size, each with a fresh deadline.
const sendChunk = 256 << 10

// ReadFrom keeps the kernel's sendfile/splice path of the connection
// (net/http uses it to send files), in chunks so the deadline can move.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		c.armWrite()
		return io.Copy(writerOnly{c}, r)
	}
	if c.stall <= 0 {
		return rf.ReadFrom(r)
	}
	var total int64
	for {
		// One level of LimitedReader over the file, so that sendfile
		// still sees the file.
		var part *io.LimitedReader
		lr, limited := r.(*io.LimitedReader)
		if limited {
			if lr.N <= 0 {
				return total, nil
			}
			part = &io.LimitedReader{R: lr.R, N: min(lr.N, sendChunk)}
		} else {
			part = &io.LimitedReader{R: r, N: sendChunk}
		}
		want := part.N
		c.deadline = time.Time{} // each chunk gets the whole stall
		c.armWrite()
		n, err := rf.ReadFrom(part)
		total += n
		if limited {
			lr.N -= n
		}
		if err != nil || n < want {
			return total, err
		}
	}
}

type writerOnly struct{ io.Writer }
