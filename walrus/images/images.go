package images

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/backend"
	wfs "github.com/euca-cloud/euca/walrus/backend/fs"
	"github.com/euca-cloud/euca/walrus/bundle"
)

// Errors, beside the bundle package's check errors (bundle.ErrPartMissing,
// bundle.ErrPartDigest, ...), which Unbundle returns wrapped.
var (
	// ErrAccess: the object does not exist, or the account may not read
	// it (the two are not told apart, so nothing leaks about others'
	// buckets).
	ErrAccess = errors.New("not found or not readable")
	// ErrTooLarge: the image is larger than the space reserved for
	// unbundling images (WALRUS_IMAGE_CACHE_MB).
	ErrTooLarge = errors.New("image larger than the space reserved for unbundling images")
	// ErrNoSpace: the disk has not the room to unbundle the image now.
	ErrNoSpace = errors.New("not enough free disk space to unbundle the image")
	// ErrUnknownImage: Open was asked for an image that is not registered.
	ErrUnknownImage = errors.New("no such image")
	// ErrDigest: the image unbundled from its bundle does not hash to the
	// SHA-256 it was registered with (the bundle changed since).
	ErrDigest = errors.New("image digest mismatch")
)

// CacheDirName is the cache's directory under WALRUS_BUCKETS_PATH: the
// leading dot keeps it out of the bucket namespace.
const CacheDirName = ".image-cache"

// ACL terms, as the walrus package stores them.
const (
	// cloudReaderID is walrus.CloudReaderID: the grantee the canned ACL
	// aws-exec-read gives READ, meaning the cloud itself.
	cloudReaderID  = "eucalyptus"
	groupAllUsers  = "http://acs.amazonaws.com/groups/global/AllUsers"
	groupAuthUsers = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
)

// Options configure New.
type Options struct {
	Conf  *conf.Config
	Store *store.Store
	// Backend holds Walrus's object data; nil means the filesystem under
	// Conf.WalrusBucketsPath (the walrus role's default).
	Backend backend.Backend
	// CloudKey is the cloud's private key (cloud-pk.pem), to which bundles
	// encrypt their AES key.
	CloudKey *rsa.PrivateKey
	Log      *slog.Logger
}

// Service reads bundles out of Walrus and keeps the plain images. It is
// the clc's bundle source and the node controllers' image source.
type Service struct {
	st    *store.Store
	be    backend.Backend
	key   *rsa.PrivateKey
	log   *slog.Logger
	cache *cache
}

// New opens the image cache under Conf.WalrusBucketsPath, removing what a
// crash left and trimming it to WALRUS_IMAGE_CACHE_MB.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.CloudKey == nil {
		return nil, errors.New("images: no cloud key")
	}
	s := &Service{st: o.Store, be: o.Backend, key: o.CloudKey, log: o.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.be == nil {
		b, err := wfs.New(o.Conf.WalrusBucketsPath)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		s.be = b
	}
	limit := max(o.Conf.WalrusImageCacheMB, 0) << 20
	c, err := openCache(filepath.Join(o.Conf.WalrusBucketsPath, CacheDirName), limit, s.log)
	if err != nil {
		return nil, err
	}
	s.cache = c
	files, bytes := c.stats()
	s.log.Debug("image cache open", "dir", c.dir, "images", files, "bytes", bytes, "limit", limit)
	return s, nil
}

// SplitLocation splits an image location, bucket/path/to/x.manifest.xml,
// into the bucket and the object key.
func SplitLocation(loc string) (bucket, key string, ok bool) {
	bucket, key, ok = strings.Cut(strings.TrimPrefix(loc, "/"), "/")
	return bucket, key, ok && bucket != "" && key != ""
}

// Manifest returns the manifest object bucket/key if accountID may read it
// (ErrAccess otherwise). It reads at most one byte more than a manifest
// may hold, so that ParseManifest refuses a larger one.
func (s *Service) Manifest(ctx context.Context, accountID, bucket, key string) ([]byte, error) {
	rc, err := s.openObject(ctx, accountID, bucket, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("manifest %s/%s: %w", bucket, key, ErrAccess)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, bundle.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s/%s: %w", bucket, key, err)
	}
	return b, nil
}

// Unbundle makes the plain image of a bundle whose manifest (read from
// bucket/manifestKey by Manifest) the caller has parsed and verified, and
// returns the image's SHA-256 and size. The parts are read as accountID,
// the owner the image is registered to. Every check of bundle.Unbundle is
// made; a failure returns its error (errors.Is with bundle's errors, and
// ErrAccess for a part the owner may not read) and keeps nothing.
// Concurrent calls for the same bundle decrypt it once.
func (s *Service) Unbundle(ctx context.Context, accountID, bucket, manifestKey string, m *bundle.Manifest) (sha string, size int64, err error) {
	h := sha256.Sum256(m.Raw)
	key := strings.Join([]string{"bundle", accountID, bucket, manifestKey, hex.EncodeToString(h[:])}, "\x00")
	e, err := s.cache.get(ctx, key, "", func(ctx context.Context) (string, string, int64, error) {
		return s.unbundle(ctx, accountID, bucket, manifestKey, m)
	})
	if err != nil {
		return "", 0, err
	}
	defer s.cache.release(e)
	return e.sum, e.size, nil
}

// Ref names a plain image a node controller wants: the same fields as
// ncapi.ImageRef (which this package may not import: walrus knows no
// role), so that ImageRef converts to it.
type Ref struct {
	ID     string
	SHA256 string
	Size   int64
}

// Open returns the plain image ref names (a *Reader), from the cache or
// unbundled again from its bundle when it was evicted (then checked to hash
// to ref.SHA256). Close the reader: the image stays cached while it is
// open. It is the node controller's ImageSource, given
//
//	func (w walrusImages) Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
//		return w.Service.Open(ctx, images.Ref(ref))
//	}
func (s *Service) Open(ctx context.Context, ref Ref) (io.ReadCloser, error) {
	if !validSum(ref.SHA256) {
		return nil, fmt.Errorf("image %s: %q is not a SHA-256", ref.ID, ref.SHA256)
	}
	e, err := s.cache.get(ctx, "image\x00"+ref.SHA256, ref.SHA256, func(ctx context.Context) (string, string, int64, error) {
		return s.reunbundle(ctx, ref)
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref.ID, err)
	}
	if ref.Size > 0 && e.size != ref.Size {
		s.cache.release(e)
		return nil, fmt.Errorf("image %s: %d bytes, expected %d", ref.ID, e.size, ref.Size)
	}
	r, err := s.cache.open(e)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// reunbundle makes an evicted image again from the bundle it was
// registered from.
func (s *Service) reunbundle(ctx context.Context, ref Ref) (string, string, int64, error) {
	im, err := s.st.ImageByID(ctx, ref.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && im.State == store.ImageDeregistered) {
		return "", "", 0, ErrUnknownImage
	}
	if err != nil {
		return "", "", 0, err
	}
	if im.SHA256 != ref.SHA256 {
		return "", "", 0, fmt.Errorf("%w: registered as %s, asked for %s", ErrDigest, im.SHA256, ref.SHA256)
	}
	bucket, key, ok := SplitLocation(im.Location)
	if !ok {
		return "", "", 0, fmt.Errorf("image location %q is not bucket/key", im.Location)
	}
	raw, err := s.Manifest(ctx, im.AccountID, bucket, key)
	if err != nil {
		return "", "", 0, err
	}
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		return "", "", 0, err
	}
	tmp, sum, size, err := s.unbundle(ctx, im.AccountID, bucket, key, m)
	if err != nil {
		return "", "", 0, err
	}
	if sum != ref.SHA256 {
		os.Remove(tmp)
		return "", "", 0, fmt.Errorf("%w: the bundle at %s now unbundles to %s, registered as %s", ErrDigest, im.Location, sum, ref.SHA256)
	}
	return tmp, sum, size, nil
}

// unbundle decrypts a bundle into a new temporary file of the cache
// directory, hashing it as it is written. On failure nothing is left.
func (s *Service) unbundle(ctx context.Context, owner, bucket, manifestKey string, m *bundle.Manifest) (tmp, sum string, size int64, err error) {
	if s.cache.limit > 0 && m.Size > s.cache.limit {
		return "", "", 0, fmt.Errorf("%w: the image is %d MB, WALRUS_IMAGE_CACHE_MB is %d", ErrTooLarge, mb(m.Size), s.cache.limit>>20)
	}
	s.cache.makeRoom(m.Size)
	if free, ok := freeSpace(s.cache.dir); ok && free < m.Size {
		return "", "", 0, fmt.Errorf("%w: the image is %d MB, %d MB are free in %s", ErrNoSpace, mb(m.Size), mb(free), s.cache.dir)
	}

	key, iv, keyErr := m.DecryptKey(s.key)
	if keyErr != nil {
		// Go on with a random key, reading every part as a good key would,
		// and report the key only once the parts have been checked: see the
		// package documentation.
		key, iv = make([]byte, 16), make([]byte, 16)
		rand.Read(key)
		rand.Read(iv)
	}

	f, err := os.CreateTemp(s.cache.dir, tmpPrefix+"*")
	if err != nil {
		return "", "", 0, fmt.Errorf("image cache: %w", err)
	}
	name := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	start := time.Now()
	h := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	dir := path.Dir(manifestKey)
	openPart := func(name string) (io.ReadCloser, error) {
		return s.openObject(ctx, owner, bucket, path.Join(dir, name))
	}
	_, size, err = bundle.Unbundle(ctx, m, key, iv, openPart, io.MultiWriter(bw, h))
	if err != nil && !partProblem(err) && ctx.Err() == nil {
		// A part longer than it should be can break the decryption before
		// it has been read to its end (and its digest checked): the parts'
		// sizes tell, whatever the key.
		if total, ok := s.partsTotal(ctx, bucket, dir, m); ok && total != m.BundledSize {
			err = fmt.Errorf("%w: the parts hold %d bytes, bundled_size says %d", bundle.ErrSize, total, m.BundledSize)
		}
	}
	if keyErr != nil && !partProblem(err) {
		err = keyErr
	}
	if err != nil {
		return "", "", 0, err
	}
	if err = bw.Flush(); err == nil {
		if err = f.Sync(); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return "", "", 0, fmt.Errorf("image cache: write: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	s.log.InfoContext(ctx, "unbundled image", "location", bucket+"/"+manifestKey, "sha256", sum, "size", size, "took", time.Since(start).Round(time.Millisecond))
	return name, sum, size, nil
}

// partsTotal adds up the sizes of a bundle's part objects.
func (s *Service) partsTotal(ctx context.Context, bucket, dir string, m *bundle.Manifest) (int64, bool) {
	var total int64
	for _, p := range m.Parts {
		o, err := s.st.WalrusObject(ctx, bucket, path.Join(dir, p.Filename))
		if err != nil {
			return 0, false
		}
		total += o.Size
	}
	return total, true
}

// partProblem reports the failures that concern the parts as stored,
// whatever the key: a missing, changed or unreadable part, or parts that do
// not add up to the manifest's bundled size.
func partProblem(err error) bool {
	return errors.Is(err, bundle.ErrPartMissing) || errors.Is(err, bundle.ErrPartDigest) || errors.Is(err, ErrAccess) || PartsSize(err)
}

// PartsSize reports a bundle.ErrSize about the parts (the ciphertext), as
// opposed to the image inside: the one can be told a client whatever the
// key, the other only together with the key's failures. The bundle package
// tells them apart only in words.
func PartsSize(err error) bool {
	return errors.Is(err, bundle.ErrSize) && strings.Contains(err.Error(), "the parts hold")
}

func mb(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

func freeSpace(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

// openObject opens an object's data as accountID: fs.ErrNotExist when it
// does not exist, ErrAccess when the account may not read it.
func (s *Service) openObject(ctx context.Context, accountID, bucket, key string) (io.ReadCloser, error) {
	// The object may be replaced between reading its row and opening its
	// blob (the old blob is then deleted): read the row again once.
	for try := 0; ; try++ {
		o, err := s.st.WalrusObject(ctx, bucket, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%s/%s: %w", bucket, key, fs.ErrNotExist)
		}
		if err != nil {
			return nil, err
		}
		ok, err := s.mayRead(ctx, accountID, o)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s/%s: %w", bucket, key, ErrAccess)
		}
		r, _, err := s.be.Open(ctx, bucket, o.Blob)
		if errors.Is(err, backend.ErrNotFound) && try == 0 {
			continue
		}
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("%s/%s: %w", bucket, key, fs.ErrNotExist)
		}
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// readable applies S3's ACL to a read by accountID, with the cloud's own
// grant (aws-exec-read) counting for whoever the cloud reads for: the
// object's owner, a READ or FULL_CONTROL grant to the account, to every
// user, to every authenticated user, or to the cloud.
func readable(o store.WalrusObject, accountID string) bool {
	if accountID != "" && accountID == o.OwnerID {
		return true
	}
	for _, g := range o.ACL {
		if g.Permission != "READ" && g.Permission != "FULL_CONTROL" {
			continue
		}
		switch {
		case g.Type == "CanonicalUser" && ((accountID != "" && g.ID == accountID) || g.ID == cloudReaderID):
			return true
		case g.Type == "Group" && (g.URI == groupAllUsers || g.URI == groupAuthUsers):
			return true
		}
	}
	return false
}
