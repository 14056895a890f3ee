package queryapi

import (
	"sort"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
)

// Params are a Query request's parameters, flattened as the protocol sends
// them: lists as Name.1, Name.2; structures as Name.1.Field; lists in
// structures as Filter.1.Value.1.
type Params map[string]string

// String returns the value of name, or "".
func (p Params) String(name string) string { return p[name] }

// Has reports whether name was sent at all (even empty).
func (p Params) Has(name string) bool { _, ok := p[name]; return ok }

// Required returns a value that must be present and non-empty.
func (p Params) Required(name string) (string, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return "", awserr.MissingParameter(name)
	}
	return v, nil
}

// Bool parses a boolean ("true"/"false", any case). Absent is false.
func (p Params) Bool(name string) (bool, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. Expected a boolean.", v, name)
}

// Int parses an integer; ok is false when absent.
func (p Params) Int(name string) (n int64, ok bool, err error) {
	v, present := p[name]
	if !present || v == "" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. Expected an integer.", v, name)
	}
	return n, true, nil
}

// indexes returns the sorted member numbers N present as prefix.N or prefix.N.*.
func (p Params) indexes(prefix string) []int {
	seen := map[int]bool{}
	pre := prefix + "."
	for k := range p {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			rest = rest[:i]
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// List returns the values of prefix.1, prefix.2, ... in member order.
func (p Params) List(prefix string) []string {
	var out []string
	for _, n := range p.indexes(prefix) {
		if v, ok := p[prefix+"."+strconv.Itoa(n)]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Members returns the structures prefix.1.*, prefix.2.*, ... each with its
// keys relative to the member (Filter.1.Name becomes Name).
func (p Params) Members(prefix string) []Params {
	var out []Params
	for _, n := range p.indexes(prefix) {
		pre := prefix + "." + strconv.Itoa(n) + "."
		m := Params{}
		for k, v := range p {
			if strings.HasPrefix(k, pre) {
				m[k[len(pre):]] = v
			}
		}
		if len(m) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// Filter is one Filter.N of a Describe call.
type Filter struct {
	Name   string
	Values []string
}

// Filters decodes Filter.N.Name / Filter.N.Value.M.
func (p Params) Filters() ([]Filter, error) {
	var out []Filter
	for _, m := range p.Members("Filter") {
		name := m["Name"]
		if name == "" {
			return nil, awserr.MissingParameter("Filter.Name")
		}
		out = append(out, Filter{Name: name, Values: m.List("Value")})
	}
	return out, nil
}

// Tag is a key/value pair as requests carry them.
type Tag struct{ Key, Value string }

// Tags decodes prefix.N.Key / prefix.N.Value.
func (p Params) Tags(prefix string) []Tag {
	var out []Tag
	for _, m := range p.Members(prefix) {
		out = append(out, Tag{Key: m["Key"], Value: m["Value"]})
	}
	return out
}

// TagSpec is one TagSpecification.N of a create call.
type TagSpec struct {
	ResourceType string
	Tags         []Tag
}

// TagSpecifications decodes TagSpecification.N.ResourceType / .Tag.M.Key/Value.
func (p Params) TagSpecifications() []TagSpec {
	var out []TagSpec
	for _, m := range p.Members("TagSpecification") {
		out = append(out, TagSpec{ResourceType: m["ResourceType"], Tags: m.Tags("Tag")})
	}
	return out
}
