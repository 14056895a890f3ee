package ec2api

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// TagService is the cloud controller's side of the tag actions. Resource
// ids are checked there (each must be one of the caller's resources); tag
// keys and values are checked here, by the same rules for every call that
// takes tags.
type TagService interface {
	// CreateTags puts the tags on every resource, all or nothing.
	CreateTags(ctx context.Context, accountID string, resourceIDs []string, tags []store.Tag) error
	// DeleteTags removes the matching tags (every tag when matches is empty).
	DeleteTags(ctx context.Context, accountID string, resourceIDs []string, matches []store.TagMatch) error
	// DescribeTags lists every tag of the account, by resource then key.
	DescribeTags(ctx context.Context, accountID string) ([]store.TagRow, error)
}

// Tag limits, as EC2 documents them.
const (
	maxTagKeyLen   = 128 // characters, not bytes
	maxTagValueLen = 256
)

// checkTagKey applies EC2's rules for a key: 1 to 128 characters of valid
// UTF-8, not starting with the "aws:" prefix AWS keeps for itself.
func checkTagKey(key string) error {
	switch {
	case key == "":
		return awserr.InvalidParameterValue("Tag keys must not be empty.")
	case !utf8.ValidString(key):
		return awserr.InvalidParameterValue("Tag key %q is not valid UTF-8.", key)
	case utf8.RuneCountInString(key) > maxTagKeyLen:
		return awserr.InvalidParameterValue("Tag key exceeds the maximum length of %d characters.", maxTagKeyLen)
	case strings.HasPrefix(strings.ToLower(key), "aws:"):
		return awserr.InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
	}
	return nil
}

func checkTagValue(value string) error {
	switch {
	case !utf8.ValidString(value):
		return awserr.InvalidParameterValue("Tag value %q is not valid UTF-8.", value)
	case utf8.RuneCountInString(value) > maxTagValueLen:
		return awserr.InvalidParameterValue("Tag value exceeds the maximum length of %d characters.", maxTagValueLen)
	}
	return nil
}

// validTags checks the tags of one request: each key and value, no key
// twice, no more than a resource may carry.
func validTags(in []queryapi.Tag) ([]store.Tag, error) {
	if len(in) > store.MaxTags {
		return nil, awserr.New("TagLimitExceeded", "The maximum number of tags per resource is %d; the request has %d.", store.MaxTags, len(in))
	}
	out := make([]store.Tag, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, t := range in {
		if err := checkTagKey(t.Key); err != nil {
			return nil, err
		}
		if err := checkTagValue(t.Value); err != nil {
			return nil, err
		}
		if seen[t.Key] {
			return nil, awserr.InvalidParameterValue("Duplicate tag key '%s' specified.", t.Key)
		}
		seen[t.Key] = true
		out = append(out, store.Tag{Key: t.Key, Value: t.Value})
	}
	return out, nil
}

// tagsFor is the helper every create call uses for its TagSpecification.N:
// it returns the tags meant for the one resource type the call creates
// (store.TypeKeyPair, store.TypeSecurityGroup, ...), checked by the same
// rules as CreateTags, and refuses a specification of any other type.
// No specification gives no tags.
func tagsFor(specs []queryapi.TagSpec, resourceType string) ([]store.Tag, error) {
	m, err := tagsForTypes(specs, resourceType)
	if err != nil {
		return nil, err
	}
	return m[resourceType], nil
}

// tagsForTypes is tagsFor for calls that create several kinds of resource
// at once (RunInstances: instance, volume, network-interface): the checked
// tags by resource type, each type given at most once.
func tagsForTypes(specs []queryapi.TagSpec, resourceTypes ...string) (map[string][]store.Tag, error) {
	out := map[string][]store.Tag{}
	for _, s := range specs {
		if s.ResourceType == "" {
			return nil, awserr.MissingParameter("TagSpecification.ResourceType")
		}
		allowed := false
		for _, t := range resourceTypes {
			allowed = allowed || t == s.ResourceType
		}
		if !allowed {
			return nil, awserr.InvalidParameterValue("'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if _, dup := out[s.ResourceType]; dup {
			return nil, awserr.InvalidParameterValue("The tag specification for resource type '%s' is given more than once.", s.ResourceType)
		}
		tags, err := validTags(s.Tags)
		if err != nil {
			return nil, err
		}
		out[s.ResourceType] = tags
	}
	return out, nil
}

// tagSetOf is a tagSet that is written even when empty (<tagSet/>), as EC2
// describes a resource without tags; clients then show an empty list.
func tagSetOf(tags []store.Tag) setOf[tagItem] { return setOf[tagItem]{Items: tagItems(tags)} }

// resourceIDsParam is ResourceId.N of CreateTags and DeleteTags, at least
// one.
func resourceIDsParam(p queryapi.Params) ([]string, error) {
	ids := p.List("ResourceId")
	if len(ids) == 0 {
		return nil, awserr.MissingParameter("ResourceId")
	}
	return ids, nil
}

func (a *api) createTags(ctx context.Context, req *queryapi.Request) (any, error) {
	if err := dryRun(req.Params); err != nil {
		return nil, err
	}
	p := req.Params
	ids, err := resourceIDsParam(p)
	if err != nil {
		return nil, err
	}
	in := p.Tags("Tag")
	if len(in) == 0 {
		return nil, awserr.MissingParameter("Tag")
	}
	tags, err := validTags(in)
	if err != nil {
		return nil, err
	}
	if err := a.cloud.CreateTags(ctx, req.Caller.AccountID, ids, tags); err != nil {
		return nil, err
	}
	return ok()
}

func (a *api) deleteTags(ctx context.Context, req *queryapi.Request) (any, error) {
	if err := dryRun(req.Params); err != nil {
		return nil, err
	}
	p := req.Params
	ids, err := resourceIDsParam(p)
	if err != nil {
		return nil, err
	}
	var matches []store.TagMatch
	for _, m := range p.Members("Tag") {
		// A value sent, even empty, narrows the match; no value matches any.
		value, hasValue := m["Value"]
		if err := checkTagKey(m["Key"]); err != nil {
			return nil, err
		}
		matches = append(matches, store.TagMatch{Key: m["Key"], Value: value, HasValue: hasValue})
	}
	if err := a.cloud.DeleteTags(ctx, req.Caller.AccountID, ids, matches); err != nil {
		return nil, err
	}
	return ok()
}

// tagDescription is one item of DescribeTags.
type tagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResponse struct {
	Response
	// A setOf rather than tagSet>item so that no tags is <tagSet/>, which
	// clients read as an empty list rather than a missing one.
	Tags      setOf[tagDescription] `xml:"tagSet"`
	NextToken string                `xml:"nextToken,omitempty"`
}

var tagRowFilters = filterFields[store.TagRow]{
	"key":           func(t store.TagRow) []string { return []string{t.Key} },
	"value":         func(t store.TagRow) []string { return []string{t.Value} },
	"resource-id":   func(t store.TagRow) []string { return []string{t.ResourceID} },
	"resource-type": func(t store.TagRow) []string { return []string{t.ResourceType} },
}

func (a *api) describeTags(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	// DescribeTags answers a dry run before it reads anything else.
	if err := dryRun(p); err != nil {
		return nil, err
	}
	// tag:<key> selects the tags of resources that carry that tag ("find
	// resources with the tag Owner=TeamA"), so a tag row is judged by all
	// the tags of its resource.
	byResource := map[string][]store.Tag{}
	page, next, err := describe(p, describeCall[store.TagRow]{
		fields: tagRowFilters, tags: func(r store.TagRow) []store.Tag { return byResource[r.ResourceID] },
		fetch: func() ([]store.TagRow, error) {
			rows, err := a.cloud.DescribeTags(ctx, req.Caller.AccountID)
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				byResource[r.ResourceID] = append(byResource[r.ResourceID], r.Tag)
			}
			return rows, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	resp := &describeTagsResponse{NextToken: next}
	for _, r := range page {
		resp.Tags.Items = append(resp.Tags.Items, tagDescription{ResourceID: r.ResourceID, ResourceType: r.ResourceType, Key: r.Key, Value: r.Value})
	}
	return resp, nil
}
