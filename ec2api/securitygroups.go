package ec2api

import (
	"context"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// SecurityGroupService is not built yet (placeholder).
type SecurityGroupService interface{}

func (a *api) createSecurityGroup(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) deleteSecurityGroup(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeSecurityGroups(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeSecurityGroupRules(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) authorizeSecurityGroupIngress(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) authorizeSecurityGroupEgress(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) revokeSecurityGroupIngress(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) revokeSecurityGroupEgress(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}
