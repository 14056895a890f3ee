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
	// The parts every VPC comes with (vpcparts.go) are found through their
	// VPC: each lists the VPCs whose part is named in ids (all the
	// account's without ids).
	RouteTables(ctx context.Context, accountID string, ids []string) ([]store.VPC, error)
	InternetGateways(ctx context.Context, accountID string, ids []string) ([]store.VPC, error)
	NetworkACLs(ctx context.Context, accountID string, ids []string) ([]store.VPC, error)
	DHCPOptions(ctx context.Context, accountID string, ids []string) ([]store.VPC, error)
	// ModifyVPCAttribute sets one attribute (store.VPCAttr...) of a VPC.
	ModifyVPCAttribute(ctx context.Context, accountID, vpcID, name string, value bool) error
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
		DhcpOptionsID: v.DHCPOptionsID, InstanceTenancy: "default", IsDefault: v.IsDefault,
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

// ---- DescribeNetworkInterfaces: the one interface of each live instance

var networkInterfaceIDPattern = regexp.MustCompile(`^eni-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)

// networkInterfaceItem is botocore's NetworkInterface shape.
// networkInterfaceAssociationXML is botocore's NetworkInterfaceAssociation:
// the interface's public address, with the elastic IP's ids when it is one.
type networkInterfaceAssociationXML struct {
	AllocationID  string `xml:"allocationId,omitempty"`
	AssociationID string `xml:"associationId,omitempty"`
	IPOwnerID     string `xml:"ipOwnerId"`
	PublicDNSName string `xml:"publicDnsName"`
	PublicIP      string `xml:"publicIp"`
}

// networkInterfacePrivateIPXML is botocore's NetworkInterfacePrivateIpAddress.
type networkInterfacePrivateIPXML struct {
	Association      *networkInterfaceAssociationXML `xml:"association,omitempty"`
	Primary          bool                            `xml:"primary"`
	PrivateDNSName   string                          `xml:"privateDnsName"`
	PrivateIPAddress string                          `xml:"privateIpAddress"`
}

type networkInterfaceItem struct {
	Association        *networkInterfaceAssociationXML     `xml:"association,omitempty"`
	Attachment         networkInterfaceAttachmentXML       `xml:"attachment"`
	AvailabilityZone   string                              `xml:"availabilityZone"`
	Description        string                              `xml:"description"`
	Groups             setOf[groupIdentifier]              `xml:"groupSet"`
	InterfaceType      string                              `xml:"interfaceType"`
	IPv6Addresses      setOf[struct{}]                     `xml:"ipv6AddressesSet"`
	MacAddress         string                              `xml:"macAddress"`
	NetworkInterfaceID string                              `xml:"networkInterfaceId"`
	OwnerID            string                              `xml:"ownerId"`
	PrivateDNSName     string                              `xml:"privateDnsName"`
	PrivateIPAddress   string                              `xml:"privateIpAddress"`
	PrivateIPAddresses setOf[networkInterfacePrivateIPXML] `xml:"privateIpAddressesSet"`
	RequesterManaged   bool                                `xml:"requesterManaged"`
	SourceDestCheck    bool                                `xml:"sourceDestCheck"`
	Status             string                              `xml:"status"`
	SubnetID           string                              `xml:"subnetId"`
	Tags               setOf[tagItem]                      `xml:"tagSet"`
	VpcID              string                              `xml:"vpcId"`
}

type networkInterfaceAttachmentXML struct {
	AttachTime          string `xml:"attachTime"`
	AttachmentID        string `xml:"attachmentId"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	InstanceID          string `xml:"instanceId"`
	InstanceOwnerID     string `xml:"instanceOwnerId"`
	Status              string `xml:"status"`
}

// networkInterfaceOf is an instance's interface as DescribeNetworkInterfaces
// shows it: the interface DescribeInstances nests in the instance, with
// the attachment naming the instance. Terminated instances have none.
func (a *api) networkInterfaceOf(in store.Instance) (networkInterfaceItem, bool) {
	it := a.instanceView(in)
	if len(it.NetworkInterfaces.Items) == 0 {
		return networkInterfaceItem{}, false
	}
	eni := it.NetworkInterfaces.Items[0]
	var assoc *networkInterfaceAssociationXML
	if a := eni.Association; a != nil {
		assoc = &networkInterfaceAssociationXML{AllocationID: in.AllocationID, AssociationID: in.AssociationID,
			IPOwnerID: a.IPOwnerID, PublicDNSName: a.PublicDNSName, PublicIP: a.PublicIP}
	}
	var private []networkInterfacePrivateIPXML
	for _, p := range eni.PrivateIPAddresses.Items {
		private = append(private, networkInterfacePrivateIPXML{Association: assoc, Primary: p.Primary, PrivateDNSName: p.PrivateDNSName, PrivateIPAddress: p.PrivateIPAddress})
	}
	return networkInterfaceItem{Association: assoc,
		Attachment: networkInterfaceAttachmentXML{AttachTime: eni.Attachment.AttachTime, AttachmentID: eni.Attachment.AttachmentID,
			DeleteOnTermination: eni.Attachment.DeleteOnTermination, DeviceIndex: eni.Attachment.DeviceIndex,
			InstanceID: in.ID, InstanceOwnerID: in.AccountID, Status: eni.Attachment.Status},
		AvailabilityZone: in.Zone, Description: eni.Description, Groups: eni.Groups, InterfaceType: eni.InterfaceType,
		MacAddress: eni.MacAddress, NetworkInterfaceID: eni.NetworkInterfaceID, OwnerID: eni.OwnerID,
		PrivateDNSName: eni.PrivateDNSName, PrivateIPAddress: eni.PrivateIPAddress, PrivateIPAddresses: setOf[networkInterfacePrivateIPXML]{private},
		SourceDestCheck: eni.SourceDestCheck, Status: eni.Status, SubnetID: eni.SubnetID, VpcID: eni.VpcID,
	}, true
}

// networkInterfaceFilters are the model's filters; those about features
// not built (IPv6, operators) match nothing.
var networkInterfaceFilters = filterFields[networkInterfaceItem]{
	"network-interface-id":             func(n networkInterfaceItem) []string { return []string{n.NetworkInterfaceID} },
	"attachment.attach-time":           func(n networkInterfaceItem) []string { return []string{n.Attachment.AttachTime} },
	"attachment.attachment-id":         func(n networkInterfaceItem) []string { return []string{n.Attachment.AttachmentID} },
	"attachment.delete-on-termination": func(n networkInterfaceItem) []string { return []string{boolString(n.Attachment.DeleteOnTermination)} },
	"attachment.device-index":          func(n networkInterfaceItem) []string { return []string{strconv.Itoa(n.Attachment.DeviceIndex)} },
	"attachment.instance-id":           func(n networkInterfaceItem) []string { return []string{n.Attachment.InstanceID} },
	"attachment.instance-owner-id":     func(n networkInterfaceItem) []string { return []string{n.Attachment.InstanceOwnerID} },
	"attachment.status":                func(n networkInterfaceItem) []string { return []string{n.Attachment.Status} },
	"availability-zone":                func(n networkInterfaceItem) []string { return []string{n.AvailabilityZone} },
	"description":                      func(n networkInterfaceItem) []string { return []string{n.Description} },
	"group-id": func(n networkInterfaceItem) []string {
		var out []string
		for _, g := range n.Groups.Items {
			out = append(out, g.GroupID)
		}
		return out
	},
	"group-name": func(n networkInterfaceItem) []string {
		var out []string
		for _, g := range n.Groups.Items {
			out = append(out, g.GroupName)
		}
		return out
	},
	"interface-type":                  func(n networkInterfaceItem) []string { return []string{n.InterfaceType} },
	"mac-address":                     func(n networkInterfaceItem) []string { return []string{n.MacAddress} },
	"owner-id":                        func(n networkInterfaceItem) []string { return []string{n.OwnerID} },
	"private-dns-name":                func(n networkInterfaceItem) []string { return []string{n.PrivateDNSName} },
	"private-ip-address":              func(n networkInterfaceItem) []string { return []string{n.PrivateIPAddress} },
	"addresses.private-ip-address":    func(n networkInterfaceItem) []string { return []string{n.PrivateIPAddress} },
	"addresses.primary":               func(n networkInterfaceItem) []string { return []string{"true"} },
	"requester-managed":               func(n networkInterfaceItem) []string { return []string{boolString(n.RequesterManaged)} },
	"source-dest-check":               func(n networkInterfaceItem) []string { return []string{boolString(n.SourceDestCheck)} },
	"status":                          func(n networkInterfaceItem) []string { return []string{n.Status} },
	"subnet-id":                       func(n networkInterfaceItem) []string { return []string{n.SubnetID} },
	"vpc-id":                          func(n networkInterfaceItem) []string { return []string{n.VpcID} },
	"association.allocation-id":       eniAssoc(func(a networkInterfaceAssociationXML) string { return a.AllocationID }),
	"association.association-id":      eniAssoc(func(a networkInterfaceAssociationXML) string { return a.AssociationID }),
	"addresses.association.owner-id":  eniAssoc(func(a networkInterfaceAssociationXML) string { return a.IPOwnerID }),
	"addresses.association.public-ip": eniAssoc(func(a networkInterfaceAssociationXML) string { return a.PublicIP }),
	"association.ip-owner-id":         eniAssoc(func(a networkInterfaceAssociationXML) string { return a.IPOwnerID }),
	"association.public-ip":           eniAssoc(func(a networkInterfaceAssociationXML) string { return a.PublicIP }),
	"association.public-dns-name":     eniAssoc(func(a networkInterfaceAssociationXML) string { return a.PublicDNSName }),
	"availability-zone-id":            func(networkInterfaceItem) []string { return nil },
	"ipv6-addresses.ipv6-address":     func(networkInterfaceItem) []string { return nil },
	"operator.managed":                func(networkInterfaceItem) []string { return []string{"false"} },
	"operator.principal":              func(networkInterfaceItem) []string { return nil },
	"requester-id":                    func(networkInterfaceItem) []string { return nil },
}

// eniAssoc is a filter on the interface's public address; an interface
// without one matches nothing.
func eniAssoc(f func(networkInterfaceAssociationXML) string) func(networkInterfaceItem) []string {
	return func(n networkInterfaceItem) []string {
		if n.Association == nil || f(*n.Association) == "" {
			return nil
		}
		return []string{f(*n.Association)}
	}
}

type describeNetworkInterfacesResponse struct {
	Response
	NetworkInterfaces setOf[networkInterfaceItem] `xml:"networkInterfaceSet"`
	NextToken         string                      `xml:"nextToken,omitempty"`
}

func (a *api) describeNetworkInterfaces(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if _, err := p.Bool("IncludeManagedResources"); err != nil {
		return nil, err
	}
	ids := p.List("NetworkInterfaceId")
	page, next, err := describe(p, describeCall[networkInterfaceItem]{
		fields: networkInterfaceFilters, tags: func(networkInterfaceItem) []store.Tag { return nil }, filterNamesFirst: true,
		check: func() error {
			if len(ids) > 0 && p.Has("MaxResults") {
				return awserr.New("InvalidParameterCombination", "The parameter networkInterfaceIdSet cannot be used with the parameter maxResults")
			}
			for _, id := range ids {
				if !networkInterfaceIDPattern.MatchString(id) {
					return awserr.New("InvalidNetworkInterfaceID.Malformed", "Invalid id: \"%s\" (expecting \"eni-...\")", id)
				}
			}
			return nil
		},
		fetch: func() ([]networkInterfaceItem, error) {
			insts, err := a.cloud.DescribeInstances(ctx, req.Caller.AccountID, nil)
			if err != nil {
				return nil, err
			}
			byID := map[string]networkInterfaceItem{}
			var all []networkInterfaceItem
			for _, in := range insts {
				if n, ok := a.networkInterfaceOf(in); ok {
					all = append(all, n)
					byID[n.NetworkInterfaceID] = n
				}
			}
			if len(ids) == 0 {
				return all, nil
			}
			var named []networkInterfaceItem
			var missing []string
			for _, id := range ids {
				if n, ok := byID[id]; ok {
					named = append(named, n)
				} else {
					missing = append(missing, id)
				}
			}
			switch {
			case len(missing) == 1:
				return nil, awserr.New("InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%s' does not exist", missing[0])
			case len(missing) > 1:
				return nil, awserr.New("InvalidNetworkInterfaceID.NotFound", "The networkInterface IDs '%s' do not exist", strings.Join(missing, ", "))
			}
			return named, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeNetworkInterfacesResponse{NetworkInterfaces: setOf[networkInterfaceItem]{page}, NextToken: next}, nil
}
