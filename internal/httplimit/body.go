package httplimit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// ErrBodyTimeout is what reading a request body returns once the client
// stopped sending it, or sent it slower than the limits allow. APIs answer
// it as RequestTimeout (S3's "Your socket connection to the server was not
// read from or written to within the timeout period.").
var ErrBodyTimeout = errors.New("the client did not send the request body in time")

// deadlineSlack: a read deadline is moved only when it changes by more
// than this, so a fast upload does not reset a timer for every read.
const deadlineSlack = 250 * time.Millisecond

// Body wraps h so that its request bodies are held to c's body limits
// through read deadlines on the connection, the documents its handlers read
// with ReadDocument share one budget of c.Documents bytes, and a response
// to a request whose body was not read to its end closes the connection.
func (c Config) Body(h http.Handler) http.Handler {
	docs := &budget{max: c.Documents}
	if c.Documents <= 0 {
		docs.max = 1<<63 - 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		st := &docState{b: docs}
		defer st.release()
		r = r.WithContext(withDocs(r.Context(), st))
		b := &body{src: r.Body, rc: http.NewResponseController(w), cfg: c, canDeadline: true}
		// A body no handler reads is still read by net/http after the
		// answer (up to 256 KiB, to reuse the connection): bound that
		// too. The first Read sets the deadline it needs.
		b.setDeadline(time.Now().Add(b.budget()))
		r.Body = b
		h.ServeHTTP(&responseWriter{ResponseWriter: w, body: b, http1: r.ProtoMajor == 1}, r)
	})
}

// body is a request body whose reads have a deadline: the time left of the
// stall and rate allowances.
type body struct {
	src         io.ReadCloser
	rc          *http.ResponseController
	cfg         Config
	canDeadline bool      // false when the connection has no deadlines (tests' recorders)
	deadline    time.Time // as last set; zero for none

	n      int64         // bytes read
	waited time.Duration // time spent waiting in Read
	eof    bool
	err    error // sticky timeout
}

// budget is how long the next Read may wait.
func (b *body) budget() time.Duration {
	d := b.cfg.BodyStall
	if b.cfg.BodyMinRate > 0 {
		earned := time.Duration(float64(b.n) / float64(b.cfg.BodyMinRate) * float64(time.Second))
		credit := b.cfg.BodyGrace + earned - b.waited
		if d <= 0 || credit < d {
			d = credit
		}
	}
	return d
}

// limited: the limits ask for deadlines and the connection has them.
func (b *body) limited() bool {
	return b.canDeadline && (b.cfg.BodyStall > 0 || b.cfg.BodyMinRate > 0)
}

func (b *body) setDeadline(t time.Time) {
	if !b.limited() {
		return
	}
	if !b.deadline.IsZero() {
		if diff := t.Sub(b.deadline); diff < deadlineSlack && diff > -deadlineSlack {
			return
		}
	}
	if err := b.rc.SetReadDeadline(t); err != nil {
		b.canDeadline = false // http.ErrNotSupported: nothing to bound
		return
	}
	b.deadline = t
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	start := time.Now()
	left := b.budget()
	if left <= 0 && b.limited() {
		b.err = b.timeout(nil)
		return 0, b.err
	}
	b.setDeadline(start.Add(left))
	n, err := b.src.Read(p)
	b.waited += time.Since(start)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		// The rest of the exchange (a long answer, the next request)
		// has deadlines of its own.
		if !b.deadline.IsZero() {
			_ = b.rc.SetReadDeadline(time.Time{})
			b.deadline = time.Time{}
		}
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.err = b.timeout(err)
		return n, b.err
	}
	return n, err
}

func (b *body) timeout(cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %d bytes in %s", ErrBodyTimeout, b.n, b.waited.Round(time.Millisecond))
	}
	return fmt.Errorf("%w: %d bytes in %s: %w", ErrBodyTimeout, b.n, b.waited.Round(time.Millisecond), cause)
}

func (b *body) Close() error { return b.src.Close() }

// responseWriter closes the connection after an answer to a request whose
// body is left unread: the client may still be sending it (or never will),
// and the server should neither wait for it nor take what follows for the
// next request.
type responseWriter struct {
	http.ResponseWriter
	body    *body
	http1   bool
	decided bool
}

func (w *responseWriter) decide() {
	if w.decided {
		return
	}
	w.decided = true
	if !w.body.eof && w.http1 {
		w.Header().Set("Connection", "close")
	}
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 {
		w.decide()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.decide()
	return w.ResponseWriter.Write(p)
}

// ReadFrom keeps net/http's sendfile path for object data.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	w.decide()
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

func (w *responseWriter) Flush() {
	w.decide()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
