package ec2api

import (
	"context"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// NetworkService is not built yet (placeholder).
type NetworkService interface{}

func (a *api) describeVpcs(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeSubnets(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeNetworkInterfaces(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}
