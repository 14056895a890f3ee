package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/euca-cloud/euca/internal/ids"
)

// resourceKinds says, for each kind of resource id (its prefix), what the
// API calls that kind and how to check that an id of it belongs to an
// account: a query taking (id, account id) that returns a row when it does.
// Tagging uses it. A family that adds a table of taggable resources adds its
// row here.
var resourceKinds = map[string]struct{ typ, exists string }{
	"vpc":    {TypeVPC, `SELECT 1 FROM vpcs WHERE id = ? AND account_id = ?`},
	"subnet": {TypeSubnet, `SELECT 1 FROM subnets WHERE id = ? AND account_id = ?`},
	"sg":     {TypeSecurityGroup, `SELECT 1 FROM security_groups WHERE id = ? AND account_id = ?`},
	"sgr": {TypeSecurityGroupRule, `SELECT 1 FROM security_group_rules r JOIN security_groups g ON g.id = r.group_id
		WHERE r.id = ? AND g.account_id = ?`},
	"key":      {TypeKeyPair, `SELECT 1 FROM key_pairs WHERE id = ? AND account_id = ?`},
	"i":        {TypeInstance, `SELECT 1 FROM instances WHERE id = ? AND account_id = ?`},
	"eipalloc": {TypeElasticIP, `SELECT 1 FROM addresses WHERE allocation_id = ? AND account_id = ?`},
	"emi":      {TypeImage, `SELECT 1 FROM images WHERE id = ? AND account_id = ?`},
	"eki":      {TypeImage, `SELECT 1 FROM images WHERE id = ? AND account_id = ?`},
	"eri":      {TypeImage, `SELECT 1 FROM images WHERE id = ? AND account_id = ?`},
	"vol":      {TypeVolume, `SELECT 1 FROM volumes WHERE id = ? AND account_id = ?`},
	"snap":     {TypeSnapshot, `SELECT 1 FROM snapshots WHERE id = ? AND account_id = ? AND state != 'deleting'`},
	// The parts of a VPC live in its row.
	"rtb":  {TypeRouteTable, `SELECT 1 FROM vpcs WHERE route_table_id = ? AND account_id = ?`},
	"igw":  {TypeInternetGateway, `SELECT 1 FROM vpcs WHERE internet_gateway_id = ? AND account_id = ?`},
	"acl":  {TypeNetworkACL, `SELECT 1 FROM vpcs WHERE network_acl_id = ? AND account_id = ?`},
	"dopt": {TypeDHCPOptions, `SELECT 1 FROM vpcs WHERE dhcp_options_id = ? AND account_id = ?`},
}

// MissingResourceError names the resource of a batch that does not exist or
// belongs to another account (the two are never told apart). It matches
// ErrNotFound under errors.Is.
type MissingResourceError struct{ ID string }

func (e *MissingResourceError) Error() string { return "store: resource " + e.ID + " not found" }

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *MissingResourceError) Is(target error) bool { return target == ErrNotFound }

// Resource returns the type of an account's resource named by id. The error
// is a *MissingResourceError when the account has no such resource,
// including when no table holds resources of that kind (yet).
func (s *Store) Resource(ctx context.Context, accountID, id string) (Resource, error) {
	return resource(ctx, s.r, accountID, id)
}

func resource(ctx context.Context, q queryer, accountID, id string) (Resource, error) {
	k, ok := resourceKinds[ids.Prefix(id)]
	if !ok {
		return Resource{}, &MissingResourceError{ID: id}
	}
	var one int
	err := q.QueryRowContext(ctx, k.exists, id, accountID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return Resource{}, &MissingResourceError{ID: id}
	}
	if err != nil {
		return Resource{}, fmt.Errorf("store: resource %s: %w", id, err)
	}
	return Resource{ID: id, Type: k.typ}, nil
}

// Resources resolves a batch of ids, in order; the first one missing ends
// it with a *MissingResourceError.
func (s *Store) Resources(ctx context.Context, accountID string, resourceIDs []string) ([]Resource, error) {
	out := make([]Resource, 0, len(resourceIDs))
	for _, id := range resourceIDs {
		r, err := resource(ctx, s.r, accountID, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// TagResources puts the same tags on each of an account's resources, all or
// nothing. Each resource is checked inside the same transaction, so a
// resource deleted meanwhile can never be left with tags. Errors: a
// *MissingResourceError for the first id the account does not own;
// ErrTagLimit when a resource would carry more than MaxTags.
func (s *Store) TagResources(ctx context.Context, accountID string, resourceIDs []string, tags []Tag) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range resourceIDs {
			r, err := resource(ctx, tx, accountID, id)
			if err != nil {
				return err
			}
			if err := putTags(ctx, tx, accountID, r.ID, r.Type, tags); err != nil {
				return err
			}
		}
		return nil
	})
}
