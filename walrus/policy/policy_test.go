package policy

import (
	"errors"
	"strings"
	"testing"
)

const bucket = "photos"

// doc wraps statements in a 2012-10-17 policy.
func doc(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func mustParse(t *testing.T, d string) *Policy {
	t.Helper()
	p, err := Parse([]byte(d), bucket)
	if err != nil {
		t.Fatalf("Parse(%s): %v", d, err)
	}
	return p
}

// Callers of the tests.
var (
	anon  = Request{Anonymous: true}
	alice = Request{Account: "111122223333", ARN: "arn:aws:iam::111122223333:user/admin"}
	bob   = Request{Account: "444455556666", ARN: "arn:aws:iam::444455556666:user/bob"}
)

func req(who Request, action, resource string, ctx map[string][]string) Request {
	who.Action, who.Resource, who.Context = action, resource, ctx
	return who
}

const (
	objARN    = "arn:aws:s3:::photos/2024/cat.jpg"
	bucketARN = "arn:aws:s3:::photos"
)

func TestParseRefuses(t *testing.T) {
	allowAll := `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`
	cases := []struct {
		name, doc, want string
	}{
		{"not json", `{"Version":`, "valid JSON"},
		{"not an object", `["x"]`, "first byte must be '{'"},
		{"trailing", `{"Statement":[` + allowAll + `]} x`, "more after"},
		{"no statement", `{"Version":"2012-10-17"}`, "Missing required field Statement"},
		{"empty statements", `{"Statement":[]}`, "Missing required field Statement"},
		{"statement not object", `{"Statement":["x"]}`, "must be an object"},
		{"unknown top field", `{"Statment":[]}`, "Unknown field Statment"},
		{"bad version", `{"Version":"2015-01-25","Statement":[` + allowAll + `]}`, "Invalid policy version"},
		{"unknown statement field", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Actions":"x"}`), "Unknown field Actions"},
		{"no effect", doc(`{"Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "Missing required field Effect"},
		{"bad effect", doc(`{"Effect":"allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "Invalid effect"},
		{"no principal", doc(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "Missing required field Principal"},
		{"both principals", doc(`{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "both Principal and NotPrincipal"},
		{"principal string", doc(`{"Effect":"Allow","Principal":"bob","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "Invalid principal"},
		{"principal partial wildcard", doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::*:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "Invalid principal"},
		{"principal bad account", doc(`{"Effect":"Allow","Principal":{"AWS":"1234"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "Invalid principal"},
		{"principal unknown type", doc(`{"Effect":"Allow","Principal":{"Group":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "unknown principal type"},
		{"no action", doc(`{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::photos/*"}`), "Missing required field Action"},
		{"both actions", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}`), "both Action and NotAction"},
		{"other service", doc(`{"Effect":"Allow","Principal":"*","Action":"ec2:RunInstances","Resource":"arn:aws:s3:::photos/*"}`), "Policy has invalid action"},
		{"action syntax", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:Get Object","Resource":"arn:aws:s3:::photos/*"}`), "Policy has invalid action"},
		{"empty action list", doc(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::photos/*"}`), "empty list"},
		{"no resource", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}`), "Missing required field Resource"},
		{"other bucket", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::videos/*"}`), "Policy has invalid resource"},
		{"not an s3 arn", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:ec2:::photos/*"}`), "Policy has invalid resource"},
		{"object action on bucket", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos"}`), "Action does not apply to any resource(s) in statement"},
		{"bucket action on objects", doc(`{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::photos/*"}`), "Action does not apply to any resource(s) in statement: s3:ListBucket"},
		{"duplicate sid", doc(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`, `{"Sid":"a","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`), "must be unique"},
		{"unknown operator", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEqualz":{"aws:Referer":"x"}}}`), "Invalid Condition type: StringEqualz"},
		{"bad condition key", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"Referer":"x"}}}`), "invalid condition key"},
		{"bad ip", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}`), "Invalid value"},
		{"bad bool", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}`), "Invalid value"},
		{"bad date", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}`), "Invalid value"},
		{"bad number", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}`), "Invalid value"},
		{"condition value object", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"aws:Referer":{"a":"b"}}}}`), "must have a value"},
		{"statement named in error", doc(`{"Sid":"ok","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`, `{"Sid":"broken","Effect":"Allow","Principal":"*","Action":"s3:GetObject"}`), `statement "broken"`},
		{"too large", `{"Statement":"` + strings.Repeat("x", MaxSize) + `"}`, "must not exceed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), bucket)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse: %v, want a policy error", err)
			}
			if !strings.Contains(pe.Msg, c.want) {
				t.Errorf("Parse: %q, want it to say %q", pe.Msg, c.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, d := range []string{
		// One statement as an object, no version (2008-10-17).
		`{"Statement":{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:root"]},"Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]}}`,
		// Leading white space, every principal kind, NotAction/NotResource.
		"\n  " + doc(`{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/admin","CanonicalUser":"111122223333","Service":"logging.s3.amazonaws.com"},"NotAction":"s3:Get*","NotResource":"arn:aws:s3:::photos/public/*"}`),
		// Wildcards in the bucket part, "*" resource, numbers and booleans as condition values.
		doc(`{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":["arn:aws:s3:::pho*","*"],"Condition":{"NumericLessThanEquals":{"s3:max-keys":100},"Bool":{"aws:SecureTransport":true}}}`),
		// Set operators, IfExists, Null.
		doc(`{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*","Condition":{"ForAnyValue:StringLike":{"s3:x-amz-grant-read":"*AllUsers*"},"StringNotEqualsIfExists":{"s3:x-amz-acl":"private"},"Null":{"aws:Referer":"true"}}}`),
	} {
		if _, err := Parse([]byte(d), bucket); err != nil {
			t.Errorf("Parse(%s): %v", d, err)
		}
	}
}

func TestEvaluateElements(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		r      Request
		want   Decision
	}{
		{"allow anyone", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Allowed},
		{"AWS * is anyone", doc(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Allowed},
		{"other action", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:PutObject", objARN, nil), NotApplicable},
		{"action case", doc(`{"Effect":"Allow","Principal":"*","Action":"S3:getobject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Allowed},
		{"action wildcard", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:Get*","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObjectAcl", objARN, nil), Allowed},
		{"action ?", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:?etObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Allowed},
		{"all actions", doc(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:DeleteObject", objARN, nil), Allowed},
		{"not action", doc(`{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:PutObject", objARN, nil), Denied},
		{"not action spares it", doc(`{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), NotApplicable},
		{"resource prefix", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/2024/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Allowed},
		{"resource elsewhere", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/2023/*"}`),
			req(anon, "s3:GetObject", objARN, nil), NotApplicable},
		{"resource case matters", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/2024/CAT.jpg"}`),
			req(anon, "s3:GetObject", objARN, nil), NotApplicable},
		{"resource ?", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/202?/*.jpg"}`),
			req(anon, "s3:GetObject", objARN, nil), Allowed},
		{"not resource", doc(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::photos/public/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Denied},
		{"not resource spares it", doc(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::photos/2024/*"}`),
			req(anon, "s3:GetObject", objARN, nil), NotApplicable},
		{"bucket resource", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos"}`),
			req(anon, "s3:ListBucket", bucketARN, nil), Allowed},
		{"account id", doc(`{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), Allowed},
		{"account id not anonymous", doc(`{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), NotApplicable},
		{"account root arn", doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), Allowed},
		{"other account", doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(alice, "s3:GetObject", objARN, nil), NotApplicable},
		{"user arn", doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), Allowed},
		{"other user", doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/carol"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), NotApplicable},
		{"canonical user", doc(`{"Effect":"Allow","Principal":{"CanonicalUser":"444455556666"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), Allowed},
		{"service never a caller", doc(`{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), NotApplicable},
		{"not principal", doc(`{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(bob, "s3:GetObject", objARN, nil), Denied},
		{"not principal spares it", doc(`{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`),
			req(alice, "s3:GetObject", objARN, nil), NotApplicable},
		{"deny wins", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}`, `{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/2024/cat.jpg"}`),
			req(anon, "s3:GetObject", objARN, nil), Denied},
		{"deny wins whatever its place", doc(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/2024/cat.jpg"}`, `{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}`),
			req(anon, "s3:GetObject", objARN, nil), Denied},
		{"variable", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/home/${aws:username}/*"}`),
			req(bob, "s3:GetObject", "arn:aws:s3:::photos/home/bob/x", map[string][]string{"aws:username": {"bob"}}), Allowed},
		{"variable is literal", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/home/${aws:username}/x"}`),
			req(bob, "s3:GetObject", "arn:aws:s3:::photos/home/bob/x", map[string][]string{"aws:username": {"*"}}), NotApplicable},
		{"variable absent", doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/home/${aws:username}/*"}`),
			req(anon, "s3:GetObject", "arn:aws:s3:::photos/home/bob/x", nil), NotApplicable},
		{"no variables in 2008", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/home/${aws:username}/*"}]}`,
			req(bob, "s3:GetObject", "arn:aws:s3:::photos/home/bob/x", map[string][]string{"aws:username": {"bob"}}), NotApplicable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mustParse(t, c.policy).Evaluate(c.r); got != c.want {
				t.Errorf("Evaluate = %v, want %v", got, c.want)
			}
		})
	}
}

// TestConditions checks every operator against a context, one condition
// at a time, through an Allow statement.
func TestConditions(t *testing.T) {
	ctx := map[string][]string{
		"aws:sourceip":        {"192.0.2.10"},
		"aws:securetransport": {"false"},
		"aws:referer":         {"http://www.example.com/page"},
		"aws:currenttime":     {"2026-06-01T12:00:00Z"},
		"aws:epochtime":       {"1780315200"},
		"s3:prefix":           {"home/bob/"},
		"s3:max-keys":         {"50"},
		"s3:x-amz-acl":        {"public-read"},
		"aws:principalarn":    {"arn:aws:iam::444455556666:user/bob"},
		"s3:x-amz-grant-read": {"uri=http://acs.amazonaws.com/groups/global/AllUsers", "id=111122223333"},
	}
	cases := []struct {
		cond string
		want bool
	}{
		{`{"StringEquals":{"s3:x-amz-acl":"public-read"}}`, true},
		{`{"StringEquals":{"s3:x-amz-acl":["private","public-read"]}}`, true},
		{`{"StringEquals":{"s3:x-amz-acl":"PUBLIC-READ"}}`, false},
		{`{"StringEquals":{"S3:X-Amz-Acl":"public-read"}}`, true}, // key names ignore case
		{`{"StringNotEquals":{"s3:x-amz-acl":"private"}}`, true},
		{`{"StringNotEquals":{"s3:x-amz-acl":["private","public-read"]}}`, false},
		{`{"StringEqualsIgnoreCase":{"s3:x-amz-acl":"PUBLIC-READ"}}`, true},
		{`{"StringNotEqualsIgnoreCase":{"s3:x-amz-acl":"PUBLIC-READ"}}`, false},
		{`{"StringLike":{"aws:Referer":"http://www.example.com/*"}}`, true},
		{`{"StringLike":{"aws:Referer":"http://example.com/*"}}`, false},
		{`{"StringNotLike":{"aws:Referer":"http://example.com/*"}}`, true},
		{`{"StringLike":{"s3:prefix":"home/${aws:username}/"}}`, false}, // no aws:username in the context
		{`{"NumericLessThan":{"s3:max-keys":"100"}}`, true},
		{`{"NumericLessThan":{"s3:max-keys":"50"}}`, false},
		{`{"NumericLessThanEquals":{"s3:max-keys":"50"}}`, true},
		{`{"NumericGreaterThan":{"s3:max-keys":"10"}}`, true},
		{`{"NumericGreaterThanEquals":{"s3:max-keys":"51"}}`, false},
		{`{"NumericEquals":{"s3:max-keys":"50.0"}}`, true},
		{`{"NumericNotEquals":{"s3:max-keys":"50"}}`, false},
		{`{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}`, true},
		{`{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01"}}`, false},
		{`{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-06-01T12:00:00Z"}}`, true},
		{`{"DateLessThanEquals":{"aws:CurrentTime":"1780315199"}}`, false},
		{`{"DateEquals":{"aws:EpochTime":"2026-06-01T12:00:00Z"}}`, true},
		{`{"DateNotEquals":{"aws:CurrentTime":"2026-06-01T12:00:00Z"}}`, false},
		{`{"Bool":{"aws:SecureTransport":"false"}}`, true},
		{`{"Bool":{"aws:SecureTransport":true}}`, false},
		{`{"BinaryEquals":{"s3:x-amz-acl":"cHVibGljLXJlYWQ="}}`, false},
		{`{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}`, true},
		{`{"IpAddress":{"aws:SourceIp":["198.51.100.0/24","192.0.2.10"]}}`, true},
		{`{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, false},
		{`{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}`, false},
		{`{"NotIpAddress":{"aws:SourceIp":"198.51.100.0/24"}}`, true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::444455556666:user/*"}}`, true},
		{`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::444455556666:user/carol"}}`, false},
		{`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:*"}}`, true},
		{`{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::444455556666:user/bob"}}`, false},
		{`{"Null":{"aws:Referer":"false"}}`, true},
		{`{"Null":{"aws:UserAgent":"true"}}`, true},
		{`{"Null":{"aws:UserAgent":"false"}}`, false},
		// Absent keys: a positive operator fails, a negated one holds,
		// IfExists holds.
		{`{"StringEquals":{"aws:UserAgent":"curl"}}`, false},
		{`{"StringNotEquals":{"aws:UserAgent":"curl"}}`, true},
		{`{"StringEqualsIfExists":{"aws:UserAgent":"curl"}}`, true},
		{`{"StringEqualsIfExists":{"s3:x-amz-acl":"private"}}`, false},
		{`{"NotIpAddressIfExists":{"aws:SourceIp":"192.0.2.0/24"}}`, false},
		// Set operators over a key with many values.
		{`{"ForAnyValue:StringLike":{"s3:x-amz-grant-read":"*AllUsers"}}`, true},
		{`{"ForAllValues:StringLike":{"s3:x-amz-grant-read":"*AllUsers"}}`, false},
		{`{"ForAllValues:StringLike":{"s3:x-amz-grant-read":["*AllUsers","id=*"]}}`, true},
		{`{"ForAnyValue:StringEquals":{"aws:UserAgent":"curl"}}`, false},
		{`{"ForAllValues:StringEquals":{"aws:UserAgent":"curl"}}`, true},
		{`{"ForAnyValue:StringNotLike":{"s3:x-amz-grant-read":"*AllUsers"}}`, true},
		// All the keys of a block must hold.
		{`{"StringEquals":{"s3:x-amz-acl":"public-read","s3:prefix":"home/bob/"},"Bool":{"aws:SecureTransport":"false"}}`, true},
		{`{"StringEquals":{"s3:x-amz-acl":"public-read","s3:prefix":"home/alice/"}}`, false},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			p := mustParse(t, doc(`{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*","Condition":`+c.cond+`}`))
			got := p.Evaluate(req(anon, "s3:PutObject", objARN, ctx)) == Allowed
			if got != c.want {
				t.Errorf("condition %s holds = %v, want %v", c.cond, got, c.want)
			}
		})
	}
}

func TestIsPublic(t *testing.T) {
	cases := []struct {
		name, stmt string
		want       bool
	}{
		{"anyone reads", `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"wildcard inside a prefix", `{"Effect":"Allow","Principal":"*","Action":"s3:G*t*","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"one-character wildcard in a prefix", `{"Effect":"Allow","Principal":"*","Action":"s3:?et*","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"AWS * writes", `{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"deny is never public", `{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`, false},
		{"fixed account", `{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}`, false},
		{"not principal", `{"Effect":"Allow","NotPrincipal":{"AWS":"444455556666"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"source ip", `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}`, false},
		{"source ip too wide", `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}`, true},
		{"not source ip", `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}`, true},
		{"fixed source account", `{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}`, false},
		{"wildcard source account", `{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringLike":{"aws:SourceAccount":"1111*"}}}`, true},
		{"referer limits nothing", `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringLike":{"aws:Referer":"http://example.com/*"}}}`, true},
		{"if exists limits nothing", `{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"StringEqualsIfExists":{"aws:SourceAccount":"111122223333"}}}`, true},
		{"harmless action", `{"Effect":"Allow","Principal":"*","Action":"s3:CreateBucket","Resource":"arn:aws:s3:::photos"}`, false},
		{"every action", `{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"not action", `{"Effect":"Allow","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`, true},
		{"prefix of a bad action", `{"Effect":"Allow","Principal":"*","Action":"s3:G*","Resource":"arn:aws:s3:::photos/*"}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mustParse(t, doc(c.stmt)).IsPublic(); got != c.want {
				t.Errorf("IsPublic = %v, want %v", got, c.want)
			}
		})
	}
}

func TestGlobLinear(t *testing.T) {
	// A pattern that makes naive backtracking exponential.
	p, _ := compile(strings.Repeat("*a", 30)+"b", false, nil)
	if p.match(strings.Repeat("a", 5000), false) {
		t.Fatal("matched")
	}
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"", "", true}, {"*", "", true}, {"?", "", false}, {"a*c", "abbbc", true}, {"a*c", "abbb", false},
		{"*.jpg", "x/y.jpg", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"héé*", "héé!", true},
	} {
		p, _ := compile(c.pat, false, nil)
		if got := p.match(c.s, false); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

// benchPolicy is a policy of three statements with conditions, and a
// request it allows.
func benchPolicy() ([]byte, Request) {
	d := []byte(doc(
		`{"Sid":"read","Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:GetObjectAcl"],"Resource":"arn:aws:s3:::photos/public/*","Condition":{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","198.51.100.0/24"]}}}`,
		`{"Sid":"tls","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}`,
		`{"Sid":"bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/bob/*","Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}}`))
	r := req(anon, "s3:GetObject", "arn:aws:s3:::photos/public/2024/cat.jpg", map[string][]string{"aws:sourceip": {"192.0.2.7"}, "aws:securetransport": {"true"}})
	return d, r
}

// BenchmarkParse is what a policy costs Walrus when it is not cached.
func BenchmarkParse(b *testing.B) {
	d, _ := benchPolicy()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(d, bucket); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate is what a cached policy costs a request.
func BenchmarkEvaluate(b *testing.B) {
	d, r := benchPolicy()
	p, err := Parse(d, bucket)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if p.Evaluate(r) != Allowed {
			b.Fatal("not allowed")
		}
	}
}

func TestAccountOf(t *testing.T) {
	for p, want := range map[string]string{
		"111122223333": "111122223333", "arn:aws:iam::111122223333:root": "111122223333",
		"arn:aws:iam::444455556666:user/bob": "444455556666", "arn:aws:sts::444455556666:assumed-role/r/s": "444455556666", "*": "",
	} {
		if got, ok := AccountOf(p); got != want || ok != (want != "") {
			t.Errorf("AccountOf(%q) = %q %v, want %q", p, got, ok, want)
		}
	}
}
