package walrus

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
)

// chunkedPut sends a PUT with a signed aws-chunked body
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), as the Java and Go SDKs do.
// tamper, when set, changes the body after it was signed.
func (e *testEnv) chunkedPut(c cred, path string, data []byte, chunk int, tamper func([]byte) []byte, headers ...string) resp {
	e.t.Helper()
	amzDate := time.Now().UTC().Format("20060102T150405Z")
	r, err := http.NewRequest("PUT", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", awsauth.StreamingPayload)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	seed, signed, scope := v4Sign(c, r, amzDate, awsauth.StreamingPayload)
	r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", c.akid, scope, signed, seed))
	key := v4Key(c, amzDate[:8])
	var body bytes.Buffer
	prev := seed
	for off := 0; ; off += chunk {
		end := min(off+chunk, len(data))
		part := data[off:end]
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + awsauth.EmptySHA256 + "\n" + sha256Hex(part)
		prev = hex.EncodeToString(hmacSHA256(key, sts))
		fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", len(part), prev)
		body.Write(part)
		body.WriteString("\r\n")
		if len(part) == 0 {
			break
		}
		if end == len(data) {
			off = len(data) - chunk // the final, empty chunk next
		}
	}
	b := body.Bytes()
	if tamper != nil {
		b = tamper(b)
	}
	r.Body = http.NoBody
	if len(b) > 0 {
		r.Body = ioNopCloser{bytes.NewReader(b)}
	}
	r.ContentLength = int64(len(b))
	return e.send(r)
}

type ioNopCloser struct{ *bytes.Reader }

func (ioNopCloser) Close() error { return nil }

func TestChunkedUpload(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/chunks", nil), 200)
	data := bytes.Repeat([]byte("0123456789"), 20000) // 200 kB in 64 kB chunks
	r := e.must(e.chunkedPut(e.alice, "/chunks/o", data, 64<<10, nil, "Content-Type", "text/plain"), 200)
	s := md5sum(data)
	if r.header.Get("ETag") != quoteETag(hex.EncodeToString(s[:])) {
		t.Errorf("etag %s", r.header.Get("ETag"))
	}
	r = e.must(e.do(a, "GET", "/chunks/o", nil), 200)
	if !bytes.Equal(r.body, data) || r.header.Get("Content-Encoding") != "" || r.header.Get("Content-Type") != "text/plain" {
		t.Errorf("read back %d bytes, headers %v", len(r.body), r.header)
	}
	// A chunk altered in flight fails its signature; the object stays.
	flip := func(b []byte) []byte {
		i := bytes.Index(b, []byte("\r\n")) + 2 + 100
		b[i] ^= 1
		return b
	}
	e.wantErr(e.chunkedPut(e.alice, "/chunks/o", bytes.Repeat([]byte("x"), len(data)), 64<<10, flip), 403, "SignatureDoesNotMatch")
	// A body cut short is incomplete; the object stays.
	cut := func(b []byte) []byte { return b[:len(b)/2] }
	r = e.chunkedPut(e.alice, "/chunks/o", bytes.Repeat([]byte("y"), len(data)), 64<<10, cut)
	if r.status != 400 || r.code() != "IncompleteBody" {
		t.Errorf("truncated chunked body: %v", r)
	}
	// The decoded length must be what x-amz-decoded-content-length said.
	r = e.chunkedPut(e.alice, "/chunks/o", []byte("short"), 64<<10, nil, "X-Amz-Decoded-Content-Length", "6")
	if r.status == 200 {
		t.Errorf("wrong decoded length accepted")
	}
	if r := e.must(e.do(a, "GET", "/chunks/o", nil), 200); !bytes.Equal(r.body, data) {
		t.Error("a refused chunked upload changed the object")
	}
}
