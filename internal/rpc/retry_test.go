package rpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/reqid"
)

// flaky serves the test API after failing its first calls: "drop" closes
// the connection without an answer, "hang" answers nothing until the
// caller gives up.
type flaky struct {
	mode  string
	fails int64
	calls atomic.Int64
	ids   chan string
	next  http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	select {
	case f.ids <- r.Header.Get(reqid.Header):
	default:
	}
	if n <= f.fails {
		switch f.mode {
		case "drop":
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		case "hang":
			// The body read first: only then does the server watch the
			// connection and end the context when the caller hangs up.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}
		return
	}
	f.next.ServeHTTP(w, r)
}

var quick = Policy{Timeout: 10 * time.Second, Attempts: 4, First: time.Millisecond, Max: 4 * time.Millisecond}

func TestPolicyRetriesTransportErrors(t *testing.T) {
	ca := testCA(t)
	for _, tc := range []struct {
		name      string
		mode      string
		fails     int64
		policy    Policy
		text      string
		wantCalls int64
		wantErr   func(error) bool
	}{
		{"dropped twice then answered", "drop", 2, quick, "hi", 3, nil},
		{"dropped every time", "drop", 100, quick, "hi", 4, Transient},
		{"an answered error is final", "drop", 0, quick, "gone", 1, func(err error) bool { return errors.Is(err, errGone) }},
		{"once is once", "drop", 1, Policy{Timeout: 10 * time.Second, Attempts: 1}, "hi", 1, Transient},
		{"a hung attempt times out and the next answers", "hang", 1,
			Policy{Timeout: 300 * time.Millisecond, Attempts: 3, First: time.Millisecond, Max: time.Millisecond}, "hi", 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{mode: tc.mode, fails: tc.fails, ids: make(chan string, 8), next: testMux(t)}
			addr := serve(t, ca, true, f)
			cert, err := ca.IssueClient("test")
			if err != nil {
				t.Fatal(err)
			}
			c := NewClient(addr, ca, cert, true, slog.New(slog.DiscardHandler))
			ctx := reqid.With(context.Background(), "req-retry")
			var out echo
			err = tc.policy.Do(ctx, func(ctx context.Context) error {
				return testErrors.Decode(c.Call(ctx, "POST", "/echo", echo{Text: tc.text}, &out))
			})
			if tc.wantErr == nil && err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("error %v", err)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Errorf("%d calls, want %d", got, tc.wantCalls)
			}
			if tc.wantErr == nil && out.ID != "req-retry" {
				t.Errorf("answer %+v: the request id was lost", out)
			}
			close(f.ids)
			for id := range f.ids {
				if id != "req-retry" {
					t.Errorf("a try carried request id %q", id)
				}
			}
		})
	}
}

// TestPolicyStopsWithCaller: a caller that gives up is not kept waiting
// for the tries left.
func TestPolicyStopsWithCaller(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Policy{Attempts: 1000, First: time.Hour, Max: time.Hour}.Do(ctx, func(context.Context) error {
		calls++
		cancel()
		return &netError{}
	})
	if err == nil || calls != 1 {
		t.Fatalf("%d calls, error %v", calls, err)
	}
}

type netError struct{}

func (*netError) Error() string   { return "connection reset" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return false }

func TestTransient(t *testing.T) {
	if Transient(nil) || Transient(errors.New("encode")) || Transient(&Error{Code: CodeInternal, Status: 500}) {
		t.Error("not transport errors taken for transient")
	}
	if !Transient(&netError{}) {
		t.Error("a network error is transient")
	}
}
