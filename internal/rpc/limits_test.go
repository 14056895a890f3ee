package rpc

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/httplimit"
)

// upperBound is how long a test waits for what must happen long before.
const upperBound = 10 * time.Second

// serveLimited serves the test API the way a role does: NewServer with
// limits lim, on a listener from httplimit.Conns, over mutual TLS.
func serveLimited(t *testing.T, lim httplimit.Config) (addr string, client *tls.Config) {
	t.Helper()
	ca := testCA(t)
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ca, cert, true, testMux(t), lim, slog.New(slog.DiscardHandler))
	srv.ErrorLog.SetOutput(io.Discard) // cut-off handshakes are the point
	go Serve(srv, httplimit.NewConns(lim, nil).Listener(ln))
	t.Cleanup(func() { srv.Close() })
	ccert, err := ca.IssueClient("test")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), ca.ClientTLSConfig(ccert)
}

var fastLimits = httplimit.Config{
	PerAddr:       2,
	Total:         100,
	HeaderTimeout: 2 * time.Second, // a TLS handshake on a loaded machine
	IdleTimeout:   3 * time.Second, // longer than making the other connections
	BodyStall:     300 * time.Millisecond,
	BodyGrace:     300 * time.Millisecond,
	BodyMinRate:   100,
}

func TestStalledPeerHandshakeCutOff(t *testing.T) {
	addr, _ := serveLimited(t, fastLimits)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Connected, never says hello.
	c.SetReadDeadline(time.Now().Add(upperBound))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a peer that never starts its TLS handshake keeps its connection")
	}
}

func TestStalledCallBodyTimedOut(t *testing.T) {
	addr, tc := serveLimited(t, fastLimits)
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{\"text\":")
	c.SetReadDeadline(time.Now().Add(upperBound))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled call: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), CodeTimeout) {
		t.Fatalf("answer %d %s", resp.StatusCode, b)
	}
}

func TestIdlePeerClosedAndCapped(t *testing.T) {
	addr, tc := serveLimited(t, fastLimits)
	call := func(c *tls.Conn, br *bufio.Reader) error {
		fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 13\r\n\r\n{\"text\":\"hi\"}")
		c.SetReadDeadline(time.Now().Add(upperBound))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	var conns []*tls.Conn
	for i := 0; i < fastLimits.PerAddr; i++ {
		c, err := tls.Dial("tcp", addr, tc)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := call(c, bufio.NewReader(c)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// One more from the same address is refused...
	if c, err := tls.Dial("tcp", addr, tc); err == nil {
		if err := call(c, bufio.NewReader(c)); err == nil {
			t.Fatal("a peer over its connection cap was served")
		}
		c.Close()
	}
	// ...and the idle ones are closed by the server.
	c := conns[0]
	c.SetReadDeadline(time.Now().Add(upperBound))
	if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("an idle internal connection stayed open")
	}
}
