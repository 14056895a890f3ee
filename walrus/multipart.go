package walrus

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
)

const maxPartNumber = 10000

// minPartSize is the smallest a part may be, except the last: 5 MiB, as
// S3. A variable so that tests can use small parts.
var minPartSize int64 = 5 << 20

func newUploadID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (w *Walrus) createMultipartUpload(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	if _, err := r.payload(); err != nil {
		return nil, err
	}
	a, err := w.newObjectAttrs(ctx, r, b)
	if err != nil {
		return nil, err
	}
	u := store.WalrusUpload{ID: newUploadID(), Bucket: b.Name, Key: r.key, OwnerID: a.owner, ACL: a.acl, Headers: a.headers, Tags: a.tags}
	if err := w.st.CreateWalrusUpload(ctx, u); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s3Error("NoSuchBucket")
		}
		return nil, internal("create upload: %w", err)
	}
	return xmlResponse(initiateResult{Xmlns: s3NS, Bucket: b.Name, Key: r.key, UploadID: u.ID}), nil
}

// upload loads the upload a request names, which must be of its bucket
// and key, and checks perm on the bucket.
func (w *Walrus) upload(ctx context.Context, r *request, perm string) (store.WalrusBucket, store.WalrusUpload, error) {
	b, err := w.bucket(ctx, r, perm)
	if err != nil {
		return b, store.WalrusUpload{}, err
	}
	u, err := w.st.WalrusUpload(ctx, r.query.Get("uploadId"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Bucket != b.Name || u.Key != r.key)) {
		return b, u, s3Error("NoSuchUpload")
	}
	if err != nil {
		return b, u, internal("upload: %w", err)
	}
	// An upload is its initiator's (and the bucket owner's): another writer
	// of the bucket may not add to, complete, abort or list it.
	if c := r.callerID(); c != u.OwnerID && c != b.AccountID {
		return b, u, s3Error("AccessDenied")
	}
	return b, u, nil
}

func partNumber(r *request) (int, error) {
	n, err := strconv.Atoi(r.query.Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, s3Errorf("InvalidArgument", "Part number must be an integer between 1 and %d, inclusive", maxPartNumber)
	}
	return n, nil
}

// recordPart stores a part's row, deleting the part it replaced, or the
// new blob when the upload ended meanwhile.
func (w *Walrus) recordPart(ctx context.Context, bucket string, p store.WalrusPart) error {
	old, err := w.st.PutWalrusPart(ctx, p)
	if err != nil {
		w.deleteBlob(ctx, bucket, p.Blob)
		if errors.Is(err, store.ErrNotFound) {
			return s3Error("NoSuchUpload")
		}
		return internal("store part: %w", err)
	}
	if old != "" {
		w.deleteBlob(ctx, bucket, old)
	}
	return nil
}

func (w *Walrus) uploadPart(ctx context.Context, r *request) (*response, error) {
	n, err := partNumber(r)
	if err != nil {
		return nil, err
	}
	b, u, err := w.upload(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	blob, check, err := w.storeBody(ctx, r, b)
	if err != nil {
		return nil, err
	}
	p := store.WalrusPart{UploadID: u.ID, Number: n, Blob: blob.ID, Size: blob.Size, ETag: check.etag()}
	if err := w.recordPart(ctx, b.Name, p); err != nil {
		return nil, err
	}
	resp := newResponse(http.StatusOK)
	resp.header.Set("ETag", quoteETag(p.ETag))
	if algo, sum, ok := strings.Cut(check.checksum(), ":"); ok {
		resp.header.Set("x-amz-checksum-"+strings.ToLower(algo), sum)
	}
	return resp, nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

func (w *Walrus) uploadPartCopy(ctx context.Context, r *request) (*response, error) {
	n, err := partNumber(r)
	if err != nil {
		return nil, err
	}
	b, u, err := w.upload(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	src, f, err := w.openSource(ctx, r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start, length := int64(0), src.Size
	if rng := r.http.Header.Get("X-Amz-Copy-Source-Range"); rng != "" {
		spec, ok := strings.CutPrefix(rng, "bytes=")
		a, c, ok2 := strings.Cut(spec, "-")
		first, e1 := strconv.ParseInt(a, 10, 64)
		last, e2 := strconv.ParseInt(c, 10, 64)
		if !ok || !ok2 || e1 != nil || e2 != nil || first < 0 || last < first {
			return nil, s3Errorf("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		if last >= src.Size {
			return nil, s3Errorf("InvalidRange", "The requested range is not satisfiable")
		}
		start, length = first, last-first+1
	}
	if length > maxPutSize {
		return nil, s3Error("EntityTooLarge")
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, internal("seek copy source: %w", err)
	}
	sr := &request{http: &http.Request{Header: http.Header{}}}
	check, err := newBodyCheck(sr, io.LimitReader(f, length), length)
	if err != nil {
		return nil, err
	}
	blob, err := w.be.Write(ctx, b.Name, check)
	check.Close() // the stream may have stopped before its end
	if err != nil {
		return nil, uploadError(err)
	}
	p := store.WalrusPart{UploadID: u.ID, Number: n, Blob: blob.ID, Size: blob.Size, ETag: check.etag()}
	if err := w.recordPart(ctx, b.Name, p); err != nil {
		return nil, err
	}
	return xmlResponse(copyPartResult{Xmlns: s3NS, LastModified: xmlTime(w.now().UnixMilli()), ETag: quoteETag(p.ETag)}), nil
}

type completeRequest struct {
	Parts []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

// uploadGone reports an upload that no longer exists: completed or
// aborted by a concurrent request.
func (w *Walrus) uploadGone(ctx context.Context, id string) bool {
	_, err := w.st.WalrusUpload(ctx, id)
	return errors.Is(err, store.ErrNotFound)
}

// isCode reports an S3 error of the code.
func isCode(err error, code string) bool {
	var ae *awserr.Error
	return errors.As(err, &ae) && ae.Code == code
}

func (w *Walrus) completeResponse(r *request, bucket, key, etag string) *response {
	loc := "/" + bucket + "/" + key
	if host := r.http.Host; host != "" {
		loc = "http://" + host + loc
	}
	return xmlResponse(completeResult{Xmlns: s3NS, Location: loc, Bucket: bucket, Key: key, ETag: quoteETag(etag)})
}

// completedAgain answers a Complete of an upload that is no longer in
// progress: when it was completed (within the store's
// WalrusCompletionTTL) into this bucket and key from the same part list,
// the request is a retry of that Complete (an SDK whose answer was lost),
// and gets the answer the first one got, as S3 gives it. Anything else is
// NoSuchUpload.
func (w *Walrus) completedAgain(ctx context.Context, r *request, b store.WalrusBucket) (*response, error) {
	c, err := w.st.WalrusCompletedUpload(ctx, r.query.Get("uploadId"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.Bucket != b.Name || c.Key != r.key)) {
		return nil, s3Error("NoSuchUpload")
	}
	if err != nil {
		return nil, internal("completed upload: %w", err)
	}
	req, err := completeParts(r)
	if err != nil {
		return nil, err
	}
	same := len(req.Parts) == len(c.Parts)
	for i := 0; same && i < len(req.Parts); i++ {
		same = req.Parts[i].PartNumber == c.Parts[i].Number && strings.Trim(strings.TrimSpace(req.Parts[i].ETag), `"`) == c.Parts[i].ETag
	}
	if !same {
		return nil, s3Error("NoSuchUpload")
	}
	return w.completeResponse(r, c.Bucket, c.Key, c.ETag), nil
}

// completeParts reads a Complete's part list.
func completeParts(r *request) (completeRequest, error) {
	var req completeRequest
	body, err := r.payload()
	if err != nil {
		return req, err
	}
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Parts) == 0 {
		return req, s3Error("MalformedXML")
	}
	return req, nil
}

func (w *Walrus) completeMultipartUpload(ctx context.Context, r *request) (*response, error) {
	b, u, err := w.upload(ctx, r, permWrite)
	if isCode(err, "NoSuchUpload") {
		return w.completedAgain(ctx, r, b)
	}
	if err != nil {
		return nil, err
	}
	req, err := completeParts(r)
	if err != nil {
		return nil, err
	}
	// A concurrent Complete or Abort may end the upload while this one
	// works: each failure below that it could cause is answered
	// NoSuchUpload once the upload is seen gone.
	resp, err := w.complete(ctx, r, b, u, req)
	if err != nil && !isCode(err, "NoSuchUpload") && w.uploadGone(ctx, u.ID) {
		return nil, s3Error("NoSuchUpload")
	}
	return resp, err
}

func (w *Walrus) complete(ctx context.Context, r *request, b store.WalrusBucket, u store.WalrusUpload, req completeRequest) (*response, error) {
	stored, err := w.st.WalrusParts(ctx, u.ID)
	if err != nil {
		return nil, internal("parts: %w", err)
	}
	byNumber := map[int]store.WalrusPart{}
	for _, p := range stored {
		byNumber[p.Number] = p
	}
	var ids []string
	var list []store.WalrusObjectPart
	var size int64
	sums := md5.New()
	// The list is checked whole for order, then for parts that do not
	// exist, then for sizes, as S3 does.
	for i, lp := range req.Parts {
		if i > 0 && lp.PartNumber <= req.Parts[i-1].PartNumber {
			return nil, s3Error("InvalidPartOrder")
		}
	}
	for _, lp := range req.Parts {
		if p, ok := byNumber[lp.PartNumber]; !ok || strings.Trim(strings.TrimSpace(lp.ETag), `"`) != p.ETag {
			return nil, s3Error("InvalidPart")
		}
	}
	for i, lp := range req.Parts {
		p := byNumber[lp.PartNumber]
		if i < len(req.Parts)-1 && p.Size < minPartSize {
			return nil, s3Errorf("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size. Part %d is %d bytes; every part but the last must be at least %d.", p.Number, p.Size, minPartSize)
		}
		raw, err := hex.DecodeString(p.ETag)
		if err != nil {
			return nil, internal("part %d etag %q: %w", p.Number, p.ETag, err)
		}
		sums.Write(raw)
		ids = append(ids, p.Blob)
		list = append(list, store.WalrusObjectPart{Number: p.Number, Size: p.Size, ETag: p.ETag})
		size += p.Size
	}
	if size > maxObjectSize {
		return nil, s3Error("EntityTooLarge")
	}
	if max := w.maxBucketBytes(); max > 0 && b.SizeBytes+size > max {
		return nil, w.bucketLimitError()
	}
	blob, err := w.be.Concat(ctx, b.Name, ids)
	if err != nil {
		return nil, uploadError(err)
	}
	etag := hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(req.Parts))
	o := store.WalrusObject{Bucket: b.Name, Key: u.Key, Blob: blob.ID, Size: blob.Size, ETag: etag, Parts: len(req.Parts), PartList: list,
		OwnerID: u.OwnerID, ACL: u.ACL, Headers: u.Headers, Tags: u.Tags}
	opt := w.putOptions(r)
	old, partBlobs, err := w.st.CompleteWalrusUpload(ctx, u.ID, o, opt)
	if err != nil {
		w.deleteBlob(ctx, b.Name, blob.ID)
		switch {
		case errors.Is(err, store.ErrNotFound) && opt.IfMatch == "":
			return nil, s3Error("NoSuchUpload")
		case errors.Is(err, store.ErrNotFound):
			return nil, s3Error("NoSuchKey")
		case errors.Is(err, store.ErrWalrusLimit):
			return nil, w.bucketLimitError()
		case errors.Is(err, store.ErrWalrusPrecondition):
			return nil, s3Error("PreconditionFailed")
		}
		return nil, internal("complete upload: %w", err)
	}
	for _, pb := range append(partBlobs, old) {
		if pb != "" {
			w.deleteBlob(ctx, b.Name, pb)
		}
	}
	return w.completeResponse(r, b.Name, u.Key, etag), nil
}

func (w *Walrus) abortMultipartUpload(ctx context.Context, r *request) (*response, error) {
	b, u, err := w.upload(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	blobs, err := w.st.AbortWalrusUpload(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s3Error("NoSuchUpload")
	}
	if err != nil {
		return nil, internal("abort upload: %w", err)
	}
	for _, id := range blobs {
		w.deleteBlob(ctx, b.Name, id)
	}
	return newResponse(http.StatusNoContent), nil
}

type listPartsResult struct {
	XMLName              xml.Name    `xml:"ListPartsResult"`
	Xmlns                string      `xml:"xmlns,attr"`
	Bucket               string      `xml:"Bucket"`
	Key                  string      `xml:"Key"`
	UploadID             string      `xml:"UploadId"`
	Initiator            owner       `xml:"Initiator"`
	Owner                owner       `xml:"Owner"`
	StorageClass         string      `xml:"StorageClass"`
	PartNumberMarker     int         `xml:"PartNumberMarker"`
	NextPartNumberMarker int         `xml:"NextPartNumberMarker"`
	MaxParts             int         `xml:"MaxParts"`
	IsTruncated          bool        `xml:"IsTruncated"`
	Parts                []partEntry `xml:"Part"`
}

type partEntry struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
}

func (w *Walrus) listParts(ctx context.Context, r *request) (*response, error) {
	_, u, err := w.upload(ctx, r, permWrite)
	if err != nil {
		return nil, err
	}
	max := 1000
	if v := r.query.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, s3Errorf("InvalidArgument", "Provided max-parts not an integer or within integer range")
		}
		max = min(n, 1000)
	}
	marker := 0
	if v := r.query.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, s3Errorf("InvalidArgument", "Provided part-number-marker not an integer or within integer range")
		}
		marker = n
	}
	parts, err := w.st.WalrusParts(ctx, u.ID)
	if err != nil {
		return nil, internal("parts: %w", err)
	}
	o := w.ownerOf(ctx, u.OwnerID)
	doc := listPartsResult{Xmlns: s3NS, Bucket: u.Bucket, Key: u.Key, UploadID: u.ID, Initiator: o, Owner: o,
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: max, Parts: []partEntry{}}
	if sc := u.Headers["x-amz-storage-class"]; sc != "" {
		doc.StorageClass = sc
	}
	for _, p := range parts {
		if p.Number <= marker {
			continue
		}
		if len(doc.Parts) == max {
			doc.IsTruncated = true
			break
		}
		doc.Parts = append(doc.Parts, partEntry{PartNumber: p.Number, LastModified: xmlTime(p.ModifiedMS), ETag: quoteETag(p.ETag), Size: p.Size})
		doc.NextPartNumberMarker = p.Number
	}
	return xmlResponse(doc), nil
}

type listUploadsResult struct {
	XMLName            xml.Name       `xml:"ListMultipartUploadsResult"`
	Xmlns              string         `xml:"xmlns,attr"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker"`
	Prefix             string         `xml:"Prefix,omitempty"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	EncodingType       string         `xml:"EncodingType,omitempty"`
	MaxUploads         int            `xml:"MaxUploads"`
	IsTruncated        bool           `xml:"IsTruncated"`
	Uploads            []uploadEntry  `xml:"Upload"`
	CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
}

type uploadEntry struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

func (w *Walrus) listMultipartUploads(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permRead)
	if err != nil {
		return nil, err
	}
	p, err := parseListParams(r, "max-uploads")
	if err != nil {
		return nil, err
	}
	keyMarker, idMarker := r.query.Get("key-marker"), r.query.Get("upload-id-marker")
	uploads, err := w.st.WalrusUploads(ctx, b.Name, p.prefix)
	if err != nil {
		return nil, internal("uploads: %w", err)
	}
	// Uploads are few: order them as S3 does (key, then when started)
	// and page through them here.
	sort.SliceStable(uploads, func(i, j int) bool { return uploads[i].Key < uploads[j].Key })
	doc := listUploadsResult{Xmlns: s3NS, Bucket: b.Name, KeyMarker: p.encode(keyMarker), UploadIDMarker: idMarker,
		Prefix: p.encode(p.prefix), Delimiter: p.encode(p.delim), MaxUploads: p.max, Uploads: []uploadEntry{}}
	if p.urlEncode {
		doc.EncodingType = "url"
	}
	// Skip what the markers say was listed: keys before key-marker, and at
	// key-marker the uploads up to upload-id-marker.
	start := 0
	if keyMarker != "" {
		for start < len(uploads) && uploads[start].Key < keyMarker {
			start++
		}
		if idMarker == "" {
			for start < len(uploads) && uploads[start].Key == keyMarker {
				start++
			}
		} else {
			for i := start; i < len(uploads) && uploads[i].Key == keyMarker; i++ {
				if uploads[i].ID == idMarker {
					start = i + 1
					break
				}
			}
		}
	}
	lastCP := ""
	count := 0
	for _, u := range uploads[start:] {
		if p.delim != "" {
			if j := strings.Index(u.Key[len(p.prefix):], p.delim); j >= 0 {
				cp := u.Key[:len(p.prefix)+j+len(p.delim)]
				if cp == lastCP {
					continue
				}
				if count == p.max {
					doc.IsTruncated = true
					break
				}
				lastCP = cp
				doc.CommonPrefixes = append(doc.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
				doc.NextKeyMarker, doc.NextUploadIDMarker = p.encode(cp), ""
				count++
				continue
			}
		}
		if count == p.max {
			doc.IsTruncated = true
			break
		}
		o := w.ownerOf(ctx, u.OwnerID)
		sc := "STANDARD"
		if v := u.Headers["x-amz-storage-class"]; v != "" {
			sc = v
		}
		doc.Uploads = append(doc.Uploads, uploadEntry{Key: p.encode(u.Key), UploadID: u.ID, Initiator: o, Owner: o, StorageClass: sc, Initiated: xmlTime(u.InitiatedMS)})
		doc.NextKeyMarker, doc.NextUploadIDMarker = p.encode(u.Key), u.ID
		count++
	}
	return xmlResponse(doc), nil
}
