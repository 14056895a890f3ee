package policy

import (
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Condition is one key of one operator of a Condition block: all the
// conditions of a statement must hold; one of a condition's values must
// match (none, for a negated operator).
type Condition struct {
	Operator string // as written: StringLike, ForAnyValue:StringEqualsIfExists, ...
	Key      string // lower case: aws:sourceip
	Values   []string

	base     string // the operator without set prefix and IfExists
	kind     opKind
	negated  bool
	ifExists bool
	set      setOp
}

type opKind int

const (
	opString opKind = iota
	opStringFold
	opStringLike
	opNumeric
	opDate
	opBool
	opBinary
	opIP
	opARN
	opNull
)

// setOp is the set operator of a condition on a key with many values.
type setOp int

const (
	setNone setOp = iota
	setAnyValue
	setAllValues
)

// comparison is how a numeric or date operator compares the request's
// value with the policy's.
type comparison int

const (
	cmpEq comparison = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type operatorDef struct {
	kind    opKind
	negated bool
	cmp     comparison
}

// operators are IAM's condition operators.
var operators = map[string]operatorDef{
	"StringEquals":              {kind: opString},
	"StringNotEquals":           {kind: opString, negated: true},
	"StringEqualsIgnoreCase":    {kind: opStringFold},
	"StringNotEqualsIgnoreCase": {kind: opStringFold, negated: true},
	"StringLike":                {kind: opStringLike},
	"StringNotLike":             {kind: opStringLike, negated: true},
	"NumericEquals":             {kind: opNumeric},
	"NumericNotEquals":          {kind: opNumeric, negated: true},
	"NumericLessThan":           {kind: opNumeric, cmp: cmpLt},
	"NumericLessThanEquals":     {kind: opNumeric, cmp: cmpLe},
	"NumericGreaterThan":        {kind: opNumeric, cmp: cmpGt},
	"NumericGreaterThanEquals":  {kind: opNumeric, cmp: cmpGe},
	"DateEquals":                {kind: opDate},
	"DateNotEquals":             {kind: opDate, negated: true},
	"DateLessThan":              {kind: opDate, cmp: cmpLt},
	"DateLessThanEquals":        {kind: opDate, cmp: cmpLe},
	"DateGreaterThan":           {kind: opDate, cmp: cmpGt},
	"DateGreaterThanEquals":     {kind: opDate, cmp: cmpGe},
	"Bool":                      {kind: opBool},
	"BinaryEquals":              {kind: opBinary},
	"IpAddress":                 {kind: opIP},
	"NotIpAddress":              {kind: opIP, negated: true},
	"ArnEquals":                 {kind: opARN},
	"ArnLike":                   {kind: opARN},
	"ArnNotEquals":              {kind: opARN, negated: true},
	"ArnNotLike":                {kind: opARN, negated: true},
	"Null":                      {kind: opNull},
}

// conditionKey is a global (aws:) or S3 (s3:) condition key; what follows
// a tag key's slash may be any text.
var conditionKey = regexp.MustCompile(`^(?i:aws|s3):[A-Za-z0-9_-]+(/.+)?$`)

// maxConditionValues bounds the values of one condition key.
const maxConditionValues = 1000

func parseConditions(v any) ([]Condition, error) {
	block, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("Condition must be an object of operators")
	}
	var out []Condition
	for _, opName := range sortedKeys(block) {
		def, base, ifExists, set, err := parseOperator(opName)
		if err != nil {
			return nil, err
		}
		keys, ok := block[opName].(map[string]any)
		if !ok || len(keys) == 0 {
			return nil, malformed("Condition %s must be an object of condition keys", opName)
		}
		for _, key := range sortedKeys(keys) {
			if !conditionKey.MatchString(key) {
				return nil, malformed("Policy has an invalid condition key: %q", key)
			}
			values, err := conditionValues(keys[key], opName, key)
			if err != nil {
				return nil, err
			}
			c := Condition{Operator: opName, Key: strings.ToLower(key), Values: values,
				base: base, kind: def.kind, negated: def.negated, ifExists: ifExists, set: set}
			for _, val := range values {
				if !c.validValue(val) {
					return nil, malformed("Invalid value %q for condition %s on %s", val, opName, key)
				}
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func parseOperator(name string) (def operatorDef, base string, ifExists bool, set setOp, err error) {
	base = name
	if rest, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
		base, set = rest, setAnyValue
	} else if rest, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
		base, set = rest, setAllValues
	}
	if rest, ok := strings.CutSuffix(base, "IfExists"); ok && rest != "Null" {
		base, ifExists = rest, true
	}
	def, ok := operators[base]
	if !ok {
		return def, base, false, set, malformed("Invalid Condition type: %s", name)
	}
	return def, base, ifExists, set, nil
}

// conditionValues reads a condition's values: a string, number or boolean,
// or a non-empty list of them.
func conditionValues(v any, op, key string) ([]string, error) {
	scalar := func(e any) (string, bool) {
		switch e := e.(type) {
		case string:
			return e, true
		case json.Number:
			return e.String(), true
		case bool:
			return strconv.FormatBool(e), true
		}
		return "", false
	}
	if s, ok := scalar(v); ok {
		return []string{s}, nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 || len(list) > maxConditionValues {
		return nil, malformed("Condition %s on %s must have a value or a list of up to %d values", op, key, maxConditionValues)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := scalar(e)
		if !ok {
			return nil, malformed("Condition %s on %s has a value that is not a string, number or boolean", op, key)
		}
		out = append(out, s)
	}
	return out, nil
}

func (c *Condition) validValue(v string) bool {
	switch c.kind {
	case opNumeric:
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	case opDate:
		_, ok := parseDate(v)
		return ok
	case opBool, opNull:
		return strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
	case opBinary:
		_, err := base64.StdEncoding.DecodeString(v)
		return err == nil
	case opIP:
		_, ok := parsePrefix(v)
		return ok
	}
	return true
}

// parseDate reads an ISO 8601 date or time, or seconds since the epoch.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)).UTC(), true
	}
	return time.Time{}, false
}

// parsePrefix reads a CIDR block or a single address.
func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// eval reports whether the condition holds for the request's context.
func (c *Condition) eval(vars bool, ctx map[string][]string) bool {
	got := ctx[c.Key]
	if c.kind == opNull {
		// Null: "true" holds when the key is absent, "false" when present.
		for _, v := range c.Values {
			if strings.EqualFold(v, "true") == (len(got) == 0) {
				return true
			}
		}
		return false
	}
	if len(got) == 0 {
		switch {
		case c.ifExists:
			return true
		case c.set == setAllValues:
			return true // every one of no values matches
		case c.set == setAnyValue:
			return false
		}
		// An absent key matches no value: a negated operator holds.
		return c.negated
	}
	ok := func(v string) bool { return c.matchValue(vars, ctx, v) != c.negated }
	some, all := false, true
	for _, v := range got {
		if ok(v) {
			some = true
		} else {
			all = false
		}
	}
	switch c.set {
	case setAnyValue:
		return some
	case setAllValues:
		return all
	}
	if c.negated {
		return all
	}
	return some
}

// matchValue reports whether the request's value v matches one of the
// condition's values under the operator without its negation.
func (c *Condition) matchValue(vars bool, ctx map[string][]string, v string) bool {
	for _, want := range c.Values {
		switch c.kind {
		case opString:
			if w, ok := substitute(want, vars, ctx); ok && v == w {
				return true
			}
		case opStringFold:
			if w, ok := substitute(want, vars, ctx); ok && strings.EqualFold(v, w) {
				return true
			}
		case opStringLike, opARN:
			if pat, ok := compile(want, vars, ctx); ok && pat.match(v, false) {
				return true
			}
		case opNumeric:
			a, err1 := strconv.ParseFloat(v, 64)
			b, err2 := strconv.ParseFloat(want, 64)
			if err1 == nil && err2 == nil && compare(cmpOf(c.base), a, b) {
				return true
			}
		case opDate:
			a, ok1 := parseDate(v)
			b, ok2 := parseDate(want)
			if ok1 && ok2 && compare(cmpOf(c.base), float64(a.UnixNano()), float64(b.UnixNano())) {
				return true
			}
		case opBool:
			if strings.EqualFold(v, want) {
				return true
			}
		case opBinary:
			if v == want {
				return true
			}
		case opIP:
			addr, err := netip.ParseAddr(v)
			p, ok := parsePrefix(want)
			if err == nil && ok && p.Contains(addr.Unmap()) {
				return true
			}
		}
	}
	return false
}

func cmpOf(base string) comparison { return operators[base].cmp }

func compare(c comparison, a, b float64) bool {
	switch c {
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return a == b
}

// substitute replaces the policy variables of an exact-match value.
func substitute(s string, vars bool, ctx map[string][]string) (string, bool) {
	if !vars || !strings.Contains(s, "${") {
		return s, true
	}
	p, ok := compile(s, true, ctx)
	if !ok {
		return "", false
	}
	var b strings.Builder
	for _, r := range p {
		switch r {
		case star:
			b.WriteByte('*')
		case one:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), true
}
