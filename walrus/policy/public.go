package policy

import (
	"strings"
)

// fixedKeys are the condition keys that, given a fixed value, limit a
// statement to known parties, so that S3 does not count it as public
// (AWS's "The meaning of public" in Blocking public access).
var fixedKeys = map[string]bool{
	"aws:sourcearn":        true,
	"aws:sourcevpc":        true,
	"aws:sourcevpce":       true,
	"aws:sourceowner":      true,
	"aws:sourceaccount":    true,
	"aws:userid":           true,
	"aws:principalarn":     true,
	"aws:principalorgid":   true,
	"aws:principalaccount": true,
	"s3:x-amz-server-side-encryption-aws-kms-key-id": true,
}

// badActions are the actions S3 counts as exposing a bucket's data: a
// statement that grants none of them to everyone is not public.
var badActions = []string{"s3:Get*", "s3:List*", "s3:AbortMultipartUpload", "s3:Delete*", "s3:Put*", "s3:RestoreObject"}

// IsPublic reports whether S3 would call the policy public (what
// GetBucketPolicyStatus answers, and what BlockPublicPolicy refuses and
// RestrictPublicBuckets restricts): it allows one of the "bad" actions to
// a principal that is not fixed (everyone, or everyone but some), and no
// condition limits it to fixed parties or to a set of address ranges.
func (p *Policy) IsPublic() bool {
	for i := range p.Statements {
		if p.Statements[i].isPublic() {
			return true
		}
	}
	return false
}

func (s *Statement) isPublic() bool {
	if s.Effect != Allow {
		return false
	}
	if !s.NotPrincipal && !s.Principals.Any {
		return false
	}
	if !s.NotAction && !s.grantsBadAction() {
		return false
	}
	for _, c := range s.Conditions {
		if c.limits() {
			return false
		}
	}
	return true
}

// grantsBadAction reports whether one of the statement's actions may be a
// bad action; a wildcard other than a bad action's own counts as one, and
// so does any wildcard before a pattern's last character.
func (s *Statement) grantsBadAction() bool {
	for _, a := range s.Actions {
		if a == "*" || (hasWildcard(a) && !strings.HasSuffix(a, "*")) {
			return true
		}
		if strings.HasSuffix(a, "*") {
			// A prefix: bad when a bad action starts with it, or it
			// starts with a bad prefix.
			prefix := strings.ToLower(strings.TrimSuffix(a, "*"))
			if hasWildcard(prefix) {
				// s3:G*t* or s3:?et*: no plain prefix to compare.
				return true
			}
			for _, b := range badActions {
				lb := strings.ToLower(strings.TrimSuffix(b, "*"))
				if strings.HasPrefix(lb, prefix) || strings.HasPrefix(prefix, lb) {
					return true
				}
			}
			continue
		}
		if matchAny(badActions, a, true) {
			return true
		}
	}
	return false
}

// limits reports whether the condition confines the statement to fixed
// parties (a fixed-key with a value without wildcards), or to addresses
// (aws:SourceIp, ranges no wider than /8 for IPv4 and /32 for IPv6).
// Conditions that hold when their key is absent limit nothing.
func (c *Condition) limits() bool {
	if c.ifExists || c.negated || c.set == setAllValues {
		return false
	}
	if c.Key == "aws:sourceip" {
		if c.kind != opIP {
			return false
		}
		for _, v := range c.Values {
			p, ok := parsePrefix(v)
			if !ok {
				return false
			}
			if (p.Addr().Is4() && p.Bits() < 8) || (!p.Addr().Is4() && p.Bits() < 32) {
				return false
			}
		}
		return true
	}
	if !fixedKeys[c.Key] {
		return false
	}
	switch c.kind {
	case opString, opStringFold, opStringLike, opARN:
	default:
		return false
	}
	for _, v := range c.Values {
		if hasWildcard(v) || strings.Contains(v, "${") {
			return false
		}
	}
	return true
}
