package bundle

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests hold our bundles against euca2ools 3.x and Eucalyptus. Neither
// runs here (euca2ools is Python 2 and no longer packaged), so
// testdata/euca2ools_compat.py redoes their steps with the same building
// blocks: lxml.objectify for the manifest, tarfile, gzip and openssl for the
// data, and Eucalyptus' regular expressions to find the signed text. It
// needs the system Python with lxml (Debian: python3-lxml).

func compatPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import lxml.objectify").Run() == nil {
			if _, err := exec.LookPath("openssl"); err != nil {
				break
			}
			return py
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("python3 with lxml (Debian python3-lxml) and openssl are required under CI")
	}
	t.Skip("no python3 with lxml (Debian python3-lxml) or no openssl: euca2ools compatibility not checked")
	return ""
}

func runCompat(t *testing.T, py string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(py, append([]string{filepath.Join("testdata", "euca2ools_compat.py")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("euca2ools_compat.py %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// fieldsOf gives the script a manifest's fields.
func fieldsOf(m *Manifest) map[string]any {
	bdm := map[string]string{}
	for _, b := range m.BlockDeviceMappings {
		bdm[b.Virtual] = b.Device
	}
	var parts [][2]string
	for _, p := range m.Parts {
		parts = append(parts, [2]string{p.Filename, p.Digest})
	}
	return map[string]any{
		"bundler_name": m.BundlerName, "bundler_version": m.BundlerVersion, "bundler_release": m.BundlerRelease,
		"arch": m.Arch, "kernel_id": m.KernelID, "ramdisk_id": m.RamdiskID, "bdm": bdm, "codes": m.ProductCodes,
		"name": m.Name, "user": m.User, "type": m.Type, "digest": m.Digest, "size": m.Size, "bundled_size": m.BundledSize,
		"ec2_encrypted_key": m.EC2EncryptedKey, "user_encrypted_key": m.UserEncryptedKey,
		"ec2_encrypted_iv": m.EC2EncryptedIV, "user_encrypted_iv": m.UserEncryptedIV, "parts": parts,
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Given the same fields, lxml writes the same manifest as we do, byte for
// byte, signature included (PKCS#1 v1.5 signatures are deterministic).
func TestCompatManifestBytes(t *testing.T) {
	py := compatPython(t)
	c := testCreds(t)
	for name, mod := range map[string]func(*Options){
		"machine": func(o *Options) {
			o.KernelID, o.RamdiskID = "eki-12345678", "eri-12345678"
			o.BlockDeviceMappings = []Mapping{{"root", "/dev/sda1"}, {"ami", "sda1"}, {"swap", "sda3"}}
			o.ProductCodes = []string{"a&b", "c<d>"}
		},
		"kernel":                       func(o *Options) { o.ImageType = TypeKernel },
		"ramdisk":                      func(o *Options) { o.ImageType = TypeRamdisk },
		"name with markup and accents": func(o *Options) { o.Prefix = `disk "x" <&> é ü 漢.img` },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img, _ := randomImage(t, dir, "image", 70000, 11)
			o := c.options("image")
			o.PartSize = 30000
			mod(&o)
			path, err := Create(context.Background(), img, dir, o)
			if err != nil {
				t.Fatal(err)
			}
			ours, _ := os.ReadFile(path)
			m, err := ParseManifest(ours)
			if err != nil {
				t.Fatal(err)
			}
			fields := filepath.Join(dir, "fields.json")
			writeJSON(t, fields, fieldsOf(m))
			theirs := runCompat(t, py, "manifest", fields, c.path("user-pk.pem"))
			if !bytes.Equal(ours, theirs) {
				t.Fatalf("manifests differ:\nours   %s\ntheirs %s", ours, theirs)
			}
		})
	}
}

// A bundle made the euca2ools way registers here: it parses, its signature
// verifies, the cloud's key decrypts it and it unbundles to the image.
func TestCompatEuca2oolsBundleUnbundlesHere(t *testing.T) {
	py := compatPython(t)
	c := testCreds(t)
	for name, tt := range map[string]struct {
		size     int
		partSize int
		typ      string
	}{
		"several parts": {size: 200000, partSize: 65536, typ: TypeMachine},
		"one part":      {size: 5000, partSize: 10485760, typ: TypeMachine},
		"kernel":        {size: 3000, partSize: 10485760, typ: TypeKernel},
		"empty image":   {size: 0, partSize: 10485760, typ: TypeMachine},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img, data := randomImage(t, dir, "disk.img", tt.size, 12)
			fields := map[string]any{
				"arch": "x86_64", "user": c.userID, "type": tt.typ, "part_size": tt.partSize,
				"cert": c.path("user-cert.pem"), "privkey": c.path("user-pk.pem"), "ec2cert": c.path("cloud-cert.pem"),
			}
			if tt.typ == TypeKernel {
				fields["kernel_id"] = "true"
			} else {
				fields["kernel_id"], fields["ramdisk_id"] = "eki-1", "eri-1"
				fields["bdm"] = map[string]string{"ami": "sda1", "root": "/dev/sda1"}
			}
			out := filepath.Join(dir, "bundle")
			os.Mkdir(out, 0o755)
			fj := filepath.Join(dir, "fields.json")
			writeJSON(t, fj, fields)
			path := strings.TrimSpace(string(runCompat(t, py, "bundle", img, out, "disk.img", fj)))
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest(raw)
			if err != nil {
				t.Fatalf("%v\n%s", err, raw)
			}
			if m.Kind() != tt.typ || m.Size != int64(tt.size) || m.BundlerName != "euca2ools" {
				t.Errorf("kind %s size %d bundler %s", m.Kind(), m.Size, m.BundlerName)
			}
			if err := m.VerifySignature([]*x509.Certificate{c.userCert}); err != nil {
				t.Fatal(err)
			}
			got, err := unbundleAll(t, c, m, dirParts(out))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("unbundled image differs")
			}
		})
	}
}

// A bundle made here unbundles the euca-unbundle way, with the user's key
// and with the cloud's, and its signature verifies the Eucalyptus way.
func TestCompatOurBundleUnbundlesThere(t *testing.T) {
	py := compatPython(t)
	c := testCreds(t)
	dir := t.TempDir()
	img, data := randomImage(t, dir, "disk.img", 150000, 13)
	o := c.options("disk.img")
	o.PartSize = 50000
	o.BlockDeviceMappings = []Mapping{{"ami", "sda1"}}
	out := filepath.Join(dir, "bundle")
	path, err := Create(context.Background(), img, out, o)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := readBundle(t, path)
	for _, who := range []struct{ key, which string }{{"user-pk.pem", "user"}, {"cloud-pk.pem", "ec2"}} {
		dest := filepath.Join(dir, who.which+".img")
		digest := strings.TrimSpace(string(runCompat(t, py, "unbundle", path, out, c.path(who.key), dest, who.which)))
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) || digest != m.Digest {
			t.Fatalf("%s: image differs or digest %s != %s", who.which, digest, m.Digest)
		}
	}
	if got := strings.TrimSpace(string(runCompat(t, py, "verify", path, c.path("user-cert.pem")))); got != "verified" {
		t.Fatalf("verify: %s", got)
	}
}
