package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Error is a policy S3 would refuse; Msg names the problem (S3 answers it
// as MalformedPolicy).
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func malformed(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

// ARN prefix of S3 resources.
const arnPrefix = "arn:aws:s3:::"

// Parse reads and validates a bucket policy for bucket.
func Parse(doc []byte, bucket string) (*Policy, error) {
	if len(doc) > MaxSize {
		return nil, malformed("Policies must not exceed %d bytes; this one has %d.", MaxSize, len(doc))
	}
	trimmed := bytes.TrimSpace(doc)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, malformed("Policies must be valid JSON and the first byte must be '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, malformed("Policies must be valid JSON and the first byte must be '{': %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("Policies must be valid JSON: there is more after the policy's closing brace")
	}
	p := &Policy{Version: Version2008}
	for _, k := range sortedKeys(top) {
		switch k {
		case "Version", "Id", "Statement":
		default:
			return nil, malformed("Unknown field %s", k)
		}
	}
	if v, ok := top["Version"]; ok {
		s, isString := v.(string)
		if !isString || (s != Version2012 && s != Version2008) {
			return nil, malformed("Invalid policy version %v: it must be %s or %s", v, Version2012, Version2008)
		}
		p.Version = s
	}
	if v, ok := top["Id"]; ok {
		s, isString := v.(string)
		if !isString {
			return nil, malformed("Id must be a string")
		}
		p.ID = s
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, malformed("Missing required field Statement")
	}
	var stmts []any
	switch v := raw.(type) {
	case map[string]any:
		stmts = []any{v}
	case []any:
		stmts = v
	default:
		return nil, malformed("Statement must be an object or a list of objects")
	}
	if len(stmts) == 0 {
		return nil, malformed("Missing required field Statement: the list is empty")
	}
	sids := map[string]bool{}
	for i, raw := range stmts {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, malformed("Statement %d must be an object", i+1)
		}
		s, err := parseStatement(m, bucket)
		if err != nil {
			var pe *Error
			if errors.As(err, &pe) && len(stmts) > 1 {
				label := fmt.Sprintf("statement %d", i+1)
				if sid, _ := m["Sid"].(string); sid != "" {
					label = fmt.Sprintf("statement %q", sid)
				}
				return nil, malformed("%s (in %s)", pe.Msg, label)
			}
			return nil, err
		}
		if s.Sid != "" {
			if sids[s.Sid] {
				return nil, malformed("Statement IDs (SID) in a single policy must be unique: %q is repeated", s.Sid)
			}
			sids[s.Sid] = true
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "the document is not a JSON object"
	}
	return err.Error()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseStatement(m map[string]any, bucket string) (Statement, error) {
	var s Statement
	for _, k := range sortedKeys(m) {
		switch k {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			return s, malformed("Unknown field %s", k)
		}
	}
	if v, ok := m["Sid"]; ok {
		sid, isString := v.(string)
		if !isString {
			return s, malformed("Sid must be a string")
		}
		s.Sid = sid
	}
	effect, ok := m["Effect"]
	if !ok {
		return s, malformed("Missing required field Effect")
	}
	if e, _ := effect.(string); e != Allow && e != Deny {
		return s, malformed("Invalid effect: %v (it must be Allow or Deny)", effect)
	}
	s.Effect = effect.(string)

	pr, hasP := m["Principal"]
	npr, hasNP := m["NotPrincipal"]
	switch {
	case hasP && hasNP:
		return s, malformed("A statement cannot have both Principal and NotPrincipal")
	case !hasP && !hasNP:
		return s, malformed("Missing required field Principal")
	case hasNP:
		pr, s.NotPrincipal = npr, true
	}
	var err error
	if s.Principals, err = parsePrincipals(pr); err != nil {
		return s, err
	}

	if s.Actions, s.NotAction, err = pair(m, "Action", "NotAction"); err != nil {
		return s, err
	}
	for _, a := range s.Actions {
		if !validAction(a) {
			return s, malformed("Policy has invalid action: %q", a)
		}
	}
	if s.Resources, s.NotResource, err = pair(m, "Resource", "NotResource"); err != nil {
		return s, err
	}
	for _, r := range s.Resources {
		if !validResource(r, bucket) {
			return s, malformed("Policy has invalid resource: %q is not bucket %s or an object in it", r, bucket)
		}
	}
	if !s.NotAction && !s.NotResource {
		for _, a := range s.Actions {
			if !actionFitsResources(a, s.Resources) {
				return s, malformed("Action does not apply to any resource(s) in statement: %s", a)
			}
		}
	}
	if c, ok := m["Condition"]; ok {
		if s.Conditions, err = parseConditions(c); err != nil {
			return s, err
		}
	}
	return s, nil
}

// pair reads an element that has a negated twin (Action/NotAction): a
// string or a non-empty list of strings, exactly one of the two present.
func pair(m map[string]any, name, notName string) ([]string, bool, error) {
	v, has := m[name]
	nv, hasNot := m[notName]
	switch {
	case has && hasNot:
		return nil, false, malformed("A statement cannot have both %s and %s", name, notName)
	case !has && !hasNot:
		return nil, false, malformed("Missing required field %s", name)
	case hasNot:
		v, name = nv, notName
	}
	list, err := stringList(v, name)
	return list, hasNot, err
}

// stringList reads a string or a non-empty list of strings.
func stringList(v any, field string) ([]string, error) {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil, malformed("%s must not be empty", field)
		}
		return []string{v}, nil
	case []any:
		if len(v) == 0 {
			return nil, malformed("%s must not be an empty list", field)
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, malformed("%s must hold only non-empty strings", field)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, malformed("%s must be a string or a list of strings", field)
}

// actionName is what may follow "s3:" in an action: letters, digits and
// wildcards.
var actionName = regexp.MustCompile(`^[A-Za-z0-9*?]+$`)

func validAction(a string) bool {
	if a == "*" {
		return true
	}
	svc, name, ok := strings.Cut(a, ":")
	return ok && strings.EqualFold(svc, "s3") && actionName.MatchString(name)
}

// validResource accepts "*" and ARNs of the bucket or of objects in it
// (wildcards allowed where they still name this bucket).
func validResource(r, bucket string) bool {
	if r == "*" {
		return true
	}
	rest, ok := strings.CutPrefix(r, arnPrefix)
	if !ok || rest == "" {
		return false
	}
	pat, _ := compile(bucketOf(rest), false, nil)
	return pat.match(bucket, false)
}

// accountID is an AWS account id: 12 digits.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// iamARN is an ARN that names a caller: an account's root, a user, a role,
// or an assumed role's session.
var iamARN = regexp.MustCompile(`^arn:aws:(iam::[0-9]{12}:(root|user/.+|role/.+)|sts::[0-9]{12}:(assumed-role|federated-user)/.+)$`)

func parsePrincipals(v any) (Principals, error) {
	var ps Principals
	bad := func(p any) error { return malformed("Invalid principal in policy: %v", p) }
	switch v := v.(type) {
	case string:
		if v != "*" {
			return ps, bad(v)
		}
		ps.Any = true
		return ps, nil
	case map[string]any:
		if len(v) == 0 {
			return ps, bad("{}")
		}
		for _, kind := range sortedKeys(v) {
			list, err := stringList(v[kind], "Principal "+kind)
			if err != nil {
				return ps, err
			}
			for _, p := range list {
				switch kind {
				case "AWS":
					switch {
					case p == "*":
						ps.Any = true
					case accountID.MatchString(p), iamARN.MatchString(p) && !hasWildcard(p):
						ps.AWS = append(ps.AWS, p)
					default:
						return ps, bad(p)
					}
				case "CanonicalUser":
					if hasWildcard(p) {
						return ps, bad(p)
					}
					ps.Canonical = append(ps.Canonical, p)
				case "Service", "Federated":
					if p == "*" {
						ps.Any = true
						continue
					}
					ps.Others = append(ps.Others, p)
				default:
					return ps, malformed("Invalid principal in policy: unknown principal type %q", kind)
				}
			}
		}
		return ps, nil
	}
	return ps, bad(v)
}

// Resource kinds an action applies to.
type resourceKind int

const (
	kindBucket resourceKind = 1 << iota
	kindObject
)

// objectActions are the actions on objects (arn:aws:s3:::bucket/key); the
// other s3 actions a bucket policy may name are on the bucket. From AWS's
// "Actions, resources, and condition keys for Amazon S3".
var objectActions = map[string]bool{}

func init() {
	for _, a := range []string{
		"AbortMultipartUpload", "BypassGovernanceRetention", "DeleteObject", "DeleteObjectTagging",
		"DeleteObjectVersion", "DeleteObjectVersionTagging", "GetObject", "GetObjectAcl", "GetObjectAttributes",
		"GetObjectLegalHold", "GetObjectRetention", "GetObjectTagging", "GetObjectTorrent", "GetObjectVersion",
		"GetObjectVersionAcl", "GetObjectVersionAttributes", "GetObjectVersionForReplication",
		"GetObjectVersionTagging", "GetObjectVersionTorrent", "InitiateReplication", "ListMultipartUploadParts",
		"ObjectOwnerOverrideToBucketOwner", "PutObject", "PutObjectAcl", "PutObjectLegalHold",
		"PutObjectRetention", "PutObjectTagging", "PutObjectVersionAcl", "PutObjectVersionTagging",
		"ReplicateDelete", "ReplicateObject", "ReplicateTags", "RestoreObject",
	} {
		objectActions[strings.ToLower(a)] = true
	}
}

// bucketActionPrefixes start the names of bucket actions, for the check
// that an action fits the statement's resources.
var bucketActionPrefixes = []string{"listbucket", "getbucket", "putbucket", "deletebucket", "createbucket",
	"getlifecycle", "putlifecycle", "getencryption", "putencryption", "getreplication", "putreplication",
	"getaccelerate", "putaccelerate", "getanalytics", "putanalytics", "getinventory", "putinventory",
	"getmetrics", "putmetrics", "getintelligenttiering", "putintelligenttiering"}

// kindOf is the resource kind a concrete action applies to; 0 when the
// action is a pattern or unknown here (then it is not checked).
func kindOf(action string) resourceKind {
	_, name, _ := strings.Cut(strings.ToLower(action), ":")
	if hasWildcard(action) || name == "" {
		return 0
	}
	if objectActions[name] {
		return kindObject
	}
	for _, p := range bucketActionPrefixes {
		if strings.HasPrefix(name, p) {
			return kindBucket
		}
	}
	return 0
}

// kinds are the resource kinds a Resource pattern can name.
func kinds(r string) resourceKind {
	rest, ok := strings.CutPrefix(r, arnPrefix)
	if r == "*" || !ok {
		return kindBucket | kindObject
	}
	var k resourceKind
	if !strings.Contains(rest, "/") {
		k |= kindBucket
	}
	if strings.Contains(rest, "/") || strings.Contains(rest, "*") {
		k |= kindObject
	}
	return k
}

// actionFitsResources refuses, as S3 does, an action on objects given only
// bucket resources, or an action on buckets given only object resources.
func actionFitsResources(action string, resources []string) bool {
	need := kindOf(action)
	if need == 0 {
		return true
	}
	for _, r := range resources {
		if kinds(r)&need != 0 {
			return true
		}
	}
	return false
}
