package edge

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/httplimit"
)

func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Service", name)
		_, _ = w.Write(body)
	})
}

func TestRouting(t *testing.T) {
	rt := &Router{EC2: named("ec2"), STS: named("sts"), IAM: named("iam"), S3: named("s3")}
	sigv4 := func(service string) string {
		return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-euca-1/" + service + "/aws4_request, SignedHeaders=host, Signature=00"
	}
	for _, c := range []struct {
		name, method, target, auth, body, want string
	}{
		{"legacy ec2 path", "GET", "/services/Eucalyptus?Action=DescribeRegions", "", "", "ec2"},
		{"legacy ec2 path wins over scope", "POST", "/services/Eucalyptus/", sigv4("s3"), "Action=X", "ec2"},
		{"legacy walrus path", "GET", "/services/Walrus/bucket/key", "", "", "s3"},
		{"legacy sts path", "POST", "/services/Tokens", "", "Action=GetCallerIdentity", "sts"},
		{"legacy iam path", "POST", "/services/Euare", "", "Action=GetUser", "iam"},
		{"prefix must end at a segment", "GET", "/services/EucalyptusX", "", "", "s3"},
		{"sigv4 scope sts", "POST", "/", sigv4("sts"), "Action=GetCallerIdentity&Version=2011-06-15", "sts"},
		{"sigv4 scope ec2", "POST", "/", sigv4("ec2"), "Action=DescribeRegions", "ec2"},
		{"sigv4 scope s3", "PUT", "/bucket", sigv4("s3"), "", "s3"},
		{"presigned scope", "GET", "/bucket/key?X-Amz-Credential=AKID%2F20261125%2Fus-euca-1%2Fs3%2Faws4_request", "", "", "s3"},
		{"sigv2 action in query", "GET", "/?Action=DescribeKeyPairs&SignatureVersion=2", "", "", "ec2"},
		{"sigv2 sts action in form", "POST", "/", "", "Action=GetCallerIdentity&SignatureVersion=2", "sts"},
		{"sigv2 iam action in form", "POST", "/", "", "Action=GetUser&SignatureVersion=2", "iam"},
		{"plain s3", "GET", "/", "AWS AKID:sig", "", "s3"},
		{"s3 object put", "PUT", "/bucket/key", "AWS AKID:sig", "Action=not-a-form-post", "s3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			if c.method == "POST" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			}
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, r)
			if got := w.Header().Get("X-Service"); got != c.want {
				t.Errorf("routed to %q, want %q", got, c.want)
			}
			// The body a router peeked at reaches the handler whole.
			if w.Body.String() != c.body {
				t.Errorf("handler saw body %q, want %q", w.Body.String(), c.body)
			}
		})
	}
}

func TestUnavailableRole(t *testing.T) {
	rt := &Router{EC2: named("ec2")}
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("GET", "/bucket", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "<Code>ServiceUnavailable</Code>") {
		t.Errorf("s3 without walrus: %d %s", w.Code, w.Body.String())
	}
}

// TestPeekCharged: the form body the router reads before any signature is
// checked counts against the listener's budget of such documents
// (httplimit.Config.Documents), so that many connections each sending a
// form to peek at cannot hold more memory than the budget.
func TestPeekCharged(t *testing.T) {
	hold, held := make(chan struct{}), make(chan struct{})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(held)
			<-hold // still working, its peeked form not yet read
		}
		if _, err := httplimit.ReadDocument(r, 80); errors.Is(err, httplimit.ErrBusy) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	rt := &Router{EC2: api, STS: api, IAM: api, S3: api}
	srv := httptest.NewServer(httplimit.Config{Documents: 100}.Body(rt))
	defer srv.Close()
	post := func(path string, n int) (*http.Response, error) {
		return http.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader("Action="+strings.Repeat("a", n-7)))
	}
	done := make(chan error, 1)
	go func() {
		resp, err := post("/hold", 70)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-held
	resp, err := post("/", 40)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(hold)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a form read past the documents' budget: %d, want 503", resp.StatusCode)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The peek's share is given back when its request ends.
	if resp, err := post("/", 80); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("budget not given back: %v %v", resp, err)
	}
}
