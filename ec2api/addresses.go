package ec2api

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// Elastic IPs: AllocateAddress, AssociateAddress, DisassociateAddress,
// ReleaseAddress, DescribeAddresses, DescribeAddressesAttribute,
// ModifyAddressAttribute and ResetAddressAttribute. Both
// domains work alike: a "vpc" address is named by its allocation id, a
// "standard" (EC2-Classic) one by its public address, and each call takes
// either. The cloud controller keeps the pool and hands every change to the
// network at once.

// AddressService is the cloud controller's side of the elastic IP actions.
type AddressService interface {
	// AllocateAddress gives the account an address of the pool (want, when
	// not ""), in domain "vpc" or "standard" ("" is vpc).
	AllocateAddress(ctx context.Context, accountID, domain, want string, tags []store.Tag) (store.Address, error)
	// AssociateAddress associates the address named by allocation id or
	// public address with an instance, named or through its interface,
	// and returns the association id.
	AssociateAddress(ctx context.Context, accountID, allocationID, publicIP, instanceID, eniID, privateIP string, reassociate bool) (string, error)
	// DisassociateAddress ends an association named by id or public address.
	DisassociateAddress(ctx context.Context, accountID, associationID, publicIP string) error
	// ReleaseAddress gives an address back to the pool.
	ReleaseAddress(ctx context.Context, accountID, allocationID, publicIP string) error
	// DescribeAddresses lists the account's addresses, or exactly those
	// named.
	DescribeAddresses(ctx context.Context, accountID string, allocationIDs, publicIPs []string) ([]store.Address, error)
	// AddressPool is every address of the pool with who holds it, for the
	// administrator only (visible false for anyone else).
	AddressPool(ctx context.Context, accountID string) (pool []store.PublicAddressUse, visible bool, err error)
	// SetAddressDomainName gives the allocation its reverse DNS name ("":
	// none) and returns the address as it was before.
	SetAddressDomainName(ctx context.Context, accountID, allocationID, name string) (store.Address, error)
}

// publicDNSName is the host name of a public address, as DescribeInstances
// and the metadata service give it.
func publicDNSName(region, ip string) string { return privateDNSName(region, ip) }

// ---- AllocateAddress

type allocateAddressResponse struct {
	Response
	PublicIP           string `xml:"publicIp"`
	AllocationID       string `xml:"allocationId"`
	Domain             string `xml:"domain"`
	PublicIPv4Pool     string `xml:"publicIpv4Pool"`
	NetworkBorderGroup string `xml:"networkBorderGroup"`
}

func (a *api) allocateAddress(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	tags, err := tagsFor(p.TagSpecifications(), store.TypeElasticIP)
	if err != nil {
		return nil, err
	}
	for _, unsupported := range []string{"PublicIpv4Pool", "CustomerOwnedIpv4Pool", "IpamPoolId"} {
		if v := p.String(unsupported); v != "" && v != "amazon" {
			return nil, awserr.InvalidParameterValue("The %s '%s' does not exist: this cloud has one pool (VNET_PUBLICIPS).", unsupported, v)
		}
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	addr, err := a.cloud.AllocateAddress(ctx, req.Caller.AccountID, p.String("Domain"), p.String("Address"), tags)
	if err != nil {
		return nil, err
	}
	return &allocateAddressResponse{PublicIP: addr.PublicIP, AllocationID: addr.AllocationID, Domain: addr.Domain,
		PublicIPv4Pool: "amazon", NetworkBorderGroup: a.cloud.Region()}, nil
}

// ---- AssociateAddress

type associateAddressResponse struct {
	Response
	AssociationID string `xml:"associationId"`
}

func (a *api) associateAddress(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	allocationID, publicIP := p.String("AllocationId"), p.String("PublicIp")
	if allocationID == "" && publicIP == "" {
		return nil, awserr.MissingParameter("AllocationId or PublicIp")
	}
	reassociate, err := p.Bool("AllowReassociation")
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := a.cloud.AssociateAddress(ctx, req.Caller.AccountID, allocationID, publicIP,
		p.String("InstanceId"), p.String("NetworkInterfaceId"), p.String("PrivateIpAddress"), reassociate)
	if err != nil {
		return nil, err
	}
	return &associateAddressResponse{AssociationID: id}, nil
}

// ---- DisassociateAddress and ReleaseAddress

func (a *api) disassociateAddress(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	associationID, publicIP := p.String("AssociationId"), p.String("PublicIp")
	if associationID == "" && publicIP == "" {
		return nil, awserr.MissingParameter("AssociationId or PublicIp")
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.DisassociateAddress(ctx, req.Caller.AccountID, associationID, publicIP); err != nil {
		return nil, err
	}
	return ok()
}

func (a *api) releaseAddress(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	allocationID, publicIP := p.String("AllocationId"), p.String("PublicIp")
	if allocationID == "" && publicIP == "" {
		return nil, awserr.MissingParameter("AllocationId or PublicIp")
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.ReleaseAddress(ctx, req.Caller.AccountID, allocationID, publicIP); err != nil {
		return nil, err
	}
	return ok()
}

// ---- DescribeAddresses

// addressItem is botocore's Address shape.
type addressItem struct {
	AllocationID            string         `xml:"allocationId,omitempty"`
	AssociationID           string         `xml:"associationId,omitempty"`
	Domain                  string         `xml:"domain"`
	NetworkInterfaceID      string         `xml:"networkInterfaceId,omitempty"`
	NetworkInterfaceOwnerID string         `xml:"networkInterfaceOwnerId,omitempty"`
	PrivateIPAddress        string         `xml:"privateIpAddress,omitempty"`
	Tags                    setOf[tagItem] `xml:"tagSet"`
	PublicIPv4Pool          string         `xml:"publicIpv4Pool,omitempty"`
	NetworkBorderGroup      string         `xml:"networkBorderGroup,omitempty"`
	InstanceID              string         `xml:"instanceId,omitempty"`
	PublicIP                string         `xml:"publicIp"`
	tags                    []store.Tag
}

type describeAddressesResponse struct {
	Response
	Addresses setOf[addressItem] `xml:"addressesSet"`
}

func addressView(ad store.Address, region string) addressItem {
	it := addressItem{AllocationID: ad.AllocationID, AssociationID: ad.AssociationID, Domain: ad.Domain,
		Tags: tagSetOf(ad.Tags), PublicIPv4Pool: "amazon", NetworkBorderGroup: region, InstanceID: ad.InstanceID,
		PublicIP: ad.PublicIP, tags: ad.Tags}
	if ad.InstanceID != "" {
		it.NetworkInterfaceID, it.NetworkInterfaceOwnerID, it.PrivateIPAddress = ad.ENIID, ad.AccountID, ad.PrivateIP
	}
	return it
}

func addressField(f func(addressItem) string) func(addressItem) []string {
	return func(it addressItem) []string {
		if v := f(it); v != "" {
			return []string{v}
		}
		return nil
	}
}

// addressFilters are DescribeAddresses' filters as AWS documents them.
var addressFilters = filterFields[addressItem]{
	"allocation-id":              addressField(func(it addressItem) string { return it.AllocationID }),
	"association-id":             addressField(func(it addressItem) string { return it.AssociationID }),
	"domain":                     addressField(func(it addressItem) string { return it.Domain }),
	"instance-id":                addressField(func(it addressItem) string { return it.InstanceID }),
	"network-border-group":       addressField(func(it addressItem) string { return it.NetworkBorderGroup }),
	"network-interface-id":       addressField(func(it addressItem) string { return it.NetworkInterfaceID }),
	"network-interface-owner-id": addressField(func(it addressItem) string { return it.NetworkInterfaceOwnerID }),
	"private-ip-address":         addressField(func(it addressItem) string { return it.PrivateIPAddress }),
	"public-ip":                  addressField(func(it addressItem) string { return it.PublicIP }),
	"public-ipv4-pool":           addressField(func(it addressItem) string { return it.PublicIPv4Pool }),
}

// verboseKeyword (catalog.go), given as the only PublicIp.1 by the
// administrator, asks for every address of the pool with who holds it:
// Eucalyptus's `euca-describe-addresses verbose`. Each address's
// instanceId reads "<instance or available> (<account>)", "<instance>
// (eucalyptus)" for one lent to an instance from the pool, or "nobody" for
// a free one.
const (
	addressFree   = "nobody"
	addressLentBy = "eucalyptus"
)

func (a *api) describeAddresses(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	publicIPs, allocationIDs := p.List("PublicIp"), p.List("AllocationId")
	for _, ip := range publicIPs {
		if ip == verboseKeyword && len(publicIPs) == 1 {
			continue
		}
		if addr, err := netip.ParseAddr(ip); err != nil || !addr.Is4() {
			return nil, awserr.New("InvalidAddress.Malformed", "Invalid IPv4 address: %s", ip)
		}
	}
	if len(publicIPs) == 1 && publicIPs[0] == verboseKeyword && len(allocationIDs) == 0 {
		if err := dryRun(p); err != nil {
			return nil, err
		}
		pool, visible, err := a.cloud.AddressPool(ctx, req.Caller.AccountID)
		if err != nil {
			return nil, err
		}
		if visible {
			return &describeAddressesResponse{Addresses: setOf[addressItem]{verboseAddresses(pool)}}, nil
		}
		// Anyone else asked about an address named "verbose": none is.
		return nil, awserr.New("InvalidAddress.Malformed", "Invalid IPv4 address: %s", verboseKeyword)
	}
	region := a.cloud.Region()
	items, _, err := describe(p, describeCall[addressItem]{
		fields: addressFilters, tags: func(it addressItem) []store.Tag { return it.tags },
		fetch: func() ([]addressItem, error) {
			all, err := a.cloud.DescribeAddresses(ctx, req.Caller.AccountID, allocationIDs, publicIPs)
			if err != nil {
				return nil, err
			}
			out := make([]addressItem, 0, len(all))
			for _, ad := range all {
				out = append(out, addressView(ad, region))
			}
			return out, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &describeAddressesResponse{Addresses: setOf[addressItem]{items}}, nil
}

func verboseAddresses(pool []store.PublicAddressUse) []addressItem {
	out := make([]addressItem, 0, len(pool))
	for _, u := range pool {
		// An allocation shows the domain it was allocated in; an address
		// lent from the pool or free has none, and is shown as EC2-Classic
		// showed every address.
		domain := u.Domain
		if domain == "" {
			domain = store.DomainStandard
		}
		it := addressItem{PublicIP: u.PublicIP, Domain: domain, AllocationID: u.AllocationID}
		owner := u.AccountName
		if owner == "" {
			owner = u.AccountID
		}
		switch {
		case u.AccountID == "":
			it.InstanceID = addressFree
		case u.AllocationID == "":
			it.InstanceID = fmt.Sprintf("%s (%s)", u.InstanceID, addressLentBy)
			it.NetworkInterfaceOwnerID = u.AccountID
		case u.InstanceID == "":
			it.InstanceID = fmt.Sprintf("available (%s)", owner)
		default:
			it.InstanceID = fmt.Sprintf("%s (%s)", u.InstanceID, owner)
		}
		out = append(out, it)
	}
	return out
}

// ---- DescribeAddressesAttribute

type ptrUpdateStatus struct {
	Value  string `xml:"value"`
	Status string `xml:"status"`
	Reason string `xml:"reason"`
}

// addressAttributeItem is botocore's AddressAttribute shape.
type addressAttributeItem struct {
	PublicIP        string           `xml:"publicIp"`
	AllocationID    string           `xml:"allocationId"`
	PtrRecord       string           `xml:"ptrRecord"`
	PtrRecordUpdate *ptrUpdateStatus `xml:"ptrRecordUpdate,omitempty"`
}

type describeAddressesAttributeResponse struct {
	Response
	Addresses setOf[addressAttributeItem] `xml:"addressSet"`
	NextToken string                      `xml:"nextToken,omitempty"`
}

// describeAddressesAttribute answers the one attribute there is,
// domain-name: the reverse DNS name of each address the account gave one
// (ModifyAddressAttribute), fully qualified, so with its dot. As on EC2, an
// address without one is not listed: Terraform's aws_eip_domain_name reads
// "not found" as the name gone, and waits for it after
// ResetAddressAttribute.
func (a *api) describeAddressesAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if attr := p.String("Attribute"); attr != "" && attr != addressAttributeDomainName {
		return nil, badAddressAttribute(attr)
	}
	ids := p.List("AllocationId")
	page, next, err := describe(p, describeCall[addressAttributeItem]{
		fetch: func() ([]addressAttributeItem, error) {
			all, err := a.cloud.DescribeAddresses(ctx, req.Caller.AccountID, ids, nil)
			if err != nil {
				return nil, err
			}
			out := make([]addressAttributeItem, 0, len(all))
			for _, ad := range all {
				if ad.DomainName != "" {
					out = append(out, addressAttributeItem{PublicIP: ad.PublicIP, AllocationID: ad.AllocationID,
						PtrRecord: fqdn(ad.DomainName)})
				}
			}
			return out, nil
		},
		minResults: 1, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeAddressesAttributeResponse{Addresses: setOf[addressAttributeItem]{page}, NextToken: next}, nil
}

const addressAttributeDomainName = "domain-name"

func badAddressAttribute(attr string) error {
	return awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Valid value: domain-name", attr)
}

// fqdn is a host name as a PTR record holds it: with its final dot.
func fqdn(name string) string { return strings.TrimSuffix(name, ".") + "." }

// ---- ModifyAddressAttribute and ResetAddressAttribute

type addressAttributeResponse struct {
	Response
	Address addressAttributeItem `xml:"address"`
}

// ptrPending is the status of the update each call answers. EC2 answers
// PENDING and applies the PTR record later; here nothing stands behind the
// record (no DNS server serves it yet), so the update is done before the
// answer leaves: the answer still says PENDING, as EC2's does, so that a
// client written against EC2 polls DescribeAddressesAttribute, which
// already shows the new record with no update in flight, the state
// Terraform's aws_eip_domain_name waits for.
const ptrPending = "PENDING"

// modifyAddressAttribute sets an allocation's reverse DNS name. The answer
// is EC2's: the record as it was, and the update.
func (a *api) modifyAddressAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, name := p.String("AllocationId"), strings.ToLower(strings.TrimSuffix(p.String("DomainName"), "."))
	switch {
	case id == "":
		return nil, awserr.MissingParameter("AllocationId")
	case p.String("DomainName") == "":
		return nil, awserr.MissingParameter("DomainName")
	case !validHostName(name):
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter domainName is invalid. It must be a fully qualified host name.", p.String("DomainName"))
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	before, err := a.cloud.SetAddressDomainName(ctx, req.Caller.AccountID, id, name)
	if err != nil {
		return nil, err
	}
	return &addressAttributeResponse{Address: a.ptrAnswer(before, fqdn(name))}, nil
}

// resetAddressAttribute takes an allocation's reverse DNS name away: the
// address answers to its public host name again.
func (a *api) resetAddressAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, attr := p.String("AllocationId"), p.String("Attribute")
	switch {
	case id == "":
		return nil, awserr.MissingParameter("AllocationId")
	case attr == "":
		return nil, awserr.MissingParameter("Attribute")
	case attr != addressAttributeDomainName:
		return nil, badAddressAttribute(attr)
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	before, err := a.cloud.SetAddressDomainName(ctx, req.Caller.AccountID, id, "")
	if err != nil {
		return nil, err
	}
	return &addressAttributeResponse{Address: a.ptrAnswer(before, fqdn(publicDNSName(a.cloud.Region(), before.PublicIP)))}, nil
}

// ptrAnswer is the AddressAttribute of a change to value: the record the
// address had (its name, else its public host name) and the update.
func (a *api) ptrAnswer(before store.Address, value string) addressAttributeItem {
	record := before.DomainName
	if record == "" {
		record = publicDNSName(a.cloud.Region(), before.PublicIP)
	}
	return addressAttributeItem{PublicIP: before.PublicIP, AllocationID: before.AllocationID, PtrRecord: fqdn(record),
		PtrRecordUpdate: &ptrUpdateStatus{Value: value, Status: ptrPending}}
}

// validHostName says whether name (lower case, without its final dot) is a
// fully qualified host name (RFC 1123): two labels or more, each of 1 to
// 63 letters, digits and inner hyphens, 253 characters in all, the last
// label not all digits (an address is not a name).
func validHostName(name string) bool {
	labels := strings.Split(name, ".")
	if len(name) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
