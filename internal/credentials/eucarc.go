package credentials

import (
	"fmt"
	"strings"
)

// Eucarc returns the eucarc text for b, whose key and certificate sit beside it
// as keyFile and certFile.
//
// It names the legacy variables Eucalyptus's eucarc set (EC2_*, EUARE_URL,
// TOKEN_URL, EUCALYPTUS_CERT, the ec2-bundle-image/ec2-upload-bundle aliases)
// and the ones today's AWS tools read (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_*).
// Paths are relative to the directory of the file itself, found from
// BASH_SOURCE in bash and $0 in zsh, so it works wherever it was unpacked and
// whatever the current directory. POSIX sh cannot tell a sourced file where it
// is, so there it must be sourced from its own directory (". ./eucarc"). Every value is
// quoted, so nothing in it is ever run by the shell.
func Eucarc(b Bundle, keyFile, certFile string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "# euca credentials for user %s of account %s (%s).\n", comment(b.UserName), comment(b.AccountName), comment(b.AccountID))
	s.WriteString("# Use with: . ./eucarc   (bash, zsh; or \"set -a; . ./eucarc\" in sh)\n")
	s.WriteString(`EUCA_KEY_DIR=$(cd "$(dirname -- "${BASH_SOURCE:-$0}")" 2>/dev/null && pwd -P)` + "\n")
	// In sh, $0 is the shell ("/bin/sh", "-sh"), not this file; then the only
	// sound guess is the current directory, right for ". ./eucarc".
	s.WriteString(`[ -f "${EUCA_KEY_DIR}/cloud-cert.pem" ] || EUCA_KEY_DIR=$(pwd -P)` + "\n")

	export := func(name, value string) {
		fmt.Fprintf(&s, "export %s=%s\n", name, shellQuote(value))
	}
	// inDir exports a path under EUCA_KEY_DIR: double quotes, so the directory
	// is expanded at source time, with the file name escaped inside them.
	inDir := func(name, prefix, file string) {
		fmt.Fprintf(&s, "export %s=\"%s${EUCA_KEY_DIR}/%s\"\n", name, dqEscape(prefix), dqEscape(file))
	}
	exportIf := func(name, value string) {
		if value != "" {
			export(name, value)
		}
	}

	exportIf("EC2_URL", b.EC2URL)
	exportIf("S3_URL", b.S3URL)
	exportIf("EUARE_URL", b.IAMURL)
	exportIf("TOKEN_URL", b.STSURL)
	exportIf("AWS_IAM_URL", b.IAMURL)
	export("EC2_ACCESS_KEY", b.AccessKeyID)
	export("EC2_SECRET_KEY", b.SecretKey)
	export("AWS_ACCESS_KEY", b.AccessKeyID)
	export("AWS_SECRET_KEY", b.SecretKey)
	inDir("EC2_PRIVATE_KEY", "", keyFile)
	inDir("EC2_CERT", "", certFile)
	inDir("EC2_JVM_ARGS", "-Djavax.net.ssl.trustStore=", "jssecacerts")
	inDir("EUCALYPTUS_CERT", "", "cloud-cert.pem")
	export("EC2_USER_ID", b.AccountID)
	inDir("AWS_CREDENTIAL_FILE", "", "iamrc")

	// What the AWS CLI, boto3 and the SDKs read today.
	export("AWS_ACCESS_KEY_ID", b.AccessKeyID)
	export("AWS_SECRET_ACCESS_KEY", b.SecretKey)
	exportIf("AWS_DEFAULT_REGION", b.Region)
	exportIf("AWS_REGION", b.Region)
	exportIf("AWS_ENDPOINT_URL_EC2", b.EC2URL)
	exportIf("AWS_ENDPOINT_URL_S3", b.S3URL)
	exportIf("AWS_ENDPOINT_URL_IAM", b.IAMURL)
	exportIf("AWS_ENDPOINT_URL_STS", b.STSURL)

	// Eucalyptus's aliases, so the Java bundle tools need no flags. The inner
	// single quotes keep a key directory with spaces in one argument.
	s.WriteString(`alias ec2-bundle-image="ec2-bundle-image --cert '${EC2_CERT}' --privatekey '${EC2_PRIVATE_KEY}' --user '${EC2_USER_ID}' --ec2cert '${EUCALYPTUS_CERT}'"` + "\n")
	s.WriteString(`alias ec2-upload-bundle="ec2-upload-bundle -a '${EC2_ACCESS_KEY}' -s '${EC2_SECRET_KEY}' --url '${S3_URL}'"` + "\n")
	return s.String()
}

// shellQuote single-quotes v for sh. Inside single quotes only the quote
// itself is special, so each one is written as: close quote, escaped quote,
// reopen quote.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// dqEscape escapes v for the inside of double quotes, where $, `, " and \ are
// special.
func dqEscape(v string) string {
	var s strings.Builder
	for _, r := range v {
		if strings.ContainsRune("$`\"\\", r) {
			s.WriteByte('\\')
		}
		s.WriteRune(r)
	}
	return s.String()
}

// comment makes v safe on a comment line: a newline would end the comment and
// turn the rest into a command.
func comment(v string) string {
	if v == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, v)
}
