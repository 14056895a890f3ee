package ec2api

import (
	"context"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// CatalogService is not built yet (placeholder).
type CatalogService interface{}

func (a *api) describeRegions(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeAvailabilityZones(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeAccountAttributes(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeInstanceTypes(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeImages(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}
