package walrus

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
)

func TestBuckets(t *testing.T) {
	e := newEnv(t, func(c *conf.Config) { c.WalrusMaxBuckets = 3 })
	a, b := v4(e.alice, ""), v4(e.bob, "")

	for _, name := range []string{"ab", "-abc", "abc-", "ABC", "a..b", "192.168.1.1", "xn--abc", "abc-s3alias", strings.Repeat("a", 64), "a_b"} {
		e.wantErr(e.do(a, "PUT", "/"+name, nil), 400, "InvalidBucketName")
	}
	e.must(e.do(a, "PUT", "/photos", nil), 200)
	e.wantErr(e.do(a, "PUT", "/photos", nil), 409, "BucketAlreadyOwnedByYou")
	e.wantErr(e.do(b, "PUT", "/photos", nil), 409, "BucketAlreadyExists")
	e.wantErr(e.do(anon, "PUT", "/anonymous", nil), 403, "AccessDenied")

	loc := func(region string) []byte {
		return []byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>` + region + `</LocationConstraint></CreateBucketConfiguration>`)
	}
	e.wantErr(e.do(a, "PUT", "/elsewhere", loc("eu-west-1")), 400, "InvalidLocationConstraint")
	e.wantErr(e.do(a, "PUT", "/badxml", []byte("<CreateBucketConfiguration>")), 400, "MalformedXML")
	e.must(e.do(a, "PUT", "/here", loc("us-euca-1")), 200)
	e.must(e.do(a, "PUT", "/third.bucket", nil), 200)
	// WALRUS_MAX_BUCKETS=3, per account.
	e.wantErr(e.do(a, "PUT", "/fourth", nil), 400, "TooManyBuckets")
	e.must(e.do(b, "PUT", "/bobs", nil), 200)

	var list struct {
		Owner   struct{ ID, DisplayName string }
		Buckets []string `xml:"Buckets>Bucket>Name"`
	}
	r := e.must(e.do(a, "GET", "/", nil), 200)
	if err := xml.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if strings.Join(list.Buckets, ",") != "here,photos,third.bucket" || list.Owner.ID != e.alice.account || list.Owner.DisplayName != "alice" {
		t.Errorf("alice's buckets: %+v", list)
	}
	e.wantErr(e.do(anon, "GET", "/", nil), 403, "AccessDenied")

	r = e.must(e.do(a, "HEAD", "/photos", nil), 200)
	if r.header.Get("X-Amz-Bucket-Region") != "us-euca-1" || len(r.body) != 0 {
		t.Errorf("head bucket: %v %q", r.header, r.body)
	}
	if r := e.do(a, "HEAD", "/nosuch", nil); r.status != 404 || len(r.body) != 0 {
		t.Errorf("head missing bucket: %v", r)
	}
	if r := e.do(b, "HEAD", "/photos", nil); r.status != 403 {
		t.Errorf("head another's bucket: %v", r)
	}
	r = e.must(e.do(a, "GET", "/photos?location", nil), 200)
	if !strings.Contains(string(r.body), ">us-euca-1</LocationConstraint>") {
		t.Errorf("location: %s", r.body)
	}
	e.wantErr(e.do(b, "GET", "/photos?location", nil), 403, "AccessDenied")

	e.must(e.do(a, "PUT", "/photos/cat.jpg", []byte("meow")), 200)
	e.wantErr(e.do(a, "DELETE", "/photos", nil), 409, "BucketNotEmpty")
	e.wantErr(e.do(b, "DELETE", "/photos", nil), 403, "AccessDenied")
	e.must(e.do(a, "DELETE", "/photos/cat.jpg", nil), 204)
	e.must(e.do(a, "DELETE", "/photos", nil), 204)
	e.wantErr(e.do(a, "DELETE", "/photos", nil), 404, "NoSuchBucket")
	// The name is free again, for anyone.
	e.must(e.do(b, "PUT", "/photos", nil), 200)

	e.wantErr(e.do(a, "PATCH", "/here", nil), 405, "MethodNotAllowed")
	e.wantErr(e.do(a, "GET", "/here?analytics", nil), 501, "NotImplemented")
}

func TestObjects(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/bkt", nil), 200)
	data := []byte("hello, walrus")
	r := e.must(e.do(a, "PUT", "/bkt/dir/hello.txt", data,
		"Content-Type", "text/plain", "Content-MD5", md5b64(data), "Cache-Control", "max-age=60",
		"Content-Disposition", "attachment", "Content-Language", "en", "Expires", "Thu, 01 Dec 2094 16:00:00 GMT",
		"X-Amz-Meta-Color", "blue", "X-Amz-Tagging", "k=v&x=y"), 200)
	sum := md5sum(data)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if r.header.Get("ETag") != etag {
		t.Errorf("etag %q, want %q", r.header.Get("ETag"), etag)
	}
	for _, method := range []string{"GET", "HEAD"} {
		r = e.must(e.do(a, method, "/bkt/dir/hello.txt", nil), 200)
		for k, v := range map[string]string{"Content-Type": "text/plain", "Cache-Control": "max-age=60", "Content-Disposition": "attachment",
			"Content-Language": "en", "Expires": "Thu, 01 Dec 2094 16:00:00 GMT", "X-Amz-Meta-Color": "blue", "ETag": etag,
			"Content-Length": "13", "Accept-Ranges": "bytes", "X-Amz-Tagging-Count": "2"} {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s %s = %q, want %q", method, k, got, v)
			}
		}
		if _, err := http.ParseTime(r.header.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified %q", r.header.Get("Last-Modified"))
		}
		if r.header.Get("X-Amz-Request-Id") == "" {
			t.Error("no x-amz-request-id")
		}
	}
	if !bytes.Equal(r.body, nil) {
		t.Errorf("HEAD sent a body")
	}
	if r := e.must(e.do(a, "GET", "/bkt/dir/hello.txt", nil), 200); !bytes.Equal(r.body, data) {
		t.Errorf("GET body %q", r.body)
	}
	// Without Content-Type S3 stores binary/octet-stream.
	e.must(e.do(a, "PUT", "/bkt/untyped", []byte("x")), 200)
	if r := e.must(e.do(a, "HEAD", "/bkt/untyped", nil), 200); r.header.Get("Content-Type") != "binary/octet-stream" {
		t.Errorf("default content type %q", r.header.Get("Content-Type"))
	}

	// Digests: a malformed Content-MD5, then a wrong one; the object stays.
	e.wantErr(e.do(a, "PUT", "/bkt/dir/hello.txt", []byte("other"), "Content-MD5", "nope"), 400, "InvalidDigest")
	e.wantErr(e.do(a, "PUT", "/bkt/dir/hello.txt", []byte("other"), "Content-MD5", md5b64([]byte("different"))), 400, "BadDigest")
	e.wantErr(e.do(v4(e.alice, sha256Hex([]byte("different"))), "PUT", "/bkt/dir/hello.txt", []byte("other")), 400, "XAmzContentSHA256Mismatch")
	e.wantErr(e.do(a, "PUT", "/bkt/dir/hello.txt", []byte("other"), "x-amz-checksum-crc32", "AAAAAA=="), 400, "BadDigest")
	e.must(e.do(a, "PUT", "/bkt/crc", []byte("hello world"), "x-amz-checksum-crc32", "DUoRhQ==", "x-amz-checksum-crc32c", ""), 200)
	e.must(e.do(a, "PUT", "/bkt/crc64", []byte("123456789"), "x-amz-checksum-crc64nvme", "rosUhgp5mIg="), 200)
	if r := e.must(e.do(a, "GET", "/bkt/dir/hello.txt", nil), 200); !bytes.Equal(r.body, data) {
		t.Errorf("a refused PUT changed the object: %q", r.body)
	}

	// Ranges.
	for _, c := range []struct {
		rng, want, cr string
		status        int
	}{
		{"bytes=0-4", "hello", "bytes 0-4/13", 206},
		{"bytes=7-", "walrus", "bytes 7-12/13", 206},
		{"bytes=-6", "walrus", "bytes 7-12/13", 206},
		{"bytes=7-100", "walrus", "bytes 7-12/13", 206},
		{"bytes=-100", string(data), "bytes 0-12/13", 206},
		{"bytes=0-1,3-4", string(data), "", 200}, // several ranges: the whole object, as S3
		{"chars=0-1", string(data), "", 200},
	} {
		r := e.do(a, "GET", "/bkt/dir/hello.txt", nil, "Range", c.rng)
		if r.status != c.status || string(r.body) != c.want || r.header.Get("Content-Range") != c.cr {
			t.Errorf("range %s: %d %q %q", c.rng, r.status, r.body, r.header.Get("Content-Range"))
		}
	}
	e.wantErr(e.do(a, "GET", "/bkt/dir/hello.txt", nil, "Range", "bytes=13-"), 416, "InvalidRange")
	e.wantErr(e.do(a, "GET", "/bkt/dir/hello.txt", nil, "Range", "bytes=-0"), 416, "InvalidRange")

	// Conditions, with S3's precedence.
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		headers []string
		status  int
	}{
		{[]string{"If-Match", etag}, 200},
		{[]string{"If-Match", `"00"`}, 412},
		{[]string{"If-Match", "*"}, 200},
		{[]string{"If-None-Match", etag}, 304},
		{[]string{"If-None-Match", `"00"`}, 200},
		{[]string{"If-Modified-Since", future}, 304},
		{[]string{"If-Modified-Since", past}, 200},
		{[]string{"If-Unmodified-Since", past}, 412},
		{[]string{"If-Unmodified-Since", future}, 200},
		// If-Match true wins over If-Unmodified-Since false.
		{[]string{"If-Match", etag, "If-Unmodified-Since", past}, 200},
		// If-None-Match false (the tag differs) wins over If-Modified-Since.
		{[]string{"If-None-Match", `"00"`, "If-Modified-Since", future}, 200},
		{[]string{"If-None-Match", etag, "If-Modified-Since", past}, 304},
	} {
		r := e.do(a, "GET", "/bkt/dir/hello.txt", nil, c.headers...)
		if r.status != c.status {
			t.Errorf("%v: %d, want %d", c.headers, r.status, c.status)
		}
		if c.status == 412 && r.code() != "PreconditionFailed" {
			t.Errorf("%v: code %q", c.headers, r.code())
		}
		if c.status == 304 && (len(r.body) != 0 || r.header.Get("ETag") != etag) {
			t.Errorf("%v: 304 with body %q etag %q", c.headers, r.body, r.header.Get("ETag"))
		}
	}

	// Overrides of the answer's headers (signed requests only).
	r = e.must(e.do(a, "GET", "/bkt/dir/hello.txt?response-content-type=application/x-test&response-content-disposition=inline&response-cache-control=no-cache", nil), 200)
	if r.header.Get("Content-Type") != "application/x-test" || r.header.Get("Content-Disposition") != "inline" || r.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("overrides: %v", r.header)
	}
	e.must(e.do(a, "PUT", "/bkt/dir/hello.txt?acl", nil, "x-amz-acl", "public-read"), 200)
	e.wantErr(e.do(anon, "GET", "/bkt/dir/hello.txt?response-content-type=x/y", nil), 400, "InvalidRequest")

	// Missing keys, and HEAD errors without a body.
	e.wantErr(e.do(a, "GET", "/bkt/nope", nil), 404, "NoSuchKey")
	if r := e.do(a, "HEAD", "/bkt/nope", nil); r.status != 404 || len(r.body) != 0 {
		t.Errorf("head missing: %v", r)
	}
	e.wantErr(e.do(a, "GET", "/nobucket/nope", nil), 404, "NoSuchBucket")
	e.wantErr(e.do(a, "GET", "/bkt/"+strings.Repeat("k", 1025), nil), 400, "KeyTooLongError")
	e.wantErr(e.do(a, "PUT", "/bkt/big-meta", []byte("x"), "X-Amz-Meta-Big", strings.Repeat("m", 2100)), 400, "MetadataTooLarge")
	e.wantErr(e.do(a, "PUT", "/bkt/sc", []byte("x"), "X-Amz-Storage-Class", "COLD"), 400, "InvalidStorageClass")
	e.wantErr(e.do(a, "GET", "/bkt/dir/hello.txt?versionId=123", nil), 400, "InvalidArgument")

	// Conditional writes.
	e.wantErr(e.do(a, "PUT", "/bkt/dir/hello.txt", []byte("x"), "If-None-Match", "*"), 412, "PreconditionFailed")
	e.must(e.do(a, "PUT", "/bkt/fresh", []byte("x"), "If-None-Match", "*"), 200)

	// Deletes: 204 whether or not the key exists.
	e.must(e.do(a, "DELETE", "/bkt/dir/hello.txt", nil), 204)
	e.must(e.do(a, "DELETE", "/bkt/dir/hello.txt", nil), 204)
	e.wantErr(e.do(a, "GET", "/bkt/dir/hello.txt", nil), 404, "NoSuchKey")

	// Keys with characters that need encoding, and the empty object.
	for _, key := range []string{"a b+c", "ü/é", "q?x=1#frag", "x//y", "%41"} {
		path := "/bkt/" + (&url.URL{Path: key}).EscapedPath()
		e.must(e.do(a, "PUT", path, []byte(key)), 200)
		if r := e.must(e.do(a, "GET", path, nil), 200); string(r.body) != key {
			t.Errorf("key %q read back %q", key, r.body)
		}
	}
	e.must(e.do(a, "PUT", "/bkt/empty", []byte{}), 200)
	if r := e.must(e.do(a, "GET", "/bkt/empty", nil), 200); len(r.body) != 0 || r.header.Get("ETag") != `"d41d8cd98f00b204e9800998ecf8427e"` {
		t.Errorf("empty object: %v %q", r, r.header.Get("ETag"))
	}
	e.wantErr(e.do(a, "GET", "/bkt/empty", nil, "Range", "bytes=0-0"), 416, "InvalidRange")
}

func TestAddressing(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/services/Walrus/legacy", nil), 200)
	e.must(e.do(a, "PUT", "/services/Walrus/legacy/k", []byte("via the prefix")), 200)
	if r := e.must(e.do(a, "GET", "/legacy/k", nil), 200); string(r.body) != "via the prefix" {
		t.Errorf("legacy object read path-style: %q", r.body)
	}
	if r := e.must(e.do(v2(e.alice), "GET", "/services/Walrus/legacy/k", nil), 200); string(r.body) != "via the prefix" {
		t.Errorf("sigv2 under the prefix: %q", r.body)
	}
	// Virtual host: bucket.localhost and bucket.<host name>.<domain>.
	for _, host := range []string{"legacy.localhost", "legacy.cloud.example.com", "legacy.cloud"} {
		if r := e.must(e.do(a, "GET", "/k", nil, "Host", host), 200); string(r.body) != "via the prefix" {
			t.Errorf("virtual host %s: %q", host, r.body)
		}
	}
	e.must(e.do(a, "PUT", "/my.dotted.bucket", nil), 200)
	e.must(e.do(a, "PUT", "/k2", []byte("dots"), "Host", "my.dotted.bucket.cloud.example.com:8773"), 200)
	if r := e.must(e.do(a, "GET", "/my.dotted.bucket/k2", nil), 200); string(r.body) != "dots" {
		t.Errorf("dotted virtual host: %q", r.body)
	}
	// The bare host is path style.
	for _, host := range []string{"cloud.example.com", "localhost", "127.0.0.1", "[::1]:8773", "other.example.org"} {
		if got := e.w.virtualHostBucket(host); got != "" {
			t.Errorf("host %s taken as bucket %q", host, got)
		}
	}
	if r := e.must(e.do(a, "GET", "/legacy/k", nil, "Host", "cloud.example.com"), 200); string(r.body) != "via the prefix" {
		t.Errorf("bare host: %q", r.body)
	}
}

func TestListing(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/lst", nil), 200)
	keys := []string{"a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d e", "d+e", "é"}
	for _, k := range keys {
		e.must(e.do(a, "PUT", "/lst/"+(&url.URL{Path: k}).EscapedPath(), []byte(k)), 200)
	}
	type result struct {
		IsTruncated           bool
		Marker, NextMarker    string
		NextContinuationToken string
		KeyCount              int
		Keys                  []string `xml:"Contents>Key"`
		Owners                []string `xml:"Contents>Owner>ID"`
		Prefixes              []string `xml:"CommonPrefixes>Prefix"`
	}
	list := func(query string) result {
		t.Helper()
		r := e.must(e.do(a, "GET", "/lst?"+query, nil), 200)
		var res result
		if err := xml.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, c := range []struct {
		query          string
		keys, prefixes string
		truncated      bool
	}{
		{"", "a/1,a/2,a/b/3,b,c/1,c/2,d e,d+e,é", "", false},
		{"delimiter=/", "b,d e,d+e,é", "a/,c/", false},
		{"prefix=a/&delimiter=/", "a/1,a/2", "a/b/", false},
		{"prefix=a/", "a/1,a/2,a/b/3", "", false},
		{"max-keys=2", "a/1,a/2", "", true},
		{"marker=b", "c/1,c/2,d e,d+e,é", "", false},
		{"delimiter=/&marker=a/", "b,d e,d+e,é", "c/", false},
		{"list-type=2&start-after=c/1", "c/2,d e,d+e,é", "", false},
		{"list-type=2&delimiter=/&max-keys=3", "b", "a/,c/", true},
		{"max-keys=0", "", "", false},
		{"prefix=zz", "", "", false},
	} {
		res := list(c.query)
		if strings.Join(res.Keys, ",") != c.keys || strings.Join(res.Prefixes, ",") != c.prefixes || res.IsTruncated != c.truncated {
			t.Errorf("%s: keys %q prefixes %q truncated %v", c.query, res.Keys, res.Prefixes, res.IsTruncated)
		}
	}
	// v1 has owners, v2 only with fetch-owner.
	if res := list("prefix=b"); len(res.Owners) != 1 || res.Owners[0] != e.alice.account {
		t.Errorf("v1 owners %v", res.Owners)
	}
	if res := list("list-type=2&prefix=b"); len(res.Owners) != 0 || res.KeyCount != 1 {
		t.Errorf("v2 owners %v keycount %d", res.Owners, res.KeyCount)
	}
	if res := list("list-type=2&prefix=b&fetch-owner=true"); len(res.Owners) != 1 {
		t.Errorf("v2 fetch-owner %v", res.Owners)
	}
	// Paging one entry at a time visits everything once, in both versions.
	for _, delim := range []string{"", "/"} {
		var got []string
		marker := ""
		for i := 0; i < 20; i++ {
			res := list("max-keys=1&delimiter=" + delim + "&marker=" + url.QueryEscape(marker))
			got = append(append(got, res.Keys...), res.Prefixes...)
			if !res.IsTruncated {
				break
			}
			marker = res.NextMarker
			if marker == "" {
				marker = res.Keys[len(res.Keys)-1]
			}
		}
		var got2 []string
		token := ""
		for i := 0; i < 20; i++ {
			q := "list-type=2&max-keys=1&delimiter=" + delim
			if token != "" {
				q += "&continuation-token=" + url.QueryEscape(token)
			}
			res := list(q)
			got2 = append(append(got2, res.Keys...), res.Prefixes...)
			if !res.IsTruncated {
				break
			}
			token = res.NextContinuationToken
		}
		want := strings.Join(keys, ",")
		if delim == "/" {
			want = "a/,b,c/,d e,d+e,é"
		}
		if strings.Join(got, ",") != want || strings.Join(got2, ",") != want {
			t.Errorf("paging with delimiter %q: v1 %q v2 %q", delim, got, got2)
		}
	}
	// encoding-type=url.
	r := e.must(e.do(a, "GET", "/lst?encoding-type=url&prefix=d", nil), 200)
	if !strings.Contains(string(r.body), "<Key>d%20e</Key>") || !strings.Contains(string(r.body), "<Key>d%2Be</Key>") || !strings.Contains(string(r.body), "<EncodingType>url</EncodingType>") {
		t.Errorf("url encoding: %s", r.body)
	}
	e.wantErr(e.do(a, "GET", "/lst?encoding-type=base64", nil), 400, "InvalidArgument")
	e.wantErr(e.do(a, "GET", "/lst?max-keys=-1", nil), 400, "InvalidArgument")
	e.wantErr(e.do(a, "GET", "/lst?list-type=2&continuation-token=%%%", nil), 400, "InvalidArgument")
	// Versions of an unversioned bucket.
	r = e.must(e.do(a, "GET", "/lst?versions&prefix=a/", nil), 200)
	if strings.Count(string(r.body), "<VersionId>null</VersionId>") != 3 {
		t.Errorf("versions: %s", r.body)
	}
}

func TestMultipart(t *testing.T) {
	smallParts(t)
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/mpu", nil), 200)
	var init struct{ UploadId string }
	r := e.must(e.do(a, "POST", "/mpu/big?uploads", nil, "Content-Type", "video/mp4", "X-Amz-Meta-A", "1"), 200)
	if err := xml.Unmarshal(r.body, &init); err != nil || init.UploadId == "" {
		t.Fatalf("initiate: %s", r.body)
	}
	id := url.QueryEscape(init.UploadId)
	parts := [][]byte{[]byte("part one "), []byte("part two "), []byte("end")}
	var etags []string
	for i, p := range parts {
		r := e.must(e.do(a, "PUT", fmt.Sprintf("/mpu/big?partNumber=%d&uploadId=%s", i+1, id), p), 200)
		etags = append(etags, r.header.Get("ETag"))
	}
	e.wantErr(e.do(a, "PUT", "/mpu/big?partNumber=10001&uploadId="+id, []byte("x")), 400, "InvalidArgument")
	e.wantErr(e.do(a, "PUT", "/mpu/big?partNumber=1&uploadId=nosuch", []byte("x")), 404, "NoSuchUpload")
	e.wantErr(e.do(a, "PUT", "/mpu/other?partNumber=1&uploadId="+id, []byte("x")), 404, "NoSuchUpload")

	var lp struct {
		Parts []struct {
			PartNumber int
			ETag       string
			Size       int64
		} `xml:"Part"`
	}
	r = e.must(e.do(a, "GET", "/mpu/big?uploadId="+id, nil), 200)
	if err := xml.Unmarshal(r.body, &lp); err != nil || len(lp.Parts) != 3 || lp.Parts[1].ETag != etags[1] || lp.Parts[2].Size != 3 {
		t.Fatalf("list parts: %s", r.body)
	}
	r = e.must(e.do(a, "GET", "/mpu?uploads", nil), 200)
	if !strings.Contains(string(r.body), "<UploadId>"+init.UploadId+"</UploadId>") {
		t.Errorf("list uploads: %s", r.body)
	}

	complete := func(nums ...int) []byte {
		var b strings.Builder
		b.WriteString("<CompleteMultipartUpload>")
		for _, n := range nums {
			et := `"0000"`
			if n >= 1 && n <= len(etags) {
				et = etags[n-1]
			}
			fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, et)
		}
		b.WriteString("</CompleteMultipartUpload>")
		return []byte(b.String())
	}
	e.wantErr(e.do(a, "POST", "/mpu/big?uploadId="+id, complete(2, 1)), 400, "InvalidPartOrder")
	e.wantErr(e.do(a, "POST", "/mpu/big?uploadId="+id, complete(1, 4)), 400, "InvalidPart")
	e.wantErr(e.do(a, "POST", "/mpu/big?uploadId="+id, []byte("<CompleteMultipartUpload/>")), 400, "MalformedXML")
	minPartSize = 5 << 20
	e.wantErr(e.do(a, "POST", "/mpu/big?uploadId="+id, complete(1, 2, 3)), 400, "EntityTooSmall")
	minPartSize = 5

	r = e.must(e.do(a, "POST", "/mpu/big?uploadId="+id, complete(1, 2, 3)), 200)
	var done struct{ ETag, Key, Bucket string }
	if err := xml.Unmarshal(r.body, &done); err != nil {
		t.Fatal(err)
	}
	var cat []byte
	for _, et := range etags {
		b, _ := hex.DecodeString(strings.Trim(et, `"`))
		cat = append(cat, b...)
	}
	sum := md5sum(cat)
	want := `"` + hex.EncodeToString(sum[:]) + `-3"`
	if done.ETag != want || done.Key != "big" || done.Bucket != "mpu" {
		t.Errorf("complete: %+v, want etag %s", done, want)
	}
	r = e.must(e.do(a, "GET", "/mpu/big", nil), 200)
	if string(r.body) != "part one part two end" || r.header.Get("ETag") != want || r.header.Get("Content-Type") != "video/mp4" || r.header.Get("X-Amz-Meta-A") != "1" {
		t.Errorf("completed object: %q %v", r.body, r.header)
	}
	// A Complete retried after it succeeded (its answer lost) answers as
	// the first did; one naming other parts finds no upload.
	r = e.must(e.do(a, "POST", "/mpu/big?uploadId="+id, complete(1, 2, 3)), 200)
	if err := xml.Unmarshal(r.body, &done); err != nil || done.ETag != want || done.Key != "big" || done.Bucket != "mpu" {
		t.Errorf("retried complete: %s", r.body)
	}
	e.wantErr(e.do(a, "POST", "/mpu/big?uploadId="+id, complete(1, 2)), 404, "NoSuchUpload")
	e.wantErr(e.do(a, "POST", "/mpu/other?uploadId="+id, complete(1, 2, 3)), 404, "NoSuchUpload")

	// Abort, and part copy with a range.
	r = e.must(e.do(a, "POST", "/mpu/copy?uploads", nil), 200)
	_ = xml.Unmarshal(r.body, &init)
	id = url.QueryEscape(init.UploadId)
	r = e.must(e.do(a, "PUT", "/mpu/copy?partNumber=1&uploadId="+id, nil, "X-Amz-Copy-Source", "/mpu/big", "X-Amz-Copy-Source-Range", "bytes=5-7"), 200)
	if !strings.Contains(string(r.body), "<CopyPartResult") {
		t.Errorf("upload part copy: %s", r.body)
	}
	e.wantErr(e.do(a, "PUT", "/mpu/copy?partNumber=2&uploadId="+id, nil, "X-Amz-Copy-Source", "/mpu/big", "X-Amz-Copy-Source-Range", "bytes=5-700"), 416, "InvalidRange")
	r = e.must(e.do(a, "GET", "/mpu/copy?uploadId="+id, nil), 200)
	var lp2 struct {
		ETag []string `xml:"Part>ETag"`
	}
	_ = xml.Unmarshal(r.body, &lp2)
	oneSum := md5sum([]byte("one"))
	if len(lp2.ETag) != 1 || lp2.ETag[0] != `"`+hex.EncodeToString(oneSum[:])+`"` {
		t.Errorf("copied part: %s", r.body)
	}
	e.must(e.do(a, "DELETE", "/mpu/copy?uploadId="+id, nil), 204)
	e.wantErr(e.do(a, "DELETE", "/mpu/copy?uploadId="+id, nil), 404, "NoSuchUpload")
	e.wantErr(e.do(a, "GET", "/mpu/copy?uploadId="+id, nil), 404, "NoSuchUpload")
}

func TestCopyObject(t *testing.T) {
	e := newEnv(t)
	a, b := v4(e.alice, ""), v4(e.bob, "")
	e.must(e.do(a, "PUT", "/src", nil), 200)
	e.must(e.do(a, "PUT", "/src/o", []byte("data"), "Content-Type", "text/x-a", "X-Amz-Meta-M", "1", "X-Amz-Tagging", "t=1"), 200)
	r := e.must(e.do(a, "PUT", "/src/copy", nil, "X-Amz-Copy-Source", "/src/o"), 200)
	if !strings.Contains(string(r.body), "<CopyObjectResult") || !strings.Contains(string(r.body), "8d777f385d3dfec8815d20f7496026dc") {
		t.Errorf("copy: %s", r.body)
	}
	r = e.must(e.do(a, "GET", "/src/copy", nil), 200)
	if string(r.body) != "data" || r.header.Get("Content-Type") != "text/x-a" || r.header.Get("X-Amz-Meta-M") != "1" || r.header.Get("X-Amz-Tagging-Count") != "1" {
		t.Errorf("COPY directive: %v", r.header)
	}
	e.must(e.do(a, "PUT", "/src/replaced", nil, "X-Amz-Copy-Source", "src/o", "X-Amz-Metadata-Directive", "REPLACE", "Content-Type", "text/x-b"), 200)
	r = e.must(e.do(a, "HEAD", "/src/replaced", nil), 200)
	if r.header.Get("Content-Type") != "text/x-b" || r.header.Get("X-Amz-Meta-M") != "" {
		t.Errorf("REPLACE directive: %v", r.header)
	}
	e.wantErr(e.do(a, "PUT", "/src/o", nil, "X-Amz-Copy-Source", "/src/o"), 400, "InvalidRequest")
	e.must(e.do(a, "PUT", "/src/o", nil, "X-Amz-Copy-Source", "/src/o", "X-Amz-Metadata-Directive", "REPLACE", "X-Amz-Meta-New", "2"), 200)
	e.wantErr(e.do(a, "PUT", "/src/x", nil, "X-Amz-Copy-Source", "/src/nope"), 404, "NoSuchKey")
	e.wantErr(e.do(a, "PUT", "/src/x", nil, "X-Amz-Copy-Source", "/src/o", "X-Amz-Copy-Source-If-Match", `"00"`), 412, "PreconditionFailed")
	e.wantErr(e.do(a, "PUT", "/src/x", nil, "X-Amz-Copy-Source", "nobucketkey"), 400, "InvalidArgument")
	// Bob may not read alice's private object, even into his own bucket.
	e.must(e.do(b, "PUT", "/bobs", nil), 200)
	e.wantErr(e.do(b, "PUT", "/bobs/stolen", nil, "X-Amz-Copy-Source", "/src/o"), 403, "AccessDenied")
}

func TestACLs(t *testing.T) {
	e := newEnv(t)
	a, b := v4(e.alice, ""), v4(e.bob, "")
	e.must(e.do(a, "PUT", "/priv", nil), 200)
	e.must(e.do(a, "PUT", "/priv/o", []byte("secret")), 200)
	e.wantErr(e.do(anon, "GET", "/priv/o", nil), 403, "AccessDenied")
	e.wantErr(e.do(b, "GET", "/priv/o", nil), 403, "AccessDenied")
	e.wantErr(e.do(anon, "GET", "/priv", nil), 403, "AccessDenied")
	e.wantErr(e.do(b, "PUT", "/priv/o", []byte("x")), 403, "AccessDenied")
	// A missing key in a bucket the caller may not list is AccessDenied.
	e.wantErr(e.do(b, "GET", "/priv/missing", nil), 403, "AccessDenied")

	// Object ACLs: canned, header grants and a document.
	e.must(e.do(a, "PUT", "/priv/pub", []byte("public"), "x-amz-acl", "public-read"), 200)
	if r := e.must(e.do(anon, "GET", "/priv/pub", nil), 200); string(r.body) != "public" {
		t.Errorf("anonymous read of public-read: %q", r.body)
	}
	e.must(e.do(a, "PUT", "/priv/auth", []byte("x"), "x-amz-acl", "authenticated-read"), 200)
	e.wantErr(e.do(anon, "GET", "/priv/auth", nil), 403, "AccessDenied")
	e.must(e.do(b, "GET", "/priv/auth", nil), 200)
	e.must(e.do(a, "PUT", "/priv/granted", []byte("x"), "x-amz-grant-read", `id="`+e.bob.account+`"`), 200)
	e.must(e.do(b, "GET", "/priv/granted", nil), 200)
	e.wantErr(e.do(a, "PUT", "/priv/x", []byte("x"), "x-amz-grant-read", `id="999999999999"`), 400, "InvalidArgument")
	e.wantErr(e.do(a, "PUT", "/priv/x", []byte("x"), "x-amz-grant-read", `emailAddress="a@b.c"`), 400, "UnresolvableGrantByEmailAddress")
	e.wantErr(e.do(a, "PUT", "/priv/x", []byte("x"), "x-amz-acl", "public-read", "x-amz-grant-read", `id="`+e.bob.account+`"`), 400, "InvalidRequest")
	e.wantErr(e.do(a, "PUT", "/priv/x", []byte("x"), "x-amz-acl", "world-writable"), 400, "InvalidArgument")

	// aws-exec-read (euca2ools' bundle parts) grants the cloud READ.
	e.must(e.do(v2(e.alice), "PUT", "/priv/bundle.part.0", []byte("part"), "x-amz-acl", "aws-exec-read"), 200)
	r := e.must(e.do(a, "GET", "/priv/bundle.part.0?acl", nil), 200)
	var acp struct {
		Owner  struct{ ID, DisplayName string }
		Grants []struct {
			Grantee struct {
				Type string `xml:"type,attr"`
				ID   string
				URI  string
			}
			Permission string
		} `xml:"AccessControlList>Grant"`
	}
	if err := xml.Unmarshal(r.body, &acp); err != nil {
		t.Fatal(err)
	}
	if acp.Owner.ID != e.alice.account || acp.Owner.DisplayName != "alice" || len(acp.Grants) != 2 ||
		acp.Grants[1].Grantee.ID != CloudReaderID || acp.Grants[1].Permission != "READ" || acp.Grants[0].Grantee.Type != "CanonicalUser" {
		t.Errorf("aws-exec-read acl: %s", r.body)
	}
	if !strings.Contains(string(r.body), `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"`) {
		t.Errorf("grantee type attribute: %s", r.body)
	}

	// PutObjectAcl with a document: make it public, then private again.
	doc := `<AccessControlPolicy><Owner><ID>` + e.alice.account + `</ID></Owner><AccessControlList>
		<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>` + e.alice.account + `</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant>
		<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>
		</AccessControlList></AccessControlPolicy>`
	e.must(e.do(a, "PUT", "/priv/o?acl", []byte(doc)), 200)
	e.must(e.do(anon, "GET", "/priv/o", nil), 200)
	e.wantErr(e.do(b, "PUT", "/priv/o?acl", nil, "x-amz-acl", "private"), 403, "AccessDenied")
	e.wantErr(e.do(a, "PUT", "/priv/o?acl", []byte("<AccessControlPolicy><oops")), 400, "MalformedACLError")
	e.must(e.do(a, "PUT", "/priv/o?acl", nil, "x-amz-acl", "private"), 200)
	e.wantErr(e.do(anon, "GET", "/priv/o", nil), 403, "AccessDenied")

	// Bucket ACLs: public-read lists anonymously; public-read-write takes
	// anonymous writes.
	e.must(e.do(a, "PUT", "/priv?acl", nil, "x-amz-acl", "public-read"), 200)
	e.must(e.do(anon, "GET", "/priv", nil), 200)
	e.wantErr(e.do(anon, "PUT", "/priv/anon", []byte("x")), 403, "AccessDenied")
	e.must(e.do(a, "PUT", "/open", nil, "x-amz-acl", "public-read-write"), 200)
	e.must(e.do(anon, "PUT", "/open/anon", []byte("x")), 200)
	r = e.must(e.do(a, "GET", "/open?acl", nil), 200)
	if strings.Count(string(r.body), "AllUsers") != 2 {
		t.Errorf("public-read-write bucket acl: %s", r.body)
	}
	e.wantErr(e.do(b, "GET", "/priv?acl", nil), 403, "AccessDenied")
	// Anonymous may read through a presigned URL instead.
	res, err := http.Get(e.presignV4(e.alice, "GET", "/priv/bundle.part.0", 60))
	if err != nil || res.StatusCode != 200 {
		t.Errorf("presigned get: %v %v", res, err)
	}
}

func TestBucketConfigs(t *testing.T) {
	e := newEnv(t)
	a, b := v4(e.alice, ""), v4(e.bob, "")
	e.must(e.do(a, "PUT", "/cfg", nil), 200)
	for _, c := range []struct{ sub, code string }{
		{"policy", "NoSuchBucketPolicy"}, {"cors", "NoSuchCORSConfiguration"}, {"website", "NoSuchWebsiteConfiguration"},
		{"lifecycle", "NoSuchLifecycleConfiguration"}, {"replication", "ReplicationConfigurationNotFoundError"},
		{"encryption", "ServerSideEncryptionConfigurationNotFoundError"}, {"object-lock", "ObjectLockConfigurationNotFoundError"},
		{"tagging", "NoSuchTagSet"}, {"ownershipControls", "OwnershipControlsNotFoundError"},
		{"publicAccessBlock", "NoSuchPublicAccessBlockConfiguration"},
	} {
		e.wantErr(e.do(a, "GET", "/cfg?"+c.sub, nil), 404, c.code)
		e.wantErr(e.do(b, "GET", "/cfg?"+c.sub, nil), 403, "AccessDenied")
	}
	for sub, want := range map[string]string{
		"versioning":     "<VersioningConfiguration xmlns=",
		"accelerate":     "<AccelerateConfiguration xmlns=",
		"requestPayment": "<Payer>BucketOwner</Payer>",
		"logging":        "<BucketLoggingStatus xmlns=",
		"notification":   "<NotificationConfiguration xmlns=",
		"acl":            "<AccessControlPolicy",
	} {
		if r := e.must(e.do(a, "GET", "/cfg?"+sub, nil), 200); !strings.Contains(string(r.body), want) {
			t.Errorf("%s: %s", sub, r.body)
		}
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cfg/*"}]}`
	e.wantErr(e.do(a, "PUT", "/cfg?policy", []byte("not json")), 400, "MalformedPolicy")
	e.must(e.do(a, "PUT", "/cfg?policy", []byte(policy)), 204)
	if r := e.must(e.do(a, "GET", "/cfg?policy", nil), 200); string(r.body) != policy {
		t.Errorf("policy: %s", r.body)
	}
	e.must(e.do(a, "DELETE", "/cfg?policy", nil), 204)
	e.wantErr(e.do(a, "GET", "/cfg?policy", nil), 404, "NoSuchBucketPolicy")

	cors := `<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>`
	e.must(e.do(a, "PUT", "/cfg?cors", []byte(cors), "Content-MD5", md5b64([]byte(cors))), 200)
	e.wantErr(e.do(a, "PUT", "/cfg?cors", []byte(cors), "Content-MD5", md5b64([]byte("x"))), 400, "BadDigest")
	e.wantErr(e.do(a, "PUT", "/cfg?cors", []byte("<WebsiteConfiguration/>")), 400, "MalformedXML")
	if r := e.must(e.do(a, "GET", "/cfg?cors", nil), 200); string(r.body) != cors {
		t.Errorf("cors: %s", r.body)
	}
	e.must(e.do(a, "DELETE", "/cfg?cors", nil), 204)

	e.must(e.do(a, "PUT", "/cfg?tagging", []byte(`<Tagging><TagSet><Tag><Key>env</Key><Value>prod</Value></Tag></TagSet></Tagging>`)), 204)
	if r := e.must(e.do(a, "GET", "/cfg?tagging", nil), 200); !strings.Contains(string(r.body), "<Key>env</Key><Value>prod</Value>") {
		t.Errorf("tagging: %s", r.body)
	}
	e.wantErr(e.do(a, "PUT", "/cfg?tagging", []byte(`<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>`)), 400, "InvalidTag")
	e.wantErr(e.do(a, "PUT", "/cfg?tagging", []byte(`<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>`)), 400, "InvalidTag")
	e.must(e.do(a, "DELETE", "/cfg?tagging", nil), 204)
	e.wantErr(e.do(a, "GET", "/cfg?tagging", nil), 404, "NoSuchTagSet")

	e.must(e.do(a, "PUT", "/cfg?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)), 200)
	if r := e.must(e.do(a, "GET", "/cfg?versioning", nil), 200); !strings.Contains(string(r.body), "<Status>Enabled</Status>") {
		t.Errorf("versioning: %s", r.body)
	}
	e.wantErr(e.do(a, "PUT", "/cfg?versioning", []byte(`<VersioningConfiguration><Status>On</Status></VersioningConfiguration>`)), 400, "MalformedXML")
	lifecycle := `<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`
	e.must(e.do(a, "PUT", "/cfg?lifecycle", []byte(lifecycle)), 200)
	e.must(e.do(a, "GET", "/cfg?lifecycle", nil), 200)
	e.must(e.do(a, "PUT", "/cfg?website", []byte(`<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>`)), 200)
	e.must(e.do(a, "GET", "/cfg?website", nil), 200)

	// Features not built: NotImplemented, but switching them off is fine.
	e.wantErr(e.do(a, "PUT", "/cfg?replication", []byte(`<ReplicationConfiguration/>`)), 501, "NotImplemented")
	e.wantErr(e.do(a, "PUT", "/cfg?accelerate", []byte(`<AccelerateConfiguration><Status>Enabled</Status></AccelerateConfiguration>`)), 501, "NotImplemented")
	e.must(e.do(a, "PUT", "/cfg?accelerate", []byte(`<AccelerateConfiguration><Status>Suspended</Status></AccelerateConfiguration>`)), 200)
	e.must(e.do(a, "PUT", "/cfg?logging", []byte(`<BucketLoggingStatus/>`)), 200)
	e.wantErr(e.do(a, "PUT", "/cfg?logging", []byte(`<BucketLoggingStatus><LoggingEnabled><TargetBucket>cfg</TargetBucket></LoggingEnabled></BucketLoggingStatus>`)), 501, "NotImplemented")
	e.must(e.do(a, "DELETE", "/cfg?encryption", nil), 204)

	// Object tagging.
	e.must(e.do(a, "PUT", "/cfg/o", []byte("x")), 200)
	if r := e.must(e.do(a, "GET", "/cfg/o?tagging", nil), 200); !strings.Contains(string(r.body), "<TagSet></TagSet>") {
		t.Errorf("empty object tags: %s", r.body)
	}
	e.must(e.do(a, "PUT", "/cfg/o?tagging", []byte(`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`)), 200)
	if r := e.must(e.do(a, "GET", "/cfg/o?tagging", nil), 200); !strings.Contains(string(r.body), "<Key>k</Key>") {
		t.Errorf("object tags: %s", r.body)
	}
	var many strings.Builder
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&many, "<Tag><Key>k%d</Key><Value>v</Value></Tag>", i)
	}
	e.wantErr(e.do(a, "PUT", "/cfg/o?tagging", []byte("<Tagging><TagSet>"+many.String()+"</TagSet></Tagging>")), 400, "InvalidTag")
	e.must(e.do(a, "DELETE", "/cfg/o?tagging", nil), 204)
	e.wantErr(e.do(a, "GET", "/cfg/nope?tagging", nil), 404, "NoSuchKey")
	e.wantErr(e.do(a, "GET", "/cfg/o?retention", nil), 501, "NotImplemented")
}

func TestDeleteObjects(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/del", nil), 200)
	for _, k := range []string{"1", "2", "3"} {
		e.must(e.do(a, "PUT", "/del/"+k, []byte(k)), 200)
	}
	body := []byte(`<Delete><Object><Key>1</Key></Object><Object><Key>2</Key></Object><Object><Key>absent</Key></Object></Delete>`)
	e.wantErr(e.do(a, "POST", "/del?delete", body), 400, "InvalidRequest")
	e.wantErr(e.do(a, "POST", "/del?delete", body, "Content-MD5", md5b64([]byte("x"))), 400, "BadDigest")
	r := e.must(e.do(a, "POST", "/del?delete", body, "Content-MD5", md5b64(body)), 200)
	if strings.Count(string(r.body), "<Deleted>") != 3 {
		t.Errorf("delete objects: %s", r.body)
	}
	quiet := []byte(`<Delete><Quiet>true</Quiet><Object><Key>3</Key></Object></Delete>`)
	r = e.must(e.do(a, "POST", "/del?delete", quiet, "x-amz-checksum-crc32", crc32b64(quiet)), 200)
	if strings.Contains(string(r.body), "<Deleted>") {
		t.Errorf("quiet delete listed deletions: %s", r.body)
	}
	e.must(e.do(a, "DELETE", "/del", nil), 204)
	e.must(e.do(a, "PUT", "/del", nil), 200)
	e.wantErr(e.do(a, "POST", "/del?delete", []byte("<Delete/>"), "Content-MD5", md5b64([]byte("<Delete/>"))), 400, "MalformedXML")
}

func TestAuthErrors(t *testing.T) {
	e := newEnv(t)
	e.must(e.do(v4(e.alice, ""), "PUT", "/auth", nil), 200)
	bad := e.alice
	bad.secret = "wrong"
	e.wantErr(e.do(v4(bad, ""), "GET", "/auth", nil), 403, "SignatureDoesNotMatch")
	e.wantErr(e.do(v2(bad), "GET", "/auth", nil), 403, "SignatureDoesNotMatch")
	unknown := e.alice
	unknown.akid = "AKIANOSUCHKEY0000000"
	e.wantErr(e.do(v4(unknown, ""), "GET", "/auth", nil), 403, "InvalidAccessKeyId")
	e.wantErr(e.do(v4At(e.alice, "", time.Now().Add(-time.Hour)), "GET", "/auth", nil), 403, "RequestTimeTooSkewed")
	e.wantErr(e.do(anon, "GET", "/auth", nil, "Authorization", "AWS4-HMAC-SHA256 Credential=garbage"), 400, "AuthorizationHeaderMalformed")
	u := e.presignV4(e.alice, "GET", "/auth", 60)
	last := "0"
	if strings.HasSuffix(u, "0") {
		last = "1"
	}
	res, err := http.Get(u[:len(u)-1] + last)
	if err != nil || res.StatusCode != 403 {
		t.Errorf("tampered presigned URL: %v %v", res, err)
	}
	// SigV2 as euca2ools sends it: a "-0000" date, canned aws-exec-read.
	e.must(e.do(v2(e.alice), "PUT", "/auth/part", []byte("x"), "x-amz-acl", "aws-exec-read", "Content-Type", "application/octet-stream"), 200)
	e.must(e.do(v2(e.alice), "GET", "/auth?max-keys=0", nil), 200)
	// The secret never reaches the log.
	if strings.Contains(e.logs.String(), e.alice.secret) {
		t.Error("the secret key was logged")
	}
	if !strings.Contains(e.logs.String(), "op=PutObject") {
		t.Errorf("no request log line: %s", e.logs.String())
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t, func(c *conf.Config) { c.WalrusMaxBucketSizeMB = 1 })
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/lim", nil), 200)
	half := bytes.Repeat([]byte("h"), 600<<10)
	e.must(e.do(a, "PUT", "/lim/one", half), 200)
	e.wantErr(e.do(a, "PUT", "/lim/two", half), 400, "EntityTooLarge")
	// Replacing an object counts its old size out.
	e.must(e.do(a, "PUT", "/lim/one", half), 200)
	if r := e.must(e.do(a, "GET", "/lim/one", nil), 200); !bytes.Equal(r.body, half) {
		t.Error("object lost")
	}
	e.wantErr(e.do(a, "PUT", "/lim/copy", nil, "X-Amz-Copy-Source", "/lim/one"), 400, "EntityTooLarge")
}

// TestConcurrentReadersSeeWholeObjects: while an object is overwritten
// again and again, every read returns one whole version.
func TestConcurrentReadersSeeWholeObjects(t *testing.T) {
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/race", nil), 200)
	versions := [][]byte{bytes.Repeat([]byte("A"), 3<<20), bytes.Repeat([]byte("B"), 2<<20), bytes.Repeat([]byte("C"), 1<<20+7)}
	e.must(e.do(a, "PUT", "/race/o", versions[0]), 200)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := e.do(a, "PUT", "/race/o", versions[i%len(versions)])
			if r.status != 200 {
				t.Errorf("put: %v", r)
				return
			}
		}
	}()
	for i := 0; i < 40; i++ {
		r := e.do(a, "GET", "/race/o", nil)
		ok := false
		for _, v := range versions {
			if bytes.Equal(r.body, v) && r.header.Get("ETag") == quoteETag(hex.EncodeToString(func() []byte { s := md5sum(v); return s[:] }())) {
				ok = true
			}
		}
		if r.status != 200 || !ok {
			t.Fatalf("read %d: status %d, %d bytes, not one whole version", i, r.status, len(r.body))
		}
	}
	close(stop)
	wg.Wait()
}
