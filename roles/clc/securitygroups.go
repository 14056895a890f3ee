package clc

// Security groups as today's AWS has them: every group belongs to a VPC
// (a group made without VpcId lands in the account's default VPC), starts
// with the allow-all egress rule, and holds one rule per (direction,
// protocol, ports, peer), AWS's SecurityGroupRule with its sgr- id. Every
// check that decides an AWS error code lives here; ec2api only decodes.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/store"
)

const (
	// DefaultSecurityGroup is the name of the group every VPC has.
	DefaultSecurityGroup = "default"
	sgDefaultDesc        = "default VPC security group"
	// sgMaxRulesPerDirection is AWS's default quota of inbound (and of
	// outbound) rules per security group.
	sgMaxRulesPerDirection = 60
	sgMaxTextLen           = 255
	sgAllProtocols         = "-1"
	sgAnyIPv4              = "0.0.0.0/0"
)

// sgMaxPerVPC is AWS's default quota of security groups per VPC (every
// account has one, its default): each group, with up to 120 rules, is
// rows of the store that DescribeSecurityGroups reads whole, so an
// account may not make them without end.
var sgMaxPerVPC = 2500

var (
	sgIDPattern           = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgRuleIDPattern       = regexp.MustCompile(`^sgr-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgVPCIDPattern        = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgPrefixListIDPattern = regexp.MustCompile(`^pl-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// sgText is the character set AWS allows in VPC group names, group
	// descriptions and rule descriptions.
	sgText = regexp.MustCompile(`^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$`)
)

const sgTextChars = "a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"

// ensureDefaultSecurityGroup gives a VPC its "default" group: members may
// talk to each other, and anything may go out. Harmless to run twice.
func (c *Cloud) ensureDefaultSecurityGroup(ctx context.Context, accountID, vpcID string) error {
	_, err := c.store.SecurityGroupByName(ctx, accountID, vpcID, DefaultSecurityGroup)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("default security group of %s: %w", vpcID, err)
	}
	id := ids.New("sg")
	g := store.SecurityGroup{
		ID: id, AccountID: accountID, VPCID: vpcID, Name: DefaultSecurityGroup, Description: sgDefaultDesc,
		Rules: []store.SecurityGroupRule{
			{ID: ids.New("sgr"), Protocol: sgAllProtocols, FromPort: -1, ToPort: -1, PeerGroupID: id, PeerOwnerID: accountID},
			sgAllowAllEgress(),
		},
	}
	err = c.store.CreateSecurityGroup(ctx, g)
	if errors.Is(err, store.ErrConflict) { // made meanwhile by another start
		return nil
	}
	if err != nil {
		return fmt.Errorf("default security group of %s: %w", vpcID, err)
	}
	return nil
}

// sgAllowAllEgress is the rule every new group starts with, as in AWS.
func sgAllowAllEgress() store.SecurityGroupRule {
	return store.SecurityGroupRule{ID: ids.New("sgr"), Egress: true, Protocol: sgAllProtocols, FromPort: -1, ToPort: -1, CIDRIPv4: sgAnyIPv4}
}

// groupInUse reports whether something other than a rule still uses the
// group, which makes DeleteSecurityGroup answer DependencyViolation: an
// instance that is not terminated is in it (its network interface is).
func (c *Cloud) groupInUse(ctx context.Context, accountID, groupID string) (bool, error) {
	return c.store.GroupInUse(ctx, groupID)
}

// prefixListExists reports whether a managed prefix list exists for the
// account. The cloud has none yet, so a rule naming one is refused.
func (c *Cloud) prefixListExists(ctx context.Context, accountID, id string) (bool, error) {
	return false, nil
}

// CreateSecurityGroup makes a group in vpcID, or in the account's default
// VPC when vpcID is empty, with the allow-all egress rule and tags.
func (c *Cloud) CreateSecurityGroup(ctx context.Context, accountID, name, description, vpcID string, tags []store.Tag) (store.SecurityGroup, error) {
	if name == "" {
		return store.SecurityGroup{}, awserr.MissingParameter("GroupName")
	}
	if description == "" {
		return store.SecurityGroup{}, awserr.MissingParameter("GroupDescription")
	}
	if err := sgCheckText("GroupName", name); err != nil {
		return store.SecurityGroup{}, err
	}
	if err := sgCheckText("GroupDescription", description); err != nil {
		return store.SecurityGroup{}, err
	}
	if strings.HasPrefix(strings.ToLower(name), "sg-") {
		return store.SecurityGroup{}, awserr.InvalidParameterValue("Group names may not be in the format sg-*.")
	}
	if strings.EqualFold(name, DefaultSecurityGroup) {
		return store.SecurityGroup{}, awserr.New("InvalidGroup.Reserved", "The security group name 'default' is reserved.")
	}
	if vpcID == "" {
		v, err := c.store.DefaultVPC(ctx, accountID)
		if errors.Is(err, store.ErrNotFound) {
			return store.SecurityGroup{}, awserr.New("VPCIdNotSpecified", "No default VPC for this user.")
		}
		if err != nil {
			return store.SecurityGroup{}, fmt.Errorf("create security group: %w", err)
		}
		vpcID = v.ID
	} else if !sgVPCIDPattern.MatchString(vpcID) {
		return store.SecurityGroup{}, awserr.New("InvalidVpcID.Malformed", "Invalid id: %q (expecting \"vpc-...\")", vpcID)
	}
	g := store.SecurityGroup{
		ID: ids.New("sg"), AccountID: accountID, VPCID: vpcID, Name: name, Description: description,
		Tags: tags, Rules: []store.SecurityGroupRule{sgAllowAllEgress()},
	}
	err := c.store.CreateSecurityGroupLimited(ctx, g, sgMaxPerVPC)
	switch {
	case errors.Is(err, store.ErrGroupLimit):
		return store.SecurityGroup{}, awserr.New("SecurityGroupLimitExceeded",
			"You have reached the maximum number of security groups (%d) for VPC '%s'.", sgMaxPerVPC, vpcID).WithCause(err)
	case errors.Is(err, store.ErrNotFound):
		return store.SecurityGroup{}, awserr.New("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpcID)
	case errors.Is(err, store.ErrConflict):
		return store.SecurityGroup{}, awserr.New("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpcID)
	case errors.Is(err, store.ErrTagLimit):
		return store.SecurityGroup{}, sgTagLimit(err)
	case err != nil:
		return store.SecurityGroup{}, fmt.Errorf("create security group: %w", err)
	}
	return c.store.SecurityGroup(ctx, accountID, g.ID)
}

func sgCheckText(param, v string) error {
	if len(v) > sgMaxTextLen {
		return awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. Length exceeds maximum of %d.", v, param, sgMaxTextLen)
	}
	if !sgText.MatchString(v) {
		return awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. Valid characters are %s", v, param, sgTextChars)
	}
	return nil
}

func sgTagLimit(cause error) error {
	return awserr.New("TagLimitExceeded", "The maximum number of tags (%d) per resource has been reached.", store.MaxTags).WithCause(cause)
}

// DeleteSecurityGroup deletes a group named by id, or by name in the
// default VPC, and returns its id. The default group cannot go, nor a group
// another group's rule references or something still uses.
func (c *Cloud) DeleteSecurityGroup(ctx context.Context, accountID, groupID, groupName string) (string, error) {
	g, err := c.securityGroupByRef(ctx, accountID, groupID, groupName, true)
	if err != nil {
		return "", err
	}
	if g.Name == DefaultSecurityGroup {
		return "", awserr.New("CannotDelete", "the specified group: %q name: %q cannot be deleted by a user", g.ID, g.Name)
	}
	inUse, err := c.groupInUse(ctx, accountID, g.ID)
	if err != nil {
		return "", fmt.Errorf("delete security group %s: %w", g.ID, err)
	}
	if inUse {
		return "", sgDependencyViolation(g.ID, nil)
	}
	err = c.store.DeleteSecurityGroup(ctx, accountID, g.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", sgNotFound(g.ID)
	case errors.Is(err, store.ErrConflict):
		return "", sgDependencyViolation(g.ID, err)
	case err != nil:
		return "", fmt.Errorf("delete security group %s: %w", g.ID, err)
	}
	c.groupsChanged(ctx)
	return g.ID, nil
}

func sgDependencyViolation(id string, cause error) error {
	e := awserr.New("DependencyViolation", "resource %s has a dependent object", id)
	if cause != nil {
		return e.WithCause(cause)
	}
	return e
}

func sgNotFound(id string) *awserr.Error {
	return awserr.New("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
}

func sgNameNotFound(name, vpcID string) *awserr.Error {
	return awserr.New("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", name, vpcID)
}

func sgCheckID(id string) error {
	if !sgIDPattern.MatchString(id) {
		return awserr.New("InvalidGroupId.Malformed", "Invalid id: %q (expecting \"sg-...\")", id)
	}
	return nil
}

// securityGroupByRef finds the caller's group by id or, where allowed, by name in
// the default VPC (AWS accepts names only there).
func (c *Cloud) securityGroupByRef(ctx context.Context, accountID, groupID, groupName string, nameOK bool) (store.SecurityGroup, error) {
	if groupID != "" {
		if err := sgCheckID(groupID); err != nil {
			return store.SecurityGroup{}, err
		}
		g, err := c.store.SecurityGroup(ctx, accountID, groupID)
		if errors.Is(err, store.ErrNotFound) {
			return g, sgNotFound(groupID)
		}
		if err != nil {
			return g, fmt.Errorf("security group %s: %w", groupID, err)
		}
		return g, nil
	}
	if groupName == "" || !nameOK {
		if nameOK {
			return store.SecurityGroup{}, awserr.New("MissingParameter", "The request must contain the parameter groupName or groupId")
		}
		return store.SecurityGroup{}, awserr.MissingParameter("GroupId")
	}
	return c.securityGroupByName(ctx, accountID, groupName)
}

func (c *Cloud) securityGroupByName(ctx context.Context, accountID, name string) (store.SecurityGroup, error) {
	vpc, err := c.store.DefaultVPC(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		return store.SecurityGroup{}, sgNameNotFound(name, "none")
	}
	if err != nil {
		return store.SecurityGroup{}, fmt.Errorf("security group %s: %w", name, err)
	}
	g, err := c.store.SecurityGroupByName(ctx, accountID, vpc.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return g, sgNameNotFound(name, vpc.ID)
	}
	if err != nil {
		return g, fmt.Errorf("security group %s: %w", name, err)
	}
	return g, nil
}

// DescribeSecurityGroups lists the caller's groups; with ids or names (names
// resolve in the default VPC) only those, every one of which must exist.
func (c *Cloud) DescribeSecurityGroups(ctx context.Context, accountID string, groupIDs, groupNames []string) ([]store.SecurityGroup, error) {
	for _, id := range groupIDs {
		if err := sgCheckID(id); err != nil {
			return nil, err
		}
	}
	all, err := c.store.SecurityGroups(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("describe security groups: %w", err)
	}
	if len(groupIDs) == 0 && len(groupNames) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	byID := map[string]bool{}
	for _, g := range all {
		byID[g.ID] = true
	}
	var missing []string
	for _, id := range groupIDs {
		if !byID[id] {
			missing = append(missing, id)
		}
		want[id] = true
	}
	if len(missing) > 0 {
		return nil, sgNotFound(strings.Join(missing, ", "))
	}
	if len(groupNames) > 0 {
		vpc, err := c.store.DefaultVPC(ctx, accountID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("describe security groups: %w", err)
		}
		for _, name := range groupNames {
			found := false
			for _, g := range all {
				if g.VPCID == vpc.ID && strings.EqualFold(g.Name, name) {
					want[g.ID], found = true, true
				}
			}
			if !found {
				vid := vpc.ID
				if vid == "" {
					vid = "none"
				}
				return nil, sgNameNotFound(name, vid)
			}
		}
	}
	var out []store.SecurityGroup
	for _, g := range all {
		if want[g.ID] {
			out = append(out, g)
		}
	}
	return out, nil
}

// DescribeSecurityGroupRules lists the rules of the caller's groups; with
// ids only those, every one of which must exist.
func (c *Cloud) DescribeSecurityGroupRules(ctx context.Context, accountID string, ruleIDs []string) ([]store.SecurityGroupRule, error) {
	for _, id := range ruleIDs {
		if !sgRuleIDPattern.MatchString(id) {
			return nil, sgRuleIDMalformed(id)
		}
	}
	var only []string
	if len(ruleIDs) > 0 {
		only = ruleIDs
	}
	rules, err := c.store.SecurityGroupRules(ctx, accountID, only)
	if err != nil {
		return nil, fmt.Errorf("describe security group rules: %w", err)
	}
	if len(ruleIDs) > 0 {
		have := map[string]bool{}
		for _, r := range rules {
			have[r.ID] = true
		}
		for _, id := range ruleIDs {
			if !have[id] {
				return nil, sgRuleNotFound(id)
			}
		}
	}
	return rules, nil
}

func sgRuleIDMalformed(id string) error {
	return awserr.New("InvalidSecurityGroupRuleId.Malformed", "Invalid id: %q (expecting \"sgr-...\")", id)
}

func sgRuleNotFound(id string) error {
	return awserr.New("InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist", id)
}

// AuthorizeSecurityGroupRules adds ingress (or egress) rules to a group
// addressed by id or, for ingress, by name in the default VPC. The whole
// request is refused, and nothing stored, when any rule is invalid or
// exists already. It returns the rules made, one per peer.
func (c *Cloud) AuthorizeSecurityGroupRules(ctx context.Context, accountID, groupID, groupName string, egress bool, perms []store.IPPermission, tags []store.Tag) ([]store.SecurityGroupRule, error) {
	g, err := c.securityGroupByRef(ctx, accountID, groupID, groupName, !egress)
	if err != nil {
		return nil, err
	}
	if len(perms) == 0 {
		return nil, awserr.MissingParameter("IpPermissions")
	}
	rules, err := c.sgExpand(ctx, accountID, g, egress, perms, true)
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		// A permission without any peer grants nothing; AWS answers such a
		// request with success and stores nothing.
		return nil, nil
	}
	for i := range rules {
		rules[i].Tags = tags
		for j := range i {
			if rules[j].SameRule(rules[i]) {
				return nil, sgDuplicateRule(rules[i])
			}
		}
		for _, have := range g.Rules {
			if have.SameRule(rules[i]) {
				return nil, sgDuplicateRule(rules[i])
			}
		}
	}
	err = c.store.AddSecurityGroupRules(ctx, accountID, g.ID, rules, sgMaxRulesPerDirection)
	var dup *store.RuleConflictError
	switch {
	case errors.As(err, &dup) && dup.Index < len(rules):
		return nil, sgDuplicateRule(rules[dup.Index])
	case errors.Is(err, store.ErrNotFound):
		// The group, or a peer, was deleted since it was looked up.
		return nil, awserr.New("InvalidGroup.NotFound", "The security group does not exist").WithCause(err)
	case errors.Is(err, store.ErrRuleLimit):
		return nil, awserr.New("RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per security group has been reached.").WithCause(err)
	case errors.Is(err, store.ErrTagLimit):
		return nil, sgTagLimit(err)
	case err != nil:
		return nil, fmt.Errorf("authorize %s: %w", g.ID, err)
	}
	c.groupsChanged(ctx)
	made := make([]string, len(rules))
	for i, r := range rules {
		made[i] = r.ID
	}
	return c.store.SecurityGroupRules(ctx, accountID, made)
}

func sgDuplicateRule(r store.SecurityGroupRule) error {
	return awserr.New("InvalidPermission.Duplicate", "the specified rule %q already exists", sgRuleText(r))
}

// sgRuleText renders a rule the way EC2's error messages do.
func sgRuleText(r store.SecurityGroupRule) string {
	peer := r.CIDRIPv4 + r.CIDRIPv6 + r.PeerGroupID + r.PrefixListID
	proto := strings.ToUpper(r.Protocol)
	if r.Protocol == sgAllProtocols {
		return fmt.Sprintf("peer: %s, ALL, ALLOW", peer)
	}
	if r.FromPort == -1 && r.ToPort == -1 {
		return fmt.Sprintf("peer: %s, %s, ALLOW", peer, proto)
	}
	return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, proto, r.FromPort, r.ToPort)
}

// sgRevokeUnknownIsError is AWS's rule for permissions that match no rule of
// the group: in a default VPC the request succeeds and reports them as
// unknown; elsewhere it fails with InvalidPermission.NotFound and revokes
// nothing.
func sgRevokeUnknownIsError(groupInDefaultVPC bool) bool { return !groupInDefaultVPC }

// RevokeSecurityGroupRules removes rules from a group, named by rule id or
// by their properties (descriptions are not compared). It returns the rules
// removed and, in a default VPC, the requested ones that matched nothing.
func (c *Cloud) RevokeSecurityGroupRules(ctx context.Context, accountID, groupID, groupName string, egress bool, perms []store.IPPermission, ruleIDs []string) (revoked, unknown []store.SecurityGroupRule, err error) {
	g, err := c.securityGroupByRef(ctx, accountID, groupID, groupName, !egress)
	if err != nil {
		return nil, nil, err
	}
	if len(perms) == 0 && len(ruleIDs) == 0 {
		return nil, nil, awserr.MissingParameter("IpPermissions")
	}
	seen := map[string]bool{}
	for _, id := range ruleIDs {
		if !sgRuleIDPattern.MatchString(id) {
			return nil, nil, sgRuleIDMalformed(id)
		}
		found := false
		for _, r := range g.Rules {
			if r.ID == id && r.Egress == egress {
				found = true
				if !seen[id] {
					seen[id] = true
					revoked = append(revoked, r)
				}
			}
		}
		if !found {
			return nil, nil, sgRuleNotFound(id)
		}
	}
	wanted, err := c.sgExpand(ctx, accountID, g, egress, perms, false)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range wanted {
		matched := false
		for _, r := range g.Rules {
			if r.SameRule(w) {
				matched = true
				if !seen[r.ID] {
					seen[r.ID] = true
					revoked = append(revoked, r)
				}
			}
		}
		if !matched {
			unknown = append(unknown, w)
		}
	}
	if len(unknown) > 0 {
		def, err := c.store.DefaultVPC(ctx, accountID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("revoke %s: %w", g.ID, err)
		}
		if sgRevokeUnknownIsError(err == nil && def.ID == g.VPCID) {
			return nil, nil, awserr.New("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
		}
	}
	if len(revoked) == 0 {
		return nil, unknown, nil
	}
	rm := make([]string, len(revoked))
	for i, r := range revoked {
		rm[i] = r.ID
	}
	err = c.store.DeleteSecurityGroupRules(ctx, accountID, g.ID, rm)
	if errors.Is(err, store.ErrNotFound) {
		// Revoked (or the group deleted) by another request meanwhile.
		return nil, nil, awserr.New("InvalidPermission.NotFound", "The specified rule does not exist in this security group.").WithCause(err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("revoke %s: %w", g.ID, err)
	}
	c.groupsChanged(ctx)
	return revoked, unknown, nil
}

// sgExpand checks the permissions of a request and turns each peer
// into one rule of group g, normalised as AWS stores it: protocol names for
// 1, 6, 17 and 58, "-1" for all, ports -1 where the protocol has none, CIDRs
// masked to their network address (AWS accepts 10.0.0.1/8 and keeps
// 10.0.0.0/8). Descriptions are checked only when authorizing (forAdd).
func (c *Cloud) sgExpand(ctx context.Context, accountID string, g store.SecurityGroup, egress bool, perms []store.IPPermission, forAdd bool) ([]store.SecurityGroupRule, error) {
	var out []store.SecurityGroupRule
	for _, p := range perms {
		proto, err := sgProtocol(p.Protocol)
		if err != nil {
			return nil, err
		}
		from, to, err := sgPorts(proto, p.FromPort, p.ToPort)
		if err != nil {
			return nil, err
		}
		base := store.SecurityGroupRule{GroupID: g.ID, GroupOwnerID: accountID, Egress: egress, Protocol: proto, FromPort: from, ToPort: to}
		checkDesc := func(d string) error {
			if !forAdd {
				return nil
			}
			return sgCheckRuleDescription(d)
		}
		for _, r := range p.IPv4Ranges {
			cidr, err := sgCIDR(r.CIDR, false)
			if err != nil {
				return nil, err
			}
			if err := checkDesc(r.Description); err != nil {
				return nil, err
			}
			rule := base
			rule.CIDRIPv4, rule.Description = cidr, r.Description
			out = append(out, rule)
		}
		for _, r := range p.IPv6Ranges {
			cidr, err := sgCIDR(r.CIDR, true)
			if err != nil {
				return nil, err
			}
			if err := checkDesc(r.Description); err != nil {
				return nil, err
			}
			rule := base
			rule.CIDRIPv6, rule.Description = cidr, r.Description
			out = append(out, rule)
		}
		for _, pg := range p.Groups {
			peer, err := c.sgPeer(ctx, accountID, g, pg)
			if err != nil {
				return nil, err
			}
			if err := checkDesc(pg.Description); err != nil {
				return nil, err
			}
			rule := base
			rule.PeerGroupID, rule.PeerOwnerID, rule.PeerGroupName, rule.Description = peer.ID, peer.AccountID, peer.Name, pg.Description
			out = append(out, rule)
		}
		for _, pl := range p.PrefixLists {
			if !sgPrefixListIDPattern.MatchString(pl.ID) {
				return nil, awserr.New("InvalidPrefixListId.Malformed", "Invalid id: %q (expecting \"pl-...\")", pl.ID)
			}
			ok, err := c.prefixListExists(ctx, accountID, pl.ID)
			if err != nil {
				return nil, fmt.Errorf("prefix list %s: %w", pl.ID, err)
			}
			if !ok {
				return nil, awserr.New("InvalidPrefixListId.NotFound", "The prefix list ID '%s' does not exist", pl.ID)
			}
			if err := checkDesc(pl.Description); err != nil {
				return nil, err
			}
			rule := base
			rule.PrefixListID, rule.Description = pl.ID, pl.Description
			out = append(out, rule)
		}
	}
	for i := range out {
		out[i].ID = ids.New("sgr")
	}
	return out, nil
}

// sgPeer resolves a rule's source or destination group: by id among the
// caller's groups, or by name in the default VPC. Another account's group
// (UserId with GroupId, or with GroupName in that account's default VPC,
// as EC2-classic wrote it) is resolved in that account: its members are
// then the rule's peers wherever they run in the zone.
func (c *Cloud) sgPeer(ctx context.Context, accountID string, self store.SecurityGroup, pg store.PermissionGroup) (store.SecurityGroup, error) {
	if pg.UserID != "" && pg.UserID != accountID {
		if pg.GroupID == "" && pg.GroupName == "" {
			return store.SecurityGroup{}, awserr.New("MissingParameter", "The request must contain the parameter groupId or groupName of a UserIdGroupPair")
		}
		return c.securityGroupByRef(ctx, pg.UserID, pg.GroupID, pg.GroupName, true)
	}
	switch {
	case pg.GroupID == self.ID, pg.GroupID == "" && pg.GroupName != "" && strings.EqualFold(pg.GroupName, self.Name) && c.sgInDefaultVPC(ctx, accountID, self):
		return self, nil
	case pg.GroupID != "":
		return c.securityGroupByRef(ctx, accountID, pg.GroupID, "", false)
	case pg.GroupName != "":
		return c.securityGroupByName(ctx, accountID, pg.GroupName)
	}
	return store.SecurityGroup{}, awserr.New("MissingParameter", "The request must contain the parameter groupId or groupName of a UserIdGroupPair")
}

func (c *Cloud) sgInDefaultVPC(ctx context.Context, accountID string, g store.SecurityGroup) bool {
	v, err := c.store.DefaultVPC(ctx, accountID)
	return err == nil && v.ID == g.VPCID
}

// sgProtocol turns a requested protocol into the form AWS stores:
// lower-case names, the names of the numbered protocols that have one, "-1"
// for all (the CLI's "all" too), other numbers 0-255 as plain decimals.
func sgProtocol(p string) (string, error) {
	if p == "" {
		return "", awserr.MissingParameter("IpProtocol")
	}
	switch lp := strings.ToLower(p); lp {
	case "tcp", "udp", "icmp", "icmpv6":
		return lp, nil
	case "-1", "all":
		return sgAllProtocols, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return "", awserr.InvalidParameterValue("Invalid value '%s' for IP protocol. Unknown protocol.", p)
	}
	switch n {
	case 1:
		return "icmp", nil
	case 6:
		return "tcp", nil
	case 17:
		return "udp", nil
	case 58:
		return "icmpv6", nil
	}
	return strconv.Itoa(n), nil
}

// sgPorts checks a port range the way EC2 does and returns what is
// stored: tcp/udp need both ports (-1 for both means all, 0-65535); icmp
// needs a type and code (-1 for all); icmpv6 may omit them; every other
// protocol has no ports, whatever was sent.
func sgPorts(proto string, fromP, toP *int) (int, int, error) {
	switch proto {
	case "tcp", "udp":
		if fromP == nil || toP == nil {
			return 0, 0, awserr.InvalidParameterValue("Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange.")
		}
		from, to := *fromP, *toP
		if from == -1 && to == -1 {
			return 0, 65535, nil
		}
		for _, port := range []int{from, to} {
			if port < 0 || port > 65535 {
				return 0, 0, awserr.New("InvalidPermission.Malformed", "TCP/UDP port (%d) out of range", port)
			}
		}
		if from > to {
			return 0, 0, awserr.InvalidParameterValue("Invalid TCP/UDP port range: from port %d is greater than to port %d.", from, to)
		}
		return from, to, nil
	case "icmp", "icmpv6":
		if fromP == nil || toP == nil {
			if proto == "icmpv6" && fromP == nil && toP == nil {
				return -1, -1, nil
			}
			return 0, 0, awserr.InvalidParameterValue("Invalid value 'Must specify both from and to ports with ICMP.' for portRange.")
		}
		typ, code := *fromP, *toP
		if typ < -1 || typ > 255 {
			return 0, 0, awserr.InvalidParameterValue("ICMP type (%d) out of range", typ)
		}
		if code < -1 || code > 255 {
			return 0, 0, awserr.InvalidParameterValue("ICMP code (%d) out of range", code)
		}
		if typ == -1 && code != -1 {
			return 0, 0, awserr.InvalidParameterValue("Invalid ICMP code (%d): the code must be -1 when the type is -1 (all types).", code)
		}
		return typ, code, nil
	}
	return -1, -1, nil
}

// sgCIDR parses a rule's CIDR and masks it to its network address,
// as AWS does.
func sgCIDR(s string, v6 bool) (string, error) {
	param, kind := "cidrIp", "CIDR block"
	if v6 {
		param, kind = "cidrIpv6", "IPv6 CIDR block"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4() == v6 || p.Addr().Is4In6() {
		return "", awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. This is not a valid %s.", s, param, kind)
	}
	return p.Masked().String(), nil
}

func sgCheckRuleDescription(d string) error {
	if len(d) > sgMaxTextLen || !sgText.MatchString(d) {
		return awserr.InvalidParameterValue("Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  %s", sgTextChars)
	}
	return nil
}
