package policy

import (
	"errors"
	"testing"
)

// FuzzParse feeds Parse untrusted documents: it must refuse with a policy
// error or accept, never panic, and an accepted policy must evaluate any
// request and answer IsPublic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}`)), "s3:GetObject", "arn:aws:s3:::photos/a")
	f.Add([]byte(doc(`{"Sid":"x","Effect":"Deny","NotPrincipal":{"AWS":["111122223333"]},"NotAction":"s3:Get*","NotResource":"arn:aws:s3:::photos/p/*","Condition":{"ForAnyValue:StringLike":{"s3:x-amz-grant-read":"*AllUsers*"},"IpAddressIfExists":{"aws:SourceIp":["10.0.0.0/8","::1"]},"Null":{"aws:Referer":true},"DateLessThan":{"aws:CurrentTime":"2030-01-01"},"NumericGreaterThan":{"s3:max-keys":5}}}`)), "s3:PutObject", "arn:aws:s3:::photos/p/x")
	f.Add([]byte(`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:*","Resource":["arn:aws:s3:::pho*","*"]}}`), "s3:ListBucket", "arn:aws:s3:::photos")
	f.Add([]byte(doc(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/${aws:username}/${*}"}`)), "s3:GetObject", "arn:aws:s3:::photos/bob/*")
	f.Add([]byte(`{"Version":`), "", "")
	f.Fuzz(func(t *testing.T, d []byte, action, resource string) {
		p, err := Parse(d, bucket)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Msg == "" {
				t.Fatalf("Parse error %v is not a policy error with a message", err)
			}
			return
		}
		ctx := map[string][]string{"aws:sourceip": {"10.1.2.3"}, "aws:username": {"bob"}, "s3:x-amz-grant-read": {"a", "b"},
			"aws:currenttime": {"2026-01-01T00:00:00Z"}, "s3:max-keys": {"7"}}
		for _, r := range []Request{
			{Anonymous: true, Action: action, Resource: resource, Context: ctx},
			{Account: "111122223333", ARN: "arn:aws:iam::111122223333:user/bob", Action: action, Resource: resource, Context: ctx},
		} {
			_ = p.Evaluate(r)
		}
		_ = p.IsPublic()
	})
}
