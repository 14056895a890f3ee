package ec2api

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// The network views: DescribeVpcs and DescribeSubnets show each account its
// default VPC and subnets (made by the cloud controller), and
// DescribeNetworkInterfaces answers, before instances exist, that there are
// none.

// NetworkService is what the network views need from the cloud controller.
// With ids, each returns exactly those or the EC2 NotFound error naming the
// ones the account does not have.
type NetworkService interface {
	VPCs(ctx context.Context, accountID string, ids []string) ([]store.VPC, error)
	Subnets(ctx context.Context, accountID string, ids []string) ([]store.Subnet, error)
}

// awsReservedAddresses is how many addresses of every subnet AWS keeps for
// itself (network, router, DNS, future use, broadcast); clients size subnets
// knowing it, so the count of available addresses says the same.
const awsReservedAddresses = 5

// ---- DescribeVpcs

type cidrBlockState struct {
	State string `xml:"state"`
}

type vpcCidrAssociation struct {
	AssociationID  string         `xml:"associationId"`
	CidrBlock      string         `xml:"cidrBlock"`
	CidrBlockState cidrBlockState `xml:"cidrBlockState"`
}

type blockPublicAccessStates struct {
	InternetGatewayBlockMode string `xml:"internetGatewayBlockMode"`
}

type vpcItem struct {
	VpcID                   string                    `xml:"vpcId"`
	OwnerID                 string                    `xml:"ownerId"`
	State                   string                    `xml:"state"`
	CidrBlock               string                    `xml:"cidrBlock"`
	CidrBlockAssociationSet setOf[vpcCidrAssociation] `xml:"cidrBlockAssociationSet"`
	DhcpOptionsID           string                    `xml:"dhcpOptionsId"`
	InstanceTenancy         string                    `xml:"instanceTenancy"`
	IsDefault               bool                      `xml:"isDefault"`
	BlockPublicAccessStates blockPublicAccessStates   `xml:"blockPublicAccessStates"`
	Tags                    []tagItem                 `xml:"tagSet>item"`
	tags                    []store.Tag
}

type describeVpcsResponse struct {
	Response
	Vpcs      setOf[vpcItem] `xml:"vpcSet"`
	NextToken string         `xml:"nextToken,omitempty"`
}

func vpcCidrs(v vpcItem, f func(vpcCidrAssociation) string) []string {
	var out []string
	for _, c := range v.CidrBlockAssociationSet.Items {
		out = append(out, f(c))
	}
	return out
}

func vpcNone(vpcItem) []string { return nil }

// vpcFilters are the model's filters of DescribeVpcs (IPv6 ones match
// nothing: VPCs have no IPv6 block), plus isDefault, the spelling AWS has
// always accepted and scripts still use.
var vpcFilters = filterFields[vpcItem]{
	"cidr":                              func(v vpcItem) []string { return []string{v.CidrBlock} },
	"cidr-block-association.cidr-block": func(v vpcItem) []string { return vpcCidrs(v, func(c vpcCidrAssociation) string { return c.CidrBlock }) },
	"cidr-block-association.association-id": func(v vpcItem) []string {
		return vpcCidrs(v, func(c vpcCidrAssociation) string { return c.AssociationID })
	},
	"cidr-block-association.state": func(v vpcItem) []string {
		return vpcCidrs(v, func(c vpcCidrAssociation) string { return c.CidrBlockState.State })
	},
	"dhcp-options-id": func(v vpcItem) []string { return []string{v.DhcpOptionsID} },
	"ipv6-cidr-block-association.ipv6-cidr-block": vpcNone,
	"ipv6-cidr-block-association.ipv6-pool":       vpcNone,
	"ipv6-cidr-block-association.association-id":  vpcNone,
	"ipv6-cidr-block-association.state":           vpcNone,
	"is-default":                                  func(v vpcItem) []string { return []string{boolString(v.IsDefault)} },
	"isDefault":                                   func(v vpcItem) []string { return []string{boolString(v.IsDefault)} },
	"owner-id":                                    func(v vpcItem) []string { return []string{v.OwnerID} },
	"state":                                       func(v vpcItem) []string { return []string{v.State} },
	"vpc-id":                                      func(v vpcItem) []string { return []string{v.VpcID} },
}

// cidrAssociationID names a VPC's primary CIDR association after the VPC,
// so it is the same on every call without being stored.
func cidrAssociationID(vpcID string) string {
	return "vpc-cidr-assoc-" + strings.TrimPrefix(vpcID, "vpc-")
}

func vpcView(v store.VPC) vpcItem {
	return vpcItem{
		VpcID: v.ID, OwnerID: v.AccountID, State: "available", CidrBlock: v.CIDR,
		CidrBlockAssociationSet: setOf[vpcCidrAssociation]{[]vpcCidrAssociation{{
			AssociationID: cidrAssociationID(v.ID), CidrBlock: v.CIDR, CidrBlockState: cidrBlockState{"associated"},
		}}},
		DhcpOptionsID: "default", InstanceTenancy: "default", IsDefault: v.IsDefault,
		BlockPublicAccessStates: blockPublicAccessStates{"off"},
		Tags:                    tagItems(v.Tags), tags: v.Tags,
	}
}

func (a *api) describeVpcs(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[vpcItem]{
		fields: vpcFilters, tags: func(v vpcItem) []store.Tag { return v.tags },
		fetch: func() ([]vpcItem, error) {
			return viewsOf(vpcView)(a.cloud.VPCs(ctx, req.Caller.AccountID, p.List("VpcId")))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeVpcsResponse{Vpcs: setOf[vpcItem]{page}, NextToken: next}, nil
}

// ---- DescribeSubnets

type privateDNSNameOptions struct {
	HostnameType                    string `xml:"hostnameType"`
	EnableResourceNameDNSARecord    bool   `xml:"enableResourceNameDnsARecord"`
	EnableResourceNameDNSAAAARecord bool   `xml:"enableResourceNameDnsAAAARecord"`
}

type subnetItem struct {
	SubnetID                      string                  `xml:"subnetId"`
	SubnetArn                     string                  `xml:"subnetArn"`
	State                         string                  `xml:"state"`
	OwnerID                       string                  `xml:"ownerId"`
	VpcID                         string                  `xml:"vpcId"`
	CidrBlock                     string                  `xml:"cidrBlock"`
	AvailableIPAddressCount       int                     `xml:"availableIpAddressCount"`
	AvailabilityZone              string                  `xml:"availabilityZone"`
	AvailabilityZoneID            string                  `xml:"availabilityZoneId,omitempty"`
	DefaultForAz                  bool                    `xml:"defaultForAz"`
	MapPublicIPOnLaunch           bool                    `xml:"mapPublicIpOnLaunch"`
	MapCustomerOwnedIPOnLaunch    bool                    `xml:"mapCustomerOwnedIpOnLaunch"`
	AssignIpv6AddressOnCreation   bool                    `xml:"assignIpv6AddressOnCreation"`
	Ipv6CidrBlockAssociationSet   setOf[struct{}]         `xml:"ipv6CidrBlockAssociationSet"`
	Ipv6Native                    bool                    `xml:"ipv6Native"`
	EnableDNS64                   bool                    `xml:"enableDns64"`
	PrivateDNSNameOptionsOnLaunch privateDNSNameOptions   `xml:"privateDnsNameOptionsOnLaunch"`
	BlockPublicAccessStates       blockPublicAccessStates `xml:"blockPublicAccessStates"`
	Tags                          []tagItem               `xml:"tagSet>item"`
	tags                          []store.Tag
}

type describeSubnetsResponse struct {
	Response
	Subnets   setOf[subnetItem] `xml:"subnetSet"`
	NextToken string            `xml:"nextToken,omitempty"`
}

func subnetNone(subnetItem) []string { return nil }

// subnetFilters are the model's filters of DescribeSubnets (those about
// Outposts and IPv6 match nothing), plus the older spellings AWS still
// accepts (availabilityZone, cidr, cidrBlock, defaultForAz).
var subnetFilters = filterFields[subnetItem]{
	"availability-zone":          func(s subnetItem) []string { return []string{s.AvailabilityZone} },
	"availabilityZone":           func(s subnetItem) []string { return []string{s.AvailabilityZone} },
	"availability-zone-id":       func(s subnetItem) []string { return []string{s.AvailabilityZoneID} },
	"available-ip-address-count": func(s subnetItem) []string { return []string{strconv.Itoa(s.AvailableIPAddressCount)} },
	"cidr-block":                 func(s subnetItem) []string { return []string{s.CidrBlock} },
	"cidr":                       func(s subnetItem) []string { return []string{s.CidrBlock} },
	"cidrBlock":                  func(s subnetItem) []string { return []string{s.CidrBlock} },
	"customer-owned-ipv4-pool":   subnetNone,
	"default-for-az":             func(s subnetItem) []string { return []string{boolString(s.DefaultForAz)} },
	"defaultForAz":               func(s subnetItem) []string { return []string{boolString(s.DefaultForAz)} },
	"enable-dns64":               func(s subnetItem) []string { return []string{boolString(s.EnableDNS64)} },
	"enable-lni-at-device-index": subnetNone,
	"ipv6-cidr-block-association.ipv6-cidr-block": subnetNone,
	"ipv6-cidr-block-association.association-id":  subnetNone,
	"ipv6-cidr-block-association.state":           subnetNone,
	"ipv6-native":                                 func(s subnetItem) []string { return []string{boolString(s.Ipv6Native)} },
	"map-customer-owned-ip-on-launch":             func(s subnetItem) []string { return []string{boolString(s.MapCustomerOwnedIPOnLaunch)} },
	"map-public-ip-on-launch":                     func(s subnetItem) []string { return []string{boolString(s.MapPublicIPOnLaunch)} },
	"outpost-arn":                                 subnetNone,
	"owner-id":                                    func(s subnetItem) []string { return []string{s.OwnerID} },
	"private-dns-name-options-on-launch.hostname-type": func(s subnetItem) []string {
		return []string{s.PrivateDNSNameOptionsOnLaunch.HostnameType}
	},
	"private-dns-name-options-on-launch.enable-resource-name-dns-a-record": func(s subnetItem) []string {
		return []string{boolString(s.PrivateDNSNameOptionsOnLaunch.EnableResourceNameDNSARecord)}
	},
	"private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record": func(s subnetItem) []string {
		return []string{boolString(s.PrivateDNSNameOptionsOnLaunch.EnableResourceNameDNSAAAARecord)}
	},
	"state":      func(s subnetItem) []string { return []string{s.State} },
	"subnet-arn": func(s subnetItem) []string { return []string{s.SubnetArn} },
	"subnet-id":  func(s subnetItem) []string { return []string{s.SubnetID} },
	"vpc-id":     func(s subnetItem) []string { return []string{s.VpcID} },
}

// availableAddresses is what a subnet of cidr offers instances: its size
// less the addresses AWS reserves (instances will be subtracted as they
// come).
func availableAddresses(cidr string) int {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return 0
	}
	host := 32 - p.Bits()
	if host > 30 {
		host = 30 // no IPv4 subnet is that large; keep the int small anyway
	}
	return max(0, 1<<host-awsReservedAddresses)
}

func (a *api) subnetView(s store.Subnet) subnetItem {
	return subnetItem{
		SubnetID: s.ID, SubnetArn: "arn:aws:ec2:" + a.cloud.Region() + ":" + s.AccountID + ":subnet/" + s.ID,
		State: "available", OwnerID: s.AccountID, VpcID: s.VPCID, CidrBlock: s.CIDR,
		AvailableIPAddressCount: availableAddresses(s.CIDR),
		AvailabilityZone:        s.Zone, AvailabilityZoneID: a.cloud.ZoneID(s.Zone),
		DefaultForAz: s.DefaultForAZ, MapPublicIPOnLaunch: s.MapPublicIP,
		PrivateDNSNameOptionsOnLaunch: privateDNSNameOptions{HostnameType: "ip-name"},
		BlockPublicAccessStates:       blockPublicAccessStates{"off"},
		Tags:                          tagItems(s.Tags), tags: s.Tags,
	}
}

func (a *api) describeSubnets(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[subnetItem]{
		fields: subnetFilters, tags: func(s subnetItem) []store.Tag { return s.tags },
		fetch: func() ([]subnetItem, error) {
			return viewsOf(a.subnetView)(a.cloud.Subnets(ctx, req.Caller.AccountID, p.List("SubnetId")))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeSubnetsResponse{Subnets: setOf[subnetItem]{page}, NextToken: next}, nil
}

// ---- DescribeNetworkInterfaces, before there are any

var networkInterfaceFilters = knownFilterNames(
	"association.allocation-id", "association.association-id", "addresses.association.owner-id",
	"addresses.association.public-ip", "addresses.primary", "addresses.private-ip-address",
	"association.ip-owner-id", "association.public-ip", "association.public-dns-name", "attachment.attach-time",
	"attachment.attachment-id", "attachment.delete-on-termination", "attachment.device-index",
	"attachment.instance-id", "attachment.instance-owner-id", "attachment.status", "availability-zone",
	"availability-zone-id", "description", "group-id", "ipv6-addresses.ipv6-address", "interface-type",
	"mac-address", "network-interface-id", "operator.managed", "operator.principal", "owner-id",
	"private-dns-name", "private-ip-address", "requester-id", "requester-managed", "source-dest-check",
	"status", "subnet-id", "vpc-id",
	// The group name, which older documentation lists.
	"group-name",
)

var networkInterfaceIDPattern = regexp.MustCompile(`^eni-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)

type describeNetworkInterfacesResponse struct {
	Response
	NetworkInterfaces setOf[struct{}] `xml:"networkInterfaceSet"`
	NextToken         string          `xml:"nextToken,omitempty"`
}

func (a *api) describeNetworkInterfaces(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if _, err := p.Bool("IncludeManagedResources"); err != nil {
		return nil, err
	}
	if err := checkFiltersKnown(p, networkInterfaceFilters); err != nil {
		return nil, err
	}
	ids := p.List("NetworkInterfaceId")
	if len(ids) > 0 && p.Has("MaxResults") {
		return nil, awserr.New("InvalidParameterCombination", "The parameter networkInterfaceIdSet cannot be used with the parameter maxResults")
	}
	for _, id := range ids {
		if !networkInterfaceIDPattern.MatchString(id) {
			return nil, awserr.New("InvalidNetworkInterfaceID.Malformed", "Invalid id: \"%s\" (expecting \"eni-...\")", id)
		}
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if len(ids) == 1 {
		return nil, awserr.New("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", ids[0])
	}
	if len(ids) > 1 {
		return nil, awserr.New("InvalidNetworkInterfaceID.NotFound", "The networkInterface IDs '%s' do not exist", strings.Join(ids, ", "))
	}
	if _, _, err := paginate([]struct{}(nil), p, 5, 1000); err != nil {
		return nil, err
	}
	return &describeNetworkInterfacesResponse{}, nil
}
