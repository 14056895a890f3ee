package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/store"
)

// corsConfig is a bucket's CORS configuration as PutBucketCors stores it.
type corsConfig struct {
	Rules []corsRule `xml:"CORSRule"`
}

type corsRule struct {
	AllowedOrigins []string `xml:"AllowedOrigin"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedHeaders []string `xml:"AllowedHeader"`
	ExposeHeaders  []string `xml:"ExposeHeader"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds"`
}

// corsMethods are the methods a CORS rule may allow.
var corsMethods = map[string]bool{"GET": true, "PUT": true, "POST": true, "DELETE": true, "HEAD": true}

// maxCORSRules is S3's limit on a configuration's rules.
const maxCORSRules = 100

// checkCORS validates a PutBucketCors document as S3 does.
func checkCORS(body []byte) ([]byte, error) {
	var c corsConfig
	if err := xml.Unmarshal(body, &c); err != nil || len(c.Rules) == 0 || len(c.Rules) > maxCORSRules {
		return nil, s3Error("MalformedXML")
	}
	for _, rule := range c.Rules {
		if len(rule.AllowedMethods) == 0 || len(rule.AllowedOrigins) == 0 {
			return nil, s3Error("MalformedXML")
		}
		for _, m := range rule.AllowedMethods {
			if !corsMethods[m] {
				return nil, s3Errorf("InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is %s", m)
			}
		}
		for _, o := range rule.AllowedOrigins {
			if strings.Count(o, "*") > 1 {
				return nil, s3Errorf("InvalidRequest", "AllowedOrigin \"%s\" can not have more than one wildcard.", o)
			}
		}
		for _, h := range rule.AllowedHeaders {
			if strings.Count(h, "*") > 1 {
				return nil, s3Errorf("InvalidRequest", "AllowedHeader \"%s\" can not have more than one wildcard.", h)
			}
		}
	}
	return body, nil
}

// wildcardMatch matches s against a pattern with at most one "*", which
// stands for any run of characters.
func wildcardMatch(pattern, s string) bool {
	before, after, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}

// match finds the first rule that allows origin, method and every one of
// headers (lower case). wildOrigin tells that it matched by "*" alone.
func (c corsConfig) match(origin, method string, headers []string) (rule *corsRule, wildOrigin bool) {
	for i := range c.Rules {
		r := &c.Rules[i]
		originOK := false
		for _, o := range r.AllowedOrigins {
			if wildcardMatch(o, origin) {
				originOK, wildOrigin = true, o == "*"
				break
			}
		}
		methodOK := false
		for _, m := range r.AllowedMethods {
			methodOK = methodOK || m == method
		}
		if !originOK || !methodOK {
			continue
		}
		headersOK := true
		for _, h := range headers {
			ok := false
			for _, a := range r.AllowedHeaders {
				if wildcardMatch(strings.ToLower(a), h) {
					ok = true
					break
				}
			}
			headersOK = headersOK && ok
		}
		if headersOK {
			return r, wildOrigin
		}
	}
	return nil, false
}

// bucketCORS loads a bucket's CORS configuration; ok is false when it has
// none.
func (w *Walrus) bucketCORS(ctx context.Context, bucket string) (c corsConfig, ok bool, err error) {
	body, err := w.st.WalrusBucketConfig(ctx, bucket, "cors")
	if errors.Is(err, store.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, internal("bucket %s cors: %w", bucket, err)
	}
	if err := xml.Unmarshal([]byte(body), &c); err != nil {
		return c, false, internal("bucket %s cors: %w", bucket, err)
	}
	return c, true, nil
}

// corsVary is the Vary of every answer CORS shaped.
const corsVary = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

// setCORSHeaders writes what a matched rule allows.
func setCORSHeaders(h http.Header, rule *corsRule, wildOrigin bool, origin string) {
	if wildOrigin {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds != nil {
		h.Set("Access-Control-Max-Age", strconv.Itoa(*rule.MaxAgeSeconds))
	}
	h.Set("Vary", corsVary)
}

// corsPreflight answers a browser's preflight (OPTIONS) of a bucket or an
// object from the bucket's CORS configuration: 200 with what the first
// rule allowing the Origin, Access-Control-Request-Method and every one of
// Access-Control-Request-Headers allows, 403 AccessForbidden when none
// does. Preflights carry no credentials, so no permission is checked.
func (w *Walrus) corsPreflight(ctx context.Context, r *request) (*response, error) {
	origin := r.http.Header.Get("Origin")
	if origin == "" {
		return nil, s3Errorf("BadRequest", "Insufficient information. Origin request header needed.")
	}
	method := r.http.Header.Get("Access-Control-Request-Method")
	if !corsMethods[method] {
		if method == "" {
			method = "null"
		}
		return nil, s3Errorf("BadRequest", "Invalid Access-Control-Request-Method: %s", method)
	}
	var headers []string
	for _, v := range r.http.Header.Values("Access-Control-Request-Headers") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
				headers = append(headers, h)
			}
		}
	}
	if _, err := w.st.WalrusBucket(ctx, r.bucket); errors.Is(err, store.ErrNotFound) {
		return nil, s3Error("NoSuchBucket")
	} else if err != nil {
		return nil, internal("bucket %s: %w", r.bucket, err)
	}
	cfg, ok, err := w.bucketCORS(ctx, r.bucket)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, s3Errorf("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.")
	}
	rule, wild := cfg.match(origin, method, headers)
	if rule == nil {
		return nil, s3Error("AccessForbidden")
	}
	resp := newResponse(http.StatusOK)
	setCORSHeaders(resp.header, rule, wild, origin)
	if len(headers) > 0 {
		resp.header.Set("Access-Control-Allow-Headers", strings.Join(headers, ", "))
	}
	return resp, nil
}

// applyCORS adds the Access-Control-* headers to the answer of an actual
// request that names an Origin, when a rule of its bucket's CORS
// configuration allows that origin and the request's method. Without
// them, a browser hides the answer from the page.
func (w *Walrus) applyCORS(ctx context.Context, h http.Header, r *request) {
	origin := r.http.Header.Get("Origin")
	if origin == "" || r.bucket == "" || r.http.Method == http.MethodOptions {
		return
	}
	cfg, ok, err := w.bucketCORS(ctx, r.bucket)
	if err != nil {
		w.log.WarnContext(ctx, "cors", "bucket", r.bucket, "err", err)
		return
	}
	if !ok {
		return
	}
	if rule, wild := cfg.match(origin, r.http.Method, nil); rule != nil {
		setCORSHeaders(h, rule, wild, origin)
	}
}
