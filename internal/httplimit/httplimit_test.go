package httplimit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fast are limits small enough for tests to run in seconds.
var fast = Config{
	PerAddr:       3,
	Total:         100,
	HeaderTimeout: 2 * time.Second,
	IdleTimeout:   300 * time.Millisecond,
	BodyStall:     400 * time.Millisecond,
	BodyGrace:     400 * time.Millisecond,
	BodyMinRate:   200,
}

// upperBound is how long a test waits for something that must happen
// long before: a generous bound, never a measurement.
const upperBound = 10 * time.Second

// echoBody answers with the length of the body it read, or 408 and the
// error when the read failed.
func echoBody(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusRequestTimeout)
		fmt.Fprintf(w, "timeout=%v %v", errors.Is(err, ErrBodyTimeout), err)
		return
	}
	fmt.Fprintf(w, "read %d", len(b))
}

// start serves h with limits c on 127.0.0.1 (all of 127/8 reaches it).
func start(t *testing.T, c Config, h http.HandlerFunc) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := c.Server(h, log.New(io.Discard, "", 0))
	go srv.Serve(NewConns(c, nil).Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// dial connects from the loopback address from.
func dial(t *testing.T, from string, port int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: upperBound}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answer reads one response from c; the error is what ended the
// connection instead.
func answer(c net.Conn, br *bufio.Reader) (*http.Response, string, error) {
	c.SetReadDeadline(time.Now().Add(upperBound))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestStalledBodyTimesOut(t *testing.T) {
	port := start(t, fast, echoBody)
	c := dial(t, "127.0.0.1", port)
	// A body declared and never sent, as in the slow-body attack.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n<Delete>")
	resp, body, err := answer(c, bufio.NewReader(c))
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || !strings.HasPrefix(body, "timeout=true") {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Fatal("the connection of a body cut short stays open")
	}
}

func TestTrickledBodyCutOff(t *testing.T) {
	port := start(t, fast, echoBody)
	c := dial(t, "127.0.0.1", port)
	// A byte every 100 ms is well within the stall limit each time, but
	// 10 bytes/s is under the 200 bytes/s floor: cut off after the grace,
	// long before the 2000 bytes are in (200 s).
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
	done := make(chan struct{})
	defer close(done)
	go func() {
		for i := 0; i < 2000; i++ {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	resp, body, err := answer(c, bufio.NewReader(c))
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("answer %d %q", resp.StatusCode, body)
	}
}

func TestSlowLiveBodyCompletes(t *testing.T) {
	lim := fast
	// Limits a loaded test machine cannot trip between two writes.
	lim.BodyStall, lim.BodyGrace = 1500*time.Millisecond, 1500*time.Millisecond
	port := start(t, lim, echoBody)
	c := dial(t, "127.0.0.1", port)
	// 100 bytes every 100 ms: 1000 bytes/s, over the floor, for 4 s,
	// longer than the stall and grace limits.
	const n = 40
	io.WriteString(c, fmt.Sprintf("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n*100))
	go func() {
		for i := 0; i < n; i++ {
			time.Sleep(100 * time.Millisecond)
			if _, err := c.Write([]byte(strings.Repeat("y", 100))); err != nil {
				return
			}
		}
	}()
	resp, body, err := answer(c, bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body != fmt.Sprintf("read %d", n*100) {
		t.Fatalf("a slow but live upload was refused: %d %q", resp.StatusCode, body)
	}
	if resp.Close {
		t.Fatal("the connection of a body read in full is not kept alive")
	}
}

func TestIdleKeepAliveClosed(t *testing.T) {
	port := start(t, fast, echoBody)
	c := dial(t, "127.0.0.1", port)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, _, err := answer(c, br); err != nil {
		t.Fatal(err)
	}
	// Kept alive, then idle: the server must close it.
	c.SetReadDeadline(time.Now().Add(upperBound))
	if n, err := br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an idle keep-alive connection stayed open (read %d, %v)", n, err)
	}
}

func TestUnreadBodyClosesConnection(t *testing.T) {
	// A handler that refuses a body it finds short after a few bytes.
	port := start(t, fast, func(w http.ResponseWriter, r *http.Request) {
		io.ReadFull(r.Body, make([]byte, 5))
		http.Error(w, "short body", http.StatusBadRequest)
	})
	c := dial(t, "127.0.0.1", port)
	br := bufio.NewReader(c)
	// The body declares 20 bytes; what follows the first 5 must not be
	// read as the body's end and then as a second request.
	io.WriteString(c, "PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nhello"+
		"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _, err := answer(c, br)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("answer %d, close %v", resp.StatusCode, resp.Close)
	}
	if resp, body, err := answer(c, br); err == nil {
		t.Fatalf("the rest of a refused body was answered as a request: %d %q", resp.StatusCode, body)
	}
}

// request sends a GET on c and reads the answer.
func request(c net.Conn, br *bufio.Reader) error {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, _, err := answer(c, br)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func TestPerAddressCap(t *testing.T) {
	c := fast
	c.IdleTimeout = time.Minute
	port := start(t, c, echoBody)
	var held []net.Conn
	for i := 0; i < c.PerAddr; i++ {
		conn := dial(t, "127.0.0.1", port)
		if err := request(conn, bufio.NewReader(conn)); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		held = append(held, conn)
	}
	extra := dial(t, "127.0.0.1", port)
	if err := request(extra, bufio.NewReader(extra)); err == nil {
		t.Fatalf("connection %d from one address was served (cap %d)", c.PerAddr+1, c.PerAddr)
	}
	other := dial(t, "127.0.0.2", port)
	if err := request(other, bufio.NewReader(other)); err != nil {
		t.Fatalf("another address was refused while one is at its cap: %v", err)
	}
	// A connection closed gives its place back.
	held[0].Close()
	deadline := time.Now().Add(upperBound)
	for {
		again := dial(t, "127.0.0.1", port)
		err := request(again, bufio.NewReader(again))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection's place was not given back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTotalCapWaits(t *testing.T) {
	c := fast
	c.PerAddr, c.Total, c.IdleTimeout = 0, 2, time.Minute
	port := start(t, c, echoBody)
	a := dial(t, "127.0.0.1", port)
	if err := request(a, bufio.NewReader(a)); err != nil {
		t.Fatal(err)
	}
	b := dial(t, "127.0.0.2", port)
	if err := request(b, bufio.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	third := dial(t, "127.0.0.3", port)
	br := bufio.NewReader(third)
	io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection over the total cap was served (%v)", err)
	}
	a.Close()
	resp, _, err := answer(third, br)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting connection was not served once one closed: %v", err)
	}
}

func TestHeaderTimeout(t *testing.T) {
	c := fast
	c.HeaderTimeout = 300 * time.Millisecond
	port := start(t, c, echoBody)
	conn := dial(t, "127.0.0.1", port)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(upperBound))
	b, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled header kept its connection (%q)", b)
	}
}

func TestDefaults(t *testing.T) {
	d := Defaults()
	if d.PerAddr < 2 || d.Total < d.PerAddr || d.BodyStall <= 0 || d.IdleTimeout <= 0 || d.HeaderTimeout <= 0 || d.BodyMinRate <= 0 {
		t.Fatalf("defaults %+v", d)
	}
	// The acceptance check waits 90 s for a stalled body's answer.
	if d.BodyStall >= 90*time.Second || d.BodyGrace >= 90*time.Second {
		t.Fatalf("a stalled body waits too long: %+v", d)
	}
}

func TestDocumentsBudget(t *testing.T) {
	c := fast
	c.Documents, c.PerAddr = 100, 0
	hold := make(chan struct{})
	port := start(t, c, func(w http.ResponseWriter, r *http.Request) {
		b, err := ReadDocument(r, 80)
		switch {
		case errors.Is(err, ErrBusy):
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		case errors.Is(err, ErrTooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/hold" {
			<-hold // a request still working on its document holds it
		}
		fmt.Fprintf(w, "read %d", len(b))
	})
	post := func(path string, n int) (net.Conn, *bufio.Reader) {
		conn := dial(t, "127.0.0.1", port)
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, n, strings.Repeat("d", n))
		return conn, bufio.NewReader(conn)
	}
	status := func(conn net.Conn, br *bufio.Reader) int {
		resp, _, err := answer(conn, br)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	held, heldR := post("/hold", 70)
	// Wait until the held request has its document (it has no answer yet).
	deadline := time.Now().Add(upperBound)
	for {
		conn, br := post("/", 40)
		s := status(conn, br)
		if s == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("documents over the budget were read (status %d)", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if conn, br := post("/", 81); status(conn, br) != http.StatusRequestEntityTooLarge {
		t.Fatal("a document over its own limit was read")
	}
	close(hold)
	if s := status(held, heldR); s != http.StatusOK {
		t.Fatalf("held request: %d", s)
	}
	// Its share is given back when it ends.
	if conn, br := post("/", 80); status(conn, br) != http.StatusOK {
		t.Fatal("the budget was not given back")
	}
}

// bigFile is a sparse file of n bytes (sent with sendfile, never written).
func bigFile(t *testing.T, n int64) string {
	p := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUntakenAnswerGivenUp: a client that asks for a large answer and
// takes none of it does not hold the connection (and the handler) forever,
// whether the answer is written or sent from a file.
func TestUntakenAnswerGivenUp(t *testing.T) {
	c := fast
	c.SendStall = 300 * time.Millisecond
	file := bigFile(t, 256<<20)
	ended := make(chan error, 2)
	port := start(t, c, func(w http.ResponseWriter, r *http.Request) {
		var err error
		if r.URL.Path == "/file" {
			f, ferr := os.Open(file)
			if ferr != nil {
				ended <- ferr
				return
			}
			defer f.Close()
			w.Header().Set("Content-Length", fmt.Sprint(256<<20))
			_, err = io.Copy(w, &io.LimitedReader{R: f, N: 256 << 20})
		} else {
			chunk := make([]byte, 1<<20)
			for i := 0; i < 256 && err == nil; i++ {
				_, err = w.Write(chunk)
			}
		}
		ended <- err
	})
	for _, path := range []string{"/file", "/write"} {
		conn := dial(t, "127.0.0.1", port)
		io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		// ...and never reads.
		select {
		case err := <-ended:
			if err == nil {
				t.Fatalf("%s: 256 MiB were taken by a client that read none", path)
			}
		case <-time.After(upperBound):
			t.Fatalf("%s: a client taking none of its answer holds the handler", path)
		}
	}
}

func TestSlowReaderTakesWholeAnswer(t *testing.T) {
	c := fast
	c.SendStall = 1500 * time.Millisecond
	const size = 16 << 20
	file := bigFile(t, size)
	port := start(t, c, func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, &io.LimitedReader{R: f, N: size})
	})
	conn := dial(t, "127.0.0.1", port)
	// A small window, so that the kernel's buffers do not take the
	// answer in the client's place.
	conn.(*net.TCPConn).SetReadBuffer(128 << 10)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(upperBound))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 128 KiB every 30 ms (about 4 s in all, longer than the stall limit):
	// slower than the server could send, but live.
	var got int64
	buf := make([]byte, 128<<10)
	for {
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err != nil {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	if got != size {
		t.Fatalf("a slow reader got %d of %d bytes", got, size)
	}
}
