package walrus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The XML of every response is checked against botocore's S3 model
// (botocore/data/s3/2006-03-01/service-2.json.gz), the specification the
// AWS CLI and boto3 parse responses with: each element must be a member of
// the operation's output shape (by its locationName), lists flattened or
// wrapped as the model says, scalars parsable as their type.

type s3Model struct {
	Operations map[string]struct {
		Output *struct{ Shape string } `json:"output"`
	} `json:"operations"`
	Shapes map[string]modelShape `json:"shapes"`
}

type modelShape struct {
	Type    string                 `json:"type"`
	Members map[string]modelMember `json:"members"`
	Member  *modelMember           `json:"member"`
	Payload string                 `json:"payload"`
	// Flattened lists repeat their member element in place.
	Flattened bool `json:"flattened"`
}

type modelMember struct {
	Shape        string `json:"shape"`
	LocationName string `json:"locationName"`
	Location     string `json:"location"`
}

func loadS3Model(t *testing.T) *s3Model {
	t.Helper()
	path := os.Getenv("BOTOCORE_S3_MODEL")
	if path == "" {
		out, err := exec.Command("python3", "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
		if err != nil {
			t.Skip("botocore not installed: no S3 model to check shapes against")
		}
		path = filepath.Join(strings.TrimSpace(string(out)), "data", "s3", "2006-03-01", "service-2.json.gz")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("S3 model: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var m s3Model
	if err := json.NewDecoder(zr).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// xmlNode is a parsed element.
type xmlNode struct {
	name     string
	text     string
	children []*xmlNode
}

func parseXML(t *testing.T, body []byte) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v\n%s", err, body)
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

// checkShape validates an element against a shape, returning the problems.
func (m *s3Model) checkShape(n *xmlNode, shapeName, path string) []string {
	s, ok := m.Shapes[shapeName]
	if !ok {
		return []string{path + ": unknown shape " + shapeName}
	}
	var probs []string
	switch s.Type {
	case "structure":
		for _, c := range n.children {
			found := false
			for name, mem := range s.Members {
				if mem.Location != "" {
					continue // a header, not an element
				}
				ln := mem.LocationName
				if ln == "" {
					ln = name
				}
				ms := m.Shapes[mem.Shape]
				if ms.Type == "list" && ms.Flattened {
					// A flattened list's items carry the member's name.
					if ln == c.name {
						found = true
						probs = append(probs, m.checkShape(c, ms.Member.Shape, path+"/"+c.name)...)
					}
					continue
				}
				if ln == c.name {
					found = true
					probs = append(probs, m.checkShape(c, mem.Shape, path+"/"+c.name)...)
				}
			}
			if !found {
				probs = append(probs, fmt.Sprintf("%s/%s: not a member of %s", path, c.name, shapeName))
			}
		}
	case "list":
		item := s.Member.LocationName
		if item == "" {
			item = "member"
		}
		for _, c := range n.children {
			if c.name != item {
				probs = append(probs, fmt.Sprintf("%s/%s: list %s holds %s elements", path, c.name, shapeName, item))
				continue
			}
			probs = append(probs, m.checkShape(c, s.Member.Shape, path+"/"+c.name)...)
		}
	default:
		if len(n.children) > 0 {
			return []string{path + ": scalar " + shapeName + " has children"}
		}
		v := strings.TrimSpace(n.text)
		var err error
		switch s.Type {
		case "integer", "long":
			_, err = strconv.ParseInt(v, 10, 64)
		case "boolean":
			_, err = strconv.ParseBool(v)
		case "timestamp":
			_, err = time.Parse(time.RFC3339, v)
		}
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %q is not a %s", path, v, s.Type))
		}
	}
	return probs
}

// checkOutput validates a response body against an operation's output.
func (m *s3Model) checkOutput(t *testing.T, op string, body []byte) {
	t.Helper()
	o, ok := m.Operations[op]
	if !ok || o.Output == nil {
		t.Fatalf("operation %s has no output in the model", op)
	}
	shape := o.Output.Shape
	if p := m.Shapes[shape].Payload; p != "" {
		shape = m.Shapes[shape].Members[p].Shape
	}
	root := parseXML(t, body)
	for _, p := range m.checkShape(root, shape, root.name) {
		t.Errorf("%s: %s", op, p)
	}
}

func TestResponsesMatchBotocoreModel(t *testing.T) {
	m := loadS3Model(t)
	smallParts(t)
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/shapes", nil), 200)
	e.must(e.do(a, "PUT", "/shapes/dir/a", []byte("a"), "X-Amz-Tagging", "k=v"), 200)
	e.must(e.do(a, "PUT", "/shapes/b", []byte("b"), "x-amz-acl", "public-read"), 200)
	e.must(e.do(a, "PUT", "/shapes?tagging", []byte(`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`)), 204)
	e.must(e.do(a, "PUT", "/shapes?versioning", []byte(`<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>`)), 200)
	e.must(e.do(a, "PUT", "/shapes?cors", []byte(`<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>`)), 200)
	var init struct{ UploadId string }
	r := e.must(e.do(a, "POST", "/shapes/mp?uploads", nil), 200)
	m.checkOutput(t, "CreateMultipartUpload", r.body)
	_ = xml.Unmarshal(r.body, &init)
	id := url.QueryEscape(init.UploadId)
	pr := e.must(e.do(a, "PUT", "/shapes/mp?partNumber=1&uploadId="+id, []byte("part")), 200)
	r = e.must(e.do(a, "PUT", "/shapes/mp?partNumber=2&uploadId="+id, nil, "X-Amz-Copy-Source", "/shapes/b"), 200)
	m.checkOutput(t, "UploadPartCopy", r.body)
	r = e.must(e.do(a, "GET", "/shapes/mp?uploadId="+id, nil), 200)
	m.checkOutput(t, "ListParts", r.body)
	r = e.must(e.do(a, "GET", "/shapes?uploads&delimiter=/", nil), 200)
	m.checkOutput(t, "ListMultipartUploads", r.body)

	for _, c := range []struct{ op, path string }{
		{"ListBuckets", "/"},
		{"ListObjects", "/shapes?delimiter=/"},
		{"ListObjects", "/shapes?max-keys=1&encoding-type=url"},
		{"ListObjectsV2", "/shapes?list-type=2&delimiter=/&fetch-owner=true"},
		{"ListObjectsV2", "/shapes?list-type=2&max-keys=1&start-after=a"},
		{"ListObjectVersions", "/shapes?versions"},
		{"GetBucketLocation", "/shapes?location"},
		{"GetBucketAcl", "/shapes?acl"},
		{"GetObjectAcl", "/shapes/b?acl"},
		{"GetBucketTagging", "/shapes?tagging"},
		{"GetObjectTagging", "/shapes/dir/a?tagging"},
		{"GetBucketVersioning", "/shapes?versioning"},
		{"GetBucketCors", "/shapes?cors"},
		{"GetBucketAccelerateConfiguration", "/shapes?accelerate"},
		{"GetBucketRequestPayment", "/shapes?requestPayment"},
		{"GetBucketLogging", "/shapes?logging"},
		{"GetBucketNotificationConfiguration", "/shapes?notification"},
	} {
		r := e.must(e.do(a, "GET", c.path, nil), 200)
		m.checkOutput(t, c.op, r.body)
	}
	r = e.must(e.do(a, "PUT", "/shapes/copy", nil, "X-Amz-Copy-Source", "/shapes/b"), 200)
	m.checkOutput(t, "CopyObject", r.body)
	body := []byte(`<Delete><Object><Key>copy</Key></Object><Object><Key>x</Key><VersionId>v1</VersionId></Object></Delete>`)
	r = e.must(e.do(a, "POST", "/shapes?delete", body, "Content-MD5", md5b64(body)), 200)
	m.checkOutput(t, "DeleteObjects", r.body)
	complete := fmt.Sprintf(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>`, pr.header.Get("ETag"))
	r = e.must(e.do(a, "POST", "/shapes/mp?uploadId="+id, []byte(complete)), 200)
	m.checkOutput(t, "CompleteMultipartUpload", r.body)
}

// TestShapeCheckerCatches: the checker above does find a misnamed element,
// a wrapped list the model flattens, and a bad scalar.
func TestShapeCheckerCatches(t *testing.T) {
	m := loadS3Model(t)
	for _, doc := range []string{
		`<ListBucketResult><Name>b</Name><Keys>1</Keys></ListBucketResult>`,
		`<ListBucketResult><Contents><Object><Key>k</Key></Object></Contents></ListBucketResult>`,
		`<ListBucketResult><MaxKeys>many</MaxKeys></ListBucketResult>`,
		`<ListBucketResult><Contents><LastModified>yesterday</LastModified></Contents></ListBucketResult>`,
	} {
		if probs := m.checkShape(parseXML(t, []byte(doc)), "ListObjectsOutput", "root"); len(probs) == 0 {
			t.Errorf("no problem found in %s", doc)
		}
	}
}
