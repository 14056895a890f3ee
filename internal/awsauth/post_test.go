package awsauth

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
)

// Vectors from botocore's S3SigV4PostAuth and HmacV1PostAuth (the signers
// of boto3's generate_presigned_post) with AWS's example key.
const (
	postKey    = "AKIAIOSFODNN7EXAMPLE"
	postSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	postV4     = "eyJleHBpcmF0aW9uIjogIjIwMTUtMTItMzBUMTI6MDA6MDAuMDAwWiIsICJjb25kaXRpb25zIjogW3siYnVja2V0IjogImIifSwgWyJzdGFydHMtd2l0aCIsICIka2V5IiwgInVzZXIvIl0sIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwgeyJ4LWFtei1jcmVkZW50aWFsIjogIkFLSUFJT1NGT0ROTjdFWEFNUExFLzIwMjYxMjA3L3VzLWVhc3QtMS9zMy9hd3M0X3JlcXVlc3QifSwgeyJ4LWFtei1kYXRlIjogIjIwMjYxMjA3VDExMDI0MFoifV19"
	postV2     = "eyJleHBpcmF0aW9uIjogIjIwMTUtMTItMzBUMTI6MDA6MDAuMDAwWiIsICJjb25kaXRpb25zIjogW3siYnVja2V0IjogImIifSwgWyJzdGFydHMtd2l0aCIsICIka2V5IiwgInVzZXIvIl1dfQ=="
)

func postLookup(_ context.Context, akid string) (string, error) {
	if akid != postKey {
		return "", ErrUnknownKey
	}
	return postSecret, nil
}

func TestVerifyPost(t *testing.T) {
	ctx := context.Background()
	v4 := PostForm{Policy: postV4, Algorithm: "AWS4-HMAC-SHA256", Credential: postKey + "/20261207/us-east-1/s3/aws4_request",
		Date: "20261207T110240Z", Signature: "b3eada6e8158c559f18bc658c6d06119f462f86a803f0f3e113c678511a8c020"}
	res, err := VerifyPost(ctx, v4, postLookup)
	if err != nil || res.AccessKeyID != postKey || res.Version != 4 || res.Service != "s3" || res.Region != "us-east-1" {
		t.Fatalf("v4: %+v %v", res, err)
	}
	v2 := PostForm{Policy: postV2, AccessKeyID: postKey, SignatureV2: "jHIVVv2JQNJ/jBm/4cgSsdJWDrQ="}
	if res, err := VerifyPost(ctx, v2, postLookup); err != nil || res.Version != 2 || res.AccessKeyID != postKey {
		t.Fatalf("v2: %+v %v", res, err)
	}
	for name, c := range map[string]struct {
		f    PostForm
		kind Kind
	}{
		"v4 policy changed":  {func() PostForm { f := v4; f.Policy = postV2; return f }(), KindBadSignature},
		"v4 other region":    {func() PostForm { f := v4; f.Credential = postKey + "/20261207/us-west-2/s3/aws4_request"; return f }(), KindBadSignature},
		"v4 date mismatch":   {func() PostForm { f := v4; f.Date = "20261208T110240Z"; return f }(), KindMalformed},
		"v4 bad algorithm":   {func() PostForm { f := v4; f.Algorithm = "AWS4-HMAC-SHA1"; return f }(), KindUnsupported},
		"v4 short signature": {func() PostForm { f := v4; f.Signature = "abcd"; return f }(), KindMalformed},
		"v4 unknown key":     {func() PostForm { f := v4; f.Credential = "AKIAOTHER/20261207/us-east-1/s3/aws4_request"; return f }(), KindUnknownKey},
		// Signed as meant, but for EC2.
		"v4 other service": {func() PostForm {
			f := v4
			f.Credential = postKey + "/20261207/us-east-1/ec2/aws4_request"
			f.Signature = hex.EncodeToString(hmacSHA256(signingKey(postSecret, "20261207", "us-east-1", "ec2"), postV4))
			return f
		}(), KindMalformed},
		"v2 policy changed":    {func() PostForm { f := v2; f.Policy = postV4; return f }(), KindBadSignature},
		"v2 without signature": {func() PostForm { f := v2; f.SignatureV2 = ""; return f }(), KindMalformed},
		"unsigned policy":      {PostForm{Policy: postV2}, KindMalformed},
		"no policy":            {PostForm{AccessKeyID: postKey, SignatureV2: "x"}, KindMalformed},
	} {
		_, err := VerifyPost(ctx, c.f, postLookup)
		var ae *Error
		if !errors.As(err, &ae) || ae.Kind != c.kind {
			t.Errorf("%s: %v, want %v", name, err, c.kind)
		}
	}
}
