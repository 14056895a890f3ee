package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/walrus/bundle"
)

func bundleRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{Name: "euca", Version: "test", Writer: &out, ErrWriter: &out, Commands: BundleCommands()}
	err := app.Run(append([]string{"euca"}, args...))
	return out.String(), err
}

// eucarcEnv sets the variables a sourced eucarc sets, with a fresh cloud
// certificate and user certificate in dir.
func eucarcEnv(t *testing.T, dir string) {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueUser("000011112222", "admin")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"euca2-admin-cert.pem": certPEM, "euca2-admin-pk.pem": keyPEM, "cloud-cert.pem": ca.CertPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("EC2_CERT", filepath.Join(dir, "euca2-admin-cert.pem"))
	t.Setenv("EC2_PRIVATE_KEY", filepath.Join(dir, "euca2-admin-pk.pem"))
	t.Setenv("EUCALYPTUS_CERT", filepath.Join(dir, "cloud-cert.pem"))
	t.Setenv("EC2_USER_ID", "0000-1111-2222")
	t.Setenv("EC2_ACCESS_KEY", "AKIDBUNDLE")
	t.Setenv("EC2_SECRET_KEY", "bundle-secret")
	t.Setenv("AWS_DEFAULT_REGION", "us-euca-1")
}

func TestBundleImageAndUnbundle(t *testing.T) {
	dir := t.TempDir()
	eucarcEnv(t, dir)
	image := filepath.Join(dir, "disk.img")
	data := bytes.Repeat([]byte("a disk image\n"), 300000)
	os.WriteFile(image, data, 0o644)
	out, err := bundleRun(t, "bundle-image", "-i", image, "-d", filepath.Join(dir, "b"), "-r", "i386",
		"--kernel", "eki-11111111", "--ramdisk", "eri-22222222", "-B", "ami=sda1,root=/dev/sda1", "--part-size", "1m")
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "b", "disk.img.manifest.xml")
	if out != "Wrote manifest "+manifest+"\n" {
		t.Errorf("output %q", out)
	}
	raw, _ := os.ReadFile(manifest)
	m, err := bundle.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch != "i386" || m.User != "000011112222" || m.Kind() != bundle.TypeMachine || m.KernelID != "eki-11111111" ||
		m.RamdiskID != "eri-22222222" || len(m.BlockDeviceMappings) != 2 || m.BundlerVersion != "test" {
		t.Errorf("manifest %+v", m)
	}
	out, err = bundleRun(t, "unbundle", "-m", manifest, "-s", filepath.Join(dir, "b"), "-d", filepath.Join(dir, "u"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "u", "disk.img"))
	if !bytes.Equal(got, data) || !strings.HasPrefix(out, "Wrote ") {
		t.Fatalf("unbundled %d bytes; %q", len(got), out)
	}

	// Kernel and ramdisk images, and standard input.
	if _, err := bundleRun(t, "bundle-image", "-i", image, "-d", filepath.Join(dir, "k"), "-p", "vmlinuz", "--kernel", "true"); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "k", "vmlinuz.manifest.xml"))
	if m, err := bundle.ParseManifest(raw); err != nil || m.Kind() != bundle.TypeKernel || m.KernelID != "true" || m.Name != "vmlinuz" {
		t.Errorf("kernel: %v %+v", err, m)
	}
	stdin, _ := os.Open(image)
	defer stdin.Close()
	saved := os.Stdin
	os.Stdin = stdin
	_, err = bundleRun(t, "bundle-image", "-i", "-", "-p", "initrd", "--image-size", fmt.Sprint(len(data)), "-d", filepath.Join(dir, "r"), "--ramdisk", "true")
	os.Stdin = saved
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "r", "initrd.manifest.xml"))
	if m, err := bundle.ParseManifest(raw); err != nil || m.Kind() != bundle.TypeRamdisk || m.Size != int64(len(data)) {
		t.Errorf("ramdisk: %v %+v", err, m)
	}

	// The default destination is a new directory under TMPDIR.
	t.Setenv("TMPDIR", filepath.Join(dir, "tmp"))
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	out, err = bundleRun(t, "bundle-image", "-i", image)
	if err != nil || !strings.HasPrefix(out, "Wrote manifest "+filepath.Join(dir, "tmp", "bundle-")) {
		t.Errorf("default destination: %v %q", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bundle-image", "-i", image, "--kernel", "true", "--ramdisk", "eri-1"}, "not compatible with image type 'kernel'"},
		{[]string{"bundle-image", "-i", image, "--ramdisk", "true", "--kernel", "eki-1"}, "not compatible with image type 'ramdisk'"},
		{[]string{"bundle-image", "-i", image, "--kernel", "true", "-B", "ami=sda1"}, "block-device-mappings"},
		{[]string{"bundle-image", "-i", image, "-B", "nonsense"}, "VIRTUAL=DEVICE"},
		{[]string{"bundle-image", "-i", image, "-r", "sparc"}, "invalid choice"},
		{[]string{"bundle-image", "-i", "-"}, "--image-size"},
		{[]string{"bundle-image", "-i", image, "-d", image}, "is not a directory"},
		{[]string{"bundle-image", "-i", image, "-c", filepath.Join(dir, "nope.pem")}, "certificate file"},
		{[]string{"bundle-image", "-i", image, "-k", filepath.Join(dir, "cloud-cert.pem")}, "private key"},
		{[]string{"unbundle", "-m", manifest, "-s", filepath.Join(dir, "k"), "-d", filepath.Join(dir, "x")}, "part missing"},
	} {
		if _, err := bundleRun(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("EC2_USER_ID", "")
	if _, err := bundleRun(t, "bundle-image", "-i", image); err == nil || !strings.Contains(err.Error(), "account ID") {
		t.Errorf("no account: %v", err)
	}
}

// miniS3 is just enough S3 for upload-bundle and delete-bundle, checking
// signatures with the project's verifier.
type miniS3 struct {
	mu      sync.Mutex
	objects map[string][]byte // bucket/key
	acls    map[string]string
	buckets map[string]bool
}

func (s *miniS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := awsauth.Verify(r.Context(), awsauth.Request{HTTP: r, Style: awsauth.StyleS3},
		func(_ context.Context, ak string) (string, error) { return "bundle-secret", nil }, time.Now()); err != nil {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<Error><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error>", err)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/services/Walrus/")
	bucket, key, _ := strings.Cut(path, "/")
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	notFound := func(code string) {
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "<Error><Code>%s</Code></Error>", code)
		}
	}
	switch {
	case key == "" && r.Method == http.MethodPut:
		s.buckets[bucket] = true
	case !s.buckets[bucket]:
		notFound("NoSuchBucket")
	case key == "" && r.Method == http.MethodHead:
	case key == "" && r.Method == http.MethodDelete:
		for k := range s.objects {
			if strings.HasPrefix(k, bucket+"/") {
				w.WriteHeader(http.StatusConflict)
				fmt.Fprint(w, "<Error><Code>BucketNotEmpty</Code></Error>")
				return
			}
		}
		delete(s.buckets, bucket)
	case r.Method == http.MethodPut:
		s.objects[path] = body
		s.acls[path] = r.Header.Get("X-Amz-Acl")
	case r.Method == http.MethodGet:
		b, ok := s.objects[path]
		if !ok {
			notFound("NoSuchKey")
			return
		}
		w.Write(b)
	case r.Method == http.MethodDelete:
		delete(s.objects, path)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *miniS3) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestUploadAndDeleteBundle(t *testing.T) {
	dir := t.TempDir()
	eucarcEnv(t, dir)
	s3 := &miniS3{objects: map[string][]byte{}, acls: map[string]string{}, buckets: map[string]bool{}}
	srv := httptest.NewServer(s3)
	defer srv.Close()
	t.Setenv("S3_URL", srv.URL+"/services/Walrus")
	image := filepath.Join(dir, "disk.img")
	noise := make([]byte, 2<<20+5000)
	rand.Read(noise)
	os.WriteFile(image, noise, 0o644)
	bdir := filepath.Join(dir, "b")
	// Random data does not compress: three parts of 1 MiB.
	if _, err := bundleRun(t, "bundle-image", "-i", image, "-d", bdir, "--part-size", "1m"); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(bdir, "disk.img.manifest.xml")
	out, err := bundleRun(t, "upload-bundle", "-b", "images/v1", "-m", manifest)
	if err != nil {
		t.Fatal(err)
	}
	if out != "Uploaded images/v1/disk.img.manifest.xml\n" {
		t.Errorf("output %q", out)
	}
	raw, _ := os.ReadFile(manifest)
	m, _ := bundle.ParseManifest(raw)
	if len(m.Parts) != 3 {
		t.Fatalf("%d parts", len(m.Parts))
	}
	want := []string{"images/v1/disk.img.manifest.xml"}
	for _, p := range m.Parts {
		want = append(want, "images/v1/"+p.Filename)
		part, _ := os.ReadFile(filepath.Join(bdir, p.Filename))
		if !bytes.Equal(s3.objects["images/v1/"+p.Filename], part) || s3.acls["images/v1/"+p.Filename] != "aws-exec-read" {
			t.Errorf("part %s stored wrong", p.Filename)
		}
	}
	sort.Strings(want)
	if got := s3.keys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("stored %v, want %v", got, want)
	}
	// By prefix, from the manifest in the bucket; then by a local manifest
	// after uploading again; --clear removes the bucket.
	if _, err := bundleRun(t, "delete-bundle", "-b", "images/v1", "-p", "disk.img"); err != nil {
		t.Fatal(err)
	}
	if got := s3.keys(); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	if _, err := bundleRun(t, "upload-bundle", "-b", "images", "-m", manifest, "--acl", "public-read"); err != nil {
		t.Fatal(err)
	}
	if s3.acls["images/disk.img.manifest.xml"] != "public-read" {
		t.Errorf("acl %q", s3.acls["images/disk.img.manifest.xml"])
	}
	if _, err := bundleRun(t, "delete-bundle", "-b", "images", "-m", manifest, "--clear"); err != nil {
		t.Fatal(err)
	}
	if len(s3.keys()) != 0 || s3.buckets["images"] {
		t.Fatalf("left %v, bucket %v", s3.keys(), s3.buckets)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"delete-bundle", "-b", "images", "-p", "disk.img"}, "does not exist"},
		{[]string{"delete-bundle", "-b", "images"}, "-m/--manifest"},
		{[]string{"upload-bundle", "-b", "images", "-m", manifest, "--acl", "private"}, "invalid choice"},
		{[]string{"upload-bundle", "-b", "images", "-m", manifest, "-d", dir}, "missing"},
		{[]string{"upload-bundle", "-b", "images", "-m", image}, "malformed bundle manifest"},
	} {
		if _, err := bundleRun(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("S3_URL", "")
	if _, err := bundleRun(t, "upload-bundle", "-b", "images", "-m", manifest); err == nil || !strings.Contains(err.Error(), "S3_URL") {
		t.Errorf("no url: %v", err)
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]int64{"10485760": 10485760, "10m": 10 << 20, "10MB": 10 << 20, "1k": 1024, "2G": 2 << 30, "0": 0} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "m", "-1", "1x", "99999999999t"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	for in, want := range map[string][2]string{"b": {"b", ""}, "b/p": {"b", "p/"}, "b/p/": {"b", "p/"}, "/b/p/q": {"b", "p/q/"}} {
		if b, p := splitBucket(in); b != want[0] || p != want[1] {
			t.Errorf("splitBucket(%q) = %q %q", in, b, p)
		}
	}
	got, err := parseMappings(" ami=sda1, root = /dev/sda1 ,")
	if err != nil || len(got) != 2 || got[1] != (bundle.Mapping{Virtual: "root", Device: "/dev/sda1"}) {
		t.Errorf("parseMappings: %v %v", got, err)
	}
}
