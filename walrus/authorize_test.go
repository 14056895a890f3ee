package walrus

import (
	"encoding/xml"
	"strings"
	"testing"
)

// policyDoc is a 2012-10-17 policy of these statements.
func policyOf(statements ...string) []byte {
	return []byte(`{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`)
}

func TestEveryRouteHasAnAction(t *testing.T) {
	for _, rt := range routes {
		if _, ok := opActions[rt.op]; !ok {
			t.Errorf("operation %s has no IAM action in opActions", rt.op)
		}
	}
}

// TestBucketPolicyEnforced: a policy's Deny wins over an ACL's grant and
// the owner's, its Allow grants what no ACL does, each element as S3
// reads it.
func TestBucketPolicyEnforced(t *testing.T) {
	e := newEnv(t)
	a, b := v4(e.alice, ""), v4(e.bob, "")
	e.must(e.do(a, "PUT", "/pol", nil), 200)
	e.must(e.do(a, "PUT", "/pol/pub", []byte("public"), "x-amz-acl", "public-read"), 200)
	e.must(e.do(a, "PUT", "/pol/secret", []byte("secret")), 200)
	e.must(e.do(anon, "GET", "/pol/pub", nil), 200)
	put := func(stmts ...string) {
		t.Helper()
		e.must(e.do(a, "PUT", "/pol?policy", policyOf(stmts...)), 204)
	}

	// An explicit deny refuses anyone, the owner too.
	put(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/pub"}`)
	e.wantErr(e.do(anon, "GET", "/pol/pub", nil), 403, "AccessDenied")
	e.wantErr(e.do(a, "GET", "/pol/pub", nil), 403, "AccessDenied")
	e.must(e.do(a, "GET", "/pol/secret", nil), 200)
	e.must(e.do(anon, "GET", "/pol/pub?acl", nil), 403) // GetObjectAcl: no ACL grant for anyone

	// An allow grants what the ACL does not: any reader, any object.
	put(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}`)
	if r := e.must(e.do(anon, "GET", "/pol/secret", nil), 200); string(r.body) != "secret" {
		t.Errorf("secret: %s", r.body)
	}
	e.must(e.do(b, "HEAD", "/pol/secret", nil), 200)
	e.wantErr(e.do(anon, "PUT", "/pol/new", []byte("x")), 403, "AccessDenied")
	e.wantErr(e.do(anon, "GET", "/pol", nil), 403, "AccessDenied")
	// A missing key: NoSuchKey only to who may list the bucket.
	e.wantErr(e.do(anon, "GET", "/pol/none", nil), 403, "AccessDenied")
	put(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}`,
		`{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::pol"}`)
	e.wantErr(e.do(anon, "GET", "/pol/none", nil), 404, "NoSuchKey")
	e.must(e.do(anon, "GET", "/pol?list-type=2", nil), 200)

	// Principals: an account id, its root ARN, a user ARN.
	for _, p := range []string{`"` + e.bob.account + `"`, `"arn:aws:iam::` + e.bob.account + `:root"`, `"arn:aws:iam::` + e.bob.account + `:user/admin"`} {
		put(`{"Effect":"Allow","Principal":{"AWS":` + p + `},"Action":"s3:PutObject","Resource":"arn:aws:s3:::pol/bob/*"}`)
		e.must(e.do(b, "PUT", "/pol/bob/x", []byte("x")), 200)
		e.wantErr(e.do(b, "PUT", "/pol/other", []byte("x")), 403, "AccessDenied")
		e.wantErr(e.do(anon, "PUT", "/pol/bob/x", []byte("x")), 403, "AccessDenied")
	}

	// Conditions: aws:SourceIp (the test client is 127.0.0.1).
	put(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}`)
	e.wantErr(e.do(anon, "GET", "/pol/secret", nil), 403, "AccessDenied")
	put(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}`)
	e.must(e.do(anon, "GET", "/pol/secret", nil), 200)
	// aws:SecureTransport: this test server speaks plain HTTP.
	put(`{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}`)
	e.wantErr(e.do(a, "GET", "/pol/secret", nil), 403, "AccessDenied")
	e.wantErr(e.do(a, "GET", "/pol", nil), 403, "AccessDenied")
	// aws:Referer.
	put(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*","Condition":{"StringLike":{"aws:Referer":"http://www.example.com/*"}}}`)
	e.must(e.do(anon, "GET", "/pol/secret", nil, "Referer", "http://www.example.com/page"), 200)
	e.wantErr(e.do(anon, "GET", "/pol/secret", nil), 403, "AccessDenied")
	// s3:prefix.
	put(`{"Effect":"Allow","Principal":{"AWS":"` + e.bob.account + `"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::pol","Condition":{"StringLike":{"s3:prefix":"bob/*"}}}`)
	e.must(e.do(b, "GET", "/pol?prefix=bob/", nil), 200)
	e.wantErr(e.do(b, "GET", "/pol?prefix=", nil), 403, "AccessDenied")
	e.wantErr(e.do(b, "GET", "/pol?list-type=2&prefix=alice/", nil), 403, "AccessDenied")
	// s3:x-amz-acl.
	put(`{"Effect":"Allow","Principal":{"AWS":"` + e.bob.account + `"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::pol/*","Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}}`)
	e.must(e.do(b, "PUT", "/pol/drop", []byte("x"), "x-amz-acl", "bucket-owner-full-control"), 200)
	e.wantErr(e.do(b, "PUT", "/pol/drop", []byte("x")), 403, "AccessDenied")
	// NotPrincipal: everyone but bob is refused.
	put(`{"Effect":"Deny","NotPrincipal":{"AWS":"`+e.bob.account+`"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/secret"}`,
		`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}`)
	e.must(e.do(b, "GET", "/pol/secret", nil), 200)
	e.wantErr(e.do(a, "GET", "/pol/secret", nil), 403, "AccessDenied")
	e.wantErr(e.do(anon, "GET", "/pol/secret", nil), 403, "AccessDenied")

	// A copy needs s3:GetObject on its source.
	put(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/secret"}`)
	e.wantErr(e.do(a, "PUT", "/pol/copy", nil, "x-amz-copy-source", "/pol/secret"), 403, "AccessDenied")
	e.must(e.do(a, "PUT", "/pol/copy", nil, "x-amz-copy-source", "/pol/pub"), 200)

	// DeleteObjects decides key by key.
	put(`{"Effect":"Allow","Principal":{"AWS":"` + e.bob.account + `"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::pol/bob/*"}`)
	del := []byte(`<Delete><Object><Key>bob/x</Key></Object><Object><Key>pub</Key></Object></Delete>`)
	r := e.must(e.do(b, "POST", "/pol?delete", del, "Content-MD5", md5b64(del)), 200)
	if s := string(r.body); !strings.Contains(s, "<Deleted><Key>bob/x</Key>") || !strings.Contains(s, "<Key>pub</Key><Code>AccessDenied</Code>") {
		t.Errorf("delete objects: %s", s)
	}
	e.must(e.do(a, "GET", "/pol/pub", nil), 200)

	// The owner's account may always replace or delete the policy, even
	// one that denies it everything; another account never may.
	put(`{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/*"]}`)
	e.wantErr(e.do(a, "GET", "/pol/secret", nil), 403, "AccessDenied")
	e.must(e.do(a, "GET", "/pol?policy", nil), 200)
	e.must(e.do(a, "DELETE", "/pol?policy", nil), 204)
	e.must(e.do(a, "GET", "/pol/secret", nil), 200)
	e.wantErr(e.do(b, "GET", "/pol?policy", nil), 403, "AccessDenied")
	put(`{"Effect":"Allow","Principal":"*","Action":"s3:*Policy","Resource":"arn:aws:s3:::pol"}`)
	e.wantErr(e.do(b, "GET", "/pol?policy", nil), 405, "MethodNotAllowed")
	e.wantErr(e.do(b, "DELETE", "/pol?policy", nil), 405, "MethodNotAllowed")
	e.wantErr(e.do(anon, "PUT", "/pol?policy", policyOf(`{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pol"}`)), 405, "MethodNotAllowed")
	e.must(e.do(a, "GET", "/pol?policy", nil), 200)
}

func TestBucketPolicyValidatedAndStatus(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/stat", nil), 200)
	e.wantErr(e.do(a, "GET", "/stat?policyStatus", nil), 404, "NoSuchBucketPolicy")
	for doc, want := range map[string]string{
		`not json`: "valid JSON",
		string(policyOf(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}`)):                                     "Policy has invalid resource",
		string(policyOf(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::stat/*"}`)):                                                      "Missing required field Principal",
		string(policyOf(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::stat"}`)):                                        "Action does not apply",
		string(policyOf(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::stat/*"}`)): "Invalid principal",
		string(policyOf(`{"Effect":"Allow","Principal":{"CanonicalUser":"nobody"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::stat/*"}`)):               "Invalid principal",
	} {
		r := e.do(a, "PUT", "/stat?policy", []byte(doc))
		if r.status != 400 || r.code() != "MalformedPolicy" || !strings.Contains(string(r.body), want) {
			t.Errorf("policy %s: %s, want MalformedPolicy saying %q", doc, r, want)
		}
	}
	e.wantErr(e.do(a, "GET", "/stat?policy", nil), 404, "NoSuchBucketPolicy")

	status := func() string {
		t.Helper()
		r := e.must(e.do(a, "GET", "/stat?policyStatus", nil), 200)
		var doc struct{ IsPublic string }
		if err := xml.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.IsPublic
	}
	e.must(e.do(a, "PUT", "/stat?policy", policyOf(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::stat/*"}`)), 204)
	if got := status(); got != "true" {
		t.Errorf("public policy: IsPublic %s", got)
	}
	e.must(e.do(a, "PUT", "/stat?policy", policyOf(`{"Effect":"Allow","Principal":{"AWS":"`+e.bob.account+`"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::stat/*"}`)), 204)
	if got := status(); got != "false" {
		t.Errorf("policy for one account: IsPublic %s", got)
	}
	e.wantErr(e.do(v4(e.bob, ""), "GET", "/stat?policyStatus", nil), 403, "AccessDenied")
}

// TestOwnershipControls: BucketOwnerEnforced disables ACLs, as S3 does;
// BucketOwnerPreferred gives the bucket owner what is written with
// bucket-owner-full-control.
func TestOwnershipControls(t *testing.T) {
	e := newEnv(t)
	a, b := v4(e.alice, ""), v4(e.bob, "")
	e.must(e.do(a, "PUT", "/own", nil), 200)
	e.must(e.do(a, "PUT", "/own/pub", []byte("x"), "x-amz-acl", "public-read"), 200)
	e.must(e.do(anon, "GET", "/own/pub", nil), 200)
	e.must(e.do(a, "PUT", "/own?policy", policyOf(`{"Effect":"Allow","Principal":{"AWS":"`+e.bob.account+`"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::own/*"}`)), 204)

	controls := func(v string) []byte {
		return []byte(`<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ObjectOwnership>` + v + `</ObjectOwnership></Rule></OwnershipControls>`)
	}
	e.wantErr(e.do(a, "PUT", "/own?ownershipControls", controls("Nobody")), 400, "MalformedXML")
	e.wantErr(e.do(a, "PUT", "/own?ownershipControls", []byte(`<OwnershipControls/>`)), 400, "MalformedXML")
	e.wantErr(e.do(b, "PUT", "/own?ownershipControls", controls(ownershipEnforced)), 403, "AccessDenied")

	// BucketOwnerPreferred.
	e.must(e.do(a, "PUT", "/own?ownershipControls", controls(ownershipPreferred)), 200)
	e.must(e.do(b, "PUT", "/own/given", []byte("x"), "x-amz-acl", "bucket-owner-full-control"), 200)
	e.must(e.do(b, "PUT", "/own/kept", []byte("x")), 200)
	ownerOf := func(key string) string {
		t.Helper()
		r := e.must(e.do(a, "GET", "/own/"+key+"?acl", nil), 200)
		var doc struct {
			Owner struct{ ID string }
		}
		if err := xml.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Owner.ID
	}
	if got := ownerOf("given"); got != e.alice.account {
		t.Errorf("object given with bucket-owner-full-control is owned by %s", got)
	}
	e.wantErr(e.do(a, "GET", "/own/kept?acl", nil), 403, "AccessDenied") // bob's own object

	// BucketOwnerEnforced, refused while the bucket's ACL grants others.
	e.must(e.do(a, "PUT", "/own?acl", nil, "x-amz-acl", "public-read"), 200)
	e.wantErr(e.do(a, "PUT", "/own?ownershipControls", controls(ownershipEnforced)), 400, "InvalidBucketAclWithObjectOwnership")
	e.must(e.do(a, "PUT", "/own?acl", nil, "x-amz-acl", "private"), 200)
	e.must(e.do(a, "PUT", "/own?ownershipControls", controls(ownershipEnforced)), 200)
	if r := e.must(e.do(a, "GET", "/own?ownershipControls", nil), 200); !strings.Contains(string(r.body), "<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>") {
		t.Errorf("ownership controls: %s", r.body)
	}
	// ACLs no longer count: not the public grant, not bob's ownership.
	e.wantErr(e.do(anon, "GET", "/own/pub", nil), 403, "AccessDenied")
	e.must(e.do(a, "GET", "/own/kept", nil), 200)
	if got := ownerOf("kept"); got != e.alice.account {
		t.Errorf("with ACLs disabled, GetObjectAcl shows owner %s", got)
	}
	for _, list := range []string{"/own?prefix=kept", "/own?versions&prefix=kept", "/own?list-type=2&fetch-owner=true&prefix=kept"} {
		if r := e.must(e.do(a, "GET", list, nil), 200); strings.Contains(string(r.body), e.bob.account) || !strings.Contains(string(r.body), "<ID>"+e.alice.account+"</ID>") {
			t.Errorf("with ACLs disabled, %s shows another owner: %s", list, r.body)
		}
	}
	// Setting an ACL is refused, unless it gives the bucket owner full control.
	e.wantErr(e.do(a, "PUT", "/own/pub?acl", nil, "x-amz-acl", "public-read"), 400, "AccessControlListNotSupported")
	e.wantErr(e.do(a, "PUT", "/own?acl", nil, "x-amz-acl", "public-read"), 400, "AccessControlListNotSupported")
	e.wantErr(e.do(a, "PUT", "/own/new", []byte("x"), "x-amz-acl", "public-read"), 400, "AccessControlListNotSupported")
	e.wantErr(e.do(b, "PUT", "/own/new", []byte("x"), "x-amz-acl", "private"), 400, "AccessControlListNotSupported")
	e.must(e.do(a, "PUT", "/own/pub?acl", nil, "x-amz-acl", "bucket-owner-full-control"), 200)
	e.must(e.do(a, "PUT", "/own?acl", nil, "x-amz-acl", "private"), 200)
	e.must(e.do(b, "PUT", "/own/new", []byte("x"), "x-amz-acl", "bucket-owner-full-control"), 200)
	e.must(e.do(b, "PUT", "/own/new2", []byte("x")), 200)
	if got := ownerOf("new2"); got != e.alice.account {
		t.Errorf("object written under BucketOwnerEnforced is owned by %s", got)
	}

	e.must(e.do(a, "DELETE", "/own?ownershipControls", nil), 204)
	e.wantErr(e.do(a, "GET", "/own?ownershipControls", nil), 404, "OwnershipControlsNotFoundError")
	e.must(e.do(anon, "GET", "/own/pub", nil), 403) // its ACL now gives only its owner full control

	// CreateBucket's x-amz-object-ownership.
	e.must(e.do(a, "PUT", "/own2", nil, "x-amz-object-ownership", ownershipEnforced), 200)
	if r := e.must(e.do(a, "GET", "/own2?ownershipControls", nil), 200); !strings.Contains(string(r.body), ownershipEnforced) {
		t.Errorf("ownership at creation: %s", r.body)
	}
	e.wantErr(e.do(a, "PUT", "/own3", nil, "x-amz-object-ownership", ownershipEnforced, "x-amz-acl", "public-read"), 400, "InvalidBucketAclWithObjectOwnership")
	e.wantErr(e.do(a, "PUT", "/own3", nil, "x-amz-object-ownership", "Mine"), 400, "InvalidArgument")
	e.wantErr(e.do(a, "HEAD", "/own3", nil), 404, "")
}

// TestPublicAccessBlock: each of the four settings, as S3 applies them.
func TestPublicAccessBlock(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/pab", nil), 200)
	e.must(e.do(a, "PUT", "/pab/pub", []byte("x"), "x-amz-acl", "public-read"), 200)
	publicPolicy := policyOf(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pab/open/*"}`)
	e.must(e.do(a, "PUT", "/pab?policy", publicPolicy), 204)
	e.must(e.do(a, "PUT", "/pab/open/k", []byte("x")), 200)
	block := func(settings ...string) []byte {
		var s strings.Builder
		for _, name := range settings {
			s.WriteString("<" + name + ">true</" + name + ">")
		}
		return []byte(`<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + s.String() + `</PublicAccessBlockConfiguration>`)
	}
	e.wantErr(e.do(a, "PUT", "/pab?publicAccessBlock", []byte(`<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>`)), 400, "MalformedXML")
	e.wantErr(e.do(a, "PUT", "/pab?publicAccessBlock", []byte(`<Other/>`)), 400, "MalformedXML")

	e.must(e.do(a, "PUT", "/pab?publicAccessBlock", block("BlockPublicAcls")), 200)
	if r := e.must(e.do(a, "GET", "/pab?publicAccessBlock", nil), 200); !strings.Contains(string(r.body), "<BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls>") {
		t.Errorf("public access block: %s", r.body)
	}
	e.wantErr(e.do(a, "PUT", "/pab/new", []byte("x"), "x-amz-acl", "public-read"), 403, "AccessDenied")
	e.wantErr(e.do(a, "PUT", "/pab/new", []byte("x"), "x-amz-grant-read", `uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"`), 403, "AccessDenied")
	e.wantErr(e.do(a, "PUT", "/pab/pub?acl", nil, "x-amz-acl", "public-read-write"), 403, "AccessDenied")
	e.wantErr(e.do(a, "PUT", "/pab?acl", nil, "x-amz-acl", "public-read"), 403, "AccessDenied")
	e.wantErr(e.do(a, "POST", "/pab/mp?uploads", nil, "x-amz-acl", "public-read"), 403, "AccessDenied")
	e.must(e.do(a, "PUT", "/pab/new", []byte("x"), "x-amz-acl", "private"), 200)
	e.must(e.do(anon, "GET", "/pab/pub", nil), 200) // what exists stays public

	e.must(e.do(a, "PUT", "/pab?publicAccessBlock", block("IgnorePublicAcls")), 200)
	e.wantErr(e.do(anon, "GET", "/pab/pub", nil), 403, "AccessDenied")
	e.must(e.do(anon, "GET", "/pab/open/k", nil), 200) // the policy still grants

	e.must(e.do(a, "PUT", "/pab?publicAccessBlock", block("RestrictPublicBuckets")), 200)
	e.wantErr(e.do(anon, "GET", "/pab/open/k", nil), 403, "AccessDenied")
	e.wantErr(e.do(v4(e.bob, ""), "GET", "/pab/open/k", nil), 403, "AccessDenied")
	e.must(e.do(anon, "GET", "/pab/pub", nil), 200) // ACLs are another setting's business
	e.must(e.do(a, "GET", "/pab/open/k", nil), 200)

	e.must(e.do(a, "PUT", "/pab?publicAccessBlock", block("BlockPublicPolicy")), 200)
	e.wantErr(e.do(a, "PUT", "/pab?policy", publicPolicy), 403, "AccessDenied")
	e.must(e.do(a, "PUT", "/pab?policy", policyOf(`{"Effect":"Allow","Principal":{"AWS":"`+e.bob.account+`"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pab/*"}`)), 204)

	e.must(e.do(a, "DELETE", "/pab?publicAccessBlock", nil), 204)
	e.wantErr(e.do(a, "GET", "/pab?publicAccessBlock", nil), 404, "NoSuchPublicAccessBlockConfiguration")
	e.must(e.do(a, "PUT", "/pab?policy", publicPolicy), 204)
	e.must(e.do(anon, "GET", "/pab/open/k", nil), 200)
}

func TestPolicyCache(t *testing.T) {
	c := &policyCache{max: 2}
	d := string(policyOf(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::one/*"}`))
	p1, err1 := c.parse("one", d)
	p2, err2 := c.parse("one", d)
	if err1 != nil || err2 != nil || p1 != p2 {
		t.Fatalf("same document parsed twice: %p %v, %p %v", p1, err1, p2, err2)
	}
	// The parse depends on the bucket: the same document is wrong for another.
	if _, err := c.parse("two", d); err == nil {
		t.Error("a policy of bucket one accepted for bucket two")
	}
	c.parse("three", d)
	if len(c.m) > c.max {
		t.Errorf("cache holds %d entries, max %d", len(c.m), c.max)
	}
}

// TestACLGrantOrder: GetObjectAcl lists a canned ACL's grants with the
// owner's FULL_CONTROL first, and header grants in S3's order (READ, WRITE,
// READ_ACP, WRITE_ACP, FULL_CONTROL), each header's grantees as sent.
func TestACLGrantOrder(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/order", nil), 200)
	grants := func(key string) []string {
		t.Helper()
		r := e.must(e.do(a, "GET", "/order/"+key+"?acl", nil), 200)
		var doc struct {
			Grants []struct {
				ID         string `xml:"Grantee>ID"`
				URI        string `xml:"Grantee>URI"`
				Permission string
			} `xml:"AccessControlList>Grant"`
		}
		if err := xml.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range doc.Grants {
			who := g.ID
			if who == "" {
				who = g.URI[strings.LastIndex(g.URI, "/")+1:]
			}
			out = append(out, who+":"+g.Permission)
		}
		return out
	}
	e.must(e.do(a, "PUT", "/order/canned", []byte("x"), "x-amz-acl", "log-delivery-write"), 200)
	if got, want := strings.Join(grants("canned"), " "), e.alice.account+":FULL_CONTROL LogDelivery:WRITE LogDelivery:READ_ACP"; got != want {
		t.Errorf("canned ACL grants %s, want %s", got, want)
	}
	e.must(e.do(a, "PUT", "/order/headers", []byte("x"),
		"x-amz-grant-full-control", `id="`+e.alice.account+`"`,
		"x-amz-grant-write-acp", `id="`+e.bob.account+`"`,
		"x-amz-grant-read", `uri="http://acs.amazonaws.com/groups/global/AllUsers", id="`+e.bob.account+`"`,
		"x-amz-grant-read-acp", `uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"`), 200)
	want := "AllUsers:READ " + e.bob.account + ":READ AuthenticatedUsers:READ_ACP " + e.bob.account + ":WRITE_ACP " + e.alice.account + ":FULL_CONTROL"
	if got := strings.Join(grants("headers"), " "); got != want {
		t.Errorf("header grants %s, want %s", got, want)
	}
}
