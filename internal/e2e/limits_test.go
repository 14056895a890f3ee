package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestConnectionCapPerAddress: the built binary, with its default limits,
// refuses a client address more connections than its cap while another
// address still gets answers (loopback has the whole 127/8).
func TestConnectionCapPerAddress(t *testing.T) {
	c := Start(t, "clc,walrus")
	get := func(from string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
		conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port))
		if err != nil {
			return nil, err
		}
		conn.SetDeadline(time.Now().Add(60 * time.Second))
		fmt.Fprintf(conn, "GET /services/Eucalyptus?Action=DescribeRegions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			return nil, err
		}
		io.Copy(io.Discard, res.Body)
		return conn, nil // kept alive: it holds its place
	}
	held := 0
	for ; ; held++ {
		conn, err := get("127.0.0.1")
		if err != nil {
			break
		}
		defer conn.Close()
		if held > 1000 {
			t.Fatal("one address holds more than 1000 connections")
		}
	}
	if held < 16 {
		t.Fatalf("only %d connections from one address were served", held)
	}
	conn, err := get("127.0.0.2")
	if err != nil {
		t.Fatalf("with 127.0.0.1 at its cap (%d), 127.0.0.2 was refused: %v\n%s", held, err, c.Log())
	}
	conn.Close()
	t.Logf("one address was served %d connections", held)
}
