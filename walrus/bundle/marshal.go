package bundle

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Declaration is the first line of every manifest euca2ools writes: what
// lxml's tostring(..., xml_declaration=True) puts before the root when no
// encoding is given (ASCII, non-ASCII characters as references).
const Declaration = "<?xml version='1.0' encoding='ASCII'?>\n"

// Marshal writes the manifest's fields as euca2ools 3.4 serialises them
// (lxml.objectify, deannotated, compact, after Declaration), signs the two
// signed elements with userKey and sets Raw, Signature and the signed text.
// The output is byte for byte what euca2ools writes for the same fields,
// so the signature verifies wherever euca2ools' does.
func (m *Manifest) Marshal(userKey *rsa.PrivateKey) error {
	if userKey == nil {
		return fmt.Errorf("bundle: no private key to sign the manifest with")
	}
	var mc, img bytes.Buffer
	mc.WriteString("<machine_configuration>")
	elem(&mc, "architecture", m.Arch)
	if m.KernelID != "" {
		elem(&mc, "kernel_id", m.KernelID)
	}
	if m.RamdiskID != "" {
		elem(&mc, "ramdisk_id", m.RamdiskID)
	}
	if m.Kind() == TypeMachine {
		if len(m.BlockDeviceMappings) > 0 {
			bdm := slices.Clone(m.BlockDeviceMappings)
			slices.SortStableFunc(bdm, func(a, b Mapping) int { return strings.Compare(a.Virtual, b.Virtual) })
			mc.WriteString("<block_device_mapping>")
			for _, bd := range bdm {
				mc.WriteString("<mapping>")
				elem(&mc, "device", bd.Device)
				elem(&mc, "virtual", bd.Virtual)
				mc.WriteString("</mapping>")
			}
			mc.WriteString("</block_device_mapping>")
		}
		if len(m.ProductCodes) > 0 {
			mc.WriteString("<product_codes>")
			for _, pc := range m.ProductCodes {
				elem(&mc, "product_code", pc)
			}
			mc.WriteString("</product_codes>")
		}
	}
	mc.WriteString("</machine_configuration>")

	img.WriteString("<image>")
	elem(&img, "name", m.Name)
	elem(&img, "user", m.User)
	// euca2ools 3.4 puts <type> right after <user>: EC2's manifest check
	// wants it there.
	elem(&img, "type", m.Type)
	fmt.Fprintf(&img, `<digest algorithm="%s">`, DigestAlgorithm)
	escape(&img, m.Digest)
	img.WriteString("</digest>")
	elem(&img, "size", strconv.FormatInt(m.Size, 10))
	elem(&img, "bundled_size", strconv.FormatInt(m.BundledSize, 10))
	fmt.Fprintf(&img, `<ec2_encrypted_key algorithm="%s">%s</ec2_encrypted_key>`, EncAlgorithm, m.EC2EncryptedKey)
	fmt.Fprintf(&img, `<user_encrypted_key algorithm="%s">%s</user_encrypted_key>`, EncAlgorithm, m.UserEncryptedKey)
	elem(&img, "ec2_encrypted_iv", m.EC2EncryptedIV)
	elem(&img, "user_encrypted_iv", m.UserEncryptedIV)
	fmt.Fprintf(&img, `<parts count="%d">`, len(m.Parts))
	for i, p := range m.Parts {
		fmt.Fprintf(&img, `<part index="%d">`, i)
		elem(&img, "filename", p.Filename)
		fmt.Fprintf(&img, `<digest algorithm="%s">%s</digest></part>`, DigestAlgorithm, p.Digest)
	}
	img.WriteString("</parts></image>")

	signed := append(mc.Bytes(), img.Bytes()...)
	sum := sha1.Sum(signed)
	sig, err := rsa.SignPKCS1v15(nil, userKey, crypto.SHA1, sum[:])
	if err != nil {
		return fmt.Errorf("bundle: sign manifest: %w", err)
	}
	m.Signature = hex.EncodeToString(sig)
	if m.Version == "" {
		m.Version = ManifestVersion
	}

	var doc bytes.Buffer
	doc.WriteString(Declaration)
	doc.WriteString("<manifest>")
	elem(&doc, "version", m.Version)
	doc.WriteString("<bundler>")
	elem(&doc, "name", m.BundlerName)
	elem(&doc, "version", m.BundlerVersion)
	elem(&doc, "release", m.BundlerRelease)
	doc.WriteString("</bundler>")
	doc.Write(signed)
	elem(&doc, "signature", m.Signature)
	doc.WriteString("</manifest>")
	m.Raw = doc.Bytes()
	m.signed = signed
	return nil
}

func elem(b *bytes.Buffer, name, text string) {
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteByte('>')
	escape(b, text)
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

// escape writes text content as libxml2 does when lxml serialises to ASCII:
// the three markup characters as entities, carriage return and anything
// beyond ASCII as decimal character references.
func escape(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r' || r > 0x7e:
			fmt.Fprintf(b, "&#%d;", r)
		default:
			b.WriteRune(r)
		}
	}
}
