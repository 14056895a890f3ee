package images

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/euca-cloud/euca/store"
	"github.com/euca-cloud/euca/walrus/policy"
)

// mayRead is Walrus's read permission on a bundle's object, as the cloud
// reads it for accountID, in S3's order (walrus/authorize.go applies the
// same to requests): the bucket policy's explicit Deny of s3:GetObject
// refuses, its Allow grants (a public policy's only to the bucket owner's
// account under the public access block's RestrictPublicBuckets);
// otherwise the ACLs decide (readable), without their public grants under
// IgnorePublicAcls, unless the bucket's ownership controls
// (BucketOwnerEnforced) disable them and leave reading to the bucket
// owner's account.
func (s *Service) mayRead(ctx context.Context, accountID string, o store.WalrusObject) (bool, error) {
	docs, err := s.st.WalrusBucketConfigs(ctx, o.Bucket, "policy", "ownershipControls", "publicAccessBlock")
	if err != nil {
		return false, fmt.Errorf("access configuration of bucket %s: %w", o.Bucket, err)
	}
	// Walrus stores the public access block in a normal form too.
	blocked := func(setting string) bool {
		return strings.Contains(docs["publicAccessBlock"], "<"+setting+">true</"+setting+">")
	}
	if d, ok := docs["policy"]; ok {
		p, err := policy.Parse([]byte(d), o.Bucket)
		if err != nil {
			// A stored policy that no longer parses lets only the
			// bucket's owner in (as Walrus does).
			return s.bucketOwner(ctx, o.Bucket, accountID)
		}
		r := policy.Request{Anonymous: accountID == "", Action: "s3:GetObject", Resource: "arn:aws:s3:::" + o.Bucket + "/" + o.Key,
			Context: map[string][]string{"aws:securetransport": {"true"}}}
		if accountID != "" {
			r.Account, r.ARN = accountID, "arn:aws:iam::"+accountID+":root"
			r.Context["aws:principalaccount"] = []string{accountID}
		}
		switch p.Evaluate(r) {
		case policy.Denied:
			return false, nil
		case policy.Allowed:
			if !blocked("RestrictPublicBuckets") || !p.IsPublic() {
				return true, nil
			}
			if ok, err := s.bucketOwner(ctx, o.Bucket, accountID); ok || err != nil {
				return ok, err
			}
		}
	}
	// Walrus stores the ownership controls in a normal form.
	if strings.Contains(docs["ownershipControls"], "<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>") {
		return s.bucketOwner(ctx, o.Bucket, accountID)
	}
	if blocked("IgnorePublicAcls") {
		o.ACL = slices.DeleteFunc(slices.Clone(o.ACL), func(g store.WalrusGrant) bool {
			return g.Type == "Group" && (g.URI == groupAllUsers || g.URI == groupAuthUsers)
		})
	}
	return readable(o, accountID), nil
}

// bucketOwner reports whether accountID owns the bucket.
func (s *Service) bucketOwner(ctx context.Context, bucket, accountID string) (bool, error) {
	b, err := s.st.WalrusBucket(ctx, bucket)
	if err != nil {
		return false, fmt.Errorf("bucket %s: %w", bucket, err)
	}
	return accountID != "" && b.AccountID == accountID, nil
}
