package clc

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/store"
)

// notFoundCodes are the codes and messages EC2 answers when a tagged id of
// each kind names nothing the caller owns. Kinds this cloud does not hold
// yet (instances, images, volumes, ...) are listed too: an id of theirs can
// only name nothing, and the client should hear it in that kind's words.
var notFoundCodes = map[string]struct{ code, format string }{
	"vpc":      {"InvalidVpcID.NotFound", "The vpc ID '%s' does not exist"},
	"subnet":   {"InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist"},
	"sg":       {"InvalidGroup.NotFound", "The security group '%s' does not exist"},
	"sgr":      {"InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist"},
	"key":      {"InvalidKeyPair.NotFound", "The key pair '%s' does not exist"},
	"i":        {"InvalidInstanceID.NotFound", "The instance ID '%s' does not exist"},
	"ami":      {"InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	"emi":      {"InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	"eki":      {"InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	"eri":      {"InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	"aki":      {"InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	"ari":      {"InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	"vol":      {"InvalidVolume.NotFound", "The volume '%s' does not exist."},
	"snap":     {"InvalidSnapshot.NotFound", "The snapshot '%s' does not exist."},
	"eipalloc": {"InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist"},
	"eni":      {"InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist"},
	"igw":      {"InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist"},
	"rtb":      {"InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist"},
	"acl":      {"InvalidNetworkAclID.NotFound", "The networkAcl ID '%s' does not exist"},
	"dopt":     {"InvalidDhcpOptionID.NotFound", "The dhcpOption ID '%s' does not exist"},
	"lt":       {"InvalidLaunchTemplateId.NotFound", "The launch template ID '%s' does not exist"},
	"sir":      {"InvalidSpotInstanceRequestID.NotFound", "The spot instance request ID '%s' does not exist"},
	"pcx":      {"InvalidVpcPeeringConnectionID.NotFound", "The vpcPeeringConnection ID '%s' does not exist"},
	"nat":      {"NatGatewayNotFound", "The Nat Gateway %s was not found"},
	"vpce":     {"InvalidVpcEndpointId.NotFound", "The Vpc Endpoint Id '%s' does not exist"},
	"pg":       {"InvalidPlacementGroup.Unknown", "The Placement Group '%s' is unknown"},
}

// resourceID is the shape of every EC2 id: a kind, a dash, and 8 or 17 hex
// digits (Eucalyptus 1.x wrote them in upper case).
var resourceID = regexp.MustCompile(`^[a-z]+-(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)

// checkResourceIDs refuses, before anything is looked up, an id that is not
// an EC2 id of a kind EC2 tags.
func checkResourceIDs(resourceIDs []string) error {
	for _, id := range resourceIDs {
		if _, known := notFoundCodes[ids.Prefix(id)]; !known || !resourceID.MatchString(id) {
			return awserr.New("InvalidID", "The ID '%s' is not valid", id)
		}
	}
	return nil
}

// tagError maps the store's answers about tagged resources to EC2's codes.
func tagError(err error) error {
	var missing *store.MissingResourceError
	switch {
	case errors.As(err, &missing):
		nf := notFoundCodes[ids.Prefix(missing.ID)]
		return awserr.New(nf.code, nf.format, missing.ID)
	case errors.Is(err, store.ErrTagLimit):
		return awserr.New("TagLimitExceeded", "The maximum number of tags per resource is %d.", store.MaxTags)
	}
	return fmt.Errorf("tags: %w", err)
}

// CreateTags puts the tags on each resource, all or nothing. Every id must
// name one of the account's resources; another account's is reported as
// missing. The tags have been checked by the API layer.
func (c *Cloud) CreateTags(ctx context.Context, accountID string, resourceIDs []string, tags []store.Tag) error {
	if err := checkResourceIDs(resourceIDs); err != nil {
		return err
	}
	if err := c.store.TagResources(ctx, accountID, resourceIDs, tags); err != nil {
		return tagError(err)
	}
	return nil
}

// DeleteTags removes matching tags from each resource (all its tags when
// matches is empty). The resources must exist, as for CreateTags.
func (c *Cloud) DeleteTags(ctx context.Context, accountID string, resourceIDs []string, matches []store.TagMatch) error {
	if err := checkResourceIDs(resourceIDs); err != nil {
		return err
	}
	if _, err := c.store.Resources(ctx, accountID, resourceIDs); err != nil {
		return tagError(err)
	}
	if err := c.store.DeleteTags(ctx, accountID, resourceIDs, matches); err != nil {
		return fmt.Errorf("delete tags: %w", err)
	}
	return nil
}

// DescribeTags lists every tag of the account, by resource then key.
func (c *Cloud) DescribeTags(ctx context.Context, accountID string) ([]store.TagRow, error) {
	rows, err := c.store.Tags(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("describe tags: %w", err)
	}
	return rows, nil
}
