package awsauth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// s3V4 is a request on s3.euca.test signed with SigV4 by hand: the signed
// headers are host and hdr, in order (lower-case names, sorted), the
// payload UNSIGNED-PAYLOAD, the credential scope scope.
func s3V4(t testing.TB, method, path, scope string, hdr [][2]string) Request {
	t.Helper()
	names := []string{"host"}
	lines := "host:s3.euca.test\n"
	wireHdr := []string{"Host: s3.euca.test"}
	for _, h := range hdr {
		names = append(names, h[0])
		lines += h[0] + ":" + h[1] + "\n"
		wireHdr = append(wireHdr, h[0]+": "+h[1])
	}
	signed := strings.Join(names, ";")
	creq := method + "\n" + path + "\n\n" + lines + "\n" + signed + "\n" + UnsignedPayload
	sig := signV4(tSecret, tDate, scope, creq)
	wireHdr = append(wireHdr, "Authorization: AWS4-HMAC-SHA256 Credential="+tKey+"/"+scope+", SignedHeaders="+signed+", Signature="+sig)
	return Request{HTTP: wire(t, "", append([]string{method + " " + path + " HTTP/1.1"}, wireHdr...)...), Style: StyleS3}
}

const s3Scope = "20261125/euca-1/s3/aws4_request"

func s3Signed(extra ...[2]string) [][2]string {
	return append([][2]string{{"x-amz-content-sha256", UnsignedPayload}, {"x-amz-date", tDate}}, extra...)
}

// An x-amz-* header outside the signature would let anyone who holds a
// signed request or a presigned URL change what it does: S3 refuses it.
func TestUnsignedAmzHeadersRefused(t *testing.T) {
	ctx, lookup := context.Background(), keys(map[string]string{tKey: tSecret})

	// Signed, x-amz-acl is fine.
	if _, err := Verify(ctx, s3V4(t, "PUT", "/b/k", s3Scope, s3Signed([2]string{"x-amz-acl", "public-read"})), lookup, tNow(t)); err != nil {
		t.Fatalf("signed x-amz-acl: %v", err)
	}
	req := s3V4(t, "PUT", "/b/k", s3Scope, s3Signed())
	req.HTTP.Header.Set("X-Amz-Copy-Source", "/other/private")
	req.HTTP.Header.Set("X-Amz-Acl", "public-read")
	_, err := Verify(ctx, req, lookup, tNow(t))
	wantUnsigned(t, err, "x-amz-acl", "x-amz-copy-source")

	// Every S3 SigV4 request botocore signs, header or presigned, is
	// refused with an added header; S3 SigV2 signs every x-amz-* header
	// by construction, so there the signature fails.
	checked := 0
	for _, fx := range loadFixtures(t) {
		if fx.Style != "s3" {
			continue
		}
		t.Run(fx.Name, func(t *testing.T) {
			checked++
			req := fx.request(t, nil)
			req.HTTP.Header.Set("X-Amz-Grant-Full-Control", "id=someone-else")
			_, err := Verify(ctx, req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
			if fx.Expect.Version == 4 {
				wantUnsigned(t, err, "x-amz-grant-full-control")
			} else {
				wantKind(t, err, KindBadSignature)
			}
		})
	}
	if checked < 8 {
		t.Fatalf("only %d S3 fixtures", checked)
	}
}

func wantUnsigned(t testing.TB, err error, names ...string) {
	t.Helper()
	wantKind(t, err, KindUnsignedHeaders)
	var e *Error
	errors.As(err, &e)
	if !slices.Equal(e.Headers, names) || e.Msg != "There were headers present in the request which were not signed" {
		t.Fatalf("unsigned headers = %q (%q), want %q", e.Headers, e.Msg, names)
	}
}

// A presigned URL may come with x-amz-content-sha256 unsigned (S3 accepts
// it); it does not change the payload hash the signature covers.
func TestPresignedToleratesUnsignedContentSHA256(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		if !fx.Expect.Presigned || fx.Expect.Version != 4 {
			continue
		}
		t.Run(fx.Name, func(t *testing.T) {
			req := fx.request(t, nil)
			req.HTTP.Header.Set("X-Amz-Content-Sha256", EmptySHA256)
			res, err := Verify(context.Background(), req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
			if err != nil || res.PayloadHash != UnsignedPayload {
				t.Fatalf("Verify: %+v %v", res, err)
			}
		})
	}
}

// The rule is S3's: the Query APIs read nothing from x-amz-* headers and AWS
// does not apply it there.
func TestQueryAPIsIgnoreUnsignedAmzHeaders(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		if fx.Style != "query" {
			continue
		}
		t.Run(fx.Name, func(t *testing.T) {
			req := fx.request(t, nil)
			req.HTTP.Header.Set("X-Amz-Meta-Trace", "1")
			if _, err := Verify(context.Background(), req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now); err != nil {
				t.Fatal(err)
			}
		})
	}
}
