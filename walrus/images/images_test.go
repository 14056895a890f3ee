package images

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/bundle"
)

func TestManifestAccess(t *testing.T) {
	f := newFixture(t, 64)
	b := f.upload("", "exec", 1000, 1, f.keys.cloud.Cert)
	f.put("private.manifest.xml", f.manifest(b), "private")

	if _, err := f.s.Manifest(f.ctx, owner, "imgs", "private.manifest.xml"); err != nil {
		t.Fatalf("owner reading a private manifest: %v", err)
	}
	// aws-exec-read grants the cloud READ, so the cloud reads it for anyone
	// (whose signature check then decides).
	if _, err := f.s.Manifest(f.ctx, stranger, "imgs", b.key); err != nil {
		t.Fatalf("aws-exec-read manifest: %v", err)
	}
	for _, c := range []struct{ bucket, key string }{
		{"imgs", "private.manifest.xml"}, {"imgs", "nothing.manifest.xml"}, {"nobucket", "x.manifest.xml"},
	} {
		if _, err := f.s.Manifest(f.ctx, stranger, c.bucket, c.key); !errors.Is(err, ErrAccess) {
			t.Errorf("%s/%s: %v, want ErrAccess", c.bucket, c.key, err)
		}
	}
}

func TestUnbundleThenOpen(t *testing.T) {
	f := newFixture(t, 64)
	b := f.upload("dir/sub", "img", 300<<10, 2, f.keys.cloud.Cert)
	if len(b.parts) < 4 {
		t.Fatalf("want several parts, got %d", len(b.parts))
	}
	sum, size, err := f.unbundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if sum != b.sum || size != int64(len(b.data)) {
		t.Fatalf("unbundled %s (%d), want %s (%d)", sum, size, b.sum, len(b.data))
	}
	if got := f.cacheFiles(); !slices.Equal(got, []string{b.sum}) {
		t.Fatalf("cache holds %v", got)
	}
	opens := f.be.opens.Load()
	got, err := f.readAll(Ref{ID: "emi-00000000000000001", SHA256: b.sum, Size: size})
	if err != nil || !bytes.Equal(got, b.data) {
		t.Fatalf("open: %v (%d bytes)", err, len(got))
	}
	if f.be.opens.Load() != opens {
		t.Fatal("a cached image was unbundled again")
	}
	if _, err := f.s.Open(f.ctx, Ref{ID: "emi-00000000000000001", SHA256: b.sum, Size: size + 1}); err == nil {
		t.Fatal("wrong size accepted")
	}
	if _, err := f.s.Open(f.ctx, Ref{ID: "emi-00000000000000001", SHA256: "abc"}); err == nil {
		t.Fatal("malformed digest accepted")
	}
}

// TestUnbundleChecks: each failed check is its own error, and nothing is
// left in the cache.
func TestUnbundleChecks(t *testing.T) {
	f := newFixture(t, 64)
	cases := []struct {
		name   string
		spoil  func(b *bundled)
		cloud  bool // bundle for the other cloud
		want   error
		detail string
	}{
		{name: "missing part", spoil: func(b *bundled) {
			if _, err := f.st.DeleteWalrusObject(f.ctx, "imgs", b.parts[1]); err != nil {
				t.Fatal(err)
			}
		}, want: bundle.ErrPartMissing, detail: ".part.01"},
		{name: "corrupted part", spoil: func(b *bundled) {
			f.put(b.parts[2], bytes.Repeat([]byte{7}, 64<<10), "aws-exec-read")
		}, want: bundle.ErrPartDigest, detail: ".part.02"},
		{name: "unreadable part", spoil: func(b *bundled) {
			o, err := f.st.WalrusObject(f.ctx, "imgs", b.parts[0])
			if err != nil {
				t.Fatal(err)
			}
			o.OwnerID = stranger
			o.ACL = []store.WalrusGrant{{Type: "CanonicalUser", ID: stranger, Permission: "FULL_CONTROL"}}
			if _, err := f.st.PutWalrusObject(f.ctx, o, store.WalrusPutOptions{}); err != nil {
				t.Fatal(err)
			}
		}, want: ErrAccess, detail: ".part.00"},
		{name: "longer part", spoil: func(b *bundled) {
			// Garbage in place of a part, longer than it: the decryption
			// breaks before the part's end; the sizes still tell.
			f.put(b.parts[1], bytes.Repeat([]byte{9}, 300<<10), "aws-exec-read")
		}, want: bundle.ErrSize, detail: "the parts hold"},
		{name: "another cloud's key", cloud: true, want: bundle.ErrKeyDecrypt},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert := f.keys.cloud.Cert
			if c.cloud {
				cert = f.keys.other.Cert
			}
			b := f.upload("c"+string(rune('a'+i)), "img", 200<<10, uint64(10+i), cert)
			if c.spoil != nil {
				c.spoil(b)
			}
			before := f.be.opens.Load()
			_, _, err := f.unbundle(b)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.detail != "" && !strings.Contains(err.Error(), c.detail) {
				t.Errorf("error %q does not name %s", err, c.detail)
			}
			if c.cloud {
				// The manifest, then the parts were all read, as for a good key.
				if n := f.be.opens.Load() - before; n != int64(1+len(b.parts)) {
					t.Errorf("with a wrong key %d opens, want %d", n, 1+len(b.parts))
				}
			}
			if files := f.cacheFiles(); len(files) != 0 {
				t.Errorf("cache holds %v after a failure", files)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	f := newFixture(t, 1)
	b := f.upload("", "big", 1<<20+1, 3, f.keys.cloud.Cert)
	if _, _, err := f.unbundle(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
}

// TestEvictionLRU: least recently used first, never an image being read,
// and an evicted image comes back from its bundle.
func TestEvictionLRU(t *testing.T) {
	f := newFixture(t, 1) // 1 MiB: two of these images fit, not three
	imgs := make([]*bundled, 3)
	for i := range imgs {
		imgs[i] = f.upload("p"+string(rune('a'+i)), "img", 400<<10, uint64(20+i), f.keys.cloud.Cert)
		f.register("emi-0000000000000000"+string(rune('a'+i)), imgs[i])
	}
	ref := func(i int) Ref {
		return Ref{ID: "emi-0000000000000000" + string(rune('a'+i)), SHA256: imgs[i].sum, Size: int64(len(imgs[i].data))}
	}
	has := func(i int) bool { return slices.Contains(f.cacheFiles(), imgs[i].sum) }

	if _, _, err := f.unbundle(imgs[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.unbundle(imgs[1]); err != nil {
		t.Fatal(err)
	}
	// Use 0, so that 1 is the least recently used.
	if _, err := f.readAll(ref(0)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.unbundle(imgs[2]); err != nil {
		t.Fatal(err)
	}
	if !has(0) || has(1) || !has(2) {
		t.Fatalf("after LRU eviction the cache holds %v", f.cacheFiles())
	}

	// A reader of 2 keeps it while 1 comes back: 0 goes instead.
	r2, err := f.s.Open(f.ctx, ref(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.readAll(ref(0)); err != nil { // 0 most recent, 2 least but held
		t.Fatal(err)
	}
	opens := f.be.opens.Load()
	got, err := f.readAll(ref(1))
	if err != nil || !bytes.Equal(got, imgs[1].data) {
		t.Fatalf("evicted image: %v", err)
	}
	if f.be.opens.Load() == opens {
		t.Fatal("the evicted image was not unbundled again")
	}
	if !has(2) || has(0) {
		t.Fatalf("an image being read was evicted, or the wrong one: %v", f.cacheFiles())
	}
	data, err := readAllClose(r2)
	if err != nil || !bytes.Equal(data, imgs[2].data) {
		t.Fatalf("held image: %v", err)
	}
	if n, total := f.s.cache.stats(); total > 1<<20 {
		t.Fatalf("%d images of %d bytes over the 1 MiB limit once released", n, total)
	}

	// The cache survives a restart, in its LRU order, without temporary
	// files.
	if err := os.WriteFile(filepath.Join(f.s.cache.dir, tmpPrefix+"crash"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := f.cacheFiles()
	f.s = f.open()
	after := f.cacheFiles()
	if slices.ContainsFunc(after, func(n string) bool { return strings.HasPrefix(n, tmpPrefix) }) {
		t.Fatalf("temporary file survived a restart: %v", after)
	}
	if n, _ := f.s.cache.stats(); n != len(before)-1 {
		t.Fatalf("restart indexed %d images of %v", n, before)
	}
}

func readAllClose(r io.ReadCloser) ([]byte, error) {
	defer r.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// TestKeepNone: WALRUS_IMAGE_CACHE_MB=0 keeps an image only while it is
// read.
func TestKeepNone(t *testing.T) {
	f := newFixture(t, 0)
	b := f.upload("", "img", 100<<10, 4, f.keys.cloud.Cert)
	f.register("emi-00000000000000001", b)
	if _, _, err := f.unbundle(b); err != nil {
		t.Fatal(err)
	}
	if files := f.cacheFiles(); len(files) != 0 {
		t.Fatalf("cache of 0 MB keeps %v", files)
	}
	r, err := f.s.Open(f.ctx, Ref{ID: "emi-00000000000000001", SHA256: b.sum})
	if err != nil {
		t.Fatal(err)
	}
	if files := f.cacheFiles(); !slices.Equal(files, []string{b.sum}) {
		t.Fatalf("while read the cache holds %v", files)
	}
	data, err := readAllClose(r)
	if err != nil || !bytes.Equal(data, b.data) {
		t.Fatalf("read: %v", err)
	}
	if files := f.cacheFiles(); len(files) != 0 {
		t.Fatalf("after the read the cache keeps %v", files)
	}
}

// TestChangedBundle: an evicted image whose bundle was replaced since its
// registration is refused, not served.
func TestChangedBundle(t *testing.T) {
	f := newFixture(t, 0)
	b := f.upload("", "img", 100<<10, 5, f.keys.cloud.Cert)
	f.register("emi-00000000000000001", b)
	f.upload("", "img", 100<<10, 6, f.keys.cloud.Cert) // same names, other content
	_, err := f.s.Open(f.ctx, Ref{ID: "emi-00000000000000001", SHA256: b.sum})
	if !errors.Is(err, ErrDigest) {
		t.Fatalf("err %v, want ErrDigest", err)
	}
	if _, err := f.s.Open(f.ctx, Ref{ID: "emi-0000000000000000f", SHA256: b.sum}); !errors.Is(err, ErrUnknownImage) {
		t.Fatalf("unknown image: %v", err)
	}
	if files := f.cacheFiles(); len(files) != 0 {
		t.Fatalf("cache keeps %v", files)
	}
}

// waitWaiters waits until n callers wait for the flight of key.
func waitWaiters(t *testing.T, c *cache, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		cl := c.calls[key]
		w := 0
		if cl != nil {
			w = cl.waiters
		}
		c.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters for %q, want %d", w, key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSingleflight: concurrent first launches of one image decrypt it once,
// and so do concurrent registrations of one bundle.
func TestSingleflight(t *testing.T) {
	f := newFixture(t, 0)
	b := f.upload("", "img", 200<<10, 7, f.keys.cloud.Cert)
	f.register("emi-00000000000000001", b)
	ref := Ref{ID: "emi-00000000000000001", SHA256: b.sum, Size: int64(len(b.data))}

	const n = 8
	release := f.be.hold()
	before := f.be.opens.Load()
	var wg sync.WaitGroup
	errs := make([]error, n)
	readers := make([]io.ReadCloser, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readers[i], errs[i] = f.s.Open(f.ctx, ref)
		}()
	}
	waitWaiters(t, f.s.cache, "image\x00"+b.sum, n)
	release()
	wg.Wait()
	// The manifest once, then each part once.
	if got := f.be.opens.Load() - before; got != int64(1+len(b.parts)) {
		t.Fatalf("%d opens for %d concurrent launches, want %d (one decryption)", got, n, 1+len(b.parts))
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		data, err := readAllClose(readers[i])
		if err != nil || !bytes.Equal(data, b.data) {
			t.Fatalf("reader %d: %v", i, err)
		}
	}
	if files := f.cacheFiles(); len(files) != 0 {
		t.Fatalf("cache of 0 MB keeps %v once every reader closed", files)
	}

	// Registrations of one bundle.
	m, err := bundle.ParseManifest(f.manifest(b))
	if err != nil {
		t.Fatal(err)
	}
	release = f.be.hold()
	before = f.be.opens.Load()
	sums := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], _, errs[i] = f.s.Unbundle(f.ctx, owner, "imgs", b.key, m)
		}()
	}
	f.s.cache.mu.Lock()
	var key string
	for k := range f.s.cache.calls {
		key = k
	}
	f.s.cache.mu.Unlock()
	for key == "" {
		time.Sleep(time.Millisecond)
		f.s.cache.mu.Lock()
		for k := range f.s.cache.calls {
			key = k
		}
		f.s.cache.mu.Unlock()
	}
	waitWaiters(t, f.s.cache, key, n)
	release()
	wg.Wait()
	if got := f.be.opens.Load() - before; got != int64(len(b.parts)) {
		t.Fatalf("%d part opens for %d concurrent registrations, want %d", got, n, len(b.parts))
	}
	for i := range n {
		if errs[i] != nil || sums[i] != b.sum {
			t.Fatalf("registration %d: %v %s", i, errs[i], sums[i])
		}
	}
}

// TestGiveUp: a caller that gives up does not fail the others; when all
// give up the work stops and leaves nothing.
func TestGiveUp(t *testing.T) {
	f := newFixture(t, 64)
	b := f.upload("", "img", 200<<10, 8, f.keys.cloud.Cert)
	f.register("emi-00000000000000001", b)
	ref := Ref{ID: "emi-00000000000000001", SHA256: b.sum}
	key := "image\x00" + b.sum

	release := f.be.hold()
	quitter, quit := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	var qerr, err error
	var r io.ReadCloser
	wg.Add(2)
	go func() { defer wg.Done(); _, qerr = f.s.Open(quitter, ref) }()
	go func() { defer wg.Done(); r, err = f.s.Open(f.ctx, ref) }()
	waitWaiters(t, f.s.cache, key, 2)
	quit()
	waitWaiters(t, f.s.cache, key, 1)
	release()
	wg.Wait()
	if !errors.Is(qerr, context.Canceled) || err != nil {
		t.Fatalf("quitter %v, stayer %v", qerr, err)
	}
	if data, err := readAllClose(r); err != nil || !bytes.Equal(data, b.data) {
		t.Fatalf("stayer read: %v", err)
	}

	// Everyone gives up: the flight is cancelled, nothing is left.
	b2 := f.upload("two", "img", 200<<10, 9, f.keys.cloud.Cert)
	f.register("emi-00000000000000002", b2)
	release = f.be.hold()
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() {
		_, err := f.s.Open(ctx, Ref{ID: "emi-00000000000000002", SHA256: b2.sum})
		done <- err
	}()
	waitWaiters(t, f.s.cache, "image\x00"+b2.sum, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	release()
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(f.cacheFiles(), func(n string) bool { return strings.HasPrefix(n, tmpPrefix) || n == b2.sum }) {
		if time.Now().After(deadline) {
			t.Fatalf("abandoned decryption left %v", f.cacheFiles())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And the next asker starts afresh.
	if data, err := f.readAll(Ref{ID: "emi-00000000000000002", SHA256: b2.sum}); err != nil || !bytes.Equal(data, b2.data) {
		t.Fatalf("after an abandoned flight: %v", err)
	}
}

// TestManifestAccessPolicy: the bucket policy and the ownership controls
// govern the cloud's reads of a bundle as they govern S3 requests.
func TestManifestAccessPolicy(t *testing.T) {
	f := newFixture(t, 64)
	b := f.upload("", "exec", 1000, 1, f.keys.cloud.Cert)
	f.put("private.manifest.xml", f.manifest(b), "private")
	setPolicy := func(stmt string) {
		t.Helper()
		d := `{"Version":"2012-10-17","Statement":[` + stmt + `]}`
		if err := f.st.PutWalrusBucketConfig(f.ctx, "imgs", "policy", d); err != nil {
			t.Fatal(err)
		}
	}
	read := func(account, key string) error {
		_, err := f.s.Manifest(f.ctx, account, "imgs", key)
		return err
	}

	// An explicit Deny wins over aws-exec-read and over ownership.
	setPolicy(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::imgs/*"}`)
	for _, who := range []string{owner, stranger} {
		if err := read(who, b.key); !errors.Is(err, ErrAccess) {
			t.Errorf("%s reading a denied bundle: %v, want ErrAccess", who, err)
		}
	}
	// An Allow grants what the ACL does not.
	setPolicy(`{"Effect":"Allow","Principal":{"AWS":"` + stranger + `"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::imgs/*"}`)
	if err := read(stranger, "private.manifest.xml"); err != nil {
		t.Errorf("stranger allowed by the policy: %v", err)
	}
	if err := f.st.DeleteWalrusBucketConfig(f.ctx, "imgs", "policy"); err != nil {
		t.Fatal(err)
	}
	// BucketOwnerEnforced: the ACL's grant to the cloud no longer counts.
	if err := f.st.PutWalrusBucketConfig(f.ctx, "imgs", "ownershipControls",
		`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>`); err != nil {
		t.Fatal(err)
	}
	if err := read(stranger, b.key); !errors.Is(err, ErrAccess) {
		t.Errorf("stranger reading with ACLs disabled: %v, want ErrAccess", err)
	}
	if err := read(owner, b.key); err != nil {
		t.Errorf("owner reading with ACLs disabled: %v", err)
	}
}

// TestManifestAccessPublicBlock: the bucket's public access block governs
// the cloud's reads of a bundle as it governs S3 requests: under
// IgnorePublicAcls a public-read grant lets no other account in, and under
// RestrictPublicBuckets neither does a public policy's Allow.
func TestManifestAccessPublicBlock(t *testing.T) {
	f := newFixture(t, 64)
	b := f.upload("", "exec", 1000, 1, f.keys.cloud.Cert)
	f.put("public.manifest.xml", f.manifest(b), "public-read")
	read := func(account string) error {
		_, err := f.s.Manifest(f.ctx, account, "imgs", "public.manifest.xml")
		return err
	}
	if err := read(stranger); err != nil {
		t.Fatalf("stranger reading a public-read bundle: %v", err)
	}
	block := func(setting string) {
		t.Helper()
		if err := f.st.PutWalrusBucketConfig(f.ctx, "imgs", "publicAccessBlock",
			`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><BlockPublicAcls>false</BlockPublicAcls><IgnorePublicAcls>`+
				strconv.FormatBool(setting == "IgnorePublicAcls")+`</IgnorePublicAcls><BlockPublicPolicy>false</BlockPublicPolicy><RestrictPublicBuckets>`+
				strconv.FormatBool(setting == "RestrictPublicBuckets")+`</RestrictPublicBuckets></PublicAccessBlockConfiguration>`); err != nil {
			t.Fatal(err)
		}
	}
	block("IgnorePublicAcls")
	if err := read(stranger); !errors.Is(err, ErrAccess) {
		t.Errorf("stranger reading a public-read bundle under IgnorePublicAcls: %v, want ErrAccess", err)
	}
	if err := read(owner); err != nil {
		t.Errorf("owner reading under IgnorePublicAcls: %v", err)
	}

	f.put("public.manifest.xml", f.manifest(b), "private")
	if err := f.st.PutWalrusBucketConfig(f.ctx, "imgs", "policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::imgs/*"}]}`); err != nil {
		t.Fatal(err)
	}
	block("")
	if err := read(stranger); err != nil {
		t.Fatalf("stranger reading under a public policy: %v", err)
	}
	block("RestrictPublicBuckets")
	if err := read(stranger); !errors.Is(err, ErrAccess) {
		t.Errorf("stranger reading under a public policy and RestrictPublicBuckets: %v, want ErrAccess", err)
	}
	if err := read(owner); err != nil {
		t.Errorf("owner reading under RestrictPublicBuckets: %v", err)
	}
}
