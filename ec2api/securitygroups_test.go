package ec2api

// The security group actions through the action table against a real cloud
// controller, with every response checked against botocore's model: each
// element must be a member (by locationName) of the shape it sits in, and
// the members of SecurityGroup, IpPermission and SecurityGroupRule must all
// appear somewhere.

import (
	"bytes"
	"context"
	"encoding/xml"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// sgNode is a parsed XML element.
type sgNode struct {
	XMLName  xml.Name
	Children []sgNode `xml:",any"`
	Text     string   `xml:",chardata"`
}

// sgCheckXML walks an action's response against the model from the output
// shape down, and records in seen which members of which shapes appeared.
func sgCheckXML(t *testing.T, m *botocoreModel, action string, doc []byte, seen map[string]map[string]bool) {
	t.Helper()
	var root sgNode
	if err := xml.Unmarshal(doc, &root); err != nil {
		t.Fatalf("%s: %v\n%s", action, err, doc)
	}
	if root.XMLName.Local != action+"Response" {
		t.Errorf("%s: root element %s", action, root.XMLName.Local)
	}
	shape := m.Operations[action].Output.Shape
	var walk func(n sgNode, shape, path string)
	walk = func(n sgNode, shape, path string) {
		s, ok := m.Shapes[shape]
		if !ok {
			t.Errorf("%s: %s: shape %s not in the model", action, path, shape)
			return
		}
		switch s.Type {
		case "structure":
			for _, c := range n.Children {
				name := c.XMLName.Local
				if path == action+"Response" && name == "requestId" {
					continue
				}
				found := false
				for member, ms := range s.Members {
					loc := ms.LocationName
					if loc == "" {
						loc = member
					}
					if loc == name {
						found = true
						if seen[shape] == nil {
							seen[shape] = map[string]bool{}
						}
						seen[shape][loc] = true
						walk(c, ms.Shape, path+">"+name)
					}
				}
				if !found {
					t.Errorf("%s: %s: element %q is not a member of %s", action, path, name, shape)
				}
			}
		case "list":
			item := s.Member.LocationName
			if item == "" {
				item = "item"
			}
			for _, c := range n.Children {
				if c.XMLName.Local != item {
					t.Errorf("%s: %s: list element %q, want %q", action, path, c.XMLName.Local, item)
				}
				walk(c, s.Member.Shape, path+">"+item)
			}
		default:
			if len(n.Children) > 0 {
				t.Errorf("%s: %s: scalar %s has child elements", action, path, shape)
			}
			switch s.Type {
			case "integer", "long":
				if _, err := strconv.Atoi(n.Text); err != nil {
					t.Errorf("%s: %s: %q is not an integer", action, path, n.Text)
				}
			case "boolean":
				if n.Text != "true" && n.Text != "false" {
					t.Errorf("%s: %s: %q is not a boolean", action, path, n.Text)
				}
			}
		}
	}
	walk(root, shape, root.XMLName.Local)
}

// sgHarness calls actions as accounts of a real cloud controller.
type sgHarness struct {
	t     *testing.T
	svc   queryapi.Service
	model *botocoreModel
	seen  map[string]map[string]bool
	alice string
	bob   string
}

func newSGHarness(t *testing.T) *sgHarness {
	t.Helper()
	m := loadModel(t)
	cloud, _, ids := newTestCloud(t, nil, "alice", "bob")
	return &sgHarness{t: t, svc: Service(cloud), model: m, seen: map[string]map[string]bool{}, alice: ids[0], bob: ids[1]}
}

// call runs an action as account and returns its XML document, checked
// against the model, or the API error.
func (h *sgHarness) call(account, action string, params queryapi.Params) ([]byte, *awserr.Error) {
	h.t.Helper()
	handler, ok := h.svc.Actions[action]
	if !ok {
		h.t.Fatalf("no action %s", action)
	}
	params["Action"] = action
	req := &queryapi.Request{Action: action, Params: params, Caller: principal.Principal{AccountID: account}, RequestID: "req-1"}
	resp, err := handler(principal.With(context.Background(), req.Caller), req)
	if err != nil {
		e, ok := awserr.As(err)
		if !ok {
			h.t.Fatalf("%s: untyped error %v", action, err)
		}
		return nil, e
	}
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: Namespace}}}
	if err := enc.EncodeElement(resp, start); err != nil {
		h.t.Fatalf("%s: encode: %v", action, err)
	}
	sgCheckXML(h.t, h.model, action, buf.Bytes(), h.seen)
	return buf.Bytes(), nil
}

func (h *sgHarness) ok(account, action string, params queryapi.Params) []byte {
	h.t.Helper()
	doc, err := h.call(account, action, params)
	if err != nil {
		h.t.Fatalf("%s %v: %v", action, params, err)
	}
	return doc
}

func (h *sgHarness) fails(account, action string, params queryapi.Params, code string) {
	h.t.Helper()
	_, err := h.call(account, action, params)
	if err == nil || err.Code != code {
		h.t.Errorf("%s %v: error %v, want %s", action, params, err, code)
	}
}

// Typed views of the answers, decoded as a client would read them.
type sgDescribed struct {
	Groups []struct {
		OwnerID     string         `xml:"ownerId"`
		GroupID     string         `xml:"groupId"`
		GroupName   string         `xml:"groupName"`
		VpcID       string         `xml:"vpcId"`
		Ingress     []sgPermission `xml:"ipPermissions>item"`
		Egress      []sgPermission `xml:"ipPermissionsEgress>item"`
		Tags        []sgTag        `xml:"tagSet>item"`
		ARN         string         `xml:"securityGroupArn"`
		Description string         `xml:"groupDescription"`
	} `xml:"securityGroupInfo>item"`
	NextToken string `xml:"nextToken"`
}

type sgPermission struct {
	Protocol string  `xml:"ipProtocol"`
	FromPort *int    `xml:"fromPort"`
	ToPort   *int    `xml:"toPort"`
	CIDRs    []sgIP  `xml:"ipRanges>item"`
	CIDRv6   []sgIP6 `xml:"ipv6Ranges>item"`
	Groups   []struct {
		UserID      string `xml:"userId"`
		GroupID     string `xml:"groupId"`
		Description string `xml:"description"`
	} `xml:"groups>item"`
}

type sgIP struct {
	CIDR        string `xml:"cidrIp"`
	Description string `xml:"description"`
}

type sgIP6 struct {
	CIDR string `xml:"cidrIpv6"`
}

type sgTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type sgRules struct {
	Return bool `xml:"return"`
	Rules  []struct {
		ID       string  `xml:"securityGroupRuleId"`
		GroupID  string  `xml:"groupId"`
		IsEgress bool    `xml:"isEgress"`
		Protocol string  `xml:"ipProtocol"`
		FromPort int     `xml:"fromPort"`
		ToPort   int     `xml:"toPort"`
		CIDR     string  `xml:"cidrIpv4"`
		Tags     []sgTag `xml:"tagSet>item"`
	} `xml:"securityGroupRuleSet>item"`
	NextToken string `xml:"nextToken"`
}

func sgDecode[T any](t *testing.T, doc []byte) T {
	t.Helper()
	var v T
	if err := xml.Unmarshal(doc, &v); err != nil {
		t.Fatalf("decode: %v\n%s", err, doc)
	}
	return v
}

func TestSecurityGroupActions(t *testing.T) {
	h := newSGHarness(t)
	alice := h.alice

	created := sgDecode[struct {
		GroupID string  `xml:"groupId"`
		Tags    []sgTag `xml:"tagSet>item"`
		ARN     string  `xml:"securityGroupArn"`
	}](t, h.ok(alice, "CreateSecurityGroup", queryapi.Params{
		"GroupName": "web", "GroupDescription": "Web servers",
		"TagSpecification.1.ResourceType": "security-group",
		"TagSpecification.1.Tag.1.Key":    "Name", "TagSpecification.1.Tag.1.Value": "web",
	}))
	if !strings.HasPrefix(created.GroupID, "sg-") || len(created.Tags) != 1 || created.ARN != "arn:aws:ec2:us-east-1:"+alice+":security-group/"+created.GroupID {
		t.Fatalf("created %+v", created)
	}
	web := created.GroupID
	// An untagged group's answer has no tagSet.
	if doc := h.ok(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "db", "GroupDescription": "db"}); bytes.Contains(doc, []byte("tagSet")) {
		t.Errorf("untagged create answers a tagSet: %s", doc)
	}
	h.fails(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "x"}, "MissingParameter")
	h.fails(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "x", "GroupDescription": ""}, "MissingParameter")
	h.fails(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "x", "GroupDescription": "x",
		"TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "k"}, "InvalidParameterValue")
	h.fails(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "x", "GroupDescription": "x", "DryRun": "true"}, "DryRunOperation")

	// The legacy flat form, as boto2 and euca2ools send it.
	flat := sgDecode[sgRules](t, h.ok(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{
		"GroupName": "web", "IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIp": "10.0.0.0/8",
	}))
	if !flat.Return || len(flat.Rules) != 1 || flat.Rules[0].Protocol != "tcp" || flat.Rules[0].FromPort != 22 || flat.Rules[0].CIDR != "10.0.0.0/8" {
		t.Errorf("flat form: %+v", flat)
	}
	h.ok(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{
		"GroupId": web, "SourceSecurityGroupName": "default", "SourceSecurityGroupOwnerId": alice,
	})
	h.fails(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{"GroupId": web, "IpProtocol": "tcp", "FromPort": "x", "ToPort": "22", "CidrIp": "1.0.0.0/8"}, "InvalidParameterValue")

	// IpPermissions.N as botocore serialises it: UserIdGroupPairs travel
	// as Groups; UserIdGroupPairs itself is read too.
	many := sgDecode[sgRules](t, h.ok(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{
		"GroupId":                                    web,
		"IpPermissions.1.IpProtocol":                 "tcp",
		"IpPermissions.1.FromPort":                   "80",
		"IpPermissions.1.ToPort":                     "80",
		"IpPermissions.1.IpRanges.1.CidrIp":          "0.0.0.0/0",
		"IpPermissions.1.IpRanges.1.Description":     "HTTP from anywhere",
		"IpPermissions.1.Ipv6Ranges.1.CidrIpv6":      "::/0",
		"IpPermissions.1.Ipv6Ranges.1.Description":   "v6",
		"IpPermissions.2.IpProtocol":                 "udp",
		"IpPermissions.2.FromPort":                   "53",
		"IpPermissions.2.ToPort":                     "53",
		"IpPermissions.2.Groups.1.GroupName":         "db",
		"IpPermissions.2.Groups.1.Description":       "dns",
		"IpPermissions.2.UserIdGroupPairs.1.GroupId": web,
		"IpPermissions.2.UserIdGroupPairs.1.UserId":  alice,
		"TagSpecification.1.ResourceType":            "security-group-rule",
		"TagSpecification.1.Tag.1.Key":               "team",
		"TagSpecification.1.Tag.1.Value":             "ops",
	}))
	if len(many.Rules) != 4 {
		t.Fatalf("rules made: %+v", many)
	}
	for _, r := range many.Rules {
		if len(r.Tags) != 1 || r.GroupID != web || r.IsEgress {
			t.Errorf("rule %+v", r)
		}
	}
	h.fails(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{
		"GroupId": web, "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "80", "IpPermissions.1.ToPort": "80",
		"IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0",
	}, "InvalidPermission.Duplicate")
	h.fails(alice, "AuthorizeSecurityGroupEgress", queryapi.Params{
		"GroupName": "web", "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8",
	}, "MissingParameter")
	eg := sgDecode[sgRules](t, h.ok(alice, "AuthorizeSecurityGroupEgress", queryapi.Params{
		"GroupId": web, "IpPermissions.1.IpProtocol": "icmp", "IpPermissions.1.FromPort": "-1", "IpPermissions.1.ToPort": "-1",
		"IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8",
	}))
	if len(eg.Rules) != 1 || !eg.Rules[0].IsEgress {
		t.Errorf("egress %+v", eg)
	}

	// Describe: shapes, names, and AWS's habits (no ports for -1; empty
	// lists present).
	d := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": web}))
	if len(d.Groups) != 1 {
		t.Fatalf("describe %+v", d)
	}
	g := d.Groups[0]
	if g.OwnerID != alice || g.GroupName != "web" || g.Description != "Web servers" || !strings.HasPrefix(g.VpcID, "vpc-") || len(g.Tags) != 1 || !strings.HasSuffix(g.ARN, web) {
		t.Errorf("group %+v", g)
	}
	// tcp 22, -1 from default, tcp 80 (v4 + v6), udp 53 (two groups)
	if len(g.Ingress) != 4 {
		t.Fatalf("ingress %+v", g.Ingress)
	}
	if p := g.Ingress[1]; p.Protocol != "-1" || p.FromPort != nil || p.ToPort != nil || len(p.Groups) != 1 || p.Groups[0].UserID != alice {
		t.Errorf("all-traffic permission %+v", p)
	}
	if p := g.Ingress[2]; p.Protocol != "tcp" || *p.FromPort != 80 || len(p.CIDRs) != 1 || p.CIDRs[0].Description != "HTTP from anywhere" || len(p.CIDRv6) != 1 {
		t.Errorf("http permission %+v", p)
	}
	if p := g.Ingress[3]; len(p.Groups) != 2 || p.Groups[0].Description != "dns" {
		t.Errorf("dns permission %+v", p)
	}
	if len(g.Egress) != 2 || g.Egress[0].Protocol != "-1" || g.Egress[0].CIDRs[0].CIDR != "0.0.0.0/0" || g.Egress[1].FromPort == nil || *g.Egress[1].FromPort != -1 {
		t.Errorf("egress %+v", g.Egress)
	}
	doc := h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"GroupName.1": "default"})
	for _, want := range []string{"<prefixListIds></prefixListIds>", "<ipv6Ranges></ipv6Ranges>", "<groups>"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("default group answer lacks %s:\n%s", want, doc)
		}
	}
	h.fails(alice, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": "sg-12345678"}, "InvalidGroup.NotFound")
	h.fails(alice, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": "nope"}, "InvalidGroupId.Malformed")
	h.fails(alice, "DescribeSecurityGroups", queryapi.Params{"GroupName.1": "nope"}, "InvalidGroup.NotFound")
	h.fails(h.bob, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": web}, "InvalidGroup.NotFound")

	// Filters.
	for _, tc := range []struct {
		filter, value string
		want          int
	}{
		{"group-name", "web", 1},
		{"group-name", "*", 3},
		{"description", "Web*", 1},
		{"owner-id", alice, 3},
		{"vpc-id", g.VpcID, 3},
		{"group-id", web, 1},
		{"ip-permission.cidr", "10.0.0.0/8", 1},
		{"ip-permission.ipv6-cidr", "::/0", 1},
		{"ip-permission.from-port", "80", 1},
		{"ip-permission.to-port", "53", 1},
		{"ip-permission.protocol", "udp", 1},
		{"ip-permission.group-name", "db", 1},
		{"ip-permission.group-id", web, 1}, // web admits itself; default admits default
		{"ip-permission.user-id", alice, 2},
		{"egress.ip-permission.cidr", "0.0.0.0/0", 3},
		{"egress.ip-permission.cidr", "10.0.0.0/8", 1},
		{"egress.ip-permission.protocol", "icmp", 1},
		{"egress.ip-permission.from-port", "-1", 1},
		{"egress.ip-permission.to-port", "-1", 1},
		{"egress.ip-permission.group-id", web, 0},
		{"egress.ip-permission.group-name", "web", 0},
		{"egress.ip-permission.ipv6-cidr", "::/0", 0},
		{"egress.ip-permission.user-id", alice, 0},
		{"tag:Name", "web", 1},
		{"tag-key", "Name", 1},
		{"tag-value", "w*", 1},
	} {
		d := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"Filter.1.Name": tc.filter, "Filter.1.Value.1": tc.value}))
		if len(d.Groups) != tc.want {
			names := []string{}
			for _, g := range d.Groups {
				names = append(names, g.GroupName)
			}
			t.Errorf("filter %s=%s: %v, want %d", tc.filter, tc.value, names, tc.want)
		}
	}
	h.fails(alice, "DescribeSecurityGroups", queryapi.Params{"Filter.1.Name": "bogus", "Filter.1.Value.1": "x"}, "InvalidParameterValue")

	// Pagination: 5..1000.
	for i := range 4 {
		h.ok(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "page-" + strconv.Itoa(i), "GroupDescription": "p"})
	}
	all := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{}))
	page := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"MaxResults": "5"}))
	if len(page.Groups) != 5 || page.NextToken == "" {
		t.Fatalf("first page %d %q of %d", len(page.Groups), page.NextToken, len(all.Groups))
	}
	rest := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"MaxResults": "5", "NextToken": page.NextToken}))
	if len(page.Groups)+len(rest.Groups) != len(all.Groups) || rest.NextToken != "" {
		t.Errorf("pages %d + %d, all %d", len(page.Groups), len(rest.Groups), len(all.Groups))
	}
	h.fails(alice, "DescribeSecurityGroups", queryapi.Params{"MaxResults": "4"}, "InvalidParameterValue")

	// DescribeSecurityGroupRules.
	rules := sgDecode[sgRules](t, h.ok(alice, "DescribeSecurityGroupRules", queryapi.Params{"Filter.1.Name": "group-id", "Filter.1.Value.1": web}))
	if len(rules.Rules) != 8 { // 1 egress default + flat + source group + 4 + icmp egress
		t.Errorf("rules of web: %d", len(rules.Rules))
	}
	one := sgDecode[sgRules](t, h.ok(alice, "DescribeSecurityGroupRules", queryapi.Params{"SecurityGroupRuleId.1": many.Rules[0].ID}))
	if len(one.Rules) != 1 || one.Rules[0].ID != many.Rules[0].ID {
		t.Errorf("rule by id %+v", one)
	}
	tagged := sgDecode[sgRules](t, h.ok(alice, "DescribeSecurityGroupRules", queryapi.Params{"Filter.1.Name": "tag:team", "Filter.1.Value.1": "ops"}))
	if len(tagged.Rules) != 4 {
		t.Errorf("rules tagged: %d", len(tagged.Rules))
	}
	byID := sgDecode[sgRules](t, h.ok(alice, "DescribeSecurityGroupRules", queryapi.Params{"Filter.1.Name": "security-group-rule-id", "Filter.1.Value.1": many.Rules[1].ID}))
	if len(byID.Rules) != 1 {
		t.Errorf("rule by filter: %+v", byID)
	}
	rp := sgDecode[sgRules](t, h.ok(alice, "DescribeSecurityGroupRules", queryapi.Params{"MaxResults": "5"}))
	if len(rp.Rules) != 5 || rp.NextToken == "" {
		t.Errorf("rules page %d %q", len(rp.Rules), rp.NextToken)
	}
	h.fails(h.bob, "DescribeSecurityGroupRules", queryapi.Params{"SecurityGroupRuleId.1": many.Rules[0].ID}, "InvalidSecurityGroupRuleId.NotFound")

	// Revoke: in the default VPC an unknown rule is listed, not refused.
	rv := sgDecode[struct {
		Return  bool           `xml:"return"`
		Unknown []sgPermission `xml:"unknownIpPermissionSet>item"`
		Revoked []struct {
			ID string `xml:"securityGroupRuleId"`
		} `xml:"revokedSecurityGroupRuleSet>item"`
	}](t, h.ok(alice, "RevokeSecurityGroupEgress", queryapi.Params{
		"GroupId": web, "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.FromPort": "0", "IpPermissions.1.ToPort": "0",
		"IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0", "IpPermissions.1.Ipv6Ranges.1.CidrIpv6": "::/0",
	}))
	if rv.Return || len(rv.Revoked) != 1 || len(rv.Unknown) != 1 || rv.Unknown[0].CIDRv6[0].CIDR != "::/0" {
		t.Errorf("revoke egress %+v", rv)
	}
	h.ok(alice, "RevokeSecurityGroupIngress", queryapi.Params{"GroupName": "web", "IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIp": "10.0.0.0/8"})
	h.ok(alice, "RevokeSecurityGroupIngress", queryapi.Params{"GroupId": web, "SecurityGroupRuleId.1": many.Rules[0].ID})
	h.fails(alice, "RevokeSecurityGroupIngress", queryapi.Params{"GroupId": web, "SecurityGroupRuleId.1": many.Rules[0].ID}, "InvalidSecurityGroupRuleId.NotFound")

	// Delete: referenced groups stay; the answer carries the id.
	h.fails(alice, "DeleteSecurityGroup", queryapi.Params{"GroupName": "db"}, "DependencyViolation")
	h.fails(alice, "DeleteSecurityGroup", queryapi.Params{"GroupName": "default"}, "CannotDelete")
	del := sgDecode[struct {
		Return  bool   `xml:"return"`
		GroupID string `xml:"groupId"`
	}](t, h.ok(alice, "DeleteSecurityGroup", queryapi.Params{"GroupId": web}))
	if !del.Return || del.GroupID != web {
		t.Errorf("delete %+v", del)
	}
	h.fails(alice, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": web}, "InvalidGroup.NotFound")
	h.ok(alice, "DeleteSecurityGroup", queryapi.Params{"GroupName": "db"})

	// Every member of these shapes appeared in some answer (prefix lists
	// cannot exist yet, so no rule can show one).
	for shape, skip := range map[string][]string{
		"SecurityGroup":            nil,
		"IpPermission":             nil,
		"IpRange":                  nil,
		"Ipv6Range":                nil,
		"UserIdGroupPair":          {"groupName", "vpcId", "vpcPeeringConnectionId", "peeringStatus"},
		"SecurityGroupRule":        {"prefixListId"},
		"RevokedSecurityGroupRule": {"prefixListId", "referencedGroupId", "cidrIpv6", "description"},
		"ReferencedSecurityGroup":  {"vpcId", "vpcPeeringConnectionId", "peeringStatus"},
	} {
		for member, ms := range h.model.Shapes[shape].Members {
			loc := ms.LocationName
			if loc == "" {
				loc = member
			}
			if !h.seen[shape][loc] && !contains(skip, loc) {
				t.Errorf("%s.%s (%s) never appeared in an answer", shape, member, loc)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestSecurityGroupRulesChangedInPlace: the calls Terraform's AWS provider
// makes when a rule changes, with the parameters it sends (traced from
// provider 5.100): UpdateSecurityGroupRuleDescriptionsEgress for a new
// description of an aws_security_group_rule, ModifySecurityGroupRules for
// any change of an aws_vpc_security_group_*_rule. Each keeps the rule's id
// and tags, and the group's rules read back as changed.
func TestSecurityGroupRulesChangedInPlace(t *testing.T) {
	h := newSGHarness(t)
	alice := h.alice
	g := sgDecode[struct {
		GroupID string `xml:"groupId"`
	}](t, h.ok(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "db", "GroupDescription": "db"})).GroupID
	peer := sgDecode[struct {
		GroupID string `xml:"groupId"`
	}](t, h.ok(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": "web", "GroupDescription": "web"})).GroupID
	h.ok(alice, "AuthorizeSecurityGroupEgress", queryapi.Params{"GroupId": g,
		"IpPermissions.1.FromPort": "443", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.IpRanges.1.CidrIp": "10.1.0.0/16", "IpPermissions.1.ToPort": "443"})
	ssh := sgDecode[sgRules](t, h.ok(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{"GroupId": g,
		"IpPermissions.1.FromPort": "22", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.IpRanges.1.CidrIp": "10.2.0.0/16",
		"IpPermissions.1.IpRanges.1.Description": "ssh", "IpPermissions.1.ToPort": "22",
		"TagSpecification.1.ResourceType": "security-group-rule", "TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": "ssh"})).Rules[0].ID
	rule := func(id string) sgRuleRead {
		t.Helper()
		got := sgDecode[struct {
			Rules []sgRuleRead `xml:"securityGroupRuleSet>item"`
		}](t, h.ok(alice, "DescribeSecurityGroupRules", queryapi.Params{"SecurityGroupRuleId.1": id})).Rules
		if len(got) != 1 {
			t.Fatalf("rule %s: %+v", id, got)
		}
		return got[0]
	}

	// aws_security_group_rule: a description added to an egress rule.
	h.ok(alice, "UpdateSecurityGroupRuleDescriptionsEgress", queryapi.Params{"GroupId": g,
		"IpPermissions.1.FromPort": "443", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.IpRanges.1.CidrIp": "10.1.0.0/16",
		"IpPermissions.1.IpRanges.1.Description": "tls out", "IpPermissions.1.ToPort": "443"})
	d := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": g}))
	var tls []string
	for _, p := range d.Groups[0].Egress {
		for _, c := range p.CIDRs {
			tls = append(tls, c.CIDR+"="+c.Description)
		}
	}
	if !slices.Contains(tls, "10.1.0.0/16=tls out") {
		t.Errorf("egress after the description update: %v", tls)
	}
	// By rule id, ingress, the group by name (default VPC).
	h.ok(alice, "UpdateSecurityGroupRuleDescriptionsIngress", queryapi.Params{"GroupName": "db",
		"SecurityGroupRuleDescription.1.SecurityGroupRuleId": ssh, "SecurityGroupRuleDescription.1.Description": "admins"})
	if r := rule(ssh); r.Description != "admins" {
		t.Errorf("described by id: %+v", r)
	}
	h.fails(alice, "UpdateSecurityGroupRuleDescriptionsIngress", queryapi.Params{"GroupId": g,
		"IpPermissions.1.FromPort": "23", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.IpRanges.1.CidrIp": "10.2.0.0/16",
		"IpPermissions.1.IpRanges.1.Description": "x", "IpPermissions.1.ToPort": "23"}, "InvalidPermission.NotFound")
	h.fails(alice, "UpdateSecurityGroupRuleDescriptionsEgress", queryapi.Params{"GroupId": g,
		"SecurityGroupRuleDescription.1.SecurityGroupRuleId": ssh, "SecurityGroupRuleDescription.1.Description": "x"}, "InvalidSecurityGroupRuleId.NotFound")
	h.fails(alice, "UpdateSecurityGroupRuleDescriptionsIngress", queryapi.Params{"GroupId": g}, "MissingParameter")
	h.fails(h.bob, "UpdateSecurityGroupRuleDescriptionsIngress", queryapi.Params{"GroupId": g,
		"SecurityGroupRuleDescription.1.SecurityGroupRuleId": ssh, "SecurityGroupRuleDescription.1.Description": "x"}, "InvalidGroup.NotFound")

	// aws_vpc_security_group_ingress_rule: description and CIDR changed;
	// then the same rule made to reference a group.
	h.ok(alice, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g,
		"SecurityGroupRule.1.SecurityGroupRule.CidrIpv4": "10.4.0.0/16", "SecurityGroupRule.1.SecurityGroupRule.Description": "ssh admins",
		"SecurityGroupRule.1.SecurityGroupRule.FromPort": "22", "SecurityGroupRule.1.SecurityGroupRule.IpProtocol": "tcp",
		"SecurityGroupRule.1.SecurityGroupRule.ToPort": "22", "SecurityGroupRule.1.SecurityGroupRuleId": ssh})
	if r := rule(ssh); r.CIDR != "10.4.0.0/16" || r.Description != "ssh admins" || r.FromPort != 22 || r.IsEgress || len(r.Tags) != 1 {
		t.Errorf("modified: %+v", r)
	}
	h.ok(alice, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g,
		"SecurityGroupRule.1.SecurityGroupRule.ReferencedGroupId": peer, "SecurityGroupRule.1.SecurityGroupRule.IpProtocol": "-1",
		"SecurityGroupRule.1.SecurityGroupRuleId": ssh})
	if r := rule(ssh); r.CIDR != "" || r.Referenced != peer || r.Protocol != "-1" || r.FromPort != -1 {
		t.Errorf("modified to a group: %+v", r)
	}
	// Becoming a rule the group has already is a duplicate.
	again := sgDecode[sgRules](t, h.ok(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{"GroupId": g,
		"IpPermissions.1.FromPort": "80", "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0", "IpPermissions.1.ToPort": "80"})).Rules[0].ID
	h.fails(alice, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g,
		"SecurityGroupRule.1.SecurityGroupRule.ReferencedGroupId": peer, "SecurityGroupRule.1.SecurityGroupRule.IpProtocol": "-1",
		"SecurityGroupRule.1.SecurityGroupRuleId": again}, "InvalidPermission.Duplicate")
	h.fails(alice, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g,
		"SecurityGroupRule.1.SecurityGroupRule.IpProtocol": "tcp", "SecurityGroupRule.1.SecurityGroupRuleId": again}, "InvalidParameterValue")
	h.fails(alice, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g,
		"SecurityGroupRule.1.SecurityGroupRule.CidrIpv4": "10.0.0.0/8", "SecurityGroupRule.1.SecurityGroupRule.IpProtocol": "tcp",
		"SecurityGroupRule.1.SecurityGroupRule.FromPort": "1", "SecurityGroupRule.1.SecurityGroupRule.ToPort": "1",
		"SecurityGroupRule.1.SecurityGroupRuleId": "sgr-0123456789abcdef0"}, "InvalidSecurityGroupRuleId.NotFound")
	h.fails(alice, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g}, "MissingParameter")
	h.fails(h.bob, "ModifySecurityGroupRules", queryapi.Params{"GroupId": g,
		"SecurityGroupRule.1.SecurityGroupRule.IpProtocol": "-1", "SecurityGroupRule.1.SecurityGroupRule.CidrIpv4": "10.0.0.0/8",
		"SecurityGroupRule.1.SecurityGroupRuleId": again}, "InvalidGroup.NotFound")
}

type sgRuleRead struct {
	ID          string  `xml:"securityGroupRuleId"`
	IsEgress    bool    `xml:"isEgress"`
	Protocol    string  `xml:"ipProtocol"`
	FromPort    int     `xml:"fromPort"`
	CIDR        string  `xml:"cidrIpv4"`
	Referenced  string  `xml:"referencedGroupInfo>groupId"`
	Description string  `xml:"description"`
	Tags        []sgTag `xml:"tagSet>item"`
}

// TestSecurityGroupsEuca2oolsRequests: rule changes as euca2ools 3.x
// sends them (API version 2014-06-15). `euca-authorize -o GROUP -u
// ACCOUNT` puts, beside the source group, the CIDR 0.0.0.0/0 it defaults
// to in the same permission: Eucalyptus granted the group only, and so does
// this cloud for requests of that age, while a current request with both
// gets both rules, as in AWS. A group given by a 17-digit id goes as
// GroupName (euca2ools knows only 8-digit ids), and is found.
func TestSecurityGroupsEuca2oolsRequests(t *testing.T) {
	h := newSGHarness(t)
	alice := h.alice
	create := func(name string) string {
		return sgDecode[struct {
			GroupID string `xml:"groupId"`
		}](t, h.ok(alice, "CreateSecurityGroup", queryapi.Params{"GroupName": name, "GroupDescription": name, "Version": "2014-06-15"})).GroupID
	}
	web, db := create("web"), create("db")
	euca := func(action string, p queryapi.Params) sgRules {
		t.Helper()
		p["Version"] = "2014-06-15"
		return sgDecode[sgRules](t, h.ok(alice, action, p))
	}
	// euca-authorize -P tcp -p 5432 -o db -u ALICE web
	made := euca("AuthorizeSecurityGroupIngress", queryapi.Params{"GroupName": "web",
		"IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "5432", "IpPermissions.1.ToPort": "5432",
		"IpPermissions.1.Groups.1.GroupName": "db", "IpPermissions.1.Groups.1.UserId": alice, "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"})
	// euca-authorize -P udp -p 53 -o DB-ID -u ALICE WEB-ID
	made2 := euca("AuthorizeSecurityGroupIngress", queryapi.Params{"GroupName": web,
		"IpPermissions.1.IpProtocol": "udp", "IpPermissions.1.FromPort": "53", "IpPermissions.1.ToPort": "53",
		"IpPermissions.1.Groups.1.GroupName": db, "IpPermissions.1.Groups.1.UserId": alice, "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"})
	// euca-authorize -P icmp -t 8:0 -s 10.0.0.0/8 WEB-ID
	made3 := euca("AuthorizeSecurityGroupIngress", queryapi.Params{"GroupName": web,
		"IpPermissions.1.IpProtocol": "icmp", "IpPermissions.1.FromPort": "8", "IpPermissions.1.ToPort": "0", "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/8"})
	if len(made.Rules) != 1 || len(made2.Rules) != 1 || len(made3.Rules) != 1 || made3.Rules[0].CIDR != "10.0.0.0/8" || made3.Rules[0].FromPort != 8 {
		t.Fatalf("euca2ools rules: %+v %+v %+v", made, made2, made3)
	}
	d := sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"GroupName.1": "web", "Version": "2014-06-15"}))
	for _, p := range d.Groups[0].Ingress {
		for _, c := range p.CIDRs {
			if c.CIDR == "0.0.0.0/0" {
				t.Errorf("euca-authorize -o opened %s %v to the world", p.Protocol, *p.FromPort)
			}
		}
		if p.Protocol != "icmp" && (len(p.Groups) != 1 || p.Groups[0].GroupID != db || p.Groups[0].UserID != alice) {
			t.Errorf("permission %+v: want the group db only", p)
		}
	}
	// euca-revoke, the same forms.
	euca("RevokeSecurityGroupIngress", queryapi.Params{"GroupName": web,
		"IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "5432", "IpPermissions.1.ToPort": "5432",
		"IpPermissions.1.Groups.1.GroupName": "db", "IpPermissions.1.Groups.1.UserId": alice, "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"})
	d = sgDecode[sgDescribed](t, h.ok(alice, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": web}))
	if len(d.Groups[0].Ingress) != 2 {
		t.Errorf("after euca-revoke: %+v", d.Groups[0].Ingress)
	}
	// A current request with a group and a CIDR in one permission grants
	// both (Terraform's `self = true` with cidr_blocks sends that).
	both := sgDecode[sgRules](t, h.ok(alice, "AuthorizeSecurityGroupIngress", queryapi.Params{"GroupId": web, "Version": "2016-11-15",
		"IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "80", "IpPermissions.1.ToPort": "80",
		"IpPermissions.1.Groups.1.GroupId": web, "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"}))
	if len(both.Rules) != 2 {
		t.Errorf("current request with a group and a CIDR: %+v", both)
	}
}
