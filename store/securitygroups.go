package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// TypeSecurityGroupRule is the ResourceType of a security group rule (tags).
const TypeSecurityGroupRule = "security-group-rule"

// SecurityGroup is a VPC security group with its rules and tags.
type SecurityGroup struct {
	ID          string
	AccountID   string
	VPCID       string
	Name        string
	Description string
	CreatedMS   int64
	Tags        []Tag
	// Rules are ingress and egress together, oldest first; on create, the
	// rules the group starts with.
	Rules []SecurityGroupRule
}

// SecurityGroupRule is one row of a group's rules: one direction, one
// protocol and port range, and exactly one peer (an IPv4 or IPv6 CIDR, a
// security group, or a prefix list). It is AWS's SecurityGroupRule; the API
// groups rows back into IpPermissions.
type SecurityGroupRule struct {
	ID           string // sgr-...
	GroupID      string
	GroupOwnerID string // the account of GroupID (filled on reads)
	Egress       bool
	Protocol     string // "-1", "tcp", "udp", "icmp", "icmpv6" or a number
	FromPort     int    // -1 when the protocol has no ports
	ToPort       int
	CIDRIPv4     string
	CIDRIPv6     string
	PeerGroupID  string
	PeerOwnerID  string
	// PeerGroupName is the referenced group's name, filled on reads when the
	// group still exists (the ip-permission.group-name filter needs it).
	PeerGroupName string
	PrefixListID  string
	Description   string
	CreatedMS     int64
	Tags          []Tag
}

// SameRule reports whether two rules are the same rule in AWS's sense: the
// same direction, protocol, ports and peer. Descriptions and ids do not count.
func (r SecurityGroupRule) SameRule(o SecurityGroupRule) bool {
	return r.Egress == o.Egress && r.Protocol == o.Protocol && r.FromPort == o.FromPort && r.ToPort == o.ToPort &&
		r.CIDRIPv4 == o.CIDRIPv4 && r.CIDRIPv6 == o.CIDRIPv6 && r.PeerGroupID == o.PeerGroupID && r.PrefixListID == o.PrefixListID
}

// RuleConflictError says which of the rules given to AddSecurityGroupRules
// already exists (or is given twice). It wraps ErrConflict.
type RuleConflictError struct{ Index int }

func (e *RuleConflictError) Error() string {
	return fmt.Sprintf("store: rule %d already exists", e.Index)
}

func (e *RuleConflictError) Unwrap() error { return ErrConflict }

// ErrRuleLimit is returned when a group would hold more rules in one
// direction than AddSecurityGroupRules allows.
var ErrRuleLimit = errors.New("store: rule limit exceeded")

// CreateSecurityGroup inserts a group with its first rules and its tags in
// one transaction. Names are unique in a VPC regardless of case, as in EC2:
// ErrConflict when the name is taken, ErrNotFound when the VPC is not the
// account's.
func (s *Store) CreateSecurityGroup(ctx context.Context, g SecurityGroup) error {
	return s.CreateSecurityGroupLimited(ctx, g, 0)
}

// ErrGroupLimit is returned when a VPC would hold more security groups
// than its limit.
var ErrGroupLimit = errors.New("store: security group limit exceeded")

// CreateSecurityGroupLimited is CreateSecurityGroup refusing, with
// ErrGroupLimit, a VPC that holds maxPerVPC groups already (0: no limit),
// counted in the transaction so that concurrent calls cannot pass it.
func (s *Store) CreateSecurityGroupLimited(ctx context.Context, g SecurityGroup, maxPerVPC int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM vpcs WHERE id = ? AND account_id = ?`, g.VPCID, g.AccountID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("vpc %s: %w", g.VPCID, ErrNotFound)
		}
		if maxPerVPC > 0 {
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM security_groups WHERE vpc_id = ?`, g.VPCID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerVPC {
				return fmt.Errorf("%s holds %d groups: %w", g.VPCID, n, ErrGroupLimit)
			}
		}
		// The UNIQUE index is case-sensitive; EC2's names are not.
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM security_groups WHERE vpc_id = ? AND name = ? COLLATE NOCASE`, g.VPCID, g.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("security group %q in %s: %w", g.Name, g.VPCID, ErrConflict)
		}
		ts := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO security_groups (id, account_id, vpc_id, name, description, created_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			g.ID, g.AccountID, g.VPCID, g.Name, g.Description, ts); err != nil {
			return conflict(err, "security group "+g.Name)
		}
		if err := putTags(ctx, tx, g.AccountID, g.ID, TypeSecurityGroup, g.Tags); err != nil {
			return err
		}
		for i, r := range g.Rules {
			r.GroupID = g.ID
			if err := insertRule(ctx, tx, g.AccountID, r, ts); err != nil {
				if isUniqueViolation(err) {
					return &RuleConflictError{Index: i}
				}
				return err
			}
		}
		return nil
	})
}

func insertRule(ctx context.Context, q queryer, accountID string, r SecurityGroupRule, ts int64) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO security_group_rules (id, group_id, egress, protocol, from_port, to_port,
		cidr_ipv4, cidr_ipv6, peer_group_id, peer_owner_id, prefix_list_id, description, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.GroupID, r.Egress, r.Protocol, r.FromPort, r.ToPort,
		r.CIDRIPv4, r.CIDRIPv6, r.PeerGroupID, r.PeerOwnerID, r.PrefixListID, r.Description, ts); err != nil {
		return err
	}
	return putTags(ctx, q, accountID, r.ID, TypeSecurityGroupRule, r.Tags)
}

// AddSecurityGroupRules adds rules to an account's group, all or none. A
// rule that exists already (whatever its description), or is given twice,
// fails the whole call with a *RuleConflictError; a peer group that no
// longer exists fails it with ErrNotFound; more than maxPerDirection rules in
// one direction fails it with ErrRuleLimit (0: no limit).
func (s *Store) AddSecurityGroupRules(ctx context.Context, accountID, groupID string, rules []SecurityGroupRule, maxPerDirection int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := groupExists(ctx, tx, accountID, groupID); err != nil {
			return err
		}
		ts := now()
		for i, r := range rules {
			if err := peerExists(ctx, tx, groupID, r); err != nil {
				return err
			}
			r.GroupID = groupID
			if err := insertRule(ctx, tx, accountID, r, ts); err != nil {
				if isUniqueViolation(err) {
					return &RuleConflictError{Index: i}
				}
				return fmt.Errorf("store: add rule to %s: %w", groupID, err)
			}
		}
		if maxPerDirection > 0 {
			var most int
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM security_group_rules WHERE group_id = ? GROUP BY egress)`, groupID).Scan(&most); err != nil {
				return err
			}
			if most > maxPerDirection {
				return fmt.Errorf("%s would have %d rules in one direction, more than %d: %w", groupID, most, maxPerDirection, ErrRuleLimit)
			}
		}
		return nil
	})
}

// peerExists checks, in the caller's transaction, that the group a rule
// of groupID references still exists, so that a peer deleted since the
// caller resolved it cannot leave a dangling reference.
func peerExists(ctx context.Context, q queryer, groupID string, r SecurityGroupRule) error {
	if r.PeerGroupID == "" || r.PeerGroupID == groupID {
		return nil
	}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM security_groups WHERE id = ?`, r.PeerGroupID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("security group %s: %w", r.PeerGroupID, ErrNotFound)
	}
	return nil
}

// UpdateSecurityGroupRules rewrites rules of an account's group in place,
// all or none, keeping each rule's id, direction, tags and age (what
// ModifySecurityGroupRules and the description updates do): ErrNotFound
// when any is not (or no longer) a rule of that group or its peer group is
// gone; a *RuleConflictError when one would become the same rule as
// another of the group.
func (s *Store) UpdateSecurityGroupRules(ctx context.Context, accountID, groupID string, rules []SecurityGroupRule) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := groupExists(ctx, tx, accountID, groupID); err != nil {
			return err
		}
		for i, r := range rules {
			if err := peerExists(ctx, tx, groupID, r); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `UPDATE security_group_rules SET protocol = ?, from_port = ?, to_port = ?,
				cidr_ipv4 = ?, cidr_ipv6 = ?, peer_group_id = ?, peer_owner_id = ?, prefix_list_id = ?, description = ?
				WHERE id = ? AND group_id = ?`,
				r.Protocol, r.FromPort, r.ToPort, r.CIDRIPv4, r.CIDRIPv6, r.PeerGroupID, r.PeerOwnerID, r.PrefixListID, r.Description,
				r.ID, groupID)
			if isUniqueViolation(err) {
				return &RuleConflictError{Index: i}
			}
			if err != nil {
				return fmt.Errorf("store: update rule %s: %w", r.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("security group rule %s: %w", r.ID, ErrNotFound)
			}
		}
		return nil
	})
}

func groupExists(ctx context.Context, q queryer, accountID, groupID string) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM security_groups WHERE id = ? AND account_id = ?`, groupID, accountID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("security group %s: %w", groupID, ErrNotFound)
	}
	return nil
}

// DeleteSecurityGroupRules removes rules of an account's group by id, with
// their tags, all or none: ErrNotFound when any of them is not (or no longer)
// a rule of that group.
func (s *Store) DeleteSecurityGroupRules(ctx context.Context, accountID, groupID string, ruleIDs []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := groupExists(ctx, tx, accountID, groupID); err != nil {
			return err
		}
		for _, id := range ruleIDs {
			res, err := tx.ExecContext(ctx, `DELETE FROM security_group_rules WHERE id = ? AND group_id = ?`, id, groupID)
			if err != nil {
				return fmt.Errorf("store: delete rule %s: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("security group rule %s: %w", id, ErrNotFound)
			}
			if err := deleteAllTags(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteSecurityGroup removes an account's group, its rules and all their
// tags. ErrNotFound when the group is not the account's; ErrConflict (the
// error names the referencing group) while another group's rule references
// it, since deleting it would leave that rule dangling.
func (s *Store) DeleteSecurityGroup(ctx context.Context, accountID, groupID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := groupExists(ctx, tx, accountID, groupID); err != nil {
			return err
		}
		var by string
		err := tx.QueryRowContext(ctx, `SELECT group_id FROM security_group_rules WHERE peer_group_id = ? AND group_id != ? LIMIT 1`, groupID, groupID).Scan(&by)
		switch {
		case err == nil:
			return fmt.Errorf("security group %s is referenced by a rule of %s: %w", groupID, by, ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_id IN (SELECT id FROM security_group_rules WHERE group_id = ?)`, groupID); err != nil {
			return err
		}
		// The rules go by ON DELETE CASCADE.
		if _, err := tx.ExecContext(ctx, `DELETE FROM security_groups WHERE id = ?`, groupID); err != nil {
			return fmt.Errorf("store: delete security group %s: %w", groupID, err)
		}
		return deleteAllTags(ctx, tx, groupID)
	})
}

// SecurityGroups lists an account's groups with their rules and tags, oldest
// first.
func (s *Store) SecurityGroups(ctx context.Context, accountID string) ([]SecurityGroup, error) {
	return s.securityGroups(ctx, accountID, "")
}

// SecurityGroup returns one group of an account (ErrNotFound otherwise).
func (s *Store) SecurityGroup(ctx context.Context, accountID, groupID string) (SecurityGroup, error) {
	gs, err := s.securityGroups(ctx, accountID, groupID)
	if err != nil {
		return SecurityGroup{}, err
	}
	if len(gs) == 0 {
		return SecurityGroup{}, fmt.Errorf("security group %s: %w", groupID, ErrNotFound)
	}
	return gs[0], nil
}

// SecurityGroupByName finds a group of an account by name in a VPC; names
// compare without regard to case, as EC2's do.
func (s *Store) SecurityGroupByName(ctx context.Context, accountID, vpcID, name string) (SecurityGroup, error) {
	var id string
	err := s.r.QueryRowContext(ctx, `SELECT id FROM security_groups WHERE account_id = ? AND vpc_id = ? AND name = ? COLLATE NOCASE`, accountID, vpcID, name).Scan(&id)
	if err != nil {
		return SecurityGroup{}, notFound(err, "security group "+name)
	}
	return s.SecurityGroup(ctx, accountID, id)
}

func (s *Store) securityGroups(ctx context.Context, accountID, onlyID string) ([]SecurityGroup, error) {
	tags, err := tagsByResource(ctx, s.r, accountID, TypeSecurityGroup)
	if err != nil {
		return nil, err
	}
	q := `SELECT id, account_id, vpc_id, name, description, created_ms FROM security_groups WHERE account_id = ?`
	args := []any{accountID}
	if onlyID != "" {
		q += ` AND id = ?`
		args = append(args, onlyID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created_ms, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: security groups: %w", err)
	}
	defer rows.Close()
	var out []SecurityGroup
	index := map[string]int{}
	for rows.Next() {
		var g SecurityGroup
		if err := rows.Scan(&g.ID, &g.AccountID, &g.VPCID, &g.Name, &g.Description, &g.CreatedMS); err != nil {
			return nil, err
		}
		g.Tags = tags[g.ID]
		index[g.ID] = len(out)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rules, err := s.rules(ctx, accountID, onlyID, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		if i, ok := index[r.GroupID]; ok {
			out[i].Rules = append(out[i].Rules, r)
		}
	}
	return out, nil
}

// SecurityGroupRules lists the rules of an account's groups with their tags,
// oldest first; with ids, only those (missing ones are simply absent).
func (s *Store) SecurityGroupRules(ctx context.Context, accountID string, ids []string) ([]SecurityGroupRule, error) {
	if ids != nil && len(ids) == 0 {
		return nil, nil
	}
	return s.rules(ctx, accountID, "", ids)
}

func (s *Store) rules(ctx context.Context, accountID, groupID string, ids []string) ([]SecurityGroupRule, error) {
	tags, err := tagsByResource(ctx, s.r, accountID, TypeSecurityGroupRule)
	if err != nil {
		return nil, err
	}
	// The peer's name comes from any account's group: a rule may reference
	// another account's group, and its name is what the owner gave it.
	q := `SELECT r.id, r.group_id, g.account_id, r.egress, r.protocol, r.from_port, r.to_port, r.cidr_ipv4, r.cidr_ipv6,
		r.peer_group_id, r.peer_owner_id, coalesce(p.name, ''), r.prefix_list_id, r.description, r.created_ms
		FROM security_group_rules r JOIN security_groups g ON g.id = r.group_id
		LEFT JOIN security_groups p ON p.id = r.peer_group_id AND r.peer_group_id != ''
		WHERE g.account_id = ?`
	args := []any{accountID}
	if groupID != "" {
		q += ` AND r.group_id = ?`
		args = append(args, groupID)
	}
	if len(ids) > 0 {
		q += ` AND r.id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY r.created_ms, r.rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: security group rules: %w", err)
	}
	defer rows.Close()
	var out []SecurityGroupRule
	for rows.Next() {
		var r SecurityGroupRule
		if err := rows.Scan(&r.ID, &r.GroupID, &r.GroupOwnerID, &r.Egress, &r.Protocol, &r.FromPort, &r.ToPort, &r.CIDRIPv4, &r.CIDRIPv6,
			&r.PeerGroupID, &r.PeerOwnerID, &r.PeerGroupName, &r.PrefixListID, &r.Description, &r.CreatedMS); err != nil {
			return nil, err
		}
		r.Tags = tags[r.ID]
		out = append(out, r)
	}
	return out, rows.Err()
}

// IPPermission is a rule as a request states it (AWS's IpPermission): one
// protocol and port range towards any number of peers, before the cloud
// controller has checked it. Each peer becomes one SecurityGroupRule. It
// lives beside the rows it becomes because both the API (ec2api) and the
// cloud controller (roles/clc) speak it and neither may import the other.
type IPPermission struct {
	Protocol         string
	FromPort, ToPort *int // nil when the request did not say
	IPv4Ranges       []PermissionCIDR
	IPv6Ranges       []PermissionCIDR
	Groups           []PermissionGroup
	PrefixLists      []PermissionPrefixList
}

// PermissionCIDR is an IpRange or Ipv6Range of a request.
type PermissionCIDR struct{ CIDR, Description string }

// PermissionGroup is a UserIdGroupPair of a request: a group by id, or by
// name in the default VPC.
type PermissionGroup struct{ UserID, GroupID, GroupName, Description string }

// PermissionPrefixList is a PrefixListId of a request.
type PermissionPrefixList struct{ ID, Description string }
