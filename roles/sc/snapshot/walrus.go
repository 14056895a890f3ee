package snapshot

import (
	"context"

	"github.com/euca-cloud/euca/walrus"
)

// Bucket is the Walrus bucket snapshots are kept in.
const Bucket = "euca-snapshots"

// WalrusObjects opens the snapshot bucket in the Walrus of this process,
// creating it if needed, owned by the account ownerID: the cloud's admin
// account, so that an administrator sees the chunks and manifests with
// any S3 client. Call it after walrus.New.
func WalrusObjects(ctx context.Context, w *walrus.Walrus, ownerID string) (*walrus.SystemBucket, error) {
	return w.SystemBucket(ctx, Bucket, ownerID)
}

var _ ObjectStore = (*walrus.SystemBucket)(nil)
