package walrus

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/policy"
)

// Walrus's permission check. Every handler reaches a bucket or an object
// through bucket or object, and both decide through authorize, as S3 does:
//
//  1. The root user of the bucket owner's account may always get, put and
//     delete the bucket policy, so that no policy locks it out.
//  2. An explicit Deny in the bucket policy refuses the request, whoever
//     asks (the owner too) and whatever the ACLs grant.
//  3. An Allow in the policy grants it, unless RestrictPublicBuckets
//     restricts a public policy to the owner's account.
//  4. Otherwise the ACLs decide: none when the bucket's ownership controls
//     are BucketOwnerEnforced (then the owner's account may do anything and
//     no one else anything), and without their public grants under
//     IgnorePublicAcls.

// opActions names every operation of the route table by the IAM action a
// bucket policy grants or denies it with (AWS's "Actions, resources, and
// condition keys for Amazon S3"). An operation missing here is named
// s3:<operation>; a test checks that every route has its row.
var opActions = map[string]string{
	"ListBuckets":             "s3:ListAllMyBuckets",
	"CreateBucket":            "s3:CreateBucket",
	"DeleteBucket":            "s3:DeleteBucket",
	"HeadBucket":              "s3:ListBucket",
	"ListObjects":             "s3:ListBucket",
	"ListObjectsV2":           "s3:ListBucket",
	"ListObjectVersions":      "s3:ListBucketVersions",
	"GetBucketLocation":       "s3:GetBucketLocation",
	"ListMultipartUploads":    "s3:ListBucketMultipartUploads",
	"DeleteObjects":           "s3:DeleteObject", // checked for each key
	"PostObject":              "s3:PutObject",
	"GetBucketAcl":            "s3:GetBucketAcl",
	"PutBucketAcl":            "s3:PutBucketAcl",
	"GetBucketPolicyStatus":   "s3:GetBucketPolicyStatus",
	"GetObject":               "s3:GetObject",
	"HeadObject":              "s3:GetObject",
	"PutObject":               "s3:PutObject",
	"CopyObject":              "s3:PutObject", // and s3:GetObject on the source
	"DeleteObject":            "s3:DeleteObject",
	"GetObjectAcl":            "s3:GetObjectAcl",
	"PutObjectAcl":            "s3:PutObjectAcl",
	"GetObjectTagging":        "s3:GetObjectTagging",
	"PutObjectTagging":        "s3:PutObjectTagging",
	"DeleteObjectTagging":     "s3:DeleteObjectTagging",
	"CreateMultipartUpload":   "s3:PutObject",
	"UploadPart":              "s3:PutObject",
	"UploadPartCopy":          "s3:PutObject", // and s3:GetObject on the source
	"CompleteMultipartUpload": "s3:PutObject",
	"AbortMultipartUpload":    "s3:AbortMultipartUpload",
	"ListParts":               "s3:ListMultipartUploadParts",
	"GetObjectRetention":      "s3:GetObjectRetention",
	"PutObjectRetention":      "s3:PutObjectRetention",
	"GetObjectLegalHold":      "s3:GetObjectLegalHold",
	"PutObjectLegalHold":      "s3:PutObjectLegalHold",
	"GetObjectTorrent":        "s3:GetObjectTorrent",
	"RestoreObject":           "s3:RestoreObject",
	"SelectObjectContent":     "s3:GetObject",
	"GetObjectAttributes":     "s3:GetObjectAttributes",
	// CORS preflights carry no credentials and check no permission.
	"PreflightBucket": "",
	"PreflightObject": "",

	"GetBucketPolicy":                    "s3:GetBucketPolicy",
	"PutBucketPolicy":                    "s3:PutBucketPolicy",
	"DeleteBucketPolicy":                 "s3:DeleteBucketPolicy",
	"GetBucketCors":                      "s3:GetBucketCORS",
	"PutBucketCors":                      "s3:PutBucketCORS",
	"DeleteBucketCors":                   "s3:PutBucketCORS",
	"GetBucketWebsite":                   "s3:GetBucketWebsite",
	"PutBucketWebsite":                   "s3:PutBucketWebsite",
	"DeleteBucketWebsite":                "s3:DeleteBucketWebsite",
	"GetBucketLifecycleConfiguration":    "s3:GetLifecycleConfiguration",
	"PutBucketLifecycleConfiguration":    "s3:PutLifecycleConfiguration",
	"DeleteBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
	"GetBucketTagging":                   "s3:GetBucketTagging",
	"PutBucketTagging":                   "s3:PutBucketTagging",
	"DeleteBucketTagging":                "s3:PutBucketTagging",
	"GetBucketVersioning":                "s3:GetBucketVersioning",
	"PutBucketVersioning":                "s3:PutBucketVersioning",
	"GetBucketReplication":               "s3:GetReplicationConfiguration",
	"PutBucketReplication":               "s3:PutReplicationConfiguration",
	"DeleteBucketReplication":            "s3:PutReplicationConfiguration",
	"GetBucketEncryption":                "s3:GetEncryptionConfiguration",
	"PutBucketEncryption":                "s3:PutEncryptionConfiguration",
	"DeleteBucketEncryption":             "s3:PutEncryptionConfiguration",
	"GetBucketObjectLockConfiguration":   "s3:GetBucketObjectLockConfiguration",
	"PutBucketObjectLockConfiguration":   "s3:PutBucketObjectLockConfiguration",
	"GetBucketOwnershipControls":         "s3:GetBucketOwnershipControls",
	"PutBucketOwnershipControls":         "s3:PutBucketOwnershipControls",
	"DeleteBucketOwnershipControls":      "s3:PutBucketOwnershipControls",
	"GetBucketPublicAccessBlock":         "s3:GetBucketPublicAccessBlock",
	"PutBucketPublicAccessBlock":         "s3:PutBucketPublicAccessBlock",
	"DeleteBucketPublicAccessBlock":      "s3:PutBucketPublicAccessBlock",
	"GetBucketAccelerateConfiguration":   "s3:GetAccelerateConfiguration",
	"PutBucketAccelerateConfiguration":   "s3:PutAccelerateConfiguration",
	"GetBucketRequestPayment":            "s3:GetBucketRequestPayment",
	"PutBucketRequestPayment":            "s3:PutBucketRequestPayment",
	"GetBucketLogging":                   "s3:GetBucketLogging",
	"PutBucketLogging":                   "s3:PutBucketLogging",
	"GetBucketNotificationConfiguration": "s3:GetBucketNotification",
	"PutBucketNotificationConfiguration": "s3:PutBucketNotification",
}

// actionOf is the IAM action of an operation.
func actionOf(op string) string {
	if a, ok := opActions[op]; ok {
		return a
	}
	return "s3:" + op
}

// policyActions are the calls the bucket owner's account may always make,
// whatever the policy says; no other account may make them.
var policyActions = map[string]bool{"s3:GetBucketPolicy": true, "s3:PutBucketPolicy": true, "s3:DeleteBucketPolicy": true}

// access is one permission a request needs on a bucket or an object.
type access struct {
	// perm is the ACL permission (permOwner: the bucket owner's account
	// only), checked against acl, the ACL of a resource owned by owner.
	perm  string
	owner string
	acl   []store.WalrusGrant
	// action is the policy's name for the request, on key ("" for the
	// bucket itself).
	action string
	key    string
	// object, when the request reads an existing object: its tags are
	// condition keys (s3:ExistingObjectTag/<key>).
	object *store.WalrusObject
}

// bucketAccess is what a request for r.op needs of bucket b, holding perm.
func bucketAccess(r *request, b store.WalrusBucket, perm string) access {
	return access{perm: perm, owner: b.AccountID, acl: b.ACL, action: actionOf(r.op), key: r.key}
}

// authorize is the permission check (see the comment at the top of this
// file): nil when the caller may, AccessDenied when it may not.
func (w *Walrus) authorize(ctx context.Context, r *request, b store.WalrusBucket, a access) error {
	cfg, err := w.accessConfig(ctx, b.Name)
	if err != nil {
		return err
	}
	if !w.decide(ctx, r, b, cfg, a) {
		if policyActions[a.action] && cfg.policy != nil && cfg.policy.Evaluate(w.policyRequest(r, b, a)) == policy.Allowed {
			// Permitted, but not of the owner's account: S3 answers 405.
			return s3Errorf("MethodNotAllowed", "Only the bucket owner's account may %s.", strings.TrimPrefix(a.action, "s3:"))
		}
		return s3Error("AccessDenied")
	}
	return nil
}

func (w *Walrus) decide(ctx context.Context, r *request, b store.WalrusBucket, cfg accessConfig, a access) bool {
	caller := r.callerID()
	ownerAccount := caller != "" && caller == b.AccountID
	if policyActions[a.action] {
		return ownerAccount
	}
	if cfg.policyErr != nil {
		// A stored policy that no longer parses (stored before policies
		// were validated): enforce nothing it might allow and let only
		// the owner's account in, until it replaces or deletes it.
		w.log.WarnContext(ctx, "bucket policy unreadable", "bucket", b.Name, "err", cfg.policyErr)
		if !ownerAccount {
			return false
		}
	} else if cfg.policy != nil {
		switch cfg.policy.Evaluate(w.policyRequest(r, b, a)) {
		case policy.Denied:
			return false
		case policy.Allowed:
			if ownerAccount || !cfg.block.RestrictPublicBuckets || !cfg.policy.IsPublic() {
				return true
			}
		}
	}
	if cfg.ownership == ownershipEnforced || a.perm == permOwner {
		// ACLs are disabled: the bucket's owner owns everything in it.
		return ownerAccount
	}
	acl := a.acl
	if cfg.block.IgnorePublicAcls {
		acl = withoutPublicGrants(acl)
	}
	return allowed(acl, a.owner, caller, a.perm)
}

// deleteErrorOf is a DeleteObjects result entry for a key refused.
func deleteErrorOf(key string, err error) deleteError {
	e := awserr.From(err)
	return deleteError{Key: key, Code: e.Code, Message: e.Message}
}

// resourceARN names a bucket, or an object when key is not "".
func resourceARN(bucket, key string) string {
	if key == "" {
		return "arn:aws:s3:::" + bucket
	}
	return "arn:aws:s3:::" + bucket + "/" + key
}

// policyRequest is the request as the bucket policy sees it.
func (w *Walrus) policyRequest(r *request, b store.WalrusBucket, a access) policy.Request {
	pr := policy.Request{Anonymous: r.anonymous, Action: a.action, Resource: resourceARN(b.Name, a.key), Context: w.conditionKeys(r, b, a)}
	if !r.anonymous {
		pr.Account, pr.ARN = r.caller.AccountID, r.caller.ARN()
	}
	return pr
}

// conditionHeaders are the request headers that are S3 condition keys of
// the same name (s3:x-amz-acl, ...); grants list one grantee a value.
var conditionHeaders = []string{
	"x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
	"x-amz-grant-full-control", "x-amz-copy-source", "x-amz-metadata-directive", "x-amz-server-side-encryption",
	"x-amz-server-side-encryption-aws-kms-key-id", "x-amz-storage-class", "x-amz-content-sha256", "x-amz-object-ownership",
}

// conditionKeys are the request's condition keys, by lower-case name.
func (w *Walrus) conditionKeys(r *request, b store.WalrusBucket, a access) map[string][]string {
	ctx := map[string][]string{}
	set := func(k, v string) { ctx[k] = []string{v} }
	h := r.http.Header
	if host, _, err := net.SplitHostPort(r.http.RemoteAddr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			set("aws:sourceip", ip.Unmap().WithZone("").String())
		}
	}
	set("aws:securetransport", strconv.FormatBool(r.http.TLS != nil))
	if v := h.Get("Referer"); v != "" {
		set("aws:referer", v)
	}
	if v := h.Get("User-Agent"); v != "" {
		set("aws:useragent", v)
	}
	now := w.now().UTC()
	set("aws:currenttime", now.Format(time.RFC3339))
	set("aws:epochtime", strconv.FormatInt(now.Unix(), 10))
	if r.anonymous {
		set("aws:principaltype", "Anonymous")
		set("aws:userid", "anonymous")
	} else {
		set("aws:principalaccount", r.caller.AccountID)
		set("aws:principalarn", r.caller.ARN())
		if u := r.caller.UserName; u == "" || u == "root" {
			set("aws:principaltype", "Account")
			set("aws:userid", r.caller.AccountID)
		} else {
			set("aws:principaltype", "User")
			set("aws:username", u)
			set("aws:userid", r.caller.AccountID+":"+u)
		}
		switch {
		case r.op == "PostObject":
			set("s3:authtype", "POST")
		case r.auth.Presigned:
			set("s3:authtype", "REST-QUERY-STRING")
		default:
			set("s3:authtype", "REST-HEADER")
		}
		if r.auth.Version == 4 {
			set("s3:signatureversion", "AWS4-HMAC-SHA256")
		} else {
			set("s3:signatureversion", "AWS")
		}
	}
	set("s3:resourceaccount", b.AccountID)
	for _, name := range conditionHeaders {
		v := h.Get(name)
		if v == "" {
			continue
		}
		if strings.HasPrefix(name, "x-amz-grant-") {
			for _, g := range strings.Split(v, ",") {
				ctx["s3:"+name] = append(ctx["s3:"+name], strings.TrimSpace(g))
			}
			continue
		}
		set("s3:"+name, v)
	}
	if a.action == "s3:ListBucket" || a.action == "s3:ListBucketVersions" || a.action == "s3:ListBucketMultipartUploads" {
		// A listing without a prefix lists from "" (AWS's examples grant
		// the top level with s3:prefix "").
		set("s3:prefix", r.query.Get("prefix"))
		for _, k := range []string{"delimiter", "max-keys"} {
			if r.query.Has(k) {
				set("s3:"+k, r.query.Get(k))
			}
		}
	}
	if a.object != nil {
		for _, t := range a.object.Tags {
			set("s3:existingobjecttag/"+strings.ToLower(t.Key), t.Value)
		}
	}
	return ctx
}

// Object ownership settings (PutBucketOwnershipControls).
const (
	ownershipWriter    = "ObjectWriter"
	ownershipPreferred = "BucketOwnerPreferred"
	ownershipEnforced  = "BucketOwnerEnforced"
)

// accessConfig is what governs access to a bucket besides its ACLs.
type accessConfig struct {
	policy    *policy.Policy // nil: none
	policyErr error          // a stored policy that does not parse
	ownership string         // ownershipWriter when none is stored
	block     publicAccessBlock
}

// The bucket sub-resources that govern access.
const (
	subPolicy            = "policy"
	subOwnership         = "ownershipControls"
	subPublicAccessBlock = "publicAccessBlock"
)

// accessConfig reads a bucket's policy, ownership controls and public
// access block.
func (w *Walrus) accessConfig(ctx context.Context, bucket string) (accessConfig, error) {
	cfg := accessConfig{ownership: ownershipWriter}
	docs, err := w.st.WalrusBucketConfigs(ctx, bucket, subPolicy, subOwnership, subPublicAccessBlock)
	if err != nil {
		return cfg, internal("access configuration of bucket %s: %w", bucket, err)
	}
	if d, ok := docs[subPolicy]; ok {
		cfg.policy, cfg.policyErr = parsedPolicies.parse(bucket, d)
	}
	if d, ok := docs[subOwnership]; ok {
		if v, ok := childXML([]byte(d), "ObjectOwnership"); ok {
			cfg.ownership = v
		}
	}
	if d, ok := docs[subPublicAccessBlock]; ok {
		cfg.block, _ = parsePublicAccessBlock([]byte(d))
	}
	return cfg, nil
}

// parsedPolicies remembers the parse of recent policies, so that a request
// does not parse its bucket's policy again: Parse is a pure function of the
// bucket's name and the document, and a parsed policy is never changed.
var parsedPolicies = &policyCache{max: 256}

type policyCache struct {
	mu  sync.Mutex
	max int // entries kept: at most max policies of policy.MaxSize
	m   map[[2]string]policyParse
}

type policyParse struct {
	p   *policy.Policy
	err error
}

func (c *policyCache) parse(bucket, doc string) (*policy.Policy, error) {
	k := [2]string{bucket, doc}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return e.p, e.err
	}
	e.p, e.err = policy.Parse([]byte(doc), bucket)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[[2]string]policyParse)
	}
	c.m[k] = e
	return e.p, e.err
}

// isPublicGrant reports a grant to everyone, or to everyone signed in.
func isPublicGrant(g store.WalrusGrant) bool {
	return g.Type == granteeGroup && (g.URI == groupAllUsers || g.URI == groupAuthUsers)
}

func hasPublicGrant(acl []store.WalrusGrant) bool {
	for _, g := range acl {
		if isPublicGrant(g) {
			return true
		}
	}
	return false
}

func withoutPublicGrants(acl []store.WalrusGrant) []store.WalrusGrant {
	out := make([]store.WalrusGrant, 0, len(acl))
	for _, g := range acl {
		if !isPublicGrant(g) {
			out = append(out, g)
		}
	}
	return out
}
