package conf

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

const examplePath = "../../eucalyptus.conf.example"

// The example file is read as any eucalyptus.conf would be, and says nothing
// that needs a warning.
func TestExampleLoads(t *testing.T) {
	c, diags, err := Load(examplePath)
	if err != nil || len(diags) != 0 {
		t.Fatalf("Load(%s): %v %v", examplePath, diags, err)
	}
	if c.Path != examplePath {
		t.Errorf("Path %q", c.Path)
	}
}

// Every key is documented exactly once as a commented-out "#KEY=value" line,
// and that value is the one used when the key is absent: uncommenting every
// such line changes nothing.
func TestExampleDocumentsEveryKeyWithItsDefault(t *testing.T) {
	text, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^#([A-Z_]+)=(.*)$`)
	seen := map[string]int{}
	for _, m := range line.FindAllStringSubmatch(string(text), -1) {
		seen[m[1]]++
	}
	for _, k := range keyTable {
		if seen[k.name] != 1 {
			t.Errorf("%s is shown %d times as #%s=..., want once", k.name, seen[k.name], k.name)
		}
		delete(seen, k.name)
	}
	for k := range seen {
		t.Errorf("the example shows #%s=..., which is no known key", k)
	}

	uncommented := line.ReplaceAllString(string(text), "$1=$2")
	got, diags := Parse(strings.NewReader(uncommented), "uncommented")
	if len(diags) != 0 {
		t.Errorf("uncommented example: %v", diags)
	}
	// The example shows EUCALYPTUS="/", the default when running as root.
	want, _ := Parse(strings.NewReader(`EUCALYPTUS="/"`), "root")
	we := want.Entries()
	for i, e := range got.Entries() {
		if e.Value != we[i].Value {
			t.Errorf("%s: the example shows %q, the default is %q", e.Key, e.Value, we[i].Value)
		}
	}
}
