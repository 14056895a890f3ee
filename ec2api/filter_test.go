package ec2api

import (
	"testing"

	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

func TestWildcardMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"web", "web", true},
		{"web", "webs", false},
		{"web*", "webserver", true},
		{"*server", "webserver", true},
		{"w?b", "wab", true},
		{"w?b", "wb", false},
		{"*", "", true},
		{"a*b*c", "a--b--c", true},
		{"a*b*c", "a--c--b", false},
		{`\*`, "*", true},
		{`\*`, "x", false},
		{`a\?`, "a?", true},
		{"**", "anything", true},
		{"", "", true},
		{"", "x", false},
		{"ü*", "über", true},
	} {
		if got := wildcardMatch(c.pattern, c.s); got != c.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

type item struct {
	id   string
	tags []store.Tag
}

func TestApplyFilters(t *testing.T) {
	items := []item{
		{"a", []store.Tag{{Key: "team", Value: "blue"}}},
		{"b", []store.Tag{{Key: "team", Value: "red"}, {Key: "env", Value: "prod"}}},
		{"c", nil},
	}
	fields := filterFields[item]{"id": func(i item) []string { return []string{i.id} }}
	tags := func(i item) []store.Tag { return i.tags }
	run := func(fs ...queryapi.Filter) []string {
		t.Helper()
		out, err := applyFilters(items, fs, fields, tags)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, i := range out {
			ids = append(ids, i.id)
		}
		return ids
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("got %v, want %v", got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("got %v, want %v", got, want)
			}
		}
	}
	check(run(queryapi.Filter{Name: "tag:team", Values: []string{"blue"}}), "a")
	check(run(queryapi.Filter{Name: "tag:team", Values: []string{"blue", "red"}}), "a", "b")
	check(run(queryapi.Filter{Name: "tag-key", Values: []string{"env"}}), "b")
	check(run(queryapi.Filter{Name: "tag-value", Values: []string{"r*"}}), "b")
	check(run(queryapi.Filter{Name: "id", Values: []string{"a", "c"}}, queryapi.Filter{Name: "tag:team", Values: []string{"*"}}), "a")
	if _, err := applyFilters(items, []queryapi.Filter{{Name: "nonsense", Values: []string{"x"}}}, fields, tags); err == nil {
		t.Error("unknown filter accepted")
	}
	if _, err := applyFilters(items, []queryapi.Filter{{Name: "tag:x", Values: []string{"x"}}}, fields, nil); err == nil {
		t.Error("tag filter accepted on an untaggable resource")
	}
}

func TestPaginate(t *testing.T) {
	items := []int{1, 2, 3, 4, 5, 6, 7}
	page, next, err := paginate(items, queryapi.Params{"MaxResults": "5"}, 5, 1000)
	if err != nil || len(page) != 5 || next == "" {
		t.Fatalf("first page %v %q %v", page, next, err)
	}
	page, next, err = paginate(items, queryapi.Params{"MaxResults": "5", "NextToken": next}, 5, 1000)
	if err != nil || len(page) != 2 || page[0] != 6 || next != "" {
		t.Fatalf("second page %v %q %v", page, next, err)
	}
	if _, _, err := paginate(items, queryapi.Params{"MaxResults": "4"}, 5, 1000); err == nil {
		t.Error("MaxResults below the minimum accepted")
	}
	if _, _, err := paginate(items, queryapi.Params{"NextToken": "zz"}, 5, 1000); err == nil {
		t.Error("bad token accepted")
	}
	if page, _, _ := paginate(items, queryapi.Params{}, 5, 1000); len(page) != 7 {
		t.Error("no MaxResults should return everything")
	}
}

func FuzzWildcardMatch(f *testing.F) {
	f.Add("a*b?c", "axxbyc")
	f.Add(`\`, `\`)
	f.Add("***************a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")
	f.Fuzz(func(t *testing.T, p, s string) {
		if wildcardMatch(p, s) != wildcardMatch(p, s) {
			t.Fatal("not deterministic")
		}
		if p == s && !containsMeta(p) && !wildcardMatch(p, s) {
			t.Fatalf("%q does not match itself", p)
		}
	})
}

func containsMeta(s string) bool {
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			return true
		}
	}
	return false
}
