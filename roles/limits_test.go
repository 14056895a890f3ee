package roles

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/httplimit"
)

// upperBound is how long a test waits for what must happen long before.
const upperBound = 15 * time.Second

// startCloud runs the cloud controller and Walrus in process, their
// listeners bound with limits lim, and returns the edge's port.
func startCloud(t *testing.T, lim httplimit.Config) int {
	t.Helper()
	home := t.TempDir()
	cfg := conf.Defaults()
	cfg.Home = home
	cfg.WalrusBucketsPath = filepath.Join(home, "buckets")
	cfg.InstancePath = filepath.Join(home, "instances")
	cfg.CloudPort, cfg.MetadataPort = 0, 0
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		done <- Run(ctx, Options{Roles: Set{CLC: true, Walrus: true}, Conf: cfg, Log: log, Ready: ready, Limits: lim})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case a := <-ready:
		return a.(*net.TCPAddr).Port
	case err := <-done:
		t.Fatalf("cloud did not start: %v", err)
	case <-time.After(upperBound):
		t.Fatal("cloud did not start")
	}
	return 0
}

var testLimits = httplimit.Config{
	PerAddr:       4,
	Total:         100,
	HeaderTimeout: 5 * time.Second,
	IdleTimeout:   5 * time.Second, // longer than making the other connections
	BodyStall:     300 * time.Millisecond,
	BodyGrace:     300 * time.Millisecond,
	BodyMinRate:   100,
}

func dialFrom(t *testing.T, from string, port int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: upperBound}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes raw on c and reads the answer.
func roundTrip(c net.Conn, br *bufio.Reader, raw string) (*http.Response, []byte, error) {
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, nil, err
	}
	c.SetReadDeadline(time.Now().Add(upperBound))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// TestStalledBodiesTimedOut: a body declared and never sent gets each
// API's RequestTimeout in its own format, on the public listener.
func TestStalledBodiesTimedOut(t *testing.T) {
	port := startCloud(t, testLimits)
	for _, tc := range []struct {
		name, raw string
		code      func([]byte) string
	}{
		{"s3", "POST /hb-up?delete HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\nContent-Length: 2000000\r\n\r\n<Delete>",
			func(b []byte) string {
				var doc struct {
					XMLName xml.Name `xml:"Error"`
					Code    string
				}
				xml.Unmarshal(b, &doc)
				return doc.Code
			}},
		{"ec2", "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\nAction=Descr",
			func(b []byte) string {
				var doc struct {
					XMLName xml.Name `xml:"Response"`
					Code    string   `xml:"Errors>Error>Code"`
				}
				xml.Unmarshal(b, &doc)
				return doc.Code
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", port)
			res, b, err := roundTrip(c, bufio.NewReader(c), tc.raw)
			if err != nil {
				t.Fatalf("no answer to a stalled body: %v", err)
			}
			if res.StatusCode != http.StatusBadRequest || tc.code(b) != "RequestTimeout" || !res.Close {
				t.Fatalf("answer %d (close %v) %s", res.StatusCode, res.Close, b)
			}
		})
	}
}

// TestConnectionLimits: one address cannot hold more than its share of
// connections while another still gets in, and idle ones are closed.
func TestConnectionLimits(t *testing.T) {
	port := startCloud(t, testLimits)
	get := "GET /services/Eucalyptus?Action=DescribeRegions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	var held []net.Conn
	for i := 0; i < testLimits.PerAddr; i++ {
		c := dialFrom(t, "127.0.0.1", port)
		if _, _, err := roundTrip(c, bufio.NewReader(c), get); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		held = append(held, c)
	}
	extra := dialFrom(t, "127.0.0.1", port)
	if res, _, err := roundTrip(extra, bufio.NewReader(extra), get); err == nil {
		t.Fatalf("connection %d from one address was answered (%d)", testLimits.PerAddr+1, res.StatusCode)
	}
	other := dialFrom(t, "127.0.0.2", port)
	if _, _, err := roundTrip(other, bufio.NewReader(other), get); err != nil {
		t.Fatalf("another address was refused: %v", err)
	}
	// The held connections idle: the server closes them.
	for i, c := range held {
		c.SetReadDeadline(time.Now().Add(upperBound))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("idle connection %d stayed open", i+1)
		}
	}
}
