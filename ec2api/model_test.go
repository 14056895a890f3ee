package ec2api

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"io"
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
		var where struct{ Dir string }
		out, err := botocoreParser.ask(map[string]any{"dir": true})
		if err != nil || json.Unmarshal(out, &where) != nil || where.Dir == "" {
			modelErr = "botocore not importable by python3"
			return
		}
		dir := filepath.Join(where.Dir, "data", "ec2", "2016-11-15")
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

// botocoreParser is one python3 process, started on first use, that answers
// from botocore's EC2 model for the whole test binary: one JSON request line
// in, one JSON line out (starting python and loading the model per question
// would take most of the tests' time). It parses a response document
// ({"action", "body"}), lists the filter names each operation's
// documentation gives ({"filters": [operation…]}) and says where botocore
// lives ({"dir": true}); what botocore fails on is answered {"error": …}.
var botocoreParser = &pyParser{}

type pyParser struct {
	mu   sync.Mutex
	once sync.Once
	in   io.WriteCloser
	out  *bufio.Reader
	err  error
}

const pyParserScript = `
import sys, os, re, json, botocore, botocore.session, botocore.parsers
m = botocore.session.get_session().get_service_model('ec2')
p = botocore.parsers.create_parser('ec2')
def filters(op):
    doc = m.operation_model(op).input_shape.members['Filters'].documentation
    return [n for n in re.findall(r'<li>\s*<p>\s*<code>([^<]+)</code>', doc) if not n.startswith('tag')]
for line in sys.stdin:
    req = json.loads(line)
    try:
        if 'dir' in req:
            r = {'dir': os.path.dirname(botocore.__file__)}
        elif 'filters' in req:
            r = {op: filters(op) for op in req['filters']}
        else:
            r = p.parse({'body': req['body'].encode(), 'headers': {}, 'status_code': 200}, m.operation_model(req['action']).output_shape)
            r.pop('ResponseMetadata', None)
    except Exception as e:
        r = {'error': repr(e)}
    sys.stdout.write(json.dumps(r, default=str) + '\n')
    sys.stdout.flush()
`

// ask sends one request and returns the answer line; an error means python3
// with botocore cannot run here.
func (p *pyParser) ask(req map[string]any) ([]byte, error) {
	p.once.Do(func() {
		cmd := exec.Command("python3", "-c", pyParserScript)
		if p.in, p.err = cmd.StdinPipe(); p.err != nil {
			return
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			p.err = err
			return
		}
		p.out = bufio.NewReader(stdout)
		p.err = cmd.Start()
	})
	if p.err != nil {
		return nil, p.err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line, _ := json.Marshal(req)
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	return p.out.ReadBytes('\n')
}

// botoParse encodes a response as the server does (<ActionResponse xmlns>),
// checks every element name against the model where the action has an
// output shape (botocore silently drops an unknown element, so a misspelt
// field would vanish), and returns botocore's own parse of it. The test
// skips where botocore is not installed.
func botoParse(t *testing.T, action string, resp any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: Namespace}}}
	if err := xml.NewEncoder(&buf).EncodeElement(resp, start); err != nil {
		t.Fatalf("encode %s: %v", action, err)
	}
	m := loadModel(t)
	if shape := m.Operations[action].Output.Shape; shape != "" {
		checkShape(t, m, shape, xmlTree(t, buf.Bytes()), action+"Response", true)
	}
	out, err := botocoreParser.ask(map[string]any{"action": action, "body": buf.String()})
	if err != nil {
		t.Skipf("botocore cannot parse here: %v", err)
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("botocore output: %v: %s", err, out)
	}
	if e, ok := r["error"]; ok {
		t.Fatalf("botocore could not parse %s: %v\n%s", action, e, buf.String())
	}
	return r
}

// modelFilterNames are the filter names (but the tag ones) that the model's
// documentation lists for each of ops.
func modelFilterNames(t *testing.T, ops ...string) map[string][]string {
	t.Helper()
	out, err := botocoreParser.ask(map[string]any{"filters": ops})
	if err != nil {
		t.Skipf("botocore not importable: %v", err)
	}
	var names map[string][]string
	if err := json.Unmarshal(out, &names); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return names
}

// xmlNode is an XML element: its name, children and text.
type xmlNode struct {
	name     string
	children []*xmlNode
	text     string
}

func xmlTree(t *testing.T, doc []byte) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("xml: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: tk.Name.Local}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tk)
			}
		}
	}
	return root
}

// checkShape fails on any element the model does not name where it
// appears.
func checkShape(t *testing.T, m *botocoreModel, shape string, n *xmlNode, path string, top bool) {
	t.Helper()
	s, ok := m.Shapes[shape]
	if !ok {
		t.Fatalf("%s: no shape %s", path, shape)
	}
	switch s.Type {
	case "structure":
		for _, c := range n.children {
			if top && c.name == "requestId" {
				continue
			}
			found := false
			for name, mem := range s.Members {
				loc := mem.LocationName
				if loc == "" {
					loc = name
				}
				if loc == c.name {
					checkShape(t, m, mem.Shape, c, path+"/"+c.name, false)
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: element %s is not a member of %s", path, c.name, shape)
			}
		}
	case "list":
		want := s.Member.LocationName
		if want == "" {
			want = "member"
		}
		for _, c := range n.children {
			if c.name != want {
				t.Errorf("%s: list element %s, want %s", path, c.name, want)
			}
			checkShape(t, m, s.Member.Shape, c, path+"/"+c.name, false)
		}
	default:
		if len(n.children) > 0 {
			t.Errorf("%s: scalar %s has children", path, shape)
		}
	}
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
