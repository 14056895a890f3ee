package awsauth

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"time"
)

// PostForm is the authentication of an S3 browser-based POST upload: the
// base64 policy document as sent, which is what is signed, and the form
// fields that sign it. SigV4 signs the policy with the derived key of the
// x-amz-credential scope (hex HMAC-SHA256); SigV2 with the secret itself
// (base64 HMAC-SHA1).
type PostForm struct {
	Policy string
	// SigV4: the x-amz-algorithm, x-amz-credential, x-amz-date and
	// x-amz-signature fields.
	Algorithm, Credential, Date, Signature string
	// SigV2: the AWSAccessKeyId and signature fields.
	AccessKeyID, SignatureV2 string
}

// VerifyPost checks a POST upload's signature of its policy. Whether the
// policy has expired and whether the form meets its conditions are the
// caller's to check (they are S3's, not the signature's). Errors are those
// of Verify.
func VerifyPost(ctx context.Context, f PostForm, lookup SecretLookup) (Result, error) {
	switch {
	case f.Policy == "":
		return Result{}, malformed("A signed POST must carry a policy.")
	case f.Signature != "" || f.Credential != "" || f.Algorithm != "":
		return verifyPostV4(ctx, f, lookup)
	case f.SignatureV2 != "" || f.AccessKeyID != "":
		if f.SignatureV2 == "" || f.AccessKeyID == "" {
			return Result{}, malformed("Bucket POST must contain a field named 'AWSAccessKeyId' and a field named 'signature'.")
		}
		if err := checkS3V2(ctx, lookup, f.AccessKeyID, f.SignatureV2, []string{f.Policy}); err != nil {
			return Result{}, err
		}
		return Result{AccessKeyID: f.AccessKeyID, Version: 2, Signature: f.SignatureV2}, nil
	}
	return Result{}, malformed("Bucket POST with a policy must be signed: x-amz-signature (or AWSAccessKeyId and signature) is missing.")
}

func verifyPostV4(ctx context.Context, f PostForm, lookup SecretLookup) (Result, error) {
	if f.Algorithm != algoV4 {
		return Result{}, unsupported("The x-amz-algorithm field must be AWS4-HMAC-SHA256.")
	}
	cred, err := parseCredential(f.Credential)
	if err != nil {
		return Result{}, err
	}
	if err := checkScopeService(Request{Style: StyleS3}, cred.service, true); err != nil {
		return Result{}, err
	}
	t, err := time.Parse(iso8601Basic, f.Date)
	if err != nil {
		return Result{}, malformed("The x-amz-date field must be in ISO 8601 basic format (yyyyMMddTHHmmssZ).")
	}
	if t.Format("20060102") != cred.date {
		return Result{}, malformed("The date in the credential scope does not match the x-amz-date field.")
	}
	sig, err := parseHexSignature(f.Signature)
	if err != nil {
		return Result{}, err
	}
	secret, err := lookupSecret(ctx, lookup, cred.accessKey)
	if err != nil {
		return Result{}, err
	}
	key := signingKey(secret, cred.date, cred.region, cred.service)
	want := hmacSHA256(key, f.Policy)
	if !hmac.Equal(want, sig) {
		return Result{}, ErrBadSignature
	}
	return Result{AccessKeyID: cred.accessKey, Version: 4, Region: cred.region, Service: cred.service,
		Date: f.Date, Signature: hex.EncodeToString(want)}, nil
}
