package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/backend"
)

// storedHeaders are the request headers kept with an object and returned
// with it (user metadata, x-amz-meta-*, is kept too).
var storedHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
	"Cache-Control", "Expires", "X-Amz-Website-Redirect-Location",
}

// maxUserMetadata is S3's limit on the x-amz-meta-* headers: 2 KB.
const maxUserMetadata = 2048

var storageClasses = map[string]bool{
	"STANDARD": true, "REDUCED_REDUNDANCY": true, "STANDARD_IA": true, "ONEZONE_IA": true,
	"INTELLIGENT_TIERING": true, "GLACIER": true, "DEEP_ARCHIVE": true, "GLACIER_IR": true,
	"OUTPOSTS": true, "SNOW": true, "EXPRESS_ONEZONE": true,
}

// contentEncoding is the Content-Encoding an object keeps: the header as
// the client sent it (several lines joined as one), less aws-chunked,
// which describes how this request's body was framed, not the object.
func contentEncoding(values []string) string {
	ce := strings.Join(values, ", ")
	chunked := false
	var keep []string
	for _, p := range strings.Split(ce, ",") {
		if strings.EqualFold(strings.TrimSpace(p), "aws-chunked") {
			chunked = true
		} else if strings.TrimSpace(p) != "" {
			keep = append(keep, p)
		}
	}
	if !chunked {
		return strings.TrimSpace(ce)
	}
	return strings.TrimSpace(strings.Join(keep, ","))
}

// objectHeaders reads the headers an object keeps. Names are stored lower
// case ("content-type", "x-amz-meta-color"), as S3 returns metadata.
func objectHeaders(h http.Header) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range storedHeaders {
		if v := h.Get(name); v != "" {
			out[strings.ToLower(name)] = v
		}
	}
	if ce := contentEncoding(h.Values("Content-Encoding")); ce != "" {
		out["content-encoding"] = ce
	} else {
		delete(out, "content-encoding")
	}
	if _, ok := out["content-type"]; !ok {
		out["content-type"] = "binary/octet-stream"
	}
	if sc := h.Get("X-Amz-Storage-Class"); sc != "" {
		if !storageClasses[sc] {
			return nil, s3Error("InvalidStorageClass")
		}
		if sc != "STANDARD" {
			out["x-amz-storage-class"] = sc
		}
	}
	size := 0
	for name, vs := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-meta-") || len(vs) == 0 {
			continue
		}
		v := strings.Join(vs, ",")
		out[lower] = v
		size += len(lower) - len("x-amz-meta-") + len(v)
	}
	if size > maxUserMetadata {
		return nil, s3Error("MetadataTooLarge")
	}
	return out, nil
}

// object loads the request's object with its bucket, checking perm on the
// object. A caller that may not list the bucket learns AccessDenied rather
// than whether the key exists, as S3 does.
func (w *Walrus) object(ctx context.Context, r *request, bucket, key, perm string) (store.WalrusBucket, store.WalrusObject, error) {
	b, err := w.st.WalrusBucket(ctx, bucket)
	if errors.Is(err, store.ErrNotFound) {
		return b, store.WalrusObject{}, s3Error("NoSuchBucket")
	}
	if err != nil {
		return b, store.WalrusObject{}, internal("bucket %s: %w", bucket, err)
	}
	expect := "X-Amz-Expected-Bucket-Owner"
	if bucket != r.bucket || key != r.key {
		expect = "X-Amz-Source-Expected-Bucket-Owner" // a copy's source
	}
	if eo := r.http.Header.Get(expect); eo != "" && eo != b.AccountID {
		return b, store.WalrusObject{}, s3Error("AccessDenied")
	}
	o, err := w.st.WalrusObject(ctx, bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		list := access{perm: permRead, owner: b.AccountID, acl: b.ACL, action: "s3:ListBucket"}
		if w.authorize(ctx, r, b, list) == nil {
			return b, o, s3Error("NoSuchKey")
		}
		return b, o, s3Error("AccessDenied")
	}
	if err != nil {
		return b, o, internal("object %s/%s: %w", bucket, key, err)
	}
	action := actionOf(r.op)
	if bucket != r.bucket || key != r.key {
		action = "s3:GetObject" // a copy's source
	}
	return b, o, w.authorize(ctx, r, b, access{perm: perm, owner: o.OwnerID, acl: o.ACL, action: action, key: key, object: &o})
}

// checkVersion refuses a versionId other than the "null" version every
// object here is.
func checkVersion(r *request) error {
	if v, ok := r.query["versionId"]; ok && v[0] != "null" {
		return s3Errorf("InvalidArgument", "Invalid version id specified")
	}
	return nil
}

// writeOwner is who owns what a request writes: its caller, or for an
// anonymous write into a public-read-write bucket, the bucket's owner.
func writeOwner(r *request, b store.WalrusBucket) string {
	if r.anonymous {
		return b.AccountID
	}
	return r.caller.AccountID
}

// bucketLimitError refuses a write over WALRUS_MAX_BUCKET_SIZE_MB.
func (w *Walrus) bucketLimitError() error {
	return s3Errorf("EntityTooLarge", "Your proposed upload exceeds the bucket's size limit of %d MB (WALRUS_MAX_BUCKET_SIZE_MB).", w.cfg.WalrusMaxBucketSizeMB)
}

func (w *Walrus) maxBucketBytes() int64 { return w.cfg.WalrusMaxBucketSizeMB << 20 }

// putOptions are the store's conditions for an object write.
func (w *Walrus) putOptions(r *request) store.WalrusPutOptions {
	opt := store.WalrusPutOptions{MaxBucketBytes: w.maxBucketBytes()}
	if strings.TrimSpace(r.http.Header.Get("If-None-Match")) == "*" {
		opt.IfNoneMatch = true
	}
	if v := r.http.Header.Get("If-Match"); v != "" {
		opt.IfMatch = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return opt
}

// commitObject points the object's row at its new blob and deletes the
// blob it replaced; on failure it deletes the new blob instead.
func (w *Walrus) commitObject(ctx context.Context, o store.WalrusObject, opt store.WalrusPutOptions) error {
	old, err := w.st.PutWalrusObject(ctx, o, opt)
	if err != nil {
		w.deleteBlob(ctx, o.Bucket, o.Blob)
		switch {
		case errors.Is(err, store.ErrWalrusLimit):
			return w.bucketLimitError()
		case errors.Is(err, store.ErrWalrusPrecondition):
			return s3Error("PreconditionFailed")
		case errors.Is(err, store.ErrNotFound) && opt.IfMatch != "":
			return s3Error("NoSuchKey")
		case errors.Is(err, store.ErrNotFound):
			return s3Error("NoSuchBucket")
		}
		return internal("store object %s/%s: %w", o.Bucket, o.Key, err)
	}
	if old != "" {
		w.deleteBlob(ctx, o.Bucket, old)
	}
	return nil
}

// deleteBlob removes a blob no row refers to any more. A failure only
// leaves garbage, which the next start sweeps.
func (w *Walrus) deleteBlob(ctx context.Context, bucket, id string) {
	if err := w.be.Delete(context.WithoutCancel(ctx), bucket, id); err != nil {
		w.log.WarnContext(ctx, "delete blob", "bucket", bucket, "blob", id, "err", err)
	}
}

// parseTagging reads the x-amz-tagging header (a URL-encoded query).
func parseTaggingHeader(v string) ([]store.Tag, error) {
	if v == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return nil, s3Errorf("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	var tags []store.Tag
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, s3Errorf("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
		}
		tags = append(tags, store.Tag{Key: k, Value: vs[0]})
	}
	return tags, validateTags(tags, maxObjectTags)
}

// storeBody streams a request's body into a new blob, verifying it.
func (w *Walrus) storeBody(ctx context.Context, r *request, b store.WalrusBucket) (backend.Blob, *bodyCheck, error) {
	size, err := declaredSize(r)
	if err != nil {
		return backend.Blob{}, nil, err
	}
	if size > maxPutSize {
		return backend.Blob{}, nil, s3Error("EntityTooLarge")
	}
	// Refuse early what cannot fit (the store checks again at commit).
	if max := w.maxBucketBytes(); max > 0 && size > 0 {
		used := b.SizeBytes
		if r.key != "" && !r.query.Has("uploadId") {
			if old, err := w.st.WalrusObject(ctx, b.Name, r.key); err == nil {
				used -= old.Size
			}
		}
		if used+size > max {
			return backend.Blob{}, nil, w.bucketLimitError()
		}
	}
	check, err := newBodyCheck(r, r.http.Body, size)
	if err != nil {
		return backend.Blob{}, nil, err
	}
	blob, err := w.be.Write(ctx, b.Name, check)
	check.Close() // the stream may have stopped before its end
	r.bytesIn += check.n
	if err != nil {
		return backend.Blob{}, nil, uploadError(err)
	}
	return blob, check, nil
}

// objectAttrs are what a request that makes a new object (PutObject,
// CreateMultipartUpload) sets from its headers.
type objectAttrs struct {
	headers map[string]string
	owner   string
	acl     []store.WalrusGrant
	tags    []store.Tag
}

func (w *Walrus) newObjectAttrs(ctx context.Context, r *request, b store.WalrusBucket) (objectAttrs, error) {
	return w.newObjectAttrsFrom(ctx, r, b, r.http.Header)
}

// newObjectAttrsFrom reads the attributes from h, the request's headers or
// what stands for them (a POST upload's form fields).
func (w *Walrus) newObjectAttrsFrom(ctx context.Context, r *request, b store.WalrusBucket, h http.Header) (objectAttrs, error) {
	headers, err := objectHeaders(h)
	if err != nil {
		return objectAttrs{}, err
	}
	owner, acl, err := w.newObjectACL(ctx, r, b, h)
	if err != nil {
		return objectAttrs{}, err
	}
	tags, err := parseTaggingHeader(h.Get("X-Amz-Tagging"))
	if err != nil {
		return objectAttrs{}, err
	}
	return objectAttrs{headers: headers, owner: owner, acl: acl, tags: tags}, nil
}

func (w *Walrus) putObject(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	a, err := w.newObjectAttrs(ctx, r, b)
	if err != nil {
		return nil, err
	}
	blob, check, err := w.storeBody(ctx, r, b)
	if err != nil {
		return nil, err
	}
	o := store.WalrusObject{Bucket: b.Name, Key: r.key, Blob: blob.ID, Size: blob.Size, ETag: check.etag(),
		OwnerID: a.owner, ACL: a.acl, Headers: a.headers, Tags: a.tags, Checksum: check.checksum()}
	if err := w.commitObject(ctx, o, w.putOptions(r)); err != nil {
		return nil, err
	}
	resp := newResponse(http.StatusOK)
	resp.header.Set("ETag", quoteETag(o.ETag))
	if algo, sum, ok := strings.Cut(o.Checksum, ":"); ok {
		resp.header.Set("x-amz-checksum-"+strings.ToLower(algo), sum)
	}
	return resp, nil
}

// setObjectHeaders writes an object's headers into a response.
func setObjectHeaders(h http.Header, o store.WalrusObject) {
	for k, v := range o.Headers {
		if strings.HasPrefix(k, "x-amz-meta-") {
			// As S3 sends them, lower case: SDKs take the metadata's
			// names from the header names as sent.
			h[k] = []string{v}
			continue
		}
		h.Set(k, v)
	}
	h.Set("ETag", quoteETag(o.ETag))
	h.Set("Last-Modified", msToTime(o.ModifiedMS).Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if len(o.Tags) > 0 {
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(o.Tags)))
	}
}

// responseOverrides are the query parameters of GetObject that replace a
// header of the answer.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// getObject serves GetObject and HeadObject.
func (w *Walrus) getObject(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	part := 0
	if r.query.Has("partNumber") {
		n, err := partNumber(r)
		if err != nil {
			return nil, err
		}
		if r.http.Header.Get("Range") != "" {
			return nil, s3Errorf("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
		}
		part = n
	}
	for q := range responseOverrides {
		if r.query.Has(q) && r.anonymous {
			return nil, s3Errorf("InvalidRequest", "Request specific response headers cannot be used for anonymous GET requests.")
		}
	}
	for attempt := 0; ; attempt++ {
		b, o, err := w.object(ctx, r, r.bucket, r.key, permRead)
		if err != nil {
			return nil, err
		}
		resp := newResponse(http.StatusOK)
		setObjectHeaders(resp.header, o)
		if status := preconditions(r.http.Header, o.ETag, msToTime(o.ModifiedMS)); status != 0 {
			if status == http.StatusPreconditionFailed {
				return nil, s3Error("PreconditionFailed")
			}
			nm := newResponse(http.StatusNotModified)
			for _, k := range []string{"ETag", "Last-Modified", "Cache-Control", "Expires"} {
				if v := resp.header.Get(k); v != "" {
					nm.header.Set(k, v)
				}
			}
			return nm, nil
		}
		for q, h := range responseOverrides {
			if v := r.query.Get(q); v != "" {
				resp.header.Set(h, v)
			}
		}
		start, length, partial, err := parseRange(r.http.Header.Get("Range"), o.Size)
		if part > 0 {
			start, length, partial, err = partRange(o, part, resp.header)
		}
		if err != nil {
			return nil, err
		}
		if partial {
			resp.status = http.StatusPartialContent
			resp.header.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(o.Size, 10))
		}
		if r.http.Method == http.MethodHead {
			resp.header.Set("Content-Length", strconv.FormatInt(length, 10))
			return resp, nil
		}
		f, _, err := w.be.Open(ctx, b.Name, o.Blob)
		if errors.Is(err, backend.ErrNotFound) && attempt < 3 {
			// Replaced between reading its row and opening its blob:
			// read the row again.
			continue
		}
		if err != nil {
			return nil, internal("open %s/%s: %w", b.Name, o.Key, err)
		}
		if start > 0 {
			if _, err := f.Seek(start, io.SeekStart); err != nil {
				f.Close()
				return nil, internal("seek %s/%s: %w", b.Name, o.Key, err)
			}
		}
		// An *io.LimitedReader over the *os.File lets net/http send it
		// with sendfile(2).
		resp.body = &io.LimitedReader{R: f, N: length}
		resp.closer = f
		resp.length = length
		return resp, nil
	}
}

// partRange is the byte range of part n of an object (GetObject and
// HeadObject with partNumber): of a multipart object, the part with that
// index in the completed list, whose count goes in x-amz-mp-parts-count;
// of any other object, part 1 is the whole object (still answered 206 with
// its Content-Range, as S3 does). A part past the last is
// InvalidPartNumber.
func partRange(o store.WalrusObject, n int, h http.Header) (start, length int64, partial bool, err error) {
	switch {
	case len(o.PartList) > 0:
		if n > len(o.PartList) {
			return 0, 0, false, s3Error("InvalidPartNumber")
		}
		for _, p := range o.PartList[:n-1] {
			start += p.Size
		}
		h.Set("x-amz-mp-parts-count", strconv.Itoa(len(o.PartList)))
		return start, o.PartList[n-1].Size, true, nil
	case o.Parts > 0:
		// Completed before part lists were kept: its boundaries are lost.
		return 0, 0, false, s3Errorf("InvalidRequest", "The part boundaries of this object were not recorded when it was uploaded; read it whole or by Range.")
	case n != 1:
		return 0, 0, false, s3Error("InvalidPartNumber")
	}
	return 0, o.Size, o.Size > 0, nil
}

// preconditions applies If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since with RFC 7232's precedence, which S3 follows: it
// returns 0 to serve, 412, or 304.
func preconditions(h http.Header, etag string, modified time.Time) int {
	modified = modified.Truncate(time.Second)
	if v := h.Get("If-Match"); v != "" {
		if !etagMatches(v, etag) {
			return http.StatusPreconditionFailed
		}
	} else if t, err := http.ParseTime(h.Get("If-Unmodified-Since")); err == nil && modified.After(t) {
		return http.StatusPreconditionFailed
	}
	if v := h.Get("If-None-Match"); v != "" {
		if etagMatches(v, etag) {
			return http.StatusNotModified
		}
	} else if t, err := http.ParseTime(h.Get("If-Modified-Since")); err == nil && !modified.After(t) {
		return http.StatusNotModified
	}
	return 0
}

// etagMatches reports whether a list of entity tags ("*" for any) names
// etag.
func etagMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || strings.Trim(t, `"`) == etag {
			return true
		}
	}
	return false
}

// parseRange reads a Range header against an object of size bytes. A
// header S3 would ignore (not bytes=, several ranges, unparsable) serves
// the whole object; a range that starts past the end is InvalidRange.
func parseRange(h string, size int64) (start, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	invalid := s3Errorf("InvalidRange", "The requested range is not satisfiable")
	if first == "" { // the last N bytes
		n, e := strconv.ParseInt(last, 10, 64)
		if e != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, invalid
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, e := strconv.ParseInt(first, 10, 64)
	if e != nil || a < 0 {
		return 0, size, false, nil
	}
	b := size - 1
	if last != "" {
		if b, e = strconv.ParseInt(last, 10, 64); e != nil || b < a {
			return 0, size, false, nil
		}
	}
	if a >= size {
		return 0, 0, false, invalid
	}
	b = min(b, size-1)
	return a, b - a + 1, true, nil
}

func (w *Walrus) deleteObject(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	b, err := w.bucket(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	if err := w.removeObject(ctx, b.Name, r.key); err != nil {
		return nil, err
	}
	return newResponse(http.StatusNoContent), nil
}

func (w *Walrus) removeObject(ctx context.Context, bucket, key string) error {
	blob, err := w.st.DeleteWalrusObject(ctx, bucket, key)
	if err != nil {
		return internal("delete %s/%s: %w", bucket, key, err)
	}
	if blob != "" {
		w.deleteBlob(ctx, bucket, blob)
	}
	return nil
}

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name        `xml:"DeleteResult"`
	Xmlns   string          `xml:"xmlns,attr"`
	Deleted []deletedObject `xml:"Deleted"`
	Errors  []deleteError   `xml:"Error"`
}

type deletedObject struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
}

type deleteError struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
}

// maxDeleteKeys is how many keys one DeleteObjects may name.
const maxDeleteKeys = 1000

func (w *Walrus) deleteObjects(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	// S3 requires an integrity check on this call: Content-MD5, or one of
	// the newer x-amz-checksum-* headers. payload verifies whichever came.
	hasChecksum := r.http.Header.Get("Content-MD5") != "" || r.http.Header.Get("X-Amz-Trailer") != ""
	for _, a := range checksumAlgos {
		hasChecksum = hasChecksum || r.http.Header.Get(a.header) != ""
	}
	if !hasChecksum {
		return nil, s3Errorf("InvalidRequest", "Missing required header for this request: Content-MD5")
	}
	body, err := r.payload()
	if err != nil {
		return nil, err
	}
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return nil, s3Error("MalformedXML")
	}
	doc := deleteResult{Xmlns: s3NS}
	for _, obj := range req.Objects {
		switch {
		case obj.VersionID != "" && obj.VersionID != "null":
			doc.Errors = append(doc.Errors, deleteError{Key: obj.Key, VersionID: obj.VersionID, Code: "NoSuchVersion", Message: "The specified version does not exist."})
			continue
		case obj.Key == "" || len(obj.Key) > 1024:
			doc.Errors = append(doc.Errors, deleteError{Key: obj.Key, Code: "InvalidArgument", Message: "Invalid key."})
			continue
		}
		del := access{perm: permWrite, owner: b.AccountID, acl: b.ACL, action: "s3:DeleteObject", key: obj.Key}
		if err := w.authorize(ctx, r, b, del); err != nil {
			doc.Errors = append(doc.Errors, deleteErrorOf(obj.Key, err))
			continue
		}
		if err := w.removeObject(ctx, b.Name, obj.Key); err != nil {
			w.log.ErrorContext(ctx, "delete object", "bucket", b.Name, "key", obj.Key, "err", err)
			doc.Errors = append(doc.Errors, deleteError{Key: obj.Key, Code: "InternalError", Message: "We encountered an internal error. Please try again."})
			continue
		}
		if !req.Quiet {
			doc.Deleted = append(doc.Deleted, deletedObject{Key: obj.Key, VersionID: obj.VersionID})
		}
	}
	return xmlResponse(doc), nil
}

// copySource reads x-amz-copy-source: "bucket/key" or "/bucket/key",
// URL-encoded, with an optional ?versionId=.
func copySource(r *request) (bucket, key string, err error) {
	v := r.http.Header.Get("X-Amz-Copy-Source")
	src, version, _ := strings.Cut(v, "?")
	if version != "" {
		q, _ := url.ParseQuery(version)
		if vid := q.Get("versionId"); vid != "" && vid != "null" {
			return "", "", s3Errorf("InvalidArgument", "Invalid version id specified")
		}
	}
	src, uerr := url.PathUnescape(src)
	if uerr != nil {
		return "", "", s3Errorf("InvalidArgument", "Invalid copy source encoding")
	}
	src = strings.TrimPrefix(src, "/")
	bucket, key, ok := strings.Cut(src, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", s3Errorf("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	return bucket, key, nil
}

// copyPreconditions applies the x-amz-copy-source-if-* headers.
func copyPreconditions(h http.Header, o store.WalrusObject) error {
	hh := http.Header{}
	for _, p := range []struct{ from, to string }{
		{"X-Amz-Copy-Source-If-Match", "If-Match"},
		{"X-Amz-Copy-Source-If-None-Match", "If-None-Match"},
		{"X-Amz-Copy-Source-If-Modified-Since", "If-Modified-Since"},
		{"X-Amz-Copy-Source-If-Unmodified-Since", "If-Unmodified-Since"},
	} {
		if v := h.Get(p.from); v != "" {
			hh.Set(p.to, v)
		}
	}
	if preconditions(hh, o.ETag, msToTime(o.ModifiedMS)) != 0 {
		return s3Error("PreconditionFailed")
	}
	return nil
}

// openSource opens the data of a copy source the caller may read.
func (w *Walrus) openSource(ctx context.Context, r *request) (store.WalrusObject, backend.Reader, error) {
	sb, sk, err := copySource(r)
	if err != nil {
		return store.WalrusObject{}, nil, err
	}
	for attempt := 0; ; attempt++ {
		_, src, err := w.object(ctx, r, sb, sk, permRead)
		if err != nil {
			return src, nil, err
		}
		if err := copyPreconditions(r.http.Header, src); err != nil {
			return src, nil, err
		}
		f, _, err := w.be.Open(ctx, sb, src.Blob)
		if errors.Is(err, backend.ErrNotFound) && attempt < 3 {
			continue
		}
		if err != nil {
			return src, nil, internal("open copy source: %w", err)
		}
		return src, f, nil
	}
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

func (w *Walrus) copyObject(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	sb, sk, err := copySource(r)
	if err != nil {
		return nil, err
	}
	directive := strings.ToUpper(r.http.Header.Get("X-Amz-Metadata-Directive"))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return nil, s3Errorf("InvalidArgument", "Unknown metadata directive.")
	}
	tagDirective := strings.ToUpper(r.http.Header.Get("X-Amz-Tagging-Directive"))
	if tagDirective != "" && tagDirective != "COPY" && tagDirective != "REPLACE" {
		return nil, s3Errorf("InvalidArgument", "Unknown tagging directive.")
	}
	if sb == b.Name && sk == r.key && directive != "REPLACE" && r.http.Header.Get("X-Amz-Storage-Class") == "" {
		return nil, s3Errorf("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	src, f, err := w.openSource(ctx, r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if src.Size > maxPutSize {
		return nil, s3Errorf("InvalidRequest", "The specified copy source is larger than the maximum allowable size for a copy source: %d", int64(maxPutSize))
	}
	if max := w.maxBucketBytes(); max > 0 && b.SizeBytes+src.Size > max {
		return nil, w.bucketLimitError()
	}
	headers := src.Headers
	if directive == "REPLACE" {
		if headers, err = objectHeaders(r.http.Header); err != nil {
			return nil, err
		}
	} else if sc := r.http.Header.Get("X-Amz-Storage-Class"); sc != "" {
		if !storageClasses[sc] {
			return nil, s3Error("InvalidStorageClass")
		}
		headers["x-amz-storage-class"] = sc
	}
	tags := src.Tags
	if tagDirective == "REPLACE" {
		if tags, err = parseTaggingHeader(r.http.Header.Get("X-Amz-Tagging")); err != nil {
			return nil, err
		}
	}
	owner, acl, err := w.newObjectACL(ctx, r, b, r.http.Header)
	if err != nil {
		return nil, err
	}
	// A copy is a new single-part object: its ETag is the MD5 of its data,
	// computed while the data is copied.
	sr := &request{http: &http.Request{Header: http.Header{}}}
	check, err := newBodyCheck(sr, f, src.Size)
	if err != nil {
		return nil, err
	}
	blob, err := w.be.Write(ctx, b.Name, check)
	check.Close() // the stream may have stopped before its end
	if err != nil {
		return nil, uploadError(err)
	}
	o := store.WalrusObject{Bucket: b.Name, Key: r.key, Blob: blob.ID, Size: blob.Size, ETag: check.etag(),
		OwnerID: owner, ACL: acl, Headers: headers, Tags: tags}
	if err := w.commitObject(ctx, o, w.putOptions(r)); err != nil {
		return nil, err
	}
	stored, err := w.st.WalrusObject(ctx, b.Name, r.key)
	if err != nil {
		return nil, internal("read back copy: %w", err)
	}
	return xmlResponse(copyObjectResult{Xmlns: s3NS, LastModified: xmlTime(stored.ModifiedMS), ETag: quoteETag(o.ETag)}), nil
}

func (w *Walrus) getObjectACL(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	b, o, err := w.object(ctx, r, r.bucket, r.key, permReadACP)
	if err != nil {
		return nil, err
	}
	owner, acl, err := w.objectACL(ctx, b, o)
	if err != nil {
		return nil, err
	}
	return xmlResponse(w.policyDoc(ctx, owner, acl)), nil
}

func (w *Walrus) putObjectACL(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	b, o, err := w.object(ctx, r, r.bucket, r.key, permWriteACP)
	if err != nil {
		return nil, err
	}
	acl, err := w.aclForPut(ctx, r, o.OwnerID, b.AccountID)
	if err != nil {
		return nil, err
	}
	if err := w.st.SetWalrusObjectACL(ctx, b.Name, o.Key, acl); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s3Error("NoSuchKey")
		}
		return nil, internal("set object acl: %w", err)
	}
	return newResponse(http.StatusOK), nil
}

func (w *Walrus) getObjectTagging(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	// Tags are not part of what an ACL's READ grant shows (S3 governs them
	// by policy, not ACLs): reading them takes READ_ACP, as the owner has.
	_, o, err := w.object(ctx, r, r.bucket, r.key, permReadACP)
	if err != nil {
		return nil, err
	}
	return xmlResponse(taggingDoc(o.Tags)), nil
}

func (w *Walrus) putObjectTagging(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	b, o, err := w.object(ctx, r, r.bucket, r.key, permWriteACP)
	if err != nil {
		return nil, err
	}
	body, err := r.payload()
	if err != nil {
		return nil, err
	}
	tags, err := parseTagging(body, maxObjectTags)
	if err != nil {
		return nil, err
	}
	if err := w.st.SetWalrusObjectTags(ctx, b.Name, o.Key, tags); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s3Error("NoSuchKey")
		}
		return nil, internal("set object tags: %w", err)
	}
	return newResponse(http.StatusOK), nil
}

func (w *Walrus) deleteObjectTagging(ctx context.Context, r *request) (*response, error) {
	if err := checkVersion(r); err != nil {
		return nil, err
	}
	b, o, err := w.object(ctx, r, r.bucket, r.key, permWriteACP)
	if err != nil {
		return nil, err
	}
	if err := w.st.SetWalrusObjectTags(ctx, b.Name, o.Key, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, internal("delete object tags: %w", err)
	}
	return newResponse(http.StatusNoContent), nil
}
