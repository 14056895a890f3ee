package httplimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
)

// Errors of ReadDocument.
var (
	// ErrTooLarge: the document is (or is declared) larger than allowed.
	ErrTooLarge = errors.New("the request document is too large")
	// ErrBusy: the server holds as many unauthenticated documents as it
	// allows; the client should try again (S3's SlowDown, 503).
	ErrBusy = errors.New("too many request documents are being read; try again")
)

// budget is the bytes of documents a server may hold at once.
type budget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// docState is a request's share of its server's budget, given back when
// the request ends.
type docState struct {
	b     *budget
	mu    sync.Mutex
	taken int64
}

func (s *docState) take(n int64) bool {
	if !s.b.take(n) {
		return false
	}
	s.mu.Lock()
	s.taken += n
	s.mu.Unlock()
	return true
}

// give hands back n bytes taken, before the request ends.
func (s *docState) give(n int64) {
	s.mu.Lock()
	s.taken -= n
	s.mu.Unlock()
	s.b.give(n)
}

func (s *docState) release() {
	s.mu.Lock()
	n := s.taken
	s.taken = 0
	s.mu.Unlock()
	s.b.give(n)
}

type docKey struct{}

func withDocs(ctx context.Context, s *docState) context.Context {
	return context.WithValue(ctx, docKey{}, s)
}

// ReadDocument reads the whole body of r when it is a document that must be
// read before its signature can be checked (an S3 request's XML, a Query
// API's form): at most max bytes (a larger declared length is refused
// unread, ErrTooLarge), and within the budget of documents the server
// holds at once (Config.Documents, ErrBusy), so that clients who send
// documents and stall cannot hold the server's memory. A body that stops
// coming ends with ErrBodyTimeout, as any body does.
func ReadDocument(r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > max {
		return nil, ErrTooLarge
	}
	src := io.LimitReader(r.Body, max+1)
	if s, ok := r.Context().Value(docKey{}).(*docState); ok {
		src = &charged{r: src, s: s}
	}
	b, err := io.ReadAll(src)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}

// charged takes what it reads from the budget.
type charged struct {
	r io.Reader
	s *docState
}

func (c *charged) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.s.take(int64(n)) {
		return 0, ErrBusy
	}
	return n, err
}

// PeekDocument reads at most n bytes of r's body before its signature can
// be checked (a router looking for a Query request's Action) and puts them
// back in front of the rest, for the handler to read again. They are
// charged to the documents' budget (ErrBusy past it) while they are held:
// until the handler has read them back, or the request ends.
func PeekDocument(r *http.Request, n int64) ([]byte, error) {
	src := io.LimitReader(r.Body, n)
	s, _ := r.Context().Value(docKey{}).(*docState)
	if s != nil {
		src = &charged{r: src, s: s}
	}
	head, err := io.ReadAll(src)
	// A read that failed may have lost bytes (ErrBusy): the handler gets
	// the same error after the head, never a body with a hole in it.
	r.Body = &peeked{head: bytes.NewReader(head), held: int64(len(head)), s: s, err: err, ReadCloser: r.Body}
	return head, err
}

// peeked is a body whose first bytes were read already: they are read
// again first, and their charge given back once they have been.
type peeked struct {
	head *bytes.Reader
	held int64
	s    *docState
	err  error
	io.ReadCloser
}

func (p *peeked) Read(b []byte) (int, error) {
	if p.head.Len() == 0 {
		if p.err != nil {
			return 0, p.err
		}
		return p.ReadCloser.Read(b)
	}
	n, _ := p.head.Read(b)
	if p.head.Len() == 0 && p.s != nil {
		p.s.give(p.held)
		p.held = 0
	}
	return n, nil
}
