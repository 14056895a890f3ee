package ec2api

// Security groups: decoding of both forms of rule that clients send (the
// legacy flat IpProtocol/FromPort/CidrIp form of boto2 and euca2ools, and
// IpPermissions.N, whose UserIdGroupPairs travel as "Groups" because that is
// their locationName), the filters of DescribeSecurityGroups and
// DescribeSecurityGroupRules, and the XML shapes. The cloud controller makes
// every decision that has an AWS error code.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// SecurityGroupService is what the security group actions need from the
// cloud. Every method is scoped to accountID: another account's group is
// reported as missing. Groups are named by id, or by name in the account's
// default VPC (groupID wins when both are given).
type SecurityGroupService interface {
	// Region names the region in the ARNs of groups and rules.
	Region() string
	// CreateSecurityGroup makes a group in vpcID (empty: the default VPC).
	CreateSecurityGroup(ctx context.Context, accountID, name, description, vpcID string, tags []store.Tag) (store.SecurityGroup, error)
	// DeleteSecurityGroup deletes a group and returns its id.
	DeleteSecurityGroup(ctx context.Context, accountID, groupID, groupName string) (string, error)
	// DescribeSecurityGroups lists groups; with ids or names, only those.
	DescribeSecurityGroups(ctx context.Context, accountID string, groupIDs, groupNames []string) ([]store.SecurityGroup, error)
	// DescribeSecurityGroupRules lists rules; with ids, only those.
	DescribeSecurityGroupRules(ctx context.Context, accountID string, ruleIDs []string) ([]store.SecurityGroupRule, error)
	// AuthorizeSecurityGroupRules adds rules, all or none, and returns them.
	AuthorizeSecurityGroupRules(ctx context.Context, accountID, groupID, groupName string, egress bool, perms []store.IPPermission, tags []store.Tag) ([]store.SecurityGroupRule, error)
	// RevokeSecurityGroupRules removes rules by id or by properties and
	// returns those removed and those requested that matched none.
	RevokeSecurityGroupRules(ctx context.Context, accountID, groupID, groupName string, egress bool, perms []store.IPPermission, ruleIDs []string) (revoked, unknown []store.SecurityGroupRule, err error)
	// UpdateSecurityGroupRuleDescriptions sets rules' descriptions, the
	// rules named by their properties (perms, each peer with its new
	// description) or by id (ruleIDs[i] gets descriptions[i]).
	UpdateSecurityGroupRuleDescriptions(ctx context.Context, accountID, groupID, groupName string, egress bool, perms []store.IPPermission, ruleIDs, descriptions []string) error
	// ModifySecurityGroupRules replaces rules by id: updates[i], with one
	// peer, is the whole new rule for ruleIDs[i].
	ModifySecurityGroupRules(ctx context.Context, accountID, groupID string, ruleIDs []string, updates []store.IPPermission) error
}

type sgGroupItem struct {
	OwnerID             string                  `xml:"ownerId"`
	GroupID             string                  `xml:"groupId"`
	GroupName           string                  `xml:"groupName"`
	Description         string                  `xml:"groupDescription"`
	VpcID               string                  `xml:"vpcId"`
	IPPermissions       setOf[sgPermissionItem] `xml:"ipPermissions"`
	IPPermissionsEgress setOf[sgPermissionItem] `xml:"ipPermissionsEgress"`
	Tags                *setOf[tagItem]         `xml:"tagSet,omitempty"`
	ARN                 string                  `xml:"securityGroupArn"`
}

// sgPermissionItem is an IpPermission. Ports are absent for protocols that
// have none, as AWS answers.
type sgPermissionItem struct {
	IPProtocol    string                  `xml:"ipProtocol"`
	FromPort      *int                    `xml:"fromPort,omitempty"`
	ToPort        *int                    `xml:"toPort,omitempty"`
	Groups        setOf[sgGroupPairItem]  `xml:"groups"`
	IPRanges      setOf[sgIPRangeItem]    `xml:"ipRanges"`
	IPv6Ranges    setOf[sgIPv6RangeItem]  `xml:"ipv6Ranges"`
	PrefixListIDs setOf[sgPrefixListItem] `xml:"prefixListIds"`
}

// sgGroupPairItem is a UserIdGroupPair. VPC groups are answered by id and
// owner only (groupName was EC2-Classic's), as AWS does.
type sgGroupPairItem struct {
	UserID      string `xml:"userId"`
	GroupID     string `xml:"groupId"`
	Description string `xml:"description,omitempty"`
}

type sgIPRangeItem struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type sgIPv6RangeItem struct {
	CidrIPv6    string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

type sgPrefixListItem struct {
	PrefixListID string `xml:"prefixListId"`
	Description  string `xml:"description,omitempty"`
}

// sgRuleItem is a SecurityGroupRule.
type sgRuleItem struct {
	ID           string            `xml:"securityGroupRuleId"`
	GroupID      string            `xml:"groupId"`
	GroupOwnerID string            `xml:"groupOwnerId"`
	IsEgress     bool              `xml:"isEgress"`
	IPProtocol   string            `xml:"ipProtocol"`
	FromPort     int               `xml:"fromPort"`
	ToPort       int               `xml:"toPort"`
	CidrIPv4     string            `xml:"cidrIpv4,omitempty"`
	CidrIPv6     string            `xml:"cidrIpv6,omitempty"`
	PrefixListID string            `xml:"prefixListId,omitempty"`
	Referenced   *sgReferencedItem `xml:"referencedGroupInfo,omitempty"`
	Description  string            `xml:"description,omitempty"`
	Tags         setOf[tagItem]    `xml:"tagSet"`
	ARN          string            `xml:"securityGroupRuleArn"`
}

type sgReferencedItem struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

// sgRevokedItem is a RevokedSecurityGroupRule.
type sgRevokedItem struct {
	ID                string `xml:"securityGroupRuleId"`
	GroupID           string `xml:"groupId"`
	IsEgress          bool   `xml:"isEgress"`
	IPProtocol        string `xml:"ipProtocol"`
	FromPort          int    `xml:"fromPort"`
	ToPort            int    `xml:"toPort"`
	CidrIPv4          string `xml:"cidrIpv4,omitempty"`
	CidrIPv6          string `xml:"cidrIpv6,omitempty"`
	PrefixListID      string `xml:"prefixListId,omitempty"`
	ReferencedGroupID string `xml:"referencedGroupId,omitempty"`
	Description       string `xml:"description,omitempty"`
}

type createSecurityGroupResponse struct {
	Response
	GroupID string          `xml:"groupId"`
	Tags    *setOf[tagItem] `xml:"tagSet,omitempty"`
	ARN     string          `xml:"securityGroupArn"`
}

type deleteSecurityGroupResponse struct {
	Response
	Return  bool   `xml:"return"`
	GroupID string `xml:"groupId"`
}

type describeSecurityGroupsResponse struct {
	Response
	Groups    setOf[sgGroupItem] `xml:"securityGroupInfo"`
	NextToken string             `xml:"nextToken,omitempty"`
}

type describeSecurityGroupRulesResponse struct {
	Response
	Rules     setOf[sgRuleItem] `xml:"securityGroupRuleSet"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type authorizeSecurityGroupResponse struct {
	Response
	Return bool              `xml:"return"`
	Rules  setOf[sgRuleItem] `xml:"securityGroupRuleSet"`
}

type revokeSecurityGroupResponse struct {
	Response
	Return  bool                     `xml:"return"`
	Unknown *setOf[sgPermissionItem] `xml:"unknownIpPermissionSet,omitempty"`
	Revoked setOf[sgRevokedItem]     `xml:"revokedSecurityGroupRuleSet"`
}

func (a *api) createSecurityGroup(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	name, err := p.Required("GroupName")
	if err != nil {
		return nil, err
	}
	desc, err := p.Required("GroupDescription")
	if err != nil {
		return nil, err
	}
	tags, err := sgTagSpecs(p, store.TypeSecurityGroup)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	g, err := a.cloud.CreateSecurityGroup(ctx, req.Caller.AccountID, name, desc, p.String("VpcId"), tags)
	if err != nil {
		return nil, err
	}
	return &createSecurityGroupResponse{GroupID: g.ID, Tags: sgTags(g.Tags), ARN: sgARN(a.cloud.Region(), g.AccountID, "security-group", g.ID)}, nil
}

func (a *api) deleteSecurityGroup(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := a.cloud.DeleteSecurityGroup(ctx, req.Caller.AccountID, p.String("GroupId"), p.String("GroupName"))
	if err != nil {
		return nil, err
	}
	return &deleteSecurityGroupResponse{Return: true, GroupID: id}, nil
}

func (a *api) describeSecurityGroups(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[store.SecurityGroup]{
		fields: sgGroupFilters, tags: func(g store.SecurityGroup) []store.Tag { return g.Tags },
		fetch: func() ([]store.SecurityGroup, error) {
			return a.cloud.DescribeSecurityGroups(ctx, req.Caller.AccountID, p.List("GroupId"), p.List("GroupName"))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	resp := &describeSecurityGroupsResponse{NextToken: next}
	region := a.cloud.Region()
	for _, g := range page {
		var in, out []store.SecurityGroupRule
		for _, r := range g.Rules {
			if r.Egress {
				out = append(out, r)
			} else {
				in = append(in, r)
			}
		}
		resp.Groups.Items = append(resp.Groups.Items, sgGroupItem{
			OwnerID: g.AccountID, GroupID: g.ID, GroupName: g.Name, Description: g.Description, VpcID: g.VPCID,
			IPPermissions: sgPermissions(in), IPPermissionsEgress: sgPermissions(out),
			Tags: sgTags(g.Tags), ARN: sgARN(region, g.AccountID, "security-group", g.ID),
		})
	}
	return resp, nil
}

func (a *api) describeSecurityGroupRules(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[store.SecurityGroupRule]{
		fields: sgRuleFilters, tags: func(r store.SecurityGroupRule) []store.Tag { return r.Tags },
		fetch: func() ([]store.SecurityGroupRule, error) {
			return a.cloud.DescribeSecurityGroupRules(ctx, req.Caller.AccountID, p.List("SecurityGroupRuleId"))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeSecurityGroupRulesResponse{Rules: sgRuleItems(a.cloud.Region(), page), NextToken: next}, nil
}

// sgDirection is the handler of the Ingress or the Egress call of a pair
// (AuthorizeSecurityGroup*, RevokeSecurityGroup*) that differ only in the
// direction of the rules they change.
func sgDirection(h func(ctx context.Context, req *queryapi.Request, egress bool) (any, error), egress bool) handler {
	return func(ctx context.Context, req *queryapi.Request) (any, error) { return h(ctx, req, egress) }
}

func (a *api) authorizeSecurityGroup(ctx context.Context, req *queryapi.Request, egress bool) (any, error) {
	p := req.Params
	perms, err := sgDecodePermissions(p)
	if err != nil {
		return nil, err
	}
	tags, err := sgTagSpecs(p, store.TypeSecurityGroupRule)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	groupID, groupName := sgGroupRef(p, egress)
	rules, err := a.cloud.AuthorizeSecurityGroupRules(ctx, req.Caller.AccountID, groupID, groupName, egress, perms, tags)
	if err != nil {
		return nil, err
	}
	return &authorizeSecurityGroupResponse{Return: true, Rules: sgRuleItems(a.cloud.Region(), rules)}, nil
}

func (a *api) revokeSecurityGroup(ctx context.Context, req *queryapi.Request, egress bool) (any, error) {
	p := req.Params
	perms, err := sgDecodePermissions(p)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	groupID, groupName := sgGroupRef(p, egress)
	revoked, unknown, err := a.cloud.RevokeSecurityGroupRules(ctx, req.Caller.AccountID, groupID, groupName, egress, perms, p.List("SecurityGroupRuleId"))
	if err != nil {
		return nil, err
	}
	// Permissions that matched nothing (only in a default VPC; elsewhere the
	// cloud refuses them) make the answer false, with the set that says which.
	resp := &revokeSecurityGroupResponse{Return: len(unknown) == 0}
	if len(unknown) > 0 {
		u := sgPermissions(unknown)
		resp.Unknown = &u
	}
	for _, r := range revoked {
		resp.Revoked.Items = append(resp.Revoked.Items, sgRevokedItem{
			ID: r.ID, GroupID: r.GroupID, IsEgress: r.Egress, IPProtocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort,
			CidrIPv4: r.CIDRIPv4, CidrIPv6: r.CIDRIPv6, PrefixListID: r.PrefixListID, ReferencedGroupID: r.PeerGroupID, Description: r.Description,
		})
	}
	return resp, nil
}

func (a *api) updateSecurityGroupRuleDescriptions(ctx context.Context, req *queryapi.Request, egress bool) (any, error) {
	p := req.Params
	perms, err := sgDecodePermissions(p)
	if err != nil {
		return nil, err
	}
	var ruleIDs, descriptions []string
	for _, m := range p.Members("SecurityGroupRuleDescription") {
		ruleIDs, descriptions = append(ruleIDs, m.String("SecurityGroupRuleId")), append(descriptions, m.String("Description"))
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	// Both directions accept GroupName here (a group of the default VPC).
	if err := a.cloud.UpdateSecurityGroupRuleDescriptions(ctx, req.Caller.AccountID, p.String("GroupId"), p.String("GroupName"),
		egress, perms, ruleIDs, descriptions); err != nil {
		return nil, err
	}
	return ok()
}

// modifySecurityGroupRules reads SecurityGroupRule.N: a SecurityGroupRuleId
// and a SecurityGroupRuleRequest (SecurityGroupRule.N.SecurityGroupRule.*),
// which names its one peer by CidrIpv4, CidrIpv6, PrefixListId or
// ReferencedGroupId.
func (a *api) modifySecurityGroupRules(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	var ruleIDs []string
	var updates []store.IPPermission
	for i, m := range p.Members("SecurityGroupRule") {
		prefix := "SecurityGroupRule." + strconv.Itoa(i+1) + ".SecurityGroupRule."
		r := queryapi.Params{}
		for k, v := range m {
			if rest, ok := strings.CutPrefix(k, "SecurityGroupRule."); ok {
				r[rest] = v
			}
		}
		u, err := sgPermissionBase(r, prefix)
		if err != nil {
			return nil, err
		}
		d := r.String("Description")
		if v := r.String("CidrIpv4"); v != "" {
			u.IPv4Ranges = []store.PermissionCIDR{{CIDR: v, Description: d}}
		}
		if v := r.String("CidrIpv6"); v != "" {
			u.IPv6Ranges = []store.PermissionCIDR{{CIDR: v, Description: d}}
		}
		if v := r.String("PrefixListId"); v != "" {
			u.PrefixLists = []store.PermissionPrefixList{{ID: v, Description: d}}
		}
		if v := r.String("ReferencedGroupId"); v != "" {
			u.Groups = []store.PermissionGroup{{GroupID: v, Description: d}}
		}
		ruleIDs, updates = append(ruleIDs, m.String("SecurityGroupRuleId")), append(updates, u)
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.ModifySecurityGroupRules(ctx, req.Caller.AccountID, p.String("GroupId"), ruleIDs, updates); err != nil {
		return nil, err
	}
	return ok()
}

// sgGroupRef is the group a rule change names: GroupId, else GroupName
// where AWS accepts it (ingress only: egress calls must name the group by
// id). A GroupName that is an id (no name may begin with "sg-") is taken as
// one: euca2ools 3.x takes only an 8-digit id for one and sends a
// 17-digit id, this cloud's kind, as the name.
func sgGroupRef(p queryapi.Params, egress bool) (groupID, groupName string) {
	groupID, groupName = p.String("GroupId"), p.String("GroupName")
	if groupID == "" && sgLooksLikeID(groupName) {
		return groupName, ""
	}
	if egress {
		return groupID, ""
	}
	return groupID, groupName
}

func sgLooksLikeID(name string) bool { return strings.HasPrefix(name, "sg-") }

// sgEucalyptusVersion is the first API version read as AWS reads it. A
// request of an older version (euca2ools 3.x sends 2014-06-15, boto 2
// 2014-10-01) is read as Eucalyptus read it: a permission that names
// source groups grants to those groups only, and its IP ranges are
// ignored. euca2ools' `euca-authorize -o GROUP -u ACCOUNT` sends, beside
// the group, the CIDR 0.0.0.0/0 it defaults to; read as AWS reads it, that
// would open the port to the world.
const sgEucalyptusVersion = "2016-11-15"

func sgEucalyptusRequest(p queryapi.Params) bool {
	v := p.String("Version")
	return v != "" && v < sgEucalyptusVersion
}

// sgDecodePermissions reads both forms a request may state rules in: the
// flat legacy parameters and IpPermissions.N.
func sgDecodePermissions(p queryapi.Params) ([]store.IPPermission, error) {
	var out []store.IPPermission
	flat := false
	for _, k := range []string{"IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName", "SourceSecurityGroupOwnerId"} {
		if p.String(k) != "" {
			flat = true
		}
	}
	if flat {
		perm := store.IPPermission{Protocol: p.String("IpProtocol")}
		var err error
		if perm.FromPort, err = sgPort(p, "FromPort"); err != nil {
			return nil, err
		}
		if perm.ToPort, err = sgPort(p, "ToPort"); err != nil {
			return nil, err
		}
		cidr, src := p.String("CidrIp"), p.String("SourceSecurityGroupName")
		if cidr != "" && src != "" {
			return nil, awserr.New("InvalidParameterCombination", "You may not specify both a CIDR IP and a source security group.")
		}
		if cidr != "" {
			perm.IPv4Ranges = []store.PermissionCIDR{{CIDR: cidr}}
		}
		if src != "" {
			pair := store.PermissionGroup{UserID: p.String("SourceSecurityGroupOwnerId")}
			if sgLooksLikeID(src) {
				pair.GroupID = src
			} else {
				pair.GroupName = src
			}
			perm.Groups = []store.PermissionGroup{pair}
			if perm.Protocol == "" {
				// A source group alone grants everything from it, as AWS
				// reads the legacy form in a VPC.
				perm.Protocol = "-1"
			}
		}
		out = append(out, perm)
	}
	for i, m := range p.Members("IpPermissions") {
		prefix := "IpPermissions." + strconv.Itoa(i+1) + "."
		perm, err := sgPermissionBase(m, prefix)
		if err != nil {
			return nil, err
		}
		for _, r := range m.Members("IpRanges") {
			perm.IPv4Ranges = append(perm.IPv4Ranges, store.PermissionCIDR{CIDR: r.String("CidrIp"), Description: r.String("Description")})
		}
		for _, r := range m.Members("Ipv6Ranges") {
			perm.IPv6Ranges = append(perm.IPv6Ranges, store.PermissionCIDR{CIDR: r.String("CidrIpv6"), Description: r.String("Description")})
		}
		// botocore sends UserIdGroupPairs under their locationName, Groups;
		// the member name is accepted too, for hand-written requests.
		for _, key := range []string{"Groups", "UserIdGroupPairs"} {
			for _, g := range m.Members(key) {
				pair := store.PermissionGroup{
					UserID: g.String("UserId"), GroupID: g.String("GroupId"), GroupName: g.String("GroupName"), Description: g.String("Description"),
				}
				if pair.GroupID == "" && sgLooksLikeID(pair.GroupName) {
					pair.GroupID, pair.GroupName = pair.GroupName, ""
				}
				perm.Groups = append(perm.Groups, pair)
			}
		}
		if len(perm.Groups) > 0 && sgEucalyptusRequest(p) {
			perm.IPv4Ranges, perm.IPv6Ranges = nil, nil
		}
		for _, pl := range m.Members("PrefixListIds") {
			perm.PrefixLists = append(perm.PrefixLists, store.PermissionPrefixList{ID: pl.String("PrefixListId"), Description: pl.String("Description")})
		}
		out = append(out, perm)
	}
	return out, nil
}

// sgPermissionBase is a permission's protocol and ports, as m (an
// IpPermission or a SecurityGroupRuleRequest, at prefix) states them.
func sgPermissionBase(m queryapi.Params, prefix string) (store.IPPermission, error) {
	perm := store.IPPermission{Protocol: m.String("IpProtocol")}
	var err error
	if perm.FromPort, err = sgPort(m, "FromPort"); err != nil {
		return perm, sgPrefixed(err, prefix)
	}
	if perm.ToPort, err = sgPort(m, "ToPort"); err != nil {
		return perm, sgPrefixed(err, prefix)
	}
	return perm, nil
}

func sgPort(p queryapi.Params, name string) (*int, error) {
	n, ok, err := p.Int(name)
	if err != nil || !ok {
		return nil, err
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return nil, awserr.InvalidParameterValue("Value (%d) for parameter %s is invalid. Expected an integer.", n, name)
	}
	v := int(n)
	return &v, nil
}

// sgPrefixed names a member's parameter by its full name in the message.
func sgPrefixed(err error, prefix string) error {
	if e, ok := awserr.As(err); ok {
		c := *e
		c.Message = strings.Replace(c.Message, "parameter ", "parameter "+prefix, 1)
		return &c
	}
	return err
}

// sgTagSpecs reads TagSpecification.N, which may only tag resourceType.
func sgTagSpecs(p queryapi.Params, resourceType string) ([]store.Tag, error) {
	var out []store.Tag
	for _, spec := range p.TagSpecifications() {
		if spec.ResourceType == "" {
			return nil, awserr.MissingParameter("TagSpecification.ResourceType")
		}
		if spec.ResourceType != resourceType {
			return nil, awserr.InvalidParameterValue("'%s' is not a valid taggable resource type for this operation.", spec.ResourceType)
		}
		for _, t := range spec.Tags {
			switch {
			case t.Key == "":
				return nil, awserr.InvalidParameterValue("Tag keys must not be empty.")
			case len([]rune(t.Key)) > 128:
				return nil, awserr.InvalidParameterValue("Tag key exceeds the maximum length of 128 characters")
			case len([]rune(t.Value)) > 256:
				return nil, awserr.InvalidParameterValue("Tag value exceeds the maximum length of 256 characters")
			case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
				return nil, awserr.InvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
			}
			out = append(out, store.Tag{Key: t.Key, Value: t.Value})
		}
	}
	if len(out) > store.MaxTags {
		return nil, awserr.New("TagLimitExceeded", "The maximum number of tags (%d) per resource has been reached.", store.MaxTags)
	}
	return out, nil
}

// sgTags is a tagSet that is left out when there are no tags, as AWS
// leaves it out of a group's answer. (A nil pointer is the only way to have
// encoding/xml leave out a list's wrapper element.)
func sgTags(tags []store.Tag) *setOf[tagItem] {
	if len(tags) == 0 {
		return nil
	}
	return &setOf[tagItem]{Items: tagItems(tags)}
}

func sgARN(region, accountID, kind, id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:%s/%s", region, accountID, kind, id)
}

// sgHasPorts reports whether a protocol's rules carry ports in IpPermission
// answers (AWS leaves them out for "-1" and other numbered protocols).
func sgHasPorts(proto string) bool {
	switch proto {
	case "tcp", "udp", "icmp", "icmpv6":
		return true
	}
	return false
}

// sgPermissions groups rules back into IpPermissions: one per (protocol,
// ports), its peers in the order the rules were made.
func sgPermissions(rules []store.SecurityGroupRule) setOf[sgPermissionItem] {
	type key struct {
		proto    string
		from, to int
	}
	var out setOf[sgPermissionItem]
	index := map[key]int{}
	for _, r := range rules {
		k := key{r.Protocol, r.FromPort, r.ToPort}
		i, ok := index[k]
		if !ok {
			item := sgPermissionItem{IPProtocol: r.Protocol}
			if sgHasPorts(r.Protocol) {
				from, to := r.FromPort, r.ToPort
				item.FromPort, item.ToPort = &from, &to
			}
			i = len(out.Items)
			index[k] = i
			out.Items = append(out.Items, item)
		}
		it := &out.Items[i]
		switch {
		case r.CIDRIPv4 != "":
			it.IPRanges.Items = append(it.IPRanges.Items, sgIPRangeItem{CidrIP: r.CIDRIPv4, Description: r.Description})
		case r.CIDRIPv6 != "":
			it.IPv6Ranges.Items = append(it.IPv6Ranges.Items, sgIPv6RangeItem{CidrIPv6: r.CIDRIPv6, Description: r.Description})
		case r.PeerGroupID != "":
			it.Groups.Items = append(it.Groups.Items, sgGroupPairItem{UserID: r.PeerOwnerID, GroupID: r.PeerGroupID, Description: r.Description})
		case r.PrefixListID != "":
			it.PrefixListIDs.Items = append(it.PrefixListIDs.Items, sgPrefixListItem{PrefixListID: r.PrefixListID, Description: r.Description})
		}
	}
	return out
}

func sgRuleItems(region string, rules []store.SecurityGroupRule) setOf[sgRuleItem] {
	var out setOf[sgRuleItem]
	for _, r := range rules {
		item := sgRuleItem{
			ID: r.ID, GroupID: r.GroupID, GroupOwnerID: r.GroupOwnerID, IsEgress: r.Egress, IPProtocol: r.Protocol,
			FromPort: r.FromPort, ToPort: r.ToPort, CidrIPv4: r.CIDRIPv4, CidrIPv6: r.CIDRIPv6, PrefixListID: r.PrefixListID,
			Description: r.Description, Tags: setOf[tagItem]{Items: tagItems(r.Tags)},
			ARN: sgARN(region, r.GroupOwnerID, "security-group-rule", r.ID),
		}
		if r.PeerGroupID != "" {
			item.Referenced = &sgReferencedItem{GroupID: r.PeerGroupID, UserID: r.PeerOwnerID}
		}
		out.Items = append(out.Items, item)
	}
	return out
}

// sgRuleValues collects one value of each rule of a direction, for the
// ip-permission.* and egress.ip-permission.* filters.
func sgRuleValues(egress bool, f func(store.SecurityGroupRule) string) func(store.SecurityGroup) []string {
	return func(g store.SecurityGroup) []string {
		var out []string
		for _, r := range g.Rules {
			if r.Egress == egress {
				if v := f(r); v != "" {
					out = append(out, v)
				}
			}
		}
		return out
	}
}

func sgPortValue(port func(store.SecurityGroupRule) int) func(store.SecurityGroupRule) string {
	return func(r store.SecurityGroupRule) string {
		if !sgHasPorts(r.Protocol) {
			return ""
		}
		return strconv.Itoa(port(r))
	}
}

// sgGroupFilters are DescribeSecurityGroups' filters (besides the tag ones).
var sgGroupFilters = func() filterFields[store.SecurityGroup] {
	f := filterFields[store.SecurityGroup]{
		"description": func(g store.SecurityGroup) []string { return []string{g.Description} },
		"group-id":    func(g store.SecurityGroup) []string { return []string{g.ID} },
		"group-name":  func(g store.SecurityGroup) []string { return []string{g.Name} },
		"owner-id":    func(g store.SecurityGroup) []string { return []string{g.AccountID} },
		"vpc-id":      func(g store.SecurityGroup) []string { return []string{g.VPCID} },
	}
	perRule := map[string]func(store.SecurityGroupRule) string{
		"cidr":           func(r store.SecurityGroupRule) string { return r.CIDRIPv4 },
		"ipv6-cidr":      func(r store.SecurityGroupRule) string { return r.CIDRIPv6 },
		"from-port":      sgPortValue(func(r store.SecurityGroupRule) int { return r.FromPort }),
		"to-port":        sgPortValue(func(r store.SecurityGroupRule) int { return r.ToPort }),
		"group-id":       func(r store.SecurityGroupRule) string { return r.PeerGroupID },
		"group-name":     func(r store.SecurityGroupRule) string { return r.PeerGroupName },
		"user-id":        func(r store.SecurityGroupRule) string { return r.PeerOwnerID },
		"prefix-list-id": func(r store.SecurityGroupRule) string { return r.PrefixListID },
		"protocol":       func(r store.SecurityGroupRule) string { return r.Protocol },
	}
	for name, get := range perRule {
		f["ip-permission."+name] = sgRuleValues(false, get)
		f["egress.ip-permission."+name] = sgRuleValues(true, get)
	}
	return f
}()

// sgRuleFilters are DescribeSecurityGroupRules' filters (besides the tag ones).
var sgRuleFilters = filterFields[store.SecurityGroupRule]{
	"group-id":               func(r store.SecurityGroupRule) []string { return []string{r.GroupID} },
	"security-group-rule-id": func(r store.SecurityGroupRule) []string { return []string{r.ID} },
}
