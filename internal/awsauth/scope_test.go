package awsauth

import (
	"context"
	"errors"
	"testing"
)

// A valid signature scoped to another service than the API that answers is
// refused: S3 says its header or query is malformed, the Query APIs that the
// credential should be scoped to them.
func TestScopeServiceChecked(t *testing.T) {
	ctx, lookup := context.Background(), keys(map[string]string{tKey: tSecret})
	ec2Scope := "20261125/euca-1/ec2/aws4_request"

	// Signed for EC2, sent to S3.
	_, err := Verify(ctx, s3V4(t, "GET", "/b/k", ec2Scope, s3Signed()), lookup, tNow(t))
	wantMessage(t, err, KindMalformed, `The authorization header is malformed; incorrect service "ec2". This endpoint belongs to "s3".`)
	q := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + tKey + "%2F20261125%2Feuca-1%2Fec2%2Faws4_request&X-Amz-Date=" + tDate + "&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
	sig := signV4(tSecret, tDate, ec2Scope, "GET\n/b/k\n"+q+"\nhost:s3.euca.test\n\nhost\nUNSIGNED-PAYLOAD")
	presigned := Request{HTTP: wire(t, "", "GET /b/k?"+q+"&X-Amz-Signature="+sig+" HTTP/1.1", "Host: s3.euca.test"), Style: StyleS3}
	_, err = Verify(ctx, presigned, lookup, tNow(t))
	wantMessage(t, err, KindMalformed, `Error parsing the X-Amz-Credential parameter; incorrect service "ec2". This endpoint belongs to "s3".`)

	// The same requests are good for the service they were signed for.
	good := s3V4(t, "GET", "/b/k", ec2Scope, s3Signed())
	good.Service = "ec2"
	if _, err := Verify(ctx, good, lookup, tNow(t)); err != nil {
		t.Fatalf("scoped to the service that answers: %v", err)
	}

	// Signed for EC2, sent to STS, IAM and S3's Query-style neighbours.
	for _, svc := range []string{"sts", "iam", "s3"} {
		req := v4Get(t, tDate)
		req.Service = svc
		_, err := Verify(ctx, req, lookup, tNow(t))
		wantMessage(t, err, KindBadSignature, "Credential should be scoped to correct service: '"+svc+"'.")
	}
	// Every botocore fixture fails on the wrong service, SigV4 ones only.
	for _, fx := range loadFixtures(t) {
		req := fx.request(t, nil)
		req.Service = "sts"
		_, err := Verify(ctx, req, keys(map[string]string{fx.AccessKey: fx.Secret}), fx.Now)
		if (err == nil) != (fx.Expect.Version == 2) {
			t.Errorf("%s for sts: %v", fx.Name, err)
		}
	}

	// A Query API must say which service it is.
	req := v4Get(t, tDate)
	req.Service = ""
	if _, err := Verify(ctx, req, lookup, tNow(t)); err == nil || KindOf(err) != 0 {
		t.Fatalf("no service: %v", err)
	}
}

func wantMessage(t testing.TB, err error, k Kind, msg string) {
	t.Helper()
	wantKind(t, err, k)
	var e *Error
	if errors.As(err, &e); e.Msg != msg {
		t.Fatalf("message %q, want %q", e.Msg, msg)
	}
}
