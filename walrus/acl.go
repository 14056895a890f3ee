package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/euca-cloud/euca/store"
)

// Grantee groups and permissions of S3's ACLs.
const (
	groupAllUsers    = "http://acs.amazonaws.com/groups/global/AllUsers"
	groupAuthUsers   = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
	groupLogDelivery = "http://acs.amazonaws.com/groups/s3/LogDelivery"

	permFull     = "FULL_CONTROL"
	permRead     = "READ"
	permWrite    = "WRITE"
	permReadACP  = "READ_ACP"
	permWriteACP = "WRITE_ACP"

	granteeUser  = "CanonicalUser"
	granteeGroup = "Group"
	granteeEmail = "AmazonCustomerByEmail"
)

// CloudReaderID is the canonical id of the cloud itself as a grantee: the
// canned ACL aws-exec-read grants it READ, as AWS grants EC2 READ on a
// bundle, so that images can be registered from bundles in the user's
// buckets. (Eucalyptus's own system account was named eucalyptus.)
const CloudReaderID = "eucalyptus"

var validPerms = map[string]bool{permFull: true, permRead: true, permWrite: true, permReadACP: true, permWriteACP: true}

func userGrant(id, perm string) store.WalrusGrant {
	return store.WalrusGrant{Type: granteeUser, ID: id, Permission: perm}
}

func groupGrant(uri, perm string) store.WalrusGrant {
	return store.WalrusGrant{Type: granteeGroup, URI: uri, Permission: perm}
}

// cannedACL expands a canned ACL for a resource owned by owner in a bucket
// owned by bucketOwner (the same for a bucket).
func cannedACL(name, owner, bucketOwner string) ([]store.WalrusGrant, error) {
	acl := []store.WalrusGrant{userGrant(owner, permFull)}
	switch name {
	case "", "private":
	case "public-read":
		acl = append(acl, groupGrant(groupAllUsers, permRead))
	case "public-read-write":
		acl = append(acl, groupGrant(groupAllUsers, permRead), groupGrant(groupAllUsers, permWrite))
	case "authenticated-read":
		acl = append(acl, groupGrant(groupAuthUsers, permRead))
	case "aws-exec-read":
		// As AWS grants EC2 READ on a bundle: here the cloud reads it to
		// register the image. The bucket's owner may read it too.
		acl = append(acl, userGrant(CloudReaderID, permRead))
		if bucketOwner != owner {
			acl = append(acl, userGrant(bucketOwner, permRead))
		}
	case "bucket-owner-read":
		if bucketOwner != owner {
			acl = append(acl, userGrant(bucketOwner, permRead))
		}
	case "bucket-owner-full-control":
		if bucketOwner != owner {
			acl = append(acl, userGrant(bucketOwner, permFull))
		}
	case "log-delivery-write":
		acl = append(acl, groupGrant(groupLogDelivery, permWrite), groupGrant(groupLogDelivery, permReadACP))
	default:
		return nil, s3Errorf("InvalidArgument", "The canned ACL %q is not valid.", name)
	}
	return acl, nil
}

// grantHeaders are the x-amz-grant-* headers and the permission each
// gives, in the order the ACL lists their grants: READ, WRITE, READ_ACP,
// WRITE_ACP, FULL_CONTROL, each header's grantees as they came (the order
// Ceph's s3-tests, run against S3 too, expect back from GetObjectAcl). A
// canned ACL lists its owner's FULL_CONTROL first (cannedACL).
var grantHeaders = []struct{ header, perm string }{
	{"X-Amz-Grant-Read", permRead},
	{"X-Amz-Grant-Write", permWrite},
	{"X-Amz-Grant-Read-Acp", permReadACP},
	{"X-Amz-Grant-Write-Acp", permWriteACP},
	{"X-Amz-Grant-Full-Control", permFull},
}

// aclFromHeaders reads the ACL a request asks for: x-amz-acl, or
// x-amz-grant-* headers, or private. ok is false when it asks for none.
func (w *Walrus) aclFromHeaders(ctx context.Context, h http.Header, owner, bucketOwner string) (acl []store.WalrusGrant, ok bool, err error) {
	canned := strings.TrimSpace(h.Get("X-Amz-Acl"))
	var grants []store.WalrusGrant
	for _, g := range grantHeaders {
		v := h.Get(g.header)
		if v == "" {
			continue
		}
		gs, err := w.parseGrantHeader(ctx, v, g.perm)
		if err != nil {
			return nil, false, err
		}
		grants = append(grants, gs...)
	}
	switch {
	case canned != "" && grants != nil:
		return nil, false, s3Errorf("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
	case grants != nil:
		return grants, true, nil
	case canned != "":
		acl, err := cannedACL(canned, owner, bucketOwner)
		return acl, err == nil, err
	}
	acl, err = cannedACL("private", owner, bucketOwner)
	return acl, false, err
}

// parseGrantHeader reads `id="…", uri="…", emailAddress="…"` lists.
func (w *Walrus) parseGrantHeader(ctx context.Context, v, perm string) ([]store.WalrusGrant, error) {
	var out []store.WalrusGrant
	for _, part := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, s3Errorf("InvalidArgument", "Invalid grant header %q.", part)
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		g := store.WalrusGrant{Permission: perm}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "id":
			g.Type, g.ID = granteeUser, val
		case "uri":
			g.Type, g.URI = granteeGroup, val
		case "emailaddress":
			g.Type, g.Email = granteeEmail, val
		default:
			return nil, s3Errorf("InvalidArgument", "Invalid grantee type %q.", k)
		}
		if err := w.checkGrantee(ctx, g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// checkGrantee refuses grantees that name no one.
func (w *Walrus) checkGrantee(ctx context.Context, g store.WalrusGrant) error {
	switch g.Type {
	case granteeUser:
		if g.ID == CloudReaderID {
			return nil
		}
		if _, err := w.keys.AccountName(ctx, g.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return s3Errorf("InvalidArgument", "Invalid id")
			}
			return internal("grantee %s: %w", g.ID, err)
		}
	case granteeGroup:
		switch g.URI {
		case groupAllUsers, groupAuthUsers, groupLogDelivery:
		default:
			return s3Errorf("InvalidArgument", "Invalid group uri")
		}
	case granteeEmail:
		// Accounts here have no e-mail addresses.
		return s3Error("UnresolvableGrantByEmailAddress")
	default:
		return s3Errorf("MalformedACLError", "The grantee type %q is not valid.", g.Type)
	}
	if !validPerms[g.Permission] {
		return s3Errorf("MalformedACLError", "The permission %q is not valid.", g.Permission)
	}
	return nil
}

// allowed reports whether a caller ("" for anonymous) holds perm on a
// resource with this owner and ACL. The owner always holds READ_ACP and
// WRITE_ACP, so no ACL can lock its owner out of changing it.
func allowed(acl []store.WalrusGrant, owner, caller, perm string) bool {
	if caller != "" && caller == owner && (perm == permReadACP || perm == permWriteACP) {
		return true
	}
	for _, g := range acl {
		if g.Permission != perm && g.Permission != permFull {
			continue
		}
		switch {
		case g.Type == granteeUser && caller != "" && g.ID == caller:
			return true
		case g.Type == granteeGroup && g.URI == groupAllUsers:
			return true
		case g.Type == granteeGroup && g.URI == groupAuthUsers && caller != "":
			return true
		}
	}
	return false
}

// owner is an Owner or Grantee element's canonical user.
type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName,omitempty"`
}

// ownerOf names an account: its id is its canonical id, its name the
// display name.
func (w *Walrus) ownerOf(ctx context.Context, accountID string) owner {
	if accountID == CloudReaderID {
		return owner{ID: CloudReaderID, DisplayName: CloudReaderID}
	}
	name, err := w.keys.AccountName(ctx, accountID)
	if err != nil {
		return owner{ID: accountID, DisplayName: accountID}
	}
	return owner{ID: accountID, DisplayName: name}
}

// accessControlPolicy is the document of Get/Put{Bucket,Object}Acl.
type accessControlPolicy struct {
	XMLName xml.Name `xml:"AccessControlPolicy"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Owner   owner    `xml:"Owner"`
	Grants  []grant  `xml:"AccessControlList>Grant"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

type grantee struct {
	XMLNSXSI    string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID,omitempty"`
	DisplayName string `xml:"DisplayName,omitempty"`
	URI         string `xml:"URI,omitempty"`
	Email       string `xml:"EmailAddress,omitempty"`
}

const xsiNS = "http://www.w3.org/2001/XMLSchema-instance"

func (w *Walrus) policyDoc(ctx context.Context, ownerID string, acl []store.WalrusGrant) accessControlPolicy {
	doc := accessControlPolicy{Xmlns: s3NS, Owner: w.ownerOf(ctx, ownerID), Grants: []grant{}}
	for _, g := range acl {
		ge := grantee{XMLNSXSI: xsiNS, Type: g.Type, URI: g.URI, Email: g.Email}
		if g.Type == granteeUser {
			o := w.ownerOf(ctx, g.ID)
			ge.ID, ge.DisplayName = o.ID, o.DisplayName
		}
		doc.Grants = append(doc.Grants, grant{Grantee: ge, Permission: g.Permission})
	}
	return doc
}

// aclForPut reads the ACL of a Put{Bucket,Object}Acl request: the canned
// or grant headers, or an AccessControlPolicy document. The document's
// owner must be the resource's.
func (w *Walrus) aclForPut(ctx context.Context, r *request, ownerID, bucketOwner string) ([]store.WalrusGrant, error) {
	cfg, err := w.accessConfig(ctx, r.bucket)
	if err != nil {
		return nil, err
	}
	if cfg.ownership == ownershipEnforced {
		ownerID = bucketOwner // the bucket owner owns every object
	}
	acl, err := w.readACLForPut(ctx, r, ownerID, bucketOwner)
	if err != nil {
		return nil, err
	}
	return acl, checkACLForPut(cfg, acl, bucketOwner)
}

func (w *Walrus) readACLForPut(ctx context.Context, r *request, ownerID, bucketOwner string) ([]store.WalrusGrant, error) {
	acl, fromHeaders, err := w.aclFromHeaders(ctx, r.http.Header, ownerID, bucketOwner)
	if err != nil {
		return nil, err
	}
	body, err := r.payload()
	if err != nil {
		return nil, err
	}
	if fromHeaders {
		if len(strings.TrimSpace(string(body))) > 0 {
			return nil, s3Errorf("UnexpectedContent", "This request does not support content")
		}
		return acl, nil
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, s3Errorf("MissingRequestBodyError", "Request Body is empty")
	}
	// Grantee's xsi:type is an attribute in the xsi namespace; decode it
	// by its local name.
	var doc struct {
		Owner struct {
			ID string `xml:"ID"`
		} `xml:"Owner"`
		Grants []struct {
			Grantee struct {
				Type  string `xml:"type,attr"`
				ID    string `xml:"ID"`
				URI   string `xml:"URI"`
				Email string `xml:"EmailAddress"`
			} `xml:"Grantee"`
			Permission string `xml:"Permission"`
		} `xml:"AccessControlList>Grant"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, s3Error("MalformedACLError")
	}
	if doc.Owner.ID != "" && doc.Owner.ID != ownerID {
		return nil, s3Errorf("AccessDenied", "The owner in the ACL is not the owner of the resource.")
	}
	acl = []store.WalrusGrant{}
	for _, g := range doc.Grants {
		sg := store.WalrusGrant{Type: g.Grantee.Type, ID: g.Grantee.ID, URI: g.Grantee.URI, Email: g.Grantee.Email, Permission: g.Permission}
		if sg.Type == "" { // some clients leave xsi:type out; infer it
			switch {
			case sg.ID != "":
				sg.Type = granteeUser
			case sg.URI != "":
				sg.Type = granteeGroup
			case sg.Email != "":
				sg.Type = granteeEmail
			}
		}
		if err := w.checkGrantee(ctx, sg); err != nil {
			return nil, err
		}
		acl = append(acl, sg)
	}
	return acl, nil
}

func (w *Walrus) getBucketACL(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permReadACP)
	if err != nil {
		return nil, err
	}
	return xmlResponse(w.policyDoc(ctx, b.AccountID, b.ACL)), nil
}

func (w *Walrus) putBucketACL(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permWriteACP)
	if err != nil {
		return nil, err
	}
	acl, err := w.aclForPut(ctx, r, b.AccountID, b.AccountID)
	if err != nil {
		return nil, err
	}
	if err := w.st.SetWalrusBucketACL(ctx, b.Name, acl); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s3Error("NoSuchBucket")
		}
		return nil, internal("set bucket acl: %w", err)
	}
	return newResponse(http.StatusOK), nil
}
