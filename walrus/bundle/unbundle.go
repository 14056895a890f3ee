package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
)

// maxTarTrailer bounds what may follow the tar's end blocks: tarfile and
// GNU tar pad to a 10 KiB record, so 1 MiB is generous, and a bound keeps a
// crafted gzip stream from expanding without end there.
const maxTarTrailer = 1 << 20

// Unbundle streams a bundle's parts, in manifest order, through AES-CBC,
// gunzip and untar, writing the image to w. It checks, each with its own
// error: every part exists (ErrPartMissing) and has its digest
// (ErrPartDigest), the parts add up to bundled_size (ErrSize), the padding
// (ErrPadding), the gzip stream (ErrCompression), the tar holds exactly one
// regular file (ErrArchive) of the manifest's size (ErrSize), and the tar's
// SHA-1 is the manifest's digest (ErrImageDigest). It returns that digest
// and the image size.
//
// openPart opens a part by its file name; an error wrapping fs.ErrNotExist
// means the part is missing. Other errors, and those of w, are returned as
// they are (wrapped), not as a failed check.
//
// w receives data before the last checks are made: on error, discard what
// was written (write to a temporary file and rename it on success). Callers
// should bound m.Size before calling: Unbundle writes that many bytes.
func Unbundle(ctx context.Context, m *Manifest, key, iv []byte, openPart func(name string) (io.ReadCloser, error), w io.Writer) (digest string, size int64, err error) {
	if len(key) != aesKeySize || len(iv) != aes.BlockSize {
		return "", 0, fmt.Errorf("%w: key and IV must be %d bytes", ErrKeyDecrypt, aesKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", 0, err
	}
	pr := &partsReader{ctx: ctx, m: m, open: openPart}
	defer pr.close()
	dec := &cbcReader{src: pr, mode: cipher.NewCBCDecrypter(block, iv)}
	ww := &writeErrs{w: w}

	digest, size, err = unbundle(m, dec, ww)
	if err == nil {
		return digest, size, nil
	}
	if ww.err != nil || errors.Is(err, ErrPartMissing) || errors.Is(err, ErrPartDigest) || pr.ioErr != nil || ctx.Err() != nil {
		return "", 0, err
	}
	// Corrupt parts make the later stages fail too, and a flipped byte
	// usually trips gzip before its part has been read to the end: read the
	// rest of the parts so that the first failed check is the one reported.
	if perr := pr.drain(); perr != nil {
		return "", 0, perr
	}
	return "", 0, err
}

func unbundle(m *Manifest, dec *cbcReader, w io.Writer) (string, int64, error) {
	gz, err := gzip.NewReader(dec)
	if err != nil {
		return "", 0, stageErr(ErrCompression, err)
	}
	h := sha1.New()
	tarStream := io.TeeReader(&tagReader{r: gz, check: ErrCompression}, h)
	tr := tar.NewReader(tarStream)
	hdr, err := tr.Next()
	if err != nil {
		return "", 0, stageErr(ErrArchive, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return "", 0, fmt.Errorf("%w: the entry %q is not a regular file (type %q)", ErrArchive, hdr.Name, hdr.Typeflag)
	}
	if hdr.Size != m.Size {
		return "", 0, fmt.Errorf("%w: the image in the bundle is %d bytes, the manifest says %d", ErrSize, hdr.Size, m.Size)
	}
	n, err := io.Copy(w, tr)
	if err != nil {
		return "", 0, stageErr(ErrArchive, err)
	}
	if n != hdr.Size {
		return "", 0, fmt.Errorf("%w: the image ends after %d of %d bytes", ErrArchive, n, hdr.Size)
	}
	if next, err := tr.Next(); err == nil {
		return "", 0, fmt.Errorf("%w: more than one entry (second: %q)", ErrArchive, next.Name)
	} else if err != io.EOF {
		return "", 0, stageErr(ErrArchive, err)
	}
	// The record padding after the end blocks is part of the digest.
	k, err := io.Copy(io.Discard, io.LimitReader(tarStream, maxTarTrailer+1))
	if err != nil {
		return "", 0, stageErr(ErrCompression, err)
	}
	if k > maxTarTrailer {
		return "", 0, fmt.Errorf("%w: more than %d bytes after the end of the archive", ErrArchive, maxTarTrailer)
	}
	if err := gz.Close(); err != nil {
		return "", 0, stageErr(ErrCompression, err)
	}
	// Nothing may follow the gzip stream (the reader reads on into further
	// members, so this only sees the end).
	if k, err := io.Copy(io.Discard, dec); err != nil {
		return "", 0, stageErr(ErrCompression, err)
	} else if k > 0 {
		return "", 0, fmt.Errorf("%w: %d bytes after the gzip stream", ErrCompression, k)
	}
	if dec.src.(*partsReader).total != m.BundledSize {
		return "", 0, fmt.Errorf("%w: the parts hold %d bytes, bundled_size says %d", ErrSize, dec.src.(*partsReader).total, m.BundledSize)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != m.Digest {
		return "", 0, fmt.Errorf("%w: the image's SHA-1 is %s, the manifest says %s", ErrImageDigest, got, m.Digest)
	}
	return got, n, nil
}

// stageErr reports err as a failure of the given stage unless it already is
// a failed check (from the parts or the padding below) or an I/O error of
// the caller's.
func stageErr(check, err error) error {
	var we *writeError
	var ioe *partIOError
	for _, known := range []error{ErrPartMissing, ErrPartDigest, ErrSize, ErrPadding, ErrCompression} {
		if errors.Is(err, known) {
			return err
		}
	}
	if errors.As(err, &we) || errors.As(err, &ioe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %v", check, err)
}

// tagReader reports its reader's errors as failures of one stage, so that
// the stage after it (tar after gzip) does not take them for its own.
type tagReader struct {
	r     io.Reader
	check error
}

func (t *tagReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = stageErr(t.check, err)
	}
	return n, err
}

// writeErrs marks errors of the caller's writer, so they are not taken for
// a corrupt bundle.
type writeErrs struct {
	w   io.Writer
	err error
}

type writeError struct{ err error }

func (e *writeError) Error() string { return "write image: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (w *writeErrs) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		w.err = err
		return n, &writeError{err}
	}
	return n, nil
}

type partIOError struct {
	part string
	err  error
}

func (e *partIOError) Error() string { return fmt.Sprintf("read part %s: %v", e.part, e.err) }
func (e *partIOError) Unwrap() error { return e.err }

// partsReader reads the parts one after the other, checking each one's
// digest at its end.
type partsReader struct {
	ctx  context.Context
	m    *Manifest
	open func(name string) (io.ReadCloser, error)

	i     int // index of the current part
	cur   io.ReadCloser
	h     hash.Hash
	total int64
	err   error // sticky: a failed check or I/O error
	ioErr error
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.err != nil {
			return 0, p.err
		}
		if err := p.ctx.Err(); err != nil {
			p.err = err
			return 0, err
		}
		if p.cur == nil {
			if p.i == len(p.m.Parts) {
				p.err = io.EOF
				return 0, io.EOF
			}
			part := p.m.Parts[p.i]
			rc, err := p.open(part.Filename)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					p.err = fmt.Errorf("%w: part %d (%s)", ErrPartMissing, p.i, part.Filename)
				} else {
					p.ioErr = err
					p.err = &partIOError{part: part.Filename, err: err}
				}
				return 0, p.err
			}
			p.cur, p.h = rc, sha1.New()
		}
		n, err := p.cur.Read(b)
		if n > 0 {
			p.h.Write(b[:n])
			p.total += int64(n)
			if p.total > p.m.BundledSize {
				// A part longer than it should be is caught by its digest,
				// but not before it has been read to its (maybe endless) end.
				p.err = fmt.Errorf("%w: the parts hold more than bundled_size (%d bytes), from part %d (%s) on",
					ErrSize, p.m.BundledSize, p.i, p.m.Parts[p.i].Filename)
				return 0, p.err
			}
		}
		if err == io.EOF {
			part := p.m.Parts[p.i]
			p.cur.Close()
			p.cur = nil
			if got := hex.EncodeToString(p.h.Sum(nil)); got != part.Digest {
				p.err = fmt.Errorf("%w: part %d (%s) has SHA-1 %s, the manifest says %s", ErrPartDigest, p.i, part.Filename, got, part.Digest)
				// The bytes already returned were bad; say so now.
				return 0, p.err
			}
			p.i++
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			p.ioErr = err
			p.err = &partIOError{part: p.m.Parts[p.i].Filename, err: err}
			return n, p.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// drain reads what is left of the parts and returns the first failed part
// check, if any.
func (p *partsReader) drain() error {
	buf := make([]byte, 256<<10)
	for {
		_, err := p.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, ErrPartMissing) || errors.Is(err, ErrPartDigest) {
			return err
		}
		return nil
	}
}

func (p *partsReader) close() {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
}

// cbcReader decrypts AES-CBC, holding back the last block until the end of
// the input is seen, then checks and strips the PKCS#7 padding. It decrypts
// in place in one buffer: buf[0:16] takes the held block back in front of
// the next batch, so the plaintext handed out is contiguous.
type cbcReader struct {
	src   io.Reader
	mode  cipher.BlockMode
	buf   []byte
	ready []byte // plaintext to hand out, inside buf
	held  []byte // the last plaintext block, not yet known not to be padding
	pend  []byte // ciphertext short of a block
	err   error
	eof   bool
}

const cbcBatch = 64 << 10

func (c *cbcReader) Read(b []byte) (int, error) {
	bs := c.mode.BlockSize()
	for len(c.ready) == 0 {
		if c.eof {
			return 0, io.EOF
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.buf == nil {
			c.buf = make([]byte, bs+cbcBatch)
			c.held = make([]byte, 0, bs)
			c.pend = make([]byte, 0, bs)
		}
		// buf: [held block][pending ciphertext][newly read ciphertext…]
		p := copy(c.buf[bs:], c.pend)
		n, err := c.src.Read(c.buf[bs+p:])
		total := p + n
		whole := total - total%bs
		c.pend = append(c.pend[:0], c.buf[bs+whole:bs+total]...)
		if whole > 0 {
			c.mode.CryptBlocks(c.buf[bs:bs+whole], c.buf[bs:bs+whole])
			start := bs
			if len(c.held) > 0 {
				start = 0
				copy(c.buf[:bs], c.held)
			}
			c.ready = c.buf[start : bs+whole-bs]
			c.held = append(c.held[:0], c.buf[whole:bs+whole]...)
		}
		if err == io.EOF {
			switch {
			case len(c.pend) != 0:
				c.err = fmt.Errorf("%w: the ciphertext is not a whole number of %d-byte blocks", ErrPadding, bs)
			case len(c.held) == 0:
				c.err = fmt.Errorf("%w: no ciphertext", ErrPadding)
			default:
				pad := int(c.held[bs-1])
				if pad < 1 || pad > bs || !bytes.Equal(c.held[bs-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
					c.err = fmt.Errorf("%w: the last block does not end in PKCS#7 padding (wrong key?)", ErrPadding)
					break
				}
				// The unpadded tail follows what is ready, or stands alone.
				tail := c.held[:bs-pad]
				if len(c.ready) == 0 {
					c.ready = tail
				} else {
					end := len(c.ready)
					c.ready = append(c.ready[:end:end], tail...)
				}
				c.held = c.held[:0]
				c.eof = true
			}
			continue
		}
		if err != nil {
			c.err = err
		}
	}
	n := copy(b, c.ready)
	c.ready = c.ready[n:]
	return n, nil
}
