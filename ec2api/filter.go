package ec2api

import (
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// describeCall is what one Describe call brings to the steps every Describe
// shares (see describe).
type describeCall[T any] struct {
	// fields are the call's filters; tags, when not nil, the items' tags,
	// which add the tag:<key>, tag-key and tag-value filters.
	fields filterFields[T]
	tags   func(T) []store.Tag
	// filterNamesFirst refuses an unknown filter name before check and the
	// dry run, as the instance and image calls do, rather than once the
	// items are found.
	filterNamesFirst bool
	// check validates the call's own parameters once the filters are
	// decoded and before the dry run; nil where there are none.
	check func() error
	// fetch finds the items the caller named (or all it may see), in a
	// stable order, as the filters see them.
	fetch func() ([]T, error)
	// minResults and maxResults bound MaxResults; both 0 for a call that
	// answers with every item at once.
	minResults, maxResults int
}

// describe runs the steps of a Describe call in the order EC2 checks them:
// decode the filters, check the call's parameters, answer a dry run, fetch
// the items, keep those every filter matches, and cut the page MaxResults
// and NextToken ask for. A call that answers a dry run before anything else
// calls dryRun itself first; the second call here answers the same.
func describe[T any](p queryapi.Params, c describeCall[T]) (page []T, next string, err error) {
	filters, err := p.Filters()
	if err != nil {
		return nil, "", err
	}
	if c.filterNamesFirst {
		if _, err := applyFilters(nil, filters, c.fields, c.tags); err != nil {
			return nil, "", err
		}
	}
	if c.check != nil {
		if err := c.check(); err != nil {
			return nil, "", err
		}
	}
	if err := dryRun(p); err != nil {
		return nil, "", err
	}
	items, err := c.fetch()
	if err != nil {
		return nil, "", err
	}
	items, err = applyFilters(items, filters, c.fields, c.tags)
	if err != nil {
		return nil, "", err
	}
	if c.maxResults == 0 {
		return items, "", nil
	}
	return paginate(items, p, c.minResults, c.maxResults)
}

// viewsOf turns what a cloud call returns into the views a Describe filters,
// one for one: viewsOf(vpcView)(a.cloud.VPCs(…)).
func viewsOf[S, T any](view func(S) T) func([]S, error) ([]T, error) {
	return func(list []S, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		out := make([]T, len(list))
		for i, s := range list {
			out[i] = view(s)
		}
		return out, nil
	}
}

// filterFields maps a Describe call's filter names to the values an item has
// for that name. A filter matches an item when any of the filter's values
// matches any of the item's values; all filters must match (AWS's rule).
type filterFields[T any] map[string]func(T) []string

// applyFilters keeps the items every filter matches. tags, when not nil,
// adds the tag:<key>, tag-key and tag-value filters every taggable resource
// has. An unknown filter name is refused as AWS refuses it.
func applyFilters[T any](items []T, filters []queryapi.Filter, fields filterFields[T], tags func(T) []store.Tag) ([]T, error) {
	if len(filters) == 0 {
		return items, nil
	}
	getters := make([]func(T) []string, len(filters))
	for i, f := range filters {
		g, err := getter(f.Name, fields, tags)
		if err != nil {
			return nil, err
		}
		getters[i] = g
	}
	var out []T
	for _, it := range items {
		keep := true
		for i, f := range filters {
			if !matchAny(f.Values, getters[i](it)) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, it)
		}
	}
	return out, nil
}

func getter[T any](name string, fields filterFields[T], tags func(T) []store.Tag) (func(T) []string, error) {
	if g, ok := fields[name]; ok {
		return g, nil
	}
	if tags != nil {
		switch {
		case strings.HasPrefix(name, "tag:"):
			key := name[len("tag:"):]
			return func(t T) []string {
				for _, tg := range tags(t) {
					if tg.Key == key {
						return []string{tg.Value}
					}
				}
				return nil
			}, nil
		case name == "tag-key":
			return func(t T) []string {
				var out []string
				for _, tg := range tags(t) {
					out = append(out, tg.Key)
				}
				return out
			}, nil
		case name == "tag-value":
			return func(t T) []string {
				var out []string
				for _, tg := range tags(t) {
					out = append(out, tg.Value)
				}
				return out
			}, nil
		}
	}
	return nil, awserr.InvalidParameterValue("The filter '%s' is invalid", name)
}

func matchAny(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if wildcardMatch(p, v) {
				return true
			}
		}
	}
	return false
}

// wildcardMatch is EC2's filter value matching: * any run, ? one character,
// a backslash escapes either.
func wildcardMatch(pattern, s string) bool {
	p := []rune(pattern)
	r := []rune(s)
	// Iterative matching with backtracking to the last star: linear in
	// practice and never recursive, so hostile patterns cannot blow the stack.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(r) {
		if pi < len(p) {
			c, lit := p[pi], false
			width := 1
			if c == '\\' && pi+1 < len(p) {
				c, lit, width = p[pi+1], true, 2
			}
			switch {
			case !lit && c == '*':
				star, mark = pi, si
				pi++
				continue
			case (!lit && c == '?') || c == r[si]:
				pi += width
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// optValue is the filter value of an optional field: none when it is empty,
// so that no pattern, not even *, matches it.
func optValue(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// boolString is how filter values spell booleans.
func boolString(b bool) string { return strconv.FormatBool(b) }

// paginate cuts one page out of items for calls that take MaxResults and
// NextToken. The token is the offset of the next item: opaque enough, since
// every Describe returns its items in a stable order.
func paginate[T any](items []T, p queryapi.Params, minResults, maxResults int) ([]T, string, error) {
	n, set, err := p.Int("MaxResults")
	if err != nil {
		return nil, "", err
	}
	start := 0
	if tok := p.String("NextToken"); tok != "" {
		v, err := strconv.Atoi(tok)
		if err != nil || v < 0 || v > len(items) {
			return nil, "", awserr.New("InvalidPaginationToken", "The pagination token %q is invalid.", tok)
		}
		start = v
	}
	if !set {
		return items[start:], "", nil
	}
	if n < int64(minResults) || n > int64(maxResults) {
		return nil, "", awserr.InvalidParameterValue("Value ( %d ) for parameter maxResults is invalid. Parameter must be between %d and %d.", n, minResults, maxResults)
	}
	end := start + int(n)
	if end >= len(items) {
		return items[start:], "", nil
	}
	return items[start:end], strconv.Itoa(end), nil
}

// tagItem is a tag as EC2 responses nest it (tagSet>item).
type tagItem struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagItems(tags []store.Tag) []tagItem {
	out := make([]tagItem, len(tags))
	for i, t := range tags {
		out[i] = tagItem{Key: t.Key, Value: t.Value}
	}
	return out
}
