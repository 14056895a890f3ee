package walrus

import (
	"encoding/xml"
	"net/url"
	"testing"
)

// TestUploadsAreTheirInitiators: in a bucket anyone may write, another
// account can neither add to, list, complete nor abort someone else's
// multipart upload; the bucket's owner still can.
func TestUploadsAreTheirInitiators(t *testing.T) {
	e := newEnv(t)
	a, b := v4(e.alice, ""), v4(e.bob, "")
	e.must(e.do(a, "PUT", "/open", nil, "x-amz-acl", "public-read-write"), 200)
	r := e.must(e.do(b, "POST", "/open/big?uploads", nil), 200)
	var init struct{ UploadId string }
	if err := xml.Unmarshal(r.body, &init); err != nil {
		t.Fatal(err)
	}
	id := url.QueryEscape(init.UploadId)
	e.must(e.do(b, "PUT", "/open/big?partNumber=1&uploadId="+id, []byte("bob's part")), 200)
	e.wantErr(e.do(anon, "PUT", "/open/big?partNumber=2&uploadId="+id, []byte("x")), 403, "AccessDenied")
	e.wantErr(e.do(anon, "GET", "/open/big?uploadId="+id, nil), 403, "AccessDenied")
	e.wantErr(e.do(anon, "DELETE", "/open/big?uploadId="+id, nil), 403, "AccessDenied")
	e.must(e.do(a, "GET", "/open/big?uploadId="+id, nil), 200) // the bucket's owner
	e.must(e.do(b, "DELETE", "/open/big?uploadId="+id, nil), 204)
}

// TestObjectTagsNeedReadACP: a public-read object's data is anyone's, its
// tags are not.
func TestObjectTagsNeedReadACP(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/pub", nil), 200)
	e.must(e.do(a, "PUT", "/pub/k", []byte("data"), "x-amz-acl", "public-read", "x-amz-tagging", "secret=yes"), 200)
	e.must(e.do(anon, "GET", "/pub/k", nil), 200)
	e.wantErr(e.do(anon, "GET", "/pub/k?tagging", nil), 403, "AccessDenied")
	e.must(e.do(a, "GET", "/pub/k?tagging", nil), 200)
}
