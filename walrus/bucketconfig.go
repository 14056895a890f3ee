package walrus

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/euca-cloud/euca/store"
)

// bucketConfig is one configuration sub-resource of a bucket (?policy,
// ?cors, ...): how its Get, Put and Delete answer.
type bucketConfig struct {
	sub string // the query parameter
	op  string // the operation's name after Get/Put/DeleteBucket
	// notFound is the code Get answers when nothing was stored; when ""
	// Get answers the document empty returns instead.
	notFound string
	empty    func() any
	// root is the element a stored document must have; "" for JSON.
	root string
	// put stores the document (validated by check, when set, which
	// returns the form to store); when false Put is accepted only if
	// accept says so, NotImplemented otherwise.
	put    bool
	check  func(w *Walrus, ctx context.Context, b store.WalrusBucket, body []byte) ([]byte, error)
	accept func(body []byte) bool
	// deletable: a Delete of the sub-resource exists.
	deletable bool
}

// bucketConfigs are the sub-resources today's clients read (Terraform
// reads every one of them on each refresh).
var bucketConfigs = []bucketConfig{
	{sub: "policy", op: "Policy", notFound: "NoSuchBucketPolicy", put: true, check: checkPolicy, deletable: true},
	{sub: "cors", op: "Cors", notFound: "NoSuchCORSConfiguration", root: "CORSConfiguration", put: true, check: bodyOnly(checkCORS), deletable: true},
	{sub: "website", op: "Website", notFound: "NoSuchWebsiteConfiguration", root: "WebsiteConfiguration", put: true, deletable: true},
	{sub: "lifecycle", op: "LifecycleConfiguration", notFound: "NoSuchLifecycleConfiguration", root: "LifecycleConfiguration", put: true, deletable: true},
	{sub: "tagging", op: "Tagging", notFound: "NoSuchTagSet", root: "Tagging", put: true, check: bodyOnly(checkBucketTagging), deletable: true},
	{sub: "versioning", op: "Versioning", root: "VersioningConfiguration", put: true, check: bodyOnly(checkVersioning),
		empty: func() any { return emptyDoc("VersioningConfiguration") }},
	{sub: "replication", op: "Replication", notFound: "ReplicationConfigurationNotFoundError", deletable: true},
	{sub: "encryption", op: "Encryption", notFound: "ServerSideEncryptionConfigurationNotFoundError", deletable: true},
	{sub: "object-lock", op: "ObjectLockConfiguration", notFound: "ObjectLockConfigurationNotFoundError"},
	{sub: "ownershipControls", op: "OwnershipControls", notFound: "OwnershipControlsNotFoundError", root: "OwnershipControls",
		put: true, check: checkOwnershipControls, deletable: true},
	{sub: "publicAccessBlock", op: "PublicAccessBlock", notFound: "NoSuchPublicAccessBlockConfiguration", root: "PublicAccessBlockConfiguration",
		put: true, check: checkPublicAccessBlock, deletable: true},
	{sub: "accelerate", op: "AccelerateConfiguration", accept: disabledOnly("Status", "Suspended"),
		empty: func() any { return emptyDoc("AccelerateConfiguration") }},
	{sub: "requestPayment", op: "RequestPayment", accept: disabledOnly("Payer", "BucketOwner"),
		empty: func() any {
			return struct {
				XMLName xml.Name `xml:"RequestPaymentConfiguration"`
				Xmlns   string   `xml:"xmlns,attr"`
				Payer   string   `xml:"Payer"`
			}{Xmlns: s3NS, Payer: "BucketOwner"}
		}},
	{sub: "logging", op: "Logging", accept: disabledOnly("LoggingEnabled", ""),
		empty: func() any { return emptyDoc("BucketLoggingStatus") }},
	{sub: "notification", op: "NotificationConfiguration", accept: isEmptyDoc,
		empty: func() any { return emptyDoc("NotificationConfiguration") }},
}

// emptyDoc is an element with S3's namespace and nothing in it.
func emptyDoc(name string) any {
	return struct {
		XMLName xml.Name
		Xmlns   string `xml:"xmlns,attr"`
	}{XMLName: xml.Name{Local: name}, Xmlns: s3NS}
}

// disabledOnly accepts a Put that leaves the feature off: element absent
// or empty, or equal to off.
func disabledOnly(element, off string) func([]byte) bool {
	return func(body []byte) bool {
		v, present := childXML(body, element)
		return !present || v == "" || (off != "" && v == off)
	}
}

func isEmptyDoc(body []byte) bool {
	var doc struct {
		Inner []byte `xml:",innerxml"`
	}
	return xml.Unmarshal(body, &doc) == nil && strings.TrimSpace(string(doc.Inner)) == ""
}

// childXML finds the content of the first element named name anywhere in
// a document, trimmed.
func childXML(body []byte, name string) (string, bool) {
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			var v struct {
				Inner string `xml:",innerxml"`
			}
			if dec.DecodeElement(&v, &se) != nil {
				return "", false
			}
			return strings.TrimSpace(v.Inner), true
		}
	}
}

func (c bucketConfig) get(w *Walrus, ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permOwner)
	if err != nil {
		return nil, err
	}
	body, err := w.st.WalrusBucketConfig(ctx, b.Name, c.sub)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c.notFound != "" {
			return nil, s3Error(c.notFound)
		}
		return xmlResponse(c.empty()), nil
	case err != nil:
		return nil, internal("bucket %s %s: %w", b.Name, c.sub, err)
	}
	resp := newResponse(http.StatusOK)
	resp.raw = []byte(body)
	if c.root == "" {
		resp.header.Set("Content-Type", "application/json")
	} else {
		resp.header.Set("Content-Type", "application/xml")
	}
	return resp, nil
}

func (c bucketConfig) putConfig(w *Walrus, ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permOwner)
	if err != nil {
		return nil, err
	}
	body, err := r.payload()
	if err != nil {
		return nil, err
	}
	if !c.put {
		if c.accept != nil && c.accept(body) {
			return newResponse(http.StatusOK), nil
		}
		return nil, s3Errorf("NotImplemented", "PutBucket%s is not implemented by this cloud.", c.op)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, s3Error("MissingRequestBodyError")
	}
	if c.root != "" {
		var doc struct{ XMLName xml.Name }
		if err := xml.Unmarshal(body, &doc); err != nil || doc.XMLName.Local != c.root {
			return nil, s3Error("MalformedXML")
		}
	}
	if c.check != nil {
		if body, err = c.check(w, ctx, b, body); err != nil {
			return nil, err
		}
	}
	if err := w.st.PutWalrusBucketConfig(ctx, b.Name, c.sub, string(body)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, s3Error("NoSuchBucket")
		}
		return nil, internal("store bucket %s: %w", c.sub, err)
	}
	return newResponse(putStatus(c.sub)), nil
}

func (c bucketConfig) del(w *Walrus, ctx context.Context, r *request) (*response, error) {
	b, err := w.bucket(ctx, r, permOwner)
	if err != nil {
		return nil, err
	}
	if err := w.st.DeleteWalrusBucketConfig(ctx, b.Name, c.sub); err != nil {
		return nil, internal("delete bucket %s: %w", c.sub, err)
	}
	return newResponse(http.StatusNoContent), nil
}

// bodyOnly adapts a check that needs only the document.
func bodyOnly(check func(body []byte) ([]byte, error)) func(*Walrus, context.Context, store.WalrusBucket, []byte) ([]byte, error) {
	return func(_ *Walrus, _ context.Context, _ store.WalrusBucket, body []byte) ([]byte, error) {
		return check(body)
	}
}

func checkVersioning(body []byte) ([]byte, error) {
	var doc struct {
		Status string `xml:"Status"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, s3Error("MalformedXML")
	}
	switch doc.Status {
	case "Enabled", "Suspended":
	default:
		return nil, s3Error("MalformedXML")
	}
	out, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"VersioningConfiguration"`
		Xmlns   string   `xml:"xmlns,attr"`
		Status  string   `xml:"Status"`
	}{Xmlns: s3NS, Status: doc.Status})
	return append([]byte(xml.Header), out...), err
}

// Tags.

const (
	maxBucketTags = 50
	maxObjectTags = 10
)

type tagging struct {
	XMLName xml.Name  `xml:"Tagging"`
	Xmlns   string    `xml:"xmlns,attr,omitempty"`
	TagSet  []tagElem `xml:"TagSet>Tag"`
}

type tagElem struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func taggingDoc(tags []store.Tag) tagging {
	doc := tagging{Xmlns: s3NS, TagSet: []tagElem{}}
	for _, t := range tags {
		doc.TagSet = append(doc.TagSet, tagElem{Key: t.Key, Value: t.Value})
	}
	return doc
}

func parseTagging(body []byte, max int) ([]store.Tag, error) {
	var doc tagging
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, s3Error("MalformedXML")
	}
	tags := []store.Tag{}
	for _, t := range doc.TagSet {
		tags = append(tags, store.Tag{Key: t.Key, Value: t.Value})
	}
	return tags, validateTags(tags, max)
}

func validateTags(tags []store.Tag, max int) error {
	if len(tags) > max {
		if max == maxObjectTags {
			return s3Errorf("InvalidTag", "Object tags cannot be greater than %d", max)
		}
		return s3Errorf("InvalidTag", "Bucket tag count cannot be greater than %d", max)
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > 128:
			return s3Errorf("InvalidTag", "The TagKey you have provided is invalid")
		case utf8.RuneCountInString(t.Value) > 256:
			return s3Errorf("InvalidTag", "The TagValue you have provided is invalid")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return s3Errorf("InvalidTag", "Your TagKey cannot be prefixed with aws:")
		case seen[t.Key]:
			return s3Errorf("InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		seen[t.Key] = true
	}
	return nil
}

// checkBucketTagging validates a bucket's tags and stores them in a
// normal form.
func checkBucketTagging(body []byte) ([]byte, error) {
	tags, err := parseTagging(body, maxBucketTags)
	if err != nil {
		return nil, err
	}
	out, err := xml.Marshal(taggingDoc(tags))
	return append([]byte(xml.Header), out...), err
}
