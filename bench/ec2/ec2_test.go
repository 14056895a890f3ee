package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awsauth"
)

// TestSignerVerifies: what the bench sends passes euca's own SigV4 check,
// request after request, through the same endpoint code the benchmark
// drives (an in-process server that verifies every request).
func TestSignerVerifies(t *testing.T) {
	const access, secret = "AKIABENCHTEST0000000", "bench-test-secret"
	var verified, refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		params, _ := url.ParseQuery(string(body))
		res, err := awsauth.Verify(r.Context(), awsauth.Request{HTTP: r, Body: body, Params: params, Style: awsauth.StyleQuery, Service: "ec2"},
			func(_ context.Context, id string) (string, error) {
				if id != access {
					return "", errors.New("unknown key")
				}
				return secret, nil
			}, time.Now())
		if err != nil || res.Version != 4 || res.Service != "ec2" || res.Region != "eu-bench-1" || params.Get("Action") != "DescribeKeyPairs" {
			refused.Add(1)
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<Response><Errors><Error><Code>AuthFailure</Code><Message>refused</Message></Error></Errors></Response>`)
			return
		}
		verified.Add(1)
		io.WriteString(w, trivialKeyPairs)
	}))
	defer srv.Close()
	ep, err := newEndpoint("test", srv.URL+"/services/Eucalyptus", access, secret, "eu-bench-1", 4)
	if err != nil {
		t.Fatal(err)
	}
	r := drive(context.Background(), 4, 0, 50*time.Millisecond, simple(ep, "DescribeKeyPairs", url.Values{"KeyName.1": {"a b+c/é"}}))
	if r.errs > 0 || r.ops == 0 || refused.Load() > 0 || verified.Load() == 0 {
		t.Fatalf("%d operations, %d errors (first: %v), %d refused", r.ops, r.errs, r.firstErr, refused.Load())
	}
	if r.pct(50) > r.pct(99) || r.rps() <= 0 {
		t.Errorf("p50 %s, p99 %s, %f/s", r.pct(50), r.pct(99), r.rps())
	}
	// A wrong secret is refused, and counted as an error rather than a
	// fast operation.
	if ep, err = newEndpoint("test", srv.URL+"/services/Eucalyptus", access, "wrong", "eu-bench-1", 1); err != nil {
		t.Fatal(err)
	}
	r = drive(context.Background(), 1, 0, 0, simple(ep, "DescribeKeyPairs", nil))
	if r.ops != 0 || r.errs == 0 || !strings.Contains(r.firstErr.Error(), "AuthFailure") {
		t.Errorf("a bad signature: %d ops, %d errors, %v", r.ops, r.errs, r.firstErr)
	}
	t.Logf("%d requests verified", verified.Load())
}

// TestBenchSmoke runs the whole benchmark for a few requests per cell: euca
// (built from this tree, --driver sim) and moto_server, the small account
// and a store of 3 instances launched 2 at a time. It checks that every
// cell measured something, never how fast. moto_server, qemu-img,
// mkfs.ext4 and mkswap are required under CI.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts euca and moto")
	}
	for _, tool := range []string{"moto_server", "qemu-img", "mkfs.ext4", "mkswap"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	// Not t.TempDir: euca runs as nobody under root, so its binary and
	// directory must be reachable by others.
	dir, err := os.MkdirTemp("", "euca-bench-ec2-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "euca")
	t0 := time.Now()
	build := exec.Command("go", "build", "-o", bin, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built euca in %s", time.Since(t0).Round(time.Millisecond))
	out, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := run(ctx, config{eucaBin: bin, work: filepath.Join(dir, "work"), d: 100 * time.Millisecond,
		conc: []int{2}, small: 2, instances: 3, batch: 2, out: out})
	if err != nil {
		t.Fatal(err)
	}
	// Five calls of the small account, two of the large store.
	if len(rep.rows) != 7 {
		t.Fatalf("%d rows, want 7", len(rep.rows))
	}
	for _, x := range rep.rows {
		if x.euca.ops == 0 || x.euca.errs > 0 || !x.hasMoto || x.moto.ops == 0 || x.moto.errs > 0 {
			t.Errorf("%s: euca %d ops, %d errors (%v); moto %d ops, %d errors (%v)", x.call,
				x.euca.ops, x.euca.errs, x.euca.firstErr, x.moto.ops, x.moto.errs, x.moto.firstErr)
		}
	}
	if len(rep.launches) != 2 || rep.launches[0].n != 3 || rep.launches[1].n != 3 {
		t.Errorf("launches: %+v", rep.launches)
	}
	b, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(b), "| DescribeKeyPairs (2 in the account) | 2 |") {
		t.Errorf("report:\n%s", b)
	}
}
