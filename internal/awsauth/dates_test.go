package awsauth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A request without a usable date is refused as such (S3: AccessDenied,
// "AWS authentication requires a valid Date or x-amz-date header"), before
// its signature is looked at, whatever it signed.
func TestMissingOrBadDate(t *testing.T) {
	ctx, lookup := context.Background(), keys(map[string]string{tKey: tSecret})
	sha := [2]string{"x-amz-content-sha256", UnsignedPayload}
	v4 := map[string]Request{
		"no date":             s3V4(t, "GET", "/b/k", s3Scope, [][2]string{sha}),
		"empty x-amz-date":    s3V4(t, "GET", "/b/k", s3Scope, [][2]string{sha, {"x-amz-date", ""}}),
		"x-amz-date extended": s3V4(t, "GET", "/b/k", s3Scope, [][2]string{sha, {"x-amz-date", "2026-11-25T01:32:24Z"}}),
		"x-amz-date garbage":  s3V4(t, "GET", "/b/k", s3Scope, [][2]string{sha, {"x-amz-date", "yesterday"}}),
		"empty date":          s3V4(t, "GET", "/b/k", s3Scope, [][2]string{{"date", ""}, sha}),
		"date garbage":        s3V4(t, "GET", "/b/k", s3Scope, [][2]string{{"date", "Wed, 25 Nov 2026"}, sha}),
	}
	// An empty x-amz-date is not skipped for a good Date.
	v4["empty x-amz-date, good date"] = s3V4(t, "GET", "/b/k", s3Scope, [][2]string{{"date", "Wed, 25 Nov 2026 01:32:24 GMT"}, sha, {"x-amz-date", ""}})
	for name, req := range v4 {
		t.Run("sigv4/"+name, func(t *testing.T) {
			_, err := Verify(ctx, req, lookup, tNow(t))
			wantNoDate(t, err)
		})
	}
	if _, err := Verify(ctx, s3V4(t, "GET", "/b/k", s3Scope, [][2]string{{"date", "Wed, 25 Nov 2026 01:32:24 GMT"}, sha}), lookup, tNow(t)); err != nil {
		t.Fatalf("a good Date: %v", err)
	}

	// S3 SigV2, from a request botocore signed.
	var fx fixture
	for _, f := range loadFixtures(t) {
		if f.Name == "s3-hmacv1-get-acl" {
			fx = f
		}
	}
	setDate := func(v string) func(*string, [][2]string, *[]byte) {
		return func(_ *string, hdr [][2]string, _ *[]byte) {
			for i := range hdr {
				if strings.EqualFold(hdr[i][0], "Date") {
					hdr[i][1] = v
				}
			}
		}
	}
	for name, req := range map[string]Request{
		"empty date":       fx.request(t, setDate("")),
		"date garbage":     fx.request(t, setDate("25/11/2026")),
		"empty x-amz-date": fx.request(t, nil),
	} {
		if name == "empty x-amz-date" {
			req.HTTP.Header["X-Amz-Date"] = []string{""}
		}
		t.Run("sigv2/"+name, func(t *testing.T) {
			_, err := Verify(ctx, req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
			wantNoDate(t, err)
		})
	}
}

func wantNoDate(t testing.TB, err error) {
	t.Helper()
	wantKind(t, err, KindMalformed)
	var e *Error
	if errors.As(err, &e); !e.NoDate {
		t.Fatalf("%v: not marked NoDate", err)
	}
}
