package store

import (
	"context"
	"errors"
	"testing"
)

// sgFixture opens a store with two accounts, each with a default VPC.
func sgFixture(t *testing.T) (*Store, context.Context) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, a := range []struct{ id, name, vpc string }{{"111111111111", "one", "vpc-1"}, {"222222222222", "two", "vpc-2"}} {
		err := s.CreateAccount(ctx, Account{ID: a.id, Name: a.name},
			AccessKey{ID: "AKIA" + a.name, AccountID: a.id, UserName: "admin", Secret: "s"},
			UserCert{Fingerprint: "fp" + a.name, AccountID: a.id, UserName: "admin", CertPEM: "pem"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateVPC(ctx, VPC{ID: a.vpc, AccountID: a.id, CIDR: "172.31.0.0/16", IsDefault: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return s, ctx
}

// sgFixtureRules is sgFixture with group sg-1 of account 111111111111: its
// allow-all egress rule sgr-e, sgr-1 (tcp 22 from 10.0.0.0/8, tagged k=v)
// and sgr-2 (tcp 80 from anywhere).
func sgFixtureRules(t *testing.T) (*Store, context.Context, string) {
	t.Helper()
	s, ctx := sgFixture(t)
	acct := "111111111111"
	if err := s.CreateSecurityGroup(ctx, SecurityGroup{ID: "sg-1", AccountID: acct, VPCID: "vpc-1", Name: "a", Description: "a",
		Rules: []SecurityGroupRule{egressAll("sgr-e")}}); err != nil {
		t.Fatal(err)
	}
	r1 := tcp("sgr-1", 22, "10.0.0.0/8")
	r1.Tags = []Tag{{"k", "v"}}
	if err := s.AddSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{r1, tcp("sgr-2", 80, "0.0.0.0/0")}, 0); err != nil {
		t.Fatal(err)
	}
	return s, ctx, acct
}

func egressAll(id string) SecurityGroupRule {
	return SecurityGroupRule{ID: id, Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDRIPv4: "0.0.0.0/0"}
}

func tcp(id string, port int, cidr string) SecurityGroupRule {
	return SecurityGroupRule{ID: id, Protocol: "tcp", FromPort: port, ToPort: port, CIDRIPv4: cidr}
}

func TestSecurityGroupCreateAndRead(t *testing.T) {
	s, ctx := sgFixture(t)
	g := SecurityGroup{ID: "sg-1", AccountID: "111111111111", VPCID: "vpc-1", Name: "web", Description: "Web",
		Tags: []Tag{{"Name", "w"}}, Rules: []SecurityGroupRule{egressAll("sgr-1")}}
	if err := s.CreateSecurityGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	got, err := s.SecurityGroup(ctx, "111111111111", "sg-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "web" || got.VPCID != "vpc-1" || len(got.Tags) != 1 || len(got.Rules) != 1 {
		t.Fatalf("got %+v", got)
	}
	r := got.Rules[0]
	if r.ID != "sgr-1" || !r.Egress || r.GroupOwnerID != "111111111111" || r.GroupID != "sg-1" {
		t.Errorf("rule %+v", r)
	}
	// Names are unique per VPC regardless of case; another VPC may reuse one.
	dup := g
	dup.ID, dup.Name, dup.Rules = "sg-2", "WEB", nil
	if err := s.CreateSecurityGroup(ctx, dup); !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	other := SecurityGroup{ID: "sg-3", AccountID: "222222222222", VPCID: "vpc-2", Name: "web", Description: "x"}
	if err := s.CreateSecurityGroup(ctx, other); err != nil {
		t.Errorf("same name in another account's VPC: %v", err)
	}
	// A VPC of another account is not found.
	bad := SecurityGroup{ID: "sg-4", AccountID: "111111111111", VPCID: "vpc-2", Name: "x", Description: "x"}
	if err := s.CreateSecurityGroup(ctx, bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("foreign vpc: %v", err)
	}
	// Isolation: account two sees only its own group.
	if _, err := s.SecurityGroup(ctx, "222222222222", "sg-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("foreign group read: %v", err)
	}
	gs, err := s.SecurityGroups(ctx, "222222222222")
	if err != nil || len(gs) != 1 || gs[0].ID != "sg-3" {
		t.Errorf("groups of two: %+v %v", gs, err)
	}
	byName, err := s.SecurityGroupByName(ctx, "111111111111", "vpc-1", "Web")
	if err != nil || byName.ID != "sg-1" {
		t.Errorf("by name: %+v %v", byName, err)
	}
}

func TestSecurityGroupRulesUniqueness(t *testing.T) {
	s, ctx, acct := sgFixtureRules(t)
	// The same rule with another description and id is a duplicate; the
	// batch it is in is refused whole.
	again := tcp("sgr-4", 22, "10.0.0.0/8")
	again.Description = "other"
	err := s.AddSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{tcp("sgr-3", 443, "0.0.0.0/0"), again}, 0)
	var rc *RuleConflictError
	if !errors.As(err, &rc) || rc.Index != 1 || !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate rule: %v", err)
	}
	rules, err := s.SecurityGroupRules(ctx, acct, nil)
	if err != nil || len(rules) != 3 {
		t.Fatalf("rules after refused batch: %d %v", len(rules), err)
	}
	// The same rule in the other direction is another rule.
	eg := tcp("sgr-5", 22, "10.0.0.0/8")
	eg.Egress = true
	if err := s.AddSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{eg}, 0); err != nil {
		t.Errorf("egress twin: %v", err)
	}
	// The limit counts per direction.
	err = s.AddSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{tcp("sgr-6", 1, "1.0.0.0/8")}, 2)
	if !errors.Is(err, ErrRuleLimit) {
		t.Errorf("limit: %v", err)
	}
	// Rules of another account's group cannot be added.
	if err := s.AddSecurityGroupRules(ctx, "222222222222", "sg-1", []SecurityGroupRule{tcp("sgr-7", 1, "1.0.0.0/8")}, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("foreign group: %v", err)
	}
	// A peer group that does not exist is refused.
	peer := SecurityGroupRule{ID: "sgr-8", Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroupID: "sg-gone", PeerOwnerID: acct}
	if err := s.AddSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{peer}, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing peer: %v", err)
	}
	// Tags of rules are read back; ids select.
	got, err := s.SecurityGroupRules(ctx, acct, []string{"sgr-1"})
	if err != nil || len(got) != 1 || len(got[0].Tags) != 1 || got[0].Tags[0].Key != "k" {
		t.Fatalf("rule by id: %+v %v", got, err)
	}
	if got, _ := s.SecurityGroupRules(ctx, "222222222222", []string{"sgr-1"}); len(got) != 0 {
		t.Errorf("foreign rule visible: %+v", got)
	}
	// Deleting rules removes their tags; a missing id fails the whole call.
	if err := s.DeleteSecurityGroupRules(ctx, acct, "sg-1", []string{"sgr-2", "sgr-nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete with missing id: %v", err)
	}
	if err := s.DeleteSecurityGroupRules(ctx, acct, "sg-1", []string{"sgr-1"}); err != nil {
		t.Fatal(err)
	}
	tags, _ := s.Tags(ctx, acct)
	for _, tg := range tags {
		if tg.ResourceID == "sgr-1" {
			t.Errorf("tag of a deleted rule remains: %+v", tg)
		}
	}
	rules, _ = s.SecurityGroupRules(ctx, acct, nil)
	if len(rules) != 3 {
		t.Errorf("rules after delete: %+v", rules)
	}
}

func TestSecurityGroupDeleteCascade(t *testing.T) {
	s, ctx := sgFixture(t)
	acct := "111111111111"
	for _, g := range []SecurityGroup{
		{ID: "sg-a", AccountID: acct, VPCID: "vpc-1", Name: "a", Description: "a", Tags: []Tag{{"Name", "a"}}},
		{ID: "sg-b", AccountID: acct, VPCID: "vpc-1", Name: "b", Description: "b"},
	} {
		if err := s.CreateSecurityGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	self := SecurityGroupRule{ID: "sgr-self", Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroupID: "sg-a", PeerOwnerID: acct, Tags: []Tag{{"r", "1"}}}
	if err := s.AddSecurityGroupRules(ctx, acct, "sg-a", []SecurityGroupRule{self, egressAll("sgr-ae")}, 0); err != nil {
		t.Fatal(err)
	}
	ref := SecurityGroupRule{ID: "sgr-ref", Protocol: "tcp", FromPort: 5432, ToPort: 5432, PeerGroupID: "sg-a", PeerOwnerID: acct}
	if err := s.AddSecurityGroupRules(ctx, acct, "sg-b", []SecurityGroupRule{ref}, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := s.SecurityGroupRules(ctx, acct, []string{"sgr-ref"})
	if len(got) != 1 || got[0].PeerGroupName != "a" {
		t.Errorf("peer name not read back: %+v", got)
	}
	// Referenced by b's rule: refused, naming the referrer.
	err := s.DeleteSecurityGroup(ctx, acct, "sg-a")
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("delete referenced: %v", err)
	}
	if err := s.DeleteSecurityGroup(ctx, "222222222222", "sg-b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete foreign: %v", err)
	}
	if err := s.DeleteSecurityGroup(ctx, acct, "sg-b"); err != nil {
		t.Fatal(err)
	}
	// Its own self-reference does not hold a group back.
	if err := s.DeleteSecurityGroup(ctx, acct, "sg-a"); err != nil {
		t.Fatalf("delete self-referencing group: %v", err)
	}
	rules, _ := s.SecurityGroupRules(ctx, acct, nil)
	tags, _ := s.Tags(ctx, acct)
	if len(rules) != 0 || len(tags) != 0 {
		t.Errorf("left behind: rules %+v tags %+v", rules, tags)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM security_group_rules`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rule rows remain: %d %v", n, err)
	}
	if err := s.DeleteSecurityGroup(ctx, acct, "sg-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func TestSameRule(t *testing.T) {
	a := tcp("sgr-1", 22, "10.0.0.0/8")
	b := tcp("sgr-2", 22, "10.0.0.0/8")
	b.Description = "different"
	if !a.SameRule(b) {
		t.Error("description or id should not matter")
	}
	b.Egress = true
	if a.SameRule(b) {
		t.Error("direction should matter")
	}
}

// TestUpdateSecurityGroupRules: a rule rewritten in place keeps its id,
// direction and tags; one that would become another rule of the group, or
// that is not the group's, fails the whole call and changes nothing.
func TestUpdateSecurityGroupRules(t *testing.T) {
	s, ctx, acct := sgFixtureRules(t)
	moved := tcp("sgr-1", 2222, "10.1.0.0/16")
	moved.Description = "ssh"
	if err := s.UpdateSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{moved}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SecurityGroupRules(ctx, acct, []string{"sgr-1"})
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if g := got[0]; g.FromPort != 2222 || g.ToPort != 2222 || g.CIDRIPv4 != "10.1.0.0/16" || g.Description != "ssh" || g.Egress || len(g.Tags) != 1 {
		t.Errorf("after update: %+v", g)
	}
	// Becoming the same rule as sgr-2 is refused, and the batch with it.
	first := tcp("sgr-1", 3333, "10.1.0.0/16")
	var rc *RuleConflictError
	if err := s.UpdateSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{first, tcp("sgr-e", 80, "0.0.0.0/0"), tcp("sgr-1", 80, "0.0.0.0/0")}); !errors.As(err, &rc) || rc.Index != 2 {
		t.Errorf("conflict: %v", err)
	}
	if got, _ := s.SecurityGroupRules(ctx, acct, []string{"sgr-1"}); len(got) != 1 || got[0].FromPort != 2222 {
		t.Errorf("a refused batch changed the rule: %+v", got)
	}
	if err := s.UpdateSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{tcp("sgr-nope", 1, "1.0.0.0/8")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing rule: %v", err)
	}
	if err := s.UpdateSecurityGroupRules(ctx, "222222222222", "sg-1", []SecurityGroupRule{moved}); !errors.Is(err, ErrNotFound) {
		t.Errorf("another account's group: %v", err)
	}
	peer := SecurityGroupRule{ID: "sgr-2", Protocol: "-1", FromPort: -1, ToPort: -1, PeerGroupID: "sg-gone", PeerOwnerID: acct}
	if err := s.UpdateSecurityGroupRules(ctx, acct, "sg-1", []SecurityGroupRule{peer}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing peer: %v", err)
	}
}
