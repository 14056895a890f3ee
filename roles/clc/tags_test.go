package clc

import (
	"context"
	"fmt"
	"testing"

	"github.com/euca-cloud/euca/store"
)

func TestTags(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	kp, _, err := c.CreateKeyPair(ctx, alice, "k", "ed25519", nil)
	if err != nil {
		t.Fatal(err)
	}
	vpc, err := c.store.DefaultVPC(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	tags := []store.Tag{{Key: "Name", Value: "x"}, {Key: "empty", Value: ""}}
	if err := c.CreateTags(ctx, alice, []string{kp.ID, vpc.ID}, tags); err != nil {
		t.Fatal(err)
	}
	rows, err := c.DescribeTags(ctx, alice)
	if err != nil || len(rows) != 4 {
		t.Fatalf("DescribeTags = %v, %v", rows, err)
	}
	if rows, _ := c.DescribeTags(ctx, bob); len(rows) != 0 {
		t.Errorf("bob sees alice's tags: %v", rows)
	}

	for _, tc := range []struct {
		account, id, code string
	}{
		{bob, kp.ID, "InvalidKeyPair.NotFound"}, // another account's: as missing
		{bob, vpc.ID, "InvalidVpcID.NotFound"},
		{alice, "i-0123456789abcdef0", "InvalidInstanceID.NotFound"},
		{alice, "emi-0123ABCD", "InvalidAMIID.NotFound"},
		{alice, "vol-0123456789abcdef0", "InvalidVolume.NotFound"},
		{alice, "snap-01234567", "InvalidSnapshot.NotFound"},
		{alice, "eipalloc-0123456789abcdef0", "InvalidAllocationID.NotFound"},
		{alice, "sg-0123456789abcdef0", "InvalidGroup.NotFound"},
		{alice, "subnet-0123456789abcdef0", "InvalidSubnetID.NotFound"},
		{alice, "nonsense", "InvalidID"},
		{alice, "i-xyz", "InvalidID"},
		{alice, "foo-0123456789abcdef0", "InvalidID"},
	} {
		// The bad id comes second: the first resource must stay untagged.
		err := c.CreateTags(ctx, tc.account, []string{kp.ID, tc.id}, []store.Tag{{Key: "new", Value: "v"}})
		if tc.account == bob {
			err = c.CreateTags(ctx, bob, []string{tc.id}, []store.Tag{{Key: "new", Value: "v"}})
		}
		wantCode(t, "CreateTags "+tc.id, err, tc.code)
		wantCode(t, "DeleteTags "+tc.id, c.DeleteTags(ctx, tc.account, []string{tc.id}, nil), tc.code)
	}
	if rows, _ := c.DescribeTags(ctx, alice); len(rows) != 4 {
		t.Errorf("a failed CreateTags changed tags: %v", rows)
	}

	var many []store.Tag
	for i := 0; i < 49; i++ {
		many = append(many, store.Tag{Key: fmt.Sprint("k", i)})
	}
	wantCode(t, "51 tags", c.CreateTags(ctx, alice, []string{kp.ID}, many), "TagLimitExceeded")

	// DeleteTags: a value given must match; an empty value matches only "".
	del := []store.TagMatch{{Key: "Name", Value: "other", HasValue: true}, {Key: "empty", Value: "", HasValue: true}}
	if err := c.DeleteTags(ctx, alice, []string{kp.ID}, del); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTags(ctx, alice, []string{vpc.ID}, []store.TagMatch{{Key: "Name"}}); err != nil {
		t.Fatal(err)
	}
	rows, _ = c.DescribeTags(ctx, alice)
	got := map[string]string{}
	for _, r := range rows {
		got[r.ResourceID+"/"+r.Key] = r.Value
	}
	want := map[string]string{kp.ID + "/Name": "x", vpc.ID + "/empty": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after DeleteTags: %v, want %v", got, want)
	}
	// No tags named: every tag of the resource goes.
	if err := c.DeleteTags(ctx, alice, []string{kp.ID, vpc.ID}, nil); err != nil {
		t.Fatal(err)
	}
	if rows, _ := c.DescribeTags(ctx, alice); len(rows) != 0 {
		t.Errorf("after deleting all: %v", rows)
	}
}
