package images_test

import (
	"context"
	"io"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/walrus/images"
)

// nodeImageSource is roles/nc's ImageSource. This package may not import
// the node's API (walrus knows no role), so the roles package adapts it as
// below; this test only proves the adapter compiles: ncapi.ImageRef
// converts to images.Ref.
type nodeImageSource interface {
	Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error)
}

type walrusImages struct{ *images.Service }

func (w walrusImages) Open(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
	return w.Service.Open(ctx, images.Ref(ref))
}

var _ nodeImageSource = walrusImages{}
