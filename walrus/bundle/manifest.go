package bundle

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Image types, as <image><type> names them.
const (
	TypeMachine = "machine"
	TypeKernel  = "kernel"
	TypeRamdisk = "ramdisk"
)

const (
	// ManifestVersion is the manifest format version every bundler writes.
	ManifestVersion = "2007-10-10"
	// DigestAlgorithm and EncAlgorithm are the only algorithms of the format.
	DigestAlgorithm = "SHA1"
	EncAlgorithm    = "AES-128-CBC"

	// MaxManifestSize bounds what ParseManifest reads: a 10 GiB image in
	// 10 MiB parts makes a manifest of about 150 KB.
	MaxManifestSize = 8 << 20
	// MaxParts bounds the number of parts a manifest may name.
	MaxParts = 100000
)

// Mapping is one <block_device_mapping><mapping>: a virtual device name
// (ami, root, ephemeral0, swap) and the guest device it appears as.
type Mapping struct {
	Virtual, Device string
}

// Part is one <parts><part>.
type Part struct {
	Index    int
	Filename string
	Digest   string // lower-case hex SHA-1 of the part file
}

// Manifest is a parsed bundle manifest. Raw is the document as read; the
// fields are decoded from the signed elements of Raw.
type Manifest struct {
	Version                                     string
	BundlerName, BundlerVersion, BundlerRelease string

	// <machine_configuration>
	Arch                string
	KernelID, RamdiskID string // "true" marks a kernel or ramdisk image
	BlockDeviceMappings []Mapping
	ProductCodes        []string

	// <image>
	Name             string
	User             string // the owner's account id
	Type             string // machine, kernel, ramdisk or "" (see Kind)
	Digest           string // lower-case hex SHA-1 of the tar stream
	Size             int64  // of the image file
	BundledSize      int64  // sum of the part sizes
	EC2EncryptedKey  string // hex
	EC2EncryptedIV   string
	UserEncryptedKey string
	UserEncryptedIV  string
	Parts            []Part

	Signature string // hex

	Raw    []byte
	signed []byte // <machine_configuration>…</machine_configuration><image>…</image> as in Raw
}

// Kind is the image type as Eucalyptus decides it: a kernel_id or
// ramdisk_id of "true" (or "yes") marks a kernel or ramdisk image whatever
// <type> says; otherwise <type>, and machine when there is none.
func (m *Manifest) Kind() string {
	switch {
	case isTrue(m.KernelID) || m.Type == TypeKernel:
		return TypeKernel
	case isTrue(m.RamdiskID) || m.Type == TypeRamdisk:
		return TypeRamdisk
	}
	return TypeMachine
}

// ImageKernelID and ImageRamdiskID are the kernel and ramdisk a machine
// image names, or "" (never the "true" markers).
func (m *Manifest) ImageKernelID() string {
	if m.Kind() != TypeMachine {
		return ""
	}
	return m.KernelID
}

// ImageRamdiskID: see ImageKernelID.
func (m *Manifest) ImageRamdiskID() string {
	if m.Kind() != TypeMachine {
		return ""
	}
	return m.RamdiskID
}

func isTrue(s string) bool { return s == "true" || s == "yes" }

// SignedText is the text the signature covers: the <machine_configuration>
// element then the <image> element, byte for byte as they stand in Raw.
func (m *Manifest) SignedText() []byte { return m.signed }

// The XML shapes of the two signed elements. Values are trimmed after
// decoding, as euca2ools and Eucalyptus trim them.
type machineConfigXML struct {
	Architecture string `xml:"architecture"`
	KernelID     string `xml:"kernel_id"`
	RamdiskID    string `xml:"ramdisk_id"`
	Mappings     []struct {
		Virtual string `xml:"virtual"`
		Device  string `xml:"device"`
	} `xml:"block_device_mapping>mapping"`
	ProductCodes []string `xml:"product_codes>product_code"`
}

type algValue struct {
	Algorithm string `xml:"algorithm,attr"`
	Value     string `xml:",chardata"`
}

type imageXML struct {
	Name             string   `xml:"name"`
	User             string   `xml:"user"`
	Type             string   `xml:"type"`
	Digest           algValue `xml:"digest"`
	Size             string   `xml:"size"`
	BundledSize      string   `xml:"bundled_size"`
	EC2EncryptedKey  algValue `xml:"ec2_encrypted_key"`
	UserEncryptedKey algValue `xml:"user_encrypted_key"`
	EC2EncryptedIV   string   `xml:"ec2_encrypted_iv"`
	UserEncryptedIV  string   `xml:"user_encrypted_iv"`
	Parts            struct {
		Count string `xml:"count,attr"`
		Part  []struct {
			Index    string   `xml:"index,attr"`
			Filename string   `xml:"filename"`
			Digest   algValue `xml:"digest"`
		} `xml:"part"`
	} `xml:"parts"`
}

type bundlerXML struct {
	Name    string `xml:"name"`
	Version string `xml:"version"`
	Release string `xml:"release"`
}

func manifestErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrManifest, fmt.Sprintf(format, a...))
}

// ParseManifest reads a manifest. It refuses anything ambiguous: a root
// other than <manifest>, a second <machine_configuration>, <image> or
// <signature>, part indices that are not 0..count-1 once each, a part file
// name that is a path, digests and keys that are not hex, sizes that are
// not numbers. It does not verify the signature (VerifySignature does).
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, manifestErr("larger than %d bytes", MaxManifestSize)
	}
	if !utf8.Valid(b) {
		return nil, manifestErr("not UTF-8")
	}
	m := &Manifest{Raw: bytes.Clone(b)}
	d := xml.NewDecoder(bytes.NewReader(m.Raw))
	d.CharsetReader = charsetReader
	var mcSpan, imgSpan []byte
	var sawSig, sawRoot, rootDone bool
	depth := 0
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, manifestErr("%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if sawRoot {
					return nil, manifestErr("more than one root element")
				}
				if t.Name.Local != "manifest" {
					return nil, manifestErr("root element is <%s>, not <manifest>", t.Name.Local)
				}
				sawRoot = true
				depth = 1
				continue
			}
			// depth 1: a child of <manifest>
			switch t.Name.Local {
			case "machine_configuration", "image":
				if err := d.Skip(); err != nil {
					return nil, manifestErr("%v", err)
				}
				span := m.Raw[start:d.InputOffset()]
				p := &mcSpan
				if t.Name.Local == "image" {
					p = &imgSpan
				}
				if *p != nil {
					return nil, manifestErr("more than one <%s>", t.Name.Local)
				}
				*p = span
			case "version":
				if err := d.DecodeElement(&m.Version, &t); err != nil {
					return nil, manifestErr("<version>: %v", err)
				}
				m.Version = strings.TrimSpace(m.Version)
			case "bundler":
				var bx bundlerXML
				if err := d.DecodeElement(&bx, &t); err != nil {
					return nil, manifestErr("<bundler>: %v", err)
				}
				m.BundlerName = strings.TrimSpace(bx.Name)
				m.BundlerVersion = strings.TrimSpace(bx.Version)
				m.BundlerRelease = strings.TrimSpace(bx.Release)
			case "signature":
				if sawSig {
					return nil, manifestErr("more than one <signature>")
				}
				sawSig = true
				if err := d.DecodeElement(&m.Signature, &t); err != nil {
					return nil, manifestErr("<signature>: %v", err)
				}
				m.Signature = strings.ToLower(strings.TrimSpace(m.Signature))
			default:
				// Elements other bundlers add (AWS's <ancestry>, comments of
				// fingerprints) are not ours to refuse.
				if err := d.Skip(); err != nil {
					return nil, manifestErr("%v", err)
				}
			}
		case xml.EndElement:
			// Only </manifest> reaches here: children are consumed whole.
			depth = 0
			rootDone = true
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, manifestErr("text outside <manifest>")
			}
		}
	}
	if !sawRoot || !rootDone {
		return nil, manifestErr("no <manifest> element")
	}
	if mcSpan == nil {
		return nil, manifestErr("no <machine_configuration>")
	}
	if imgSpan == nil {
		return nil, manifestErr("no <image>")
	}
	m.signed = append(append([]byte{}, mcSpan...), imgSpan...)
	if err := m.decodeMachineConfig(mcSpan); err != nil {
		return nil, err
	}
	if err := m.decodeImage(imgSpan); err != nil {
		return nil, err
	}
	return m, nil
}

// charsetReader reads the encodings bundlers declare. Every one of them
// writes ASCII: euca2ools serialises with lxml's tostring(...,
// xml_declaration=True), which declares encoding='ASCII' and writes
// anything beyond ASCII as character references; others declare UTF-8 or
// us-ascii. A reader of ASCII (or of Latin-1 holding only ASCII, the same
// bytes) passes the bytes through unchanged, so that the offsets of the
// signed elements stay those of Raw. Any other encoding is refused: the
// signed text is compared byte for byte and must not be transcoded.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8":
		return r, nil // ParseManifest has checked the bytes are UTF-8
	case "ascii", "us-ascii", "ansi_x3.4-1968", "iso646-us", "csascii",
		"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1":
		return &asciiReader{r: r, label: label}, nil
	}
	return nil, fmt.Errorf("encoding %q is not supported (a manifest is ASCII or UTF-8)", label)
}

// asciiReader fails at the first byte beyond ASCII.
type asciiReader struct {
	r     io.Reader
	label string
}

func (a *asciiReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	for i, c := range p[:n] {
		if c >= 0x80 {
			return i, fmt.Errorf("byte 0x%02x is not ASCII (the manifest declares %q)", c, a.label)
		}
	}
	return n, err
}

func (m *Manifest) decodeMachineConfig(span []byte) error {
	var mc machineConfigXML
	if err := xml.Unmarshal(span, &mc); err != nil {
		return manifestErr("<machine_configuration>: %v", err)
	}
	m.Arch = strings.TrimSpace(mc.Architecture)
	m.KernelID = strings.TrimSpace(mc.KernelID)
	m.RamdiskID = strings.TrimSpace(mc.RamdiskID)
	for _, bd := range mc.Mappings {
		m.BlockDeviceMappings = append(m.BlockDeviceMappings,
			Mapping{Virtual: strings.TrimSpace(bd.Virtual), Device: strings.TrimSpace(bd.Device)})
	}
	for _, pc := range mc.ProductCodes {
		m.ProductCodes = append(m.ProductCodes, strings.TrimSpace(pc))
	}
	if isTrue(m.KernelID) && isTrue(m.RamdiskID) {
		return manifestErr("both kernel_id and ramdisk_id mark the image")
	}
	return nil
}

func (m *Manifest) decodeImage(span []byte) error {
	var im imageXML
	if err := xml.Unmarshal(span, &im); err != nil {
		return manifestErr("<image>: %v", err)
	}
	m.Name = strings.TrimSpace(im.Name)
	m.User = strings.TrimSpace(im.User)
	m.Type = strings.TrimSpace(im.Type)
	switch m.Type {
	case "", TypeMachine, TypeKernel, TypeRamdisk:
	default:
		return manifestErr("image type %q is not machine, kernel or ramdisk", m.Type)
	}
	if (m.Type == TypeKernel && isTrue(m.RamdiskID)) || (m.Type == TypeRamdisk && isTrue(m.KernelID)) {
		return manifestErr("image type %s contradicts machine_configuration", m.Type)
	}
	if m.Name == "" {
		return manifestErr("no image name")
	}
	if err := checkAlg("digest", im.Digest.Algorithm, DigestAlgorithm); err != nil {
		return err
	}
	var err error
	if m.Digest, err = hexField("image digest", im.Digest.Value, sha1.Size); err != nil {
		return err
	}
	if m.Size, err = sizeField("size", im.Size); err != nil {
		return err
	}
	if m.BundledSize, err = sizeField("bundled_size", im.BundledSize); err != nil {
		return err
	}
	if err := checkAlg("ec2_encrypted_key", im.EC2EncryptedKey.Algorithm, EncAlgorithm); err != nil {
		return err
	}
	if err := checkAlg("user_encrypted_key", im.UserEncryptedKey.Algorithm, EncAlgorithm); err != nil {
		return err
	}
	if m.EC2EncryptedKey, err = hexField("ec2_encrypted_key", im.EC2EncryptedKey.Value, -1); err != nil {
		return err
	}
	if m.EC2EncryptedIV, err = hexField("ec2_encrypted_iv", im.EC2EncryptedIV, -1); err != nil {
		return err
	}
	// The user's copies are for the user's own tools; a manifest without
	// them still registers.
	if s := strings.TrimSpace(im.UserEncryptedKey.Value); s != "" {
		if m.UserEncryptedKey, err = hexField("user_encrypted_key", s, -1); err != nil {
			return err
		}
	}
	if s := strings.TrimSpace(im.UserEncryptedIV); s != "" {
		if m.UserEncryptedIV, err = hexField("user_encrypted_iv", s, -1); err != nil {
			return err
		}
	}
	count, err := strconv.Atoi(strings.TrimSpace(im.Parts.Count))
	if err != nil || count < 1 || count > MaxParts {
		return manifestErr("parts count %q is not a number from 1 to %d", im.Parts.Count, MaxParts)
	}
	if len(im.Parts.Part) != count {
		return manifestErr("parts count says %d, %d parts listed", count, len(im.Parts.Part))
	}
	m.Parts = make([]Part, count)
	seen := make([]bool, count)
	names := make(map[string]bool, count)
	for _, p := range im.Parts.Part {
		i, err := strconv.Atoi(strings.TrimSpace(p.Index))
		if err != nil || i < 0 || i >= count {
			return manifestErr("part index %q is not a number from 0 to %d", p.Index, count-1)
		}
		if seen[i] {
			return manifestErr("part index %d listed twice", i)
		}
		seen[i] = true
		name := strings.TrimSpace(p.Filename)
		if err := checkPartName(name); err != nil {
			return err
		}
		if names[name] {
			return manifestErr("part file %q listed twice", name)
		}
		names[name] = true
		if err := checkAlg("part digest", p.Digest.Algorithm, DigestAlgorithm); err != nil {
			return err
		}
		digest, err := hexField(fmt.Sprintf("part %d digest", i), p.Digest.Value, sha1.Size)
		if err != nil {
			return err
		}
		m.Parts[i] = Part{Index: i, Filename: name, Digest: digest}
	}
	return nil
}

// checkPartName keeps part names to plain file names: they become object
// keys beside the manifest and file names in a directory.
func checkPartName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return manifestErr("part file name %q", name)
	case len(name) > 1024:
		return manifestErr("part file name longer than 1024 bytes")
	case strings.ContainsAny(name, "/\\"):
		return manifestErr("part file name %q is a path", name)
	case strings.ContainsFunc(name, isControl):
		return manifestErr("part file name %q has control characters", name)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func checkAlg(field, got, want string) error {
	got = strings.TrimSpace(got)
	if got != "" && !strings.EqualFold(got, want) {
		return manifestErr("%s algorithm %q, want %s", field, got, want)
	}
	return nil
}

// hexField checks a hex value, of n bytes when n >= 0, and returns it in
// lower case.
func hexField(field, s string, n int) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	b, err := hex.DecodeString(s)
	switch {
	case err != nil:
		return "", manifestErr("%s is not hex", field)
	case len(b) == 0:
		return "", manifestErr("no %s", field)
	case n >= 0 && len(b) != n:
		return "", manifestErr("%s is %d bytes, want %d", field, len(b), n)
	}
	return s, nil
}

func sizeField(field, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, manifestErr("%s %q is not a size", field, s)
	}
	return n, nil
}

// VerifySignature checks the manifest's signature against each certificate
// in turn (a user may have several; Eucalyptus accepts any of the owner's).
// It returns nil for the first that verifies, else an error wrapping
// ErrSignature.
func (m *Manifest) VerifySignature(certs []*x509.Certificate) error {
	if m.Signature == "" {
		return fmt.Errorf("%w: the manifest is not signed", ErrSignature)
	}
	sig, err := hex.DecodeString(m.Signature)
	if err != nil {
		return fmt.Errorf("%w: the signature is not hex", ErrSignature)
	}
	sum := sha1.Sum(m.signed)
	tried := 0
	for _, c := range certs {
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			continue
		}
		tried++
		if rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], sig) == nil {
			return nil
		}
	}
	if tried == 0 {
		return fmt.Errorf("%w: no RSA certificate to verify it with", ErrSignature)
	}
	return fmt.Errorf("%w with any of the owner's %d certificate(s)", ErrSignature, tried)
}

// DecryptKey recovers the AES key and IV with the cloud's private key, from
// ec2_encrypted_key and ec2_encrypted_iv.
//
// Whether it fails tells something about the ciphertext (PKCS#1 v1.5 is a
// padding oracle): callers facing the network should verify the signature
// first and not let one account retry without limit.
func (m *Manifest) DecryptKey(cloudKey *rsa.PrivateKey) (key, iv []byte, err error) {
	return decryptPair(cloudKey, "ec2", m.EC2EncryptedKey, m.EC2EncryptedIV)
}

// DecryptUserKey recovers the AES key and IV with the user's private key,
// from user_encrypted_key and user_encrypted_iv, as euca-unbundle does.
func (m *Manifest) DecryptUserKey(userKey *rsa.PrivateKey) (key, iv []byte, err error) {
	if m.UserEncryptedKey == "" || m.UserEncryptedIV == "" {
		return nil, nil, fmt.Errorf("%w: the manifest has no user_encrypted_key", ErrKeyDecrypt)
	}
	return decryptPair(userKey, "user", m.UserEncryptedKey, m.UserEncryptedIV)
}

func decryptPair(priv *rsa.PrivateKey, who, hexKey, hexIV string) (key, iv []byte, err error) {
	if priv == nil {
		return nil, nil, fmt.Errorf("%w: no private key", ErrKeyDecrypt)
	}
	if key, err = decryptHex(priv, hexKey); err != nil {
		return nil, nil, fmt.Errorf("%w: %s_encrypted_key: %v", ErrKeyDecrypt, who, err)
	}
	if iv, err = decryptHex(priv, hexIV); err != nil {
		return nil, nil, fmt.Errorf("%w: %s_encrypted_iv: %v", ErrKeyDecrypt, who, err)
	}
	return key, iv, nil
}

// decryptHex undoes what euca2ools and ec2-bundle-image do to the key: RSA
// PKCS#1 v1.5 over the key's 32 hex characters. Sixteen raw bytes are
// accepted too, for bundlers that encrypt the key itself.
func decryptHex(priv *rsa.PrivateKey, hexCT string) ([]byte, error) {
	ct, err := hex.DecodeString(hexCT)
	if err != nil {
		return nil, errors.New("not hex")
	}
	//lint:ignore SA1019 the bundle format is PKCS#1 v1.5, fixed by every bundler since 2007
	pt, err := rsa.DecryptPKCS1v15(nil, priv, ct)
	if err != nil {
		return nil, errors.New("RSA decryption failed (encrypted to another certificate?)")
	}
	switch len(pt) {
	case 2 * aesKeySize:
		k, err := hex.DecodeString(string(pt))
		if err != nil {
			return nil, errors.New("the decrypted key is not hex")
		}
		return k, nil
	case aesKeySize:
		return pt, nil
	}
	return nil, fmt.Errorf("the decrypted key is %d bytes, want %d hex characters", len(pt), 2*aesKeySize)
}

const aesKeySize = 16
