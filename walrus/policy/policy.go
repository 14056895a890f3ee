// Package policy parses, validates and evaluates S3 bucket policies, the
// JSON documents of PutBucketPolicy. It does no I/O: Walrus hands it the
// stored document and one request (who asks, for which action on which
// resource, with which condition keys) and it answers Allowed, Denied or
// NotApplicable. Combining that answer with the ACLs, the ownership
// controls and the public access block is Walrus's job.
//
// A policy is untrusted input: Parse refuses what S3 refuses, with a
// message naming the problem, and bounds what it accepts (size, and a
// wildcard matcher whose cost is linear in its inputs' product, never
// exponential).
package policy

import (
	"strings"
)

// MaxSize is the largest policy S3 accepts: 20 KB.
const MaxSize = 20 * 1024

// The versions of the policy language. Policy variables (${aws:username})
// exist only in the newer one.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Effects of a statement.
const (
	Allow = "Allow"
	Deny  = "Deny"
)

// Decision is what a policy says of a request.
type Decision int

const (
	// NotApplicable: no statement speaks of the request; the ACLs decide.
	NotApplicable Decision = iota
	// Allowed: a statement allows it and none denies it.
	Allowed
	// Denied: a statement denies it. An explicit deny wins over every
	// allow, from the policy or from an ACL.
	Denied
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "Allowed"
	case Denied:
		return "Denied"
	}
	return "NotApplicable"
}

// Policy is a parsed, validated bucket policy.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect string
	// Principals is the Principal element, or NotPrincipal's when
	// NotPrincipal is true.
	Principals   Principals
	NotPrincipal bool
	// Actions are the Action patterns, or NotAction's.
	Actions   []string
	NotAction bool
	// Resources are the Resource patterns, or NotResource's.
	Resources   []string
	NotResource bool
	Conditions  []Condition
}

// Principals is a Principal element.
type Principals struct {
	// Any: "*" or {"AWS": "*"}: everyone, anonymous callers included.
	Any bool
	// AWS are account ids and IAM ARNs.
	AWS []string
	// Canonical are canonical user ids (on this cloud, account ids).
	Canonical []string
	// Others are service and federated principals: never a caller here.
	Others []string
}

// Request is one request as a policy sees it.
type Request struct {
	// Anonymous: no signature; Account and ARN are empty.
	Anonymous bool
	Account   string // the caller's account id
	ARN       string // the caller's ARN: arn:aws:iam::ACCOUNT:root or :user/NAME
	Action    string // s3:GetObject
	Resource  string // arn:aws:s3:::bucket or arn:aws:s3:::bucket/key
	// Context holds the request's condition keys, by lower-case name
	// (aws:sourceip, s3:prefix, ...). A key that is absent is not there.
	Context map[string][]string
}

// Evaluate decides what the policy says of r: Denied when a statement that
// applies denies it, Allowed when one allows it and none denies it.
func (p *Policy) Evaluate(r Request) Decision {
	d := NotApplicable
	for i := range p.Statements {
		s := &p.Statements[i]
		if !s.applies(p.Version, r) {
			continue
		}
		if s.Effect == Deny {
			return Denied
		}
		d = Allowed
	}
	return d
}

// applies reports whether every element of the statement matches r.
func (s *Statement) applies(version string, r Request) bool {
	if s.Principals.match(r) == s.NotPrincipal {
		return false
	}
	if matchAny(s.Actions, r.Action, true) == s.NotAction {
		return false
	}
	vars := version == Version2012
	matched := false
	for _, res := range s.Resources {
		pat, ok := compile(res, vars, r.Context)
		if ok && pat.match(r.Resource, false) {
			matched = true
			break
		}
	}
	if matched == s.NotResource {
		return false
	}
	for _, c := range s.Conditions {
		if !c.eval(vars, r.Context) {
			return false
		}
	}
	return true
}

// match reports whether the caller is one of the principals.
func (ps Principals) match(r Request) bool {
	if ps.Any {
		return true
	}
	if r.Anonymous {
		return false
	}
	for _, p := range ps.AWS {
		switch {
		case p == r.Account:
			return true
		case p == "arn:aws:iam::"+r.Account+":root":
			// The account: every user of it (this cloud has no user
			// policies to narrow it further).
			return true
		case r.ARN != "" && p == r.ARN:
			return true
		}
	}
	for _, c := range ps.Canonical {
		if c == r.Account {
			return true
		}
	}
	return false
}

// AccountOf is the account an AWS principal names: an account id, or the
// account of an ARN. ok is false for "*".
func AccountOf(p string) (string, bool) {
	if accountID.MatchString(p) {
		return p, true
	}
	if rest, ok := strings.CutPrefix(p, "arn:aws:"); ok {
		_, rest, _ = strings.Cut(rest, "::") // the service: iam or sts
		id, _, _ := strings.Cut(rest, ":")
		return id, accountID.MatchString(id)
	}
	return "", false
}

// matchAny reports whether one of the patterns matches s.
func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		pat, _ := compile(p, false, nil)
		if pat.match(s, fold) {
			return true
		}
	}
	return false
}

// bucketOf is the bucket part of an S3 resource ARN's rest.
func bucketOf(rest string) string {
	b, _, _ := strings.Cut(rest, "/")
	return b
}
