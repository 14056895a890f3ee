package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed corpora under testdata/fuzz hold real manifests (ours and
// the euca2ools way) and streams of each stage; BUNDLE_WRITE_SEEDS=1 go test
// -run TestWriteFuzzSeeds rewrites them.

func FuzzParseManifest(f *testing.F) {
	c := testCreds(f)
	m, _, _, _ := craft(f, c, tarOf(tarEntry{"img", tar.TypeReg, []byte("x")}), 1, crafted{
		mani: func(m *Manifest) {
			m.KernelID = "eki-1"
			m.BlockDeviceMappings = []Mapping{{"ami", "sda1"}}
			m.ProductCodes = []string{"pc"}
		},
	})
	f.Add(m.Raw)
	f.Add([]byte(`<manifest><machine_configuration/><image/></manifest>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE manifest [<!ENTITY a "b">]><manifest>&a;</manifest>`))
	// The declarations bundlers write, and ones that must be refused.
	f.Add([]byte(Declaration + "<manifest><machine_configuration/><image/></manifest>"))
	f.Add([]byte("<?xml version='1.0' encoding='ASCII'?>\n<manifest><image><name>\u00e9</name></image></manifest>"))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-16"?><manifest/>`))
	f.Add([]byte(`<?xml version='1.0' encoding='latin1'?><manifest/>`))
	certs := []*x509.Certificate{c.userCert}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("%v is not ErrManifest", err)
			}
			return
		}
		// The signed text is the two elements as they stand in the input.
		signed := m.SignedText()
		mc := bytes.Index(signed, []byte("<image"))
		if mc < 0 || !bytes.Contains(b, signed[:mc]) || !bytes.Contains(b, signed[mc:]) {
			t.Fatalf("signed text %q is not cut from the input", signed)
		}
		if len(m.Parts) < 1 || len(m.Parts) > MaxParts || m.Size < 0 || m.BundledSize < 0 {
			t.Fatalf("parts %d size %d bundled %d", len(m.Parts), m.Size, m.BundledSize)
		}
		for i, p := range m.Parts {
			if p.Index != i || checkPartName(p.Filename) != nil || len(p.Digest) != 40 {
				t.Fatalf("part %d: %+v", i, p)
			}
		}
		switch m.Kind() {
		case TypeMachine, TypeKernel, TypeRamdisk:
		default:
			t.Fatalf("kind %q", m.Kind())
		}
		if err := m.VerifySignature(certs); err != nil && !errors.Is(err, ErrSignature) {
			t.Fatalf("verify: %v", err)
		}
		if _, _, err := m.DecryptKey(c.cloudKey); err != nil && !errors.Is(err, ErrKeyDecrypt) {
			t.Fatalf("decrypt: %v", err)
		}
	})
}

// Fuzz stages of an unbundle. The first byte says which stage the rest
// replaces: 0 the tar stream, 1 the gzip stream, 2 the ciphertext. The
// bundle is cut into two parts whose digests match, so every failure must
// be one of the later checks, each its own error, and success must give
// exactly the manifest's image.
var fuzzKey, fuzzIV = bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 16)

const fuzzImageSize = 1000

func fuzzImage() []byte { return bytes.Repeat([]byte("0123456789"), fuzzImageSize/10) }

func fuzzStages(stage byte, data []byte) (ct []byte) {
	if stage == 0 {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		data, stage = b.Bytes(), 1
	}
	if stage == 1 {
		pad := aes.BlockSize - len(data)%aes.BlockSize
		data = append(bytes.Clone(data), bytes.Repeat([]byte{byte(pad)}, pad)...)
		block, _ := aes.NewCipher(fuzzKey)
		out := make([]byte, len(data))
		cipher.NewCBCEncrypter(block, fuzzIV).CryptBlocks(out, data)
		return out
	}
	return data
}

func FuzzUnbundle(f *testing.F) {
	good := tarOf(tarEntry{"img", tar.TypeReg, fuzzImage()})
	f.Add(byte(0), good)
	f.Add(byte(0), good[:700])
	f.Add(byte(0), tarOf(tarEntry{"img", tar.TypeReg, fuzzImage()}, tarEntry{"b", tar.TypeReg, nil}))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	f.Add(byte(1), gz.Bytes())
	f.Add(byte(2), fuzzStages(0, good))
	sum := sha1.Sum(good)
	digest := hex.EncodeToString(sum[:])
	f.Fuzz(func(t *testing.T, stage byte, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		ct := fuzzStages(stage%3, data)
		half := len(ct) / 2
		parts := map[string][]byte{"p.part.00": ct[:half], "p.part.01": ct[half:]}
		m := &Manifest{Digest: digest, Size: fuzzImageSize, BundledSize: int64(len(ct))}
		for i, name := range []string{"p.part.00", "p.part.01"} {
			s := sha1.Sum(parts[name])
			m.Parts = append(m.Parts, Part{Index: i, Filename: name, Digest: hex.EncodeToString(s[:])})
		}
		var out bytes.Buffer
		gotDigest, n, err := Unbundle(context.Background(), m, fuzzKey, fuzzIV, memParts(parts), &out)
		if err == nil {
			if gotDigest != digest || n != fuzzImageSize || !bytes.Equal(out.Bytes(), fuzzImage()) {
				t.Fatalf("accepted a bundle that is not the image: %d bytes", n)
			}
			return
		}
		for _, check := range []error{ErrPadding, ErrCompression, ErrArchive, ErrImageDigest, ErrSize} {
			if errors.Is(err, check) {
				return
			}
		}
		t.Fatalf("unclassified failure: %v", err)
	})
}

// TestWriteFuzzSeeds rewrites the committed corpora when asked to.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BUNDLE_WRITE_SEEDS") == "" {
		t.Skip("set BUNDLE_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	c := testCreds(t)
	write := func(target, name string, values ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case byte:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Manifests: ours for each image type, and the euca2ools way.
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "disk.img", 30000, 1)
	for _, typ := range []string{TypeMachine, TypeKernel, TypeRamdisk} {
		o := c.options("disk.img")
		o.ImageType, o.PartSize = typ, 10000
		if typ == TypeMachine {
			o.KernelID, o.RamdiskID = "eki-1", "eri-1"
			o.BlockDeviceMappings = []Mapping{{"ami", "sda1"}, {"root", "/dev/sda1"}}
		}
		path, err := Create(context.Background(), img, filepath.Join(dir, typ), o)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		write("FuzzParseManifest", "ours-"+typ, raw)
	}
	if py := compatPython(t); py != "" {
		out := filepath.Join(dir, "euca2ools")
		os.Mkdir(out, 0o755)
		fj := filepath.Join(dir, "fields.json")
		writeJSON(t, fj, map[string]any{
			"arch": "i386", "user": c.userID, "type": TypeMachine, "part_size": 10000,
			"cert": c.path("user-cert.pem"), "privkey": c.path("user-pk.pem"), "ec2cert": c.path("cloud-cert.pem"),
		})
		path := strings.TrimSpace(string(runCompat(t, py, "bundle", img, out, "disk.img", fj)))
		raw, _ := os.ReadFile(path)
		write("FuzzParseManifest", "euca2ools-machine", raw)
	}
	good := tarOf(tarEntry{"img", tar.TypeReg, fuzzImage()})
	write("FuzzUnbundle", "tar-good", byte(0), good)
	write("FuzzUnbundle", "tar-two-entries", byte(0), tarOf(tarEntry{"img", tar.TypeReg, fuzzImage()}, tarEntry{"b", tar.TypeReg, []byte("x")}))
	write("FuzzUnbundle", "tar-truncated", byte(0), good[:600])
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(good)
	zw.Close()
	write("FuzzUnbundle", "gzip-good", byte(1), gz.Bytes())
	write("FuzzUnbundle", "cipher-good", byte(2), fuzzStages(0, good))
	write("FuzzUnbundle", "cipher-ragged", byte(2), fuzzStages(0, good)[:40])
}
