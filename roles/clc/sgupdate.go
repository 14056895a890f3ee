package clc

import (
	"context"
	"errors"
	"fmt"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
)

// Rules changed in place: UpdateSecurityGroupRuleDescriptions{Ingress,Egress}
// and ModifySecurityGroupRules. Terraform's AWS provider calls the first
// when a rule's description changes (aws_security_group and
// aws_security_group_rule) and the second for any change of an
// aws_vpc_security_group_{ingress,egress}_rule; a cloud without them leaves
// such a plan failing forever. A rule keeps its id and tags through either.

// UpdateSecurityGroupRuleDescriptions sets the descriptions of rules of a
// group, named by their properties (each permission's peers with the
// description each carries) or by id (ruleIDs[i] gets descriptions[i]).
// A permission that matches no rule of the group fails the whole call with
// InvalidPermission.NotFound, an id that is not the group's rule in that
// direction with InvalidSecurityGroupRuleId.NotFound.
func (c *Cloud) UpdateSecurityGroupRuleDescriptions(ctx context.Context, accountID, groupID, groupName string, egress bool,
	perms []store.IPPermission, ruleIDs, descriptions []string) error {
	g, err := c.securityGroupByRef(ctx, accountID, groupID, groupName, true)
	if err != nil {
		return err
	}
	if len(perms) == 0 && len(ruleIDs) == 0 {
		return awserr.MissingParameter("IpPermissions or SecurityGroupRuleDescriptions")
	}
	wanted, err := c.sgExpand(ctx, accountID, g, egress, perms, true)
	if err != nil {
		return err
	}
	var changed []store.SecurityGroupRule
	for _, w := range wanted {
		i := sgRuleIndex(g.Rules, func(r store.SecurityGroupRule) bool { return r.SameRule(w) })
		if i < 0 {
			return awserr.New("InvalidPermission.NotFound", "The specified rule %q does not exist in this security group.", sgRuleText(w))
		}
		r := g.Rules[i]
		r.Description = w.Description
		changed = append(changed, r)
	}
	for k, id := range ruleIDs {
		if !sgRuleIDPattern.MatchString(id) {
			return sgRuleIDMalformed(id)
		}
		i := sgRuleIndex(g.Rules, func(r store.SecurityGroupRule) bool { return r.ID == id && r.Egress == egress })
		if i < 0 {
			return sgRuleNotFound(id)
		}
		d := ""
		if k < len(descriptions) {
			d = descriptions[k]
		}
		if err := sgCheckRuleDescription(d); err != nil {
			return err
		}
		r := g.Rules[i]
		r.Description = d
		changed = append(changed, r)
	}
	if len(changed) == 0 {
		return nil
	}
	return c.sgUpdateRules(ctx, accountID, g, changed)
}

// ModifySecurityGroupRules replaces rules of a group by id: updates[i] is
// the whole new rule for ruleIDs[i] (its protocol, ports, one peer and
// description), in the rule's own direction. The network is handed the
// group's new rules at once.
func (c *Cloud) ModifySecurityGroupRules(ctx context.Context, accountID, groupID string, ruleIDs []string, updates []store.IPPermission) error {
	if groupID == "" {
		return awserr.MissingParameter("GroupId")
	}
	g, err := c.securityGroupByRef(ctx, accountID, groupID, "", false)
	if err != nil {
		return err
	}
	if len(ruleIDs) == 0 {
		return awserr.MissingParameter("SecurityGroupRule")
	}
	var changed []store.SecurityGroupRule
	for k, id := range ruleIDs {
		if !sgRuleIDPattern.MatchString(id) {
			return sgRuleIDMalformed(id)
		}
		i := sgRuleIndex(g.Rules, func(r store.SecurityGroupRule) bool { return r.ID == id })
		if i < 0 {
			return sgRuleNotFound(id)
		}
		old := g.Rules[i]
		var u store.IPPermission
		if k < len(updates) {
			u = updates[k]
		}
		if n := len(u.IPv4Ranges) + len(u.IPv6Ranges) + len(u.Groups) + len(u.PrefixLists); n != 1 {
			return awserr.InvalidParameterValue("The security group rule %s must name exactly one of CidrIpv4, CidrIpv6, PrefixListId and ReferencedGroupId.", id)
		}
		made, err := c.sgExpand(ctx, accountID, g, old.Egress, []store.IPPermission{u}, true)
		if err != nil {
			return err
		}
		r := made[0]
		r.ID, r.Tags = old.ID, old.Tags
		for j, o := range g.Rules {
			if j != i && o.SameRule(r) {
				return sgDuplicateRule(r)
			}
		}
		for _, o := range changed {
			if o.SameRule(r) {
				return sgDuplicateRule(r)
			}
		}
		changed = append(changed, r)
	}
	if err := c.sgUpdateRules(ctx, accountID, g, changed); err != nil {
		return err
	}
	c.groupsChanged(ctx)
	return nil
}

func sgRuleIndex(rules []store.SecurityGroupRule, match func(store.SecurityGroupRule) bool) int {
	for i, r := range rules {
		if match(r) {
			return i
		}
	}
	return -1
}

func (c *Cloud) sgUpdateRules(ctx context.Context, accountID string, g store.SecurityGroup, rules []store.SecurityGroupRule) error {
	err := c.store.UpdateSecurityGroupRules(ctx, accountID, g.ID, rules)
	var dup *store.RuleConflictError
	switch {
	case errors.As(err, &dup) && dup.Index < len(rules):
		// Another request made the same rule meanwhile.
		return sgDuplicateRule(rules[dup.Index])
	case errors.Is(err, store.ErrNotFound):
		// The group, a rule or a peer went since they were looked up.
		return awserr.New("InvalidPermission.NotFound", "The specified rule does not exist in this security group.").WithCause(err)
	case err != nil:
		return fmt.Errorf("update rules of %s: %w", g.ID, err)
	}
	return nil
}
