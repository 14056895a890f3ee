package clc

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/store"
)

// sgMust unwraps a result that must not fail; a failure panics, which
// fails the test with the error and the line that made it.
func sgMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func iptr(v int) *int { return &v }

func sgTCP(port int, cidr string) store.IPPermission {
	return store.IPPermission{Protocol: "tcp", FromPort: iptr(port), ToPort: iptr(port), IPv4Ranges: []store.PermissionCIDR{{CIDR: cidr}}}
}

func sgByName(t *testing.T, c *Cloud, account, name string) store.SecurityGroup {
	t.Helper()
	gs := sgMust(c.DescribeSecurityGroups(context.Background(), account, nil, []string{name}))
	if len(gs) != 1 {
		t.Fatalf("groups named %s: %+v", name, gs)
	}
	return gs[0]
}

func TestDefaultSecurityGroup(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	for _, acct := range []string{alice, bob} {
		vpc := sgMust(c.store.DefaultVPC(ctx, acct))
		g := sgByName(t, c, acct, "default")
		if g.VPCID != vpc.ID || g.Description != "default VPC security group" || g.AccountID != acct {
			t.Errorf("default group %+v", g)
		}
		if len(g.Rules) != 2 {
			t.Fatalf("default rules %+v", g.Rules)
		}
		in, out := g.Rules[0], g.Rules[1]
		if in.Egress || in.Protocol != "-1" || in.PeerGroupID != g.ID || in.PeerOwnerID != acct {
			t.Errorf("default ingress %+v", in)
		}
		if !out.Egress || out.Protocol != "-1" || out.CIDRIPv4 != "0.0.0.0/0" {
			t.Errorf("default egress %+v", out)
		}
		// Idempotent: a second run (as every start does) adds nothing.
		if err := c.ensureDefaultSecurityGroup(ctx, acct, vpc.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.ensureAccountDefaults(ctx, acct); err != nil {
			t.Fatal(err)
		}
		all := sgMust(c.DescribeSecurityGroups(ctx, acct, nil, nil))
		if len(all) != 1 || all[0].ID != g.ID || len(all[0].Rules) != 2 {
			t.Errorf("after ensuring again: %+v", all)
		}
		// It can never be deleted, by id or by name.
		_, err := c.DeleteSecurityGroup(ctx, acct, g.ID, "")
		wantCode(t, "delete default by id", err, "CannotDelete")
		_, err = c.DeleteSecurityGroup(ctx, acct, "", "default")
		wantCode(t, "delete default by name", err, "CannotDelete")
		// Its name is reserved.
		_, err = c.CreateSecurityGroup(ctx, acct, "Default", "x", "", nil)
		wantCode(t, "create default", err, "InvalidGroup.Reserved")
	}
	// Looking the names up is case-insensitive, as EC2 names are.
	if g := sgByName(t, c, alice, "DEFAULT"); g.Name != "default" {
		t.Errorf("case-insensitive name: %+v", g)
	}
}

func TestCreateSecurityGroup(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	vpc := sgMust(c.store.DefaultVPC(ctx, alice))
	bobVPC := sgMust(c.store.DefaultVPC(ctx, bob))

	g := sgMust(c.CreateSecurityGroup(ctx, alice, "web", "Web servers", "", []store.Tag{{Key: "Name", Value: "w"}}))
	if !ids.HasPrefix(g.ID, "sg") || g.VPCID != vpc.ID || g.Name != "web" || len(g.Tags) != 1 {
		t.Errorf("created %+v", g)
	}
	// A new group starts with the allow-all egress rule only.
	if len(g.Rules) != 1 || !g.Rules[0].Egress || g.Rules[0].Protocol != "-1" || g.Rules[0].CIDRIPv4 != "0.0.0.0/0" || !ids.HasPrefix(g.Rules[0].ID, "sgr") {
		t.Errorf("initial rules %+v", g.Rules)
	}
	// An explicit VpcId of one's own default VPC works.
	sgMust(c.CreateSecurityGroup(ctx, alice, "db", "Databases", vpc.ID, nil))

	for _, tc := range []struct {
		what, name, desc, vpc, code string
	}{
		{"no name", "", "d", "", "MissingParameter"},
		{"no description", "n", "", "", "MissingParameter"},
		{"sg- name", "sg-web", "d", "", "InvalidParameterValue"},
		{"long name", strings.Repeat("a", 256), "d", "", "InvalidParameterValue"},
		{"long description", "n", strings.Repeat("a", 256), "", "InvalidParameterValue"},
		{"bad name character", "web~1", "d", "", "InvalidParameterValue"},
		{"non-ASCII description", "n", "café", "", "InvalidParameterValue"},
		{"duplicate", "web", "again", "", "InvalidGroup.Duplicate"},
		{"duplicate other case", "WEB", "again", "", "InvalidGroup.Duplicate"},
		{"another account's vpc", "n", "d", bobVPC.ID, "InvalidVpcID.NotFound"},
		{"unknown vpc", "n", "d", "vpc-0123456789abcdef0", "InvalidVpcID.NotFound"},
		{"malformed vpc", "n", "d", "vpc-xyz", "InvalidVpcID.Malformed"},
	} {
		_, err := c.CreateSecurityGroup(ctx, alice, tc.name, tc.desc, tc.vpc, nil)
		wantCode(t, tc.what, err, tc.code)
	}
	// The full allowed character set and the maximum length pass.
	sgMust(c.CreateSecurityGroup(ctx, alice, "a-z A-Z 0-9 ._-:/()#,@[]+=&;{}!$*", strings.Repeat("d", 255), "", nil))
	// Bob may use the same name in his own VPC.
	sgMust(c.CreateSecurityGroup(ctx, bob, "web", "Bobs web", "", nil))
}

func TestDeleteSecurityGroup(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	a := sgMust(c.CreateSecurityGroup(ctx, alice, "a", "a", "", nil))
	b := sgMust(c.CreateSecurityGroup(ctx, alice, "b", "b", "", nil))
	// b admits a: a cannot go while that rule exists.
	sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, b.ID, "", false,
		[]store.IPPermission{{Protocol: "tcp", FromPort: iptr(5432), ToPort: iptr(5432), Groups: []store.PermissionGroup{{GroupID: a.ID}}}}, nil))
	_, err := c.DeleteSecurityGroup(ctx, alice, a.ID, "")
	wantCode(t, "referenced", err, "DependencyViolation")
	// Another account's group is not found, by id or name.
	_, err = c.DeleteSecurityGroup(ctx, bob, b.ID, "")
	wantCode(t, "bob deletes alice's", err, "InvalidGroup.NotFound")
	_, err = c.DeleteSecurityGroup(ctx, bob, "", "b")
	wantCode(t, "bob deletes alice's by name", err, "InvalidGroup.NotFound")
	_, err = c.DeleteSecurityGroup(ctx, alice, "", "")
	wantCode(t, "neither", err, "MissingParameter")
	_, err = c.DeleteSecurityGroup(ctx, alice, "sg-nothex", "")
	wantCode(t, "malformed", err, "InvalidGroupId.Malformed")
	// By name, in the default VPC.
	if id := sgMust(c.DeleteSecurityGroup(ctx, alice, "", "b")); id != b.ID {
		t.Errorf("deleted %s, want %s", id, b.ID)
	}
	if id := sgMust(c.DeleteSecurityGroup(ctx, alice, a.ID, "")); id != a.ID {
		t.Errorf("deleted %s, want %s", id, a.ID)
	}
	_, err = c.DeleteSecurityGroup(ctx, alice, a.ID, "")
	wantCode(t, "twice", err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, alice, []string{a.ID}, nil)
	wantCode(t, "describe deleted", err, "InvalidGroup.NotFound")
}

func TestDescribeSecurityGroups(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	g := sgMust(c.CreateSecurityGroup(ctx, alice, "web", "w", "", nil))
	got := sgMust(c.DescribeSecurityGroups(ctx, alice, []string{g.ID}, []string{"default"}))
	if len(got) != 2 {
		t.Errorf("by id and name: %+v", got)
	}
	if all := sgMust(c.DescribeSecurityGroups(ctx, alice, nil, nil)); len(all) != 2 {
		t.Errorf("all: %+v", all)
	}
	_, err := c.DescribeSecurityGroups(ctx, alice, []string{"sg-12345678"}, nil)
	wantCode(t, "unknown id", err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, alice, []string{"web"}, nil)
	wantCode(t, "malformed id", err, "InvalidGroupId.Malformed")
	_, err = c.DescribeSecurityGroups(ctx, alice, nil, []string{"nope"})
	wantCode(t, "unknown name", err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, bob, []string{g.ID}, nil)
	wantCode(t, "another account's id", err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, bob, nil, []string{"web"})
	wantCode(t, "another account's name", err, "InvalidGroup.NotFound")
	if bobs := sgMust(c.DescribeSecurityGroups(ctx, bob, nil, nil)); len(bobs) != 1 || bobs[0].Name != "default" {
		t.Errorf("bob sees %+v", bobs)
	}

	rules := sgMust(c.DescribeSecurityGroupRules(ctx, alice, nil))
	if len(rules) != 3 { // default's two, web's egress
		t.Fatalf("alice's rules %+v", rules)
	}
	one := sgMust(c.DescribeSecurityGroupRules(ctx, alice, []string{rules[0].ID}))
	if len(one) != 1 || one[0].ID != rules[0].ID || one[0].GroupOwnerID != alice {
		t.Errorf("rule by id %+v", one)
	}
	_, err = c.DescribeSecurityGroupRules(ctx, bob, []string{rules[0].ID})
	wantCode(t, "bob reads alice's rule", err, "InvalidSecurityGroupRuleId.NotFound")
	_, err = c.DescribeSecurityGroupRules(ctx, alice, []string{"sg-12345678"})
	wantCode(t, "malformed rule id", err, "InvalidSecurityGroupRuleId.Malformed")
}

func TestAuthorizeSecurityGroupRules(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	g := sgMust(c.CreateSecurityGroup(ctx, alice, "web", "w", "", nil))
	other := sgMust(c.CreateSecurityGroup(ctx, alice, "other", "o", "", nil))
	bobs := sgMust(c.CreateSecurityGroup(ctx, bob, "b", "b", "", nil))

	// One rule per peer; protocol numbers become names; CIDRs are masked.
	made := sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", false, []store.IPPermission{{
		Protocol: "6", FromPort: iptr(80), ToPort: iptr(80),
		IPv4Ranges: []store.PermissionCIDR{{CIDR: "10.0.0.1/8", Description: "office"}, {CIDR: "192.168.0.0/24"}},
		IPv6Ranges: []store.PermissionCIDR{{CIDR: "2001:DB8::1/32"}},
		Groups:     []store.PermissionGroup{{GroupID: other.ID, Description: "peers"}, {GroupName: "default", UserID: alice}},
	}}, []store.Tag{{Key: "k", Value: "v"}}))
	if len(made) != 5 {
		t.Fatalf("made %+v", made)
	}
	for _, r := range made {
		if r.Protocol != "tcp" || r.FromPort != 80 || r.ToPort != 80 || r.Egress || r.GroupID != g.ID || len(r.Tags) != 1 || !ids.HasPrefix(r.ID, "sgr") {
			t.Errorf("rule %+v", r)
		}
	}
	if made[0].CIDRIPv4 != "10.0.0.0/8" || made[0].Description != "office" {
		t.Errorf("masked cidr %+v", made[0])
	}
	if made[2].CIDRIPv6 != "2001:db8::/32" {
		t.Errorf("ipv6 %+v", made[2])
	}
	if made[3].PeerGroupID != other.ID || made[3].PeerOwnerID != alice || made[3].PeerGroupName != "other" {
		t.Errorf("peer by id %+v", made[3])
	}
	if def := sgByName(t, c, alice, "default"); made[4].PeerGroupID != def.ID {
		t.Errorf("peer by name %+v", made[4])
	}

	// The normalisations AWS applies.
	for i, tc := range []struct {
		what     string
		perm     store.IPPermission
		proto    string
		from, to int
	}{
		{"udp number", store.IPPermission{Protocol: "17", FromPort: iptr(53), ToPort: iptr(53)}, "udp", 53, 53},
		{"upper case", store.IPPermission{Protocol: "TCP", FromPort: iptr(1), ToPort: iptr(2)}, "tcp", 1, 2},
		{"tcp all ports", store.IPPermission{Protocol: "tcp", FromPort: iptr(-1), ToPort: iptr(-1)}, "tcp", 0, 65535},
		{"icmp number", store.IPPermission{Protocol: "1", FromPort: iptr(8), ToPort: iptr(-1)}, "icmp", 8, -1},
		{"icmp all", store.IPPermission{Protocol: "icmp", FromPort: iptr(-1), ToPort: iptr(-1)}, "icmp", -1, -1},
		{"icmpv6 no ports", store.IPPermission{Protocol: "icmpv6"}, "icmpv6", -1, -1},
		{"all ignores ports", store.IPPermission{Protocol: "-1", FromPort: iptr(0), ToPort: iptr(0)}, "-1", -1, -1},
		{"cli all", store.IPPermission{Protocol: "all"}, "-1", -1, -1},
		{"gre", store.IPPermission{Protocol: "47", FromPort: iptr(5), ToPort: iptr(9)}, "47", -1, -1},
	} {
		tc.perm.IPv4Ranges = []store.PermissionCIDR{{CIDR: "172.16.0.0/" + strconv.Itoa(12+i)}}
		rs, err := c.AuthorizeSecurityGroupRules(ctx, alice, other.ID, "", false, []store.IPPermission{tc.perm}, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if len(rs) != 1 || rs[0].Protocol != tc.proto || rs[0].FromPort != tc.from || rs[0].ToPort != tc.to {
			t.Errorf("%s: %+v", tc.what, rs)
		}
	}

	// Every refusal, and nothing stored by a refused request.
	before := len(sgMust(c.DescribeSecurityGroupRules(ctx, alice, nil)))
	for _, tc := range []struct {
		what  string
		perms []store.IPPermission
		code  string
	}{
		{"duplicate", []store.IPPermission{sgTCP(443, "0.0.0.0/0"), sgTCP(80, "10.9.9.9/8")}, "InvalidPermission.Duplicate"},
		{"duplicate in request", []store.IPPermission{sgTCP(443, "0.0.0.0/0"), sgTCP(443, "0.0.0.0/0")}, "InvalidPermission.Duplicate"},
		{"no protocol", []store.IPPermission{{IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "MissingParameter"},
		{"bad protocol", []store.IPPermission{{Protocol: "sctp-ish", IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"protocol 256", []store.IPPermission{{Protocol: "256", IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"tcp without ports", []store.IPPermission{{Protocol: "tcp", IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"tcp one port", []store.IPPermission{{Protocol: "tcp", ToPort: iptr(22), IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"tcp port too big", []store.IPPermission{{Protocol: "tcp", FromPort: iptr(1), ToPort: iptr(65536), IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidPermission.Malformed"},
		{"tcp -1 and a port", []store.IPPermission{{Protocol: "tcp", FromPort: iptr(-1), ToPort: iptr(22), IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidPermission.Malformed"},
		{"from after to", []store.IPPermission{{Protocol: "udp", FromPort: iptr(90), ToPort: iptr(80), IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"icmp without ports", []store.IPPermission{{Protocol: "icmp", IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"icmp type 256", []store.IPPermission{{Protocol: "icmp", FromPort: iptr(256), ToPort: iptr(-1), IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"icmp all types one code", []store.IPPermission{{Protocol: "icmp", FromPort: iptr(-1), ToPort: iptr(3), IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.0.0.0/8"}}}}, "InvalidParameterValue"},
		{"bad cidr", []store.IPPermission{sgTCP(22, "10.0.0.0/33")}, "InvalidParameterValue"},
		{"not a cidr", []store.IPPermission{sgTCP(22, "10.0.0.1")}, "InvalidParameterValue"},
		{"ipv6 as ipv4", []store.IPPermission{sgTCP(22, "::/0")}, "InvalidParameterValue"},
		{"ipv4 as ipv6", []store.IPPermission{{Protocol: "-1", IPv6Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0"}}}}, "InvalidParameterValue"},
		{"bad description", []store.IPPermission{{Protocol: "-1", IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.2.3.0/24", Description: "naïve"}}}}, "InvalidParameterValue"},
		{"long description", []store.IPPermission{{Protocol: "-1", IPv4Ranges: []store.PermissionCIDR{{CIDR: "1.2.3.0/24", Description: strings.Repeat("x", 256)}}}}, "InvalidParameterValue"},
		{"unknown peer id", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{GroupID: "sg-0123456789abcdef0"}}}}, "InvalidGroup.NotFound"},
		{"malformed peer id", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{GroupID: "sg-zz"}}}}, "InvalidGroupId.Malformed"},
		{"unknown peer name", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{GroupName: "nope"}}}}, "InvalidGroup.NotFound"},
		{"another account's peer", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{GroupID: bobs.ID}}}}, "InvalidGroup.NotFound"},
		{"another account's unknown group", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{UserID: bob, GroupName: "nope"}}}}, "InvalidGroup.NotFound"},
		{"another account's group, wrong owner", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{UserID: "999999999999", GroupID: bobs.ID}}}}, "InvalidGroup.NotFound"},
		{"peer without id or name", []store.IPPermission{{Protocol: "-1", Groups: []store.PermissionGroup{{UserID: alice}}}}, "MissingParameter"},
		{"prefix list", []store.IPPermission{{Protocol: "-1", PrefixLists: []store.PermissionPrefixList{{ID: "pl-12345678"}}}}, "InvalidPrefixListId.NotFound"},
		{"malformed prefix list", []store.IPPermission{{Protocol: "-1", PrefixLists: []store.PermissionPrefixList{{ID: "pl-x"}}}}, "InvalidPrefixListId.Malformed"},
		{"nothing", nil, "MissingParameter"},
	} {
		_, err := c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", false, tc.perms, nil)
		wantCode(t, tc.what, err, tc.code)
	}
	if sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", false, []store.IPPermission{sgTCP(443, "0.0.0.0/0")}, nil)) == nil {
		t.Fatal("443 not made")
	}
	// The same rule with another description is still a duplicate.
	dup := sgTCP(443, "0.0.0.0/0")
	dup.IPv4Ranges[0].Description = "again"
	_, err := c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", false, []store.IPPermission{dup}, nil)
	wantCode(t, "duplicate with description", err, "InvalidPermission.Duplicate")
	if after := len(sgMust(c.DescribeSecurityGroupRules(ctx, alice, nil))); after != before+1 {
		t.Errorf("refused requests stored rules: %d before, %d after", before, after)
	}

	// Addressing the group.
	_, err = c.AuthorizeSecurityGroupRules(ctx, bob, g.ID, "", false, []store.IPPermission{sgTCP(22, "1.0.0.0/8")}, nil)
	wantCode(t, "bob's request on alice's group", err, "InvalidGroup.NotFound")
	_, err = c.AuthorizeSecurityGroupRules(ctx, alice, "", "nope", false, []store.IPPermission{sgTCP(22, "1.0.0.0/8")}, nil)
	wantCode(t, "unknown group name", err, "InvalidGroup.NotFound")
	_, err = c.AuthorizeSecurityGroupRules(ctx, alice, "", "web", true, []store.IPPermission{sgTCP(22, "1.0.0.0/8")}, nil)
	wantCode(t, "egress by name", err, "MissingParameter")
	sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, "", "web", false, []store.IPPermission{sgTCP(22, "1.0.0.0/8")}, nil))
	eg := sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", true, []store.IPPermission{sgTCP(22, "1.0.0.0/8")}, nil))
	if len(eg) != 1 || !eg[0].Egress {
		t.Errorf("egress twin of an ingress rule: %+v", eg)
	}

	// At most 60 rules a direction.
	var many []store.IPPermission
	for i := range 61 {
		many = append(many, sgTCP(1000+i, "10.1.0.0/16"))
	}
	_, err = c.AuthorizeSecurityGroupRules(ctx, alice, other.ID, "", true, many, nil)
	wantCode(t, "rule limit", err, "RulesPerSecurityGroupLimitExceeded")
}

func TestRevokeSecurityGroupRules(t *testing.T) {
	ctx := context.Background()
	c, alice, bob := aliceAndBob(t)
	g := sgMust(c.CreateSecurityGroup(ctx, alice, "web", "w", "", nil))
	made := sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", false, []store.IPPermission{
		{Protocol: "tcp", FromPort: iptr(22), ToPort: iptr(22), IPv4Ranges: []store.PermissionCIDR{{CIDR: "10.0.0.0/8", Description: "ssh"}, {CIDR: "192.168.0.0/16"}}},
		{Protocol: "icmp", FromPort: iptr(-1), ToPort: iptr(-1), IPv4Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0"}}},
	}, nil))

	// By properties; the description need not be given, a host-bits CIDR
	// and a protocol number still match.
	revoked, unknown := sgMust2(t)(c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", false,
		[]store.IPPermission{{Protocol: "6", FromPort: iptr(22), ToPort: iptr(22), IPv4Ranges: []store.PermissionCIDR{{CIDR: "10.1.2.3/8"}}}}, nil))
	if len(revoked) != 1 || revoked[0].ID != made[0].ID || len(unknown) != 0 {
		t.Errorf("revoke by properties: %+v unknown %+v", revoked, unknown)
	}
	// By id; an egress id is not an ingress rule.
	revoked, _ = sgMust2(t)(c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", false, nil, []string{made[2].ID}))
	if len(revoked) != 1 || revoked[0].ID != made[2].ID {
		t.Errorf("revoke by id: %+v", revoked)
	}
	egressID := g.Rules[0].ID
	_, _, err := c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", false, nil, []string{egressID})
	wantCode(t, "egress id on ingress", err, "InvalidSecurityGroupRuleId.NotFound")
	_, _, err = c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", false, nil, []string{"sgr-x"})
	wantCode(t, "malformed rule id", err, "InvalidSecurityGroupRuleId.Malformed")
	_, _, err = c.RevokeSecurityGroupRules(ctx, bob, g.ID, "", false, nil, []string{made[1].ID})
	wantCode(t, "bob revokes alice's", err, "InvalidGroup.NotFound")
	_, _, err = c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", false, nil, nil)
	wantCode(t, "nothing", err, "MissingParameter")
	_, _, err = c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", false, []store.IPPermission{{Protocol: "bogus"}}, nil)
	wantCode(t, "bad protocol", err, "InvalidParameterValue")

	// In a default VPC, a rule that does not exist is no error: the answer
	// lists it as unknown and revokes what did match (AWS's documented rule).
	revoked, unknown = sgMust2(t)(c.RevokeSecurityGroupRules(ctx, alice, "", "web", false, []store.IPPermission{
		sgTCP(22, "192.168.0.0/16"), sgTCP(3306, "0.0.0.0/0"),
	}, nil))
	if len(revoked) != 1 || revoked[0].ID != made[1].ID || len(unknown) != 1 || unknown[0].FromPort != 3306 {
		t.Errorf("partial revoke: %+v unknown %+v", revoked, unknown)
	}
	rules := sgMust(c.DescribeSecurityGroupRules(ctx, alice, nil))
	for _, r := range rules {
		if r.GroupID == g.ID && !r.Egress {
			t.Errorf("ingress rule left: %+v", r)
		}
	}

	// In a VPC that is not a default one, it is InvalidPermission.NotFound
	// and nothing is revoked.
	vpc := store.VPC{ID: ids.New("vpc"), AccountID: alice, CIDR: "10.10.0.0/16"}
	if err := c.store.CreateVPC(ctx, vpc, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.ensureDefaultSecurityGroup(ctx, alice, vpc.ID); err != nil {
		t.Fatal(err)
	}
	ng := sgMust(c.CreateSecurityGroup(ctx, alice, "web", "same name, other VPC", vpc.ID, nil))
	_, _, err = c.RevokeSecurityGroupRules(ctx, alice, ng.ID, "", true, []store.IPPermission{
		{Protocol: "-1", IPv4Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0"}}},
		{Protocol: "-1", IPv6Ranges: []store.PermissionCIDR{{CIDR: "::/0"}}},
	}, nil)
	wantCode(t, "non-default vpc unknown rule", err, "InvalidPermission.NotFound")
	if g := sgMust(c.DescribeSecurityGroups(ctx, alice, []string{ng.ID}, nil)); len(g[0].Rules) != 1 {
		t.Errorf("refused revoke removed rules: %+v", g[0].Rules)
	}
	// Names resolve in the default VPC only.
	if g := sgByName(t, c, alice, "web"); g.ID != sgMust(c.DescribeSecurityGroups(ctx, alice, []string{g.ID}, nil))[0].ID || g.VPCID == vpc.ID {
		t.Errorf("name resolved outside the default VPC: %+v", g)
	}
}

func sgMust2(t *testing.T) func(a, b []store.SecurityGroupRule, err error) ([]store.SecurityGroupRule, []store.SecurityGroupRule) {
	return func(a, b []store.SecurityGroupRule, err error) ([]store.SecurityGroupRule, []store.SecurityGroupRule) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// TestTerraformSecurityGroup replays what the AWS provider (v5) does for an
// aws_security_group, as CLIENTS.md records it.
func TestTerraformSecurityGroup(t *testing.T) {
	ctx := context.Background()
	c, alice, _ := aliceAndBob(t)
	g := sgMust(c.CreateSecurityGroup(ctx, alice, "tf-web", "Managed by Terraform", "", []store.Tag{{Key: "Name", Value: "tf-web"}}))
	sgMust(c.DescribeSecurityGroups(ctx, alice, []string{g.ID}, nil))
	// Remove the default egress: IPv4 must succeed; IPv6 (never there) may
	// fail with InvalidPermission.NotFound or, as here in a default VPC,
	// succeed with the rule reported unknown.
	revoked, _ := sgMust2(t)(c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", true, []store.IPPermission{
		{Protocol: "-1", FromPort: iptr(0), ToPort: iptr(0), IPv4Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0"}}},
	}, nil))
	if len(revoked) != 1 {
		t.Fatalf("default egress not revoked: %+v", revoked)
	}
	_, unknown, err := c.RevokeSecurityGroupRules(ctx, alice, g.ID, "", true, []store.IPPermission{
		{Protocol: "-1", FromPort: iptr(0), ToPort: iptr(0), IPv6Ranges: []store.PermissionCIDR{{CIDR: "::/0"}}},
	}, nil)
	if e, ok := awserr.As(err); err != nil && (!ok || e.Code != "InvalidPermission.NotFound") {
		t.Fatalf("revoke ::/0: %v", err)
	}
	if err == nil && len(unknown) != 1 {
		t.Errorf("::/0 should be reported unknown: %+v", unknown)
	}
	sgMust(c.AuthorizeSecurityGroupRules(ctx, alice, g.ID, "", false, []store.IPPermission{{
		Protocol: "tcp", FromPort: iptr(80), ToPort: iptr(80), IPv4Ranges: []store.PermissionCIDR{{CIDR: "0.0.0.0/0", Description: "HTTP from anywhere"}},
	}}, nil))
	for range 4 {
		gs := sgMust(c.DescribeSecurityGroups(ctx, alice, []string{g.ID}, nil))
		if gs[0].AccountID != alice || len(gs[0].Rules) != 1 || gs[0].Rules[0].Description != "HTTP from anywhere" {
			t.Fatalf("read back %+v", gs[0])
		}
	}
	sgMust(c.DeleteSecurityGroup(ctx, alice, g.ID, ""))
	_, err = c.DescribeSecurityGroups(ctx, alice, []string{g.ID}, nil)
	wantCode(t, "read after delete", err, "InvalidGroup.NotFound")
}

// TestSecurityGroupLimit: a VPC holds at most sgMaxPerVPC groups (its
// default one counted), SecurityGroupLimitExceeded beyond, however many
// calls race; another account's VPC is not counted, and a deletion makes
// room.
func TestSecurityGroupLimit(t *testing.T) {
	ctx := context.Background()
	f := newInstFixture(t, 10)
	old := sgMaxPerVPC
	sgMaxPerVPC = 4
	defer func() { sgMaxPerVPC = old }()
	first := sgMust(f.c.CreateSecurityGroup(ctx, f.alice, "g-first", "g", "", nil)) // with the default group: 2
	var wg sync.WaitGroup
	var mu sync.Mutex
	made, limited := 0, 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.c.CreateSecurityGroup(ctx, f.alice, fmt.Sprintf("g%d", i), "g", "", nil)
			mu.Lock()
			defer mu.Unlock()
			if e, ok := awserr.As(err); ok && e.Code == "SecurityGroupLimitExceeded" {
				limited++
			} else if err != nil {
				t.Error(err)
			} else {
				made++
			}
		}()
	}
	wg.Wait()
	if made != 2 || limited != 4 {
		t.Fatalf("%d made, %d refused; want 2 and 4", made, limited)
	}
	if _, err := f.c.CreateSecurityGroup(ctx, f.bob, "g0", "g", "", nil); err != nil {
		t.Fatalf("another account: %v", err)
	}
	if _, err := f.c.DeleteSecurityGroup(ctx, f.alice, first.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.CreateSecurityGroup(ctx, f.alice, "g-again", "g", "", nil); err != nil {
		t.Fatalf("after a deletion: %v", err)
	}
}
