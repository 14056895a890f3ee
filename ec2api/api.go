// Package ec2api is the EC2 Query API of API version 2016-11-15: the action
// table, the decoding of each action's parameters, the XML shapes of its
// responses and EC2's error codes. botocore's model
// (data/ec2/2016-11-15/service-2.json) is the specification for names and
// shapes; model_test.go checks the table against it.
//
// ec2api holds no state and imports no role: it calls the Cloud interface,
// which the cloud controller (roles/clc) implements, and it applies the
// generic parts of every Describe call itself (filters, tag filters,
// pagination) so that each resource only declares its filter fields.
package ec2api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/euca-cloud/euca/internal/awsauth"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// Namespace is the xmlns of every EC2 response.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// Cloud is what the EC2 API needs from the cloud controller, one interface
// per resource family (each defined beside its actions).
type Cloud interface {
	AddressService
	CatalogService
	ImageService
	InstanceService
	KeyPairService
	NetworkService
	SecurityGroupService
	SnapshotService
	TagService
	VolumeService
}

type api struct {
	cloud Cloud
}

type handler = queryapi.Handler

// actions is the EC2 action table: one row per action.
func (a *api) actions() map[string]handler {
	return map[string]handler{
		// addresses.go
		"AllocateAddress":            a.allocateAddress,
		"AssociateAddress":           a.associateAddress,
		"DisassociateAddress":        a.disassociateAddress,
		"ReleaseAddress":             a.releaseAddress,
		"DescribeAddresses":          a.describeAddresses,
		"DescribeAddressesAttribute": a.describeAddressesAttribute,
		"ModifyAddressAttribute":     a.modifyAddressAttribute,
		"ResetAddressAttribute":      a.resetAddressAttribute,
		// catalog.go
		"DescribeRegions":               a.describeRegions,
		"DescribeAvailabilityZones":     a.describeAvailabilityZones,
		"DescribeAccountAttributes":     a.describeAccountAttributes,
		"DescribeInstanceTypes":         a.describeInstanceTypes,
		"DescribeInstanceTypeOfferings": a.describeInstanceTypeOfferings,
		// images.go
		"RegisterImage":          a.registerImage,
		"CreateImage":            a.createImage,
		"DeregisterImage":        a.deregisterImage,
		"DescribeImages":         a.describeImages,
		"DescribeImageAttribute": a.describeImageAttribute,
		"ModifyImageAttribute":   a.modifyImageAttribute,
		"ResetImageAttribute":    a.resetImageAttribute,
		// instances.go
		"RunInstances":                         a.runInstances,
		"DescribeInstances":                    a.describeInstances,
		"TerminateInstances":                   a.terminateInstances,
		"RebootInstances":                      a.rebootInstances,
		"StopInstances":                        a.stopInstances,
		"StartInstances":                       a.startInstances,
		"GetConsoleOutput":                     a.getConsoleOutput,
		"DescribeInstanceStatus":               a.describeInstanceStatus,
		"DescribeInstanceAttribute":            a.describeInstanceAttribute,
		"ModifyInstanceAttribute":              a.modifyInstanceAttribute,
		"DescribeInstanceCreditSpecifications": a.describeInstanceCreditSpecifications,
		// keypairs.go
		"CreateKeyPair":    a.createKeyPair,
		"ImportKeyPair":    a.importKeyPair,
		"DeleteKeyPair":    a.deleteKeyPair,
		"DescribeKeyPairs": a.describeKeyPairs,
		// network.go
		"DescribeVpcs":              a.describeVpcs,
		"DescribeSubnets":           a.describeSubnets,
		"DescribeNetworkInterfaces": a.describeNetworkInterfaces,
		// vpcparts.go
		"DescribeVpcAttribute":     a.describeVpcAttribute,
		"ModifyVpcAttribute":       a.modifyVpcAttribute,
		"DescribeRouteTables":      a.describeRouteTables,
		"DescribeInternetGateways": a.describeInternetGateways,
		"DescribeDhcpOptions":      a.describeDhcpOptions,
		"DescribeNetworkAcls":      a.describeNetworkAcls,
		"DescribeVpcEndpoints":     a.describeVpcEndpoints,
		"DescribePrefixLists":      a.describePrefixLists,
		// securitygroups.go
		"CreateSecurityGroup":                        a.createSecurityGroup,
		"DeleteSecurityGroup":                        a.deleteSecurityGroup,
		"DescribeSecurityGroups":                     a.describeSecurityGroups,
		"DescribeSecurityGroupRules":                 a.describeSecurityGroupRules,
		"AuthorizeSecurityGroupIngress":              sgDirection(a.authorizeSecurityGroup, false),
		"AuthorizeSecurityGroupEgress":               sgDirection(a.authorizeSecurityGroup, true),
		"RevokeSecurityGroupIngress":                 sgDirection(a.revokeSecurityGroup, false),
		"RevokeSecurityGroupEgress":                  sgDirection(a.revokeSecurityGroup, true),
		"UpdateSecurityGroupRuleDescriptionsIngress": sgDirection(a.updateSecurityGroupRuleDescriptions, false),
		"UpdateSecurityGroupRuleDescriptionsEgress":  sgDirection(a.updateSecurityGroupRuleDescriptions, true),
		"ModifySecurityGroupRules":                   a.modifySecurityGroupRules,
		// snapshots.go
		"CreateSnapshot":            a.createSnapshot,
		"CopySnapshot":              a.copySnapshot,
		"DeleteSnapshot":            a.deleteSnapshot,
		"DescribeSnapshots":         a.describeSnapshots,
		"DescribeSnapshotAttribute": a.describeSnapshotAttribute,
		"ModifySnapshotAttribute":   a.modifySnapshotAttribute,
		"ResetSnapshotAttribute":    a.resetSnapshotAttribute,
		// tags.go
		"CreateTags":   a.createTags,
		"DeleteTags":   a.deleteTags,
		"DescribeTags": a.describeTags,
		// volumes.go
		"CreateVolume":                 a.createVolume,
		"DeleteVolume":                 a.deleteVolume,
		"DescribeVolumes":              a.describeVolumes,
		"DescribeVolumeStatus":         a.describeVolumeStatus,
		"DescribeVolumeAttribute":      a.describeVolumeAttribute,
		"AttachVolume":                 a.attachVolume,
		"DetachVolume":                 a.detachVolume,
		"ModifyVolume":                 a.modifyVolume,
		"DescribeVolumesModifications": a.describeVolumesModifications,
	}
}

// authCodes are the codes EC2 answers a failed signature with.
var authCodes = map[awsauth.Kind]string{
	awsauth.KindMissing:      "MissingAuthenticationToken",
	awsauth.KindMalformed:    "IncompleteSignature",
	awsauth.KindUnknownKey:   "AuthFailure",
	awsauth.KindBadSignature: "AuthFailure",
	awsauth.KindExpired:      "RequestExpired",
	awsauth.KindUnsupported:  "AuthFailure",
}

// Service returns the EC2 Query service description.
func Service(cloud Cloud) queryapi.Service {
	a := &api{cloud: cloud}
	return queryapi.Service{
		Name:      "ec2",
		Namespace: Namespace,
		Dialect:   queryapi.DialectEC2,
		Actions:   a.actions(),
		AuthCodes: authCodes,
	}
}

// New returns the EC2 API's HTTP handler.
func New(cloud Cloud, keys queryapi.Keys, log *slog.Logger) http.Handler {
	return queryapi.NewServer(Service(cloud), keys, log)
}

// Response is embedded first in every response shape.
type Response = queryapi.EC2Response

// returnResponse is the shape of actions that only say they succeeded.
type returnResponse struct {
	Response
	Return bool `xml:"return"`
}

func ok() (any, error) { return &returnResponse{Return: true}, nil }

// dryRun answers DryRun=true the way EC2 does for a call the caller may
// make: every handler calls it once its parameters are decoded and before it
// changes anything. (An account may do anything to its own resources, so
// permission is never the reason to refuse.)
func dryRun(p queryapi.Params) error {
	dry, err := p.Bool("DryRun")
	if err != nil {
		return err
	}
	if dry {
		return awserr.NewStatus(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	return nil
}

var _ context.Context // handlers take ctx first
