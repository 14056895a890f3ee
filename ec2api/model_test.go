package ec2api

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// botocoreModel is the EC2 service model shipped with botocore: the
// specification this package follows.
type botocoreModel struct {
	Operations map[string]struct {
		Input  struct{ Shape string } `json:"input"`
		Output struct{ Shape string } `json:"output"`
		Errors []struct{ Shape string }
	} `json:"operations"`
	Shapes map[string]struct {
		Type    string `json:"type"`
		Members map[string]struct {
			Shape        string `json:"shape"`
			LocationName string `json:"locationName"`
			QueryName    string `json:"queryName"`
		} `json:"members"`
		Member struct {
			Shape        string `json:"shape"`
			LocationName string `json:"locationName"`
		} `json:"member"`
		Enum []string `json:"enum"`
	} `json:"shapes"`
}

var (
	modelOnce sync.Once
	model     *botocoreModel
	modelErr  string
)

// loadModel finds botocore beside the machine's python3 and reads the EC2
// model; the test skips (or fails under CI) without it.
func loadModel(t *testing.T) *botocoreModel {
	t.Helper()
	modelOnce.Do(func() {
		out, err := exec.Command("python3", "-c", "import botocore,os;print(os.path.dirname(botocore.__file__))").Output()
		if err != nil {
			modelErr = "botocore not importable by python3"
			return
		}
		dir := filepath.Join(strings.TrimSpace(string(out)), "data", "ec2", "2016-11-15")
		var m botocoreModel
		for _, name := range []string{"service-2.json", "service-2.json.gz"} {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			defer f.Close()
			var r interface{ Read([]byte) (int, error) } = f
			if strings.HasSuffix(name, ".gz") {
				gz, err := gzip.NewReader(f)
				if err != nil {
					modelErr = err.Error()
					return
				}
				r = gz
			}
			if err := json.NewDecoder(r).Decode(&m); err != nil {
				modelErr = err.Error()
				return
			}
			model = &m
			return
		}
		modelErr = "no service-2.json in " + dir
	})
	if model == nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("botocore model required under CI: %s", modelErr)
		}
		t.Skip(modelErr)
	}
	return model
}

// TestActionsExistInModel: every action this package answers is an EC2
// operation of API version 2016-11-15, spelled as botocore spells it.
func TestActionsExistInModel(t *testing.T) {
	m := loadModel(t)
	a := &api{}
	for name := range a.actions() {
		if _, ok := m.Operations[name]; !ok {
			t.Errorf("action %s is not in the EC2 model", name)
		}
	}
}
