package ec2api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

func TestTagsFor(t *testing.T) {
	spec := func(typ string, kv ...string) queryapi.TagSpec {
		s := queryapi.TagSpec{ResourceType: typ}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Tags = append(s.Tags, queryapi.Tag{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	var fifty, fiftyOne []string
	for i := 0; i < 51; i++ {
		fiftyOne = append(fiftyOne, fmt.Sprint("k", i), "")
	}
	fifty = fiftyOne[:100]
	for _, tc := range []struct {
		name  string
		specs []queryapi.TagSpec
		want  int // number of tags, or -1 with code
		code  string
	}{
		{"none", nil, 0, ""},
		{"one", []queryapi.TagSpec{spec("key-pair", "Name", "x", "empty", "")}, 2, ""},
		{"wrong type", []queryapi.TagSpec{spec("instance", "Name", "x")}, -1, "InvalidParameterValue"},
		{"no type", []queryapi.TagSpec{spec("", "Name", "x")}, -1, "MissingParameter"},
		{"type twice", []queryapi.TagSpec{spec("key-pair", "a", ""), spec("key-pair", "b", "")}, -1, "InvalidParameterValue"},
		{"aws: prefix", []queryapi.TagSpec{spec("key-pair", "AWS:x", "")}, -1, "InvalidParameterValue"},
		{"empty key", []queryapi.TagSpec{spec("key-pair", "", "v")}, -1, "InvalidParameterValue"},
		{"128-char key", []queryapi.TagSpec{spec("key-pair", strings.Repeat("é", 128), "")}, 1, ""},
		{"129-char key", []queryapi.TagSpec{spec("key-pair", strings.Repeat("k", 129), "")}, -1, "InvalidParameterValue"},
		{"256-char value", []queryapi.TagSpec{spec("key-pair", "k", strings.Repeat("v", 256))}, 1, ""},
		{"257-char value", []queryapi.TagSpec{spec("key-pair", "k", strings.Repeat("v", 257))}, -1, "InvalidParameterValue"},
		{"duplicate key", []queryapi.TagSpec{spec("key-pair", "k", "1", "k", "2")}, -1, "InvalidParameterValue"},
		{"50 tags", []queryapi.TagSpec{spec("key-pair", fifty...)}, 50, ""},
		{"51 tags", []queryapi.TagSpec{spec("key-pair", fiftyOne...)}, -1, "TagLimitExceeded"},
		{"bad utf-8", []queryapi.TagSpec{spec("key-pair", "k", "\xff")}, -1, "InvalidParameterValue"},
	} {
		tags, err := tagsFor(tc.specs, store.TypeKeyPair)
		if tc.want < 0 {
			kpCode(t, tc.name, err, tc.code)
			continue
		}
		if err != nil || len(tags) != tc.want {
			t.Errorf("%s: %v, %v; want %d tags", tc.name, tags, err, tc.want)
		}
	}
	m, err := tagsForTypes([]queryapi.TagSpec{spec("instance", "a", "1"), spec("volume", "b", "2")}, "instance", "volume")
	if err != nil || len(m["instance"]) != 1 || m["volume"][0].Key != "b" {
		t.Errorf("tagsForTypes = %v, %v", m, err)
	}
}

func TestTagsAPI(t *testing.T) {
	a, alice, bob := kpAPI(t)
	var ids []string
	for _, n := range []string{"k1", "k2"} {
		r := kpMust(t, a, alice, "CreateKeyPair", queryapi.Params{"KeyName": n, "KeyType": "ed25519"})
		ids = append(ids, r["KeyPairId"].(string))
	}
	k1, k2 := ids[0], ids[1]

	r := kpMust(t, a, alice, "CreateTags", queryapi.Params{"ResourceId.1": k1, "ResourceId.2": k2,
		"Tag.1.Key": "Name", "Tag.1.Value": "web", "Tag.2.Key": "Owner", "Tag.2.Value": "TeamA", "Tag.3.Key": "bare"})
	if len(r) != 0 {
		t.Errorf("CreateTags = %v, want nothing", r) // botocore models no output
	}
	kpMust(t, a, alice, "CreateTags", queryapi.Params{"ResourceId.1": k2, "Tag.1.Key": "Owner", "Tag.1.Value": "TeamB"})

	describe := func(params queryapi.Params) []map[string]any {
		t.Helper()
		r := kpMust(t, a, alice, "DescribeTags", params)
		items, ok := r["Tags"].([]any)
		if !ok {
			t.Fatalf("DescribeTags has no Tags list: %v", r)
		}
		out := make([]map[string]any, len(items))
		for i, it := range items {
			out[i] = it.(map[string]any)
		}
		return out
	}
	all := describe(queryapi.Params{})
	if len(all) != 6 {
		t.Fatalf("DescribeTags = %v", all)
	}
	first := all[0]
	if first["ResourceType"] != "key-pair" || first["ResourceId"] == nil || first["Key"] == nil || first["Value"] == nil {
		t.Errorf("item = %v", first)
	}
	for filter, want := range map[string]int{
		"key=Name": 2, "value=Team*": 2, "resource-id=" + k1: 3, "resource-type=key-pair": 6, "resource-type=vpc": 0,
		"tag:Owner=TeamA": 3, // every tag of k1, the resource that has Owner=TeamA
	} {
		name, value, _ := strings.Cut(filter, "=")
		if got := describe(queryapi.Params{"Filter.1.Name": name, "Filter.1.Value.1": value}); len(got) != want {
			t.Errorf("filter %s: %d tags, want %d", filter, len(got), want)
		}
	}
	// Pages of 5: the second holds the rest and no token.
	r = kpMust(t, a, alice, "DescribeTags", queryapi.Params{"MaxResults": "5"})
	if len(r["Tags"].([]any)) != 5 || r["NextToken"] == nil {
		t.Fatalf("page 1 = %v", r)
	}
	r = kpMust(t, a, alice, "DescribeTags", queryapi.Params{"MaxResults": "5", "NextToken": r["NextToken"].(string)})
	if len(r["Tags"].([]any)) != 1 || r["NextToken"] != nil {
		t.Errorf("page 2 = %v", r)
	}
	_, err := kpCall(t, a, alice, "DescribeTags", queryapi.Params{"MaxResults": "4"})
	kpCode(t, "MaxResults 4", err, "InvalidParameterValue")
	if got := kpMust(t, a, bob, "DescribeTags", queryapi.Params{}); len(got["Tags"].([]any)) != 0 {
		t.Errorf("bob sees tags: %v", got)
	}

	for _, tc := range []struct {
		name   string
		action string
		params queryapi.Params
		code   string
	}{
		{"no resource", "CreateTags", queryapi.Params{"Tag.1.Key": "a"}, "MissingParameter"},
		{"no tag", "CreateTags", queryapi.Params{"ResourceId.1": k1}, "MissingParameter"},
		{"aws: key", "CreateTags", queryapi.Params{"ResourceId.1": k1, "Tag.1.Key": "aws:cloudformation"}, "InvalidParameterValue"},
		{"malformed id", "CreateTags", queryapi.Params{"ResourceId.1": "web", "Tag.1.Key": "a"}, "InvalidID"},
		{"instance", "CreateTags", queryapi.Params{"ResourceId.1": "i-0123456789abcdef0", "Tag.1.Key": "a"}, "InvalidInstanceID.NotFound"},
		{"delete no resource", "DeleteTags", queryapi.Params{"Tag.1.Key": "a"}, "MissingParameter"},
		{"delete aws: key", "DeleteTags", queryapi.Params{"ResourceId.1": k1, "Tag.1.Key": "aws:x"}, "InvalidParameterValue"},
		{"delete unknown", "DeleteTags", queryapi.Params{"ResourceId.1": "vol-0123456789abcdef0"}, "InvalidVolume.NotFound"},
	} {
		_, err := kpCall(t, a, alice, tc.action, tc.params)
		kpCode(t, tc.name, err, tc.code)
	}
	_, err = kpCall(t, a, bob, "CreateTags", queryapi.Params{"ResourceId.1": k1, "Tag.1.Key": "a"})
	kpCode(t, "another account's key", err, "InvalidKeyPair.NotFound")

	// DeleteTags: a wrong value keeps the tag; an empty value given matches
	// only an empty value; a key alone matches any value.
	kpMust(t, a, alice, "DeleteTags", queryapi.Params{"ResourceId.1": k1, "ResourceId.2": k2,
		"Tag.1.Key": "Owner", "Tag.1.Value": "TeamB", "Tag.2.Key": "Name", "Tag.2.Value": "", "Tag.3.Key": "bare", "Tag.3.Value": ""})
	left := map[string]string{}
	for _, it := range describe(queryapi.Params{}) {
		left[it["ResourceId"].(string)+"/"+it["Key"].(string)] = it["Value"].(string)
	}
	want := map[string]string{k1 + "/Name": "web", k1 + "/Owner": "TeamA", k2 + "/Name": "web"}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Errorf("after DeleteTags: %v, want %v", left, want)
	}
	kpMust(t, a, alice, "DeleteTags", queryapi.Params{"ResourceId.1": k1, "Tag.1.Key": "Name"})
	kpMust(t, a, alice, "DeleteTags", queryapi.Params{"ResourceId.1": k1, "ResourceId.2": k2})
	if got := describe(queryapi.Params{}); len(got) != 0 {
		t.Errorf("after deleting every tag: %v", got)
	}

	// A key pair's tags show in DescribeKeyPairs and go with it.
	kpMust(t, a, alice, "CreateTags", queryapi.Params{"ResourceId.1": k1, "Tag.1.Key": "Name", "Tag.1.Value": "x"})
	r = kpMust(t, a, alice, "DescribeKeyPairs", queryapi.Params{"KeyPairId.1": k1})
	if tags := r["KeyPairs"].([]any)[0].(map[string]any)["Tags"].([]any); len(tags) != 1 {
		t.Errorf("key pair tags = %v", tags)
	}
	kpMust(t, a, alice, "DeleteKeyPair", queryapi.Params{"KeyPairId": k1})
	if got := describe(queryapi.Params{}); len(got) != 0 {
		t.Errorf("tags outlived their key pair: %v", got)
	}
}
