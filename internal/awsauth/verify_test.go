package awsauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signV4 signs a request for the tests below with a canonical request
// written out by hand, independent of the package's canonicalisation.
func signV4(secret, amzDate, scope, creq string) string {
	date, rest, _ := strings.Cut(scope, "/")
	region, rest, _ := strings.Cut(rest, "/")
	service, _, _ := strings.Cut(rest, "/")
	key := signingKey(secret, date, region, service)
	h := sha256.Sum256([]byte(creq))
	return hex.EncodeToString(hmacSHA256(key, "AWS4-HMAC-SHA256\n"+amzDate+"\n"+scope+"\n"+hex.EncodeToString(h[:])))
}

const (
	tKey    = "AKIDTEST"
	tSecret = "test/secret+key"
	tDate   = "20261125T013224Z"
	tScope  = "20261125/euca-1/ec2/aws4_request"
)

func tNow(t testing.TB) time.Time { return mustTime(t, iso8601Basic, tDate) }

// v4Get is a GET / on ec2.euca.test signed with host;x-amz-date.
func v4Get(t testing.TB, date string) Request {
	creq := "GET\n/\nAction=DescribeRegions&Version=2016-11-15\nhost:ec2.euca.test\nx-amz-date:" + date + "\n\nhost;x-amz-date\n" + EmptySHA256
	scope := date[:8] + "/euca-1/ec2/aws4_request"
	sig := signV4(tSecret, date, scope, creq)
	r := wire(t, "", "GET /?Version=2016-11-15&Action=DescribeRegions HTTP/1.1", "Host: ec2.euca.test", "X-Amz-Date: "+date,
		"Authorization: AWS4-HMAC-SHA256 Credential="+tKey+"/"+scope+", SignedHeaders=host;x-amz-date, Signature="+sig)
	return Request{HTTP: r, Service: "ec2"}
}

func TestVerifyV4Basic(t *testing.T) {
	res, err := Verify(context.Background(), v4Get(t, tDate), keys(map[string]string{tKey: tSecret}), tNow(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Region != "euca-1" || res.Service != "ec2" || res.Date != tDate || res.PayloadHash != EmptySHA256 {
		t.Errorf("result = %+v", res)
	}
}

func TestClockSkew(t *testing.T) {
	lookup := keys(map[string]string{tKey: tSecret})
	for _, d := range []time.Duration{-14 * time.Minute, 14 * time.Minute} {
		if _, err := Verify(context.Background(), v4Get(t, tDate), lookup, tNow(t).Add(d)); err != nil {
			t.Errorf("skew %v: %v", d, err)
		}
	}
	for _, d := range []time.Duration{-16 * time.Minute, 16 * time.Minute, 48 * time.Hour} {
		_, err := Verify(context.Background(), v4Get(t, tDate), lookup, tNow(t).Add(d))
		wantKind(t, err, KindExpired)
		var e *Error
		if errors.As(err, &e); !e.Skewed || !errors.Is(err, ErrRequestExpired) {
			t.Errorf("skew %v: %+v not marked skewed", d, e)
		}
	}
}

func TestPresignedV4Expiry(t *testing.T) {
	lookup := keys(map[string]string{tKey: tSecret})
	presign := func(expires string) Request {
		q := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + tKey + "%2F20261125%2Feuca-1%2Fs3%2Faws4_request&X-Amz-Date=" + tDate + "&X-Amz-Expires=" + expires + "&X-Amz-SignedHeaders=host"
		creq := "GET\n/b/k\n" + q + "\nhost:s3.euca.test\n\nhost\nUNSIGNED-PAYLOAD"
		sig := signV4(tSecret, tDate, "20261125/euca-1/s3/aws4_request", creq)
		return Request{HTTP: wire(t, "", "GET /b/k?"+q+"&X-Amz-Signature="+sig+" HTTP/1.1", "Host: s3.euca.test"), Style: StyleS3}
	}
	now := tNow(t)
	if res, err := Verify(context.Background(), presign("3600"), lookup, now.Add(59*time.Minute)); err != nil || !res.Presigned || res.PayloadHash != UnsignedPayload {
		t.Fatalf("within expiry: %+v %v", res, err)
	}
	// Presigned URLs are not subject to the clock skew, only to expiry.
	if _, err := Verify(context.Background(), presign("604800"), lookup, now.Add(6*24*time.Hour)); err != nil {
		t.Fatalf("six days into a week: %v", err)
	}
	_, err := Verify(context.Background(), presign("3600"), lookup, now.Add(61*time.Minute))
	wantKind(t, err, KindExpired)
	var e *Error
	if errors.As(err, &e); e.Skewed {
		t.Errorf("expired presigned URL marked skewed")
	}
	_, err = Verify(context.Background(), presign("3600"), lookup, now.Add(-time.Hour))
	wantKind(t, err, KindExpired)
	_, err = Verify(context.Background(), presign("604801"), lookup, now)
	wantKind(t, err, KindMalformed)
	_, err = Verify(context.Background(), presign("0"), lookup, now)
	wantKind(t, err, KindMalformed)
}

func TestAnonymousAndUnsupported(t *testing.T) {
	ctx, lookup := context.Background(), keys(map[string]string{tKey: tSecret})
	res, err := Verify(ctx, Request{HTTP: wire(t, "", "GET /bucket/key HTTP/1.1", "Host: s3"), Style: StyleS3}, lookup, tNow(t))
	if !res.Anonymous || !errors.Is(err, ErrMissing) {
		t.Errorf("anonymous: %+v %v", res, err)
	}
	cases := []struct {
		name  string
		style Style
		lines []string
		kind  Kind
	}{
		{"sigv4a", StyleS3, []string{"GET / HTTP/1.1", "Host: s3", "Authorization: AWS4-ECDSA-P256-SHA256 Credential=x"}, KindUnsupported},
		{"bearer", StyleQuery, []string{"GET / HTTP/1.1", "Host: ec2", "Authorization: Bearer x"}, KindUnsupported},
		{"s3 v2 on the query API", StyleQuery, []string{"GET / HTTP/1.1", "Host: ec2", "Authorization: AWS a:b"}, KindUnsupported},
		{"empty authorization", StyleS3, []string{"GET / HTTP/1.1", "Host: s3", "Authorization: "}, KindMalformed},
		{"two authorization headers", StyleS3, []string{"GET / HTTP/1.1", "Host: s3", "Authorization: AWS a:b", "Authorization: AWS a:b"}, KindMalformed},
		{"header and presigned", StyleS3, []string{"GET /?X-Amz-Signature=00 HTTP/1.1", "Host: s3", "Authorization: AWS a:b"}, KindMalformed},
		{"v4 and v2 presigned", StyleS3, []string{"GET /?X-Amz-Signature=00&AWSAccessKeyId=a&Signature=b HTTP/1.1", "Host: s3"}, KindMalformed},
		{"presigned algorithm", StyleS3, []string{"GET /?X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=a%2F20261125%2Fr%2Fs3%2Faws4_request&X-Amz-Date=20261125T013224Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00 HTTP/1.1", "Host: s3"}, KindUnsupported},
		{"presigned missing parameter", StyleS3, []string{"GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00 HTTP/1.1", "Host: s3"}, KindMalformed},
		{"bad query escape", StyleS3, []string{"GET /?a=%zz HTTP/1.1", "Host: s3"}, KindMalformed},
		{"v2 no date", StyleS3, []string{"GET / HTTP/1.1", "Host: s3", "Authorization: AWS a:b"}, KindMalformed},
		{"v2 bad date", StyleS3, []string{"GET / HTTP/1.1", "Host: s3", "Date: yesterday", "Authorization: AWS a:b"}, KindMalformed},
		{"v2 no colon", StyleS3, []string{"GET / HTTP/1.1", "Host: s3", "Date: Wed, 25 Nov 2026 01:32:24 GMT", "Authorization: AWS ab"}, KindMalformed},
		{"v2 presigned no expires", StyleS3, []string{"GET /?AWSAccessKeyId=a&Signature=b HTTP/1.1", "Host: s3"}, KindMalformed},
		{"v2 presigned bad expires", StyleS3, []string{"GET /?AWSAccessKeyId=a&Signature=b&Expires=soon HTTP/1.1", "Host: s3"}, KindMalformed},
		{"v2 presigned expired", StyleS3, []string{"GET /?AWSAccessKeyId=a&Signature=b&Expires=1000 HTTP/1.1", "Host: s3"}, KindExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(ctx, Request{HTTP: wire(t, "", tc.lines...), Style: tc.style, Service: "ec2"}, lookup, tNow(t))
			wantKind(t, err, tc.kind)
		})
	}
}

func TestMalformedV4Header(t *testing.T) {
	cred := "Credential=" + tKey + "/" + tScope
	sig := "Signature=" + strings.Repeat("0", 64)
	cases := map[string]string{
		"no components":       "AWS4-HMAC-SHA256 ",
		"missing signature":   "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;x-amz-date",
		"missing credential":  "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, " + sig,
		"repeated component":  "AWS4-HMAC-SHA256 " + cred + ", " + cred + ", SignedHeaders=host;x-amz-date, " + sig,
		"unknown component":   "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;x-amz-date, " + sig + ", Foo=bar",
		"short credential":    "AWS4-HMAC-SHA256 Credential=" + tKey + "/20261125/euca-1/ec2, SignedHeaders=host;x-amz-date, " + sig,
		"credential terminal": "AWS4-HMAC-SHA256 Credential=" + tKey + "/20261125/euca-1/ec2/aws5_request, SignedHeaders=host;x-amz-date, " + sig,
		"credential date":     "AWS4-HMAC-SHA256 Credential=" + tKey + "/2026-11-25/euca-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, " + sig,
		"scope date mismatch": "AWS4-HMAC-SHA256 Credential=" + tKey + "/20261124/euca-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, " + sig,
		"host unsigned":       "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=x-amz-date, " + sig,
		"date unsigned":       "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, " + sig,
		"upper-case header":   "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=Host;x-amz-date, " + sig,
		"duplicate header":    "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;host;x-amz-date, " + sig,
		"short signature":     "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;x-amz-date, Signature=abc",
		"non-hex signature":   "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("g", 64),
		"no equals":           "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders, " + sig,
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			r := wire(t, "", "GET / HTTP/1.1", "Host: ec2.euca.test", "X-Amz-Date: "+tDate, "Authorization: "+h)
			_, err := Verify(context.Background(), Request{HTTP: r, Service: "ec2"}, keys(map[string]string{tKey: tSecret}), tNow(t))
			wantKind(t, err, KindMalformed)
		})
	}
	r := wire(t, "", "GET / HTTP/1.1", "Host: ec2.euca.test", "X-Amz-Date: 2026-11-25T01:32:24Z",
		"Authorization: AWS4-HMAC-SHA256 "+cred+", SignedHeaders=host;x-amz-date, "+sig)
	_, err := Verify(context.Background(), Request{HTTP: r, Service: "ec2"}, keys(map[string]string{tKey: tSecret}), tNow(t))
	wantKind(t, err, KindMalformed)
}

// The Query APIs carry their parameters in the body: an unsigned payload
// would let them be rewritten, so only a real hash is accepted.
func TestQueryRefusesUnsignedPayload(t *testing.T) {
	body := "Action=TerminateInstances&InstanceId.1=i-1&Version=2016-11-15"
	for _, payload := range []string{UnsignedPayload, StreamingPayload} {
		creq := "POST\n/\n\nhost:ec2.euca.test\nx-amz-content-sha256:" + payload + "\nx-amz-date:" + tDate + "\n\nhost;x-amz-content-sha256;x-amz-date\n" + payload
		sig := signV4(tSecret, tDate, tScope, creq)
		r := wire(t, body, "POST / HTTP/1.1", "Host: ec2.euca.test", "X-Amz-Date: "+tDate, "X-Amz-Content-Sha256: "+payload,
			"Content-Type: application/x-www-form-urlencoded", "Content-Length: "+strconv.Itoa(len(body)),
			"Authorization: AWS4-HMAC-SHA256 Credential="+tKey+"/"+tScope+", SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="+sig)
		_, err := Verify(context.Background(), Request{HTTP: r, Body: []byte(body), Service: "ec2"}, keys(map[string]string{tKey: tSecret}), tNow(t))
		wantKind(t, err, KindUnsupported)
	}
}

// A payload hash must be signed, or it could be swapped with the body.
func TestUnsignedContentSHA256(t *testing.T) {
	creq := "PUT\n/b/k\n\nhost:s3.euca.test\nx-amz-date:" + tDate + "\n\nhost;x-amz-date\n" + UnsignedPayload
	sig := signV4(tSecret, tDate, "20261125/euca-1/s3/aws4_request", creq)
	r := wire(t, "", "PUT /b/k HTTP/1.1", "Host: s3.euca.test", "X-Amz-Date: "+tDate, "X-Amz-Content-Sha256: "+UnsignedPayload,
		"Authorization: AWS4-HMAC-SHA256 Credential="+tKey+"/20261125/euca-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig)
	_, err := Verify(context.Background(), Request{HTTP: r, Style: StyleS3}, keys(map[string]string{tKey: tSecret}), tNow(t))
	wantKind(t, err, KindUnsignedHeaders)
}

func TestLookupFailureIsInternal(t *testing.T) {
	boom := errors.New("database is locked")
	lookup := func(context.Context, string) (string, error) { return "", boom }
	_, err := Verify(context.Background(), v4Get(t, tDate), lookup, tNow(t))
	if !errors.Is(err, boom) || KindOf(err) != 0 {
		t.Fatalf("err = %v, kind %v", err, KindOf(err))
	}
}

// No error may reveal the secret or the signature the server computed.
func TestErrorsRevealNothing(t *testing.T) {
	req := v4Get(t, tDate)
	authz := req.HTTP.Header.Get("Authorization")
	good := authz[len(authz)-64:]
	req.HTTP.Header.Set("Authorization", authz[:len(authz)-64]+strings.Repeat("0", 64))
	for _, secret := range []string{tSecret, "another secret"} {
		_, err := Verify(context.Background(), req, keys(map[string]string{tKey: secret}), tNow(t))
		wantKind(t, err, KindBadSignature)
		for _, leak := range []string{secret, good} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("error %q reveals %q", err, leak)
			}
		}
	}
	res, _ := Verify(context.Background(), v4Get(t, tDate), keys(map[string]string{tKey: tSecret}), tNow(t))
	if s := res.LogValue().String(); strings.Contains(s, hex.EncodeToString(res.SigningKey)) || strings.Contains(s, tSecret) {
		t.Errorf("LogValue reveals the key: %s", s)
	}
}

// signV2Query signs Query parameters with a string to sign written out by
// the test.
func signV2Query(sts string, sha256ing bool) string {
	newHash := sha1.New
	if sha256ing {
		newHash = sha256.New
	}
	m := hmac.New(newHash, []byte(tSecret))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestVerifyV2Query(t *testing.T) {
	lookup := keys(map[string]string{tKey: tSecret})
	now := tNow(t)
	cases := []struct {
		name, method, host, path, canon string
		params                          url.Values
		sha256                          bool
		now                             time.Time
		kind                            Kind
	}{
		{name: "GET HmacSHA1 Timestamp", method: "GET", host: "EC2.Euca.Test:8773", path: "/services/compute",
			params: url.Values{"Action": {"DescribeImages"}, "Owner.1": {"self"}, "Filter.1.Value.1": {"a b~*"},
				"AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"}, "SignatureMethod": {"HmacSHA1"}, "Timestamp": {"2026-11-25T01:32:24.123Z"}},
			canon: "AWSAccessKeyId=" + tKey + "&Action=DescribeImages&Filter.1.Value.1=a%20b~%2A&Owner.1=self&SignatureMethod=HmacSHA1&SignatureVersion=2&Timestamp=2026-11-25T01%3A32%3A24.123Z",
			now:   now},
		{name: "POST HmacSHA256 Expires", method: "POST", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"RunInstances"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacSHA256"}, "Expires": {"2026-11-25T02:00:00Z"}},
			canon:  "AWSAccessKeyId=" + tKey + "&Action=RunInstances&Expires=2026-11-25T02%3A00%3A00Z&SignatureMethod=HmacSHA256&SignatureVersion=2",
			sha256: true, now: now.Add(20 * time.Minute)},
		{name: "expired", method: "POST", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"RunInstances"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacSHA256"}, "Expires": {"2026-11-25T02:00:00Z"}},
			canon:  "AWSAccessKeyId=" + tKey + "&Action=RunInstances&Expires=2026-11-25T02%3A00%3A00Z&SignatureMethod=HmacSHA256&SignatureVersion=2",
			sha256: true, now: now.Add(time.Hour), kind: KindExpired},
		{name: "skewed", method: "GET", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"DescribeImages"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacSHA256"}, "Timestamp": {"2026-11-25T01:32:24Z"}},
			canon:  "AWSAccessKeyId=" + tKey + "&Action=DescribeImages&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2026-11-25T01%3A32%3A24Z",
			sha256: true, now: now.Add(-20 * time.Minute), kind: KindExpired},
		{name: "signature version 1", method: "GET", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"DescribeImages"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"1"},
				"Timestamp": {"2026-11-25T01:32:24Z"}}, now: now, kind: KindUnsupported},
		{name: "HmacMD5", method: "GET", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"DescribeImages"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacMD5"}, "Timestamp": {"2026-11-25T01:32:24Z"}}, now: now, kind: KindUnsupported},
		{name: "timestamp and expires", method: "GET", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"DescribeImages"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacSHA256"}, "Timestamp": {"2026-11-25T01:32:24Z"}, "Expires": {"2026-11-25T01:32:24Z"}}, now: now, kind: KindMalformed},
		{name: "no date", method: "GET", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"DescribeImages"}, "AWSAccessKeyId": {tKey}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacSHA256"}}, now: now, kind: KindMalformed},
		{name: "unknown key", method: "GET", host: "ec2.euca.test", path: "/",
			params: url.Values{"Action": {"DescribeImages"}, "AWSAccessKeyId": {"nobody"}, "SignatureVersion": {"2"},
				"SignatureMethod": {"HmacSHA256"}, "Timestamp": {"2026-11-25T01:32:24Z"}}, now: now, kind: KindUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := cloneValues(tc.params)
			p.Set("Signature", signV2Query(tc.method+"\n"+strings.ToLower(tc.host)+"\n"+tc.path+"\n"+tc.canon, tc.sha256))
			r := wire(t, "", tc.method+" "+tc.path+" HTTP/1.1", "Host: "+tc.host)
			res, err := Verify(context.Background(), Request{HTTP: r, Params: p, Service: "ec2"}, lookup, tc.now)
			if tc.kind != 0 {
				wantKind(t, err, tc.kind)
				return
			}
			if err != nil || res.Version != 2 || res.AccessKeyID != tKey {
				t.Fatalf("Verify: %+v %v", res, err)
			}
			// Any other parameter value fails.
			p.Set("Action", "TerminateInstances")
			_, err = Verify(context.Background(), Request{HTTP: r, Params: p, Service: "ec2"}, lookup, tc.now)
			wantKind(t, err, KindBadSignature)
		})
	}
}

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2026, 11, 25, 1, 32, 24, 0, time.UTC)
	for _, s := range []string{
		"Wed, 25 Nov 2026 01:32:24 GMT",     // RFC 1123
		"Wed, 25 Nov 2026 01:32:24 +0000",   // RFC 1123, numeric zone
		"Wed, 25 Nov 2026 01:32:24 -0000",   // euca2ools
		"Wed, 25 Nov 2026 02:32:24 +0100",   // another zone
		"Wednesday, 25-Nov-26 01:32:24 GMT", // RFC 850
		"Wed Nov 25 01:32:24 2026",          // asctime
		"20261125T013224Z",                  // ISO 8601 basic
		" Wed, 25 Nov 2026 01:32:24 GMT ",
	} {
		got, ok := parseHTTPDate(s)
		if !ok || !got.Equal(want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "yesterday", "2026-11-25", "Wed, 25 Nov 2026"} {
		if _, ok := parseHTTPDate(s); ok {
			t.Errorf("parseHTTPDate(%q) succeeded", s)
		}
	}
}

func TestCanonicalURI(t *testing.T) {
	cases := []struct{ in, query, s3 string }{
		{"/", "/", "/"},
		{"", "/", "/"},
		{"/%20/foo", "/%2520/foo", "/%20/foo"},
		{"/services/compute", "/services/compute", "/services/compute"},
		{"/a/./b/../c", "/a/c", "/a/./b/../c"},
		{"//a//b//", "/a/b/", "//a//b//"},
		{"/a/..", "/", "/a/.."},
		{"/a~b/c:d", "/a~b/c%3Ad", "/a~b/c:d"},
	}
	for _, c := range cases {
		if got := canonicalURIV4(c.in, StyleQuery); got != c.query {
			t.Errorf("query %q: got %q, want %q", c.in, got, c.query)
		}
		if got := canonicalURIV4(c.in, StyleS3); got != c.s3 {
			t.Errorf("s3 %q: got %q, want %q", c.in, got, c.s3)
		}
	}
}

func TestCanonicalQueryV4(t *testing.T) {
	pairs, err := parseQuery("b=2&a=1&a=0&c&d=&e=a+b&f=%7e%2f&&g=%C3%BC")
	if err != nil {
		t.Fatal(err)
	}
	const want = "a=0&a=1&b=2&c=&d=&e=a%20b&f=~%2F&g=%C3%BC"
	if got := canonicalQueryV4(pairs, ""); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPeekService(t *testing.T) {
	cases := map[string]string{
		"":        "",
		"AWS a:b": "",
		"AWS4-HMAC-SHA256 Credential=A/20261125/euca-1/sts/aws4_request, SignedHeaders=host, Signature=0": "sts",
		"AWS4-HMAC-SHA256 SignedHeaders=host,Credential=A/20261125/euca-1/iam/aws4_request,Signature=0":   "iam",
		"AWS4-HMAC-SHA256 Credential=garbage": "",
	}
	for h, want := range cases {
		r := wire(t, "", "GET / HTTP/1.1", "Host: x", "Authorization: "+h)
		if got := PeekService(r); got != want {
			t.Errorf("PeekService(%q) = %q, want %q", h, got, want)
		}
	}
	r := wire(t, "", "GET /?X-Amz-Credential=A%2F20261125%2Feuca-1%2Fs3%2Faws4_request HTTP/1.1", "Host: x")
	if got := PeekService(r); got != "s3" {
		t.Errorf("PeekService(query) = %q", got)
	}
}
