package awsauth

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add(suiteAuthz + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Add(s3Creds + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=")
	lookup := keys(map[string]string{"AKIDEXAMPLE": suiteSecret, s3Key: s3Secret})
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseV4Authorization(h)
		if err != nil {
			if KindOf(err) != KindMalformed {
				t.Fatalf("parse error of kind %v: %v", KindOf(err), err)
			}
		} else {
			if len(a.signature) != 32 || !slices.Contains(a.signedHeaders, "host") || a.cred.accessKey == "" || len(a.cred.date) != 8 {
				t.Fatalf("accepted an incomplete header: %+v", a)
			}
			// What was parsed renders back to a header that parses the same.
			again := algoV4 + " Credential=" + a.cred.accessKey + "/" + a.cred.scope() +
				", SignedHeaders=" + strings.Join(a.signedHeaders, ";") + ", Signature=" + hex.EncodeToString(a.signature)
			b, err := parseV4Authorization(again)
			if err != nil || fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("round trip: %+v -> %q -> %+v, %v", a, again, b, err)
			}
		}
		// Verify refuses it cleanly whatever it is: the fuzzer cannot sign
		// (the path is one no seed signed).
		for _, style := range []Style{StyleQuery, StyleS3} {
			r := &http.Request{Method: "GET", URL: &url.URL{Path: "/fuzz"}, Host: "example.amazonaws.com",
				Header: http.Header{"Authorization": {h}, "X-Amz-Date": {"20150830T123600Z"}, "Date": {"Sun, 30 Aug 2015 12:36:00 GMT"}}}
			res, err := Verify(context.Background(), Request{HTTP: r, Style: style, Service: "service"}, lookup, mustTime(t, iso8601Basic, "20150830T123600Z"))
			if err == nil {
				t.Fatalf("accepted %q: %+v", h, res)
			}
			if KindOf(err) == 0 {
				t.Fatalf("not an *Error: %v", err)
			}
		}
		PeekService(&http.Request{URL: &url.URL{}, Header: http.Header{"Authorization": {h}}})
	})
}

// fuzzModes are the payload hashes FuzzChunkedReader decodes under.
var fuzzModes = []string{StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer}

// signedSeed is a small signed stream chained from the documentation's
// seed signature, and the data it carries.
func signedSeed(trailer bool) (string, string) {
	s := &chunkSigner{res: exampleResult(StreamingPayload)}
	body := s.chunk([]byte("hello ")) + s.chunk([]byte("world")) + s.final()
	if trailer {
		return body + s.trailer("x-amz-checksum-crc32:DUoRhQ=="), "hello world"
	}
	return body + "\r\n", "hello world"
}

func FuzzChunkedReader(f *testing.F) {
	_, example, exampleBody := chunkedExample(f)
	f.Add([]byte(exampleBody), byte(0))
	small, smallData := signedSeed(false)
	f.Add([]byte(small), byte(0))
	trailed, _ := signedSeed(true)
	f.Add([]byte(trailed), byte(1))
	f.Add([]byte("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"), byte(2))
	// The only data a signed stream chained from this seed can carry.
	valid := [][]byte{example, []byte(smallData)}

	f.Fuzz(func(t *testing.T, body []byte, mode byte) {
		payload := fuzzModes[int(mode)%len(fuzzModes)]
		res := exampleResult(payload)
		r := NewChunkedReader(bytes.NewReader(body), res)
		out, err := io.ReadAll(io.LimitReader(r, int64(len(body))+1))
		if len(out) > len(body) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(body))
		}
		if err != nil {
			if k := KindOf(err); k != KindMalformed && k != KindBadSignature {
				t.Fatalf("error of kind %v: %v", k, err)
			}
			if payload == StreamingUnsignedTrailer && errors.Is(err, ErrBadSignature) {
				t.Fatalf("unsigned stream failed a signature: %v", err)
			}
			return
		}
		if payload != StreamingUnsignedTrailer && !slices.ContainsFunc(valid, func(v []byte) bool { return bytes.Equal(v, out) }) {
			t.Fatalf("a forged signed stream was accepted: %q", out)
		}
	})
}

// TestWriteFuzzSeeds rewrites the committed seed corpora under testdata/fuzz
// when AWSAUTH_WRITE_SEEDS=1; otherwise it only checks they exist.
func TestWriteFuzzSeeds(t *testing.T) {
	small, _ := signedSeed(false)
	trailed, _ := signedSeed(true)
	chunks := map[string]struct {
		body string
		mode byte
	}{
		"signed":           {small, 0},
		"signed-trailer":   {trailed, 1},
		"unsigned-trailer": {"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n", 2},
		"unsigned-bare":    {"5\r\nhello\r\n0\r\n\r\n", 2},
		"truncated":        {small[:40], 0},
	}
	headers := map[string]string{
		"suite":       suiteAuthz + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		"s3":          s3Creds + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		"v2":          "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
		"reordered":   "AWS4-HMAC-SHA256 Signature=00,SignedHeaders=host,Credential=A/20150830/r/s/aws4_request",
		"empty-parts": "AWS4-HMAC-SHA256 Credential=//// , SignedHeaders=;, Signature=",
	}
	files := map[string]string{}
	for name, c := range chunks {
		files["FuzzChunkedReader/"+name] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte(%q)\n", c.body, c.mode)
	}
	for name, h := range headers {
		files["FuzzParseAuthorization/"+name] = fmt.Sprintf("go test fuzz v1\nstring(%q)\n", h)
	}
	for name, content := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if os.Getenv("AWSAUTH_WRITE_SEEDS") == "1" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("%s is missing or stale; run AWSAUTH_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds", path)
		}
	}
}
