package credentials

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/euca-cloud/euca/internal/pki"
)

var (
	fixtureOnce sync.Once
	fixture     Bundle
	fixtureErr  error
)

// testBundle is a real bundle: a CA, a user certificate and access keys from
// package pki. Built once, because RSA key generation is the slow part.
func testBundle(t *testing.T) Bundle {
	t.Helper()
	fixtureOnce.Do(func() {
		ca, err := pki.LoadOrCreateCA(t.TempDir())
		if err != nil {
			fixtureErr = err
			return
		}
		certPEM, keyPEM, err := ca.IssueUser("123456789012", "alice")
		if err != nil {
			fixtureErr = err
			return
		}
		id, secret, err := pki.NewAccessKey()
		if err != nil {
			fixtureErr = err
			return
		}
		fixture = Bundle{
			AccountName: "acme", AccountID: "123456789012", UserName: "alice",
			AccessKeyID: id, SecretKey: secret,
			UserCertPEM: certPEM, UserKeyPEM: keyPEM, CloudCertPEM: ca.CertPEM,
			EC2URL: "http://clc.example:8773/services/Eucalyptus",
			S3URL:  "http://clc.example:8773/services/Walrus",
			STSURL: "http://clc.example:8773/services/Tokens",
			IAMURL: "http://clc.example:8773/services/Euare",
			Region: "eucalyptus",
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixture
}

// unzip writes the zip's files into a new directory with their modes, as
// unzip(1) would, and returns it.
func unzip(t *testing.T, data []byte) (string, *zip.Reader) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, f.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	// pwd -P in eucarc resolves symbolic links; so must the expectation.
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, zr
}

func TestWriteZipLayout(t *testing.T) {
	b := testBundle(t)
	var buf bytes.Buffer
	if err := WriteZip(&buf, b); err != nil {
		t.Fatal(err)
	}
	_, zr := unzip(t, buf.Bytes())

	blk, _ := pem.Decode(b.UserCertPEM)
	sum := sha1.Sum(blk.Bytes)
	short := hex.EncodeToString(sum[:4])
	keyFile := "euca2-alice-" + short + "-pk.pem"
	certFile := "euca2-alice-" + short + "-cert.pem"

	want := map[string]os.FileMode{
		"eucarc": 0o600, "iamrc": 0o600, keyFile: 0o600,
		certFile: 0o644, "cloud-cert.pem": 0o644, "jssecacerts": 0o644,
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		mode, ok := want[f.Name]
		if !ok {
			t.Errorf("unexpected file %s", f.Name)
			continue
		}
		if f.Mode().Perm() != mode || !f.Mode().IsRegular() {
			t.Errorf("%s mode %v, want %v", f.Name, f.Mode(), mode)
		}
	}
	if len(names) != len(want) {
		t.Errorf("zip holds %v, want %d files", names, len(want))
	}
	if !regexp.MustCompile(`^euca2-alice-[0-9a-f]{8}-pk\.pem$`).MatchString(keyFile) {
		t.Errorf("key file name %s", keyFile)
	}
	if got := read(t, zr, keyFile); !bytes.Equal(got, b.UserKeyPEM) {
		t.Error("key file differs from the user's key")
	}
	if got := read(t, zr, "cloud-cert.pem"); !bytes.Equal(got, b.CloudCertPEM) {
		t.Error("cloud-cert.pem differs from the cloud's certificate")
	}
	wantIamrc := "AWSAccessKeyId=" + b.AccessKeyID + "\nAWSSecretKey=" + b.SecretKey + "\n"
	if got := string(read(t, zr, "iamrc")); got != wantIamrc {
		t.Errorf("iamrc = %q, want %q", got, wantIamrc)
	}
	if ZipName("alice") != "euca2-alice-x509.zip" {
		t.Errorf("ZipName = %s", ZipName("alice"))
	}
}

func read(t *testing.T, zr *zip.Reader, name string) []byte {
	t.Helper()
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteZipRefuses(t *testing.T) {
	good := testBundle(t)
	for name, mutate := range map[string]func(*Bundle){
		"path in user name":  func(b *Bundle) { b.UserName = "../alice" },
		"empty user name":    func(b *Bundle) { b.UserName = "" },
		"no secret":          func(b *Bundle) { b.SecretKey = "" },
		"newline in secret":  func(b *Bundle) { b.SecretKey += "\nAWSSecretKey=x" },
		"no user key":        func(b *Bundle) { b.UserKeyPEM = nil },
		"cert not PEM":       func(b *Bundle) { b.UserCertPEM = []byte("garbage") },
		"cloud cert not PEM": func(b *Bundle) { b.CloudCertPEM = []byte("garbage") },
	} {
		b := good
		mutate(&b)
		if err := WriteZip(io.Discard, b); err == nil {
			t.Errorf("%s: bundle accepted", name)
		}
	}
}

// shell runs script under the named shell and returns its output lines.
func shell(t *testing.T, sh, script string) []string {
	t.Helper()
	path, err := exec.LookPath(sh)
	if err != nil {
		t.Skipf("%s not installed: %v", sh, err)
	}
	cmd := exec.Command(path, "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -c %q: %v\n%s", sh, script, err, out)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

func TestEucarcSourced(t *testing.T) {
	b := testBundle(t)
	var buf bytes.Buffer
	if err := WriteZip(&buf, b); err != nil {
		t.Fatal(err)
	}
	dir, _ := unzip(t, buf.Bytes())
	keyFile, certFile, err := FileNames(b.UserName, b.UserCertPEM)
	if err != nil {
		t.Fatal(err)
	}

	const show = `printf '%s\n' "$EC2_PRIVATE_KEY" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$EC2_USER_ID" "$EC2_CERT" "$EUCALYPTUS_CERT" "$AWS_CREDENTIAL_FILE" "$EC2_URL" "$AWS_DEFAULT_REGION" "$EC2_JVM_ARGS" "$AWS_ACCESS_KEY" "$EUARE_URL" "$TOKEN_URL"; ` +
		// Exported, not only set: a child process sees them.
		`sh -c 'printf "%s\n" "$EC2_SECRET_KEY"'; ` +
		`for f in "$EC2_PRIVATE_KEY" "$EC2_CERT" "$EUCALYPTUS_CERT" "$AWS_CREDENTIAL_FILE" "$EUCA_KEY_DIR/jssecacerts"; do test -f "$f" || echo "missing $f"; done`
	want := []string{
		dir + "/" + keyFile, b.AccessKeyID, b.SecretKey, b.AccountID,
		dir + "/" + certFile, dir + "/cloud-cert.pem", dir + "/iamrc",
		b.EC2URL, b.Region, "-Djavax.net.ssl.trustStore=" + dir + "/jssecacerts",
		b.AccessKeyID, b.IAMURL, b.STSURL,
		b.SecretKey,
	}
	for name, run := range map[string]func() []string{
		"bash, from /": func() []string {
			return shell(t, "bash", "cd / && . "+dir+"/eucarc && "+show)
		},
		"bash set -a, from elsewhere": func() []string {
			return shell(t, "bash", "cd /tmp && set -a && . "+dir+"/eucarc && set +a && cd / && "+show)
		},
		"sh set -a, . ./eucarc": func() []string {
			return shell(t, "sh", "cd "+dir+" && set -a && . ./eucarc && set +a && cd / && "+show)
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := run()
			if !slices.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}

	// The aliases expand to the legacy tools' flags.
	got := shell(t, "bash", "cd / && . "+dir+`/eucarc && printf '%s\n' "${BASH_ALIASES[ec2-bundle-image]}" "${BASH_ALIASES[ec2-upload-bundle]}"`)
	for _, w := range []string{
		"ec2-bundle-image --cert '" + dir + "/" + certFile + "' --privatekey '" + dir + "/" + keyFile + "' --user '" + b.AccountID + "' --ec2cert '" + dir + "/cloud-cert.pem'",
		"ec2-upload-bundle -a '" + b.AccessKeyID + "' -s '" + b.SecretKey + "' --url '" + b.S3URL + "'",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("aliases %q lack %q", got, w)
		}
	}
}

// TestEucarcQuoting feeds eucarc values that would run commands if quoted
// carelessly, and a key directory with a space and shell characters in it.
func TestEucarcQuoting(t *testing.T) {
	b := testBundle(t)
	b.EC2URL = `http://x/'$(touch pwned)'` + "`touch pwned2`" + `"; touch pwned3`
	b.AccountName = "acme\ntouch pwned4"
	b.S3URL = ""
	dir := filepath.Join(t.TempDir(), `key dir $HOME 'q'`)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := Eucarc(b, `we"ird$-pk.pem`, "c.pem")
	if err := os.WriteFile(filepath.Join(dir, "eucarc"), []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rc, "S3_URL=") {
		t.Error("an empty S3 URL was exported")
	}
	got := runIn(t, dir, `. ./eucarc && printf '%s\n' "$EC2_URL" "$EC2_PRIVATE_KEY" && ls`)
	real, _ := filepath.EvalSymlinks(dir)
	want := []string{b.EC2URL, real + `/we"ird$-pk.pem`, "eucarc"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// runIn runs script with bash in dir.
func runIn(t *testing.T, dir, script string) []string {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash -c %q: %v\n%s", script, err, out)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}
