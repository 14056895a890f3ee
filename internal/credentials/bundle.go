// Package credentials builds the legacy credentials bundle a user downloads:
// the euca2-<user>-x509.zip Eucalyptus gave out, so that `unzip` then
// `source eucarc` makes euca2ools, the Java EC2 API tools (ec2-bundle-image,
// ec2-upload-bundle) and the AWS CLI talk to this cloud with no other setup.
//
// The zip holds:
//
//	eucarc                        shell settings: endpoints, keys, file paths
//	iamrc                         AWSAccessKeyId=/AWSSecretKey=, read by euca2ools 3 --credentials
//	euca2-<user>-<id>-pk.pem      the user's RSA key, PKCS#1 (mode 0600)
//	euca2-<user>-<id>-cert.pem    the user's certificate, for bundling images
//	cloud-cert.pem                the cloud's certificate, to which bundles encrypt
//	jssecacerts                   a Java trust store holding cloud-cert.pem, which
//	                              EC2_JVM_ARGS points the Java tools at
//
// Files that carry a secret (the key, eucarc, iamrc) have mode 0600 in the zip.
// The package only formats; keys and certificates come from package pki.
package credentials

import (
	"archive/zip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// Bundle is everything a user's credentials zip holds. URLs left empty are
// left out of eucarc rather than exported empty, so a client falls back to
// its own default instead of failing on "".
type Bundle struct {
	AccountName, AccountID, UserName string
	AccessKeyID                      string
	SecretKey                        string
	UserCertPEM, UserKeyPEM          []byte
	CloudCertPEM                     []byte
	EC2URL, S3URL, STSURL, IAMURL    string
	Region                           string
}

// userNameRE is IAM's rule for user names. It also keeps a name from steering a
// zip entry out of the directory it is unpacked in.
var userNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// ZipName is the download's file name, as Eucalyptus named it.
func ZipName(userName string) string { return "euca2-" + userName + "-x509.zip" }

// FileNames returns the names of the user's key and certificate inside the zip:
// euca2-<user>-<shortid>-pk.pem and -cert.pem, where shortid is the first 8 hex
// digits of the SHA-1 of the certificate (DER), as Eucalyptus did, so two
// downloads for the same user unpacked side by side do not overwrite each other.
func FileNames(userName string, userCertPEM []byte) (keyFile, certFile string, err error) {
	blk, _ := pem.Decode(userCertPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", "", errors.New("credentials: user certificate is not a PEM CERTIFICATE")
	}
	sum := sha1.Sum(blk.Bytes)
	base := "euca2-" + userName + "-" + hex.EncodeToString(sum[:])[:8]
	return base + "-pk.pem", base + "-cert.pem", nil
}

func (b Bundle) check() error {
	if !userNameRE.MatchString(b.UserName) {
		return fmt.Errorf("credentials: user name %q is not a valid IAM user name", b.UserName)
	}
	for name, v := range map[string]string{"account id": b.AccountID, "access key id": b.AccessKeyID, "secret key": b.SecretKey} {
		if v == "" {
			return fmt.Errorf("credentials: bundle has no %s", name)
		}
		// iamrc is line-oriented and has no quoting.
		if strings.ContainsFunc(v, isControl) {
			return fmt.Errorf("credentials: %s contains a control character", name)
		}
	}
	for name, v := range map[string][]byte{"user key": b.UserKeyPEM, "cloud certificate": b.CloudCertPEM} {
		if len(v) == 0 {
			return fmt.Errorf("credentials: bundle has no %s", name)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// WriteZip writes the credentials zip for b to w.
func WriteZip(w io.Writer, b Bundle) error {
	if err := b.check(); err != nil {
		return err
	}
	keyFile, certFile, err := FileNames(b.UserName, b.UserCertPEM)
	if err != nil {
		return err
	}
	trust, err := javaTrustStore(b.CloudCertPEM, time.Now())
	if err != nil {
		return err
	}
	files := []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{"eucarc", 0o600, []byte(Eucarc(b, keyFile, certFile))},
		{"iamrc", 0o600, []byte(Iamrc(b))},
		{keyFile, 0o600, b.UserKeyPEM},
		{certFile, 0o644, b.UserCertPEM},
		{"cloud-cert.pem", 0o644, b.CloudCertPEM},
		{"jssecacerts", 0o644, trust},
	}
	zw := zip.NewWriter(w)
	now := time.Now()
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: now}
		h.SetMode(f.mode)
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("credentials: zip %s: %w", f.name, err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return fmt.Errorf("credentials: zip %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("credentials: zip: %w", err)
	}
	return nil
}

// Iamrc is the file euca2ools 3 and the IAM command line tools read through
// --credentials or AWS_CREDENTIAL_FILE.
func Iamrc(b Bundle) string {
	return "AWSAccessKeyId=" + b.AccessKeyID + "\nAWSSecretKey=" + b.SecretKey + "\n"
}
