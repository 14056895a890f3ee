package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	c := testCreds(t)
	tests := []struct {
		name     string
		size     int
		partSize int64
		mod      func(*Options)
		kind     string
	}{
		{name: "empty", size: 0},
		{name: "one byte", size: 1},
		{name: "one block", size: 512},
		{name: "three parts", size: 3<<20 + 12345, partSize: 1 << 20},
		// The ciphertext lands on exact part boundaries in neither case, but
		// a 64 KiB part size with incompressible data gives many parts.
		{name: "many small parts", size: 1 << 20, partSize: 64 << 10},
		{name: "kernel", size: 4000, mod: func(o *Options) { o.ImageType = TypeKernel }, kind: TypeKernel},
		{name: "ramdisk", size: 4000, mod: func(o *Options) { o.ImageType = TypeRamdisk }, kind: TypeRamdisk},
		{name: "machine with kernel and mappings", size: 4000, mod: func(o *Options) {
			o.KernelID, o.RamdiskID = "eki-0123456789abcdef0", "eri-0123456789abcdef0"
			o.BlockDeviceMappings = []Mapping{{"root", "/dev/sda1"}, {"ami", "sda1"}, {"ephemeral0", "sda2"}}
			o.ProductCodes = []string{"code1"}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img, data := randomImage(t, dir, "image.img", tt.size, uint64(i))
			o := c.options("")
			o.PartSize = tt.partSize
			if tt.mod != nil {
				tt.mod(&o)
			}
			var lastDone, lastTotal int64
			o.Progress = func(done, total int64) { lastDone, lastTotal = done, total }
			out := filepath.Join(dir, "out")
			res, err := CreateResult(context.Background(), img, out, o)
			if err != nil {
				t.Fatal(err)
			}
			if lastDone != int64(tt.size) || lastTotal != int64(tt.size) {
				t.Errorf("last progress %d/%d, want %d/%d", lastDone, lastTotal, tt.size, tt.size)
			}
			if res.ManifestPath != filepath.Join(out, "image.img.manifest.xml") {
				t.Errorf("manifest path %s", res.ManifestPath)
			}
			raw, err := os.ReadFile(res.ManifestPath)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.kind
			if want == "" {
				want = TypeMachine
			}
			if m.Kind() != want || m.Type != want {
				t.Errorf("kind %s, type %s, want %s", m.Kind(), m.Type, want)
			}
			if m.Name != "image.img" || m.User != c.userID || m.Arch != "x86_64" || m.Size != int64(tt.size) {
				t.Errorf("fields: %+v", m)
			}
			if m.Version != ManifestVersion || m.BundlerName != "euca" {
				t.Errorf("version %q bundler %q", m.Version, m.BundlerName)
			}
			ps := tt.partSize
			if ps == 0 {
				ps = DefaultPartSize
			}
			var total int64
			for i, p := range m.Parts {
				if want := fmt.Sprintf("image.img.part.%02d", i); p.Filename != want {
					t.Errorf("part %d named %s, want %s", i, p.Filename, want)
				}
				st, err := os.Stat(filepath.Join(out, p.Filename))
				if err != nil {
					t.Fatal(err)
				}
				if i < len(m.Parts)-1 && st.Size() != ps {
					t.Errorf("part %d is %d bytes, want %d", i, st.Size(), ps)
				}
				total += st.Size()
			}
			if total != m.BundledSize || total%aes.BlockSize != 0 {
				t.Errorf("parts hold %d bytes, bundled_size %d", total, m.BundledSize)
			}
			if err := m.VerifySignature([]*x509.Certificate{c.otherCert, c.userCert}); err != nil {
				t.Fatal(err)
			}
			got, err := unbundleAll(t, c, m, dirParts(out))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("unbundled %d bytes, differ from the %d of the image", len(got), len(data))
			}
			// The user can unbundle too, with the user's copy of the key.
			key, iv, err := m.DecryptUserKey(c.userKey)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			digest, n, err := Unbundle(context.Background(), m, key, iv, dirParts(out), &buf)
			if err != nil || digest != m.Digest || n != int64(tt.size) {
				t.Fatalf("user unbundle: %v %s %d", err, digest, n)
			}
		})
	}
}

func TestManifestLayout(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "k", 100, 9)
	o := c.options("vmlinuz-test")
	o.ImageType = TypeKernel
	path, err := Create(context.Background(), img, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	s := string(raw)
	// lxml's declaration on its own line, then one line with the elements
	// in euca2ools' order (<type> right after <user>).
	pattern := `^<\?xml version='1\.0' encoding='ASCII'\?>\n<manifest><version>2007-10-10</version><bundler><name>euca</name><version>test</version><release>0</release></bundler>` +
		`<machine_configuration><architecture>x86_64</architecture><kernel_id>true</kernel_id></machine_configuration>` +
		`<image><name>vmlinuz-test</name><user>123456789012</user><type>kernel</type><digest algorithm="SHA1">[0-9a-f]{40}</digest><size>100</size><bundled_size>\d+</bundled_size>` +
		`<ec2_encrypted_key algorithm="AES-128-CBC">[0-9a-f]{512}</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC">[0-9a-f]{512}</user_encrypted_key>` +
		`<ec2_encrypted_iv>[0-9a-f]{512}</ec2_encrypted_iv><user_encrypted_iv>[0-9a-f]{512}</user_encrypted_iv>` +
		`<parts count="1"><part index="0"><filename>vmlinuz-test.part.00</filename><digest algorithm="SHA1">[0-9a-f]{40}</digest></part></parts></image>` +
		`<signature>[0-9a-f]{512}</signature></manifest>$`
	if !regexp.MustCompile(pattern).MatchString(s) {
		t.Fatalf("manifest layout:\n%s", s)
	}
}

// Eucalyptus' ImageManifests.java cuts the signed text out of the manifest
// with replaceAll(".*<image>", "<image>") and replaceAll("</image>.*",
// "</image>") (and the same for machine_configuration); the text we sign
// must be what that gives on the document's line (Java's . stops at the
// line end, and the declaration stands on a line of its own).
func TestSignedTextIsEucalyptusCut(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "i", 100, 3)
	o := c.options("name <&> é")
	o.BlockDeviceMappings = []Mapping{{"ami", "sda1"}}
	path, err := Create(context.Background(), img, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	s, ok := strings.CutPrefix(string(raw), Declaration)
	if !ok || strings.Contains(s, "\n") {
		t.Fatalf("not the declaration then one line:\n%s", raw)
	}
	cut := func(tag string) string {
		s := regexp.MustCompile(`.*<`+tag+`>`).ReplaceAllString(s, "<"+tag+">")
		return regexp.MustCompile(`</`+tag+`>.*`).ReplaceAllString(s, "</"+tag+">")
	}
	pad := cut("machine_configuration") + cut("image")
	m, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if pad != string(m.SignedText()) {
		t.Fatalf("Eucalyptus would verify\n%s\nwe signed\n%s", pad, m.SignedText())
	}
	if m.Name != "name <&> é" || !strings.Contains(s, "<name>name &lt;&amp;&gt; &#233;</name>") {
		t.Fatalf("name %q in %s", m.Name, s)
	}
}

// Changing any byte of the signed elements must be caught: either the
// manifest no longer parses or its signature no longer verifies.
func TestTamperedManifest(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "i", 100, 4)
	o := c.options("img")
	o.KernelID, o.RamdiskID = "eki-00000001", "eri-00000001"
	path, err := Create(context.Background(), img, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	start := bytes.Index(raw, []byte("<machine_configuration>"))
	end := bytes.Index(raw, []byte("</image>")) + len("</image>")
	certs := []*x509.Certificate{c.userCert}
	for i := start; i < end; i++ {
		for _, b := range []byte{raw[i] ^ 1, ' ', '0'} {
			if b == raw[i] {
				continue
			}
			bad := bytes.Clone(raw)
			bad[i] = b
			m, err := ParseManifest(bad)
			if err != nil {
				if !errors.Is(err, ErrManifest) {
					t.Fatalf("byte %d: %v is not ErrManifest", i, err)
				}
				continue
			}
			if err := m.VerifySignature(certs); !errors.Is(err, ErrSignature) {
				t.Fatalf("byte %d (%q -> %q) changed and the signature still verifies: %v", i, raw[i], b, err)
			}
		}
	}
	// Not signed by this user; not signed at all; a signature that is
	// not hex.
	m, _ := ParseManifest(raw)
	if err := m.VerifySignature([]*x509.Certificate{c.otherCert, c.cloudCert}); !errors.Is(err, ErrSignature) {
		t.Errorf("other certificates: %v", err)
	}
	if err := m.VerifySignature(nil); !errors.Is(err, ErrSignature) {
		t.Errorf("no certificates: %v", err)
	}
	unsigned := regexp.MustCompile(`<signature>.*</signature>`).ReplaceAll(raw, nil)
	if m, err := ParseManifest(unsigned); err != nil {
		t.Fatal(err)
	} else if err := m.VerifySignature(certs); !errors.Is(err, ErrSignature) {
		t.Errorf("unsigned: %v", err)
	}
	// Moving the signed elements into a second <image> or wrapping them in
	// a comment is refused, not verified against the wrong bytes.
	for _, doc := range []string{
		strings.Replace(string(raw), "</manifest>", "<image><name>x</name></image></manifest>", 1),
		strings.Replace(string(raw), "<machine_configuration>", "<machine_configuration><architecture>i386</architecture></machine_configuration><machine_configuration>", 1),
	} {
		if _, err := ParseManifest([]byte(doc)); !errors.Is(err, ErrManifest) {
			t.Errorf("ambiguous manifest accepted: %v", err)
		}
	}
}

func TestWrongKeys(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "i", 5000, 5)
	path, err := Create(context.Background(), img, dir, c.options("img"))
	if err != nil {
		t.Fatal(err)
	}
	m, parts := readBundle(t, path)
	// A key made for another cloud: the RSA decryption fails.
	if _, _, err := m.DecryptKey(c.otherKey); !errors.Is(err, ErrKeyDecrypt) {
		t.Fatalf("decrypt with another key: %v", err)
	}
	if _, _, err := m.DecryptUserKey(c.cloudKey); !errors.Is(err, ErrKeyDecrypt) {
		t.Fatalf("user key with the cloud's: %v", err)
	}
	// A wrong AES key (what a bundler with a bug would leave): the parts
	// check out, then the plaintext is noise.
	key := make([]byte, 16)
	rand.Read(key)
	_, iv, _ := m.DecryptKey(c.cloudKey)
	_, _, err = Unbundle(context.Background(), m, key, iv, memParts(parts), io.Discard)
	if !errors.Is(err, ErrCompression) && !errors.Is(err, ErrPadding) {
		t.Fatalf("wrong AES key: %v", err)
	}
	if _, _, err := Unbundle(context.Background(), m, key[:5], iv, memParts(parts), io.Discard); !errors.Is(err, ErrKeyDecrypt) {
		t.Fatalf("short key: %v", err)
	}
}

func TestDamagedParts(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "i", 300<<10, 6)
	o := c.options("img")
	o.PartSize = 100 << 10
	path, err := Create(context.Background(), img, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	m, parts := readBundle(t, path)
	if len(m.Parts) != 4 {
		t.Fatalf("%d parts", len(m.Parts))
	}
	for _, tt := range []struct {
		name   string
		damage func(map[string][]byte)
		want   error
		detail string
	}{
		{"missing first part", func(p map[string][]byte) { delete(p, "img.part.00") }, ErrPartMissing, "part 0 (img.part.00)"},
		{"missing middle part", func(p map[string][]byte) { delete(p, "img.part.02") }, ErrPartMissing, "part 2"},
		{"missing last part", func(p map[string][]byte) { delete(p, "img.part.03") }, ErrPartMissing, "part 3"},
		{"flipped byte in first part", func(p map[string][]byte) { p["img.part.00"][100] ^= 0x40 }, ErrPartDigest, "part 0"},
		{"flipped byte in gzip header", func(p map[string][]byte) { p["img.part.00"][3] ^= 0x40 }, ErrPartDigest, "part 0"},
		{"flipped byte in middle part", func(p map[string][]byte) { p["img.part.01"][5000] ^= 1 }, ErrPartDigest, "part 1"},
		{"flipped byte in last block", func(p map[string][]byte) { b := p["img.part.03"]; b[len(b)-1] ^= 1 }, ErrPartDigest, "part 3"},
		{"truncated part", func(p map[string][]byte) { p["img.part.01"] = p["img.part.01"][:1000] }, ErrPartDigest, "part 1"},
		{"truncated last part", func(p map[string][]byte) { b := p["img.part.03"]; p["img.part.03"] = b[:len(b)-16] }, ErrPartDigest, "part 3"},
		{"extended last part", func(p map[string][]byte) { p["img.part.03"] = append(p["img.part.03"], make([]byte, 16)...) }, ErrSize, ""},
		{"swapped parts", func(p map[string][]byte) { p["img.part.01"], p["img.part.02"] = p["img.part.02"], p["img.part.01"] }, ErrPartDigest, "part 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			damaged := map[string][]byte{}
			for k, v := range parts {
				damaged[k] = bytes.Clone(v)
			}
			tt.damage(damaged)
			out, err := unbundleAll(t, c, m, memParts(damaged))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("%q does not say %q", err, tt.detail)
			}
			_ = out
		})
	}
	// Other errors of openPart are the caller's, not a failed check.
	boom := errors.New("disk on fire")
	_, err = unbundleAll(t, c, m, func(string) (io.ReadCloser, error) { return nil, boom })
	if !errors.Is(err, boom) || errors.Is(err, ErrPartMissing) {
		t.Errorf("open error: %v", err)
	}
	// And so are the writer's.
	key, iv, _ := m.DecryptKey(c.cloudKey)
	_, _, err = Unbundle(context.Background(), m, key, iv, memParts(parts), failWriter{boom})
	if !errors.Is(err, boom) || errors.Is(err, ErrArchive) {
		t.Errorf("write error: %v", err)
	}
	// A cancelled context stops it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Unbundle(ctx, m, key, iv, memParts(parts), io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// crafted builds a bundle by hand around a given tar stream, so each later
// stage can be broken on purpose. Hooks may change the gzip stream, the
// padded plaintext, the ciphertext and the manifest.
type crafted struct {
	gz     func([]byte) []byte
	padded func([]byte) []byte
	cipher func([]byte) []byte
	mani   func(*Manifest)
}

func craft(t testing.TB, c *creds, tarStream []byte, imageSize int64, h crafted) (*Manifest, map[string][]byte, []byte, []byte) {
	t.Helper()
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf)
	zw.Write(tarStream)
	zw.Close()
	plain := gzBuf.Bytes()
	if h.gz != nil {
		plain = h.gz(plain)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	if h.padded != nil {
		plain = h.padded(plain)
	}
	key, iv := make([]byte, 16), make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	block, _ := aes.NewCipher(key)
	ct := make([]byte, len(plain)-len(plain)%aes.BlockSize)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain[:len(ct)])
	ct = append(ct, plain[len(ct):]...) // a ragged tail stays as is
	if h.cipher != nil {
		ct = h.cipher(ct)
	}
	sum := sha1.Sum(tarStream)
	partSum := sha1.Sum(ct)
	m := &Manifest{
		BundlerName: "craft", Arch: "x86_64", Name: "img", User: c.userID, Type: TypeMachine,
		Digest: hex.EncodeToString(sum[:]), Size: imageSize, BundledSize: int64(len(ct)),
		EC2EncryptedKey: "00", EC2EncryptedIV: "00", UserEncryptedKey: "00", UserEncryptedIV: "00",
		Parts: []Part{{Index: 0, Filename: "img.part.00", Digest: hex.EncodeToString(partSum[:])}},
	}
	if h.mani != nil {
		h.mani(m)
	}
	if err := m.Marshal(c.userKey); err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseManifest(m.Raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, m.Raw)
	}
	return parsed, map[string][]byte{"img.part.00": ct}, key, iv
}

type tarEntry struct {
	name string
	typ  byte
	data []byte
}

func tarOf(entries ...tarEntry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Size: int64(len(e.data)), Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatGNU})
		tw.Write(e.data)
	}
	tw.Close()
	for b.Len()%tarRecordSize != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

func TestUnbundleChecks(t *testing.T) {
	c := testCreds(t)
	image := bytes.Repeat([]byte("an image "), 1000)
	good := tarOf(tarEntry{"img", tar.TypeReg, image})
	size := int64(len(image))
	for _, tt := range []struct {
		name string
		tar  []byte
		size int64
		h    crafted
		want error
	}{
		{name: "good", tar: good, size: size},
		{name: "bad padding value", tar: good, size: size, want: ErrPadding,
			h: crafted{padded: func(b []byte) []byte { b[len(b)-1] = 17; return b }}},
		{name: "padding bytes differ", tar: good, size: size, want: ErrPadding,
			h: crafted{padded: func(b []byte) []byte {
				n := int(b[len(b)-1])
				if n < 2 {
					b = append(b, bytes.Repeat([]byte{16}, 16)...)
				}
				b[len(b)-2] ^= 0xff
				return b
			}}},
		{name: "zero padding", tar: good, size: size, want: ErrPadding,
			h: crafted{padded: func(b []byte) []byte { b[len(b)-1] = 0; return b }}},
		{name: "ragged ciphertext", tar: good, size: size, want: ErrPadding,
			h: crafted{cipher: func(b []byte) []byte { return b[:len(b)-3] }}},
		{name: "no ciphertext", tar: good, size: size, want: ErrPadding,
			h: crafted{cipher: func([]byte) []byte { return nil }}},
		{name: "not gzip", tar: good, size: size, want: ErrCompression,
			h: crafted{gz: func(b []byte) []byte { return []byte("plain text, not gzip, long enough to fill a header") }}},
		{name: "gzip checksum", tar: good, size: size, want: ErrCompression,
			h: crafted{gz: func(b []byte) []byte { b[len(b)-6] ^= 1; return b }}},
		{name: "gzip truncated", tar: good, size: size, want: ErrCompression,
			h: crafted{gz: func(b []byte) []byte { return b[:len(b)-30] }}},
		{name: "garbage after gzip", tar: good, size: size, want: ErrCompression,
			h: crafted{gz: func(b []byte) []byte { return append(b, "junk"...) }}},
		{name: "not a tar", tar: bytes.Repeat([]byte{'x'}, 2048), size: size, want: ErrArchive},
		{name: "empty tar", tar: tarOf(), size: size, want: ErrArchive},
		{name: "two entries", tar: tarOf(tarEntry{"img", tar.TypeReg, image}, tarEntry{"more", tar.TypeReg, []byte("x")}), size: size, want: ErrArchive},
		{name: "a directory", tar: tarOf(tarEntry{"img/", tar.TypeDir, nil}), size: 0, want: ErrArchive},
		{name: "a symlink", tar: tarOf(tarEntry{"img", tar.TypeSymlink, nil}), size: 0, want: ErrArchive},
		{name: "tar truncated", tar: good[:1500], size: size, want: ErrArchive},
		{name: "image size differs", tar: good, size: size + 1, want: ErrSize},
		{name: "trailer too long", tar: append(bytes.Clone(good), make([]byte, maxTarTrailer+512)...), size: size, want: ErrArchive},
		{name: "image digest differs", tar: good, size: size, want: ErrImageDigest,
			h: crafted{mani: func(m *Manifest) { m.Digest = strings.Repeat("ab", 20) }}},
		{name: "bundled size larger", tar: good, size: size, want: ErrSize,
			h: crafted{mani: func(m *Manifest) { m.BundledSize++ }}},
		{name: "bundled size smaller", tar: good, size: size, want: ErrSize,
			h: crafted{mani: func(m *Manifest) { m.BundledSize -= 16 }}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, parts, key, iv := craft(t, c, tt.tar, tt.size, tt.h)
			var out bytes.Buffer
			digest, n, err := Unbundle(context.Background(), m, key, iv, memParts(parts), &out)
			if tt.want == nil {
				if err != nil || !bytes.Equal(out.Bytes(), image) || n != size || digest != m.Digest {
					t.Fatalf("err %v, %d bytes", err, n)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrPartMissing, ErrPartDigest, ErrPadding, ErrCompression, ErrArchive, ErrImageDigest, ErrSize} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("%v is also %v", err, other)
				}
			}
		})
	}
}

func TestParseManifestRefuses(t *testing.T) {
	c := testCreds(t)
	m, _, _, _ := craft(t, c, tarOf(tarEntry{"img", tar.TypeReg, []byte("x")}), 1, crafted{})
	good := string(m.Raw)
	if _, err := ParseManifest([]byte(good)); err != nil {
		t.Fatal(err)
	}
	re := func(pattern, repl string) string { return regexp.MustCompile(pattern).ReplaceAllString(good, repl) }
	body, ok := strings.CutPrefix(good, Declaration)
	if !ok {
		t.Fatalf("no declaration: %s", good)
	}
	for name, doc := range map[string]string{
		"empty":                    "",
		"not xml":                  "hello",
		"wrong root":               strings.ReplaceAll(good, "manifest>", "manifesto>"),
		"two roots":                good + "<manifest/>",
		"text after root":          good + "trailing",
		"unclosed":                 strings.TrimSuffix(good, "</manifest>"),
		"no image":                 re(`<image>.*</image>`, ""),
		"no machine_configuration": re(`<machine_configuration>.*</machine_configuration>`, ""),
		"two signatures":           strings.Replace(good, "</manifest>", "<signature>00</signature></manifest>", 1),
		"count mismatch":           strings.Replace(good, `count="1"`, `count="2"`, 1),
		"count zero":               re(`<parts count="1">.*</parts>`, `<parts count="0"></parts>`),
		"bad index":                strings.Replace(good, `index="0"`, `index="1"`, 1),
		"negative index":           strings.Replace(good, `index="0"`, `index="-1"`, 1),
		"duplicate index":          strings.Replace(good, "</parts>", `<part index="0"><filename>b</filename><digest algorithm="SHA1">`+strings.Repeat("0", 40)+`</digest></part></parts>`, 1),
		"path part name":           strings.Replace(good, "<filename>img.part.00", "<filename>../img.part.00", 1),
		"part digest not hex":      re(`(<filename>img.part.00</filename><digest algorithm="SHA1">)[0-9a-f]{40}`, "${1}"+strings.Repeat("zz", 20)),
		"part digest short":        re(`(<filename>img.part.00</filename><digest algorithm="SHA1">)[0-9a-f]{40}`, "${1}abcd"),
		"image digest md5":         re(`<digest algorithm="SHA1">([0-9a-f]{40})</digest><size>`, `<digest algorithm="MD5">$1</digest><size>`),
		"size not a number":        re(`<size>\d+</size>`, "<size>big</size>"),
		"size negative":            re(`<size>\d+</size>`, "<size>-1</size>"),
		"no ec2 key":               re(`<ec2_encrypted_key algorithm="AES-128-CBC">[0-9a-f]*</ec2_encrypted_key>`, ""),
		"other cipher":             strings.Replace(good, `<ec2_encrypted_key algorithm="AES-128-CBC">`, `<ec2_encrypted_key algorithm="DES">`, 1),
		"type unknown":             strings.Replace(good, "<type>machine</type>", "<type>toaster</type>", 1),
		"kernel and ramdisk":       strings.Replace(good, "<architecture>", "<kernel_id>true</kernel_id><ramdisk_id>true</ramdisk_id><architecture>", 1),
		"type contradicts":         strings.Replace(strings.Replace(good, "<type>machine</type>", "<type>kernel</type>", 1), "<architecture>", "<ramdisk_id>true</ramdisk_id><architecture>", 1),
		"no name":                  re(`<name>img</name>`, ""),
		"undefined entity":         strings.Replace(good, "<name>img", "<name>&bogus;img", 1),
		"not utf-8":                strings.Replace(good, "<name>img", "<name>\xff", 1),
		"utf-16 declared":          `<?xml version="1.0" encoding="UTF-16"?>` + "\n" + body,
		"ebcdic declared":          `<?xml version='1.0' encoding='EBCDIC-US'?>` + body,
		"ascii declared, utf-8":    Declaration + strings.Replace(body, "<name>img", "<name>é", 1),
		"latin-1 declared, utf-8":  `<?xml version='1.0' encoding='ISO-8859-1'?>` + strings.Replace(body, "<name>img", "<name>é", 1),
		"too big":                  good + strings.Repeat(" ", MaxManifestSize),
	} {
		if _, err := ParseManifest([]byte(doc)); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: got %v, want ErrManifest", name, err)
		}
	}
	// What other bundlers add is read past, and the declarations they write
	// (euca2ools: lxml's, ASCII; others UTF-8 or us-ascii) are read.
	for name, doc := range map[string]string{
		"no declaration":           body,
		"declaration and comments": `<?xml version="1.0"?>` + "\n<!-- by hand -->" + body + "\n",
		"us-ascii":                 `<?xml version='1.0' encoding='us-ascii'?>` + "\n" + body,
		"utf-8 with accents":       `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + strings.Replace(body, "<bundler><name>", "<bundler><name>é", 1),
		"utf8":                     `<?xml version="1.0" encoding="utf8"?>` + body,
		"latin-1, all ascii":       `<?xml version='1.0' encoding='ISO-8859-1'?>` + "\n" + body,
		"standalone":               `<?xml version="1.0" encoding="ASCII" standalone="yes"?>` + body,
		"extra elements":           strings.Replace(good, "</manifest>", "<ancestry><ancestor_ami_id>ami-1</ancestor_ami_id></ancestry></manifest>", 1),
		"pretty printed":           strings.ReplaceAll(good, "><", ">\n  <"),
	} {
		if _, err := ParseManifest([]byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCreateRefuses(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, _ := randomImage(t, dir, "i", 10, 7)
	for name, mod := range map[string]func(*Options){
		"kernel image with ramdisk": func(o *Options) { o.ImageType = TypeKernel; o.RamdiskID = "eri-1" },
		"kernel image with kernel":  func(o *Options) { o.ImageType = TypeKernel; o.KernelID = "eki-1" },
		"ramdisk with kernel":       func(o *Options) { o.ImageType = TypeRamdisk; o.KernelID = "eki-1" },
		"machine marked kernel":     func(o *Options) { o.KernelID = "true" },
		"unknown type":              func(o *Options) { o.ImageType = "toaster" },
		"prefix is a path":          func(o *Options) { o.Prefix = "a/b" },
		"control character":         func(o *Options) { o.Arch = "x86\n64" },
		"no account":                func(o *Options) { o.UserID = "" },
		"no cloud cert":             func(o *Options) { o.CloudCert = nil },
		"key of another user":       func(o *Options) { o.UserKey = c.otherKey },
		"negative part size":        func(o *Options) { o.PartSize = -1 },
	} {
		o := c.options("p")
		mod(&o)
		out := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if _, err := Create(context.Background(), img, out, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if entries, _ := os.ReadDir(out); len(entries) > 0 {
			t.Errorf("%s: left %d files", name, len(entries))
		}
	}
	// A failure half way leaves no parts behind.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "cancelled")
	if _, err := Create(ctx, img, out, c.options("p")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("cancelled: left %v", entries)
	}
	// A stream shorter than announced is refused.
	if _, err := CreateFrom(context.Background(), strings.NewReader("short"), 100, out, c.options("p")); err == nil {
		t.Error("short stream accepted")
	}
	if _, err := CreateFrom(context.Background(), strings.NewReader("longer than ten"), 10, out, c.options("p")); err == nil {
		t.Error("long stream accepted")
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("short stream: left %v", entries)
	}
}

// The tar stream is what Python 2's tarfile writes for euca2ools'
// TarInfo(prefix): a GNU header with only the name and size set, then the
// record padding. Its SHA-1 is the manifest's digest.
func TestTarStream(t *testing.T) {
	c := testCreds(t)
	dir := t.TempDir()
	img, data := randomImage(t, dir, "i", 1000, 8)
	path, err := Create(context.Background(), img, dir, c.options("disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	m, parts := readBundle(t, path)
	key, iv, _ := m.DecryptKey(c.cloudKey)
	block, _ := aes.NewCipher(key)
	ct := parts["disk.img.part.00"]
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	plain = plain[:len(plain)-int(plain[len(plain)-1])]
	zr, err := gzip.NewReader(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	stream, _ := io.ReadAll(zr)
	if len(stream) != tarRecordSize {
		t.Fatalf("tar stream %d bytes, want one record", len(stream))
	}
	if sum := sha1.Sum(stream); hex.EncodeToString(sum[:]) != m.Digest {
		t.Fatal("digest is not the tar stream's")
	}
	hdr := stream[:512]
	field := func(off, n int) string { return strings.TrimRight(string(hdr[off:off+n]), "\x00") }
	for _, f := range []struct {
		name   string
		off, n int
		want   string
	}{
		{"name", 0, 100, "disk.img"}, {"mode", 100, 8, "0000644"}, {"uid", 108, 8, "0000000"}, {"gid", 116, 8, "0000000"},
		{"size", 124, 12, "00000001750"}, {"mtime", 136, 12, "00000000000"}, {"type", 156, 1, "0"},
		{"magic", 257, 8, "ustar  "}, {"uname", 265, 32, ""}, {"gname", 297, 32, ""},
		{"devmajor", 329, 8, "0000000"}, {"devminor", 337, 8, "0000000"},
	} {
		if got := field(f.off, f.n); got != f.want {
			t.Errorf("header %s = %q, want %q", f.name, got, f.want)
		}
	}
	if !bytes.Equal(stream[512:512+len(data)], data) || slices.ContainsFunc(stream[512+len(data):], func(b byte) bool { return b != 0 }) {
		t.Error("data or padding wrong")
	}
}

// euca2ools' part writer stops at the first short part, so a bundle whose
// ciphertext is an exact multiple of the part size ends with an empty part.
func TestEmptyLastPart(t *testing.T) {
	c := testCreds(t)
	image := []byte("an image")
	empty := sha1.Sum(nil)
	m, parts, key, iv := craft(t, c, tarOf(tarEntry{"img", tar.TypeReg, image}), int64(len(image)), crafted{
		mani: func(m *Manifest) {
			m.Parts = append(m.Parts, Part{Index: 1, Filename: "img.part.01", Digest: hex.EncodeToString(empty[:])})
		},
	})
	parts["img.part.01"] = nil
	var out bytes.Buffer
	if _, _, err := Unbundle(context.Background(), m, key, iv, memParts(parts), &out); err != nil || !bytes.Equal(out.Bytes(), image) {
		t.Fatalf("%v %q", err, out.Bytes())
	}
	delete(parts, "img.part.01")
	if _, _, err := Unbundle(context.Background(), m, key, iv, memParts(parts), io.Discard); !errors.Is(err, ErrPartMissing) {
		t.Fatalf("missing empty part: %v", err)
	}
}

// Throughput of the two pipelines on a compressible and an incompressible
// 64 MiB image (go test -bench . -benchtime 3x ./walrus/bundle).
func BenchmarkCreate(b *testing.B) {
	c := testCreds(b)
	for _, kind := range []string{"zeros", "random"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			const size = 64 << 20
			var img string
			if kind == "zeros" {
				img = filepath.Join(dir, "img")
				os.WriteFile(img, make([]byte, size), 0o644)
			} else {
				img, _ = randomImage(b, dir, "img", size, 1)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := Create(context.Background(), img, filepath.Join(dir, fmt.Sprint(i)), c.options("img")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnbundle(b *testing.B) {
	c := testCreds(b)
	for _, kind := range []string{"zeros", "random"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			const size = 64 << 20
			var img string
			if kind == "zeros" {
				img = filepath.Join(dir, "img")
				os.WriteFile(img, make([]byte, size), 0o644)
			} else {
				img, _ = randomImage(b, dir, "img", size, 1)
			}
			path, err := Create(context.Background(), img, filepath.Join(dir, "b"), c.options("img"))
			if err != nil {
				b.Fatal(err)
			}
			m, _ := readBundle(b, path)
			key, iv, _ := m.DecryptKey(c.cloudKey)
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := Unbundle(context.Background(), m, key, iv, dirParts(filepath.Join(dir, "b")), io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
