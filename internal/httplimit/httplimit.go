// Package httplimit bounds what one client can hold of an HTTP server, so
// that slow, stalled or idle clients cannot starve the others of
// connections, goroutines, memory or open files:
//
//   - a connection cap per client address (IPv6: per /64) and over all
//     addresses (Conns, a net.Listener wrapper shared by every listener of
//     the process, so they draw on one budget of open files), and a
//     deadline on every write, so a client that takes none of an answer
//     does not hold its connection forever;
//   - deadlines on the header and on idle keep-alive connections
//     (Config.Server);
//   - a request body must keep arriving: no more than BodyStall without a
//     byte, and after BodyGrace at least BodyMinRate bytes a second on
//     average (Body). A slow but live 5 GB upload goes through; a body
//     declared and never sent ends with ErrBodyTimeout, which the APIs
//     answer as RequestTimeout in their own format;
//   - a request whose body was not read to its end is answered with
//     "Connection: close" instead of the server reading (and waiting for)
//     the rest to reuse the connection;
//   - documents read before their signature can be checked are bounded
//     each and together (ReadDocument).
//
// The limits are applied at the edge of the process, below the API
// handlers, so every listener gets them the same way.
package httplimit

import (
	"log"
	"net/http"
	"syscall"
	"time"
)

// Config is the set of limits. The zero value of a field means no limit.
type Config struct {
	// PerAddr is the most connections one client address may hold open;
	// more are closed as soon as accepted.
	PerAddr int
	// Total is the most connections open at once over all addresses; at
	// the cap Accept waits for one to close (the kernel queues the rest).
	Total int
	// HeaderTimeout bounds reading a request's line and header (and the
	// TLS handshake).
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new
	// request for this long.
	IdleTimeout time.Duration
	// BodyStall is the longest wait for the next byte of a request body.
	BodyStall time.Duration
	// BodyGrace and BodyMinRate: once the server has waited BodyGrace
	// for a body, the client must have sent BodyMinRate bytes per second
	// of waiting on average, so a body trickled a byte at a time ends too.
	BodyGrace   time.Duration
	BodyMinRate int64
	// SendStall is the longest a client may leave an answer untaken (the
	// connection's write blocked) before the connection is given up.
	SendStall time.Duration
	// Documents is how many bytes of request documents read before their
	// signature is checked (ReadDocument) a server holds at once.
	Documents int64
}

// Defaults are the limits of a production server: 30 s to send a header or
// to send the next byte of a body (S3 cuts idle uploads after about 20 s,
// nginx after 60 s), 60 s to take any of an answer (nginx's send_timeout),
// keep-alive connections closed after 60 s idle, bodies
// at 1 KiB/s at least after 30 s, 128 connections per client address and
// 10,000 in all, both within half the process's open-files limit (the
// other half is for the store, object files and guests' consoles), and
// 64 MiB of documents read before their signature is checked (a
// DeleteObjects of 1000 keys is about 100 KiB, the largest allowed 2 MiB).
func Defaults() Config {
	total := 10000
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur > 0 && rl.Cur/2 < uint64(total) {
		total = max(int(rl.Cur/2), 8)
	}
	return Config{
		PerAddr:       min(128, max(total/4, 2)),
		Total:         total,
		HeaderTimeout: 30 * time.Second,
		IdleTimeout:   60 * time.Second,
		BodyStall:     30 * time.Second,
		BodyGrace:     30 * time.Second,
		BodyMinRate:   1 << 10,
		SendStall:     60 * time.Second,
		Documents:     64 << 20,
	}
}

// Server returns an http.Server for h with the header and idle deadlines,
// and h's request bodies held to the body limits. Serve it on a listener
// from Conns.Listener.
func (c Config) Server(h http.Handler, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           c.Body(h),
		ReadHeaderTimeout: c.HeaderTimeout,
		IdleTimeout:       c.IdleTimeout,
		ErrorLog:          errLog,
	}
}
