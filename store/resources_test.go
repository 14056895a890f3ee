package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestResources(t *testing.T) {
	ctx := context.Background()
	const a, b = "111111111111", "222222222222"
	s := kpStore(t, a, b)
	vpc := VPC{ID: "vpc-00000000000000001", AccountID: a, CIDR: "172.31.0.0/16", IsDefault: true}
	sn := Subnet{ID: "subnet-00000000000000001", AccountID: a, VPCID: vpc.ID, Zone: "z", CIDR: "172.31.0.0/16"}
	if err := s.CreateVPC(ctx, vpc, []Subnet{sn}); err != nil {
		t.Fatal(err)
	}
	key := KeyPair{ID: "key-00000000000000001", AccountID: a, Name: "k", Type: "rsa", Fingerprint: "f", PublicKey: "p"}
	if err := s.CreateKeyPair(ctx, key); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		account, id, typ string
	}{
		{a, vpc.ID, TypeVPC},
		{a, sn.ID, TypeSubnet},
		{a, key.ID, TypeKeyPair},
		{b, vpc.ID, ""},                  // another account's: missing
		{a, "vpc-00000000000000099", ""}, // no such vpc
		{a, "i-00000000000000001", ""},   // a kind with no table yet
		{a, "sg-00000000000000001", ""},  // a kind with a table, no row
		{a, "nonsense", ""},              // no kind at all
	} {
		r, err := s.Resource(ctx, tc.account, tc.id)
		if tc.typ == "" {
			var m *MissingResourceError
			if !errors.As(err, &m) || m.ID != tc.id || !errors.Is(err, ErrNotFound) {
				t.Errorf("Resource(%s, %s) = %v, %v; want MissingResourceError", tc.account, tc.id, r, err)
			}
			continue
		}
		if err != nil || r != (Resource{ID: tc.id, Type: tc.typ}) {
			t.Errorf("Resource(%s, %s) = %v, %v; want type %s", tc.account, tc.id, r, err, tc.typ)
		}
	}

	if rs, err := s.Resources(ctx, a, []string{vpc.ID, key.ID}); err != nil || len(rs) != 2 || rs[1].Type != TypeKeyPair {
		t.Errorf("Resources = %v, %v", rs, err)
	}

	// All or nothing: a missing id in the batch leaves the others untagged.
	err := s.TagResources(ctx, a, []string{vpc.ID, "vpc-00000000000000099"}, []Tag{{"Name", "x"}})
	var m *MissingResourceError
	if !errors.As(err, &m) || m.ID != "vpc-00000000000000099" {
		t.Fatalf("TagResources with a missing id: %v", err)
	}
	if tags, _ := s.Tags(ctx, a); len(tags) != 0 {
		t.Fatalf("partial tagging: %v", tags)
	}
	if err := s.TagResources(ctx, a, []string{vpc.ID, key.ID}, []Tag{{"Name", "x"}, {"env", ""}}); err != nil {
		t.Fatal(err)
	}
	tags, err := s.Tags(ctx, a)
	if err != nil || len(tags) != 4 {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
	if tags[0].ResourceID != key.ID || tags[0].ResourceType != TypeKeyPair || tags[2].ResourceType != TypeVPC {
		t.Errorf("Tags = %+v", tags)
	}
	// The limit counts tags already there: 48 more on top of 2 is 50, 49 is too many.
	var more []Tag
	for i := 0; i < MaxTags-1; i++ {
		more = append(more, Tag{Key: fmt.Sprint("k", i)})
	}
	if err := s.TagResources(ctx, a, []string{key.ID}, more); !errors.Is(err, ErrTagLimit) {
		t.Errorf("51st tag: %v, want ErrTagLimit", err)
	}
	if err := s.TagResources(ctx, a, []string{key.ID}, more[:MaxTags-2]); err != nil {
		t.Errorf("50th tag: %v", err)
	}
	if err := s.TagResources(ctx, b, []string{key.ID}, []Tag{{"x", "y"}}); !errors.As(err, &m) {
		t.Errorf("tagging another account's resource: %v", err)
	}
}
