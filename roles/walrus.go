package roles

import (
	"context"
	"errors"

	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/clc/clcapi"
	"github.com/euca-cloud/euca/walrus"
)

// walrusKeys is where Walrus checks signatures and names accounts: the
// cloud controller of this process, or, for Walrus on a host of its own,
// the cloud controller's internal API at the front-end it joined (a token
// made with `euca token create --role walrus`), under that identity. Such a
// Walrus serves S3 on its own CLOUD_PORT; images are registered from, and
// nodes fetch them from, the front-end's Walrus.
func walrusKeys(ctx context.Context, o Options, cloud *clc.Cloud, background func(string, func(context.Context) error)) (walrus.Keys, error) {
	if cloud != nil {
		return cloud, nil
	}
	if !o.Conf.WSSecurity {
		// The front-end answers secret keys over internal TLS only.
		return nil, errors.New("walrus on a host without the cloud controller checks signatures against the front-end's accounts over internal TLS, which ENABLE_WS_SECURITY=\"N\" turns off")
	}
	id, err := joinHost(ctx, o, Walrus, background)
	if err != nil {
		return nil, err
	}
	return clcapi.NewClient(rpc.NewClientConfig(id.server, id.frontEndTLS, o.Log.With("role", Walrus))), nil
}
