package awsauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixture is one request signed by botocore, recorded by
// testdata/gen_fixtures.py.
type fixture struct {
	Name      string      `json:"name"`
	Style     string      `json:"style"`
	Bucket    string      `json:"bucket"`
	Method    string      `json:"method"`
	URL       string      `json:"url"`
	Headers   [][2]string `json:"headers"`
	BodyB64   string      `json:"body_b64"`
	Now       time.Time   `json:"now"`
	AccessKey string      `json:"access_key"`
	Secret    string      `json:"secret"`
	Expect    struct {
		Version     int    `json:"version"`
		Presigned   bool   `json:"presigned"`
		Service     string `json:"service"`
		Region      string `json:"region"`
		PayloadHash string `json:"payload_hash"`
	} `json:"expect"`
	DecodedB64 string `json:"decoded_b64"`
}

func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	b, err := os.ReadFile("testdata/botocore_fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Fixtures []fixture }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Fixtures) == 0 {
		t.Fatal("no fixtures")
	}
	return f.Fixtures
}

func (fx fixture) body(t testing.TB) []byte {
	b, err := base64.StdEncoding.DecodeString(fx.BodyB64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request rebuilds the fixture as a server would receive it. mutate may
// change the target, headers and body before they are put on the wire.
func (fx fixture) request(t testing.TB, mutate func(target *string, hdr [][2]string, body *[]byte)) Request {
	t.Helper()
	u, err := url.Parse(fx.URL)
	if err != nil {
		t.Fatal(err)
	}
	target := strings.TrimPrefix(fx.URL, u.Scheme+"://"+u.Host)
	if target == "" || target[0] == '?' {
		target = "/" + target
	}
	hdr := append([][2]string(nil), fx.Headers...)
	body := fx.body(t)
	if mutate != nil {
		mutate(&target, hdr, &body)
		for i, h := range hdr {
			if strings.EqualFold(h[0], "Content-Length") {
				hdr[i][1] = strconv.Itoa(len(body))
			}
		}
	}
	lines := []string{fx.Method + " " + target + " HTTP/1.1"}
	chunked := false
	for _, h := range hdr {
		lines = append(lines, h[0]+": "+h[1])
		chunked = chunked || (strings.EqualFold(h[0], "Transfer-Encoding") && h[1] == "chunked")
	}
	wireBody := string(body)
	if chunked {
		var buf bytes.Buffer
		w := httputil.NewChunkedWriter(&buf)
		w.Write(body)
		w.Close()
		buf.WriteString("\r\n")
		wireBody = buf.String()
	}
	r := wire(t, wireBody, lines...)
	// Every Query fixture is an EC2 call.
	req := Request{HTTP: r, Bucket: fx.Bucket, Style: StyleQuery, Service: "ec2"}
	if fx.Style == "s3" {
		req.Service = ""
		req.Style = StyleS3
		if r.Header.Get("Content-Encoding") != "aws-chunked" {
			req.Body = body
		}
		return req
	}
	req.Body = body
	req.Params = r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range form {
			req.Params[k] = append(req.Params[k], vs...)
		}
	}
	return req
}

func TestBotocoreFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		t.Run(fx.Name, func(t *testing.T) {
			lookup := keys(map[string]string{fx.AccessKey: fx.Secret})
			req := fx.request(t, nil)
			res, err := Verify(context.Background(), req, lookup, fx.Now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			e := fx.Expect
			if res.AccessKeyID != fx.AccessKey || res.Version != e.Version || res.Presigned != e.Presigned ||
				res.Service != e.Service || res.Region != e.Region || res.Anonymous {
				t.Errorf("result = %+v, want %+v", res, e)
			}
			if e.PayloadHash != "" && res.PayloadHash != e.PayloadHash {
				t.Errorf("payload hash = %q, want %q", res.PayloadHash, e.PayloadHash)
			}
			if want := fixtureService(fx); PeekService(req.HTTP) != want {
				t.Errorf("PeekService = %q, want %q", PeekService(req.HTTP), want)
			}
			if fx.DecodedB64 != "" {
				checkDecoded(t, req, res, fx.DecodedB64)
			}
		})
	}
}

func fixtureService(fx fixture) string {
	if fx.Expect.Version == 4 {
		return fx.Expect.Service
	}
	return ""
}

// checkDecoded reads an aws-chunked body through NewChunkedReader and
// checks the data and the CRC32 trailer.
func checkDecoded(t *testing.T, req Request, res Result, decodedB64 string) {
	want, _ := base64.StdEncoding.DecodeString(decodedB64)
	cr := NewChunkedReader(req.HTTP.Body, res)
	got, err := io.ReadAll(cr)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes, want %d", len(got), len(want))
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(want))
	trailer := cr.(*ChunkedReader).Trailer()
	if g, w := trailer.Get("x-amz-checksum-crc32"), base64.StdEncoding.EncodeToString(sum[:]); g != w {
		t.Errorf("trailer crc32 = %q, want %q", g, w)
	}
}

// Every fixture must fail when anything the client signed is changed.
func TestBotocoreFixturesNegative(t *testing.T) {
	ctx := context.Background()
	for _, fx := range loadFixtures(t) {
		t.Run(fx.Name, func(t *testing.T) {
			good := keys(map[string]string{fx.AccessKey: fx.Secret})

			_, err := Verify(ctx, fx.request(t, nil), keys(map[string]string{fx.AccessKey: fx.Secret + "x"}), fx.Now)
			wantKind(t, err, KindBadSignature)

			_, err = Verify(ctx, fx.request(t, nil), keys(nil), fx.Now)
			wantKind(t, err, KindUnknownKey)

			// Eight days on, past every skew and every expiry.
			_, err = Verify(ctx, fx.request(t, nil), good, fx.Now.Add(8*24*time.Hour))
			wantKind(t, err, KindExpired)

			// Another path.
			_, err = Verify(ctx, fx.request(t, func(target *string, _ [][2]string, _ *[]byte) {
				p, q, _ := strings.Cut(*target, "?")
				*target = p + "x"
				if q != "" {
					*target += "?" + q
				}
			}), good, fx.Now)
			wantKind(t, err, KindBadSignature)

			// Another host: signed by everything but S3 SigV2, which signs
			// the bucket the caller derives from the host instead.
			if fx.Style == "query" || fx.Expect.Version == 4 {
				_, err = Verify(ctx, fx.request(t, func(_ *string, hdr [][2]string, _ *[]byte) {
					hdr[0][1] = "evil." + hdr[0][1]
				}), good, fx.Now)
				wantKind(t, err, KindBadSignature)
			} else {
				req := fx.request(t, nil)
				req.Bucket += "evil"
				_, err = Verify(ctx, req, good, fx.Now)
				wantKind(t, err, KindBadSignature)
			}

			// More body, where the body is signed (SigV4 with a payload
			// hash, the SigV2 Query parameters).
			if len(fx.body(t)) > 0 && fx.Expect.PayloadHash == "" && (fx.Expect.Version == 4 || fx.Style == "query") {
				_, err = Verify(ctx, fx.request(t, func(_ *string, _ [][2]string, body *[]byte) {
					*body = append(append([]byte(nil), *body...), "&x=1"...)
				}), good, fx.Now)
				wantKind(t, err, KindBadSignature)
			}
		})
	}
}

// signs reports whether the fixture's signature covers header name.
func (fx fixture) signs(name string) bool {
	name = strings.ToLower(name)
	for _, h := range fx.Headers {
		if !strings.EqualFold(h[0], "Authorization") {
			continue
		}
		if _, sh, ok := strings.Cut(h[1], "SignedHeaders="); ok {
			sh, _, _ = strings.Cut(sh, ",")
			return slices.Contains(strings.Split(sh, ";"), name)
		}
		// S3 SigV2.
		return name == "content-type" || name == "content-md5" || strings.HasPrefix(name, "x-amz-")
	}
	return false
}

// A changed header that the client signed.
func TestBotocoreFixturesTamperedHeader(t *testing.T) {
	ctx := context.Background()
	tampered := 0
	for _, fx := range loadFixtures(t) {
		for i, h := range fx.Headers {
			if strings.EqualFold(h[0], "Authorization") || strings.EqualFold(h[0], "Host") || !fx.signs(h[0]) {
				continue
			}
			t.Run(fx.Name+"/"+h[0], func(t *testing.T) {
				tampered++
				_, err := Verify(ctx, fx.request(t, func(_ *string, hdr [][2]string, _ *[]byte) {
					hdr[i][1] = tamperValue(hdr[i][1])
				}), keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
				wantKind(t, err, KindBadSignature)
			})
		}
	}
	if tampered < 5 {
		t.Fatalf("only %d headers tampered", tampered)
	}
}

// tamperValue changes a header value while keeping it well-formed, so that
// only the signature can catch it.
func tamperValue(v string) string {
	switch {
	case v == StreamingUnsignedTrailer:
		return UnsignedPayload
	case len(v) > 0 && v[len(v)-1] == 'Z': // 20261125T013224Z
		b := []byte(v)
		b[len(b)-2] ^= 1
		return string(b)
	case len(v) == 64: // a hex hash
		b := []byte(v)
		if b[0] == '0' {
			b[0] = '1'
		} else {
			b[0] = '0'
		}
		return string(b)
	}
	return v + "x"
}

// A changed Query parameter, where the parameters are the signed content.
func TestBotocoreFixturesTamperedParam(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		if fx.Style != "query" {
			continue
		}
		t.Run(fx.Name, func(t *testing.T) {
			req := fx.request(t, nil)
			req.Params = cloneValues(req.Params)
			req.Params.Set("Version", "2010-01-01")
			_, err := Verify(context.Background(), req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
			if KindOf(err) != KindBadSignature {
				// SigV4 signs the body bytes, not Params; alter those.
				req = fx.request(t, func(target *string, _ [][2]string, body *[]byte) {
					*body = bytes.Replace(*body, []byte("Version=2016-11-15"), []byte("Version=2010-01-01"), 1)
					*target = strings.Replace(*target, "Version=2016-11-15", "Version=2010-01-01", 1)
				})
				_, err = Verify(context.Background(), req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
			}
			wantKind(t, err, KindBadSignature)
		})
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
