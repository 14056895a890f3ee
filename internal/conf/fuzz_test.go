package conf

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: eucalyptus.conf comes from operators and from documents pasted
// by them; no input may panic the reader, and what it returns must hold
// together. Seeds live in testdata/fuzz/FuzzParse (the 1.5 doc examples
// among them); the example file is added here.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(examplePath); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, diags := Parse(strings.NewReader(src), "fuzz.conf")
		if c == nil {
			t.Fatal("nil Config")
		}
		lines := strings.Count(src, "\n") + 1
		for _, d := range diags {
			if d.Line < 0 || d.Line > lines || d.Message == "" {
				t.Fatalf("bad diagnostic %+v (%d lines)", d, lines)
			}
			_ = d.String()
		}
		if len(diags) > maxDiags+1 {
			t.Fatalf("%d diagnostics", len(diags))
		}
		if len(c.Entries()) != len(keyTable) {
			t.Fatal("Entries lost a key")
		}
		if !c.VNetSubnet.IsValid() || c.VNetSubnet != c.VNetSubnet.Masked() || !filepath.IsAbs(c.Home) ||
			!filepath.IsAbs(c.InstancePath) || c.VNetAddrsPerNet < 4 || len(c.VNetPublicIPs) > maxPublicIPs {
			t.Fatalf("inconsistent Config: %+v", c)
		}
		WriteReport(io.Discard, c, diags)
	})
}
