package walrus

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/store"
)

// maxListKeys is the most entries one listing returns, as S3.
const maxListKeys = 1000

// listEntry is an object or a common prefix of a listing.
type listEntry struct {
	obj    *store.WalrusObject
	prefix string
}

// skipPast is a cursor after every key that starts with p: no byte of
// UTF-8 text is 0xff, so p+"\xff" sorts after all of them.
func skipPast(p string) string { return p + "\xff" }

// list walks a bucket's keys that start with prefix and sort after after,
// rolling keys that contain delim after the prefix into common prefixes,
// until max entries. It returns the entries, whether more follow, and the
// cursor to resume from.
func (w *Walrus) list(ctx context.Context, bucket, prefix, delim, after string, max int) ([]listEntry, bool, string, error) {
	if max == 0 {
		return nil, false, after, nil
	}
	cursor := after
	// A marker that is a common prefix already returned resumes after
	// every key under it.
	if delim != "" && strings.HasPrefix(after, prefix) {
		if i := strings.Index(after[len(prefix):], delim); i >= 0 && len(prefix)+i+len(delim) == len(after) {
			cursor = skipPast(after)
		}
	}
	var entries []listEntry
	batch := max + 1
	for len(entries) <= max {
		objs, err := w.st.ListWalrusObjects(ctx, bucket, prefix, cursor, batch)
		if err != nil {
			return nil, false, "", internal("list %s: %w", bucket, err)
		}
		cp := "" // the common prefix being skipped
		for i := range objs {
			o := &objs[i]
			if cp != "" && strings.HasPrefix(o.Key, cp) {
				continue
			}
			cp = ""
			if delim != "" {
				if j := strings.Index(o.Key[len(prefix):], delim); j >= 0 {
					cp = o.Key[:len(prefix)+j+len(delim)]
					entries = append(entries, listEntry{prefix: cp})
					cursor = skipPast(cp)
					if len(entries) > max {
						break
					}
					continue
				}
			}
			entries = append(entries, listEntry{obj: o})
			cursor = o.Key
			if len(entries) > max {
				break
			}
		}
		if len(objs) < batch {
			break
		}
	}
	truncated := len(entries) > max
	if truncated {
		entries = entries[:max]
		last := entries[max-1]
		if last.obj != nil {
			cursor = last.obj.Key
		} else {
			cursor = skipPast(last.prefix)
		}
	}
	return entries, truncated, cursor, nil
}

// listParams are the parameters common to the listings.
type listParams struct {
	prefix, delim string
	max           int
	urlEncode     bool
}

func parseListParams(r *request, maxName string) (listParams, error) {
	p := listParams{prefix: r.query.Get("prefix"), delim: r.query.Get("delimiter"), max: maxListKeys}
	if v := r.query.Get(maxName); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, s3Errorf("InvalidArgument", "Provided %s not an integer or within integer range", maxName)
		}
		p.max = min(n, maxListKeys)
	}
	switch et := r.query.Get("encoding-type"); et {
	case "":
	case "url":
		p.urlEncode = true
	default:
		return p, s3Errorf("InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	return p, nil
}

// encodeKey writes a key as encoding-type=url asks: percent-encoded except
// for unreserved characters and "/", as S3 does.
func (p listParams) encode(s string) string {
	if !p.urlEncode {
		return s
	}
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

type listBucketResult struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	Xmlns                 string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Marker                *string        `xml:"Marker"`
	NextMarker            string         `xml:"NextMarker,omitempty"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	KeyCount              *int           `xml:"KeyCount"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	Contents              []objectEntry  `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type objectEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Owner        *owner `xml:"Owner,omitempty"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

func quoteETag(e string) string { return `"` + e + `"` }

func storageClass(o *store.WalrusObject) string {
	if sc := o.Headers["x-amz-storage-class"]; sc != "" {
		return sc
	}
	return "STANDARD"
}

// listObjects serves ListObjects and ListObjectsV2 (list-type=2).
func (w *Walrus) listObjects(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permRead)
	if err != nil {
		return nil, err
	}
	v2 := r.query.Has("list-type")
	if v2 && r.query.Get("list-type") != "2" {
		return nil, s3Errorf("InvalidArgument", "Invalid List Type specified in Request")
	}
	p, err := parseListParams(r, "max-keys")
	if err != nil {
		return nil, err
	}
	// With encoding-type=url, S3 encodes the prefix it echoes in V2 but
	// not in V1 (botocore decodes ListObjects' Delimiter, Marker,
	// NextMarker, keys and common prefixes, and V2's Prefix besides).
	prefix := p.prefix
	if v2 {
		prefix = p.encode(prefix)
	}
	doc := listBucketResult{Xmlns: s3NS, Name: b.Name, Prefix: prefix, MaxKeys: p.max,
		Delimiter: p.encode(p.delim), Contents: []objectEntry{}}
	if p.urlEncode {
		doc.EncodingType = "url"
	}
	after := ""
	withOwner := true
	if v2 {
		withOwner = r.query.Get("fetch-owner") == "true"
		// An empty continuation-token is taken as absent, as S3 does
		// (SDK paginators send the previous page's, which may be empty).
		if tok := r.query.Get("continuation-token"); tok != "" {
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				return nil, s3Errorf("InvalidArgument", "The continuation token provided is incorrect")
			}
			after = string(raw)
			doc.ContinuationToken = tok
		} else {
			after = r.query.Get("start-after")
		}
		doc.StartAfter = p.encode(r.query.Get("start-after"))
	} else {
		after = r.query.Get("marker")
		m := p.encode(after)
		doc.Marker = &m
	}
	entries, truncated, cursor, err := w.list(ctx, b.Name, p.prefix, p.delim, after, p.max)
	if err != nil {
		return nil, err
	}
	if err := w.listedOwners(ctx, b, entries); err != nil {
		return nil, err
	}
	doc.IsTruncated = truncated
	owners := map[string]owner{}
	for _, e := range entries {
		if e.obj == nil {
			doc.CommonPrefixes = append(doc.CommonPrefixes, commonPrefix{Prefix: p.encode(e.prefix)})
			continue
		}
		o := e.obj
		entry := objectEntry{Key: p.encode(o.Key), LastModified: xmlTime(o.ModifiedMS), ETag: quoteETag(o.ETag), Size: o.Size, StorageClass: storageClass(o)}
		if withOwner {
			ow, ok := owners[o.OwnerID]
			if !ok {
				ow = w.ownerOf(ctx, o.OwnerID)
				owners[o.OwnerID] = ow
			}
			entry.Owner = &ow
		}
		doc.Contents = append(doc.Contents, entry)
	}
	if v2 {
		n := len(entries)
		doc.KeyCount = &n
		if truncated {
			doc.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(cursor))
		}
	} else if truncated && p.delim != "" {
		last := entries[len(entries)-1]
		if last.obj != nil {
			doc.NextMarker = p.encode(last.obj.Key)
		} else {
			doc.NextMarker = p.encode(last.prefix)
		}
	}
	return xmlResponse(doc), nil
}

type listVersionsResult struct {
	XMLName             xml.Name       `xml:"ListVersionsResult"`
	Xmlns               string         `xml:"xmlns,attr"`
	Name                string         `xml:"Name"`
	Prefix              string         `xml:"Prefix"`
	KeyMarker           string         `xml:"KeyMarker"`
	VersionIDMarker     string         `xml:"VersionIdMarker"`
	NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int            `xml:"MaxKeys"`
	Delimiter           string         `xml:"Delimiter,omitempty"`
	EncodingType        string         `xml:"EncodingType,omitempty"`
	IsTruncated         bool           `xml:"IsTruncated"`
	Versions            []versionEntry `xml:"Version"`
	CommonPrefixes      []commonPrefix `xml:"CommonPrefixes"`
}

type versionEntry struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
}

// listObjectVersions answers as an unversioned bucket does: each object
// is its only version, "null". (Clients that empty a bucket before
// deleting it, such as Terraform's force_destroy, list versions.)
func (w *Walrus) listObjectVersions(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permRead)
	if err != nil {
		return nil, err
	}
	p, err := parseListParams(r, "max-keys")
	if err != nil {
		return nil, err
	}
	after := r.query.Get("key-marker")
	doc := listVersionsResult{Xmlns: s3NS, Name: b.Name, Prefix: p.encode(p.prefix), KeyMarker: p.encode(after),
		VersionIDMarker: r.query.Get("version-id-marker"), MaxKeys: p.max, Delimiter: p.encode(p.delim), Versions: []versionEntry{}}
	if p.urlEncode {
		doc.EncodingType = "url"
	}
	entries, truncated, _, err := w.list(ctx, b.Name, p.prefix, p.delim, after, p.max)
	if err != nil {
		return nil, err
	}
	if err := w.listedOwners(ctx, b, entries); err != nil {
		return nil, err
	}
	doc.IsTruncated = truncated
	for _, e := range entries {
		if e.obj == nil {
			doc.CommonPrefixes = append(doc.CommonPrefixes, commonPrefix{Prefix: p.encode(e.prefix)})
			continue
		}
		o := e.obj
		doc.Versions = append(doc.Versions, versionEntry{Key: p.encode(o.Key), VersionID: "null", IsLatest: true,
			LastModified: xmlTime(o.ModifiedMS), ETag: quoteETag(o.ETag), Size: o.Size, Owner: w.ownerOf(ctx, o.OwnerID), StorageClass: storageClass(o)})
	}
	if truncated {
		last := entries[len(entries)-1]
		if last.obj != nil {
			doc.NextKeyMarker = p.encode(last.obj.Key)
			doc.NextVersionIDMarker = "null"
		} else {
			doc.NextKeyMarker = p.encode(last.prefix)
		}
	}
	return xmlResponse(doc), nil
}
