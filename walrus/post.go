package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/httplimit"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/store"
)

// maxPostPreData bounds the form fields before the file, as S3 does (20
// KB); the fields are read into memory, the file is streamed.
const maxPostPreData = 20 << 10

// postForm is a POST upload's fields before the file, by lower-case name,
// and the file part itself.
type postForm struct {
	fields   map[string][]string
	file     *multipart.Part
	filename string
}

// get is a field's value; several values of one name are joined by commas.
func (f *postForm) get(name string) string { return strings.Join(f.fields[name], ",") }

// readPostForm reads the fields up to the file, which it leaves unread.
// Fields after the file are ignored, as S3 ignores them.
func readPostForm(r *http.Request) (*postForm, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, s3Errorf("PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	f := &postForm{fields: map[string][]string{}}
	size := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, s3Errorf("InvalidArgument", "POST requires exactly one file upload per request.")
		}
		if err != nil {
			return nil, postReadError(err)
		}
		name := strings.ToLower(p.FormName())
		if name == "file" {
			f.file = p
			// Only the file's name counts, not the path a browser sends.
			f.filename = p.FileName()
			if i := strings.LastIndexAny(f.filename, `/\`); i >= 0 {
				f.filename = f.filename[i+1:]
			}
			break
		}
		v, err := io.ReadAll(io.LimitReader(p, int64(maxPostPreData-size+1)))
		if err != nil {
			return nil, postReadError(err)
		}
		size += len(name) + len(v) + 1
		if size > maxPostPreData {
			return nil, s3Error("MaxPostPreDataLengthExceededError")
		}
		f.fields[name] = append(f.fields[name], string(v))
	}
	// ${filename} stands for the file's name in every field.
	for name, vs := range f.fields {
		for i, v := range vs {
			vs[i] = strings.ReplaceAll(v, "${filename}", f.filename)
		}
		f.fields[name] = vs
	}
	return f, nil
}

// postReadError maps a form that could not be read: one that stopped
// coming is RequestTimeout (internal/httplimit), any other is malformed.
func postReadError(err error) error {
	if errors.Is(err, httplimit.ErrBodyTimeout) {
		return s3Error("RequestTimeout").WithCause(err)
	}
	return s3Error("MalformedPOSTRequest").WithCause(err)
}

// postAuth verifies the form's signature of its policy and the policy's
// conditions, and makes the signer the request's caller. A form without a
// policy is anonymous: it may write only where an ACL lets everyone.
func (w *Walrus) postAuth(ctx context.Context, r *request, f *postForm) (context.Context, *postPolicy, error) {
	policy := f.get("policy")
	if policy == "" {
		return ctx, nil, nil
	}
	form := awsauth.PostForm{Policy: policy, Algorithm: f.get("x-amz-algorithm"), Credential: f.get("x-amz-credential"),
		Date: f.get("x-amz-date"), Signature: f.get("x-amz-signature"), AccessKeyID: f.get("awsaccesskeyid"), SignatureV2: f.get("signature")}
	var caller principal.Principal
	res, err := awsauth.VerifyPost(ctx, form, func(ctx context.Context, akid string) (string, error) {
		p, secret, err := w.keys.LookupAccessKey(ctx, akid)
		caller = p
		return secret, err
	})
	var ae *awsauth.Error
	switch {
	case errors.As(err, &ae) && ae.Kind == awsauth.KindUnknownKey:
		return ctx, nil, s3Error("InvalidAccessKeyId")
	case errors.As(err, &ae) && ae.Kind == awsauth.KindBadSignature:
		return ctx, nil, s3Error("SignatureDoesNotMatch")
	case errors.As(err, &ae):
		return ctx, nil, s3Errorf("InvalidArgument", "%s", ae.Msg)
	case err != nil:
		return ctx, nil, internal("verify POST policy: %w", err)
	}
	if res.Version == 4 && res.Service != "s3" {
		return ctx, nil, s3Errorf("InvalidArgument", "The credential scope names the service %q, not s3.", res.Service)
	}
	p, err := parsePostPolicy(policy)
	if err != nil {
		return ctx, nil, err
	}
	values := map[string]string{}
	for name := range f.fields {
		values[name] = f.get(name)
	}
	if err := p.check(values, r.bucket, w.now()); err != nil {
		return ctx, nil, err
	}
	r.caller, r.anonymous, r.auth = caller, false, res
	return principal.With(ctx, caller), &p, nil
}

// postHeaders are the fields of a POST upload that stand for the headers
// of a PUT.
func (f *postForm) headers() http.Header {
	h := http.Header{}
	for name, vs := range f.fields {
		switch {
		case strings.HasPrefix(name, "x-amz-meta-"), name == "x-amz-storage-class", name == "x-amz-website-redirect-location":
			h[http.CanonicalHeaderKey(name)] = vs
		case name == "acl":
			h["X-Amz-Acl"] = vs
		}
	}
	for _, name := range storedHeaders {
		if vs, ok := f.fields[strings.ToLower(name)]; ok {
			h[name] = vs
		}
	}
	return h
}

// sizeLimit ends a stream that grows past max with err.
type sizeLimit struct {
	r   io.Reader
	n   int64
	max int64
	err error
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return 0, l.err
	}
	return n, err
}

type postResponse struct {
	XMLName  xml.Name `xml:"PostResponse"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

// postObject serves PostObject: a browser-based upload of a
// multipart/form-data form into the bucket, authorised by a signed policy
// document (SigV4 or SigV2 fields) whose conditions the form must meet, or
// anonymous into a bucket everyone may write. It checks the bucket's write
// permission as PutObject does, streams the file while enforcing the
// policy's content-length-range and the bucket's size limit, and answers
// as success_action_redirect (303) or success_action_status (200, 201
// with a document, 204 by default) ask.
func (w *Walrus) postObject(ctx context.Context, r *request) (*response, error) {
	if !r.anonymous {
		return nil, s3Errorf("InvalidRequest", "A POST upload is authenticated by its form fields (policy and signature), not by a header or the query string.")
	}
	f, err := readPostForm(r.http)
	if err != nil {
		return nil, err
	}
	if _, ok := f.fields["key"]; !ok {
		return nil, s3Errorf("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
	}
	ctx, policy, err := w.postAuth(ctx, r, f)
	if err != nil {
		return nil, err
	}
	r.key = f.get("key")
	switch {
	case r.key == "":
		return nil, s3Errorf("InvalidArgument", "User key must have a length greater than zero.")
	case len(r.key) > 1024:
		return nil, s3Error("KeyTooLongError")
	case !utf8.ValidString(r.key):
		return nil, s3Errorf("InvalidArgument", "Object keys must be valid UTF-8.")
	}
	// The form's fields stand for a PUT's headers: the bucket policy's
	// condition keys (s3:x-amz-acl, ...) are theirs, not the POST's own
	// headers', which the upload does not apply.
	for _, name := range conditionHeaders {
		if name == "x-amz-content-sha256" {
			continue
		}
		field := name
		if name == "x-amz-acl" {
			field = "acl"
		}
		r.http.Header.Del(name)
		if vs, ok := f.fields[field]; ok {
			r.http.Header[http.CanonicalHeaderKey(name)] = vs
		}
	}
	b, err := w.bucket(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	h := f.headers()
	a, err := w.newObjectAttrsFrom(ctx, r, b, h)
	if err != nil {
		return nil, err
	}
	if t := f.get("tagging"); t != "" {
		if a.tags, err = parseTagging([]byte(t), maxObjectTags); err != nil {
			return nil, err
		}
	}

	// The file's length is known only at its end: the limits are enforced
	// as it streams.
	var src io.Reader = f.file
	limit := int64(maxPutSize)
	var limitErr error = s3Error("EntityTooLarge")
	if policy != nil && policy.maxSize >= 0 && policy.maxSize < limit {
		limit = policy.maxSize
		limitErr = s3Errorf("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size (%d bytes) of the policy's content-length-range.", policy.maxSize)
	}
	if bmax := w.maxBucketBytes(); bmax > 0 {
		room := bmax - b.SizeBytes
		if old, err := w.st.WalrusObject(ctx, b.Name, r.key); err == nil {
			room += old.Size
		}
		if room < limit {
			limit, limitErr = max(room, 0), w.bucketLimitError()
		}
	}
	src = &sizeLimit{r: src, max: limit, err: limitErr}
	sr := &request{http: &http.Request{Header: http.Header{}}}
	check, err := newBodyCheck(sr, src, -1)
	if err != nil {
		return nil, err
	}
	blob, err := w.be.Write(ctx, b.Name, check)
	check.Close()
	r.bytesIn += check.n
	if err != nil {
		return nil, uploadError(err)
	}
	if policy != nil && policy.maxSize >= 0 && blob.Size < policy.minSize {
		w.deleteBlob(ctx, b.Name, blob.ID)
		return nil, s3Errorf("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size (%d bytes) of the policy's content-length-range.", policy.minSize)
	}
	o := store.WalrusObject{Bucket: b.Name, Key: r.key, Blob: blob.ID, Size: blob.Size, ETag: check.etag(),
		OwnerID: a.owner, ACL: a.acl, Headers: a.headers, Tags: a.tags}
	if err := w.commitObject(ctx, o, store.WalrusPutOptions{MaxBucketBytes: w.maxBucketBytes()}); err != nil {
		return nil, err
	}

	loc := (&url.URL{Scheme: "http", Host: r.http.Host, Path: "/" + b.Name + "/" + r.key}).String()
	redirect := f.get("success_action_redirect")
	if redirect == "" {
		redirect = f.get("redirect")
	}
	if u, err := url.Parse(redirect); redirect != "" && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		q := u.Query()
		q.Set("bucket", b.Name)
		q.Set("key", r.key)
		q.Set("etag", quoteETag(o.ETag))
		u.RawQuery = q.Encode()
		resp := newResponse(http.StatusSeeOther)
		resp.header.Set("Location", u.String())
		resp.header.Set("ETag", quoteETag(o.ETag))
		return resp, nil
	}
	var resp *response
	switch f.get("success_action_status") {
	case "200":
		resp = newResponse(http.StatusOK)
	case "201":
		resp = xmlResponse(postResponse{Location: loc, Bucket: b.Name, Key: r.key, ETag: quoteETag(o.ETag)})
		resp.status = http.StatusCreated
	default:
		resp = newResponse(http.StatusNoContent)
	}
	resp.header.Set("ETag", quoteETag(o.ETag))
	resp.header.Set("Location", loc)
	return resp, nil
}
