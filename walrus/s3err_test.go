package walrus

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awsauth"
)

// TestErrorCodesInTable: every code the package names is in s3Codes, so
// none can turn into an InternalError by a typo.
func TestErrorCodesInTable(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`s3Errorf?\("([A-Za-z0-9]+)"|notFound: "([A-Za-z0-9]+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			code := m[1] + m[2]
			n++
			if _, ok := s3Codes[code]; !ok {
				t.Errorf("%s names %s, which is not in s3Codes", f, code)
			}
		}
	}
	if n < 50 {
		t.Errorf("found only %d uses of error codes: the pattern is stale", n)
	}
	if e := s3Error("NoSuchThing"); e.Status != 500 {
		t.Errorf("unknown code: %+v", e)
	}
}

func TestAuthErrorMapping(t *testing.T) {
	r := httptest.NewRequest("GET", "/b", nil)
	for _, c := range []struct {
		err  error
		code string
		hdr  string
	}{
		{awsauth.ErrUnknownKey, "InvalidAccessKeyId", ""},
		{awsauth.ErrBadSignature, "SignatureDoesNotMatch", ""},
		{&awsauth.Error{Kind: awsauth.KindBadSignature, Msg: "The provided 'x-amz-content-sha256' header does not match what was computed."}, "XAmzContentSHA256Mismatch", ""},
		{awsauth.ErrRequestExpired, "RequestTimeTooSkewed", ""},
		{&awsauth.Error{Kind: awsauth.KindExpired, Msg: "Request has expired"}, "AccessDenied", ""},
		{&awsauth.Error{Kind: awsauth.KindMalformed, Msg: "x"}, "AuthorizationHeaderMalformed", "AWS4-HMAC-SHA256 Credential=x"},
		{&awsauth.Error{Kind: awsauth.KindMalformed, Msg: "x"}, "InvalidArgument", "AWS x"},
		{&awsauth.Error{Kind: awsauth.KindMalformed, Msg: "x"}, "AuthorizationQueryParametersError", ""},
		{&awsauth.Error{Kind: awsauth.KindUnsupported, Msg: "x"}, "InvalidRequest", ""},
	} {
		r.Header.Set("Authorization", c.hdr)
		if got := authError(c.err, r); got.Code != c.code {
			t.Errorf("%v: %s, want %s", c.err, got.Code, c.code)
		}
	}
	if got := authError(os.ErrClosed, r); got.Status != http.StatusInternalServerError {
		t.Errorf("a lookup failure is internal: %+v", got)
	}
}

// TestRoutesUnique: no two rows of the table can match the same request.
func TestRoutesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, rt := range routes {
		k := rt.method + " " + string(rune('0'+rt.level)) + " " + rt.sub + " " + rt.header
		if prev, ok := seen[k]; ok {
			t.Errorf("%s and %s share %q", prev, rt.op, k)
		}
		seen[k] = rt.op
	}
}
