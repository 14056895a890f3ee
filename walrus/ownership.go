package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/policy"
)

// Bucket policies, ownership controls and public access blocks: the
// documents that, with the ACLs, decide who may do what (authorize.go
// applies them; this file validates and stores them, and applies them to
// the ACLs requests ask for).

// checkPolicy validates a bucket policy; a public one is refused when the
// bucket blocks public policies.
func checkPolicy(w *Walrus, ctx context.Context, b store.WalrusBucket, body []byte) ([]byte, error) {
	p, err := policy.Parse(body, b.Name)
	if err != nil {
		var pe *policy.Error
		if errors.As(err, &pe) {
			return nil, s3Errorf("MalformedPolicy", "%s", pe.Msg)
		}
		return nil, internal("parse policy: %w", err)
	}
	if err := w.checkPrincipals(ctx, p); err != nil {
		return nil, err
	}
	cfg, err := w.accessConfig(ctx, b.Name)
	if err != nil {
		return nil, err
	}
	if cfg.block.BlockPublicPolicy && p.IsPublic() {
		return nil, s3Errorf("AccessDenied", "The bucket's public access block (BlockPublicPolicy) refuses a public policy.")
	}
	return body, nil
}

// checkPrincipals refuses, as S3 does, a policy naming an account that
// does not exist (S3 resolves principals when the policy is put).
func (w *Walrus) checkPrincipals(ctx context.Context, p *policy.Policy) error {
	for _, s := range p.Statements {
		ids := append([]string{}, s.Principals.Canonical...)
		for _, a := range s.Principals.AWS {
			if id, ok := policy.AccountOf(a); ok {
				ids = append(ids, id)
			}
		}
		for _, id := range ids {
			if id == CloudReaderID {
				continue
			}
			if _, err := w.keys.AccountName(ctx, id); errors.Is(err, store.ErrNotFound) {
				return s3Errorf("MalformedPolicy", "Invalid principal in policy: no account %s", id)
			} else if err != nil {
				return internal("principal %s: %w", id, err)
			}
		}
	}
	return nil
}

type policyStatus struct {
	XMLName  xml.Name `xml:"PolicyStatus"`
	Xmlns    string   `xml:"xmlns,attr"`
	IsPublic bool     `xml:"IsPublic"`
}

// getBucketPolicyStatus says whether the bucket's policy is public, by
// S3's definition (policy.IsPublic).
func (w *Walrus) getBucketPolicyStatus(ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permOwner)
	if err != nil {
		return nil, err
	}
	cfg, err := w.accessConfig(ctx, b.Name)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.policyErr != nil:
		return nil, internal("policy of bucket %s: %w", b.Name, cfg.policyErr)
	case cfg.policy == nil:
		return nil, s3Error("NoSuchBucketPolicy")
	}
	return xmlResponse(policyStatus{Xmlns: s3NS, IsPublic: cfg.policy.IsPublic()}), nil
}

// ownershipControls is the document of Put/GetBucketOwnershipControls.
type ownershipControls struct {
	XMLName xml.Name        `xml:"OwnershipControls"`
	Xmlns   string          `xml:"xmlns,attr,omitempty"`
	Rules   []ownershipRule `xml:"Rule"`
}

type ownershipRule struct {
	ObjectOwnership string `xml:"ObjectOwnership"`
}

func validOwnership(v string) bool {
	return v == ownershipWriter || v == ownershipPreferred || v == ownershipEnforced
}

// checkOwnershipControls validates the one rule S3 takes, refusing
// BucketOwnerEnforced while the bucket's ACL grants anyone but its owner
// (S3 wants the grants moved to the policy first), and stores it in a
// normal form.
func checkOwnershipControls(w *Walrus, ctx context.Context, b store.WalrusBucket, body []byte) ([]byte, error) {
	var doc ownershipControls
	if err := xml.Unmarshal(body, &doc); err != nil || len(doc.Rules) != 1 || !validOwnership(doc.Rules[0].ObjectOwnership) {
		return nil, s3Errorf("MalformedXML", "OwnershipControls must hold one Rule whose ObjectOwnership is %s, %s or %s.", ownershipWriter, ownershipPreferred, ownershipEnforced)
	}
	if doc.Rules[0].ObjectOwnership == ownershipEnforced && !ownerOnlyACL(b.ACL, b.AccountID) {
		return nil, s3Error("InvalidBucketAclWithObjectOwnership")
	}
	return marshalDoc(ownershipControls{Xmlns: s3NS, Rules: doc.Rules})
}

// publicAccessBlock is the document of Put/GetPublicAccessBlock.
type publicAccessBlock struct {
	XMLName               xml.Name `xml:"PublicAccessBlockConfiguration"`
	Xmlns                 string   `xml:"xmlns,attr,omitempty"`
	BlockPublicAcls       bool     `xml:"BlockPublicAcls"`
	IgnorePublicAcls      bool     `xml:"IgnorePublicAcls"`
	BlockPublicPolicy     bool     `xml:"BlockPublicPolicy"`
	RestrictPublicBuckets bool     `xml:"RestrictPublicBuckets"`
}

// parsePublicAccessBlock reads the four settings; an absent one is off.
func parsePublicAccessBlock(body []byte) (publicAccessBlock, error) {
	var doc struct {
		XMLName  xml.Name
		Settings []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	var out publicAccessBlock
	if err := xml.Unmarshal(body, &doc); err != nil || doc.XMLName.Local != "PublicAccessBlockConfiguration" {
		return out, s3Error("MalformedXML")
	}
	for _, s := range doc.Settings {
		var on bool
		switch strings.TrimSpace(s.Value) {
		case "true":
			on = true
		case "false":
		default:
			return out, s3Errorf("MalformedXML", "%s must be true or false.", s.XMLName.Local)
		}
		switch s.XMLName.Local {
		case "BlockPublicAcls":
			out.BlockPublicAcls = on
		case "IgnorePublicAcls":
			out.IgnorePublicAcls = on
		case "BlockPublicPolicy":
			out.BlockPublicPolicy = on
		case "RestrictPublicBuckets":
			out.RestrictPublicBuckets = on
		default:
			return out, s3Errorf("MalformedXML", "PublicAccessBlockConfiguration has no setting %s.", s.XMLName.Local)
		}
	}
	return out, nil
}

func checkPublicAccessBlock(w *Walrus, ctx context.Context, b store.WalrusBucket, body []byte) ([]byte, error) {
	doc, err := parsePublicAccessBlock(body)
	if err != nil {
		return nil, err
	}
	doc.Xmlns = s3NS
	return marshalDoc(doc)
}

func marshalDoc(doc any) ([]byte, error) {
	out, err := xml.Marshal(doc)
	if err != nil {
		return nil, internal("encode document: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// ownerOnlyACL reports an ACL that grants only its owner, full control:
// the only one a bucket whose ACLs are disabled may have.
func ownerOnlyACL(acl []store.WalrusGrant, owner string) bool {
	for _, g := range acl {
		if g.Type != granteeUser || g.ID != owner || g.Permission != permFull {
			return false
		}
	}
	return len(acl) > 0
}

// newObjectACL is the owner and ACL of an object a request writes
// (PutObject, CopyObject, CreateMultipartUpload, PostObject), as the
// headers h ask (a POST upload's form fields stand for them), under the
// bucket's ownership controls and public access block.
func (w *Walrus) newObjectACL(ctx context.Context, r *request, b store.WalrusBucket, h http.Header) (string, []store.WalrusGrant, error) {
	owner := writeOwner(r, b)
	acl, explicit, err := w.aclFromHeaders(ctx, h, owner, b.AccountID)
	if err != nil {
		return "", nil, err
	}
	cfg, err := w.accessConfig(ctx, b.Name)
	if err != nil {
		return "", nil, err
	}
	canned := strings.TrimSpace(h.Get("X-Amz-Acl"))
	switch cfg.ownership {
	case ownershipEnforced:
		// ACLs are disabled: only no ACL, or one that gives the bucket
		// owner full control, is accepted, and the bucket owner owns
		// the object.
		if explicit && canned != "bucket-owner-full-control" && !ownerOnlyACL(acl, b.AccountID) {
			return "", nil, s3Error("AccessControlListNotSupported")
		}
		return b.AccountID, []store.WalrusGrant{userGrant(b.AccountID, permFull)}, nil
	case ownershipPreferred:
		if canned == "bucket-owner-full-control" {
			return b.AccountID, []store.WalrusGrant{userGrant(b.AccountID, permFull)}, nil
		}
	}
	if cfg.block.BlockPublicAcls && hasPublicGrant(acl) {
		return "", nil, s3Errorf("AccessDenied", "The bucket's public access block (BlockPublicAcls) refuses a public ACL.")
	}
	return owner, acl, nil
}

// checkACLForPut applies the ownership controls and public access block
// to the ACL a PutBucketAcl or PutObjectAcl sets.
func checkACLForPut(cfg accessConfig, acl []store.WalrusGrant, bucketOwner string) error {
	if cfg.ownership == ownershipEnforced && !ownerOnlyACL(acl, bucketOwner) {
		return s3Error("AccessControlListNotSupported")
	}
	if cfg.block.BlockPublicAcls && hasPublicGrant(acl) {
		return s3Errorf("AccessDenied", "The bucket's public access block (BlockPublicAcls) refuses a public ACL.")
	}
	return nil
}

// objectACL is the owner and ACL GetObjectAcl shows: with ACLs disabled,
// the bucket owner's, with full control, whatever was stored.
func (w *Walrus) objectACL(ctx context.Context, b store.WalrusBucket, o store.WalrusObject) (string, []store.WalrusGrant, error) {
	cfg, err := w.accessConfig(ctx, b.Name)
	if err != nil {
		return "", nil, err
	}
	if cfg.ownership == ownershipEnforced {
		return b.AccountID, []store.WalrusGrant{userGrant(b.AccountID, permFull)}, nil
	}
	return o.OwnerID, o.ACL, nil
}

// listedOwners makes a listing show the bucket's owner as every object's
// when its ACLs are disabled, as GetObjectAcl does.
func (w *Walrus) listedOwners(ctx context.Context, b store.WalrusBucket, entries []listEntry) error {
	cfg, err := w.accessConfig(ctx, b.Name)
	if err != nil || cfg.ownership != ownershipEnforced {
		return err
	}
	for _, e := range entries {
		if e.obj != nil {
			e.obj.OwnerID = b.AccountID
		}
	}
	return nil
}

// createOwnership reads CreateBucket's x-amz-object-ownership: "" when
// absent. BucketOwnerEnforced refuses an ACL that grants anyone else.
func createOwnership(r *request, acl []store.WalrusGrant, owner string) (string, error) {
	v := strings.TrimSpace(r.http.Header.Get("X-Amz-Object-Ownership"))
	switch {
	case v == "":
		return "", nil
	case !validOwnership(v):
		return "", s3Errorf("InvalidArgument", "Invalid x-amz-object-ownership header: %s", v)
	case v == ownershipEnforced && !ownerOnlyACL(acl, owner):
		return "", s3Error("InvalidBucketAclWithObjectOwnership")
	}
	return v, nil
}

// storeCreateOwnership stores the ownership controls a CreateBucket asked
// for.
func (w *Walrus) storeCreateOwnership(ctx context.Context, bucket, ownership string) error {
	if ownership == "" {
		return nil
	}
	body, err := marshalDoc(ownershipControls{Xmlns: s3NS, Rules: []ownershipRule{{ObjectOwnership: ownership}}})
	if err != nil {
		return err
	}
	if err := w.st.PutWalrusBucketConfig(ctx, bucket, subOwnership, string(body)); err != nil {
		return internal("store ownership controls of %s: %w", bucket, err)
	}
	return nil
}

// putStatus is the status of a successful Put of a sub-resource: S3
// answers 204 for some, 200 for the others.
func putStatus(sub string) int {
	switch sub {
	case "tagging", subPolicy:
		return http.StatusNoContent
	}
	return http.StatusOK
}
