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
	cs := &Conns{perAddr: c.PerAddr, log: log, addrs: map[netip.Addr]*addrCount{}}
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
		return &conn{Conn: c, release: func() { l.cs.release(key); l.freeSlot() }}, nil
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

// conn gives its counts back when closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps the kernel's sendfile/splice path of the connection
// (net/http uses it to send files).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

type writerOnly struct{ io.Writer }
