package cc

import (
	"context"
	"fmt"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// AttachVolume hot-plugs an EBS volume into an instance on whichever node
// runs it. Not built yet: the EBS issue fills it in.
func (c *Cluster) AttachVolume(ctx context.Context, instanceID string, v ncapi.VolumeAttachment) error {
	return fmt.Errorf("%w: volumes are not built yet", ncapi.ErrUnsupported)
}

// DetachVolume unplugs a volume from an instance.
func (c *Cluster) DetachVolume(ctx context.Context, instanceID, volumeID string, force bool) error {
	return fmt.Errorf("%w: volumes are not built yet", ncapi.ErrUnsupported)
}

// StopInstances powers EBS-backed instances off and frees their nodes.
func (c *Cluster) StopInstances(ctx context.Context, ids []string) error {
	return fmt.Errorf("%w: stopping instances is not built yet", ncapi.ErrUnsupported)
}
