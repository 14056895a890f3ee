package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundleRoundTrip: images as a user of euca2ools makes them. Bundle
// with `euca bundle-image` (credentials from the sourced eucarc), upload
// with `euca upload-bundle`, register, describe and share with the AWS CLI,
// deregister, `euca delete-bundle`; and the bundles that must be refused
// (tampered manifest, another cloud's or user's keys, missing and damaged
// parts), each with the message of its check.
func TestBundleRoundTrip(t *testing.T) {
	Need(t, "aws", "openssl")
	c := Start(t, "clc,walrus")
	env := c.Env
	s3url := strings.TrimSuffix(strings.SplitN(Getenv(env, "S3_URL"), "/services/Walrus", 2)[0], "/")
	work := t.TempDir()

	euca := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		if args[0] != "delete-bundle" {
			args = append(args, "--no-progress")
		}
		out, err := Run(t, env, c.Bin, args...)
		if err != nil {
			t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 20))
		}
		return out
	}
	aws := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		out, err := c.AWS(t, env, args...)
		if err != nil {
			t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 20))
		}
		return strings.TrimSpace(out)
	}
	text := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		return aws(t, env, append(args, "--output", "text")...)
	}
	s3 := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		out, err := Run(t, env, "aws", append([]string{"--endpoint-url", s3url}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	refused := func(t *testing.T, env []string, want string, args ...string) {
		t.Helper()
		_, err := c.AWS(t, env, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", args, err, want)
		}
	}
	image := func(t *testing.T, name string, size int) string {
		t.Helper()
		p := filepath.Join(work, name)
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// bundle makes and uploads a bundle into bucket, returning the manifest's
	// object key.
	bundleUp := func(t *testing.T, env []string, img, dir, bucket string, extra ...string) string {
		t.Helper()
		euca(t, env, append([]string{"bundle-image", "-i", img, "-d", dir}, extra...)...)
		manifest := filepath.Join(dir, filepath.Base(img)+".manifest.xml")
		euca(t, env, "upload-bundle", "-b", bucket, "-m", manifest)
		return filepath.Base(manifest)
	}

	// A machine image, 25 MB so that it has three parts.
	raw := image(t, "debian.img", 25<<20+123)
	dir := filepath.Join(work, "bundle")
	key := bundleUp(t, env, raw, dir, "imgs")
	emi := text(t, env, "ec2", "register-image", "--image-location", "imgs/"+key, "--name", "debian", "--query", "ImageId")
	if !strings.HasPrefix(emi, "emi-") || len(emi) != 21 {
		t.Fatalf("register-image: %q", emi)
	}
	var d struct {
		Images []struct {
			ImageId, ImageLocation, State, OwnerId, ImageType, Name, Architecture string
			RootDeviceType, RootDeviceName, VirtualizationType, Hypervisor        string
			KernelId, RamdiskId                                                   string
			Public                                                                bool
		}
	}
	jsonField(t, aws(t, env, "ec2", "describe-images", "--owners", "self"), &d)
	if len(d.Images) != 1 || d.Images[0].ImageId != emi || d.Images[0].State != "available" || d.Images[0].ImageType != "machine" ||
		d.Images[0].Name != "debian" || d.Images[0].ImageLocation != "imgs/"+key || d.Images[0].Architecture != "x86_64" ||
		d.Images[0].RootDeviceType != "instance-store" || d.Images[0].VirtualizationType != "paravirtual" || d.Images[0].Public {
		t.Fatalf("describe-images --owners self: %+v", d.Images)
	}
	// The decrypted image is in Walrus's cache, named by its SHA-256.
	plain, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plain)
	cached, err := os.ReadFile(filepath.Join(c.Dir, "euca", "var/lib/eucalyptus/bucket/.image-cache", hex.EncodeToString(sum[:])))
	if err != nil || !bytes.Equal(cached, plain) {
		t.Errorf("the plain image is not cached by its SHA-256: %v", err)
	}
	refused(t, env, "InvalidAMIName.Duplicate", "ec2", "register-image", "--image-location", "imgs/"+key, "--name", "debian")

	// A kernel and a ramdisk, and machine images booting them: named at
	// registration, or in the manifest by bundle-image --kernel/--ramdisk.
	kdir, rdir := filepath.Join(work, "k"), filepath.Join(work, "r")
	kkey := bundleUp(t, env, image(t, "vmlinuz", 300<<10), kdir, "imgs", "--kernel", "true")
	rkey := bundleUp(t, env, image(t, "initrd.img", 200<<10), rdir, "imgs", "--ramdisk", "true")
	eki := text(t, env, "ec2", "register-image", "--image-location", "imgs/"+kkey, "--name", "kernel", "--query", "ImageId")
	eri := text(t, env, "ec2", "register-image", "--image-location", "imgs/"+rkey, "--name", "ramdisk", "--query", "ImageId")
	if !strings.HasPrefix(eki, "eki-") || !strings.HasPrefix(eri, "eri-") {
		t.Fatalf("kernel %q, ramdisk %q", eki, eri)
	}
	emi2 := text(t, env, "ec2", "register-image", "--image-location", "imgs/"+key, "--name", "debian-pv", "--kernel-id", eki, "--ramdisk-id", eri, "--query", "ImageId")
	mkey := bundleUp(t, env, image(t, "guest.img", 100<<10), filepath.Join(work, "m"), "imgs", "--kernel", eki, "--ramdisk", eri)
	emi3 := text(t, env, "ec2", "register-image", "--image-location", "imgs/"+mkey, "--name", "guest", "--query", "ImageId")
	for _, id := range []string{emi2, emi3} {
		got := text(t, env, "ec2", "describe-images", "--image-ids", id, "--query", "Images[0].[ImageType,KernelId,RamdiskId]")
		if got != "machine\t"+eki+"\t"+eri {
			t.Errorf("%s: %q, want machine with %s and %s", id, got, eki, eri)
		}
	}
	if got := text(t, env, "ec2", "describe-images", "--owners", "self", "--filters", "Name=image-type,Values=kernel,ramdisk", "--query", "length(Images)"); got != "2" {
		t.Errorf("kernel and ramdisk images: %s", got)
	}
	if got := text(t, env, "ec2", "describe-images", "--filters", "Name=name,Values=debian*", "--query", "sort(Images[].Name)"); got != "debian\tdebian-pv" {
		t.Errorf("name filter: %q", got)
	}
	refused(t, env, "InvalidKernelId.Malformed", "ec2", "register-image", "--image-location", "imgs/"+key, "--name", "bad-kernel", "--kernel-id", eri)
	refused(t, env, "InvalidAMIID.NotFound", "ec2", "register-image", "--image-location", "imgs/"+key, "--name", "no-kernel", "--kernel-id", "eki-0123456789abcdef0")

	// Launch permissions, with a second account.
	if out, err := c.Euca(t, "account", "create", "bob"); err != nil {
		t.Fatalf("account create: %v %s", err, out)
	}
	bob := c.Credentials(t, "bob")
	bobID := Getenv(bob, "EC2_USER_ID")
	if bobID == "" {
		bobID = text(t, bob, "sts", "get-caller-identity", "--query", "Account")
	}
	if got := text(t, bob, "ec2", "describe-images", "--query", "length(Images)"); got != "0" {
		t.Fatalf("bob sees %s images before any is shared", got)
	}
	aws(t, env, "ec2", "modify-image-attribute", "--image-id", emi, "--launch-permission", "Add=[{UserId="+bobID+"}]")
	if got := text(t, env, "ec2", "describe-image-attribute", "--image-id", emi, "--attribute", "launchPermission", "--query", "LaunchPermissions[0].UserId"); got != bobID {
		t.Errorf("launch permission: %q, want %s", got, bobID)
	}
	if got := text(t, bob, "ec2", "describe-images", "--executable-users", "self", "--query", "Images[].ImageId"); got != emi {
		t.Errorf("bob's executable images: %q, want %s", got, emi)
	}
	refused(t, bob, "AuthFailure", "ec2", "modify-image-attribute", "--image-id", emi, "--launch-permission", "Add=[{Group=all}]")
	refused(t, bob, "AuthFailure", "ec2", "deregister-image", "--image-id", emi)
	refused(t, bob, "InvalidAMIID.NotFound", "ec2", "describe-images", "--image-ids", emi2)
	aws(t, env, "ec2", "modify-image-attribute", "--image-id", emi2, "--launch-permission", "Add=[{Group=all}]")
	if got := text(t, bob, "ec2", "describe-images", "--executable-users", "all", "--query", "Images[].[ImageId,Public]"); got != emi2+"\tTrue" {
		t.Errorf("public images for bob: %q", got)
	}
	aws(t, env, "ec2", "modify-image-attribute", "--image-id", emi, "--launch-permission", "Remove=[{UserId="+bobID+"}]")
	aws(t, env, "ec2", "reset-image-attribute", "--image-id", emi2, "--attribute", "launchPermission")
	if got := text(t, bob, "ec2", "describe-images", "--query", "length(Images)"); got != "0" {
		t.Errorf("bob still sees %s images", got)
	}
	aws(t, env, "ec2", "modify-image-attribute", "--image-id", emi, "--description", "Value=Debian 12")
	if got := text(t, env, "ec2", "describe-image-attribute", "--image-id", emi, "--attribute", "description", "--query", "Description.Value"); got != "Debian 12" {
		t.Errorf("description %q", got)
	}

	// Bundles that must be refused, each saying which check failed.
	t.Run("refused", func(t *testing.T) {
		reg := func(t *testing.T, env []string, loc, want string) {
			t.Helper()
			refused(t, env, want, "ec2", "register-image", "--image-location", loc, "--name", "refused")
		}
		manifest, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		tampered := filepath.Join(work, "tampered.manifest.xml")
		os.WriteFile(tampered, bytes.Replace(manifest, []byte("<name>debian.img</name>"), []byte("<name>debian.imh</name>"), 1), 0o644)
		s3(t, env, "s3", "cp", tampered, "s3://imgs/tampered.manifest.xml")
		reg(t, env, "imgs/tampered.manifest.xml", "signature does not verify")
		reg(t, env, "imgs/no-such.manifest.xml", "does not exist or you may not read it")

		// Another cloud's certificate: the key cannot be decrypted here.
		other := filepath.Join(work, "other-cloud")
		os.MkdirAll(other, 0o700)
		if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=another cloud",
			"-days", "1", "-keyout", filepath.Join(other, "pk.pem"), "-out", filepath.Join(other, "cert.pem")).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v %s", err, out)
		}
		okey := bundleUp(t, env, image(t, "other.img", 50<<10), filepath.Join(work, "o"), "imgs", "--ec2cert", filepath.Join(other, "cert.pem"))
		reg(t, env, "imgs/"+okey, "key or contents could not be decrypted")

		// Another user's keys: bob's bundle, readable by the cloud, is not
		// admin's to register.
		bkey := bundleUp(t, bob, image(t, "bobs.img", 50<<10), filepath.Join(work, "b"), "bobs-imgs")
		reg(t, env, "bobs-imgs/"+bkey, "signature does not verify")
		if got := text(t, bob, "ec2", "register-image", "--image-location", "bobs-imgs/"+bkey, "--name", "bobs", "--query", "ImageId"); !strings.HasPrefix(got, "emi-") {
			t.Errorf("bob registering his own bundle: %q", got)
		}

		// Missing and damaged parts are named.
		pkey := bundleUp(t, env, image(t, "parts.img", 25<<20), filepath.Join(work, "p"), "parts")
		s3(t, env, "s3", "rm", "s3://parts/parts.img.part.01")
		reg(t, env, "parts/"+pkey, "parts.img.part.01")
		s3(t, env, "s3", "cp", filepath.Join(work, "p", "parts.img.part.01"), "s3://parts/parts.img.part.01")
		s3(t, env, "s3", "cp", image(t, "junk", 10<<20), "s3://parts/parts.img.part.00")
		reg(t, env, "parts/"+pkey, "A bundle part is damaged: part 0 (parts.img.part.00)")
		s3(t, env, "s3", "cp", filepath.Join(work, "p", "parts.img.part.00"), "s3://parts/parts.img.part.00")
		s3(t, env, "s3", "cp", image(t, "long", 10<<20), "s3://parts/parts.img.part.02")
		reg(t, env, "parts/"+pkey, "parts are not the size the manifest says")
		if got := text(t, env, "ec2", "describe-images", "--filters", "Name=name,Values=refused", "--query", "length(Images)"); got != "0" {
			t.Errorf("a refused bundle was registered: %s", got)
		}
	})

	// Deregister everything, then delete the bundles.
	for _, id := range []string{emi, emi2, emi3, eki, eri} {
		aws(t, env, "ec2", "deregister-image", "--image-id", id)
	}
	refused(t, env, "InvalidAMIID.NotFound", "ec2", "deregister-image", "--image-id", emi)
	if got := text(t, env, "ec2", "describe-images", "--owners", "self", "--query", "length(Images)"); got != "0" {
		t.Errorf("%s images left after deregistration", got)
	}
	euca(t, env, "delete-bundle", "-b", "imgs", "-m", filepath.Join(dir, key))
	if out := s3(t, env, "s3", "ls", "s3://imgs/"); strings.Contains(out, "debian.img") {
		t.Errorf("delete-bundle left:\n%s", out)
	}
	if strings.Contains(c.Log(), "level=ERROR") {
		t.Errorf("errors in the log:\n%s", tail(c.Log(), 40))
	}
}

// TestRegisterEuca2oolsBundle: a bundle made the euca2ools way (its
// manifest begins with lxml's <?xml version='1.0' encoding='ASCII'?>)
// uploads with `euca upload-bundle`, registers with the AWS CLI and
// unbundles with `euca unbundle`. walrus/bundle/testdata/euca2ools_compat.py
// redoes euca2ools' steps with lxml (Debian python3-lxml).
func TestRegisterEuca2oolsBundle(t *testing.T) {
	Need(t, "aws", "openssl")
	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import lxml.objectify").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 with lxml (Debian python3-lxml) is required under CI")
		}
		t.Skip("no python3 with lxml (Debian python3-lxml)")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := Start(t, "clc,walrus")
	env := c.Env
	work := t.TempDir()
	img := filepath.Join(work, "disk.img")
	data := make([]byte, 300<<10+7)
	rand.Read(data)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fields := filepath.Join(work, "fields.json")
	os.WriteFile(fields, []byte(`{"arch": "x86_64", "type": "machine", "part_size": 102400, "user": "`+Getenv(env, "EC2_USER_ID")+
		`", "cert": "`+Getenv(env, "EC2_CERT")+`", "privkey": "`+Getenv(env, "EC2_PRIVATE_KEY")+
		`", "ec2cert": "`+Getenv(env, "EUCALYPTUS_CERT")+`", "bdm": {"ami": "sda1", "root": "/dev/sda1"}}`), 0o600)
	bdir := filepath.Join(work, "bundle")
	os.Mkdir(bdir, 0o755)
	out, err := Run(t, env, py, filepath.Join(root, "walrus/bundle/testdata/euca2ools_compat.py"), "bundle", img, bdir, "disk.img", fields)
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.TrimSpace(out)
	raw, err := os.ReadFile(manifest)
	if err != nil || !bytes.HasPrefix(raw, []byte("<?xml version='1.0' encoding='ASCII'?>\n<manifest>")) {
		t.Fatalf("not euca2ools' manifest (%v):\n%.200s", err, raw)
	}
	if out, err := Run(t, env, c.Bin, "upload-bundle", "-b", "e2tools", "-m", manifest, "--no-progress"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	emi, err := c.AWS(t, env, "ec2", "register-image", "--image-location", "e2tools/disk.img.manifest.xml", "--name", "from-euca2ools", "--query", "ImageId", "--output", "text")
	if err != nil {
		t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 20))
	}
	emi = strings.TrimSpace(emi)
	state, err := c.AWS(t, env, "ec2", "describe-images", "--image-ids", emi, "--query", "Images[0].[State,ImageType]", "--output", "text")
	if err != nil || strings.TrimSpace(state) != "available\tmachine" {
		t.Fatalf("describe-images %s: %q %v", emi, state, err)
	}
	dest := filepath.Join(work, "out")
	if out, err := Run(t, env, c.Bin, "unbundle", "-m", manifest, "-s", bdir, "-d", dest, "--no-progress"); err != nil {
		t.Fatalf("euca unbundle: %v %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dest, "disk.img"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("unbundled image differs (%v)", err)
	}
}
