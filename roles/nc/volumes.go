package nc

import (
	"context"
	"fmt"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// AttachVolume hot-plugs an EBS volume into an instance's guest.
// Not built yet: the EBS issue fills it in.
func (n *Node) AttachVolume(ctx context.Context, instanceID string, v ncapi.VolumeAttachment) error {
	return fmt.Errorf("%w: volumes are not built yet", ncapi.ErrUnsupported)
}

// DetachVolume unplugs a volume from an instance's guest.
func (n *Node) DetachVolume(ctx context.Context, instanceID, volumeID string, force bool) error {
	return fmt.Errorf("%w: volumes are not built yet", ncapi.ErrUnsupported)
}

// StopInstance powers an EBS-backed instance off and forgets it.
func (n *Node) StopInstance(ctx context.Context, id string) error {
	return fmt.Errorf("%w: stopping instances is not built yet", ncapi.ErrUnsupported)
}
