package nc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/walrus/images"
)

// A download that breaks is resumed from the byte it reached; it gives up
// after resumeAttempts tries in a row that moved nothing, waiting
// resumeBackoff, then twice as long each time, between them.
var (
	resumeAttempts = 6
	resumeBackoff  = 500 * time.Millisecond
)

// HTTPImageSource reads images from Walrus's image handler
// (images.Service.Handler) through client, over mutual TLS. Its errors are
// the ones Walrus gives in process (errors.Is(err, images.ErrUnknownImage)).
// It streams the body as it arrives: the image cache hashes what it writes
// and keeps nothing that does not match ref's SHA-256 and size, so a short
// or tampered body fails there. A connection that breaks (a front-end
// restarting, a network blip: images cross the LAN to compute hosts) is
// resumed with a range request from where it stopped, rather than failing
// the instance or fetching gigabytes again.
func HTTPImageSource(client *rpc.Client) ImageSource {
	return ImageSourceFunc(func(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
		q := url.Values{"sha256": {ref.SHA256}}
		if ref.Size > 0 {
			q.Set("size", strconv.FormatInt(ref.Size, 10))
		}
		path := images.ImagePath + url.PathEscape(ref.ID) + "?" + q.Encode()
		r := &resumingReader{ctx: ctx, id: ref.ID, open: func(off int64) (io.ReadCloser, error) {
			return client.OpenFrom(ctx, path, off)
		}}
		if err := r.reopen(nil); err != nil {
			return nil, err
		}
		return r, nil
	})
}

// resumingReader reads one image download, reopening it from the offset
// reached when the connection breaks.
type resumingReader struct {
	ctx  context.Context
	id   string
	open func(offset int64) (io.ReadCloser, error)
	cur  io.ReadCloser
	off  int64
}

func (r *resumingReader) Read(p []byte) (int, error) {
	if r.cur == nil {
		return 0, io.ErrClosedPipe
	}
	n, err := r.cur.Read(p)
	r.off += int64(n)
	if err == nil || errors.Is(err, io.EOF) || r.ctx.Err() != nil {
		return n, err
	}
	// Broken mid-image: start again from here.
	r.cur.Close()
	r.cur = nil
	if rerr := r.reopen(err); rerr != nil {
		return n, rerr
	}
	return n, nil
}

func (r *resumingReader) Close() error {
	if r.cur == nil {
		return nil
	}
	err := r.cur.Close()
	r.cur = nil
	return err
}

// reopen opens the download at r.off, retrying with backoff while the
// failure is the connection's; an answer of Walrus's (no such image, a
// digest mismatch) is final. cause is the error that broke the last
// connection, nil for the first open.
func (r *resumingReader) reopen(cause error) error {
	wait := resumeBackoff
	for attempt := 1; ; attempt++ {
		rc, err := r.open(r.off)
		if err == nil {
			r.cur = rc
			return nil
		}
		if !transient(err) || attempt >= resumeAttempts || r.ctx.Err() != nil {
			err = images.Errors.Decode(err)
			if cause != nil {
				return fmt.Errorf("fetch image %s from walrus: resuming at byte %d after %v: %w", r.id, r.off, cause, err)
			}
			return fmt.Errorf("fetch image %s from walrus: %w", r.id, err)
		}
		select {
		case <-r.ctx.Done():
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// transient says whether a failed open may succeed if tried again: the
// connection's failures (refused, reset, timed out, cut short) and Walrus's
// 5xx answers are; its other answers (no such image, a digest mismatch)
// and a TLS refusal (a certificate the other side will not take) are not.
func transient(err error) bool {
	var answered *rpc.Error
	if errors.As(err, &answered) {
		return answered.Status >= http.StatusInternalServerError
	}
	// The other side's TLS alert (crypto/tls reports it as a net.OpError
	// of op "remote error") or our refusal of its certificate.
	var op *net.OpError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &op) && op.Op == "remote error" || errors.As(err, &verify) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
