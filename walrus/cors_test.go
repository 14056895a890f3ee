package walrus

import (
	"testing"
)

const corsDoc = `<CORSConfiguration>
<CORSRule><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>
<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>
<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
</CORSConfiguration>`

// TestCORS: preflights are answered from the bucket's CORS configuration
// (origin wildcards, methods, requested headers), refused with S3's codes
// otherwise, and actual requests with an Origin get the Access-Control-*
// headers of the rule that allows them.
func TestCORS(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/cors-b", nil), 200)
	e.must(e.do(a, "PUT", "/cors-b/k", []byte("data")), 200)
	e.wantErr(e.do(anon, "OPTIONS", "/cors-b/k", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET"), 403, "AccessForbidden")
	e.wantErr(e.do(a, "PUT", "/cors-b?cors", []byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>`)), 400, "InvalidRequest")
	e.wantErr(e.do(a, "PUT", "/cors-b?cors", []byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`)), 400, "InvalidRequest")
	e.must(e.do(a, "PUT", "/cors-b?cors", []byte(corsDoc)), 200)

	pre := func(path, origin, method, headers string) resp {
		t.Helper()
		h := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			h = append(h, "Access-Control-Request-Headers", headers)
		}
		return e.do(anon, "OPTIONS", path, nil, h...)
	}
	r := e.must(pre("/cors-b/k?uploads", "https://app.example.com", "PUT", "Content-Type, X-Amz-Date"), 200)
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Methods":     "PUT, POST",
		"Access-Control-Allow-Headers":     "content-type, x-amz-date",
		"Access-Control-Expose-Headers":    "ETag",
		"Access-Control-Max-Age":           "600",
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("preflight %s: %q, want %q", k, got, v)
		}
	}
	r = e.must(pre("/cors-b", "http://anywhere", "GET", ""), 200)
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("wildcard origin: %v", r.header)
	}
	for name, c := range map[string][3]string{
		"origin not allowed":  {"https://example.com", "PUT", ""},
		"method not allowed":  {"https://app.example.com", "DELETE", ""},
		"header not allowed":  {"https://app.example.com", "PUT", "Authorization"},
		"method of no origin": {"http://anywhere", "PUT", ""},
	} {
		r := pre("/cors-b/k", c[0], c[1], c[2])
		e.wantErr(r, 403, "AccessForbidden")
		if name == "origin not allowed" && r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("refused preflight has CORS headers: %v", r.header)
		}
	}
	e.wantErr(e.do(anon, "OPTIONS", "/cors-b/k", nil, "Access-Control-Request-Method", "GET"), 400, "BadRequest")
	e.wantErr(e.do(anon, "OPTIONS", "/cors-b/k", nil, "Origin", "http://x"), 400, "BadRequest")
	e.wantErr(pre("/nosuch-bucket/k", "http://x", "GET", ""), 404, "NoSuchBucket")

	// Actual requests.
	r = e.must(e.do(a, "GET", "/cors-b/k", nil, "Origin", "http://anywhere"), 200)
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Vary") == "" {
		t.Errorf("GET with origin: %v", r.header)
	}
	r = e.must(e.do(a, "PUT", "/cors-b/k2", []byte("x"), "Origin", "https://app.example.com"), 200)
	if r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.header.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Errorf("PUT with origin: %v", r.header)
	}
	if r := e.must(e.do(a, "DELETE", "/cors-b/k2", nil, "Origin", "https://app.example.com"), 204); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("DELETE no rule allows got CORS headers: %v", r.header)
	}
	if r := e.must(e.do(a, "GET", "/cors-b/k", nil), 200); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no Origin, CORS headers: %v", r.header)
	}
}
