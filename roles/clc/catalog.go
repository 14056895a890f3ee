package clc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
)

// The catalog: what the cloud offers every account (its region, zones and VM
// types) and the account's limits.

// Capacity is what the cluster controllers know of their room: per zone and
// VM type, how many more instances fit now (Free) and how many fit on empty
// nodes (Max). The cluster controller implements it; until it does, or with
// no nodes, every count is zero.
type Capacity interface {
	Capacity(ctx context.Context) (map[string]map[string]store.VMTypeCapacity, error)
}

// capacity is the source of ZoneCapacity: what SetCapacity connected,
// else the zones' clusters asked directly (zones.go).
func (c *Cloud) capacity() Capacity {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cap == nil {
		return clusterCapacity{c}
	}
	return c.cap
}

// SetCapacity connects the cluster controller's capacity reports (the CC
// role calls it when it starts in or connects to this cloud).
func (c *Cloud) SetCapacity(cp Capacity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cap = cp
}

// Account limits answered by DescribeAccountAttributes, AWS's defaults.
// MaxElasticIPs is enforced (AllocateAddress: AddressLimitExceeded), so
// that no account drains the pool every account shares, and so is
// MaxSecurityGroupsPerInterface (RunInstances, ModifyInstanceAttribute:
// SecurityGroupsPerInstanceLimitExceeded); MaxInstances says what a
// client may expect.
const (
	MaxInstances                     = 20
	MaxElasticIPs                    = 5
	MaxSecurityGroupsPerInterface    = 5
	defaultVPCNone                   = "none"
	supportedPlatformVPC             = "VPC"
	attrSupportedPlatforms           = "supported-platforms"
	attrDefaultVPC                   = "default-vpc"
	attrMaxInstances                 = "max-instances"
	attrVPCMaxSecurityGroupsPerIface = "vpc-max-security-groups-per-interface"
	attrMaxElasticIPs                = "max-elastic-ips"
	attrVPCMaxElasticIPs             = "vpc-max-elastic-ips"
)

// ZoneID is the zone's id, stable across accounts as AWS's are: the
// region's short form ("us-east-1" -> "use1"), then "-az" and the zone's
// place among the cloud's zones ("use1-az1").
func (c *Cloud) ZoneID(zone string) string {
	for i, z := range c.Zones() {
		if z == zone {
			return regionShort(c.Region()) + "-az" + strconv.Itoa(i+1)
		}
	}
	return ""
}

// regionShort is a region's short form as AWS's zone ids spell it: the
// country code, the initial of each word between (two letters for the
// compound directions: northeast -> ne) and the number: "us-east-1" ->
// "use1", "ap-northeast-1" -> "apne1", "us-euca-1" -> "use1". A name of
// fewer than three words is kept whole, less its dashes.
func regionShort(region string) string {
	parts := strings.Split(region, "-")
	if len(parts) < 3 {
		return strings.Join(parts, "")
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, w := range parts[1 : len(parts)-1] {
		switch {
		case w == "":
		case strings.HasPrefix(w, "north") && len(w) > len("north"):
			b.WriteString("n" + w[len("north"):len("north")+1])
		case strings.HasPrefix(w, "south") && len(w) > len("south"):
			b.WriteString("s" + w[len("south"):len("south")+1])
		default:
			b.WriteString(w[:1])
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

// ZoneCapacity reports, per zone and VM type, how many instances fit. Only
// the cloud's administrator account sees it (visible false for others), as
// only Eucalyptus's administrator saw `euca-describe-availability-zones
// verbose`.
func (c *Cloud) ZoneCapacity(ctx context.Context, accountID string) (map[string]map[string]store.VMTypeCapacity, bool, error) {
	a, err := c.store.AccountByID(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("account %s: %w", accountID, err)
	}
	if a.Name != AdminAccount {
		return nil, false, nil
	}
	capacity, err := c.capacity().Capacity(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("cluster capacity: %w", err)
	}
	return capacity, true, nil
}

// AccountAttributes are the values of DescribeAccountAttributes, by name.
func (c *Cloud) AccountAttributes(ctx context.Context, accountID string) (map[string][]string, error) {
	def := defaultVPCNone
	v, err := c.store.DefaultVPC(ctx, accountID)
	switch {
	case err == nil:
		def = v.ID
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("default vpc: %w", err)
	}
	n := func(i int) []string { return []string{strconv.Itoa(i)} }
	return map[string][]string{
		attrSupportedPlatforms:           {supportedPlatformVPC},
		attrDefaultVPC:                   {def},
		attrMaxInstances:                 n(MaxInstances),
		attrVPCMaxSecurityGroupsPerIface: n(MaxSecurityGroupsPerInterface),
		attrMaxElasticIPs:                n(MaxElasticIPs),
		attrVPCMaxElasticIPs:             n(MaxElasticIPs),
	}, nil
}

// VMTypes lists the VM types from smallest to largest.
func (c *Cloud) VMTypes(ctx context.Context) ([]store.VMType, error) {
	return c.store.VMTypes(ctx)
}

// InstanceHypervisor is how DescribeInstanceTypes names the hypervisor: EC2
// knows only "xen" and "nitro" (itself KVM), so every KVM or QEMU cloud is
// "nitro".
func (c *Cloud) InstanceHypervisor() string {
	if c.cfg.Hypervisor == "xen" {
		return "xen"
	}
	return "nitro"
}

// SetVMType changes one VM type's cores, memory (MB) and disk (GB); the
// administrator's `euca vmtypes set`. A change that would make a larger type
// smaller than a smaller one is refused, naming the neighbour it would cross.
func (c *Cloud) SetVMType(ctx context.Context, name string, cores, memoryMB, diskGB int) (store.VMType, error) {
	t, err := c.store.SetVMType(ctx, name, cores, memoryMB, diskGB)
	if errors.Is(err, store.ErrNotFound) {
		types, lerr := c.store.VMTypes(ctx)
		if lerr != nil {
			return t, lerr
		}
		var names []string
		for _, v := range types {
			names = append(names, v.Name)
		}
		return t, fmt.Errorf("no VM type %q (the types are %s)", name, strings.Join(names, ", "))
	}
	if err != nil {
		return t, err
	}
	c.log.Info("vm type changed", "type", name, "cores", cores, "memory_mb", memoryMB, "disk_gb", diskGB)
	return t, nil
}

// missingIDsError is the error of a Describe call naming resources the account
// does not have: AWS's "The vpc ID 'vpc-1' does not exist" (or, for several,
// "The vpc IDs 'vpc-1, vpc-2' do not exist").
func missingIDsError(code, noun string, missing []string) error {
	if len(missing) == 1 {
		return awserr.New(code, "The %s ID '%s' does not exist", noun, missing[0])
	}
	return awserr.New(code, "The %s IDs '%s' do not exist", noun, strings.Join(missing, ", "))
}
