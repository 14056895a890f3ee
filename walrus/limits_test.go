package walrus

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/httplimit"
)

// diskBytes is the size of every file under dir: blobs and the temporary
// files of writes in progress.
func diskBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestChunkedWithoutDecodedLengthNeverStored: an aws-chunked upload that
// does not say its decoded length is refused as S3 does (411
// MissingContentLength) before any of it is stored; before, a 30 MiB body
// went to disk in full in a bucket limited to 1 MB, and only then was
// refused.
func TestChunkedWithoutDecodedLengthNeverStored(t *testing.T) {
	e := newEnv(t, func(c *conf.Config) { c.WalrusMaxBucketSizeMB = 1 })
	e.must(e.do(v4(e.alice, ""), "PUT", "/capped", nil), 200)

	const chunk, first, total = 64 << 10, 4 << 20, 8 << 20
	amzDate := time.Now().UTC().Format("20060102T150405Z")
	pr, pw := io.Pipe()
	r, err := http.NewRequest("PUT", e.srv.URL+"/capped/big", pr)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", awsauth.StreamingPayload)
	r.Header.Set("Content-Encoding", "aws-chunked")
	seed, signed, scope := v4Sign(e.alice, r, amzDate, awsauth.StreamingPayload)
	r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", e.alice.akid, scope, signed, seed))
	key := v4Key(e.alice, amzDate[:8])
	// Every chunk has the same size, so the encoded length is known.
	data := make([]byte, chunk)
	header := func(n int, sig string) string { return fmt.Sprintf("%x;chunk-signature=%s\r\n", n, sig) }
	r.ContentLength = int64(total/chunk)*int64(len(header(chunk, seed))+chunk+2) + int64(len(header(0, seed))+2)

	midway, resume := make(chan struct{}), make(chan struct{})
	go func() {
		defer pw.Close()
		prev := seed
		sign := func(part []byte) string {
			sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + awsauth.EmptySHA256 + "\n" + sha256Hex(part)
			prev = hex.EncodeToString(hmacSHA256(key, sts))
			return prev
		}
		for sent := 0; sent < total; sent += chunk {
			if sent == first {
				close(midway)
				<-resume
			}
			if _, err := io.WriteString(pw, header(chunk, sign(data))+string(data)+"\r\n"); err != nil {
				return // the server answered without reading: the point
			}
		}
		io.WriteString(pw, header(0, sign(nil))+"\r\n")
	}()
	answered := make(chan resp, 1)
	go func() {
		res, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			answered <- resp{status: -1, body: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answered <- resp{status: res.StatusCode, header: res.Header, body: b}
	}()

	limit := e.cfg.WalrusMaxBucketSizeMB << 20
	var got resp
	deadline := time.After(upperBound)
wait:
	for {
		select {
		case got = <-answered:
			break wait
		case <-deadline:
			t.Fatal("no answer to an aws-chunked upload without its decoded length")
		default:
		}
		if n := diskBytes(t, e.cfg.WalrusBucketsPath); n > limit {
			close(resume)
			t.Fatalf("%d bytes of an upload over the bucket's %d-byte limit reached the disk", n, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-midway:
		close(resume)
	default:
	}
	e.wantErr(got, http.StatusLengthRequired, "MissingContentLength")
	if n := diskBytes(t, e.cfg.WalrusBucketsPath); n != 0 {
		t.Errorf("%d bytes left on disk", n)
	}
	e.wantErr(e.do(v4(e.alice, ""), "GET", "/capped/big", nil), 404, "NoSuchKey")
}

const upperBound = 10 * time.Second

// limitedServer serves e's Walrus behind the listener limits of a role,
// with timeouts short enough for a test.
func limitedServer(t *testing.T, e *testEnv) string {
	lim := httplimit.Config{HeaderTimeout: 5 * time.Second, IdleTimeout: time.Second,
		BodyStall: 300 * time.Millisecond, BodyGrace: 300 * time.Millisecond, BodyMinRate: 100}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = lim.Server(e.w, log.New(io.Discard, "", 0))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// exchange sends raw on a new connection to addr, as a client that then
// stops sending, and reads the one answer and its body.
func exchange(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, raw)
	c.SetReadDeadline(time.Now().Add(upperBound))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to %.60q: %v", raw, err)
	}
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestStalledXMLBodyTimedOut: a DeleteObjects body declared and never
// sent (read before the signature is checked) ends with S3's
// RequestTimeout, in S3's XML, instead of holding the connection and the
// buffer for as long as the client likes.
func TestStalledXMLBodyTimedOut(t *testing.T) {
	e := newEnv(t)
	e.must(e.do(v4(e.alice, ""), "PUT", "/hb-up", nil), 200)
	addr := limitedServer(t, e)
	res, b := exchange(t, addr, "POST /hb-up?delete HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/xml\r\nContent-Length: 2000000\r\n\r\n<Delete>")
	got := resp{status: res.StatusCode, header: res.Header, body: b}
	e.wantErr(got, http.StatusBadRequest, "RequestTimeout")
	if !strings.Contains(string(b), "not read from or written to within the timeout period") || !res.Close {
		t.Errorf("answer %s, close %v", b, res.Close)
	}
}

// TestOversizedXMLBodyRefusedUnread: a document declared larger than any
// S3 request document is refused from its header, before the signature
// check, without reading it.
func TestOversizedXMLBodyRefusedUnread(t *testing.T) {
	e := newEnv(t)
	e.must(e.do(v4(e.alice, ""), "PUT", "/hb-up", nil), 200)
	addr := limitedServer(t, e)
	res, b := exchange(t, addr, fmt.Sprintf("POST /hb-up?delete HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n<Delete>", addr, maxXMLBody+1))
	e.wantErr(resp{status: res.StatusCode, body: b}, http.StatusBadRequest, "MaxMessageLengthExceeded")
}

// TestStalledPostFormTimedOut: a browser POST upload whose form stops
// coming before the file ends with RequestTimeout, as any stalled body.
func TestStalledPostFormTimedOut(t *testing.T) {
	e := newEnv(t)
	e.must(e.do(v4(e.alice, ""), "PUT", "/hb-up", nil), 200)
	addr := limitedServer(t, e)
	res, b := exchange(t, addr, "POST /hb-up HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk")
	e.wantErr(resp{status: res.StatusCode, body: b}, http.StatusBadRequest, "RequestTimeout")
}

// TestStalledPutTimedOut: an object upload that stops coming ends with
// RequestTimeout and leaves nothing on disk (its temporary file goes).
func TestStalledPutTimedOut(t *testing.T) {
	e := newEnv(t)
	e.must(e.do(v4(e.alice, ""), "PUT", "/hb-up", nil), 200)
	addr := limitedServer(t, e)
	r, err := http.NewRequest("PUT", "http://"+addr+"/hb-up/stalled", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = 1 << 20
	v4(e.alice, awsauth.UnsignedPayload)(r, nil)
	raw := fmt.Sprintf("PUT /hb-up/stalled HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", addr, r.ContentLength)
	for k, vs := range r.Header {
		raw += fmt.Sprintf("%s: %s\r\n", k, vs[0])
	}
	res, b := exchange(t, addr, raw+"\r\n"+strings.Repeat("x", 10000))
	e.wantErr(resp{status: res.StatusCode, body: b}, http.StatusBadRequest, "RequestTimeout")
	if n := diskBytes(t, e.cfg.WalrusBucketsPath); n != 0 {
		t.Errorf("%d bytes of a stalled upload left on disk", n)
	}
	e.wantErr(e.do(v4(e.alice, ""), "GET", "/hb-up/stalled", nil), 404, "NoSuchKey")
}
