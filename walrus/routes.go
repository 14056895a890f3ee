package walrus

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"
)

// level is what a request addresses: the service, a bucket or an object.
type level int

const (
	levelService level = iota
	levelBucket
	levelObject
)

// bodyKind says how a route's request body is read.
type bodyKind int

const (
	bodyNone   bodyKind = iota
	bodyXML             // a small document, read whole before the signature check
	bodyStream          // object data, streamed by the handler
)

type handler func(w *Walrus, ctx context.Context, r *request) (*response, error)

// routeRow is one S3 operation: the method, level and sub-resource that
// select it, and an optional header that must be present.
type routeRow struct {
	method string
	level  level
	sub    string
	header string
	op     string
	body   bodyKind
	handler
}

// subresources are the query parameters that select an operation, in the
// order they are looked for. ("list-type" selects ListObjectsV2 and
// "uploadId" the multipart calls on an object.)
var subresources = []string{
	"acl", "policy", "policyStatus", "cors", "website", "versioning", "accelerate", "requestPayment",
	"logging", "lifecycle", "replication", "encryption", "object-lock", "tagging", "location",
	"notification", "ownershipControls", "publicAccessBlock", "analytics", "metrics", "inventory",
	"intelligent-tiering", "versions", "uploads", "uploadId", "delete", "retention", "legal-hold",
	"torrent", "restore", "select", "attributes", "list-type",
}

// routes is the S3 API, one row per operation.
var routes = append(baseRoutes, configRoutes()...)

var baseRoutes = []routeRow{
	{method: "GET", level: levelService, op: "ListBuckets", handler: (*Walrus).listBuckets},

	{method: "PUT", level: levelBucket, op: "CreateBucket", body: bodyXML, handler: (*Walrus).createBucket},
	{method: "DELETE", level: levelBucket, op: "DeleteBucket", handler: (*Walrus).deleteBucket},
	{method: "HEAD", level: levelBucket, op: "HeadBucket", handler: (*Walrus).headBucket},
	{method: "GET", level: levelBucket, op: "ListObjects", handler: (*Walrus).listObjects},
	{method: "GET", level: levelBucket, sub: "list-type", op: "ListObjectsV2", handler: (*Walrus).listObjects},
	{method: "GET", level: levelBucket, sub: "versions", op: "ListObjectVersions", handler: (*Walrus).listObjectVersions},
	{method: "GET", level: levelBucket, sub: "location", op: "GetBucketLocation", handler: (*Walrus).getBucketLocation},
	{method: "GET", level: levelBucket, sub: "uploads", op: "ListMultipartUploads", handler: (*Walrus).listMultipartUploads},
	{method: "POST", level: levelBucket, sub: "delete", op: "DeleteObjects", body: bodyXML, handler: (*Walrus).deleteObjects},
	{method: "POST", level: levelBucket, op: "PostObject", body: bodyStream, handler: (*Walrus).postObject},
	{method: "GET", level: levelBucket, sub: "acl", op: "GetBucketAcl", handler: (*Walrus).getBucketACL},
	{method: "PUT", level: levelBucket, sub: "acl", op: "PutBucketAcl", body: bodyXML, handler: (*Walrus).putBucketACL},
	{method: "GET", level: levelBucket, sub: "policyStatus", op: "GetBucketPolicyStatus", handler: (*Walrus).getBucketPolicyStatus},

	// A browser's CORS preflight of a bucket or an object (cors.go).
	{method: "OPTIONS", level: levelBucket, op: "PreflightBucket", handler: (*Walrus).corsPreflight},
	{method: "OPTIONS", level: levelObject, op: "PreflightObject", handler: (*Walrus).corsPreflight},

	{method: "GET", level: levelObject, op: "GetObject", handler: (*Walrus).getObject},
	{method: "HEAD", level: levelObject, op: "HeadObject", handler: (*Walrus).getObject},
	{method: "PUT", level: levelObject, op: "PutObject", body: bodyStream, handler: (*Walrus).putObject},
	{method: "PUT", level: levelObject, header: "X-Amz-Copy-Source", op: "CopyObject", handler: (*Walrus).copyObject},
	{method: "DELETE", level: levelObject, op: "DeleteObject", handler: (*Walrus).deleteObject},
	{method: "GET", level: levelObject, sub: "acl", op: "GetObjectAcl", handler: (*Walrus).getObjectACL},
	{method: "PUT", level: levelObject, sub: "acl", op: "PutObjectAcl", body: bodyXML, handler: (*Walrus).putObjectACL},
	{method: "GET", level: levelObject, sub: "tagging", op: "GetObjectTagging", handler: (*Walrus).getObjectTagging},
	{method: "PUT", level: levelObject, sub: "tagging", op: "PutObjectTagging", body: bodyXML, handler: (*Walrus).putObjectTagging},
	{method: "DELETE", level: levelObject, sub: "tagging", op: "DeleteObjectTagging", handler: (*Walrus).deleteObjectTagging},
	{method: "POST", level: levelObject, sub: "uploads", op: "CreateMultipartUpload", body: bodyXML, handler: (*Walrus).createMultipartUpload},
	{method: "PUT", level: levelObject, sub: "uploadId", op: "UploadPart", body: bodyStream, handler: (*Walrus).uploadPart},
	{method: "PUT", level: levelObject, sub: "uploadId", header: "X-Amz-Copy-Source", op: "UploadPartCopy", handler: (*Walrus).uploadPartCopy},
	{method: "POST", level: levelObject, sub: "uploadId", op: "CompleteMultipartUpload", body: bodyXML, handler: (*Walrus).completeMultipartUpload},
	{method: "DELETE", level: levelObject, sub: "uploadId", op: "AbortMultipartUpload", handler: (*Walrus).abortMultipartUpload},
	{method: "GET", level: levelObject, sub: "uploadId", op: "ListParts", handler: (*Walrus).listParts},
	{method: "GET", level: levelObject, sub: "attributes", op: "GetObjectAttributes", handler: (*Walrus).getObjectAttributes},

	// Object features not built: answered NotImplemented, never a 500.
	{method: "GET", level: levelObject, sub: "retention", op: "GetObjectRetention", handler: notImplemented},
	{method: "PUT", level: levelObject, sub: "retention", op: "PutObjectRetention", body: bodyXML, handler: notImplemented},
	{method: "GET", level: levelObject, sub: "legal-hold", op: "GetObjectLegalHold", handler: notImplemented},
	{method: "PUT", level: levelObject, sub: "legal-hold", op: "PutObjectLegalHold", body: bodyXML, handler: notImplemented},
	{method: "GET", level: levelObject, sub: "torrent", op: "GetObjectTorrent", handler: notImplemented},
	{method: "POST", level: levelObject, sub: "restore", op: "RestoreObject", body: bodyXML, handler: notImplemented},
	{method: "POST", level: levelObject, sub: "select", op: "SelectObjectContent", body: bodyXML, handler: notImplemented},
}

// configRoutes are the rows of the bucket configuration sub-resources
// (bucketconfig.go): Get, Put and Delete of each.
func configRoutes() []routeRow {
	var routes []routeRow
	for _, c := range bucketConfigs {
		routes = append(routes,
			routeRow{method: "GET", level: levelBucket, sub: c.sub, op: "GetBucket" + c.op, handler: c.get},
			routeRow{method: "PUT", level: levelBucket, sub: c.sub, op: "PutBucket" + c.op, body: bodyXML, handler: c.putConfig},
		)
		if c.deletable {
			routes = append(routes, routeRow{method: "DELETE", level: levelBucket, sub: c.sub, op: "DeleteBucket" + c.op, handler: c.del})
		}
	}
	return routes
}

func notImplemented(w *Walrus, ctx context.Context, r *request) (*response, error) {
	// The signature was checked: an anonymous caller learns nothing more
	// than a signed one.
	return nil, s3Errorf("NotImplemented", "%s is not implemented by this cloud.", r.op)
}

// route finds the operation of a request.
func route(r *request) (routeRow, error) {
	lv := levelService
	switch {
	case r.key != "":
		lv = levelObject
	case r.bucket != "":
		lv = levelBucket
	}
	if lv == levelObject {
		if len(r.key) > 1024 {
			return routeRow{}, s3Error("KeyTooLongError")
		}
		if !utf8.ValidString(r.key) {
			return routeRow{}, s3Errorf("InvalidArgument", "Object keys must be valid UTF-8.")
		}
	}
	sub := ""
	for _, s := range subresources {
		// A preflight is of the resource, whatever sub-resource the
		// request it announces will name (?uploads, ?tagging, ...).
		if r.http.Method == http.MethodOptions {
			break
		}
		if r.query.Has(s) {
			sub = s
			break
		}
	}
	method := r.http.Method
	known := false
	var best *routeRow
	for i := range routes {
		rt := &routes[i]
		if rt.level != lv || rt.sub != sub {
			continue
		}
		known = true
		if rt.method != method {
			continue
		}
		if rt.header != "" {
			if r.http.Header.Get(rt.header) == "" {
				continue
			}
			return *rt, nil // a header-selected row wins over the plain one
		}
		if best == nil {
			best = rt
		}
	}
	if best != nil {
		return *best, nil
	}
	if !known {
		if lv == levelService {
			return routeRow{}, s3Error("MethodNotAllowed")
		}
		return routeRow{}, s3Errorf("NotImplemented", "The %s sub-resource is not implemented for a %s.", sub, map[level]string{levelBucket: "bucket", levelObject: "object"}[lv])
	}
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead:
		return routeRow{}, s3Error("MethodNotAllowed")
	}
	return routeRow{}, s3Errorf("MethodNotAllowed", "The %s method is not allowed against this resource.", strings.ToUpper(method))
}
