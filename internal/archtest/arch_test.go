// Package archtest holds the tests that keep the project's shape: which
// package may import which, that every package says what it is for, and
// that the binary stays static.
package archtest

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/euca-cloud/euca"

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", module+"/...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestDependencyDirections: the seams stay seams. The store, the hypervisor
// and network layers and Walrus's backend know nothing of roles; the API
// packages call the roles only through the interfaces they define.
func TestDependencyDirections(t *testing.T) {
	rules := []struct {
		pkg       string // prefix of packages the rule applies to
		forbidden []string
	}{
		{module + "/store", []string{module + "/roles", module + "/ec2api", module + "/walrus", module + "/internal/queryapi"}},
		{module + "/ec2api", []string{module + "/roles"}},
		{module + "/walrus", []string{module + "/roles"}},
		{module + "/hypervisor", []string{module + "/roles", module + "/ec2api", module + "/store", module + "/netmode"}},
		{module + "/netmode", []string{module + "/roles", module + "/ec2api", module + "/store", module + "/hypervisor"}},
		{module + "/internal/awsauth", []string{module + "/roles", module + "/store", module + "/ec2api"}},
		{module + "/internal/conf", []string{module + "/roles", module + "/store", module + "/ec2api"}},
	}
	for _, p := range listPackages(t) {
		for _, r := range rules {
			if !strings.HasPrefix(p.ImportPath, r.pkg) {
				continue
			}
			for _, d := range p.Deps {
				for _, f := range r.forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s imports %s", p.ImportPath, d)
					}
				}
			}
		}
	}
}

// TestPackageDocs: every package says what it is and why, in a doc comment.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if len(p.GoFiles) == 0 {
			continue
		}
		documented := false
		fset := token.NewFileSet()
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil && len(strings.TrimSpace(file.Doc.Text())) > 20 {
				documented = true
				break
			}
		}
		if !documented {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}

// TestStaticBuild: the binary builds with cgo off, so it runs on any Linux.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), "euca"), module)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
}
