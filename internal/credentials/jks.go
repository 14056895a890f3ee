package credentials

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
)

// Java keystore (JKS) constants. eucarc points EC2_JVM_ARGS at jssecacerts, so
// the Java EC2 API tools trust the cloud's certificate over HTTPS; Eucalyptus
// shipped that file in the zip and we must too, or Java would find no trust
// store and refuse every connection. JKS is the one format every Java since 1.2
// reads as a trust store (Java 9+ still detects it by its magic).
const (
	jksMagic          = 0xFEEDFEED
	jksVersion        = 2
	jksTrustedCertTag = 2
	// The password Java's own cacerts uses. Java opens a trust store without a
	// password unless javax.net.ssl.trustStorePassword is set, skipping the
	// check; keytool users expect "changeit".
	jksPassword = "changeit"
	jksAlias    = "euca-cloud"
)

// javaTrustStore returns a JKS keystore holding the certificates of certsPEM
// as trusted entries.
func javaTrustStore(certsPEM []byte, now time.Time) ([]byte, error) {
	var ders [][]byte
	for rest := certsPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, errors.New("credentials: cloud certificate is not a PEM CERTIFICATE")
	}

	var buf bytes.Buffer
	u32 := func(v uint32) { binary.Write(&buf, binary.BigEndian, v) }
	// Java's writeUTF: a 16-bit length then (for ASCII, as ours is) the bytes.
	utf := func(s string) {
		binary.Write(&buf, binary.BigEndian, uint16(len(s)))
		buf.WriteString(s)
	}
	u32(jksMagic)
	u32(jksVersion)
	u32(uint32(len(ders)))
	for i, der := range ders {
		u32(jksTrustedCertTag)
		alias := jksAlias
		if i > 0 {
			alias += "-" + strconv.Itoa(i)
		}
		utf(alias)
		binary.Write(&buf, binary.BigEndian, now.UnixMilli())
		utf("X.509")
		u32(uint32(len(der)))
		buf.Write(der)
	}

	// The integrity digest: SHA-1 over the password as UTF-16BE, the fixed
	// phrase Sun chose, then everything above.
	h := sha1.New()
	for _, c := range utf16.Encode([]rune(jksPassword)) {
		h.Write([]byte{byte(c >> 8), byte(c)})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(buf.Bytes())
	buf.Write(h.Sum(nil))
	return buf.Bytes(), nil
}
