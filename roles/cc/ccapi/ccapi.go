// Package ccapi is the cluster controller's API: what the cloud controller
// asks of the cluster controller of each availability zone. Like ncapi, one
// interface with two transports (in-process, or JSON over mutual TLS).
//
// The cloud controller owns the records (instances, their addresses and
// security groups); a cluster controller places instances on its nodes,
// polls them, and realises the zone's network from the desired state the
// cloud controller hands it whole (SetNetwork), as Eucalyptus's CC ran the
// virtual network for the instances the CLC told it about.
package ccapi

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/euca-cloud/euca/roles/nc/ncapi"
)

// Cluster is one cluster controller (one availability zone).
type Cluster interface {
	// Zone is the availability zone the cluster serves.
	Zone() string
	// Describe reports the nodes, capacity per VM type (from the VM types
	// given) and every instance the nodes hold.
	Describe(ctx context.Context, types []VMType) (Status, error)
	// RunInstances places and starts all the requests, or none: when they
	// do not all fit it returns ErrInsufficientCapacity and starts nothing.
	RunInstances(ctx context.Context, reqs []InstanceRequest) ([]Placement, error)
	// TerminateInstances stops instances wherever they run; unknown ids are
	// not errors.
	TerminateInstances(ctx context.Context, ids []string) error
	// RebootInstances resets instances.
	RebootInstances(ctx context.Context, ids []string) error
	// ConsoleOutput is an instance's console.
	ConsoleOutput(ctx context.Context, id string) ([]byte, error)
	// SetNetwork hands the cluster the whole desired network of its zone;
	// harmless twice.
	SetNetwork(ctx context.Context, n Network) error
	// AttachVolume hot-plugs an EBS volume into an instance on whichever
	// node runs it (ncapi.Node.AttachVolume); ErrNoSuchInstance when no
	// node has it.
	AttachVolume(ctx context.Context, instanceID string, v ncapi.VolumeAttachment) error
	// DetachVolume unplugs a volume (ncapi.Node.DetachVolume); an unknown
	// instance is not an error.
	DetachVolume(ctx context.Context, instanceID, volumeID string, force bool) error
	// StopInstances powers EBS-backed instances off and frees their nodes
	// (ncapi.Node.StopInstance); unknown ids are not errors.
	StopInstances(ctx context.Context, ids []string) error
}

// Errors carried across transports by name.
var (
	ErrInsufficientCapacity = errors.New("ccapi: insufficient instance capacity")
	ErrNoSuchInstance       = errors.New("ccapi: no such instance")
	// ErrWrongZone: the cluster reached serves another zone than the one
	// it was registered as (its CLUSTER_NAME differs).
	ErrWrongZone = errors.New("ccapi: the cluster serves another zone")
	// ErrBadRequest: the request cannot be carried out as made (an empty
	// or repeated instance id).
	ErrBadRequest = errors.New("ccapi: bad request")
)

// VMType is a VM type's size.
type VMType struct {
	Name      string `json:"name"`
	Cores     int    `json:"cores"`
	MemoryMiB int    `json:"memory_mib"`
	DiskGiB   int    `json:"disk_gib"`
}

// Capacity is how many instances of one VM type fit: now (Free) and on the
// nodes if they were empty (Max), as euca-describe-availability-zones
// verbose prints them.
type Capacity struct {
	Free int `json:"free"`
	Max  int `json:"max"`
}

// Status is the cluster's answer to Describe.
type Status struct {
	Zone      string              `json:"zone"`
	Nodes     []NodeInfo          `json:"nodes"`
	Capacity  map[string]Capacity `json:"capacity"` // by VM type name
	Instances []InstanceStatus    `json:"instances"`
}

// NodeInfo is one node as the cluster last polled it.
type NodeInfo struct {
	Host     string          `json:"host"`
	Port     int             `json:"port,omitempty"` // its NC_PORT as registered
	Driver   string          `json:"driver"`
	Version  string          `json:"version,omitempty"` // the node's euca version
	Max      ncapi.Resources `json:"max"`
	Free     ncapi.Resources `json:"free"`
	Up       bool            `json:"up"`
	Asleep   bool            `json:"asleep,omitempty"` // powered down by POWERSAVE: not polled, counted, woken when needed
	LastSeen time.Time       `json:"last_seen,omitzero"`
	Error    string          `json:"error,omitempty"`
}

// InstanceStatus is an instance as its node reports it.
type InstanceStatus struct {
	ncapi.InstanceStatus
	Node string `json:"node"`
	// Unreachable, when not "", says why the instance's node cannot be
	// reached (down, or no longer registered): the state is the last one
	// known, and nothing can be done with the instance until the node
	// answers again.
	Unreachable string `json:"unreachable,omitempty"`
	// UnreachableSince is when the node was first found not answering
	// (zero when not known: a node no longer registered).
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	// Lost says the node answered again without the instance (its host
	// restarted, say): State is terminated and Reason says why.
	Lost bool `json:"lost,omitempty"`
}

// InstanceRequest is one instance to start. Its address and MAC were
// allocated by the cloud controller and are already in the network state.
type InstanceRequest struct {
	ncapi.InstanceRequest
	// Node, when set, is the node the instance must run on (else
	// ErrInsufficientCapacity): the cloud controller chose it because the
	// instance's EBS volumes are exported to that node only. Empty: the
	// cluster places it.
	Node string `json:"node,omitempty"`
}

// Placement says which node took an instance.
type Placement struct {
	ID   string `json:"id"`
	Node string `json:"node"`
}

// Network is the desired network of a zone.
type Network struct {
	Subnet    netip.Prefix    `json:"subnet"`    // the private space instances get addresses from
	Instances []NetInstance   `json:"instances"` // every instance that should be reachable
	Groups    []SecurityGroup `json:"groups"`    // every group any of them is in
	Metadata  netip.AddrPort  `json:"metadata"`  // where 169.254.169.254:80 is redirected to
}

// NetInstance is an instance's place on the network.
type NetInstance struct {
	ID        string     `json:"id"`
	MAC       string     `json:"mac"`
	PrivateIP netip.Addr `json:"private_ip"`
	PublicIP  netip.Addr `json:"public_ip,omitzero"`
	Groups    []string   `json:"groups"` // security group ids
}

// SecurityGroup is a group's rules as the network enforces them. No egress
// rule: its members send nothing.
type SecurityGroup struct {
	ID string `json:"id"`
	// Segment is the group's slice of the subnet in MANAGED mode (its VLAN
	// and bridge), as allocated with netmode/ipam; 0 in the other modes.
	Segment int    `json:"segment,omitempty"`
	Ingress []Rule `json:"ingress"`
	Egress  []Rule `json:"egress"`
}

// Rule allows traffic of a protocol and port range from (ingress) or to
// (egress) a CIDR or the members of a group.
type Rule struct {
	Protocol  string       `json:"protocol"` // "tcp", "udp", "icmp", "-1" (all) or a number
	FromPort  int          `json:"from_port"`
	ToPort    int          `json:"to_port"`
	CIDR      netip.Prefix `json:"cidr,omitzero"`
	PeerGroup string       `json:"peer_group,omitempty"`
}
