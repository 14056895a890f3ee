package walrus

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// postPolicy is a browser-based POST upload's policy document: when it
// expires and the conditions the form must meet
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html).
type postPolicy struct {
	expiration time.Time
	conds      []postCond
	// minSize and maxSize bound the file (content-length-range); maxSize
	// is -1 when the policy sets no range.
	minSize, maxSize int64
}

// postCond is one condition on a form field (lower-case name, without
// the "$"): op is "eq" or "starts-with".
type postCond struct {
	op, field, value string
}

func (c postCond) String() string {
	return fmt.Sprintf("[%q, %q, %q]", c.op, "$"+c.field, c.value)
}

func policyError(format string, args ...any) error {
	return s3Errorf("InvalidPolicyDocument", "Invalid Policy: "+format, args...)
}

// parsePostPolicy decodes the base64 policy field.
func parsePostPolicy(b64 string) (postPolicy, error) {
	p := postPolicy{maxSize: -1}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return p, policyError("Invalid Base64 encoding.")
	}
	var doc struct {
		Expiration *string           `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return p, policyError("Invalid JSON.")
	}
	if doc.Expiration == nil {
		return p, policyError("Policy missing expiration.")
	}
	if p.expiration, err = time.Parse(time.RFC3339, *doc.Expiration); err != nil {
		return p, policyError("Invalid 'expiration' value: '%s'", *doc.Expiration)
	}
	if doc.Conditions == nil {
		return p, policyError("Policy missing conditions.")
	}
	for _, c := range doc.Conditions {
		var obj map[string]string
		if json.Unmarshal(c, &obj) == nil {
			for k, v := range obj {
				p.conds = append(p.conds, postCond{"eq", strings.ToLower(k), v})
			}
			continue
		}
		var arr []any
		if json.Unmarshal(c, &arr) != nil || len(arr) != 3 {
			return p, policyError("Invalid 'conditions' value.")
		}
		op, _ := arr[0].(string)
		switch op = strings.ToLower(op); op {
		case "eq", "starts-with":
			field, ok1 := arr[1].(string)
			value, ok2 := arr[2].(string)
			if !ok1 || !ok2 || !strings.HasPrefix(field, "$") {
				return p, policyError("Invalid '%s' condition.", op)
			}
			p.conds = append(p.conds, postCond{op, strings.ToLower(field[1:]), value})
		case "content-length-range":
			lo, ok1 := policyInt(arr[1])
			hi, ok2 := policyInt(arr[2])
			if !ok1 || !ok2 || lo < 0 || hi < lo {
				return p, policyError("Invalid content-length-range condition.")
			}
			p.minSize, p.maxSize = lo, hi
		default:
			return p, policyError("Unknown condition type '%v'.", arr[0])
		}
	}
	return p, nil
}

func policyInt(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n))
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}

// postExempt are the fields no condition needs to name: the signature
// and what it signs, the file, and x-ignore-* (AWS's list for SigV4; the
// SigV2 fields are exempt the same way).
func postExempt(name string) bool {
	switch name {
	case "policy", "file", "x-amz-signature", "signature", "awsaccesskeyid":
		return true
	}
	return strings.HasPrefix(name, "x-ignore-")
}

// check applies the policy to a form's fields (lower-case names; values
// after ${filename} expansion; several values of one name joined by
// commas) for an upload into bucket: every condition must hold, and every
// field but the exempt ones must be named by a condition.
func (p postPolicy) check(fields map[string]string, bucket string, now time.Time) error {
	if !now.Before(p.expiration) {
		return s3Errorf("AccessDenied", "Invalid according to Policy: Policy expired.")
	}
	named := map[string]bool{}
	for _, c := range p.conds {
		v := fields[c.field]
		if c.field == "bucket" {
			// The bucket is the one the form is posted to, never a
			// field the sender chose: a policy signed for one bucket
			// must not upload into another.
			v = bucket
		}
		named[c.field] = true
		held := v == c.value
		if c.op == "starts-with" {
			held = strings.HasPrefix(v, c.value)
		}
		if !held {
			return s3Errorf("AccessDenied", "Invalid according to Policy: Policy Condition failed: %s", c)
		}
	}
	var extra []string
	for name := range fields {
		if !named[name] && !postExempt(name) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return s3Errorf("AccessDenied", "Invalid according to Policy: Extra input fields: %s", strings.Join(extra, ", "))
	}
	return nil
}
