package credentials

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJavaTrustStore(t *testing.T) {
	b := testBundle(t)
	ks, err := javaTrustStore(b.CloudCertPEM, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(ks) != jksMagic || binary.BigEndian.Uint32(ks[4:]) != jksVersion || binary.BigEndian.Uint32(ks[8:]) != 1 {
		t.Fatalf("header % x", ks[:12])
	}

	// The real judge is Java's own keytool, where it is installed.
	keytool, err := exec.LookPath("keytool")
	if err != nil {
		t.Skipf("keytool not installed, JKS checked by header only: %v", err)
	}
	path := filepath.Join(t.TempDir(), "jssecacerts")
	if err := os.WriteFile(path, ks, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keytool, "-list", "-keystore", path, "-storepass", jksPassword).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), jksAlias) || !strings.Contains(string(out), "trustedCertEntry") {
		t.Errorf("keytool does not list the cloud certificate as trusted:\n%s", out)
	}
	// A wrong password fails the integrity digest: proof the digest is checked
	// and right, not ignored.
	if out, err := exec.Command(keytool, "-list", "-keystore", path, "-storepass", "wrong!").CombinedOutput(); err == nil {
		t.Errorf("keytool accepted a wrong password:\n%s", out)
	}
}
