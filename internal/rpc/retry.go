package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"time"
)

// Policy is how one kind of call is made: the deadline of each attempt and,
// for an idempotent call, how often and how patiently it is tried again
// when no answer came. A call the peer answered, even with an error, is
// never tried again: the answer is the result.
type Policy struct {
	// Timeout is each attempt's deadline (a shorter one of the caller's
	// context wins). Zero means none of its own: the caller's context alone.
	Timeout time.Duration
	// Attempts is how many tries in all, the first included; below 2 the
	// call is made once.
	Attempts int
	// First is the wait after the first failed try; each later wait doubles
	// it, up to Max, less a random quarter so that many callers cut off at
	// once do not come back at once.
	First, Max time.Duration
}

// Idempotent is the policy of a call that is harmless twice (a describe, a
// terminate): four tries over about three seconds, each within 30 s.
var Idempotent = Policy{Timeout: 30 * time.Second, Attempts: 4, First: 250 * time.Millisecond, Max: 2 * time.Second}

// Once is the policy of a call that must not be repeated blindly (a launch):
// one try within 2 minutes. A launch that timed out is cleaned up by its
// caller, not re-sent.
var Once = Policy{Timeout: 2 * time.Minute, Attempts: 1}

// Do runs call under the policy: each try with its deadline; again after a
// wait while the error is Transient, tries remain and ctx lasts. It returns
// the last try's error.
func (p Policy) Do(ctx context.Context, call func(ctx context.Context) error) error {
	wait := p.First
	for try := 1; ; try++ {
		err := p.try(ctx, call)
		if err == nil || try >= p.Attempts || !Transient(err) || ctx.Err() != nil {
			return err
		}
		d := wait - time.Duration(rand.Int64N(int64(wait/4)+1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, max(p.Max, p.First))
	}
}

func (p Policy) try(ctx context.Context, call func(ctx context.Context) error) error {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	return call(ctx)
}

// Transient reports whether err means no answer came from the peer (it
// could not be reached, the connection broke, the attempt's deadline
// passed), so that an idempotent call may be tried again. An answer of the
// peer (*Error) is not transient, nor is a certificate the caller refused:
// trying again would meet the same certificate.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var answer *Error
	if errors.As(err, &answer) {
		return false
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &verify) {
		return false
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}
