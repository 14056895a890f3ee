package walrus

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/walrus/backend"
)

const (
	// maxPutSize is S3's largest single PUT, and largest part.
	maxPutSize = 5 << 30
	// maxObjectSize is S3's largest object (a multipart upload).
	maxObjectSize = 5 << 40
)

// checksumAlgo is one of the additional checksums S3 clients may send
// (x-amz-checksum-*), in a header or in the trailer of an aws-chunked body.
type checksumAlgo struct {
	name   string // as in x-amz-sdk-checksum-algorithm: CRC32, ...
	header string // x-amz-checksum-crc32, ...
	new    func() hash.Hash
}

// crc64NVME is CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5), the
// checksum newer SDKs default to.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var checksumAlgos = []checksumAlgo{
	{"CRC32", "x-amz-checksum-crc32", func() hash.Hash { return crc32.NewIEEE() }},
	{"CRC32C", "x-amz-checksum-crc32c", func() hash.Hash { return crc32.New(castagnoli) }},
	{"CRC64NVME", "x-amz-checksum-crc64nvme", func() hash.Hash { return crc64.New(crc64NVME) }},
	{"SHA1", "x-amz-checksum-sha1", sha1.New},
	{"SHA256", "x-amz-checksum-sha256", sha256.New},
}

func checksumByHeader(name string) *checksumAlgo {
	name = strings.ToLower(strings.TrimSpace(name))
	for i := range checksumAlgos {
		if checksumAlgos[i].header == name {
			return &checksumAlgos[i]
		}
	}
	return nil
}

// isStreaming reports an aws-chunked payload.
func isStreaming(payloadHash string) bool { return strings.HasPrefix(payloadHash, "STREAMING-") }

// bodyCheck reads a request body and verifies, when the stream ends,
// everything the client declared about it: its length, the SHA-256 the
// signature covers, Content-MD5, an x-amz-checksum-*, and for aws-chunked
// bodies every chunk signature. io.EOF is returned only once all of them
// held; a mismatch is returned in its place as the S3 error. A consumer
// that stores what it read only at io.EOF therefore never stores a body
// that failed a check.
type bodyCheck struct {
	src     io.Reader
	chunked *awsauth.ChunkedReader
	size    int64 // expected length of the (decoded) body; -1 unknown
	n       int64

	md5     hash.Hash
	sha     hash.Hash
	wantSHA string
	wantMD5 []byte

	ck        *checksumAlgo
	ckHash    hash.Hash
	wantCK    string // base64; "" when it comes in the trailer
	ckTrailer bool

	// hashers digest the data on other goroutines, so that MD5 (the
	// slowest) runs beside SHA-256, the checksum and the disk write.
	hashers *hashers
	err     error
}

// readError is a failure to read the client's body (not a check).
type readError struct{ err error }

func (e *readError) Error() string { return "read request body: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// newBodyCheck wraps a request's body (raw as it arrived: aws-chunked is
// decoded here). size is the declared decoded length, -1 when unknown.
func newBodyCheck(r *request, body io.Reader, size int64) (*bodyCheck, error) {
	h := r.http.Header
	c := &bodyCheck{src: body, size: size, md5: md5.New()}
	var hashes []hash.Hash
	hashes = append(hashes, c.md5)
	if isStreaming(r.auth.PayloadHash) {
		c.chunked = awsauth.DecodeChunked(body, r.auth)
		c.src = c.chunked
	} else if ph := r.auth.PayloadHash; len(ph) == 64 && !isStreaming(ph) && ph != awsauth.UnsignedPayload {
		c.sha = sha256.New()
		c.wantSHA = ph
		hashes = append(hashes, c.sha)
	}
	if v := h.Get("Content-MD5"); v != "" {
		sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(sum) != md5.Size {
			return nil, s3Error("InvalidDigest")
		}
		c.wantMD5 = sum
	}
	for i := range checksumAlgos {
		a := &checksumAlgos[i]
		if v := h.Get(a.header); v != "" {
			if c.ck != nil {
				return nil, s3Errorf("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
			}
			c.ck, c.wantCK = a, strings.TrimSpace(v)
		}
	}
	if t := h.Get("X-Amz-Trailer"); t != "" {
		a := checksumByHeader(t)
		switch {
		case a == nil:
			return nil, s3Errorf("InvalidRequest", "The value specified in the x-amz-trailer header is not supported")
		case c.chunked == nil:
			return nil, s3Errorf("InvalidRequest", "x-amz-trailer needs an aws-chunked body with a trailer.")
		case c.ck != nil && c.ck != a:
			return nil, s3Errorf("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		c.ck, c.ckTrailer = a, true
	}
	if c.ck != nil {
		c.ckHash = c.ck.new()
		hashes = append(hashes, c.ckHash)
	}
	c.hashers = newHashers(hashes)
	return c, nil
}

func (c *bodyCheck) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.src.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.hashers.write(p[:n])
		if c.size >= 0 && c.n > c.size {
			c.err = s3Errorf("InvalidRequest", "The body is longer than its declared length.")
			c.Close()
			return 0, c.err
		}
	}
	switch {
	case err == io.EOF:
		c.Close()
		if verr := c.verify(); verr != nil {
			c.err = verr
			return n, verr
		}
		c.err = io.EOF
		return n, io.EOF
	case err != nil:
		c.Close()
		var ae *awsauth.Error
		if errors.As(err, &ae) {
			c.err = chunkError(ae)
		} else {
			c.err = &readError{err}
		}
		return n, c.err
	}
	return n, nil
}

// Close stops the hashing goroutines; harmless twice. Whoever stops
// reading before io.EOF must call it.
func (c *bodyCheck) Close() { c.hashers.close() }

// chunkError maps a refused aws-chunked body.
func chunkError(ae *awsauth.Error) error {
	if ae.Kind == awsauth.KindBadSignature {
		return s3Error("SignatureDoesNotMatch")
	}
	return s3Errorf("IncompleteBody", "%s", ae.Msg)
}

// verify runs the checks of a complete body.
func (c *bodyCheck) verify() error {
	if c.chunked != nil && c.size >= 0 && c.chunked.DecodedLen() != c.size {
		return s3Errorf("IncompleteBody", "The decoded body is %d bytes, not the %d of x-amz-decoded-content-length.", c.chunked.DecodedLen(), c.size)
	}
	if c.size >= 0 && c.n != c.size {
		return s3Error("IncompleteBody")
	}
	if c.sha != nil && hex.EncodeToString(c.sha.Sum(nil)) != strings.ToLower(c.wantSHA) {
		return s3Error("XAmzContentSHA256Mismatch")
	}
	if c.wantMD5 != nil && !bytes.Equal(c.md5.Sum(nil), c.wantMD5) {
		return s3Error("BadDigest")
	}
	if c.ck != nil {
		want := c.wantCK
		if c.ckTrailer {
			if t := c.chunked.Trailer(); t != nil {
				want = strings.TrimSpace(t.Get(c.ck.header))
			}
			if want == "" {
				return s3Errorf("InvalidRequest", "The trailer does not carry the %s announced in x-amz-trailer.", c.ck.header)
			}
		}
		if base64.StdEncoding.EncodeToString(c.ckHash.Sum(nil)) != want {
			return s3Errorf("BadDigest", "The %s you specified did not match the calculated checksum.", c.ck.name)
		}
	}
	return nil
}

// etag is the hex MD5 of what was read.
func (c *bodyCheck) etag() string { return hex.EncodeToString(c.md5.Sum(nil)) }

// checksum is the verified additional checksum as stored ("CRC32:<b64>"),
// "" when the client sent none.
func (c *bodyCheck) checksum() string {
	if c.ck == nil {
		return ""
	}
	return c.ck.name + ":" + base64.StdEncoding.EncodeToString(c.ckHash.Sum(nil))
}

// payload returns the verified, decoded body of a route that reads a small
// document.
func (r *request) payload() ([]byte, error) {
	if r.decoded != nil {
		return r.decoded, nil
	}
	size := int64(-1)
	if !isStreaming(r.auth.PayloadHash) {
		size = int64(len(r.body))
	}
	c, err := newBodyCheck(r, bytes.NewReader(r.body), size)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		return nil, uploadError(err)
	}
	r.decoded = b
	return b, nil
}

// declaredSize is the length of the object data a request says it sends:
// X-Amz-Decoded-Content-Length for aws-chunked bodies, Content-Length
// otherwise. S3 refuses either missing with 411 MissingContentLength, and
// so does Walrus: every limit is checked against the declared length
// before a byte is stored, and the body may not run past it.
func declaredSize(r *request) (int64, error) {
	hr := r.http
	if isStreaming(r.auth.PayloadHash) {
		v := hr.Header.Get("X-Amz-Decoded-Content-Length")
		if v == "" {
			return 0, s3Errorf("MissingContentLength", "You must provide the x-amz-decoded-content-length header with an aws-chunked body.")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, s3Errorf("InvalidArgument", "x-amz-decoded-content-length is not a valid length.")
		}
		return n, nil
	}
	if hr.ContentLength < 0 {
		return 0, s3Error("MissingContentLength")
	}
	return hr.ContentLength, nil
}

// uploadError maps what stopped a body from being stored.
func uploadError(err error) error {
	var ae *awserr.Error
	if errors.As(err, &ae) {
		return ae
	}
	var re *readError
	switch {
	case errors.Is(err, httplimit.ErrBodyTimeout):
		return s3Error("RequestTimeout").WithCause(err)
	case errors.As(err, &re):
		return s3Error("IncompleteBody").WithCause(err)
	case errors.Is(err, context.Canceled):
		return s3Errorf("IncompleteBody", "The request was cancelled.").WithCause(err)
	case errors.Is(err, backend.ErrNotFound):
		return s3Error("NoSuchBucket").WithCause(err)
	}
	return awserr.Internal(fmt.Errorf("store object data: %w", err))
}

// hashers feeds the same data to a set of hashes on two goroutines: MD5,
// which every object needs and which is the slowest, on one, the rest on
// the other. Data is copied into pooled buffers, so the caller may reuse
// its buffer at once; at most hashQueue buffers wait per goroutine, which
// bounds memory.
type hashers struct {
	lanes  []chan *hashBuf
	done   sync.WaitGroup
	cur    *hashBuf // filling; handed over when full, or at close
	closed bool
}

type hashBuf struct {
	b    []byte
	refs atomic.Int32
}

const (
	hashBufSize = 1 << 20
	hashQueue   = 4
)

var hashBufPool = sync.Pool{New: func() any { return &hashBuf{b: make([]byte, 0, hashBufSize)} }}

func newHashers(hs []hash.Hash) *hashers {
	groups := [][]hash.Hash{hs[:1]}
	if len(hs) > 1 {
		groups = append(groups, hs[1:])
	}
	h := &hashers{}
	for _, g := range groups {
		ch := make(chan *hashBuf, hashQueue)
		h.lanes = append(h.lanes, ch)
		h.done.Add(1)
		go func() {
			defer h.done.Done()
			for buf := range ch {
				for _, x := range g {
					x.Write(buf.b)
				}
				if buf.refs.Add(-1) == 0 {
					buf.b = buf.b[:0]
					hashBufPool.Put(buf)
				}
			}
		}()
	}
	return h
}

func (h *hashers) write(p []byte) {
	for len(p) > 0 {
		if h.cur == nil {
			h.cur = hashBufPool.Get().(*hashBuf)
			h.cur.b = h.cur.b[:0]
		}
		n := min(len(p), hashBufSize-len(h.cur.b))
		h.cur.b = append(h.cur.b, p[:n]...)
		p = p[n:]
		if len(h.cur.b) == hashBufSize {
			h.flush()
		}
	}
}

func (h *hashers) flush() {
	if h.cur == nil || len(h.cur.b) == 0 {
		return
	}
	h.cur.refs.Store(int32(len(h.lanes)))
	for _, ch := range h.lanes {
		ch <- h.cur
	}
	h.cur = nil
}

// close waits until every byte written has been hashed.
func (h *hashers) close() {
	if h.closed {
		return
	}
	h.closed = true
	h.flush()
	for _, ch := range h.lanes {
		close(ch)
	}
	h.done.Wait()
}
