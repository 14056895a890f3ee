package awsauth

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wire parses a request exactly as the server does: from HTTP/1.1 bytes.
// lines are the request line and headers, without CRLF.
func wire(t testing.TB, body string, lines ...string) *http.Request {
	t.Helper()
	raw := strings.Join(lines, "\r\n") + "\r\n\r\n" + body
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return r
}

// keys is a SecretLookup over a map.
func keys(m map[string]string) SecretLookup {
	return func(_ context.Context, akid string) (string, error) {
		s, ok := m[akid]
		if !ok {
			return "", ErrUnknownKey
		}
		return s, nil
	}
}

func mustTime(t testing.TB, layout, v string) time.Time {
	t.Helper()
	tm, err := time.Parse(layout, v)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func wantKind(t testing.TB, err error, k Kind) {
	t.Helper()
	if KindOf(err) != k {
		t.Fatalf("error = %v (kind %v), want kind %v", err, KindOf(err), k)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
