// Package ncapi is the node controller's API: what a cluster controller asks
// of the node controller on each host. One interface, two transports: when
// the roles share a process the cluster controller holds the NC itself;
// otherwise it holds an HTTP client (JSON over mutual TLS) for the same
// interface, and the NC mounts an HTTP adapter over its implementation.
//
// Direction follows Eucalyptus: the CC calls its NCs (it polls the hosts in
// NODES); an NC never calls its CC. The NC pulls images itself, from Walrus.
package ncapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"time"
)

// Node is one node controller.
type Node interface {
	// Describe is the CC's poll: what the node offers and holds, and every
	// instance it has with its state.
	Describe(ctx context.Context) (NodeStatus, error)
	// RunInstance starts an instance. Harmless twice for one id: the second
	// call reports success without a second guest. It returns once the
	// instance is accepted (pending); the image download and boot continue,
	// and Describe reports them.
	RunInstance(ctx context.Context, req InstanceRequest) error
	// TerminateInstance stops an instance and frees what it held; an unknown
	// id is not an error (it may have gone already).
	TerminateInstance(ctx context.Context, id string) error
	// RebootInstance resets a running instance.
	RebootInstance(ctx context.Context, id string) error
	// ConsoleOutput is the end of the instance's serial console.
	ConsoleOutput(ctx context.Context, id string) ([]byte, error)
	// SetNetwork hands the node its cluster's network as this host joins
	// it: the segments' bridges and tunnels and the security groups. The
	// cluster controller sends it whenever the node's Describe reports
	// another version than n's (a change, or a restarted node); harmless
	// twice.
	SetNetwork(ctx context.Context, n Network) error
	// AttachVolume hot-plugs an EBS volume into a running instance (into a
	// stopped one's definition: it is there at the next boot). Harmless
	// twice for one volume.
	AttachVolume(ctx context.Context, instanceID string, v VolumeAttachment) error
	// DetachVolume unplugs a volume and returns once the guest released it
	// (Force: at once, whatever the guest does; what it had not flushed is
	// lost, as EC2 warns). An instance without that volume is not an error.
	DetachVolume(ctx context.Context, instanceID, volumeID string, force bool) error
	// StopInstance powers an EBS-backed instance's guest off (ACPI, then
	// the plug) and forgets it as TerminateInstance does, except that its
	// volumes are only let go, never touched: its resources are free and
	// its id may be run again, on this node or another (StartInstances).
	StopInstance(ctx context.Context, id string) error
}

// Errors the transports carry across by name.
var (
	ErrNoSuchInstance = errors.New("ncapi: no such instance")
	ErrNoCapacity     = errors.New("ncapi: not enough capacity on this node")
	ErrBadRequest     = errors.New("ncapi: bad request")
	// ErrIncorrectState: the instance exists but its state does not allow
	// the call (rebooting one that is not running), EC2's
	// IncorrectInstanceState.
	ErrIncorrectState = errors.New("ncapi: instance not in a state that allows this")
	// ErrUnsupported: the node cannot do this (a host its driver cannot
	// power down).
	ErrUnsupported = errors.New("ncapi: not supported by this node")
)

// PowerDowner is a node that can power its own host down, as Eucalyptus's
// CC asked an idle node to (ncPowerDown) under POWERSAVE; the host is woken
// from outside (Wake-on-LAN, package roles/cc/power). Not part of Node: a
// node that cannot is asked nothing.
type PowerDowner interface {
	PowerDown(ctx context.Context) error
}

// Resources is an amount of a host's capacity.
type Resources struct {
	Cores     int `json:"cores"`
	MemoryMiB int `json:"memory_mib"`
	DiskGiB   int `json:"disk_gib"`
}

// Fits reports whether r can hold need.
func (r Resources) Fits(need Resources) bool {
	return r.Cores >= need.Cores && r.MemoryMiB >= need.MemoryMiB && r.DiskGiB >= need.DiskGiB
}

// Sub is r less u.
func (r Resources) Sub(u Resources) Resources {
	return Resources{r.Cores - u.Cores, r.MemoryMiB - u.MemoryMiB, r.DiskGiB - u.DiskGiB}
}

// NodeStatus is a node's answer to a poll.
type NodeStatus struct {
	Host      string           `json:"host"`
	Driver    string           `json:"driver"`            // "libvirt/tcg", "sim", ...
	Version   string           `json:"version,omitempty"` // the euca version the node runs
	Max       Resources        `json:"max"`               // what it offers: the host, capped by MAX_CORES, MAX_MEM, MAX_DISK
	Free      Resources        `json:"free"`              // Max less what its instances hold
	Instances []InstanceStatus `json:"instances"`
	// Network is the Version of the network the node last applied; ""
	// when it has none (just started) or the last SetNetwork failed.
	Network string `json:"network,omitempty"`
}

// Instance states as a node reports them; the cloud controller maps them
// onto EC2's.
const (
	StatePending      = "pending"       // accepted: fetching the image, preparing disks, booting
	StateRunning      = "running"       // the guest runs
	StateShuttingDown = "shutting-down" // being terminated
	StateTerminated   = "terminated"    // gone from the hypervisor; files removed (unless kept for debugging)
	StateFailed       = "failed"        // could not start; Reason says why
)

// InstanceStatus is one instance on a node.
type InstanceStatus struct {
	ID         string    `json:"id"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Holds      Resources `json:"holds"`
	LaunchedAt time.Time `json:"launched_at,omitzero"`
	// PrivateIP is the address the guest holds as far as the node knows:
	// the one it was given, or in SYSTEM mode the one the node learned
	// from the DHCP server's answer to it (invalid until then).
	PrivateIP netip.Addr `json:"private_ip,omitzero"`
	// Volumes are the EBS volumes the node holds for the instance.
	Volumes []VolumeStatus `json:"volumes,omitempty"`
}

// VolumeAttachment is an EBS volume as a node attaches it to a guest: the
// storage controller serves it over NBD with TLS at Host:Port under Export
// (a name that carries the attachment's secret nonce), and the node's
// QEMU connects there with the node's certificate.
type VolumeAttachment struct {
	VolumeID string `json:"volume_id"` // vol-...
	// Device is the EC2 device name as requested (/dev/sdf). The guest's
	// kernel names virtio disks in probe order, so it finds the volume by
	// Serial, not by this name.
	Device string `json:"device"`
	// Serial is the virtio serial the guest sees: "vol" and the id's hex,
	// as EC2's Nitro hosts give NVMe volumes (at most 20 bytes).
	Serial    string `json:"serial"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Export    string `json:"export"`
	SizeBytes int64  `json:"size_bytes"`
	// Boot makes the volume the instance's root disk (an EBS-backed
	// instance): the guest boots from it instead of from an image.
	Boot bool `json:"boot,omitempty"`
}

// Volume attachment states as a node reports them (EC2's
// VolumeAttachmentState).
const (
	VolumeAttaching = "attaching"
	VolumeAttached  = "attached"
	VolumeDetaching = "detaching"
)

// VolumeStatus is a volume a node holds for an instance.
type VolumeStatus struct {
	VolumeID string `json:"volume_id"`
	Device   string `json:"device"`
	State    string `json:"state"`
}

// ImageRef names an image a node must have, with what it must hash to. The
// node fetches it through its image source (the decrypted image Walrus
// keeps) and caches it.
type ImageRef struct {
	ID     string `json:"id"`     // emi-, eki-, eri-
	SHA256 string `json:"sha256"` // hex digest of the plain image
	Size   int64  `json:"size"`
}

// InstanceRequest is what a node needs to start one instance.
type InstanceRequest struct {
	ID            string    `json:"id"`
	VMType        string    `json:"vm_type"`
	Holds         Resources `json:"holds"` // cores, memory, ephemeral disk of the VM type
	Image         ImageRef  `json:"image"`
	Kernel        *ImageRef `json:"kernel,omitempty"`
	Ramdisk       *ImageRef `json:"ramdisk,omitempty"`
	KernelCmdline string    `json:"kernel_cmdline,omitempty"`
	MAC           string    `json:"mac"`
	// PrivateIP is the instance's address (invalid in SYSTEM mode, where
	// an outside DHCP server gives it): its port sends from it only.
	PrivateIP netip.Addr `json:"private_ip,omitzero"`
	Bridge    string     `json:"bridge"` // the network mode's bridge the NIC joins
	// Platform, when "ec2", makes the guest's SMBIOS say it runs on EC2, so
	// cloud-init uses its EC2 datasource.
	Platform string `json:"platform,omitempty"`
	// Volumes are attached before the guest boots, in this order; one
	// with Boot set is the root disk (Image is then empty).
	Volumes []VolumeAttachment `json:"volumes,omitempty"`
}

// Network is a cluster's network as a node on another host than its
// cluster controller joins it (package netmode/nodenet does the joining).
type Network struct {
	Segments  []Segment       `json:"segments"`
	Subnet    netip.Prefix    `json:"subnet"`
	Instances []NetInstance   `json:"instances"` // every instance of the cluster: targets and peers of the groups
	Groups    []SecurityGroup `json:"groups"`
	// Filter has the node enforce the security groups on its guests'
	// traffic although it joins no segment (STATIC, SYSTEM: the guests are
	// on the operator's LAN and no other host of the cloud is on their
	// path), on a host of the cluster controller's too. Subnet is then
	// invalid: the LAN's other hosts are not the groups' to decide for.
	Filter bool `json:"filter,omitempty"`
}

// Segment is one network of the cluster: a bridge carried between hosts
// by one VXLAN id.
type Segment struct {
	Bridge  string       `json:"bridge"`  // as InstanceRequest.Bridge names it
	VNI     int          `json:"vni"`     // VXLAN network identifier
	Gateway netip.Addr   `json:"gateway"` // the cluster controller's address on it
	Remotes []netip.Addr `json:"remotes"` // underlay addresses: the cluster controller's first, then the nodes'
}

// NetInstance is an instance as the security groups see it.
type NetInstance struct {
	ID        string     `json:"id"`
	PrivateIP netip.Addr `json:"private_ip"`
	Groups    []string   `json:"groups"`
}

// SecurityGroup is a group's rules. No egress rule: its members send
// nothing.
type SecurityGroup struct {
	ID      string `json:"id"`
	Ingress []Rule `json:"ingress"`
	Egress  []Rule `json:"egress"`
}

// Rule is one permission: from (ingress) or to (egress) a CIDR or a peer
// group's instances.
type Rule struct {
	Protocol  string       `json:"protocol"` // "-1", "tcp", "udp", "icmp", or a number
	FromPort  int          `json:"from_port"`
	ToPort    int          `json:"to_port"`
	CIDR      netip.Prefix `json:"cidr,omitzero"`
	PeerGroup string       `json:"peer_group,omitempty"`
}

// Version names n's content: equal networks have equal versions.
func (n Network) Version() string {
	b, _ := json.Marshal(n) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}
