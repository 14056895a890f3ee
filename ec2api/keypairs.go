package ec2api

import (
	"context"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// KeyPairService is not built yet (placeholder).
type KeyPairService interface{}

func (a *api) createKeyPair(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) importKeyPair(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) deleteKeyPair(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeKeyPairs(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}
