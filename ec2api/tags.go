package ec2api

import (
	"context"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// TagService is not built yet (placeholder).
type TagService interface{}

func (a *api) createTags(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) deleteTags(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}

func (a *api) describeTags(ctx context.Context, req *queryapi.Request) (any, error) {
	return nil, awserr.New("NotImplemented", "%s is not implemented yet.", req.Action)
}
