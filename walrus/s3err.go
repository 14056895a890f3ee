package walrus

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/awserr"
)

// s3Code is an S3 error code's HTTP status and AWS's own message for it.
type s3Code struct {
	status  int
	message string
}

// s3Codes is every error code Walrus answers with, as AWS documents them
// (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
// A handler names a code of this table; a test checks that every name used
// in the package is here.
var s3Codes = map[string]s3Code{
	"AccessControlListNotSupported":                  {http.StatusBadRequest, "The bucket does not allow ACLs"},
	"AccessForbidden":                                {http.StatusForbidden, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."},
	"AccessDenied":                                   {http.StatusForbidden, "Access Denied"},
	"AuthorizationHeaderMalformed":                   {http.StatusBadRequest, "The authorization header is malformed."},
	"AuthorizationQueryParametersError":              {http.StatusBadRequest, "Error parsing the query-string authentication parameters."},
	"BadDigest":                                      {http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."},
	"BadRequest":                                     {http.StatusBadRequest, "Bad Request"},
	"BucketAlreadyExists":                            {http.StatusConflict, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."},
	"BucketAlreadyOwnedByYou":                        {http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."},
	"BucketNotEmpty":                                 {http.StatusConflict, "The bucket you tried to delete is not empty"},
	"EntityTooLarge":                                 {http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."},
	"EntityTooSmall":                                 {http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."},
	"IncompleteBody":                                 {http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	"InternalError":                                  {http.StatusInternalServerError, "We encountered an internal error. Please try again."},
	"InvalidAccessKeyId":                             {http.StatusForbidden, "The AWS Access Key Id you provided does not exist in our records."},
	"InvalidArgument":                                {http.StatusBadRequest, "Invalid Argument"},
	"InvalidBucketAclWithObjectOwnership":            {http.StatusBadRequest, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"},
	"InvalidBucketName":                              {http.StatusBadRequest, "The specified bucket is not valid."},
	"InvalidDigest":                                  {http.StatusBadRequest, "The Content-MD5 you specified is not valid."},
	"InvalidLocationConstraint":                      {http.StatusBadRequest, "The specified location-constraint is not valid"},
	"InvalidPart":                                    {http.StatusBadRequest, "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."},
	"InvalidPolicyDocument":                          {http.StatusBadRequest, "The content of the form does not meet the conditions specified in the policy document."},
	"MalformedPOSTRequest":                           {http.StatusBadRequest, "The body of your POST request is not well-formed multipart/form-data."},
	"MaxPostPreDataLengthExceededError":              {http.StatusBadRequest, "Your POST request fields preceding the upload file were too large."},
	"InvalidPartNumber":                              {http.StatusRequestedRangeNotSatisfiable, "The requested partnumber is not satisfiable"},
	"InvalidPartOrder":                               {http.StatusBadRequest, "The list of parts was not in ascending order. Parts must be ordered by part number."},
	"InvalidRange":                                   {http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable"},
	"InvalidRequest":                                 {http.StatusBadRequest, "Invalid Request"},
	"InvalidStorageClass":                            {http.StatusBadRequest, "The storage class you specified is not valid"},
	"InvalidTag":                                     {http.StatusBadRequest, "The TagSet is not valid."},
	"KeyTooLongError":                                {http.StatusBadRequest, "Your key is too long"},
	"MalformedACLError":                              {http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema"},
	"MalformedPolicy":                                {http.StatusBadRequest, "Policies must be valid JSON and the first byte must be '{'"},
	"MalformedXML":                                   {http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema"},
	"MaxMessageLengthExceeded":                       {http.StatusBadRequest, "Your request was too big."},
	"MetadataTooLarge":                               {http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size"},
	"MethodNotAllowed":                               {http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."},
	"MissingContentLength":                           {http.StatusLengthRequired, "You must provide the Content-Length HTTP header."},
	"MissingRequestBodyError":                        {http.StatusBadRequest, "Request Body is empty"},
	"NoSuchBucket":                                   {http.StatusNotFound, "The specified bucket does not exist"},
	"NoSuchBucketPolicy":                             {http.StatusNotFound, "The bucket policy does not exist"},
	"NoSuchCORSConfiguration":                        {http.StatusNotFound, "The CORS configuration does not exist"},
	"NoSuchKey":                                      {http.StatusNotFound, "The specified key does not exist."},
	"NoSuchLifecycleConfiguration":                   {http.StatusNotFound, "The lifecycle configuration does not exist"},
	"NoSuchPublicAccessBlockConfiguration":           {http.StatusNotFound, "The public access block configuration was not found"},
	"NoSuchTagSet":                                   {http.StatusNotFound, "The TagSet does not exist"},
	"NoSuchUpload":                                   {http.StatusNotFound, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."},
	"NoSuchWebsiteConfiguration":                     {http.StatusNotFound, "The specified bucket does not have a website configuration"},
	"NotImplemented":                                 {http.StatusNotImplemented, "A header you provided implies functionality that is not implemented"},
	"NotModified":                                    {http.StatusNotModified, "Not Modified"},
	"ObjectLockConfigurationNotFoundError":           {http.StatusNotFound, "Object Lock configuration does not exist for this bucket"},
	"OwnershipControlsNotFoundError":                 {http.StatusNotFound, "The bucket ownership controls were not found"},
	"PreconditionFailed":                             {http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold"},
	"ReplicationConfigurationNotFoundError":          {http.StatusNotFound, "The replication configuration was not found"},
	"RequestTimeTooSkewed":                           {http.StatusForbidden, "The difference between the request time and the current time is too large."},
	"ServerSideEncryptionConfigurationNotFoundError": {http.StatusNotFound, "The server side encryption configuration was not found"},
	"SignatureDoesNotMatch":                          {http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	"TooManyBuckets":                                 {http.StatusBadRequest, "You have attempted to create more buckets than allowed"},
	"UnexpectedContent":                              {http.StatusBadRequest, "This request does not support content"},
	"UnresolvableGrantByEmailAddress":                {http.StatusBadRequest, "The email address you provided does not match any account on record."},
	"XAmzContentSHA256Mismatch":                      {http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."},

	// A client's request that stopped coming, or documents too many to hold
	// (internal/httplimit).
	"RequestTimeout": {http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."},
	"SlowDown":       {http.StatusServiceUnavailable, "Please reduce your request rate."},
}

// s3Error is the error of code with AWS's message.
func s3Error(code string) *awserr.Error {
	c, ok := s3Codes[code]
	if !ok { // a programming error, caught by TestErrorCodesInTable
		return awserr.Internal(fmt.Errorf("walrus: unknown S3 error code %q", code))
	}
	return &awserr.Error{Code: code, Status: c.status, Message: c.message}
}

// s3Errorf is the error of code with a message of our own.
func s3Errorf(code, format string, args ...any) *awserr.Error {
	e := s3Error(code)
	if e.Code == code {
		e.Message = fmt.Sprintf(format, args...)
	}
	return e
}

// authError maps a refused signature to S3's code for it.
func authError(err error, r *http.Request) *awserr.Error {
	var ae *awsauth.Error
	if !errors.As(err, &ae) {
		return awserr.Internal(fmt.Errorf("verify signature: %w", err))
	}
	switch ae.Kind {
	case awsauth.KindUnknownKey:
		return s3Error("InvalidAccessKeyId")
	case awsauth.KindBadSignature:
		if isPayloadHashMismatch(ae) {
			return s3Error("XAmzContentSHA256Mismatch")
		}
		return s3Error("SignatureDoesNotMatch")
	case awsauth.KindExpired:
		if ae.Skewed && ae.Msg == awsauth.ErrRequestExpired.Msg {
			return s3Error("RequestTimeTooSkewed")
		}
		// A presigned URL past its expiry (or not valid yet).
		return s3Errorf("AccessDenied", "%s", ae.Msg)
	case awsauth.KindUnsignedHeaders:
		// The cause carries the names to the error document
		// (HeadersNotSigned).
		return s3Errorf("AccessDenied", "%s", ae.Msg).WithCause(ae)
	case awsauth.KindMalformed:
		switch {
		case ae.NoDate:
			return s3Errorf("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
		case r.Header.Get("Authorization") == "":
			return s3Errorf("AuthorizationQueryParametersError", "%s", ae.Msg)
		case isSigV4Header(r):
			return s3Errorf("AuthorizationHeaderMalformed", "%s", ae.Msg)
		default:
			// S3 answers a malformed SigV2 header with InvalidArgument.
			return s3Errorf("InvalidArgument", "%s", ae.Msg)
		}
	case awsauth.KindUnsupported:
		return s3Errorf("InvalidRequest", "%s", ae.Msg)
	}
	return s3Errorf("AccessDenied", "%s", ae.Msg)
}

// isPayloadHashMismatch tells the declared-hash mismatch apart from a bad
// signature: awsauth reports both as KindBadSignature, with its own message
// for the former.
func isPayloadHashMismatch(ae *awsauth.Error) bool {
	return strings.Contains(strings.ToLower(ae.Msg), "x-amz-content-sha256")
}

func isSigV4Header(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	return strings.HasPrefix(h, "AWS4-HMAC-SHA256 ")
}
