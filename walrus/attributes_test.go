package walrus

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestPartNumber: GetObject and HeadObject with partNumber answer the
// part's bytes (206, its Content-Range, x-amz-mp-parts-count) of a
// multipart object, the whole object as part 1 of any other, and S3's
// errors otherwise.
func TestPartNumber(t *testing.T) {
	smallParts(t)
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/pnum", nil), 200)
	mp := e.multipartObject("/pnum/mp", "first-", "second--", "end")

	for n, want := range []struct {
		body, rng string
	}{{"first-", "bytes 0-5/17"}, {"second--", "bytes 6-13/17"}, {"end", "bytes 14-16/17"}} {
		r := e.must(e.do(a, "GET", fmt.Sprintf("/pnum/mp?partNumber=%d", n+1), nil), 206)
		if string(r.body) != want.body || r.header.Get("Content-Range") != want.rng || r.header.Get("x-amz-mp-parts-count") != "3" || r.header.Get("ETag") != mp {
			t.Errorf("part %d: %q %v", n+1, r.body, r.header)
		}
	}
	h := e.must(e.do(a, "HEAD", "/pnum/mp?partNumber=2", nil), 206)
	if h.header.Get("Content-Length") != "8" || h.header.Get("x-amz-mp-parts-count") != "3" {
		t.Errorf("head part 2: %v", h.header)
	}
	if r := e.must(e.do(a, "GET", "/pnum/mp", nil), 200); r.header.Get("x-amz-mp-parts-count") != "" {
		t.Errorf("parts count without partNumber: %v", r.header)
	}
	e.wantErr(e.do(a, "GET", "/pnum/mp?partNumber=4", nil), 416, "InvalidPartNumber")
	e.wantErr(e.do(a, "GET", "/pnum/mp?partNumber=0", nil), 400, "InvalidArgument")
	e.wantErr(e.do(a, "GET", "/pnum/mp?partNumber=x", nil), 400, "InvalidArgument")
	e.wantErr(e.do(a, "GET", "/pnum/mp?partNumber=1", nil, "Range", "bytes=0-1"), 400, "InvalidRequest")

	e.must(e.do(a, "PUT", "/pnum/single", []byte("0123456789")), 200)
	r := e.must(e.do(a, "GET", "/pnum/single?partNumber=1", nil), 206)
	if string(r.body) != "0123456789" || r.header.Get("Content-Range") != "bytes 0-9/10" || r.header.Get("x-amz-mp-parts-count") != "" {
		t.Errorf("single part 1: %q %v", r.body, r.header)
	}
	e.wantErr(e.do(a, "GET", "/pnum/single?partNumber=2", nil), 416, "InvalidPartNumber")
}

// multipartObject uploads parts and completes them into path, returning
// the object's quoted ETag.
func (e *testEnv) multipartObject(path string, parts ...string) string {
	e.t.Helper()
	a := v4(e.alice, "")
	var init struct{ UploadId string }
	r := e.must(e.do(a, "POST", path+"?uploads", nil), 200)
	if err := xml.Unmarshal(r.body, &init); err != nil {
		e.t.Fatal(err)
	}
	id := url.QueryEscape(init.UploadId)
	var body strings.Builder
	body.WriteString("<CompleteMultipartUpload>")
	for i, p := range parts {
		r := e.must(e.do(a, "PUT", fmt.Sprintf("%s?partNumber=%d&uploadId=%s", path, i+1, id), []byte(p)), 200)
		fmt.Fprintf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, r.header.Get("ETag"))
	}
	body.WriteString("</CompleteMultipartUpload>")
	var done struct{ ETag string }
	r = e.must(e.do(a, "POST", path+"?uploadId="+id, []byte(body.String())), 200)
	if err := xml.Unmarshal(r.body, &done); err != nil {
		e.t.Fatal(err)
	}
	return done.ETag
}

// TestGetObjectAttributes: the attributes asked for, of a multipart object
// (its parts paged) and of one put whole with a checksum.
func TestGetObjectAttributes(t *testing.T) {
	smallParts(t)
	m := loadS3Model(t)
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/goa", nil), 200)
	mp := e.multipartObject("/goa/mp", "first-", "second--", "end")
	type attrs struct {
		ETag         string
		ObjectSize   *int64
		StorageClass string
		Checksum     struct{ ChecksumCRC32, ChecksumType string }
		ObjectParts  *struct {
			PartsCount, PartNumberMarker, NextPartNumberMarker, MaxParts int
			IsTruncated                                                  bool
			Parts                                                        []struct {
				PartNumber int
				Size       int64
			} `xml:"Part"`
		}
	}
	get := func(path string, headers ...string) attrs {
		t.Helper()
		r := e.must(e.do(a, "GET", path+"?attributes", nil, headers...), 200)
		m.checkOutput(t, "GetObjectAttributes", r.body)
		if r.header.Get("Last-Modified") == "" {
			t.Errorf("no Last-Modified")
		}
		var res attrs
		if err := xml.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := get("/goa/mp", "X-Amz-Object-Attributes", "ETag,ObjectSize,ObjectParts,StorageClass")
	if `"`+res.ETag+`"` != mp || res.ObjectSize == nil || *res.ObjectSize != 17 || res.StorageClass != "STANDARD" ||
		res.ObjectParts == nil || res.ObjectParts.PartsCount != 3 || len(res.ObjectParts.Parts) != 3 || res.ObjectParts.Parts[1].Size != 8 {
		t.Errorf("multipart attributes: %+v", res)
	}
	res = get("/goa/mp", "X-Amz-Object-Attributes", "ObjectParts", "X-Amz-Max-Parts", "1", "X-Amz-Part-Number-Marker", "1")
	if p := res.ObjectParts; p == nil || !p.IsTruncated || len(p.Parts) != 1 || p.Parts[0].PartNumber != 2 || p.NextPartNumberMarker != 2 || p.PartNumberMarker != 1 || res.ETag != "" || res.ObjectSize != nil {
		t.Errorf("paged parts: %+v", res.ObjectParts)
	}

	body := []byte("whole")
	e.must(e.do(a, "PUT", "/goa/single", body, "x-amz-checksum-crc32", crc32b64(body)), 200)
	res = get("/goa/single", "X-Amz-Object-Attributes", "Checksum,ObjectParts,ObjectSize")
	if res.Checksum.ChecksumCRC32 != crc32b64(body) || res.ObjectParts != nil || *res.ObjectSize != 5 {
		t.Errorf("single attributes: %+v", res)
	}
	e.wantErr(e.do(a, "GET", "/goa/single?attributes", nil), 400, "InvalidRequest")
	e.wantErr(e.do(a, "GET", "/goa/single?attributes", nil, "X-Amz-Object-Attributes", "Color"), 400, "InvalidArgument")
	e.wantErr(e.do(a, "GET", "/goa/none?attributes", nil, "X-Amz-Object-Attributes", "ETag"), 404, "NoSuchKey")
	e.wantErr(e.do(v4(e.bob, ""), "GET", "/goa/single?attributes", nil, "X-Amz-Object-Attributes", "ETag"), 403, "AccessDenied")
}
