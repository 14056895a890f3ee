package nbd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults for the Proxy.
const (
	DefaultRetryFor       = 2 * time.Minute
	DefaultRequestTimeout = 30 * time.Second
)

// Proxy serves one remote export as plain NBD on a unix socket, for QEMU on
// the node, and keeps the remote connection alive behind it: when that
// connection breaks (the SC restarted, the network blinked) it dials again
// with backoff and resends every request not yet answered, so QEMU sees a
// slow request, not an error. Only after RetryFor without success does a
// request fail, with EIO. NBD's requests are idempotent (a resent WRITE
// writes the same bytes again; a FLUSH after a reconnect syncs the whole
// file), which is what makes the resend safe.
type Proxy struct {
	// Path of the unix socket; it is created mode 0600 (put it in a
	// root-only directory too) and removed by Close.
	Path string
	// Name is the export name the local client must ask for; empty
	// accepts any.
	Name string
	// Dial opens the remote export; called at Start and on every
	// reconnect, with a context bounded by RequestTimeout.
	Dial func(ctx context.Context) (*Client, error)
	// Size, when known (the attachment's record), lets Start serve
	// while the remote is unreachable (a node controller restarted
	// while the storage controller is down): requests then wait for the
	// remote as after a lost connection. A remote of another size is
	// refused. Zero makes Start require the remote.
	Size int64
	// RetryFor bounds how long one request keeps being retried;
	// RequestTimeout how long one attempt may wait for its reply before
	// the remote connection is given up as hung (a FLUSH may take all of
	// RetryFor: a big fdatasync is slow, not hung).
	RetryFor       time.Duration
	RequestTimeout time.Duration
	Log            *slog.Logger

	srv    *Server
	remote *remote
	served chan struct{}
}

// Start dials the remote export once (an unreachable remote is an error
// now, not a guest's I/O error later) and starts serving the socket.
func (p *Proxy) Start(ctx context.Context) error {
	if p.Dial == nil || p.Path == "" {
		return errors.New("nbd: proxy needs a Path and a Dial")
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("socket", p.Path)
	size := p.Size
	c, err := p.Dial(ctx)
	switch {
	case err != nil && size <= 0:
		return fmt.Errorf("nbd: proxy %s: %w", p.Path, err)
	case err != nil:
		log.Warn("nbd: proxy starts without its remote", "err", err)
		c = nil
	case size > 0 && c.Size() != size:
		c.Close()
		return fmt.Errorf("nbd: proxy %s: remote export is %d bytes, want %d", p.Path, c.Size(), size)
	default:
		size = c.Size()
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &remote{
		dial: p.Dial, c: c, size: size, log: log,
		retryFor: orDefault(p.RetryFor, DefaultRetryFor), timeout: orDefault(p.RequestTimeout, DefaultRequestTimeout),
		ctx: rctx, cancel: cancel,
	}
	// A socket left by a previous run is in the way; anything else at the
	// path is not ours to remove.
	if fi, err := os.Lstat(p.Path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		os.Remove(p.Path)
	}
	ln, err := net.Listen("unix", p.Path)
	if err != nil {
		r.close()
		return fmt.Errorf("nbd: proxy: %w", err)
	}
	if err := os.Chmod(p.Path, 0o600); err != nil {
		ln.Close()
		r.close()
		return fmt.Errorf("nbd: proxy: %w", err)
	}
	p.remote = r
	p.srv = &Server{
		Log: log,
		Lookup: func(ctx context.Context, _ *tls.ConnectionState, name string) (Export, error) {
			if p.Name != "" && name != p.Name {
				return nil, ErrUnknownExport
			}
			return r, nil
		},
	}
	p.served = make(chan struct{})
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, ErrServerClosed) {
			log.Error("nbd: proxy stopped serving", "err", err)
		}
	}()
	return nil
}

// Close stops serving, fails requests still retrying, closes the remote
// connection and removes the socket.
func (p *Proxy) Close() error {
	if p.srv == nil {
		return nil
	}
	p.remote.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	<-p.served
	if err := os.Remove(p.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("nbd: proxy: %w", err)
	}
	return nil
}

// remote is the Export the proxy serves: the remote export, through
// whichever Client currently reaches it.
type remote struct {
	dial              func(ctx context.Context) (*Client, error)
	size              int64
	log               *slog.Logger
	retryFor, timeout time.Duration
	ctx               context.Context // ends at Close
	cancel            context.CancelFunc

	mu sync.Mutex // guards c; held while reconnecting, so one dial at a time
	c  *Client
}

func (r *remote) close() {
	r.cancel()
	r.mu.Lock()
	c := r.c
	r.c = nil
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// client returns the current connection, dialling again (with backoff,
// until deadline) when there is none.
func (r *remote) client(deadline time.Time) (*Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	backoff := 50 * time.Millisecond
	for r.c == nil {
		if err := r.ctx.Err(); err != nil {
			return nil, ErrClosed
		}
		attempt := time.Now().Add(r.timeout)
		if deadline.Before(attempt) {
			attempt = deadline
		}
		ctx, cancel := context.WithDeadline(r.ctx, attempt)
		c, err := r.dial(ctx)
		cancel()
		if err == nil && c.Size() != r.size {
			c.Close()
			// The export changed under the guest: its disk must not
			// silently change size, so this is an I/O error.
			return nil, fmt.Errorf("nbd: remote export is now %d bytes, was %d: %w", c.Size(), r.size, EIO)
		}
		if err == nil {
			r.c = c
			r.log.Info("nbd: proxy reconnected")
			break
		}
		var oe *OptionError
		if errors.As(err, &oe) && (oe.Type == repErrUnknown || oe.Type == repErrPolicy) {
			// The server is up and says no: the export is gone or
			// fenced (a forced detach). Waiting will not change that.
			return nil, fmt.Errorf("nbd: remote export refused: %w: %w", err, EIO)
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("nbd: remote unreachable: %w", err)
		}
		r.log.Warn("nbd: proxy reconnect failed", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			return nil, ErrClosed
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return r.c, nil
}

// broken forgets c (if still current) so the next request dials again.
func (r *remote) broken(c *Client, err error) {
	r.mu.Lock()
	current := r.c == c
	if current {
		r.c = nil
	}
	r.mu.Unlock()
	if current {
		r.log.Warn("nbd: proxy lost the remote export", "err", err)
		c.Close()
	}
}

// do runs op until the remote answers it, reconnecting and resending as
// needed. An NBD error from the remote is its answer, passed on as it is
// (but ESHUTDOWN means "reconnect": the server is going away).
func (r *remote) do(op func(ctx context.Context, c *Client) error) error {
	return r.doWithin(r.timeout, op)
}

// doWithin is do with its own bound on one attempt.
func (r *remote) doWithin(timeout time.Duration, op func(ctx context.Context, c *Client) error) error {
	deadline := time.Now().Add(r.retryFor)
	for {
		c, err := r.client(deadline)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.ctx, timeout)
		err = op(ctx, c)
		cancel()
		var e Errno
		if err == nil || (errors.As(err, &e) && e != ESHUTDOWN) {
			return err
		}
		r.broken(c, err)
		if r.ctx.Err() != nil {
			return ErrClosed
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nbd: gave up after %s: %w", r.retryFor, err)
		}
	}
}

func (r *remote) Size() int64 { return r.size }

func (r *remote) ReadAt(p []byte, off int64) (int, error) {
	err := r.do(func(ctx context.Context, c *Client) error { return c.ReadAtContext(ctx, p, off) })
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r *remote) WriteAt(p []byte, off int64) (int, error) {
	err := r.do(func(ctx context.Context, c *Client) error { return c.WriteAtContext(ctx, p, off, false) })
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Sync may wait for the SC's fdatasync of gigabytes of dirty pages on a
// slow disk: a FLUSH gets all of RetryFor, not RequestTimeout, lest a slow
// but healthy SC be taken for a hung one and asked to sync again and again.
func (r *remote) Sync() error {
	return r.doWithin(max(r.retryFor, r.timeout), func(ctx context.Context, c *Client) error { return c.FlushContext(ctx) })
}

func (r *remote) Punch(off, n int64) error {
	return r.do(func(ctx context.Context, c *Client) error { return c.TrimContext(ctx, off, n) })
}

func (r *remote) Zero(off, n int64) error {
	return r.do(func(ctx context.Context, c *Client) error { return c.ZeroContext(ctx, off, n) })
}
