package walrus

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/url"
	"testing"
)

// TestListEncodedElements: with encoding-type=url, ListObjects (V1) encodes
// Delimiter, Marker, NextMarker, keys and common prefixes but echoes
// Prefix as sent, while V2 encodes Prefix and StartAfter too: botocore
// decodes exactly those, so an element encoded otherwise reaches the user
// percent-encoded.
func TestListEncodedElements(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/enc", nil), 200)
	for _, k := range []string{"d e/1", "d e/x y/2", "d e/z"} {
		e.must(e.do(a, "PUT", "/enc/"+(&url.URL{Path: k}).EscapedPath(), []byte(k)), 200)
	}
	type result struct {
		Prefix, Delimiter, Marker, NextMarker, StartAfter string
		Keys                                              []string `xml:"Contents>Key"`
		Prefixes                                          []string `xml:"CommonPrefixes>Prefix"`
	}
	list := func(query string) result {
		t.Helper()
		r := e.must(e.do(a, "GET", "/enc?"+query, nil), 200)
		var res result
		if err := xml.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	v1 := list("encoding-type=url&prefix=d%20e/&delimiter=/&marker=d%20e/0&max-keys=1")
	if v1.Prefix != "d e/" || v1.Marker != "d%20e/0" || v1.NextMarker != "d%20e/1" || len(v1.Keys) != 1 || v1.Keys[0] != "d%20e/1" {
		t.Errorf("v1: %+v", v1)
	}
	v1 = list("encoding-type=url&prefix=d%20e/&delimiter=/")
	if len(v1.Prefixes) != 1 || v1.Prefixes[0] != "d%20e/x%20y/" || v1.Prefix != "d e/" {
		t.Errorf("v1 common prefixes: %+v", v1)
	}
	v2 := list("list-type=2&encoding-type=url&prefix=d%20e/&delimiter=/&start-after=d%20e/0")
	if v2.Prefix != "d%20e/" || v2.StartAfter != "d%20e/0" || len(v2.Keys) != 2 || v2.Keys[0] != "d%20e/1" || v2.Prefixes[0] != "d%20e/x%20y/" {
		t.Errorf("v2: %+v", v2)
	}
	// Without encoding-type, nothing is encoded.
	if raw := list("prefix=d%20e/&delimiter=/"); raw.Prefix != "d e/" || raw.Keys[0] != "d e/1" {
		t.Errorf("raw: %+v", raw)
	}
}

// TestEmptyContinuationToken: an empty continuation-token is taken as
// absent (start-after then applies), as S3 does; a malformed one is still
// refused.
func TestEmptyContinuationToken(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/tok", nil), 200)
	for _, k := range []string{"a", "b", "c"} {
		e.must(e.do(a, "PUT", "/tok/"+k, []byte(k)), 200)
	}
	r := e.must(e.do(a, "GET", "/tok?list-type=2&continuation-token=&start-after=a", nil), 200)
	var res struct {
		Keys              []string `xml:"Contents>Key"`
		ContinuationToken *string
	}
	if err := xml.Unmarshal(r.body, &res); err != nil || len(res.Keys) != 2 || res.Keys[0] != "b" || res.ContinuationToken != nil {
		t.Errorf("empty token: %s", r.body)
	}
	e.wantErr(e.do(a, "GET", "/tok?list-type=2&continuation-token=%25%25", nil), 400, "InvalidArgument")
}

// TestContentEncodingAsSent: an object's Content-Encoding comes back as it
// was sent, less the aws-chunked framing of the upload itself.
func TestContentEncodingAsSent(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/cenc", nil), 200)
	for _, c := range []struct{ sent, want string }{
		{"gzip", "gzip"},
		{"gzip, br", "gzip, br"},
		{"x-custom;q=1", "x-custom;q=1"},
	} {
		e.must(e.do(a, "PUT", "/cenc/k", []byte("data"), "Content-Encoding", c.sent), 200)
		for _, m := range []string{"GET", "HEAD"} {
			// (Go's client would decompress a gzip answer it asked for.)
			if got := e.must(e.do(a, m, "/cenc/k", nil, "Accept-Encoding", "identity"), 200).header.Get("Content-Encoding"); got != c.want {
				t.Errorf("%s after PUT with %q: Content-Encoding %q, want %q", m, c.sent, got, c.want)
			}
		}
	}
	// Two header lines are one list.
	r, err := http.NewRequest("PUT", e.srv.URL+"/cenc/two", bytes.NewReader([]byte("data")))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Add("Content-Encoding", "gzip")
	r.Header.Add("Content-Encoding", "br")
	a(r, []byte("data"))
	e.must(e.send(r), 200)
	if got := e.must(e.do(a, "HEAD", "/cenc/two", nil), 200).header.Get("Content-Encoding"); got != "gzip, br" {
		t.Errorf("two lines: %q", got)
	}
}
