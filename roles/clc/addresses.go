package clc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/store"
)

// Elastic IPs. The pool is the front-end's VNET_PUBLICIPS; the store hands
// each address out once, to an allocation or lent to an instance launched
// into a subnet that maps public addresses (the default subnets do, as
// Eucalyptus gave every instance a public address while it had one). Every
// change is handed to the zone's cluster at once (sendNetwork), whose
// network mode turns each instance's public address into 1:1 NAT, so
// DescribeInstances, the metadata service and the packets follow together.
//
// In STATIC and SYSTEM modes the cluster translates no address: the pool is
// empty whatever VNET_PUBLICIPS says, and AllocateAddress is refused with
// UnsupportedOperation (the request can never succeed here, unlike an
// exhausted pool's InsufficientAddressCapacity, which a release cures).

// publicPool is the pool of public addresses, empty where the network mode
// does not translate addresses.
func (c *Cloud) publicPool() []netip.Addr {
	if !c.natMode() {
		return nil
	}
	return c.cfg.VNetPublicIPs
}

func (c *Cloud) natMode() bool { return strings.HasPrefix(strings.ToUpper(c.cfg.VNetMode), "MANAGED") }

// AllocateAddress gives the account an address of the pool: want when set,
// else the next free one. domain is "vpc" (the default) or "standard".
func (c *Cloud) AllocateAddress(ctx context.Context, accountID, domain, want string, tags []store.Tag) (store.Address, error) {
	if !c.natMode() {
		return store.Address{}, awserr.New("UnsupportedOperation",
			"Elastic IPs need network address translation, which network mode %s does not do: use MANAGED or MANAGED-NOVLAN.", c.cfg.VNetMode)
	}
	switch domain {
	case "":
		domain = store.DomainVPC
	case store.DomainVPC, store.DomainStandard:
	default:
		return store.Address{}, awserr.InvalidParameterValue("Value (%s) for parameter domain is invalid. Valid values are vpc and standard.", domain)
	}
	var ip netip.Addr
	if want != "" {
		var err error
		if ip, err = netip.ParseAddr(want); err != nil || !ip.Is4() {
			return store.Address{}, malformedAddress(want)
		}
	}
	a, err := c.store.AllocateAddress(ctx, store.Address{AllocationID: ids.New("eipalloc"), AccountID: accountID, Domain: domain, Tags: tags},
		c.publicPool(), ip, MaxElasticIPs)
	var missing *store.MissingResourceError
	switch {
	case errors.Is(err, store.ErrAddressLimit):
		return a, awserr.New("AddressLimitExceeded", "The maximum number of addresses (%d) has been reached.", MaxElasticIPs).WithCause(err)
	case errors.Is(err, store.ErrNoFreeAddress):
		return a, awserr.New("InsufficientAddressCapacity",
			"Not enough available addresses to satisfy your minimum request. Reduce the number of addresses you are requesting or wait for additional capacity to become available.")
	case errors.As(err, &missing):
		return a, awserr.New("InvalidAddress.NotFound", "Address '%s' not found.", want)
	case errors.Is(err, store.ErrConflict):
		return a, awserr.New("InvalidIPAddress.InUse", "Address %s is in use.", want)
	case errors.Is(err, store.ErrTagLimit):
		return a, awserr.New("TagLimitExceeded", "The maximum number of tags per resource is %d.", store.MaxTags)
	case err != nil:
		return a, fmt.Errorf("allocate address: %w", err)
	}
	c.log.Info("address allocated", "account", accountID, "address", a.PublicIP, "allocation", a.AllocationID)
	return a, nil
}

// addressOf finds the account's allocation by its id or, without one, by
// its public address: an allocation id the account does not have is
// InvalidAllocationID.NotFound; an address another account holds is
// AuthFailure (as EC2 answers for an address not yours), one no account
// holds InvalidAddress.NotFound.
func (c *Cloud) addressOf(ctx context.Context, accountID, allocationID, publicIP string) (store.Address, error) {
	if allocationID != "" {
		all, err := c.store.Addresses(ctx, accountID)
		if err != nil {
			return store.Address{}, fmt.Errorf("addresses: %w", err)
		}
		for _, a := range all {
			if a.AllocationID == allocationID {
				return a, nil
			}
		}
		return store.Address{}, awserr.New("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", allocationID)
	}
	if publicIP == "" {
		return store.Address{}, awserr.MissingParameter("AllocationId or PublicIp")
	}
	if ip, err := netip.ParseAddr(publicIP); err != nil || !ip.Is4() {
		return store.Address{}, malformedAddress(publicIP)
	}
	a, err := c.store.AddressByPublicIP(ctx, publicIP)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return a, awserr.New("InvalidAddress.NotFound", "Address '%s' not found.", publicIP)
	case err != nil:
		return a, fmt.Errorf("address %s: %w", publicIP, err)
	case a.AccountID != accountID:
		return store.Address{}, awserr.New("AuthFailure", "The address '%s' does not belong to you.", publicIP)
	}
	return a, nil
}

// malformedAddress is EC2's answer to a public address that is not one.
func malformedAddress(v string) error {
	return awserr.New("InvalidAddress.Malformed", "Invalid IPv4 address: %s", v)
}

// AssociateAddress associates the account's address (by allocation id or
// public address) with one of its instances, named directly or through its
// network interface, and returns the association id.
func (c *Cloud) AssociateAddress(ctx context.Context, accountID, allocationID, publicIP, instanceID, eniID, privateIP string, reassociate bool) (string, error) {
	if instanceID == "" && eniID == "" {
		return "", awserr.MissingParameter("InstanceId or NetworkInterfaceId")
	}
	a, err := c.addressOf(ctx, accountID, allocationID, publicIP)
	if err != nil {
		return "", err
	}
	in, err := c.addressTarget(ctx, accountID, instanceID, eniID)
	if err != nil {
		return "", err
	}
	if privateIP != "" && privateIP != in.PrivateIP {
		return "", awserr.InvalidParameterValue("The private IP address %s is not assigned to the network interface %s.", privateIP, in.ENIID)
	}
	if in.Zone == "" {
		return "", fmt.Errorf("instance %s has no zone", in.ID)
	}
	got, err := c.store.AssociateAddress(ctx, accountID, a.AllocationID, in.ID, ids.New("eipassoc"), reassociate)
	var already *store.AlreadyAssociatedError
	var state *store.InstanceStateError
	var missing *store.MissingResourceError
	switch {
	case errors.As(err, &already):
		return "", awserr.New("Resource.AlreadyAssociated", "resource %s is already associated with associate-id %s", already.AllocationID, already.AssociationID)
	case errors.As(err, &state):
		return "", awserr.New("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", state.ID)
	case errors.As(err, &missing) && missing.ID == in.ID:
		return "", missingIDsError("InvalidInstanceID.NotFound", "instance", []string{in.ID})
	case errors.As(err, &missing):
		return "", awserr.New("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", a.AllocationID)
	case err != nil:
		return "", fmt.Errorf("associate %s with %s: %w", a.PublicIP, in.ID, err)
	}
	c.log.Info("address associated", "account", accountID, "address", got.PublicIP, "instance", in.ID, "association", got.AssociationID)
	// Where it came from, if another instance had it: that one may be
	// lent an address again, and both zones' networks change.
	c.publicChanged(ctx, in.Zone, a.InstanceID)
	return got.AssociationID, nil
}

// addressTarget is the account's instance an address is to be associated
// with, named by id or by its (primary and only) network interface. When
// both are named the instance wins: EC2 answers that without an error, and
// Terraform's AWS provider sends it whenever an aws_eip moves to another
// instance (the new instance, and the old one's interface from its state).
func (c *Cloud) addressTarget(ctx context.Context, accountID, instanceID, eniID string) (store.Instance, error) {
	if instanceID != "" {
		in, err := c.store.Instance(ctx, accountID, instanceID)
		if errors.Is(err, store.ErrNotFound) {
			return in, missingIDsError("InvalidInstanceID.NotFound", "instance", []string{instanceID})
		}
		return in, err
	}
	all, err := c.store.Instances(ctx, accountID)
	if err != nil {
		return store.Instance{}, fmt.Errorf("instances: %w", err)
	}
	for _, in := range all {
		if in.ENIID == eniID && in.Live() {
			return in, nil
		}
	}
	return store.Instance{}, awserr.New("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", eniID)
}

// DisassociateAddress ends an association, named by its id or by the
// public address.
func (c *Cloud) DisassociateAddress(ctx context.Context, accountID, associationID, publicIP string) error {
	if associationID == "" {
		if publicIP == "" {
			return awserr.MissingParameter("AssociationId or PublicIp")
		}
		a, err := c.addressOf(ctx, accountID, "", publicIP)
		if err != nil {
			return err
		}
		if a.AssociationID == "" {
			return nil // not associated: nothing to do, as EC2-Classic answered
		}
		associationID = a.AssociationID
	}
	a, err := c.store.DisassociateAddress(ctx, accountID, associationID)
	if errors.Is(err, store.ErrNotFound) {
		return awserr.New("InvalidAssociationID.NotFound", "The association ID '%s' does not exist", associationID)
	}
	if err != nil {
		return fmt.Errorf("disassociate %s: %w", associationID, err)
	}
	c.log.Info("address disassociated", "account", accountID, "address", a.PublicIP, "instance", a.InstanceID)
	c.publicChanged(ctx, "", a.InstanceID)
	return nil
}

// ReleaseAddress gives the account's address back to the pool. An address
// of the VPC domain still associated is refused (InvalidIPAddress.InUse, as
// EC2 does); one of the standard domain is disassociated first, as
// EC2-Classic did.
func (c *Cloud) ReleaseAddress(ctx context.Context, accountID, allocationID, publicIP string) error {
	a, err := c.addressOf(ctx, accountID, allocationID, publicIP)
	if err != nil {
		return err
	}
	_, err = c.store.ReleaseAddress(ctx, accountID, a.AllocationID, a.Domain == store.DomainStandard)
	var inUse *store.AddressInUseError
	switch {
	case errors.As(err, &inUse):
		return awserr.New("InvalidIPAddress.InUse", "Address %s is in use.", a.PublicIP)
	case errors.Is(err, store.ErrNotFound):
		return awserr.New("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", a.AllocationID)
	case err != nil:
		return fmt.Errorf("release %s: %w", a.PublicIP, err)
	}
	c.log.Info("address released", "account", accountID, "address", a.PublicIP, "allocation", a.AllocationID)
	// Back in the pool: an instance waiting for an address is lent it now.
	c.publicChanged(ctx, "", a.InstanceID)
	return nil
}

// SetAddressDomainName gives the account's allocation its reverse DNS name
// (name "" resets it) and returns the address as it was before. Another
// account's allocation is InvalidAllocationID.NotFound, as for every call
// naming one. Nothing serves the name yet: it is kept and answered.
func (c *Cloud) SetAddressDomainName(ctx context.Context, accountID, allocationID, name string) (store.Address, error) {
	if allocationID == "" {
		return store.Address{}, awserr.MissingParameter("AllocationId")
	}
	before, err := c.store.SetAddressDomainName(ctx, accountID, allocationID, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return before, awserr.New("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", allocationID)
	case err != nil:
		return before, fmt.Errorf("domain name of %s: %w", allocationID, err)
	}
	c.log.Info("address domain name set", "account", accountID, "allocation", allocationID, "name", name)
	return before, nil
}

// DescribeAddresses lists the account's addresses; with allocation ids or
// public addresses, exactly those (InvalidAllocationID.NotFound or
// InvalidAddress.NotFound naming one the account does not have).
func (c *Cloud) DescribeAddresses(ctx context.Context, accountID string, allocationIDs, publicIPs []string) ([]store.Address, error) {
	all, err := c.store.Addresses(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("addresses: %w", err)
	}
	if len(allocationIDs) > 0 {
		if all, err = byIDsOrAll(all, allocationIDs, func(a store.Address) string { return a.AllocationID }, "InvalidAllocationID.NotFound", "allocation"); err != nil {
			return nil, err
		}
	}
	if len(publicIPs) > 0 {
		var out []store.Address
		for _, ip := range publicIPs {
			found := false
			for _, a := range all {
				if a.PublicIP == ip {
					found = true
					if !containsAddress(out, a) {
						out = append(out, a)
					}
				}
			}
			if !found {
				return nil, awserr.New("InvalidAddress.NotFound", "Address '%s' not found.", ip)
			}
		}
		all = out
	}
	return all, nil
}

func containsAddress(list []store.Address, a store.Address) bool {
	for _, b := range list {
		if b.AllocationID == a.AllocationID {
			return true
		}
	}
	return false
}

// PoolAddress is one address of the pool in the administrator's view.
type PoolAddress = store.PublicAddressUse

// AddressPool is every address of the pool, in the pool's order, with who
// holds it (an allocation, an instance it is lent to, or no one), for the
// cloud's administrator account only (visible false for others), as only
// Eucalyptus's administrator saw `euca-describe-addresses verbose`.
func (c *Cloud) AddressPool(ctx context.Context, accountID string) ([]PoolAddress, bool, error) {
	acct, err := c.store.AccountByID(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) || err == nil && acct.Name != AdminAccount {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("account %s: %w", accountID, err)
	}
	out, err := c.PoolView(ctx)
	return out, true, err
}

// PoolView is the pool with who holds each address: the administrator's
// view, which `euca address list` prints. Addresses in use that the pool
// no longer lists come last.
func (c *Cloud) PoolView(ctx context.Context) ([]PoolAddress, error) {
	pool := c.publicPool()
	used, err := c.store.PublicAddressesInUse(ctx)
	if err != nil {
		return nil, err
	}
	byIP := map[string]PoolAddress{}
	for _, u := range used {
		byIP[u.PublicIP] = u
	}
	var out []PoolAddress
	for _, ip := range pool {
		u, ok := byIP[ip.String()]
		if !ok {
			u = PoolAddress{PublicIP: ip.String()}
		}
		delete(byIP, ip.String())
		out = append(out, u)
	}
	for _, u := range used {
		if _, ok := byIP[u.PublicIP]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// publicChanged follows a change of public addresses: instances that take
// one and have none (one whose elastic IP left it) are lent one from the
// pool, and the networks of zone, of other's zone and of every zone whose
// instances changed are handed to their clusters at once.
func (c *Cloud) publicChanged(ctx context.Context, zone, other string) {
	ctx = context.WithoutCancel(ctx)
	zones := map[string]bool{}
	if zone != "" {
		zones[zone] = true
	}
	if other != "" {
		if z, err := c.store.InstanceZone(ctx, other); err == nil {
			zones[z] = true
		}
	}
	changed, err := c.store.FillPublicAddresses(ctx, c.publicPool())
	if err != nil {
		c.log.Warn("lend public addresses", "err", err)
	}
	for _, z := range changed {
		zones[z] = true
	}
	c.pushNetworks(ctx, zones, "network after an address change; sent again at the next reconcile")
}
