package tlssplit

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
)

// upperBound is a generous bound on what should take milliseconds.
const upperBound = 10 * time.Second

func TestSplit(t *testing.T) {
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain, tl := Split(ln, 200*time.Millisecond, nil)
	answer := func(what string) *http.Server {
		return &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (r.TLS != nil) != (what == "tls") {
				t.Errorf("%s side: TLS state %v", what, r.TLS != nil)
			}
			io.WriteString(w, what)
		})}
	}
	ps, ts := answer("plain"), answer("tls")
	go ps.Serve(plain)
	go ts.Serve(tls.NewListener(tl, &tls.Config{Certificates: []tls.Certificate{cert}}))
	defer ps.Close()
	defer ts.Close()
	addr := ln.Addr().String()

	get := func(c *http.Client, url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	c := &http.Client{Transport: tr, Timeout: upperBound}
	for i := 0; i < 3; i++ { // and again on kept-alive connections
		if got := get(c, "http://"+addr+"/"); got != "plain" {
			t.Fatalf("plain: %q", got)
		}
		if got := get(c, "https://"+addr+"/"); got != "tls" {
			t.Fatalf("tls: %q", got)
		}
	}

	// A client that connects and says nothing is closed once the sniff
	// deadline passes, without holding up the others.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if got := get(c, "http://"+addr+"/"); got != "plain" {
		t.Fatalf("plain beside a silent client: %q", got)
	}
	silent.SetReadDeadline(time.Now().Add(upperBound))
	if _, err := silent.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a silent client kept its connection")
	}

	// Closing one side closes the port.
	tr.CloseIdleConnections()
	plain.Close()
	if _, err := tl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, upperBound); err == nil {
		c.Close()
		t.Fatal("the port still accepts after close")
	}
}
