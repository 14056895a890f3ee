package awsauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// exampleResult is what Verify returns for the S3 documentation's chunked
// upload (see TestSigV4S3Chunked).
func exampleResult(payloadHash string) Result {
	return Result{
		AccessKeyID: s3Key,
		Version:     4,
		Region:      "us-east-1",
		Service:     "s3",
		Date:        "20130524T000000Z",
		Signature:   "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		SigningKey:  signingKey(s3Secret, "20130524", "us-east-1", "s3"),
		PayloadHash: payloadHash,
	}
}

// chunkSigner encodes aws-chunked bodies for the tests, written from the
// S3 documentation independently of ChunkedReader.
type chunkSigner struct {
	res  Result
	prev string
}

func (s *chunkSigner) sign(prefix, prev, hashed string) string {
	scope := s.res.Date[:8] + "/" + s.res.Region + "/" + s.res.Service + "/aws4_request"
	return hex.EncodeToString(hmacSHA256(s.res.SigningKey, prefix+"\n"+s.res.Date+"\n"+scope+"\n"+prev+"\n"+hashed))
}

func (s *chunkSigner) chunk(data []byte) string {
	if s.prev == "" {
		s.prev = s.res.Signature
	}
	h := sha256.Sum256(data)
	s.prev = s.sign("AWS4-HMAC-SHA256-PAYLOAD", s.prev, EmptySHA256+"\n"+hex.EncodeToString(h[:]))
	return fmt.Sprintf("%x;chunk-signature=%s\r\n%s\r\n", len(data), s.prev, data)
}

// final is the zero-length chunk without the CRLF that follows it.
func (s *chunkSigner) final() string {
	c := s.chunk(nil)
	return strings.TrimSuffix(c, "\r\n")
}

func (s *chunkSigner) trailer(lines ...string) string {
	canon := ""
	for _, l := range lines {
		canon += l + "\n"
	}
	h := sha256.Sum256([]byte(canon))
	sig := s.sign("AWS4-HMAC-SHA256-TRAILER", s.prev, hex.EncodeToString(h[:]))
	return strings.ReplaceAll(canon, "\n", "\r\n") + "x-amz-trailer-signature:" + sig + "\r\n\r\n"
}

func TestChunkSignerMatchesDocumentation(t *testing.T) {
	s := &chunkSigner{res: exampleResult(StreamingPayload)}
	_, _, want := chunkedExample(t)
	a := bytes.Repeat([]byte{'a'}, 65536+1024)
	if got := s.chunk(a[:65536]) + s.chunk(a[65536:]) + s.final() + "\r\n"; got != want {
		t.Fatal("test signer disagrees with the documented example")
	}
}

func decodeAll(body string, res Result) ([]byte, *ChunkedReader, error) {
	cr := NewChunkedReader(strings.NewReader(body), res)
	got, err := io.ReadAll(cr)
	c, _ := cr.(*ChunkedReader)
	return got, c, err
}

func TestChunkedSigned(t *testing.T) {
	_, data, body := chunkedExample(t)
	res := exampleResult(StreamingPayload)

	// One byte at a time, and with the final CRLF missing.
	got, err := io.ReadAll(iotest.OneByteReader(NewChunkedReader(iotest.HalfReader(strings.NewReader(body)), res)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("one byte at a time: %d bytes, %v", len(got), err)
	}
	if got, _, err := decodeAll(strings.TrimSuffix(body, "\r\n"), res); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("without final CRLF: %d bytes, %v", len(got), err)
	}

	bad := map[string]struct {
		body string
		kind Kind
	}{
		"data altered":          {strings.Replace(body, "aaaa", "aaab", 1), KindBadSignature},
		"signature altered":     {strings.Replace(body, "ad80c730", "ad80c731", 1), KindBadSignature},
		"final signature":       {strings.Replace(body, "b6c6ea8a", "b6c6ea8b", 1), KindBadSignature},
		"wrong seed":            {body, KindBadSignature}, // see below
		"truncated in data":     {body[:1000], KindMalformed},
		"truncated at boundary": {body[:65626], KindMalformed},
		"no final chunk":        {body[:65626+1112], KindMalformed},
		"trailing data":         {body + "x", KindMalformed},
		"no signature":          {strings.Replace(body, ";chunk-signature=ad80", ";chunk-sig=ad80", 1), KindMalformed},
		"bad size":              {"zz" + body[5:], KindMalformed},
		"missing CRLF":          {strings.Replace(body, "a\r\n400;", "aXX400;", 1), KindMalformed},
		"long line":             {strings.Repeat("0", 5000) + body, KindMalformed},
		"huge chunk":            {"ffffffffff;chunk-signature=" + strings.Repeat("0", 64) + "\r\n", KindMalformed},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			r := res
			if name == "wrong seed" {
				r.Signature = strings.Repeat("0", 64)
			}
			_, _, err := decodeAll(tc.body, r)
			wantKind(t, err, tc.kind)
		})
	}

	// Chunks cannot be reordered or dropped: the chain breaks.
	s := &chunkSigner{res: res}
	c1, c2 := s.chunk([]byte("first")), s.chunk([]byte("second"))
	fin := s.final() + "\r\n"
	for name, b := range map[string]string{"reordered": c2 + c1 + fin, "dropped": c1 + fin} {
		if _, _, err := decodeAll(b, res); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestChunkedSignedTrailer(t *testing.T) {
	res := exampleResult(StreamingPayloadTrailer)
	s := &chunkSigner{res: res}
	body := s.chunk([]byte("hello ")) + s.chunk([]byte("world")) + s.final() + s.trailer("x-amz-checksum-crc32:DUoRhQ==")
	got, cr, err := decodeAll(body, res)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("decode: %q %v", got, err)
	}
	if cr.Trailer().Get("x-amz-checksum-crc32") != "DUoRhQ==" || cr.DecodedLen() != 11 {
		t.Errorf("trailer %v, len %d", cr.Trailer(), cr.DecodedLen())
	}
	altered := strings.Replace(body, "DUoRhQ==", "AAAAAA==", 1)
	if _, _, err := decodeAll(altered, res); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered trailer: %v", err)
	}
	unsigned := body[:strings.Index(body, "x-amz-trailer-signature")] + "\r\n"
	_, _, err = decodeAll(unsigned, res)
	wantKind(t, err, KindMalformed)
}

func TestChunkedUnsignedTrailer(t *testing.T) {
	res := Result{Version: 4, PayloadHash: StreamingUnsignedTrailer}
	body := "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-checksum-sha256:abc\r\n\r\n"
	got, cr, err := decodeAll(body, res)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("decode: %q %v", got, err)
	}
	if cr.Trailer().Get("X-Amz-Checksum-Crc32") != "DUoRhQ==" || cr.Trailer().Get("x-amz-checksum-sha256") != "abc" {
		t.Errorf("trailer = %v", cr.Trailer())
	}
	// Without a trailer and without the last CRLF: both seen in the wild.
	for _, b := range []string{"5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n"} {
		if got, _, err := decodeAll(b, res); err != nil || string(got) != "hello" {
			t.Errorf("%q: %q %v", b, got, err)
		}
	}
	for name, b := range map[string]string{
		"bad trailer":        "5\r\nhello\r\n0\r\nno colon\r\n\r\n",
		"trailer signature":  "5\r\nhello\r\n0\r\nx-amz-trailer-signature:" + strings.Repeat("0", 64) + "\r\n\r\n",
		"huge trailer":       "5\r\nhello\r\n0\r\n" + strings.Repeat("x-amz-meta-a:"+strings.Repeat("b", 1000)+"\r\n", 20) + "\r\n",
		"short chunk":        "6\r\nhello\r\n0\r\n\r\n",
		"no final chunk":     "5\r\nhello\r\n",
		"bare LF":            "5\nhello\r\n0\r\n\r\n",
		"negative size":      "-5\r\nhello\r\n0\r\n\r\n",
		"data after trailer": "5\r\nhello\r\n0\r\n\r\nmore",
	} {
		_, _, err := decodeAll(b, res)
		if KindOf(err) != KindMalformed {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestNewChunkedReaderPassThrough(t *testing.T) {
	body := strings.NewReader("plain")
	if r := NewChunkedReader(body, Result{PayloadHash: UnsignedPayload}); r != io.Reader(body) {
		t.Error("a non-streaming payload must be returned as is")
	}
	_, err := io.ReadAll(NewChunkedReader(body, Result{PayloadHash: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"}))
	wantKind(t, err, KindUnsupported)
	// A signed stream needs the SigV4 result it chains from.
	_, err = io.ReadAll(NewChunkedReader(body, Result{PayloadHash: StreamingPayload}))
	wantKind(t, err, KindMalformed)
}
