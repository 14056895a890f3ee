package awsauth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const (
	// maxChunkLine bounds a chunk header or trailer line.
	maxChunkLine = 4096
	// maxChunkSize bounds one chunk: S3's largest single PUT. Chunks are
	// streamed, so this is not memory.
	maxChunkSize = 5 << 30
	// maxTrailerBytes bounds the whole trailer section.
	maxTrailerBytes = 16 << 10
)

var (
	errChunkFormat    = &Error{Kind: KindMalformed, Msg: "The aws-chunked body is malformed."}
	errChunkTruncated = &Error{Kind: KindMalformed, Msg: "The aws-chunked body ended before its final chunk."}
	errNotChunked     = &Error{Kind: KindUnsupported, Msg: "This streaming payload signature is not supported."}
)

// ChunkedReader decodes an aws-chunked body (Content-Encoding: aws-chunked),
// checking each chunk's signature when the payload is signed.
//
// Data is passed on as it arrives, so memory stays bounded whatever the
// chunk size; a chunk's signature is checked when its last byte has been
// read, and a mismatch is returned with that Read. io.EOF is returned only
// after the final chunk (and trailer) verified: store what was read only
// once Read has returned io.EOF.
type ChunkedReader struct {
	br     *bufio.Reader
	signed bool // chunk-signature on every chunk
	// trailer: a trailer section follows the final chunk, signed when
	// signed is set.
	trailer bool

	key       []byte
	date      string
	scope     string
	prevSig   string // hex, the chain: seed, then each chunk's signature
	left      int64  // bytes of the current chunk not yet read
	sum       hash.Hash
	chunkSig  []byte // the signature the client sent for the current chunk
	err       error  // sticky: io.EOF once done
	trailers  http.Header
	decodedSz int64
}

// NewChunkedReader returns a reader of the decoded body of a request
// verified as res, whose PayloadHash is one of the streaming values:
//
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk is
//     "hex-size;chunk-signature=sig\r\n data \r\n", its signature chained
//     from the seed (res.Signature); the last chunk has size 0.
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the same, then trailer
//     lines and x-amz-trailer-signature.
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER: "hex-size\r\n data \r\n" chunks
//     and trailer lines, none signed (the request itself is).
//
// Any other payload hash leaves the body as it is: it was not aws-chunked.
// The dynamic type is *ChunkedReader in the streaming cases.
func NewChunkedReader(body io.Reader, res Result) io.Reader {
	switch res.PayloadHash {
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return DecodeChunked(body, res)
	}
	if strings.HasPrefix(res.PayloadHash, "STREAMING-") {
		return &ChunkedReader{err: errNotChunked}
	}
	return body
}

// DecodeChunked is NewChunkedReader for a payload known to be aws-chunked.
func DecodeChunked(body io.Reader, res Result) *ChunkedReader {
	c := &ChunkedReader{
		br:      bufio.NewReaderSize(body, maxChunkLine),
		sum:     sha256.New(),
		signed:  res.PayloadHash == StreamingPayload || res.PayloadHash == StreamingPayloadTrailer,
		trailer: res.PayloadHash == StreamingPayloadTrailer || res.PayloadHash == StreamingUnsignedTrailer,
	}
	switch {
	case res.PayloadHash != StreamingPayload && res.PayloadHash != StreamingPayloadTrailer && res.PayloadHash != StreamingUnsignedTrailer:
		c.err = errNotChunked
	case c.signed:
		if res.Version != 4 || len(res.SigningKey) == 0 || len(res.Date) < 8 || res.Signature == "" {
			c.err = &Error{Kind: KindMalformed, Msg: "A signed aws-chunked body needs a SigV4 Authorization header."}
			break
		}
		c.key = res.SigningKey
		c.date = res.Date
		c.scope = res.Date[:8] + "/" + res.Region + "/" + res.Service + "/aws4_request"
		c.prevSig = strings.ToLower(res.Signature)
	}
	return c
}

// Trailer returns the trailers (x-amz-checksum-crc32 and the like) once
// Read has returned io.EOF, nil before. The caller checks the checksums
// they announce against the data.
func (c *ChunkedReader) Trailer() http.Header {
	if c.err != io.EOF {
		return nil
	}
	return c.trailers
}

// DecodedLen is the number of payload bytes decoded so far; at io.EOF, to
// compare with X-Amz-Decoded-Content-Length.
func (c *ChunkedReader) DecodedLen() int64 { return c.decodedSz }

func (c *ChunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.left == 0 {
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.sum.Write(p[:n])
	c.left -= int64(n)
	c.decodedSz += int64(n)
	if c.left == 0 {
		if err := c.endChunk(); err != nil {
			c.err = err
			return n, err
		}
		return n, nil
	}
	switch {
	case err == io.EOF:
		c.err = errChunkTruncated
		return n, c.err
	case err != nil:
		c.err = err
		return n, err
	}
	return n, nil
}

// readLine reads one CRLF-terminated line, without the CRLF. eofOK allows
// the stream to end cleanly instead (returned as io.EOF).
func (c *ChunkedReader) readLine(eofOK bool) (string, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(line) == 0 && eofOK:
		return "", io.EOF
	case err == io.EOF:
		return "", errChunkTruncated
	case errors.Is(err, bufio.ErrBufferFull):
		return "", errChunkFormat
	case err != nil:
		return "", err
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return "", errChunkFormat
	}
	return s, nil
}

// nextChunk reads a chunk header; on the final (zero-size) chunk it also
// reads the trailers and ends the stream with io.EOF.
func (c *ChunkedReader) nextChunk() error {
	line, err := c.readLine(false)
	if err != nil {
		return err
	}
	sizeHex, ext, hasExt := strings.Cut(line, ";")
	if sizeHex == "" || len(sizeHex) > 16 {
		return errChunkFormat
	}
	size, err := strconv.ParseInt(sizeHex, 16, 64)
	if err != nil || size < 0 || size > maxChunkSize {
		return errChunkFormat
	}
	if c.signed {
		v, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !hasExt || !ok {
			return errChunkFormat
		}
		if c.chunkSig, err = parseHexSignature(v); err != nil {
			return errChunkFormat
		}
	}
	c.left = size
	if size > 0 {
		return nil
	}
	// The final chunk: its signature covers the empty data.
	if err := c.verifyChunk(); err != nil {
		return err
	}
	if err := c.readTrailers(); err != nil {
		return err
	}
	// Nothing may follow.
	if _, err := c.br.ReadByte(); err != io.EOF {
		if err == nil {
			return errChunkFormat
		}
		return err
	}
	return io.EOF
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (c *ChunkedReader) endChunk() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errChunkTruncated
		}
		return err
	}
	if crlf != [2]byte{'\r', '\n'} {
		return errChunkFormat
	}
	return c.verifyChunk()
}

// verifyChunk checks the current chunk's signature:
//
//	HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" + date + "\n" + scope + "\n" +
//	          prevSig + "\n" + sha256("") + "\n" + sha256(chunk))
func (c *ChunkedReader) verifyChunk() error {
	if !c.signed {
		return nil
	}
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.date + "\n" + c.scope + "\n" + c.prevSig + "\n" +
		EmptySHA256 + "\n" + hex.EncodeToString(c.sum.Sum(nil))
	c.sum.Reset()
	want := hmacSHA256(c.key, sts)
	if !hmac.Equal(want, c.chunkSig) {
		return ErrBadSignature
	}
	c.prevSig = hex.EncodeToString(want)
	return nil
}

// readTrailers reads what follows the final chunk header: a bare CRLF, or
// for the -TRAILER payloads "name:value\r\n" lines (the last of them
// x-amz-trailer-signature when signed) and a CRLF. A stream that ends
// where that last CRLF belongs is accepted: some SDKs omit it.
func (c *ChunkedReader) readTrailers() error {
	if !c.trailer {
		return c.readFinalCRLF()
	}
	var canon bytes.Buffer
	var sig []byte
	total := 0
	c.trailers = http.Header{}
	for {
		line, err := c.readLine(true)
		if err == io.EOF || (err == nil && line == "") {
			break
		}
		if err != nil {
			return err
		}
		if total += len(line); total > maxTrailerBytes || sig != nil {
			return errChunkFormat
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if !ok || name == "" {
			return errChunkFormat
		}
		if name == "x-amz-trailer-signature" {
			if !c.signed {
				return errChunkFormat
			}
			if sig, err = parseHexSignature(value); err != nil {
				return errChunkFormat
			}
			continue
		}
		c.trailers.Add(name, value)
		canon.WriteString(name + ":" + value + "\n")
	}
	if !c.signed {
		return nil
	}
	if sig == nil {
		return &Error{Kind: KindMalformed, Msg: "The aws-chunked trailer lacks x-amz-trailer-signature."}
	}
	// HMAC(key, "AWS4-HMAC-SHA256-TRAILER\n" + date + "\n" + scope + "\n" +
	//           finalChunkSig + "\n" + sha256(canonical trailers))
	th := sha256.Sum256(canon.Bytes())
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.date + "\n" + c.scope + "\n" + c.prevSig + "\n" + hex.EncodeToString(th[:])
	if !hmac.Equal(hmacSHA256(c.key, sts), sig) {
		return ErrBadSignature
	}
	return nil
}

// readFinalCRLF reads the CRLF that closes a body without trailers (or
// accepts its absence at the end of the stream).
func (c *ChunkedReader) readFinalCRLF() error {
	line, err := c.readLine(true)
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	case line != "":
		return errChunkFormat
	}
	return nil
}
