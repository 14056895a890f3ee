package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/store"
)

// timeFormat is how S3 writes times in XML.
const timeFormat = "2006-01-02T15:04:05.000Z"

func xmlTime(ms int64) string { return store.Time(ms).Format(timeFormat) }

// permOwner stands for "the bucket's owner only" in bucket.
const permOwner = "OWNER"

// bucket loads the request's bucket and checks (authorize) that the caller
// may make the request: the ACL permission perm on the bucket (permOwner:
// be of its owner's account), or what the bucket policy says of the
// request's action on its resource (the bucket, or the object r.key).
func (w *Walrus) bucket(ctx context.Context, r *request, perm string) (store.WalrusBucket, error) {
	if r.bucket == "" {
		return store.WalrusBucket{}, s3Error("NoSuchBucket")
	}
	b, err := w.st.WalrusBucket(ctx, r.bucket)
	if errors.Is(err, store.ErrNotFound) {
		return b, s3Error("NoSuchBucket")
	}
	if err != nil {
		return b, internal("bucket %s: %w", r.bucket, err)
	}
	if eo := r.http.Header.Get("X-Amz-Expected-Bucket-Owner"); eo != "" && eo != b.AccountID {
		return b, s3Error("AccessDenied")
	}
	if r.op == "DeleteObjects" {
		return b, nil // the handler authorizes each key
	}
	return b, w.authorize(ctx, r, b, bucketAccess(r, b, perm))
}

// Bucket names, by S3's rules for new buckets.
var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func validBucketName(name string) bool {
	if !bucketNameRE.MatchString(name) || strings.Contains(name, "..") {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

type listAllMyBucketsResult struct {
	XMLName           xml.Name       `xml:"ListAllMyBucketsResult"`
	Xmlns             string         `xml:"xmlns,attr"`
	Owner             owner          `xml:"Owner"`
	Buckets           []bucketSchema `xml:"Buckets>Bucket"`
	ContinuationToken string         `xml:"ContinuationToken,omitempty"`
	Prefix            string         `xml:"Prefix,omitempty"`
}

type bucketSchema struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

func (w *Walrus) listBuckets(ctx context.Context, r *request) (*response, error) {
	if r.anonymous {
		return nil, s3Error("AccessDenied")
	}
	buckets, err := w.st.WalrusBuckets(ctx, r.caller.AccountID)
	if err != nil {
		return nil, internal("list buckets: %w", err)
	}
	prefix := r.query.Get("prefix")
	after := r.query.Get("continuation-token")
	max := 10000
	if v := r.query.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, s3Errorf("InvalidArgument", "max-buckets must be an integer from 1 to 10000.")
		}
		max = n
	}
	doc := listAllMyBucketsResult{Xmlns: s3NS, Owner: w.ownerOf(ctx, r.caller.AccountID), Buckets: []bucketSchema{}, Prefix: prefix}
	for _, b := range buckets {
		if !strings.HasPrefix(b.Name, prefix) || b.Name <= after {
			continue
		}
		if len(doc.Buckets) == max {
			doc.ContinuationToken = doc.Buckets[max-1].Name
			break
		}
		doc.Buckets = append(doc.Buckets, bucketSchema{Name: b.Name, CreationDate: xmlTime(b.CreatedMS), BucketRegion: b.Location})
	}
	return xmlResponse(doc), nil
}

func (w *Walrus) createBucket(ctx context.Context, r *request) (*response, error) {
	if r.anonymous {
		return nil, s3Error("AccessDenied")
	}
	if !validBucketName(r.bucket) {
		return nil, s3Error("InvalidBucketName")
	}
	if strings.EqualFold(r.http.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"), "true") {
		return nil, s3Errorf("NotImplemented", "Object Lock is not implemented by this cloud.")
	}
	body, err := r.payload()
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		var cfg struct {
			LocationConstraint string `xml:"LocationConstraint"`
		}
		if err := xml.Unmarshal(body, &cfg); err != nil {
			return nil, s3Error("MalformedXML")
		}
		if loc := cfg.LocationConstraint; loc != "" && loc != w.cfg.Region {
			return nil, s3Errorf("InvalidLocationConstraint", "The specified location-constraint %q is not valid: this cloud's region is %s.", loc, w.cfg.Region)
		}
	}
	owner := r.caller.AccountID
	acl, _, err := w.aclFromHeaders(ctx, r.http.Header, owner, owner)
	if err != nil {
		return nil, err
	}
	ownership, err := createOwnership(r, acl, owner)
	if err != nil {
		return nil, err
	}
	err = w.st.CreateWalrusBucket(ctx, store.WalrusBucket{Name: r.bucket, AccountID: owner, Location: w.cfg.Region, ACL: acl}, w.cfg.WalrusMaxBuckets)
	switch {
	case errors.Is(err, store.ErrConflict):
		if b, err := w.st.WalrusBucket(ctx, r.bucket); err == nil && b.AccountID == owner {
			return nil, s3Error("BucketAlreadyOwnedByYou")
		}
		return nil, s3Error("BucketAlreadyExists")
	case errors.Is(err, store.ErrWalrusLimit):
		return nil, s3Errorf("TooManyBuckets", "You have attempted to create more buckets than allowed: an account may own %d (WALRUS_MAX_BUCKETS).", w.cfg.WalrusMaxBuckets)
	case err != nil:
		return nil, internal("create bucket: %w", err)
	}
	if err := w.be.CreateBucket(ctx, r.bucket); err != nil {
		if _, derr := w.st.DeleteWalrusBucket(ctx, r.bucket); derr != nil {
			w.log.ErrorContext(ctx, "undo bucket creation", "bucket", r.bucket, "err", derr)
		}
		return nil, internal("create bucket %s in backend: %w", r.bucket, err)
	}
	if err := w.storeCreateOwnership(ctx, r.bucket, ownership); err != nil {
		return nil, err
	}
	resp := newResponse(http.StatusOK)
	resp.header.Set("Location", "/"+r.bucket)
	return resp, nil
}

func (w *Walrus) deleteBucket(ctx context.Context, r *request) (*response, error) {
	if _, err := w.bucket(ctx, r, permOwner); err != nil {
		return nil, err
	}
	_, err := w.st.DeleteWalrusBucket(ctx, r.bucket)
	switch {
	case errors.Is(err, store.ErrWalrusNotEmpty):
		return nil, s3Error("BucketNotEmpty")
	case errors.Is(err, store.ErrNotFound):
		return nil, s3Error("NoSuchBucket")
	case err != nil:
		return nil, internal("delete bucket: %w", err)
	}
	// The bucket's directory goes with every blob left in it (parts of
	// unfinished uploads).
	if err := w.be.DeleteBucket(ctx, r.bucket); err != nil {
		w.log.ErrorContext(ctx, "remove bucket data", "bucket", r.bucket, "err", err)
	}
	return newResponse(http.StatusNoContent), nil
}

func (w *Walrus) headBucket(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permRead)
	if err != nil {
		return nil, err
	}
	resp := newResponse(http.StatusOK)
	resp.header.Set("X-Amz-Bucket-Region", b.Location)
	return resp, nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	Xmlns   string   `xml:"xmlns,attr"`
	Region  string   `xml:",chardata"`
}

func (w *Walrus) getBucketLocation(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permOwner)
	if err != nil {
		return nil, err
	}
	return xmlResponse(locationConstraint{Xmlns: s3NS, Region: b.Location}), nil
}

func msToTime(ms int64) time.Time { return store.Time(ms) }
