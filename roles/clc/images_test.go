package clc

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
	wfs "github.com/euca-cloud/euca/walrus/backend/fs"
	"github.com/euca-cloud/euca/walrus/bundle"
	"github.com/euca-cloud/euca/walrus/images"
)

// imgUser is an account with the certificate and key of its credentials.
type imgUser struct {
	id   string
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

type imgFixture struct {
	t            *testing.T
	ctx          context.Context
	c            *Cloud
	st           *store.Store
	be           *wfs.FS
	alice, bob   imgUser
	cloudCert    *x509.Certificate
	strangerCert *x509.Certificate // of another cloud
	registered   map[string]int    // images each account should see
}

func imgCloud(t *testing.T) *imgFixture {
	t.Helper()
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.WalrusBucketsPath = filepath.Join(cfg.Home, "buckets")
	c, st, accounts := newTestCloud(t, cfg, "alice", "bob")
	src, err := images.New(ctx, images.Options{Conf: cfg, Store: st, CloudKey: c.CA().Key})
	if err != nil {
		t.Fatal(err)
	}
	c.SetBundleSource(src)
	be, err := wfs.New(cfg.WalrusBucketsPath)
	if err != nil {
		t.Fatal(err)
	}
	f := &imgFixture{t: t, ctx: ctx, c: c, st: st, be: be, cloudCert: c.CA().Cert, registered: map[string]int{}}
	for i, u := range []struct {
		name string
		dst  *imgUser
	}{{"alice", &f.alice}, {"bob", &f.bob}} {
		a := accounts[i]
		cred, err := c.Credentials(ctx, u.name, Endpoints{})
		if err != nil {
			t.Fatal(err)
		}
		u.dst.id = a.ID
		if u.dst.cert, err = pki.ParseCertPEM(cred.UserCertPEM); err != nil {
			t.Fatal(err)
		}
		if u.dst.key, err = pki.ParseRSAKeyPEM(cred.UserKeyPEM); err != nil {
			t.Fatal(err)
		}
		bucket := u.name + "-imgs"
		if err := st.CreateWalrusBucket(ctx, store.WalrusBucket{Name: bucket, AccountID: a.ID, Location: cfg.Region}, 0); err != nil {
			t.Fatal(err)
		}
		if err := be.CreateBucket(ctx, bucket); err != nil {
			t.Fatal(err)
		}
	}
	other, err := pki.LoadOrCreateCA(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	f.strangerCert = other.Cert
	return f
}

// put stores an object in u's bucket with the canned ACL aws-exec-read
// (exec true) or private.
func (f *imgFixture) put(u imgUser, key string, data []byte, exec bool) {
	f.t.Helper()
	bucket := f.bucket(u)
	blob, err := f.be.Write(f.ctx, bucket, bytes.NewReader(data))
	if err != nil {
		f.t.Fatal(err)
	}
	acl := []store.WalrusGrant{{Type: "CanonicalUser", ID: u.id, Permission: "FULL_CONTROL"}}
	if exec {
		acl = append(acl, store.WalrusGrant{Type: "CanonicalUser", ID: "eucalyptus", Permission: "READ"})
	}
	if _, err := f.st.PutWalrusObject(f.ctx, store.WalrusObject{Bucket: bucket, Key: key, Blob: blob.ID, Size: blob.Size,
		ETag: "e", OwnerID: u.id, ACL: acl, Headers: map[string]string{}}, store.WalrusPutOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *imgFixture) bucket(u imgUser) string {
	if u.id == f.alice.id {
		return "alice-imgs"
	}
	return "bob-imgs"
}

type imgBundle struct {
	location string
	raw      []byte // the manifest
	parts    []string
	sum      string
	size     int64
}

// upload bundles a small image as u and uploads it under prefix.
func (f *imgFixture) upload(u imgUser, prefix string, o bundle.Options) imgBundle {
	f.t.Helper()
	r := rand.New(rand.NewPCG(uint64(len(prefix)), 7))
	data := make([]byte, 150<<10)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	o.Prefix, o.UserCert, o.UserKey, o.UserID, o.PartSize = prefix, u.cert, u.key, u.id, 64<<10
	if o.CloudCert == nil {
		o.CloudCert = f.cloudCert
	}
	if o.Arch == "" {
		o.Arch = "x86_64"
	}
	res, err := bundle.CreateFrom(f.ctx, bytes.NewReader(data), int64(len(data)), f.t.TempDir(), o)
	if err != nil {
		f.t.Fatal(err)
	}
	var b imgBundle
	for _, p := range res.PartPaths {
		body, err := os.ReadFile(p)
		if err != nil {
			f.t.Fatal(err)
		}
		f.put(u, filepath.Base(p), body, true)
		b.parts = append(b.parts, filepath.Base(p))
	}
	if b.raw, err = os.ReadFile(res.ManifestPath); err != nil {
		f.t.Fatal(err)
	}
	f.put(u, filepath.Base(res.ManifestPath), b.raw, true)
	b.location = f.bucket(u) + "/" + filepath.Base(res.ManifestPath)
	sum := sha256.Sum256(data)
	b.sum, b.size = hex.EncodeToString(sum[:]), int64(len(data))
	return b
}

func (f *imgFixture) register(u imgUser, req store.Image) (store.Image, error) {
	return f.c.RegisterImage(f.ctx, u.id, req)
}

// wantRefused checks the code and that the message says which check failed,
// and that nothing was registered.
func (f *imgFixture) wantRefused(what string, err error, code, msg string) {
	f.t.Helper()
	e, ok := awserr.As(err)
	if !ok || e.Code != code || !strings.Contains(e.Message, msg) {
		f.t.Errorf("%s: %v, want %s saying %q", what, err, code, msg)
	}
	for _, u := range []imgUser{f.alice, f.bob} {
		if ims, _ := f.st.ImagesVisibleTo(f.ctx, u.id); len(ims) != f.registered[u.id] {
			f.t.Errorf("%s: %d images visible to %s, want %d", what, len(ims), u.id, f.registered[u.id])
		}
	}
}

func TestRegisterImage(t *testing.T) {
	f := imgCloud(t)
	b := f.upload(f.alice, "debian.img", bundle.Options{})
	im, err := f.register(f.alice, store.Image{Location: b.location, Description: "Debian"})
	if err != nil {
		t.Fatal(err)
	}
	f.registered[f.alice.id]++
	if !strings.HasPrefix(im.ID, "emi-") || len(im.ID) != 21 || im.Kind != store.ImageMachine || im.Name != "debian.img" ||
		im.State != store.ImageAvailable || im.SHA256 != b.sum || im.SizeBytes != b.size || im.Architecture != "x86_64" ||
		im.Location != b.location || im.AccountID != f.alice.id || im.Description != "Debian" {
		t.Fatalf("registered %+v", im)
	}
	// The name is the account's: another registration of it is refused, and
	// another account may use it.
	_, err = f.register(f.alice, store.Image{Location: b.location})
	f.wantRefused("same default name", err, "InvalidAMIName.Duplicate", "debian.img")
	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "debian.img"})
	f.wantRefused("same name", err, "InvalidAMIName.Duplicate", "debian.img")
	if _, err := f.register(f.alice, store.Image{Location: b.location, Name: "debian (2)"}); err != nil {
		t.Fatalf("the same bundle under another name: %v", err)
	}
	f.registered[f.alice.id]++

	// Kernel and ramdisk images, and a machine image naming them.
	kb := f.upload(f.alice, "vmlinuz", bundle.Options{ImageType: bundle.TypeKernel})
	ki, err := f.register(f.alice, store.Image{Location: kb.location})
	if err != nil || !strings.HasPrefix(ki.ID, "eki-") || ki.Kind != store.ImageKernel {
		t.Fatalf("kernel: %+v %v", ki, err)
	}
	rb := f.upload(f.alice, "initrd", bundle.Options{ImageType: bundle.TypeRamdisk})
	ri, err := f.register(f.alice, store.Image{Location: rb.location})
	if err != nil || !strings.HasPrefix(ri.ID, "eri-") || ri.Kind != store.ImageRamdisk {
		t.Fatalf("ramdisk: %+v %v", ri, err)
	}
	f.registered[f.alice.id] += 2
	mi, err := f.register(f.alice, store.Image{Location: b.location, Name: "with-kernel", KernelID: ki.ID, RamdiskID: ri.ID})
	if err != nil || mi.KernelID != ki.ID || mi.RamdiskID != ri.ID {
		t.Fatalf("machine with kernel: %+v %v", mi, err)
	}
	f.registered[f.alice.id]++
	// The manifest's kernel and ramdisk, as euca bundle-image --kernel writes them.
	withK := f.upload(f.alice, "with-k.img", bundle.Options{KernelID: ki.ID, RamdiskID: ri.ID})
	mk, err := f.register(f.alice, store.Image{Location: withK.location})
	if err != nil || mk.KernelID != ki.ID || mk.RamdiskID != ri.ID {
		t.Fatalf("manifest's kernel: %+v %v", mk, err)
	}
	f.registered[f.alice.id]++

	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "kk1", KernelID: ri.ID})
	f.wantRefused("a ramdisk as kernel", err, "InvalidKernelId.Malformed", ri.ID)
	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "kk2", KernelID: mi.ID})
	f.wantRefused("a machine image as kernel", err, "InvalidKernelId.Malformed", mi.ID)
	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "kk3", RamdiskID: ki.ID})
	f.wantRefused("a kernel as ramdisk", err, "InvalidRamDiskId.Malformed", ki.ID)
	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "kk4", KernelID: "eki-0123456789abcdef0"})
	f.wantRefused("an unknown kernel", err, "InvalidAMIID.NotFound", "eki-0123456789abcdef0")
	_, err = f.register(f.alice, store.Image{Location: kb.location, Name: "kk5", KernelID: ki.ID})
	f.wantRefused("a kernel for a kernel", err, "InvalidParameterCombination", "machine images")

	// Bob may not use Alice's private kernel; once she shares it he may.
	bb := f.upload(f.bob, "bob.img", bundle.Options{})
	_, err = f.register(f.bob, store.Image{Location: bb.location, KernelID: ki.ID})
	f.wantRefused("another account's kernel", err, "InvalidAMIID.NotFound", ki.ID)
	if err := f.c.ModifyImage(f.ctx, f.alice.id, ki.ID, store.ImageUpdate{AddLaunch: []string{f.bob.id}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.register(f.bob, store.Image{Location: bb.location, KernelID: ki.ID}); err != nil {
		t.Fatalf("a kernel shared with bob: %v", err)
	}
	f.registered[f.bob.id] += 2 // his image and alice's shared kernel

	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "arm", Architecture: "arm64"})
	f.wantRefused("architecture", err, "InvalidParameterValue", "manifest")
	_, err = f.register(f.alice, store.Image{})
	f.wantRefused("no location", err, "MissingParameter", "ImageLocation")
	_, err = f.register(f.alice, store.Image{Location: b.location, Name: "x"})
	f.wantRefused("short name", err, "InvalidAMIName.Malformed", "3 and 128")
}

func TestRegisterImageRefusals(t *testing.T) {
	f := imgCloud(t)
	reg := func(loc string) error {
		_, err := f.register(f.alice, store.Image{Location: loc})
		return err
	}

	// Tampered: a manifest whose signed text changed.
	b := f.upload(f.alice, "tamper.img", bundle.Options{})
	f.put(f.alice, "tampered.manifest.xml", bytes.Replace(b.raw, []byte("<name>tamper.img</name>"), []byte("<name>tamper.imh</name>"), 1), true)
	f.wantRefused("tampered", reg("alice-imgs/tampered.manifest.xml"), "InvalidManifest", "signature")
	f.put(f.alice, "garbage.manifest.xml", []byte("<manifest><version>"), true)
	f.wantRefused("malformed", reg("alice-imgs/garbage.manifest.xml"), "InvalidManifest", "not a valid bundle manifest")

	// Signed by someone else: Bob's bundle registered by Alice.
	bob := f.upload(f.bob, "bobs.img", bundle.Options{})
	_, err := f.register(f.alice, store.Image{Location: bob.location})
	f.wantRefused("another's signature", err, "InvalidManifest", "signature")

	// A bundle made for another cloud.
	other := f.upload(f.alice, "other-cloud.img", bundle.Options{CloudCert: f.strangerCert})
	f.wantRefused("another cloud's certificate", reg(other.location), "InvalidManifest", "key or contents could not be decrypted")

	// Missing and corrupted parts are named.
	miss := f.upload(f.alice, "missing.img", bundle.Options{})
	if _, err := f.st.DeleteWalrusObject(f.ctx, "alice-imgs", miss.parts[1]); err != nil {
		t.Fatal(err)
	}
	f.wantRefused("missing part", reg(miss.location), "InvalidManifest", miss.parts[1])
	bad := f.upload(f.alice, "corrupt.img", bundle.Options{})
	f.put(f.alice, bad.parts[0], bytes.Repeat([]byte{1}, 64<<10), true)
	f.wantRefused("corrupted part", reg(bad.location), "InvalidManifest", bad.parts[0]+") has SHA-1")
	priv := f.upload(f.alice, "private.img", bundle.Options{})
	f.put(f.bob, priv.parts[0], []byte("x"), false) // unrelated object in bob's bucket
	f.wantRefused("no manifest", reg("alice-imgs/none.manifest.xml"), "InvalidManifest", "does not exist or you may not read it")
	_, err = f.register(f.alice, store.Image{Location: "bob-imgs/" + priv.parts[0]})
	f.wantRefused("bob's private object", err, "InvalidManifest", "does not exist or you may not read it")
	f.wantRefused("no key", reg("alice-imgs"), "InvalidParameterValue", "ImageLocation")

	// Without Walrus, nothing is registered.
	f.c.SetBundleSource(nil)
	f.wantRefused("no walrus", reg(b.location), "Unavailable", "Walrus")
}

func TestImagePermissions(t *testing.T) {
	f := imgCloud(t)
	ctx := f.ctx
	b := f.upload(f.alice, "shared.img", bundle.Options{})
	im, err := f.register(f.alice, store.Image{Location: b.location, Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := f.st.AccountByName(ctx, AdminAccount)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(acct string, ids, owners, exec []string) int {
		t.Helper()
		l, err := f.c.DescribeImages(ctx, acct, ids, owners, exec)
		if err != nil {
			t.Fatalf("describe as %s: %v", acct, err)
		}
		return len(l)
	}
	if describe(f.bob.id, nil, nil, nil) != 0 {
		t.Fatal("bob sees a private image")
	}
	_, err = f.c.DescribeImages(ctx, f.bob.id, []string{im.ID}, nil, nil)
	wantCode(t, "bob describes it by id", err, "InvalidAMIID.NotFound")
	wantCode(t, "bob shares it", f.c.ModifyImage(ctx, f.bob.id, im.ID, store.ImageUpdate{AddLaunch: []string{f.bob.id}}), "InvalidAMIID.NotFound")

	if err := f.c.ModifyImage(ctx, f.alice.id, im.ID, store.ImageUpdate{AddLaunch: []string{f.bob.id}}); err != nil {
		t.Fatal(err)
	}
	if describe(f.bob.id, []string{im.ID}, nil, nil) != 1 || describe(f.bob.id, nil, []string{"self"}, nil) != 0 ||
		describe(f.bob.id, nil, []string{f.alice.id}, nil) != 1 || describe(f.bob.id, nil, []string{"alice"}, nil) != 1 ||
		describe(f.bob.id, nil, []string{"amazon"}, nil) != 0 || describe(f.bob.id, nil, []string{"all"}, nil) != 1 ||
		describe(f.bob.id, nil, nil, []string{"self"}) != 1 || describe(f.bob.id, nil, nil, []string{"all"}) != 0 ||
		describe(admin.ID, nil, nil, nil) != 0 || describe(f.alice.id, nil, nil, []string{f.bob.id}) != 1 {
		t.Fatal("launch permission for bob not as described")
	}
	_, err = f.c.DescribeImages(ctx, f.bob.id, nil, []string{"nobody"}, nil)
	wantCode(t, "unknown owner", err, "InvalidUserID.Malformed")
	_, err = f.c.DescribeImages(ctx, f.bob.id, nil, nil, []string{"me"})
	wantCode(t, "bad executable-by", err, "InvalidUserID.Malformed")
	// Bob may launch it, not change it.
	wantCode(t, "bob modifies", f.c.ModifyImage(ctx, f.bob.id, im.ID, store.ImageUpdate{ResetLaunch: true}), "AuthFailure")
	wantCode(t, "bob deregisters", f.c.DeregisterImage(ctx, f.bob.id, im.ID), "AuthFailure")
	_, err = f.c.DescribeImage(ctx, f.bob.id, im.ID, true)
	wantCode(t, "bob reads its launch permissions", err, "AuthFailure")
	if _, err := f.c.DescribeImage(ctx, f.bob.id, im.ID, false); err != nil {
		t.Fatalf("bob reads its description: %v", err)
	}
	wantCode(t, "bad user id", f.c.ModifyImage(ctx, f.alice.id, im.ID, store.ImageUpdate{AddLaunch: []string{"bob"}}), "InvalidAMIAttributeItemValue")

	pub := true
	if err := f.c.ModifyImage(ctx, f.alice.id, im.ID, store.ImageUpdate{Public: &pub}); err != nil {
		t.Fatal(err)
	}
	if describe(admin.ID, nil, nil, nil) != 1 || describe(admin.ID, nil, nil, []string{"all"}) != 1 {
		t.Fatal("public image not visible")
	}
	private := false
	if err := f.c.ModifyImage(ctx, f.alice.id, im.ID, store.ImageUpdate{ResetLaunch: true, Public: &private}); err != nil {
		t.Fatal(err)
	}
	if describe(admin.ID, nil, nil, nil) != 0 || describe(f.bob.id, nil, nil, nil) != 0 {
		t.Fatal("reset did not make the image private")
	}

	if err := f.c.DeregisterImage(ctx, f.alice.id, im.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "deregister twice", f.c.DeregisterImage(ctx, f.alice.id, im.ID), "InvalidAMIID.NotFound")
	if describe(f.alice.id, nil, nil, nil) != 0 {
		t.Fatal("deregistered image still listed")
	}
	// The name is free again.
	if _, err := f.register(f.alice, store.Image{Location: b.location, Name: "shared"}); err != nil {
		t.Fatalf("re-register: %v", err)
	}
}

func TestManifestDevices(t *testing.T) {
	m := &bundle.Manifest{BlockDeviceMappings: []bundle.Mapping{
		{Virtual: "ami", Device: "sda1"}, {Virtual: "root", Device: "/dev/sda1"}, {Virtual: "ephemeral0", Device: "sda2"}, {Virtual: "swap", Device: "sda3"},
	}}
	im := store.Image{}
	manifestDevices(&im, m)
	if im.RootDeviceName != "/dev/sda1" || len(im.BlockDevices) != 2 || im.BlockDevices[0] != (store.ImageBlockDevice{Virtual: "ephemeral0", Device: "sda2"}) {
		t.Fatalf("from the manifest: %+v", im)
	}
	im = store.Image{RootDeviceName: "/dev/xvda", BlockDevices: []store.ImageBlockDevice{{Device: "sda3"}, {Virtual: "ephemeral1", Device: "sdc"}}}
	manifestDevices(&im, m)
	if im.RootDeviceName != "/dev/xvda" || len(im.BlockDevices) != 2 || im.BlockDevices[1] != (store.ImageBlockDevice{Virtual: "ephemeral1", Device: "sdc"}) {
		t.Fatalf("with the request's: %+v", im)
	}
	im = store.Image{}
	manifestDevices(&im, &bundle.Manifest{})
	if im.RootDeviceName != "/dev/sda1" || len(im.BlockDevices) != 0 {
		t.Fatalf("no mappings: %+v", im)
	}
}
