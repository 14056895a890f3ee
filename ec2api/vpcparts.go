package ec2api

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// What every VPC comes with, as Terraform's data sources and the common
// modules read it for the default VPC: its DNS attributes
// (DescribeVpcAttribute, ModifyVpcAttribute), its main route table (the
// local route and a default route to its internet gateway: instances of the
// default subnets get public addresses and reach out through the cloud), its
// internet gateway, its DHCP options set, its default network ACL (allow
// all: the cloud filters traffic with security groups only), and the VPC
// endpoints and prefix lists the cloud has none of.

// ---- DescribeVpcAttribute, ModifyVpcAttribute

type attributeBooleanValue struct {
	Value bool `xml:"value"`
}

type describeVpcAttributeResponse struct {
	Response
	VpcID                            string                 `xml:"vpcId"`
	EnableDNSHostnames               *attributeBooleanValue `xml:"enableDnsHostnames,omitempty"`
	EnableDNSSupport                 *attributeBooleanValue `xml:"enableDnsSupport,omitempty"`
	EnableNetworkAddressUsageMetrics *attributeBooleanValue `xml:"enableNetworkAddressUsageMetrics,omitempty"`
}

// vpcAttributes are the VpcAttributeName values, in the model's order.
var vpcAttributes = []string{store.VPCAttrEnableDNSSupport, store.VPCAttrEnableDNSHostnames, store.VPCAttrEnableNetworkAddressUsageMetrics}

// vpcOf is the one VPC named by id, or EC2's error for an id the caller
// does not have.
func (a *api) vpcOf(ctx context.Context, accountID, id string) (store.VPC, error) {
	vpcs, err := a.cloud.VPCs(ctx, accountID, []string{id})
	if err != nil {
		return store.VPC{}, err
	}
	return vpcs[0], nil
}

func (a *api) describeVpcAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := p.Required("VpcId")
	if err != nil {
		return nil, err
	}
	attr, err := p.Required("Attribute")
	if err != nil {
		return nil, err
	}
	if !slices.Contains(vpcAttributes, attr) {
		return nil, awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	v, err := a.vpcOf(ctx, req.Caller.AccountID, id)
	if err != nil {
		return nil, err
	}
	resp := &describeVpcAttributeResponse{VpcID: v.ID}
	switch attr {
	case store.VPCAttrEnableDNSSupport:
		resp.EnableDNSSupport = &attributeBooleanValue{v.EnableDNSSupport}
	case store.VPCAttrEnableDNSHostnames:
		resp.EnableDNSHostnames = &attributeBooleanValue{v.EnableDNSHostnames}
	case store.VPCAttrEnableNetworkAddressUsageMetrics:
		resp.EnableNetworkAddressUsageMetrics = &attributeBooleanValue{v.EnableNetworkAddressUsageMetrics}
	}
	return resp, nil
}

// modifyVpcAttribute sets one attribute per call, as EC2 allows, each given
// in its structured form (EnableDnsSupport.Value=true).
func (a *api) modifyVpcAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	id, err := p.Required("VpcId")
	if err != nil {
		return nil, err
	}
	var given []string
	var value bool
	for _, attr := range vpcAttributes {
		param := strings.ToUpper(attr[:1]) + attr[1:] + ".Value"
		if !p.Has(param) {
			continue
		}
		if value, err = p.Bool(param); err != nil {
			return nil, err
		}
		given = append(given, attr)
	}
	switch {
	case len(given) == 0:
		return nil, awserr.MissingParameter("EnableDnsSupport, EnableDnsHostnames or EnableNetworkAddressUsageMetrics")
	case len(given) > 1:
		return nil, awserr.New("InvalidParameterCombination", "Fields for multiple attribute types specified: %s", strings.Join(given, ", "))
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if err := a.cloud.ModifyVPCAttribute(ctx, req.Caller.AccountID, id, given[0], value); err != nil {
		return nil, err
	}
	return ok()
}

// ---- DescribeRouteTables: each VPC's main table

type routeXML struct {
	DestinationCidrBlock string `xml:"destinationCidrBlock"`
	GatewayID            string `xml:"gatewayId"`
	Origin               string `xml:"origin"`
	State                string `xml:"state"`
}

type associationStateXML struct {
	State string `xml:"state"`
}

type routeTableAssociationXML struct {
	Main                    bool                `xml:"main"`
	RouteTableAssociationID string              `xml:"routeTableAssociationId"`
	RouteTableID            string              `xml:"routeTableId"`
	SubnetID                string              `xml:"subnetId,omitempty"`
	GatewayID               string              `xml:"gatewayId,omitempty"`
	AssociationState        associationStateXML `xml:"associationState"`
}

type routeTableItem struct {
	Associations    setOf[routeTableAssociationXML] `xml:"associationSet"`
	PropagatingVgws setOf[struct{}]                 `xml:"propagatingVgwSet"`
	RouteTableID    string                          `xml:"routeTableId"`
	Routes          setOf[routeXML]                 `xml:"routeSet"`
	Tags            setOf[tagItem]                  `xml:"tagSet"`
	VpcID           string                          `xml:"vpcId"`
	OwnerID         string                          `xml:"ownerId"`
	tags            []store.Tag
}

type describeRouteTablesResponse struct {
	Response
	RouteTables setOf[routeTableItem] `xml:"routeTableSet"`
	NextToken   string                `xml:"nextToken,omitempty"`
}

// routeTableView is a VPC's main route table: the VPC's own CIDR is local,
// everything else goes out through the internet gateway. Subnets use it
// implicitly, as a default VPC's subnets use theirs on AWS, so its one
// association is the main one.
func routeTableView(v store.VPC) routeTableItem {
	return routeTableItem{
		Associations: setOf[routeTableAssociationXML]{[]routeTableAssociationXML{{
			Main: true, RouteTableAssociationID: v.RouteTableAssociationID, RouteTableID: v.RouteTableID,
			AssociationState: associationStateXML{"associated"},
		}}},
		RouteTableID: v.RouteTableID,
		Routes: setOf[routeXML]{[]routeXML{
			{DestinationCidrBlock: v.CIDR, GatewayID: "local", Origin: "CreateRouteTable", State: "active"},
			{DestinationCidrBlock: "0.0.0.0/0", GatewayID: v.InternetGatewayID, Origin: "CreateRoute", State: "active"},
		}},
		Tags:  setOf[tagItem]{tagItems(v.PartTags[v.RouteTableID])},
		VpcID: v.ID, OwnerID: v.AccountID, tags: v.PartTags[v.RouteTableID],
	}
}

func routeValues(f func(routeXML) string) func(routeTableItem) []string {
	return func(t routeTableItem) []string {
		var out []string
		for _, r := range t.Routes.Items {
			out = append(out, optValue(f(r))...)
		}
		return out
	}
}

func rtbAssocValues(f func(routeTableAssociationXML) string) func(routeTableItem) []string {
	return func(t routeTableItem) []string {
		var out []string
		for _, as := range t.Associations.Items {
			out = append(out, optValue(f(as))...)
		}
		return out
	}
}

func rtbNone(routeTableItem) []string { return nil }

// routeTableFilters are the model's filters of DescribeRouteTables; those
// about targets the cloud has none of match nothing.
var routeTableFilters = filterFields[routeTableItem]{
	"association.gateway-id":                 rtbAssocValues(func(as routeTableAssociationXML) string { return as.GatewayID }),
	"association.route-table-association-id": rtbAssocValues(func(as routeTableAssociationXML) string { return as.RouteTableAssociationID }),
	"association.route-table-id":             rtbAssocValues(func(as routeTableAssociationXML) string { return as.RouteTableID }),
	"association.subnet-id":                  rtbAssocValues(func(as routeTableAssociationXML) string { return as.SubnetID }),
	"association.main":                       rtbAssocValues(func(as routeTableAssociationXML) string { return boolString(as.Main) }),
	"owner-id":                               func(t routeTableItem) []string { return []string{t.OwnerID} },
	"route-table-id":                         func(t routeTableItem) []string { return []string{t.RouteTableID} },
	"route.destination-cidr-block":           routeValues(func(r routeXML) string { return r.DestinationCidrBlock }),
	"route.destination-ipv6-cidr-block":      rtbNone,
	"route.destination-prefix-list-id":       rtbNone,
	"route.egress-only-internet-gateway-id":  rtbNone,
	"route.gateway-id":                       routeValues(func(r routeXML) string { return r.GatewayID }),
	"route.instance-id":                      rtbNone,
	"route.nat-gateway-id":                   rtbNone,
	"route.transit-gateway-id":               rtbNone,
	"route.origin":                           routeValues(func(r routeXML) string { return r.Origin }),
	"route.state":                            routeValues(func(r routeXML) string { return r.State }),
	"route.vpc-peering-connection-id":        rtbNone,
	"vpc-id":                                 func(t routeTableItem) []string { return []string{t.VpcID} },
}

func (a *api) describeRouteTables(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[routeTableItem]{
		fields: routeTableFilters, tags: func(t routeTableItem) []store.Tag { return t.tags },
		fetch: func() ([]routeTableItem, error) {
			return viewsOf(routeTableView)(a.cloud.RouteTables(ctx, req.Caller.AccountID, p.List("RouteTableId")))
		},
		minResults: 5, maxResults: 100,
	})
	if err != nil {
		return nil, err
	}
	return &describeRouteTablesResponse{RouteTables: setOf[routeTableItem]{page}, NextToken: next}, nil
}

// ---- DescribeInternetGateways: each VPC's gateway, attached to it

type internetGatewayAttachmentXML struct {
	State string `xml:"state"`
	VpcID string `xml:"vpcId"`
}

type internetGatewayItem struct {
	Attachments       setOf[internetGatewayAttachmentXML] `xml:"attachmentSet"`
	InternetGatewayID string                              `xml:"internetGatewayId"`
	OwnerID           string                              `xml:"ownerId"`
	Tags              setOf[tagItem]                      `xml:"tagSet"`
	tags              []store.Tag
}

type describeInternetGatewaysResponse struct {
	Response
	InternetGateways setOf[internetGatewayItem] `xml:"internetGatewaySet"`
	NextToken        string                     `xml:"nextToken,omitempty"`
}

// internetGatewayView is the VPC's gateway. An attached gateway's state is
// "available", as EC2 reports it (the model's enum says "attached"; clients
// such as Terraform wait for "available").
func internetGatewayView(v store.VPC) internetGatewayItem {
	return internetGatewayItem{
		Attachments:       setOf[internetGatewayAttachmentXML]{[]internetGatewayAttachmentXML{{State: "available", VpcID: v.ID}}},
		InternetGatewayID: v.InternetGatewayID, OwnerID: v.AccountID,
		Tags: setOf[tagItem]{tagItems(v.PartTags[v.InternetGatewayID])}, tags: v.PartTags[v.InternetGatewayID],
	}
}

func igwAttachments(f func(internetGatewayAttachmentXML) string) func(internetGatewayItem) []string {
	return func(g internetGatewayItem) []string {
		var out []string
		for _, at := range g.Attachments.Items {
			out = append(out, f(at))
		}
		return out
	}
}

var internetGatewayFilters = filterFields[internetGatewayItem]{
	"attachment.state":    igwAttachments(func(at internetGatewayAttachmentXML) string { return at.State }),
	"attachment.vpc-id":   igwAttachments(func(at internetGatewayAttachmentXML) string { return at.VpcID }),
	"internet-gateway-id": func(g internetGatewayItem) []string { return []string{g.InternetGatewayID} },
	"owner-id":            func(g internetGatewayItem) []string { return []string{g.OwnerID} },
}

func (a *api) describeInternetGateways(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[internetGatewayItem]{
		fields: internetGatewayFilters, tags: func(g internetGatewayItem) []store.Tag { return g.tags },
		fetch: func() ([]internetGatewayItem, error) {
			return viewsOf(internetGatewayView)(a.cloud.InternetGateways(ctx, req.Caller.AccountID, p.List("InternetGatewayId")))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeInternetGatewaysResponse{InternetGateways: setOf[internetGatewayItem]{page}, NextToken: next}, nil
}

// ---- DescribeDhcpOptions: each VPC's set

type dhcpValueXML struct {
	Value string `xml:"value"`
}

type dhcpConfigurationXML struct {
	Key    string              `xml:"key"`
	Values setOf[dhcpValueXML] `xml:"valueSet"`
}

type dhcpOptionsItem struct {
	OwnerID            string                      `xml:"ownerId"`
	Tags               setOf[tagItem]              `xml:"tagSet"`
	DhcpOptionsID      string                      `xml:"dhcpOptionsId"`
	DhcpConfigurations setOf[dhcpConfigurationXML] `xml:"dhcpConfigurationSet"`
	tags               []store.Tag
}

type describeDhcpOptionsResponse struct {
	Response
	DhcpOptions setOf[dhcpOptionsItem] `xml:"dhcpOptionsSet"`
	NextToken   string                 `xml:"nextToken,omitempty"`
}

// dhcpOptionsView is the VPC's set as instances see it: the domain their
// private DNS names end in (privateDNSName) and the cloud's own resolver,
// which AWS names AmazonProvidedDNS.
func (a *api) dhcpOptionsView(v store.VPC) dhcpOptionsItem {
	conf := func(key, value string) dhcpConfigurationXML {
		return dhcpConfigurationXML{Key: key, Values: setOf[dhcpValueXML]{[]dhcpValueXML{{value}}}}
	}
	return dhcpOptionsItem{
		OwnerID: v.AccountID, DhcpOptionsID: v.DHCPOptionsID,
		Tags: setOf[tagItem]{tagItems(v.PartTags[v.DHCPOptionsID])}, tags: v.PartTags[v.DHCPOptionsID],
		DhcpConfigurations: setOf[dhcpConfigurationXML]{[]dhcpConfigurationXML{
			conf("domain-name", a.cloud.Region()+".compute.internal"),
			conf("domain-name-servers", "AmazonProvidedDNS"),
		}},
	}
}

func dhcpConfigurations(f func(dhcpConfigurationXML) []string) func(dhcpOptionsItem) []string {
	return func(d dhcpOptionsItem) []string {
		var out []string
		for _, c := range d.DhcpConfigurations.Items {
			out = append(out, f(c)...)
		}
		return out
	}
}

var dhcpOptionsFilters = filterFields[dhcpOptionsItem]{
	"dhcp-options-id": func(d dhcpOptionsItem) []string { return []string{d.DhcpOptionsID} },
	"key":             dhcpConfigurations(func(c dhcpConfigurationXML) []string { return []string{c.Key} }),
	"value": dhcpConfigurations(func(c dhcpConfigurationXML) []string {
		var out []string
		for _, v := range c.Values.Items {
			out = append(out, v.Value)
		}
		return out
	}),
	"owner-id": func(d dhcpOptionsItem) []string { return []string{d.OwnerID} },
}

func (a *api) describeDhcpOptions(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[dhcpOptionsItem]{
		fields: dhcpOptionsFilters, tags: func(d dhcpOptionsItem) []store.Tag { return d.tags },
		fetch: func() ([]dhcpOptionsItem, error) {
			return viewsOf(a.dhcpOptionsView)(a.cloud.DHCPOptions(ctx, req.Caller.AccountID, p.List("DhcpOptionsId")))
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeDhcpOptionsResponse{DhcpOptions: setOf[dhcpOptionsItem]{page}, NextToken: next}, nil
}

// ---- DescribeNetworkAcls: each VPC's default ACL, which allows all

type networkACLEntryXML struct {
	CidrBlock  string `xml:"cidrBlock"`
	Egress     bool   `xml:"egress"`
	Protocol   string `xml:"protocol"`
	RuleAction string `xml:"ruleAction"`
	RuleNumber int    `xml:"ruleNumber"`
}

type networkACLAssociationXML struct {
	NetworkACLAssociationID string `xml:"networkAclAssociationId"`
	NetworkACLID            string `xml:"networkAclId"`
	SubnetID                string `xml:"subnetId"`
}

type networkACLItem struct {
	Associations setOf[networkACLAssociationXML] `xml:"associationSet"`
	Entries      setOf[networkACLEntryXML]       `xml:"entrySet"`
	IsDefault    bool                            `xml:"default"`
	NetworkACLID string                          `xml:"networkAclId"`
	Tags         setOf[tagItem]                  `xml:"tagSet"`
	VpcID        string                          `xml:"vpcId"`
	OwnerID      string                          `xml:"ownerId"`
	tags         []store.Tag
}

type describeNetworkAclsResponse struct {
	Response
	NetworkACLs setOf[networkACLItem] `xml:"networkAclSet"`
	NextToken   string                `xml:"nextToken,omitempty"`
}

// lastACLRule is the number of the deny-all rule that ends every ACL.
const lastACLRule = 32767

// networkACLView is a VPC's default ACL as AWS makes it: rule 100 allows all
// traffic each way and the last rule denies the rest; every subnet of the
// VPC is associated with it.
func networkACLView(v store.VPC, subnets []store.Subnet) networkACLItem {
	acl := networkACLItem{IsDefault: true, NetworkACLID: v.NetworkACLID, VpcID: v.ID, OwnerID: v.AccountID,
		Tags: setOf[tagItem]{tagItems(v.PartTags[v.NetworkACLID])}, tags: v.PartTags[v.NetworkACLID]}
	for _, egress := range []bool{true, false} {
		acl.Entries.Items = append(acl.Entries.Items,
			networkACLEntryXML{CidrBlock: "0.0.0.0/0", Egress: egress, Protocol: "-1", RuleAction: "allow", RuleNumber: 100},
			networkACLEntryXML{CidrBlock: "0.0.0.0/0", Egress: egress, Protocol: "-1", RuleAction: "deny", RuleNumber: lastACLRule})
	}
	for _, sn := range subnets {
		if sn.VPCID == v.ID {
			acl.Associations.Items = append(acl.Associations.Items, networkACLAssociationXML{
				NetworkACLAssociationID: sn.NetworkACLAssociationID, NetworkACLID: v.NetworkACLID, SubnetID: sn.ID})
		}
	}
	return acl
}

func aclAssociations(f func(networkACLAssociationXML) string) func(networkACLItem) []string {
	return func(n networkACLItem) []string {
		var out []string
		for _, as := range n.Associations.Items {
			out = append(out, f(as))
		}
		return out
	}
}

func aclEntries(f func(networkACLEntryXML) string) func(networkACLItem) []string {
	return func(n networkACLItem) []string {
		var out []string
		for _, e := range n.Entries.Items {
			out = append(out, f(e))
		}
		return out
	}
}

func aclNone(networkACLItem) []string { return nil }

// networkACLFilters are the model's filters of DescribeNetworkAcls; those
// about ports, ICMP and IPv6 match nothing (no entry has them).
var networkACLFilters = filterFields[networkACLItem]{
	"association.association-id": aclAssociations(func(as networkACLAssociationXML) string { return as.NetworkACLAssociationID }),
	"association.network-acl-id": aclAssociations(func(as networkACLAssociationXML) string { return as.NetworkACLID }),
	"association.subnet-id":      aclAssociations(func(as networkACLAssociationXML) string { return as.SubnetID }),
	"default":                    func(n networkACLItem) []string { return []string{boolString(n.IsDefault)} },
	"entry.cidr":                 aclEntries(func(e networkACLEntryXML) string { return e.CidrBlock }),
	"entry.icmp.code":            aclNone,
	"entry.icmp.type":            aclNone,
	"entry.ipv6-cidr":            aclNone,
	"entry.port-range.from":      aclNone,
	"entry.port-range.to":        aclNone,
	"entry.protocol":             aclEntries(func(e networkACLEntryXML) string { return e.Protocol }),
	"entry.rule-action":          aclEntries(func(e networkACLEntryXML) string { return e.RuleAction }),
	"entry.egress":               aclEntries(func(e networkACLEntryXML) string { return boolString(e.Egress) }),
	"entry.rule-number":          aclEntries(func(e networkACLEntryXML) string { return strconv.Itoa(e.RuleNumber) }),
	"network-acl-id":             func(n networkACLItem) []string { return []string{n.NetworkACLID} },
	"owner-id":                   func(n networkACLItem) []string { return []string{n.OwnerID} },
	"vpc-id":                     func(n networkACLItem) []string { return []string{n.VpcID} },
}

func (a *api) describeNetworkAcls(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	page, next, err := describe(p, describeCall[networkACLItem]{
		fields: networkACLFilters, tags: func(n networkACLItem) []store.Tag { return n.tags },
		fetch: func() ([]networkACLItem, error) {
			vpcs, err := a.cloud.NetworkACLs(ctx, req.Caller.AccountID, p.List("NetworkAclId"))
			if err != nil {
				return nil, err
			}
			subnets, err := a.cloud.Subnets(ctx, req.Caller.AccountID, nil)
			if err != nil {
				return nil, err
			}
			out := make([]networkACLItem, len(vpcs))
			for i, v := range vpcs {
				out[i] = networkACLView(v, subnets)
			}
			return out, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeNetworkAclsResponse{NetworkACLs: setOf[networkACLItem]{page}, NextToken: next}, nil
}

// ---- DescribeVpcEndpoints, DescribePrefixLists: the cloud has none

type describeVpcEndpointsResponse struct {
	Response
	VpcEndpoints setOf[struct{}] `xml:"vpcEndpointSet"`
}

var vpcEndpointFilters = knownFilterNames("ip-address-type", "service-name", "service-region", "vpc-id",
	"vpc-endpoint-id", "vpc-endpoint-state", "vpc-endpoint-type")

func (a *api) describeVpcEndpoints(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := noneOfThese(p, vpcEndpointFilters, "VpcEndpointId", "InvalidVpcEndpointId.NotFound", "The Vpc Endpoint Id '%s' does not exist"); err != nil {
		return nil, err
	}
	return &describeVpcEndpointsResponse{}, nil
}

type describePrefixListsResponse struct {
	Response
	PrefixLists setOf[struct{}] `xml:"prefixListSet"`
}

// DescribePrefixLists lists AWS's service prefix lists (S3's, DynamoDB's),
// which gateway endpoints route to; the cloud has no such endpoints.
var prefixListFilters = knownFilterNames("prefix-list-id", "prefix-list-name")

func (a *api) describePrefixLists(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := noneOfThese(p, prefixListFilters, "PrefixListId", "InvalidPrefixListId.NotFound", "The prefix list ID '%s' does not exist"); err != nil {
		return nil, err
	}
	return &describePrefixListsResponse{}, nil
}

// noneOfThese answers a Describe call of a resource the cloud has none of:
// its filters and MaxResults are checked, a dry run answered, and any id the
// caller names (idParam.N) is refused with notFound.
func noneOfThese(p queryapi.Params, filters filterFields[struct{}], idParam, notFound, message string) error {
	if err := checkFiltersKnown(p, filters); err != nil {
		return err
	}
	if _, _, err := p.Int("MaxResults"); err != nil {
		return err
	}
	if err := dryRun(p); err != nil {
		return err
	}
	if ids := p.List(idParam); len(ids) > 0 {
		return awserr.New(notFound, message, ids[0])
	}
	return nil
}
