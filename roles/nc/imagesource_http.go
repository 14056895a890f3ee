package nc

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/walrus/images"
)

// HTTPImageSource reads images from Walrus's image handler
// (images.Service.Handler) through client, over mutual TLS. Its errors are
// the ones Walrus gives in process (errors.Is(err, images.ErrUnknownImage)).
// It streams the body as it arrives: the image cache hashes what it writes
// and keeps nothing that does not match ref's SHA-256 and size, so a short
// or tampered body fails there.
func HTTPImageSource(client *rpc.Client) ImageSource {
	return ImageSourceFunc(func(ctx context.Context, ref ncapi.ImageRef) (io.ReadCloser, error) {
		q := url.Values{"sha256": {ref.SHA256}}
		if ref.Size > 0 {
			q.Set("size", strconv.FormatInt(ref.Size, 10))
		}
		rc, err := client.Open(ctx, images.ImagePath+url.PathEscape(ref.ID)+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("fetch image %s from walrus: %w", ref.ID, images.Errors.Decode(err))
		}
		return rc, nil
	})
}
