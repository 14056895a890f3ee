package nbd

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
)

// TestMaxHandshakesPerHost: connections that never finish their
// handshake take at most MaxHandshakesPerHost places from one address, so
// an unauthenticated client cannot hold every MaxConns slot; connections
// past their handshake do not count.
func TestMaxHandshakesPerHost(t *testing.T) {
	_, f := newImage(t, 1<<20)
	s := &Server{MaxHandshakesPerHost: 2,
		Lookup: func(context.Context, *tls.ConnectionState, string) (Export, error) { return noClose{f}, nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	addr := ln.Addr().String()

	// Served clients, more than the limit: past their handshake.
	for range 3 {
		c, err := Dial(context.Background(), "tcp", addr, nil, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	idle1, idle2 := dialRaw(t, addr), dialRaw(t, addr)
	if c, err := Dial(context.Background(), "tcp", addr, nil, "x"); err == nil {
		c.Close()
		t.Fatal("a third connection in its handshake from one address was served")
	}
	idle1.nc.Close()
	idle2.nc.Close()
	// The server notices the hang-ups when it reads: until then, retry.
	for i := 0; ; i++ {
		c, err := Dial(context.Background(), "tcp", addr, nil, "x")
		if err == nil {
			c.Close()
			break
		}
		if i == 1000 {
			t.Fatalf("still refused after the idle connections left: %v", err)
		}
	}
}
