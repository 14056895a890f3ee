package nbd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// lockedBuffer is a bytes.Buffer a logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// failingWrites is an export whose disk is full.
type failingWrites struct{ Export }

func (failingWrites) WriteAt([]byte, int64) (int, error) { return 0, syscall.ENOSPC }

// TestExportNameNotLogged: an export name is a secret (the storage
// controller's names carry the nonce that lets a node in), so nothing the
// server logs at info level or above holds it: not a failed lookup, not a
// failed request, not a Drop.
func TestExportNameNotLogged(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	_, f := newImage(t, 1<<20)
	var logs lockedBuffer
	s := &Server{
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Lookup: func(_ context.Context, _ *tls.ConnectionState, name string) (Export, error) {
			if strings.HasPrefix(name, "broken/") {
				return nil, errors.New("the disk is on fire")
			}
			if strings.HasPrefix(name, "full/") {
				return failingWrites{f}, nil
			}
			return noClose{f}, nil
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())

	if c, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil, "broken/"+secret); err == nil {
		c.Close()
		t.Fatal("a failing lookup let the client in")
	}
	full, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil, "full/"+secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := full.WriteAt(make([]byte, 512), 0); err == nil {
		t.Fatal("a failing write succeeded")
	}
	full.Close()
	c, err := Dial(context.Background(), "tcp", ln.Addr().String(), nil, "vol-1/"+secret)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s.Drop("vol-1/" + secret)
	if logs.String() == "" {
		t.Fatal("nothing logged: the test sees nothing")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("an export name was logged:\n%s", logs.String())
	}
}
