package bundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultPartSize is the part size of euca2ools and ec2-bundle-image.
const DefaultPartSize = 10 << 20

// tarRecordSize is what Python's tarfile (and GNU tar) pad an archive to.
const tarRecordSize = 20 * 512

// Options describe the bundle Create makes.
type Options struct {
	// Prefix names the files (PREFIX.manifest.xml, PREFIX.part.NN), the tar
	// entry and <image><name>. Create defaults it to the image's base name.
	Prefix string
	// Arch is <architecture>: i386, x86_64, armhf, ppc, ppc64, ppc64le…
	Arch string
	// ImageType is machine (the default), kernel or ramdisk.
	ImageType string
	// KernelID and RamdiskID: for a machine image, the eki-/eri- it boots
	// with. For a kernel or ramdisk image Create writes "true" in the
	// matching one, as euca2ools does for --kernel true.
	KernelID, RamdiskID string
	BlockDeviceMappings []Mapping // machine images only
	ProductCodes        []string  // machine images only
	// PartSize defaults to DefaultPartSize.
	PartSize int64
	// UserCert and UserKey are the bundling user's: the key is encrypted
	// to the certificate (so the user can unbundle) and the manifest is
	// signed with the key.
	UserCert *x509.Certificate
	UserKey  *rsa.PrivateKey
	// CloudCert is the cloud's certificate, to which the key is encrypted
	// so that the cloud can decrypt the image.
	CloudCert *x509.Certificate
	// UserID is the owner's account id (<image><user>).
	UserID string
	// BundlerName and BundlerVersion go in <bundler>; nobody checks them.
	BundlerName, BundlerVersion string
	// Progress, when set, is called as the image is read.
	Progress func(done, total int64)
}

// Result is what Create wrote.
type Result struct {
	ManifestPath string
	PartPaths    []string
	Manifest     *Manifest
}

// Create bundles the image file into outDir (created if missing) and
// returns the manifest's path. Memory stays bounded whatever the image's
// size: the image streams through tar, SHA-1, gzip and AES into the parts.
func Create(ctx context.Context, image, outDir string, o Options) (manifestPath string, err error) {
	res, err := CreateResult(ctx, image, outDir, o)
	if err != nil {
		return "", err
	}
	return res.ManifestPath, nil
}

// CreateResult is Create, returning the parts and the manifest as well.
func CreateResult(ctx context.Context, image, outDir string, o Options) (*Result, error) {
	f, err := os.Open(image)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("bundle: %s is not a regular file", image)
	}
	if o.Prefix == "" {
		o.Prefix = filepath.Base(image)
	}
	return CreateFrom(ctx, f, st.Size(), outDir, o)
}

// CreateFrom bundles size bytes read from r (a pipe, stdin) into outDir; the
// stream must hold exactly size bytes. o.Prefix is required.
func CreateFrom(ctx context.Context, r io.Reader, size int64, outDir string, o Options) (res *Result, err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("bundle: negative image size")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	key := make([]byte, aesKeySize)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	pw := &partWriter{dir: outDir, prefix: o.Prefix, size: o.PartSize}
	defer func() {
		if err != nil {
			pw.abort()
		}
	}()
	digest, err := writeStream(ctx, r, size, o, key, iv, pw)
	if err != nil {
		return nil, err
	}

	m := &Manifest{
		Version:        ManifestVersion,
		BundlerName:    o.BundlerName,
		BundlerVersion: o.BundlerVersion,
		BundlerRelease: "0",
		Arch:           o.Arch,
		KernelID:       o.KernelID,
		RamdiskID:      o.RamdiskID,
		Name:           o.Prefix,
		User:           o.UserID,
		Type:           o.ImageType,
		Digest:         digest,
		Size:           size,
		BundledSize:    pw.total,
	}
	if m.Kind() == TypeMachine {
		m.BlockDeviceMappings = o.BlockDeviceMappings
		m.ProductCodes = o.ProductCodes
	}
	for i, p := range pw.parts {
		m.Parts = append(m.Parts, Part{Index: i, Filename: filepath.Base(p.path), Digest: p.digest})
	}
	// The key and IV travel as their hex text, as euca2ools sends them to
	// `openssl rsautl -encrypt`; every reader expects that.
	hk, hiv := []byte(hex.EncodeToString(key)), []byte(hex.EncodeToString(iv))
	cloudPub, userPub := o.CloudCert.PublicKey.(*rsa.PublicKey), o.UserCert.PublicKey.(*rsa.PublicKey)
	for _, e := range []struct {
		dst *string
		pub *rsa.PublicKey
		msg []byte
	}{{&m.EC2EncryptedKey, cloudPub, hk}, {&m.UserEncryptedKey, userPub, hk}, {&m.EC2EncryptedIV, cloudPub, hiv}, {&m.UserEncryptedIV, userPub, hiv}} {
		//lint:ignore SA1019 the bundle format is PKCS#1 v1.5, fixed by every bundler since 2007
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, e.pub, e.msg)
		if err != nil {
			return nil, fmt.Errorf("bundle: encrypt key: %w", err)
		}
		*e.dst = hex.EncodeToString(ct)
	}
	if err := m.Marshal(o.UserKey); err != nil {
		return nil, err
	}
	manifestPath := filepath.Join(outDir, o.Prefix+".manifest.xml")
	if err := writeFileAtomic(manifestPath, m.Raw); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	res = &Result{ManifestPath: manifestPath, Manifest: m}
	for _, p := range pw.parts {
		res.PartPaths = append(res.PartPaths, p.path)
	}
	return res, nil
}

func (o *Options) check() error {
	if o.ImageType == "" {
		o.ImageType = TypeMachine
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	switch o.ImageType {
	case TypeMachine:
		if isTrue(o.KernelID) || isTrue(o.RamdiskID) {
			return errors.New("bundle: a machine image names a kernel and ramdisk by id, not \"true\"")
		}
	case TypeKernel:
		if o.RamdiskID != "" || (o.KernelID != "" && !isTrue(o.KernelID)) {
			return errors.New("bundle: a kernel image names no kernel or ramdisk")
		}
		o.KernelID = "true"
	case TypeRamdisk:
		if o.KernelID != "" || (o.RamdiskID != "" && !isTrue(o.RamdiskID)) {
			return errors.New("bundle: a ramdisk image names no kernel or ramdisk")
		}
		o.RamdiskID = "true"
	default:
		return fmt.Errorf("bundle: image type %q is not machine, kernel or ramdisk", o.ImageType)
	}
	if o.PartSize < 1 {
		return errors.New("bundle: part size must be positive")
	}
	if err := checkPartName(o.Prefix + ".part.00"); err != nil || strings.ContainsAny(o.Prefix, "/\\") || o.Prefix == "" {
		return fmt.Errorf("bundle: prefix %q must be a plain file name", o.Prefix)
	}
	for name, v := range map[string]string{"architecture": o.Arch, "account id": o.UserID} {
		if v == "" {
			return fmt.Errorf("bundle: no %s", name)
		}
	}
	values := []string{o.Arch, o.UserID, o.KernelID, o.RamdiskID, o.BundlerName, o.BundlerVersion}
	values = append(values, o.ProductCodes...)
	for _, bd := range o.BlockDeviceMappings {
		values = append(values, bd.Virtual, bd.Device)
	}
	for _, v := range values {
		if strings.ContainsFunc(v, isControl) {
			return fmt.Errorf("bundle: %q has control characters", v)
		}
	}
	if o.UserKey == nil || o.UserCert == nil || o.CloudCert == nil {
		return errors.New("bundle: the user's certificate and key and the cloud's certificate are all needed")
	}
	if _, ok := o.UserCert.PublicKey.(*rsa.PublicKey); !ok {
		return errors.New("bundle: the user's certificate is not RSA")
	}
	if _, ok := o.CloudCert.PublicKey.(*rsa.PublicKey); !ok {
		return errors.New("bundle: the cloud's certificate is not RSA")
	}
	if !o.UserKey.PublicKey.Equal(o.UserCert.PublicKey) {
		return errors.New("bundle: the private key does not belong to the user's certificate")
	}
	return nil
}

// writeStream runs image -> tar -> (SHA-1, gzip -> AES -> parts) and returns
// the hex SHA-1 of the tar stream.
func writeStream(ctx context.Context, r io.Reader, size int64, o Options, key, iv []byte, pw *partWriter) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	enc := &cbcWriter{w: pw, mode: cipher.NewCBCEncrypter(block, iv)}
	gz, err := gzip.NewWriterLevel(enc, gzip.DefaultCompression)
	if err != nil {
		return "", err
	}
	digest := sha1.New()
	tarSink := &countWriter{w: io.MultiWriter(digest, gz)}
	tw := tar.NewWriter(tarSink)
	// The header Python's tarfile writes for euca2ools' TarInfo(prefix):
	// only the name and size are set.
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: o.Prefix, Size: size, Mode: 0o644,
		ModTime: time.Unix(0, 0), Format: tar.FormatGNU,
	}); err != nil {
		return "", fmt.Errorf("bundle: tar header: %w", err)
	}
	n, err := copyProgress(ctx, tw, r, size, o.Progress)
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("bundle: the image gave %d bytes, expected %d (did it change while being bundled?)", n, size)
	}
	// One more byte means the image grew while it was read.
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return "", fmt.Errorf("bundle: the image is larger than %d bytes (did it change while being bundled?)", size)
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("bundle: tar: %w", err)
	}
	if pad := (tarRecordSize - tarSink.n%tarRecordSize) % tarRecordSize; pad > 0 {
		if _, err := tarSink.Write(make([]byte, pad)); err != nil {
			return "", err
		}
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("bundle: gzip: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(digest.Sum(nil)), nil
}

// copyProgress copies exactly up to limit bytes, reporting progress about
// every 8 MiB and checking ctx between reads.
func copyProgress(ctx context.Context, w io.Writer, r io.Reader, limit int64, progress func(done, total int64)) (int64, error) {
	buf := make([]byte, 1<<20)
	var done, reported int64
	if progress != nil {
		progress(0, limit)
	}
	for done < limit {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		chunk := buf
		if rest := limit - done; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		n, rerr := r.Read(chunk)
		if n > 0 {
			if _, err := w.Write(chunk[:n]); err != nil {
				return done, err
			}
			done += int64(n)
			if progress != nil && (done-reported >= 8<<20 || done == limit) {
				progress(done, limit)
				reported = done
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return done, fmt.Errorf("bundle: read image: %w", rerr)
		}
	}
	return done, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// cbcWriter encrypts with AES-CBC, holding back any partial block, and on
// Close adds PKCS#7 padding (a whole block when the data is aligned) as
// `openssl enc` does, then closes the parts.
type cbcWriter struct {
	w    *partWriter
	mode cipher.BlockMode
	buf  []byte // pending plaintext, shorter than a block between writes
	out  []byte
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	bs := c.mode.BlockSize()
	total := len(p)
	if len(c.buf) > 0 {
		k := min(bs-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) < bs {
			return total, nil
		}
		if err := c.emit(c.buf); err != nil {
			return 0, err
		}
		c.buf = c.buf[:0]
	}
	whole := len(p) - len(p)%bs
	if whole > 0 {
		if err := c.emit(p[:whole]); err != nil {
			return 0, err
		}
	}
	c.buf = append(c.buf, p[whole:]...)
	return total, nil
}

func (c *cbcWriter) emit(p []byte) error {
	if cap(c.out) < len(p) {
		c.out = make([]byte, len(p))
	}
	out := c.out[:len(p)]
	c.mode.CryptBlocks(out, p)
	_, err := c.w.Write(out)
	return err
}

func (c *cbcWriter) Close() error {
	bs := c.mode.BlockSize()
	pad := bs - len(c.buf)
	for range pad {
		c.buf = append(c.buf, byte(pad))
	}
	if err := c.emit(c.buf); err != nil {
		return err
	}
	return c.w.Close()
}

type partFile struct {
	path   string
	digest string
	size   int64
}

// partWriter cuts its input into PREFIX.part.NN files of size bytes each
// (the last shorter), hashing each.
type partWriter struct {
	dir, prefix string
	size        int64

	f     *os.File
	h     hash.Hash
	n     int64 // bytes in the current part
	total int64
	parts []partFile
}

func (p *partWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		if p.f == nil {
			// euca2ools names parts '{prefix}.part.{n:02}'.
			path := filepath.Join(p.dir, fmt.Sprintf("%s.part.%02d", p.prefix, len(p.parts)))
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return written, fmt.Errorf("bundle: %w", err)
			}
			p.f, p.h, p.n = f, sha1.New(), 0
			p.parts = append(p.parts, partFile{path: path})
		}
		k := int(min(int64(len(b)), p.size-p.n))
		if _, err := p.f.Write(b[:k]); err != nil {
			return written, fmt.Errorf("bundle: %w", err)
		}
		p.h.Write(b[:k])
		p.n += int64(k)
		p.total += int64(k)
		written += k
		b = b[k:]
		if p.n == p.size {
			if err := p.finish(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

func (p *partWriter) finish() error {
	last := &p.parts[len(p.parts)-1]
	last.digest = hex.EncodeToString(p.h.Sum(nil))
	last.size = p.n
	err := p.f.Close()
	p.f = nil
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

func (p *partWriter) Close() error {
	if p.f != nil {
		return p.finish()
	}
	return nil
}

// abort removes the parts written so far.
func (p *partWriter) abort() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	for _, pf := range p.parts {
		os.Remove(pf.path)
	}
}

// writeFileAtomic writes through a temporary file renamed into place, so a
// manifest is never seen half written.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".manifest-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
