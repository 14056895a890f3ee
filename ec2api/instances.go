package ec2api

// Instances: RunInstances, DescribeInstances, TerminateInstances,
// StopInstances, StartInstances (EBS-backed instances only),
// RebootInstances, GetConsoleOutput, DescribeInstanceStatus,
// DescribeInstanceAttribute, ModifyInstanceAttribute and
// DescribeInstanceCreditSpecifications (DescribeVolumes is in volumes.go).
//
// Parameters are decoded and their syntax checked here; every check that
// needs the cloud's records (images, key pairs, groups, capacity, states)
// is the cloud controller's.

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/nodeview"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// InstanceService is the cloud controller's side of the instance actions.
type InstanceService interface {
	// RunInstances launches between MinCount and MaxCount instances, or
	// none, and returns them (a retried client token: the first launch's).
	RunInstances(ctx context.Context, accountID string, spec store.LaunchSpec) ([]store.Instance, error)
	// DescribeInstances lists the account's instances, or exactly those
	// named (each of which must exist).
	DescribeInstances(ctx context.Context, accountID string, instanceIDs []string) ([]store.Instance, error)
	// TerminateInstances ends instances, all or none.
	TerminateInstances(ctx context.Context, accountID string, instanceIDs []string) ([]store.InstanceTransition, error)
	// StopInstances stops EBS-backed instances, all or none (force and
	// hibernate as EC2 takes them).
	StopInstances(ctx context.Context, accountID string, instanceIDs []string, force, hibernate bool) ([]store.InstanceTransition, error)
	// StartInstances starts stopped instances, all or none.
	StartInstances(ctx context.Context, accountID string, instanceIDs []string) ([]store.InstanceTransition, error)
	// RebootInstances resets the running instances among those named.
	RebootInstances(ctx context.Context, accountID string, instanceIDs []string) error
	// ConsoleOutput is an instance's console (nil when there is none).
	ConsoleOutput(ctx context.Context, accountID, instanceID string) ([]byte, error)
	// ModifyInstanceAttribute applies one change; groupIDs, when not nil,
	// replaces the instance's security groups.
	ModifyInstanceAttribute(ctx context.Context, accountID, instanceID string, u store.InstanceUpdate, groupIDs []string) error
	// Unreachable says which of the instances (all when nil) are on a node
	// their cluster cannot reach now, why and since when.
	Unreachable(instanceIDs []string) map[string]nodeview.Unreachable
}

// Ids of the kinds the instance actions take.
var (
	kernelIDPattern  = idPattern("eki", "aki")
	ramdiskIDPattern = idPattern("eri", "ari")
	subnetIDPattern  = idPattern("subnet")
	groupIDPattern   = idPattern("sg")
	volumeIDPattern  = idPattern("vol")
)

// maxConsoleOutput is how much of the console GetConsoleOutput returns:
// its last 64 KiB, as EC2.
const maxConsoleOutput = 64 * 1024

// ---- shapes

type instanceStateXML struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func stateOf(state string) instanceStateXML {
	code := map[string]int{store.InstancePending: 0, store.InstanceRunning: 16, store.InstanceShuttingDown: 32,
		store.InstanceTerminated: 48, store.InstanceStopping: 64, store.InstanceStopped: 80}[state]
	return instanceStateXML{Code: code, Name: state}
}

type groupIdentifier struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type stateReasonXML struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type placementXML struct {
	AvailabilityZone   string `xml:"availabilityZone"`
	AvailabilityZoneID string `xml:"availabilityZoneId,omitempty"`
	GroupName          string `xml:"groupName"`
	Tenancy            string `xml:"tenancy"`
}

type monitoringXML struct {
	State string `xml:"state"`
}

type eniAttachmentXML struct {
	AttachTime          string `xml:"attachTime"`
	AttachmentID        string `xml:"attachmentId"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
}

type eniPrivateIPXML struct {
	Association      *eniAssociationXML `xml:"association,omitempty"`
	Primary          bool               `xml:"primary"`
	PrivateDNSName   string             `xml:"privateDnsName"`
	PrivateIPAddress string             `xml:"privateIpAddress"`
}

// eniAssociationXML is botocore's InstanceNetworkInterfaceAssociation: the
// public address of an interface. IpOwnerId is the account of an elastic
// IP, "amazon" for one lent from the pool, as EC2 writes it.
type eniAssociationXML struct {
	IPOwnerID     string `xml:"ipOwnerId"`
	PublicDNSName string `xml:"publicDnsName"`
	PublicIP      string `xml:"publicIp"`
}

func eniAssociation(region string, in store.Instance) *eniAssociationXML {
	if in.PublicIP == "" {
		return nil
	}
	owner := "amazon"
	if in.AllocationID != "" {
		owner = in.AccountID
	}
	return &eniAssociationXML{IPOwnerID: owner, PublicDNSName: publicDNSName(region, in.PublicIP), PublicIP: in.PublicIP}
}

type instanceENIXML struct {
	Association        *eniAssociationXML     `xml:"association,omitempty"`
	Attachment         eniAttachmentXML       `xml:"attachment"`
	Description        string                 `xml:"description"`
	Groups             setOf[groupIdentifier] `xml:"groupSet"`
	IPv6Addresses      setOf[struct{}]        `xml:"ipv6AddressesSet"`
	MacAddress         string                 `xml:"macAddress"`
	NetworkInterfaceID string                 `xml:"networkInterfaceId"`
	OwnerID            string                 `xml:"ownerId"`
	PrivateDNSName     string                 `xml:"privateDnsName"`
	PrivateIPAddress   string                 `xml:"privateIpAddress"`
	PrivateIPAddresses setOf[eniPrivateIPXML] `xml:"privateIpAddressesSet"`
	SourceDestCheck    bool                   `xml:"sourceDestCheck"`
	Status             string                 `xml:"status"`
	SubnetID           string                 `xml:"subnetId"`
	VpcID              string                 `xml:"vpcId"`
	InterfaceType      string                 `xml:"interfaceType"`
}

type cpuOptionsXML struct {
	CoreCount      int `xml:"coreCount"`
	ThreadsPerCore int `xml:"threadsPerCore"`
}

type capacityReservationXML struct {
	Preference string `xml:"capacityReservationPreference"`
}

type configuredXML struct {
	Configured bool `xml:"configured"`
}

type enabledXML struct {
	Enabled bool `xml:"enabled"`
}

type metadataOptionsXML struct {
	State                   string `xml:"state"`
	HTTPTokens              string `xml:"httpTokens"`
	HTTPPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint            string `xml:"httpEndpoint"`
	HTTPProtocolIPv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

type instanceDNSNameOptionsXML struct {
	HostnameType                    string `xml:"hostnameType"`
	EnableResourceNameDNSARecord    bool   `xml:"enableResourceNameDnsARecord"`
	EnableResourceNameDNSAAAARecord bool   `xml:"enableResourceNameDnsAAAARecord"`
}

type maintenanceOptionsXML struct {
	AutoRecovery string `xml:"autoRecovery"`
}

// instanceItem is botocore's Instance shape.
type instanceItem struct {
	InstanceID               string                    `xml:"instanceId"`
	ImageID                  string                    `xml:"imageId"`
	State                    instanceStateXML          `xml:"instanceState"`
	PrivateDNSName           string                    `xml:"privateDnsName"`
	DNSName                  string                    `xml:"dnsName"`
	Reason                   string                    `xml:"reason"`
	KeyName                  string                    `xml:"keyName,omitempty"`
	AmiLaunchIndex           int                       `xml:"amiLaunchIndex"`
	ProductCodes             setOf[struct{}]           `xml:"productCodes"`
	InstanceType             string                    `xml:"instanceType"`
	LaunchTime               string                    `xml:"launchTime"`
	Placement                placementXML              `xml:"placement"`
	KernelID                 string                    `xml:"kernelId,omitempty"`
	RamdiskID                string                    `xml:"ramdiskId,omitempty"`
	Monitoring               monitoringXML             `xml:"monitoring"`
	SubnetID                 string                    `xml:"subnetId,omitempty"`
	VpcID                    string                    `xml:"vpcId,omitempty"`
	PrivateIPAddress         string                    `xml:"privateIpAddress,omitempty"`
	IPAddress                string                    `xml:"ipAddress,omitempty"`
	SourceDestCheck          bool                      `xml:"sourceDestCheck"`
	Groups                   setOf[groupIdentifier]    `xml:"groupSet"`
	StateReason              *stateReasonXML           `xml:"stateReason,omitempty"`
	Architecture             string                    `xml:"architecture"`
	RootDeviceType           string                    `xml:"rootDeviceType"`
	RootDeviceName           string                    `xml:"rootDeviceName"`
	BlockDeviceMapping       setOf[instanceBDMXML]     `xml:"blockDeviceMapping"`
	VirtualizationType       string                    `xml:"virtualizationType"`
	ClientToken              string                    `xml:"clientToken"`
	Tags                     setOf[tagItem]            `xml:"tagSet"`
	Hypervisor               string                    `xml:"hypervisor"`
	NetworkInterfaces        setOf[instanceENIXML]     `xml:"networkInterfaceSet"`
	EbsOptimized             bool                      `xml:"ebsOptimized"`
	EnaSupport               bool                      `xml:"enaSupport"`
	CPUOptions               cpuOptionsXML             `xml:"cpuOptions"`
	CapacityReservation      capacityReservationXML    `xml:"capacityReservationSpecification"`
	HibernationOptions       configuredXML             `xml:"hibernationOptions"`
	MetadataOptions          metadataOptionsXML        `xml:"metadataOptions"`
	EnclaveOptions           enabledXML                `xml:"enclaveOptions"`
	BootMode                 string                    `xml:"bootMode"`
	PlatformDetails          string                    `xml:"platformDetails"`
	UsageOperation           string                    `xml:"usageOperation"`
	UsageOperationUpdateTime string                    `xml:"usageOperationUpdateTime"`
	PrivateDNSNameOptions    instanceDNSNameOptionsXML `xml:"privateDnsNameOptions"`
	MaintenanceOptions       maintenanceOptionsXML     `xml:"maintenanceOptions"`
	CurrentInstanceBootMode  string                    `xml:"currentInstanceBootMode"`
}

// instanceBDMXML is botocore's InstanceBlockDeviceMapping: an EBS volume
// attached to an instance (Terraform's aws_instance takes the one whose
// deviceName is the instance's rootDeviceName for its root_block_device).
type instanceBDMXML struct {
	DeviceName string            `xml:"deviceName"`
	Ebs        instanceEBSDevXML `xml:"ebs"`
}

type instanceEBSDevXML struct {
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	Status              string `xml:"status"`
	VolumeID            string `xml:"volumeId"`
}

func instanceBDMs(in store.Instance) setOf[instanceBDMXML] {
	var out setOf[instanceBDMXML]
	for _, b := range in.BlockDevices {
		out.Items = append(out.Items, instanceBDMXML{DeviceName: b.Device, Ebs: instanceEBSDevXML{AttachTime: ec2Time(b.AttachMS),
			DeleteOnTermination: b.DeleteOnTermination, Status: b.State, VolumeID: b.VolumeID}})
	}
	return out
}

// reservationItem is botocore's Reservation shape.
type reservationItem struct {
	ReservationID string                 `xml:"reservationId"`
	OwnerID       string                 `xml:"ownerId"`
	Groups        setOf[groupIdentifier] `xml:"groupSet"`
	Instances     setOf[instanceItem]    `xml:"instancesSet"`
}

// ec2Time is how EC2 writes timestamps.
func ec2Time(ms int64) string {
	return store.Time(ms).Format("2006-01-02T15:04:05.000Z")
}

// privateDNSName is EC2's private host name of an address outside
// us-east-1: ip-172-31-0-5.<region>.compute.internal.
func privateDNSName(region, ip string) string {
	if ip == "" {
		return ""
	}
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + region + ".compute.internal"
}

func (a *api) instanceView(in store.Instance) instanceItem {
	region := a.cloud.Region()
	launched := in.LaunchedMS
	if launched == 0 {
		launched = in.CreatedMS
	}
	groups := setOf[groupIdentifier]{}
	for _, g := range in.Groups {
		groups.Items = append(groups.Items, groupIdentifier{GroupID: g.ID, GroupName: g.Name})
	}
	arch := in.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	monitoring := "disabled"
	if in.Options.Monitoring {
		monitoring = "enabled"
	}
	o := in.Options
	it := instanceItem{
		InstanceID: in.ID, ImageID: in.ImageID, State: stateOf(in.State), Reason: in.TransitionReason,
		KeyName: in.KeyName, AmiLaunchIndex: in.LaunchIndex, InstanceType: in.InstanceType, LaunchTime: ec2Time(launched),
		Placement: placementXML{AvailabilityZone: in.Zone, AvailabilityZoneID: a.cloud.ZoneID(in.Zone), Tenancy: "default"},
		KernelID:  in.KernelID, RamdiskID: in.RamdiskID, Monitoring: monitoringXML{State: monitoring},
		SubnetID: in.SubnetID, VpcID: in.VPCID, SourceDestCheck: o.SourceDestCheck, Groups: groups,
		Architecture: arch, RootDeviceType: in.RootDeviceType, RootDeviceName: in.RootDeviceName, BlockDeviceMapping: instanceBDMs(in),
		VirtualizationType: "paravirtual", ClientToken: in.ClientToken, Tags: tagSetOf(in.Tags), Hypervisor: "xen",
		EbsOptimized: o.EBSOptimized, CPUOptions: cpuOptionsXML{CoreCount: 1, ThreadsPerCore: 1},
		CapacityReservation: capacityReservationXML{Preference: "open"},
		HibernationOptions:  configuredXML{Configured: o.Hibernation},
		MetadataOptions: metadataOptionsXML{State: "applied", HTTPTokens: o.HTTPTokens, HTTPPutResponseHopLimit: o.HTTPHopLimit,
			HTTPEndpoint: o.HTTPEndpoint, HTTPProtocolIPv6: "disabled", InstanceMetadataTags: "disabled"},
		BootMode: "legacy-bios", PlatformDetails: "Linux/UNIX", UsageOperation: "RunInstances",
		UsageOperationUpdateTime: ec2Time(in.CreatedMS),
		PrivateDNSNameOptions:    instanceDNSNameOptionsXML{HostnameType: "ip-name"},
		MaintenanceOptions:       maintenanceOptionsXML{AutoRecovery: "default"},
		CurrentInstanceBootMode:  "legacy-bios",
	}
	if in.StateReasonCode != "" {
		it.StateReason = &stateReasonXML{Code: in.StateReasonCode, Message: in.StateReasonMessage}
	}
	// A terminated instance has let its interface and addresses go.
	if in.State != store.InstanceTerminated {
		dns := privateDNSName(region, in.PrivateIP)
		it.PrivateDNSName, it.PrivateIPAddress, it.IPAddress = dns, in.PrivateIP, in.PublicIP
		if in.PublicIP != "" {
			it.DNSName = publicDNSName(region, in.PublicIP)
		}
		assoc := eniAssociation(region, in)
		it.NetworkInterfaces.Items = []instanceENIXML{{Association: assoc,
			Attachment: eniAttachmentXML{AttachTime: ec2Time(in.CreatedMS), AttachmentID: "eni-attach-" + strings.TrimPrefix(in.ENIID, "eni-"),
				DeleteOnTermination: true, Status: "attached"},
			Groups: groups, MacAddress: in.MAC, NetworkInterfaceID: in.ENIID, OwnerID: in.AccountID,
			PrivateDNSName: dns, PrivateIPAddress: in.PrivateIP,
			PrivateIPAddresses: setOf[eniPrivateIPXML]{[]eniPrivateIPXML{{Association: assoc, Primary: true, PrivateDNSName: dns, PrivateIPAddress: in.PrivateIP}}},
			SourceDestCheck:    o.SourceDestCheck, Status: "in-use", SubnetID: in.SubnetID, VpcID: in.VPCID, InterfaceType: "interface",
		}}
	}
	return it
}

// reservations groups instances by reservation, in the order of their
// first instance.
func (a *api) reservations(insts []store.Instance) []reservationItem {
	var out []reservationItem
	index := map[string]int{}
	for _, in := range insts {
		k, ok := index[in.ReservationID]
		if !ok {
			k = len(out)
			index[in.ReservationID] = k
			// In a VPC the groups are the instances', not the reservation's:
			// EC2 leaves the reservation's groupSet empty.
			out = append(out, reservationItem{ReservationID: in.ReservationID, OwnerID: in.AccountID})
		}
		out[k].Instances.Items = append(out[k].Instances.Items, a.instanceView(in))
	}
	return out
}

// ---- RunInstances

type runInstancesResponse struct {
	Response
	reservationItem
}

// decodeBase64 undoes the base64 of user data; clients differ on padding
// and line breaks, so both are forgiven.
func decodeBase64(v string) ([]byte, bool) {
	v = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, v)
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "=")); err == nil {
		return b, true
	}
	return nil, false
}

// oneOf checks an enumerated parameter; "" gives def.
func oneOf(p queryapi.Params, name, def string, allowed ...string) (string, error) {
	v := p.String(name)
	if v == "" {
		return def, nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. Valid values are: %s", v, name, strings.Join(allowed, ", "))
}

func boolParams(p queryapi.Params, names ...string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, n := range names {
		b, err := p.Bool(n)
		if err != nil {
			return nil, err
		}
		out[n] = b
	}
	return out, nil
}

// hasPrefixed reports whether any parameter is prefix or under it.
func hasPrefixed(p queryapi.Params, prefix string) bool {
	for k := range p {
		if k == prefix || strings.HasPrefix(k, prefix+".") {
			return true
		}
	}
	return false
}

func (a *api) runInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	spec, err := decodeLaunch(p)
	if err != nil {
		return nil, err
	}
	insts, err := a.cloud.RunInstances(ctx, req.Caller.AccountID, spec)
	if err != nil {
		return nil, err
	}
	rs := a.reservations(insts)
	if len(rs) == 0 {
		return nil, errors.New("run instances: no instance recorded")
	}
	return &runInstancesResponse{reservationItem: rs[0]}, nil
}

// decodeLaunch reads RunInstances' parameters.
func decodeLaunch(p queryapi.Params) (store.LaunchSpec, error) {
	var s store.LaunchSpec
	for _, unsupported := range []string{"LaunchTemplate", "InstanceMarketOptions", "IamInstanceProfile", "ElasticGpuSpecification",
		"ElasticInferenceAccelerator", "LicenseSpecification", "SecondaryInterface"} {
		if hasPrefixed(p, unsupported) {
			return s, awserr.New("Unsupported", "The parameter %s is not supported by this cloud.", unsupported)
		}
	}
	image, err := p.Required("ImageId")
	if err != nil {
		return s, err
	}
	if !imageIDPattern.MatchString(image) {
		return s, awserr.New("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", image)
	}
	s.ImageID = image
	for _, c := range []struct {
		name string
		dst  *int
	}{{"MinCount", &s.MinCount}, {"MaxCount", &s.MaxCount}} {
		n, ok, err := p.Int(c.name)
		if err != nil {
			return s, err
		}
		if !ok {
			return s, awserr.MissingParameter(c.name)
		}
		if n < 1 || n > 1<<20 {
			return s, awserr.InvalidParameterValue("Value (%d) for parameter %s is invalid. Expected a positive integer.", n, c.name)
		}
		*c.dst = int(n)
	}
	s.InstanceType = p.String("InstanceType")
	if s.KernelID = p.String("KernelId"); s.KernelID != "" && !kernelIDPattern.MatchString(s.KernelID) {
		return s, awserr.New("InvalidKernelId.Malformed", "Invalid id: \"%s\" (expecting \"aki-...\")", s.KernelID)
	}
	if s.RamdiskID = p.String("RamdiskId"); s.RamdiskID != "" && !ramdiskIDPattern.MatchString(s.RamdiskID) {
		return s, awserr.New("InvalidRamDiskId.Malformed", "Invalid id: \"%s\" (expecting \"ari-...\")", s.RamdiskID)
	}
	s.KeyName = p.String("KeyName")
	s.GroupNames = p.List("SecurityGroup")
	s.GroupIDs = p.List("SecurityGroupId")
	if v, sent := p["UserData"]; sent && v != "" {
		b, ok := decodeBase64(v)
		if !ok {
			return s, awserr.New("InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.")
		}
		s.UserData = b
	}
	s.Zone = p.String("Placement.AvailabilityZone")
	if t := p.String("Placement.Tenancy"); t != "" && t != "default" {
		return s, awserr.InvalidParameterValue("The tenancy '%s' is not supported: instances share their nodes.", t)
	}
	if g := p.String("Placement.GroupName"); g != "" {
		return s, awserr.New("InvalidPlacementGroup.Unknown", "The Placement Group '%s' is unknown.", g)
	}
	s.SubnetID = p.String("SubnetId")
	s.PrivateIP = p.String("PrivateIpAddress")
	if err := decodeNetworkInterface(p, &s); err != nil {
		return s, err
	}
	if s.SubnetID != "" && !subnetIDPattern.MatchString(s.SubnetID) {
		return s, awserr.New("InvalidSubnetID.Malformed", "Invalid id: \"%s\" (expecting \"subnet-...\")", s.SubnetID)
	}
	for _, id := range s.GroupIDs {
		if !groupIDPattern.MatchString(id) {
			return s, awserr.New("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
	}
	if n, _, err := p.Int("Ipv6AddressCount"); err != nil || n > 0 || len(p.Members("Ipv6Address")) > 0 {
		if err != nil {
			return s, err
		}
		return s, awserr.InvalidParameterValue("IPv6 addresses are not available: the private network is IPv4 only.")
	}
	s.ClientToken = p.String("ClientToken")
	if len(s.ClientToken) > 64 {
		return s, awserr.InvalidParameterValue("Value (%s) for parameter clientToken is invalid. It must be at most 64 characters.", s.ClientToken)
	}
	tags, err := tagsForTypes(p.TagSpecifications(), store.TypeInstance, "volume")
	if err != nil {
		return s, err
	}
	s.InstanceTags, s.VolumeTags = tags[store.TypeInstance], tags["volume"]
	if s.BlockDevices, err = decodeBlockDevices(p, true); err != nil {
		return s, err
	}
	b, err := boolParams(p, "DisableApiTermination", "DisableApiStop", "EbsOptimized", "HibernationOptions.Configured",
		"Monitoring.Enabled", "EnclaveOptions.Enabled", "EnablePrimaryIpv6")
	if err != nil {
		return s, err
	}
	o := store.InstanceOptions{DisableAPITermination: b["DisableApiTermination"], DisableAPIStop: b["DisableApiStop"],
		EBSOptimized: b["EbsOptimized"], Hibernation: b["HibernationOptions.Configured"], Monitoring: b["Monitoring.Enabled"],
		SourceDestCheck: true}
	if b["EnclaveOptions.Enabled"] {
		return s, awserr.New("UnsupportedOperation", "Nitro Enclaves are not supported by this cloud.")
	}
	if o.ShutdownBehavior, err = oneOf(p, "InstanceInitiatedShutdownBehavior", "stop", "stop", "terminate"); err != nil {
		return s, err
	}
	if o.CPUCredits, err = oneOf(p, "CreditSpecification.CpuCredits", "standard", "standard", "unlimited"); err != nil {
		return s, err
	}
	if o.HTTPTokens, err = oneOf(p, "MetadataOptions.HttpTokens", "optional", "optional", "required"); err != nil {
		return s, err
	}
	if o.HTTPEndpoint, err = oneOf(p, "MetadataOptions.HttpEndpoint", "enabled", "enabled", "disabled"); err != nil {
		return s, err
	}
	for _, n := range []string{"MetadataOptions.HttpProtocolIpv6", "MetadataOptions.InstanceMetadataTags"} {
		if _, err := oneOf(p, n, "disabled", "enabled", "disabled"); err != nil {
			return s, err
		}
	}
	o.HTTPHopLimit = 1
	if n, ok, err := p.Int("MetadataOptions.HttpPutResponseHopLimit"); err != nil {
		return s, err
	} else if ok {
		if n < 1 || n > 64 {
			return s, awserr.InvalidParameterValue("Value (%d) for parameter HttpPutResponseHopLimit is invalid. Expected 1 to 64.", n)
		}
		o.HTTPHopLimit = int(n)
	}
	for _, n := range []string{"CpuOptions.CoreCount", "CpuOptions.ThreadsPerCore"} {
		if _, _, err := p.Int(n); err != nil {
			return s, err
		}
	}
	s.Options = o
	return s, nil
}

// decodeNetworkInterface reads NetworkInterface.1, the form Terraform and
// the console use to ask for a public address: its subnet, groups and
// address stand for the instance's.
func decodeNetworkInterface(p queryapi.Params, s *store.LaunchSpec) error {
	nis := p.Members("NetworkInterface")
	if len(nis) == 0 {
		return nil
	}
	if len(nis) > 1 {
		return awserr.New("Unsupported", "Instances have one network interface on this cloud.")
	}
	ni := nis[0]
	if d := ni.String("DeviceIndex"); d != "" && d != "0" {
		return awserr.InvalidParameterValue("Value (%s) for parameter DeviceIndex is invalid. The only interface is device 0.", d)
	}
	if ni.String("NetworkInterfaceId") != "" {
		return awserr.New("Unsupported", "Launching with an existing network interface is not supported.")
	}
	for _, b := range []string{"AssociatePublicIpAddress", "DeleteOnTermination", "AssociateCarrierIpAddress"} {
		v, err := ni.Bool(b)
		if err != nil {
			return err
		}
		if b == "AssociatePublicIpAddress" && ni.Has(b) {
			s.AssociatePublicIP = &v
		}
	}
	if sub := ni.String("SubnetId"); sub != "" {
		if s.SubnetID != "" {
			return awserr.New("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		s.SubnetID = sub
	}
	if groups := ni.List("SecurityGroupId"); len(groups) > 0 {
		if len(s.GroupIDs) > 0 || len(s.GroupNames) > 0 {
			return awserr.New("InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request")
		}
		s.GroupIDs = groups
	}
	if ip := ni.String("PrivateIpAddress"); ip != "" {
		if s.PrivateIP != "" {
			return awserr.New("InvalidParameterCombination", "Network interfaces and an instance-level private IP address may not be specified on the same request")
		}
		s.PrivateIP = ip
	}
	return nil
}

// ---- DescribeInstances

// instanceRow is an instance as the filters see it.
type instanceRow struct {
	in   store.Instance
	item instanceItem
}

func (a *api) instanceRowOf(in store.Instance) instanceRow {
	return instanceRow{in: in, item: a.instanceView(in)}
}

func rowENI(f func(instanceENIXML) []string) func(instanceRow) []string {
	return func(r instanceRow) []string {
		var out []string
		for _, e := range r.item.NetworkInterfaces.Items {
			out = append(out, f(e)...)
		}
		return out
	}
}

// rowPublic is a filter on the instance's public address (its interface's
// association), which a terminated instance has let go.
func rowPublic(f func(instanceRow) string) func(instanceRow) []string {
	return func(r instanceRow) []string {
		if len(r.item.NetworkInterfaces.Items) == 0 || r.in.PublicIP == "" {
			return nil
		}
		return optValue(f(r))
	}
}

func ipOwner(r instanceRow) string {
	if a := r.item.NetworkInterfaces.Items[0].Association; a != nil {
		return a.IPOwnerID
	}
	return ""
}

func rowBDM(f func(instanceBDMXML) string) func(instanceRow) []string {
	return func(r instanceRow) []string {
		var out []string
		for _, b := range r.item.BlockDeviceMapping.Items {
			out = append(out, f(b))
		}
		return out
	}
}

func rowGroups(f func(groupIdentifier) string) func(instanceRow) []string {
	return func(r instanceRow) []string {
		var out []string
		for _, g := range r.item.Groups.Items {
			out = append(out, f(g))
		}
		return out
	}
}

// instanceFilters are DescribeInstances' filters: every name of the model
// is accepted; those of features this cloud does not have match nothing.
var instanceFilters = func() filterFields[instanceRow] {
	f := filterFields[instanceRow]{}
	for _, n := range instanceFilterNames {
		f[n] = func(instanceRow) []string { return nil }
	}
	set := map[string]func(instanceRow) []string{
		"architecture":                               func(r instanceRow) []string { return optValue(r.item.Architecture) },
		"availability-zone":                          func(r instanceRow) []string { return optValue(r.item.Placement.AvailabilityZone) },
		"availability-zone-id":                       func(r instanceRow) []string { return optValue(r.item.Placement.AvailabilityZoneID) },
		"boot-mode":                                  func(r instanceRow) []string { return optValue(r.item.BootMode) },
		"block-device-mapping.attach-time":           rowBDM(func(b instanceBDMXML) string { return b.Ebs.AttachTime }),
		"block-device-mapping.delete-on-termination": rowBDM(func(b instanceBDMXML) string { return boolString(b.Ebs.DeleteOnTermination) }),
		"block-device-mapping.device-name":           rowBDM(func(b instanceBDMXML) string { return b.DeviceName }),
		"block-device-mapping.status":                rowBDM(func(b instanceBDMXML) string { return b.Ebs.Status }),
		"block-device-mapping.volume-id":             rowBDM(func(b instanceBDMXML) string { return b.Ebs.VolumeID }),
		"client-token":                               func(r instanceRow) []string { return optValue(r.item.ClientToken) },
		"current-instance-boot-mode":                 func(r instanceRow) []string { return optValue(r.item.CurrentInstanceBootMode) },
		"dns-name":                                   func(r instanceRow) []string { return optValue(r.item.DNSName) },
		"ebs-optimized":                              func(r instanceRow) []string { return []string{boolString(r.item.EbsOptimized)} },
		"ena-support":                                func(r instanceRow) []string { return []string{boolString(r.item.EnaSupport)} },
		"enclave-options.enabled":                    func(r instanceRow) []string { return []string{boolString(r.item.EnclaveOptions.Enabled)} },
		"hibernation-options.configured":             func(r instanceRow) []string { return []string{boolString(r.item.HibernationOptions.Configured)} },
		"hypervisor":                                 func(r instanceRow) []string { return optValue(r.item.Hypervisor) },
		"image-id":                                   func(r instanceRow) []string { return optValue(r.item.ImageID) },
		"instance-id":                                func(r instanceRow) []string { return optValue(r.item.InstanceID) },
		"instance-state-code":                        func(r instanceRow) []string { return []string{strconv.Itoa(r.item.State.Code)} },
		"instance-state-name":                        func(r instanceRow) []string { return optValue(r.item.State.Name) },
		"instance-type":                              func(r instanceRow) []string { return optValue(r.item.InstanceType) },
		"instance.group-id":                          rowGroups(func(g groupIdentifier) string { return g.GroupID }),
		"instance.group-name":                        rowGroups(func(g groupIdentifier) string { return g.GroupName }),
		"group-id":                                   rowGroups(func(g groupIdentifier) string { return g.GroupID }),
		"group-name":                                 rowGroups(func(g groupIdentifier) string { return g.GroupName }),
		"ip-address":                                 func(r instanceRow) []string { return optValue(r.item.IPAddress) },
		"kernel-id":                                  func(r instanceRow) []string { return optValue(r.item.KernelID) },
		"key-name":                                   func(r instanceRow) []string { return optValue(r.item.KeyName) },
		"launch-index":                               func(r instanceRow) []string { return []string{strconv.Itoa(r.item.AmiLaunchIndex)} },
		"launch-time":                                func(r instanceRow) []string { return optValue(r.item.LaunchTime) },
		"maintenance-options.auto-recovery":          func(r instanceRow) []string { return optValue(r.item.MaintenanceOptions.AutoRecovery) },
		"metadata-options.http-endpoint":             func(r instanceRow) []string { return optValue(r.item.MetadataOptions.HTTPEndpoint) },
		"metadata-options.http-protocol-ipv4":        func(instanceRow) []string { return []string{"enabled"} },
		"metadata-options.http-protocol-ipv6":        func(r instanceRow) []string { return optValue(r.item.MetadataOptions.HTTPProtocolIPv6) },
		"metadata-options.http-put-response-hop-limit": func(r instanceRow) []string {
			return []string{strconv.Itoa(r.item.MetadataOptions.HTTPPutResponseHopLimit)}
		},
		"metadata-options.http-tokens":                            func(r instanceRow) []string { return optValue(r.item.MetadataOptions.HTTPTokens) },
		"metadata-options.instance-metadata-tags":                 func(r instanceRow) []string { return optValue(r.item.MetadataOptions.InstanceMetadataTags) },
		"metadata-options.state":                                  func(r instanceRow) []string { return optValue(r.item.MetadataOptions.State) },
		"monitoring-state":                                        func(r instanceRow) []string { return optValue(r.item.Monitoring.State) },
		"network-interface.addresses.primary":                     rowENI(func(instanceENIXML) []string { return []string{"true"} }),
		"network-interface.association.public-ip":                 rowPublic(func(r instanceRow) string { return r.in.PublicIP }),
		"network-interface.association.public-dns-name":           rowPublic(func(r instanceRow) string { return r.item.DNSName }),
		"network-interface.association.ip-owner-id":               rowPublic(ipOwner),
		"network-interface.association.allocation-id":             rowPublic(func(r instanceRow) string { return r.in.AllocationID }),
		"network-interface.association.association-id":            rowPublic(func(r instanceRow) string { return r.in.AssociationID }),
		"network-interface.addresses.association.public-ip":       rowPublic(func(r instanceRow) string { return r.in.PublicIP }),
		"network-interface.addresses.association.public-dns-name": rowPublic(func(r instanceRow) string { return r.item.DNSName }),
		"network-interface.addresses.association.ip-owner-id":     rowPublic(ipOwner),
		"network-interface.addresses.association.allocation-id":   rowPublic(func(r instanceRow) string { return r.in.AllocationID }),
		"network-interface.addresses.association.association-id":  rowPublic(func(r instanceRow) string { return r.in.AssociationID }),
		"network-interface.public-dns-name":                       rowPublic(func(r instanceRow) string { return r.item.DNSName }),
		"network-interface.addresses.private-dns-name":            rowENI(func(e instanceENIXML) []string { return optValue(e.PrivateDNSName) }),
		"network-interface.addresses.private-ip-address":          rowENI(func(e instanceENIXML) []string { return optValue(e.PrivateIPAddress) }),
		"network-interface.attachment.attach-time":                rowENI(func(e instanceENIXML) []string { return optValue(e.Attachment.AttachTime) }),
		"network-interface.attachment.attachment-id":              rowENI(func(e instanceENIXML) []string { return optValue(e.Attachment.AttachmentID) }),
		"network-interface.attachment.delete-on-termination": rowENI(func(e instanceENIXML) []string {
			return []string{boolString(e.Attachment.DeleteOnTermination)}
		}),
		"network-interface.attachment.device-index": rowENI(func(e instanceENIXML) []string { return []string{strconv.Itoa(e.Attachment.DeviceIndex)} }),
		"network-interface.attachment.instance-id": func(r instanceRow) []string {
			if len(r.item.NetworkInterfaces.Items) == 0 {
				return nil
			}
			return []string{r.item.InstanceID}
		},
		"network-interface.attachment.instance-owner-id": rowENI(func(e instanceENIXML) []string { return optValue(e.OwnerID) }),
		"network-interface.attachment.network-card-index": rowENI(func(e instanceENIXML) []string {
			return []string{strconv.Itoa(e.Attachment.NetworkCardIndex)}
		}),
		"network-interface.attachment.status":                           rowENI(func(e instanceENIXML) []string { return optValue(e.Attachment.Status) }),
		"network-interface.availability-zone":                           func(r instanceRow) []string { return optValue(r.item.Placement.AvailabilityZone) },
		"network-interface.description":                                 rowENI(func(e instanceENIXML) []string { return optValue(e.Description) }),
		"network-interface.group-id":                                    rowENI(func(e instanceENIXML) []string { return groupValues(e.Groups, true) }),
		"network-interface.group-name":                                  rowENI(func(e instanceENIXML) []string { return groupValues(e.Groups, false) }),
		"network-interface.mac-address":                                 rowENI(func(e instanceENIXML) []string { return optValue(e.MacAddress) }),
		"network-interface.network-interface-id":                        rowENI(func(e instanceENIXML) []string { return optValue(e.NetworkInterfaceID) }),
		"network-interface.owner-id":                                    rowENI(func(e instanceENIXML) []string { return optValue(e.OwnerID) }),
		"network-interface.private-dns-name":                            rowENI(func(e instanceENIXML) []string { return optValue(e.PrivateDNSName) }),
		"network-interface.private-ip-address":                          rowENI(func(e instanceENIXML) []string { return optValue(e.PrivateIPAddress) }),
		"network-interface.requester-managed":                           rowENI(func(instanceENIXML) []string { return []string{"false"} }),
		"network-interface.source-dest-check":                           rowENI(func(e instanceENIXML) []string { return []string{boolString(e.SourceDestCheck)} }),
		"network-interface.status":                                      rowENI(func(e instanceENIXML) []string { return optValue(e.Status) }),
		"network-interface.subnet-id":                                   rowENI(func(e instanceENIXML) []string { return optValue(e.SubnetID) }),
		"network-interface.vpc-id":                                      rowENI(func(e instanceENIXML) []string { return optValue(e.VpcID) }),
		"owner-id":                                                      func(r instanceRow) []string { return optValue(r.in.AccountID) },
		"platform-details":                                              func(r instanceRow) []string { return optValue(r.item.PlatformDetails) },
		"private-dns-name":                                              func(r instanceRow) []string { return optValue(r.item.PrivateDNSName) },
		"private-dns-name-options.enable-resource-name-dns-a-record":    func(instanceRow) []string { return []string{"false"} },
		"private-dns-name-options.enable-resource-name-dns-aaaa-record": func(instanceRow) []string { return []string{"false"} },
		"private-dns-name-options.hostname-type":                        func(r instanceRow) []string { return optValue(r.item.PrivateDNSNameOptions.HostnameType) },
		"private-ip-address":                                            func(r instanceRow) []string { return optValue(r.item.PrivateIPAddress) },
		"ramdisk-id":                                                    func(r instanceRow) []string { return optValue(r.item.RamdiskID) },
		"reason":                                                        func(r instanceRow) []string { return optValue(r.item.Reason) },
		"reservation-id":                                                func(r instanceRow) []string { return optValue(r.in.ReservationID) },
		"root-device-name":                                              func(r instanceRow) []string { return optValue(r.item.RootDeviceName) },
		"root-device-type":                                              func(r instanceRow) []string { return optValue(r.item.RootDeviceType) },
		"source-dest-check":                                             func(r instanceRow) []string { return []string{boolString(r.item.SourceDestCheck)} },
		"state-reason-code": func(r instanceRow) []string {
			if r.item.StateReason == nil {
				return nil
			}
			return optValue(r.item.StateReason.Code)
		},
		"state-reason-message": func(r instanceRow) []string {
			if r.item.StateReason == nil {
				return nil
			}
			return optValue(r.item.StateReason.Message)
		},
		"subnet-id":                   func(r instanceRow) []string { return optValue(r.item.SubnetID) },
		"tenancy":                     func(r instanceRow) []string { return optValue(r.item.Placement.Tenancy) },
		"usage-operation":             func(r instanceRow) []string { return optValue(r.item.UsageOperation) },
		"usage-operation-update-time": func(r instanceRow) []string { return optValue(r.item.UsageOperationUpdateTime) },
		"virtualization-type":         func(r instanceRow) []string { return optValue(r.item.VirtualizationType) },
		"vpc-id":                      func(r instanceRow) []string { return optValue(r.item.VpcID) },
	}
	for n, g := range set {
		f[n] = g
	}
	return f
}()

func groupValues(s setOf[groupIdentifier], ids bool) []string {
	var out []string
	for _, g := range s.Items {
		if ids {
			out = append(out, g.GroupID)
		} else {
			out = append(out, g.GroupName)
		}
	}
	return out
}

// instanceFilterNames are the filter names the model documents for
// DescribeInstances, and EC2-Classic's group-id and group-name that
// euca2ools and older scripts still send.
var instanceFilterNames = []string{
	"affinity", "architecture", "availability-zone", "availability-zone-id", "block-device-mapping.attach-time",
	"block-device-mapping.delete-on-termination", "block-device-mapping.device-name",
	"block-device-mapping.status", "block-device-mapping.volume-id", "boot-mode", "capacity-reservation-id",
	"capacity-reservation-specification.capacity-reservation-preference",
	"capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id",
	"capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn",
	"client-token", "current-instance-boot-mode", "dns-name", "ebs-optimized", "ena-support",
	"enclave-options.enabled", "hibernation-options.configured", "host-id", "hypervisor",
	"iam-instance-profile.arn", "iam-instance-profile.id", "image-id", "instance-id", "instance-lifecycle",
	"instance-state-code", "instance-state-name", "instance-type", "instance.group-id", "instance.group-name",
	"ip-address", "ipv6-address", "kernel-id", "key-name", "launch-index", "launch-time",
	"maintenance-options.auto-recovery", "metadata-options.http-endpoint",
	"metadata-options.http-protocol-ipv4", "metadata-options.http-protocol-ipv6",
	"metadata-options.http-put-response-hop-limit", "metadata-options.http-tokens",
	"metadata-options.instance-metadata-tags", "metadata-options.state", "monitoring-state",
	"network-interface.addresses.association.allocation-id",
	"network-interface.addresses.association.association-id",
	"network-interface.addresses.association.carrier-ip",
	"network-interface.addresses.association.customer-owned-ip",
	"network-interface.addresses.association.ip-owner-id",
	"network-interface.addresses.association.public-dns-name",
	"network-interface.addresses.association.public-ip", "network-interface.addresses.primary",
	"network-interface.addresses.private-dns-name", "network-interface.addresses.private-ip-address",
	"network-interface.association.allocation-id", "network-interface.association.association-id",
	"network-interface.association.carrier-ip", "network-interface.association.customer-owned-ip",
	"network-interface.association.ip-owner-id", "network-interface.association.public-dns-name",
	"network-interface.association.public-ip", "network-interface.attachment.attach-time",
	"network-interface.attachment.attachment-id", "network-interface.attachment.delete-on-termination",
	"network-interface.attachment.device-index", "network-interface.attachment.instance-id",
	"network-interface.attachment.instance-owner-id", "network-interface.attachment.network-card-index",
	"network-interface.attachment.status", "network-interface.availability-zone",
	"network-interface.deny-all-igw-traffic", "network-interface.description", "network-interface.group-id",
	"network-interface.group-name", "network-interface.ipv4-prefixes.ipv4-prefix",
	"network-interface.ipv6-address", "network-interface.ipv6-addresses.ipv6-address",
	"network-interface.ipv6-addresses.is-primary-ipv6", "network-interface.ipv6-native",
	"network-interface.ipv6-prefixes.ipv6-prefix", "network-interface.mac-address",
	"network-interface.network-interface-id", "network-interface.operator.managed",
	"network-interface.operator.principal", "network-interface.outpost-arn", "network-interface.owner-id",
	"network-interface.private-dns-name", "network-interface.private-ip-address",
	"network-interface.public-dns-name", "network-interface.requester-id",
	"network-interface.requester-managed", "network-interface.status", "network-interface.source-dest-check",
	"network-interface.subnet-id", "network-interface.tag-key", "network-interface.tag-value",
	"network-interface.vpc-id", "network-performance-options.bandwidth-weighting", "operator.managed",
	"operator.principal", "outpost-arn", "owner-id", "placement-group-name", "placement-partition-number",
	"platform", "platform-details", "private-dns-name",
	"private-dns-name-options.enable-resource-name-dns-a-record",
	"private-dns-name-options.enable-resource-name-dns-aaaa-record", "private-dns-name-options.hostname-type",
	"private-ip-address", "product-code", "product-code.type", "ramdisk-id", "reason", "requester-id",
	"reservation-id", "root-device-name", "root-device-type", "source-dest-check", "spot-instance-request-id",
	"state-reason-code", "state-reason-message", "subnet-id", "tenancy", "tpm-support", "usage-operation",
	"usage-operation-update-time", "virtualization-type", "vpc-id",
	"group-id", "group-name",
}

type describeInstancesResponse struct {
	Response
	Reservations setOf[reservationItem] `xml:"reservationSet"`
	NextToken    string                 `xml:"nextToken,omitempty"`
}

// checkInstanceIDs refuses a malformed instance id before anything is
// looked up.
func checkInstanceIDs(ids []string) error {
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return awserr.New("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
	}
	return nil
}

// instanceIDParam is the InstanceId of the calls that act on one instance,
// checked.
func instanceIDParam(p queryapi.Params) (string, error) {
	id, err := p.Required("InstanceId")
	if err != nil {
		return "", err
	}
	if err := checkInstanceIDs([]string{id}); err != nil {
		return "", err
	}
	return id, nil
}

// describedInstanceIDs checks InstanceId.N of the instance Describe calls,
// which page only through all instances, never through named ones.
func describedInstanceIDs(p queryapi.Params) ([]string, error) {
	ids := p.List("InstanceId")
	if len(ids) > 0 && p.Has("MaxResults") {
		return nil, awserr.New("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	if err := checkInstanceIDs(ids); err != nil {
		return nil, err
	}
	return ids, nil
}

func (a *api) describeInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if _, err := p.Bool("IncludeManagedResources"); err != nil {
		return nil, err
	}
	var ids []string
	// The filters see instances as rows; the page is cut from the
	// reservations they make.
	rows, _, err := describe(p, describeCall[instanceRow]{
		fields: instanceFilters, tags: func(r instanceRow) []store.Tag { return r.in.Tags },
		filterNamesFirst: true,
		check:            func() (err error) { ids, err = describedInstanceIDs(p); return err },
		fetch: func() ([]instanceRow, error) {
			return viewsOf(a.instanceRowOf)(a.cloud.DescribeInstances(ctx, req.Caller.AccountID, ids))
		},
	})
	if err != nil {
		return nil, err
	}
	insts := make([]store.Instance, len(rows))
	for i, r := range rows {
		insts[i] = r.in
	}
	page, next, err := paginate(a.reservations(insts), p, 5, 1000)
	if err != nil {
		return nil, err
	}
	return &describeInstancesResponse{Reservations: setOf[reservationItem]{page}, NextToken: next}, nil
}

// ---- TerminateInstances, RebootInstances, GetConsoleOutput

type instanceStateChangeXML struct {
	InstanceID    string           `xml:"instanceId"`
	CurrentState  instanceStateXML `xml:"currentState"`
	PreviousState instanceStateXML `xml:"previousState"`
}

type terminateInstancesResponse struct {
	Response
	Instances setOf[instanceStateChangeXML] `xml:"instancesSet"`
}

// requiredInstanceIDs is InstanceId.N of the calls that act on instances.
func requiredInstanceIDs(p queryapi.Params) ([]string, error) {
	ids := p.List("InstanceId")
	if len(ids) == 0 {
		return nil, awserr.MissingParameter("InstanceId")
	}
	return ids, checkInstanceIDs(ids)
}

func (a *api) terminateInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if _, err := boolParams(p, "Force", "SkipOsShutdown"); err != nil {
		return nil, err
	}
	ids, err := requiredInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	tr, err := a.cloud.TerminateInstances(ctx, req.Caller.AccountID, ids)
	if err != nil {
		return nil, err
	}
	return &terminateInstancesResponse{Instances: stateChanges(tr)}, nil
}

// stateChanges is the instancesSet of TerminateInstances, StopInstances
// and StartInstances.
func stateChanges(tr []store.InstanceTransition) setOf[instanceStateChangeXML] {
	var out setOf[instanceStateChangeXML]
	for _, t := range tr {
		out.Items = append(out.Items, instanceStateChangeXML{InstanceID: t.ID,
			CurrentState: stateOf(t.Current), PreviousState: stateOf(t.Previous)})
	}
	return out
}

// ---- StopInstances and StartInstances

type stopInstancesResponse struct {
	Response
	Instances setOf[instanceStateChangeXML] `xml:"instancesSet"`
}

func (a *api) stopInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	b, err := boolParams(p, "Force", "Hibernate", "SkipOsShutdown")
	if err != nil {
		return nil, err
	}
	ids, err := requiredInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	tr, err := a.cloud.StopInstances(ctx, req.Caller.AccountID, ids, b["Force"] || b["SkipOsShutdown"], b["Hibernate"])
	if err != nil {
		return nil, err
	}
	return &stopInstancesResponse{Instances: stateChanges(tr)}, nil
}

type startInstancesResponse struct {
	Response
	Instances setOf[instanceStateChangeXML] `xml:"instancesSet"`
}

func (a *api) startInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	ids, err := requiredInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	tr, err := a.cloud.StartInstances(ctx, req.Caller.AccountID, ids)
	if err != nil {
		return nil, err
	}
	return &startInstancesResponse{Instances: stateChanges(tr)}, nil
}

func (a *api) rebootInstances(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	ids, err := requiredInstanceIDs(p)
	if err != nil {
		return nil, err
	}
	if err := a.cloud.RebootInstances(ctx, req.Caller.AccountID, ids); err != nil {
		return nil, err
	}
	return ok()
}

type getConsoleOutputResponse struct {
	Response
	InstanceID string `xml:"instanceId"`
	Timestamp  string `xml:"timestamp"`
	Output     string `xml:"output,omitempty"`
}

func (a *api) getConsoleOutput(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	if _, err := p.Bool("Latest"); err != nil {
		return nil, err
	}
	id, err := instanceIDParam(p)
	if err != nil {
		return nil, err
	}
	out, err := a.cloud.ConsoleOutput(ctx, req.Caller.AccountID, id)
	if err != nil {
		return nil, err
	}
	if len(out) > maxConsoleOutput {
		out = out[len(out)-maxConsoleOutput:]
	}
	resp := &getConsoleOutputResponse{InstanceID: id, Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")}
	if len(out) > 0 {
		resp.Output = base64.StdEncoding.EncodeToString(out)
	}
	return resp, nil
}

// ---- DescribeInstanceStatus

type statusDetailXML struct {
	ImpairedSince string `xml:"impairedSince,omitempty"`
	Name          string `xml:"name"`
	Status        string `xml:"status"`
}

type statusSummaryXML struct {
	Details setOf[statusDetailXML] `xml:"details"`
	Status  string                 `xml:"status"`
}

type instanceStatusItem struct {
	AvailabilityZone   string           `xml:"availabilityZone"`
	AvailabilityZoneID string           `xml:"availabilityZoneId,omitempty"`
	InstanceID         string           `xml:"instanceId"`
	InstanceState      instanceStateXML `xml:"instanceState"`
	InstanceStatus     statusSummaryXML `xml:"instanceStatus"`
	SystemStatus       statusSummaryXML `xml:"systemStatus"`
}

type describeInstanceStatusResponse struct {
	Response
	Statuses  setOf[instanceStatusItem] `xml:"instanceStatusSet"`
	NextToken string                    `xml:"nextToken,omitempty"`
}

func fvNil(instanceStatusItem) []string { return nil }

var instanceStatusFilters = filterFields[instanceStatusItem]{
	"availability-zone":            func(s instanceStatusItem) []string { return optValue(s.AvailabilityZone) },
	"availability-zone-id":         func(s instanceStatusItem) []string { return optValue(s.AvailabilityZoneID) },
	"event.code":                   fvNil,
	"event.description":            fvNil,
	"event.instance-event-id":      fvNil,
	"event.not-after":              fvNil,
	"event.not-before":             fvNil,
	"event.not-before-deadline":    fvNil,
	"instance-state-code":          func(s instanceStatusItem) []string { return []string{strconv.Itoa(s.InstanceState.Code)} },
	"instance-state-name":          func(s instanceStatusItem) []string { return optValue(s.InstanceState.Name) },
	"instance-status.reachability": func(s instanceStatusItem) []string { return reachability(s.InstanceStatus) },
	"instance-status.status":       func(s instanceStatusItem) []string { return optValue(s.InstanceStatus.Status) },
	"operator.managed":             fvNil,
	"operator.principal":           fvNil,
	"system-status.reachability":   func(s instanceStatusItem) []string { return reachability(s.SystemStatus) },
	"system-status.status":         func(s instanceStatusItem) []string { return optValue(s.SystemStatus.Status) },
	"attached-ebs-status.status":   fvNil,
}

func reachability(s statusSummaryXML) []string {
	var out []string
	for _, d := range s.Details.Items {
		out = append(out, d.Status)
	}
	return out
}

// statusSummary is the status checks as far as the cloud can tell: a
// running instance passes (its node runs it), a pending one is
// initializing, any other has no checks; a running or pending one whose
// node cannot be reached is impaired, its reachability check failed since
// the node stopped answering (the node's state is the instance's system
// status, and nothing is known of the guest).
func statusSummary(state string, unreachable nodeview.Unreachable) statusSummaryXML {
	switch {
	case unreachable.Why != "" && (state == store.InstanceRunning || state == store.InstancePending):
		d := statusDetailXML{Name: "reachability", Status: "failed"}
		if !unreachable.Since.IsZero() {
			d.ImpairedSince = ec2Time(unreachable.Since.UnixMilli())
		}
		return statusSummaryXML{Status: "impaired", Details: setOf[statusDetailXML]{[]statusDetailXML{d}}}
	}
	switch state {
	case store.InstanceRunning:
		return statusSummaryXML{Status: "ok", Details: setOf[statusDetailXML]{[]statusDetailXML{{Name: "reachability", Status: "passed"}}}}
	case store.InstancePending:
		return statusSummaryXML{Status: "initializing", Details: setOf[statusDetailXML]{[]statusDetailXML{{Name: "reachability", Status: "initializing"}}}}
	}
	return statusSummaryXML{Status: "not-applicable"}
}

func (a *api) describeInstanceStatus(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	b, err := boolParams(p, "IncludeAllInstances", "IncludeManagedResources")
	if err != nil {
		return nil, err
	}
	var ids []string
	page, next, err := describe(p, describeCall[instanceStatusItem]{
		fields: instanceStatusFilters, filterNamesFirst: true,
		check: func() (err error) { ids, err = describedInstanceIDs(p); return err },
		fetch: func() ([]instanceStatusItem, error) {
			insts, err := a.cloud.DescribeInstances(ctx, req.Caller.AccountID, ids)
			if err != nil {
				return nil, err
			}
			var items []instanceStatusItem
			var listed []string
			for _, in := range insts {
				listed = append(listed, in.ID)
			}
			unreachable := a.cloud.Unreachable(listed)
			for _, in := range insts {
				if !b["IncludeAllInstances"] && in.State != store.InstanceRunning {
					continue
				}
				items = append(items, instanceStatusItem{AvailabilityZone: in.Zone, AvailabilityZoneID: a.cloud.ZoneID(in.Zone),
					InstanceID: in.ID, InstanceState: stateOf(in.State), InstanceStatus: statusSummary(in.State, unreachable[in.ID]), SystemStatus: statusSummary(in.State, unreachable[in.ID])})
			}
			return items, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeInstanceStatusResponse{Statuses: setOf[instanceStatusItem]{page}, NextToken: next}, nil
}

// ---- DescribeInstanceAttribute and ModifyInstanceAttribute

type attrBoolXML struct {
	Value bool `xml:"value"`
}

type attrValueXML struct {
	Value *string `xml:"value,omitempty"`
}

func attrValue(s string) *attrValueXML {
	if s == "" {
		return &attrValueXML{}
	}
	return &attrValueXML{Value: &s}
}

type describeInstanceAttributeResponse struct {
	Response
	InstanceID            string                  `xml:"instanceId"`
	BlockDeviceMapping    *setOf[instanceBDMXML]  `xml:"blockDeviceMapping,omitempty"`
	DisableAPITermination *attrBoolXML            `xml:"disableApiTermination,omitempty"`
	DisableAPIStop        *attrBoolXML            `xml:"disableApiStop,omitempty"`
	EnaSupport            *attrBoolXML            `xml:"enaSupport,omitempty"`
	EnclaveOptions        *enabledXML             `xml:"enclaveOptions,omitempty"`
	EbsOptimized          *attrBoolXML            `xml:"ebsOptimized,omitempty"`
	ShutdownBehavior      *attrValueXML           `xml:"instanceInitiatedShutdownBehavior,omitempty"`
	InstanceType          *attrValueXML           `xml:"instanceType,omitempty"`
	Kernel                *attrValueXML           `xml:"kernel,omitempty"`
	ProductCodes          *setOf[struct{}]        `xml:"productCodes,omitempty"`
	Ramdisk               *attrValueXML           `xml:"ramdisk,omitempty"`
	RootDeviceName        *attrValueXML           `xml:"rootDeviceName,omitempty"`
	SourceDestCheck       *attrBoolXML            `xml:"sourceDestCheck,omitempty"`
	SriovNetSupport       *attrValueXML           `xml:"sriovNetSupport,omitempty"`
	UserData              *attrValueXML           `xml:"userData,omitempty"`
	Groups                *setOf[groupIdentifier] `xml:"groupSet,omitempty"`
}

// instanceAttributes are InstanceAttributeName's values.
var instanceAttributes = []string{"instanceType", "kernel", "ramdisk", "userData", "disableApiTermination",
	"instanceInitiatedShutdownBehavior", "rootDeviceName", "blockDeviceMapping", "productCodes", "sourceDestCheck",
	"groupSet", "ebsOptimized", "sriovNetSupport", "enaSupport", "enclaveOptions", "disableApiStop"}

func checkAttribute(name string) error {
	for _, a := range instanceAttributes {
		if a == name {
			return nil
		}
	}
	return awserr.InvalidParameterValue("Value (%s) for parameter attribute is invalid. Unknown attribute.", name)
}

func (a *api) describeInstanceAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := p.Required("InstanceId")
	if err != nil {
		return nil, err
	}
	attr, err := p.Required("Attribute")
	if err != nil {
		return nil, err
	}
	if err := checkInstanceIDs([]string{id}); err != nil {
		return nil, err
	}
	if err := checkAttribute(attr); err != nil {
		return nil, err
	}
	insts, err := a.cloud.DescribeInstances(ctx, req.Caller.AccountID, []string{id})
	if err != nil {
		return nil, err
	}
	in := insts[0]
	o := in.Options
	resp := &describeInstanceAttributeResponse{InstanceID: in.ID}
	switch attr {
	case "instanceType":
		resp.InstanceType = attrValue(in.InstanceType)
	case "kernel":
		resp.Kernel = attrValue(in.KernelID)
	case "ramdisk":
		resp.Ramdisk = attrValue(in.RamdiskID)
	case "userData":
		resp.UserData = &attrValueXML{}
		if in.UserData != nil {
			resp.UserData = attrValue(base64.StdEncoding.EncodeToString(in.UserData))
		}
	case "disableApiTermination":
		resp.DisableAPITermination = &attrBoolXML{o.DisableAPITermination}
	case "disableApiStop":
		resp.DisableAPIStop = &attrBoolXML{o.DisableAPIStop}
	case "instanceInitiatedShutdownBehavior":
		resp.ShutdownBehavior = attrValue(o.ShutdownBehavior)
	case "rootDeviceName":
		resp.RootDeviceName = attrValue(in.RootDeviceName)
	case "blockDeviceMapping":
		bdm := instanceBDMs(in)
		resp.BlockDeviceMapping = &bdm
	case "productCodes":
		resp.ProductCodes = &setOf[struct{}]{}
	case "sourceDestCheck":
		resp.SourceDestCheck = &attrBoolXML{o.SourceDestCheck}
	case "groupSet":
		g := setOf[groupIdentifier]{}
		for _, r := range in.Groups {
			g.Items = append(g.Items, groupIdentifier{GroupID: r.ID, GroupName: r.Name})
		}
		resp.Groups = &g
	case "ebsOptimized":
		resp.EbsOptimized = &attrBoolXML{o.EBSOptimized}
	case "sriovNetSupport":
		resp.SriovNetSupport = &attrValueXML{}
	case "enaSupport":
		resp.EnaSupport = &attrBoolXML{false}
	case "enclaveOptions":
		resp.EnclaveOptions = &enabledXML{false}
	}
	return resp, nil
}

// modifyInstanceAttribute takes one attribute per call, in either of its
// forms: Attribute=name&Value=v, or name.Value=v (GroupId.N for groupSet).
func (a *api) modifyInstanceAttribute(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	id, err := instanceIDParam(p)
	if err != nil {
		return nil, err
	}
	// The structured form of each attribute, by the attribute's name.
	structured := map[string]string{
		"disableApiTermination": "DisableApiTermination.Value", "disableApiStop": "DisableApiStop.Value",
		"instanceInitiatedShutdownBehavior": "InstanceInitiatedShutdownBehavior.Value",
		"instanceType":                      "InstanceType.Value", "kernel": "Kernel.Value", "ramdisk": "Ramdisk.Value",
		"userData": "UserData.Value", "sourceDestCheck": "SourceDestCheck.Value", "ebsOptimized": "EbsOptimized.Value",
		"enaSupport": "EnaSupport.Value", "sriovNetSupport": "SriovNetSupport.Value",
	}
	var given []string
	for attr, param := range structured {
		if p.Has(param) {
			given = append(given, attr)
		}
	}
	if len(p.List("GroupId")) > 0 {
		given = append(given, "groupSet")
	}
	if len(p.Members("BlockDeviceMapping")) > 0 {
		given = append(given, "blockDeviceMapping")
	}
	attr, value := p.String("Attribute"), p.String("Value")
	if attr != "" {
		if err := checkAttribute(attr); err != nil {
			return nil, err
		}
		given = append(given, attr)
	}
	switch {
	case len(given) == 0:
		return nil, awserr.New("InvalidParameterCombination", "No attributes specified.")
	case len(given) > 1:
		return nil, awserr.New("InvalidParameterCombination", "Fields for multiple attribute types specified: %s", strings.Join(given, ", "))
	}
	name := given[0]
	if attr == "" {
		value = p.String(structured[name])
	}
	boolValue := func() (bool, error) {
		switch strings.ToLower(value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, awserr.InvalidParameterValue("Value (%s) for parameter %s is invalid. Expected a boolean.", value, name)
	}
	var u store.InstanceUpdate
	var groupIDs []string
	switch name {
	case "disableApiTermination", "disableApiStop", "sourceDestCheck", "ebsOptimized":
		b, err := boolValue()
		if err != nil {
			return nil, err
		}
		switch name {
		case "disableApiTermination":
			u.DisableAPITermination = &b
		case "disableApiStop":
			u.DisableAPIStop = &b
		case "sourceDestCheck":
			u.SourceDestCheck = &b
		case "ebsOptimized":
			u.EBSOptimized = &b
		}
	case "instanceInitiatedShutdownBehavior":
		if value != "stop" && value != "terminate" {
			return nil, awserr.InvalidParameterValue("Value (%s) for parameter instanceInitiatedShutdownBehavior is invalid. Valid values are: stop, terminate", value)
		}
		u.ShutdownBehavior = &value
	case "instanceType":
		if value == "" {
			return nil, awserr.MissingParameter("InstanceType.Value")
		}
		u.InstanceType = &value
	case "kernel":
		if value != "" && !kernelIDPattern.MatchString(value) {
			return nil, awserr.New("InvalidKernelId.Malformed", "Invalid id: \"%s\" (expecting \"aki-...\")", value)
		}
		u.KernelID = &value
	case "ramdisk":
		if value != "" && !ramdiskIDPattern.MatchString(value) {
			return nil, awserr.New("InvalidRamDiskId.Malformed", "Invalid id: \"%s\" (expecting \"ari-...\")", value)
		}
		u.RamdiskID = &value
	case "userData":
		data := []byte(nil)
		if value != "" {
			b, ok := decodeBase64(value)
			if !ok {
				return nil, awserr.New("InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.")
			}
			data = b
		}
		u.UserData = &data
	case "groupSet":
		groupIDs = p.List("GroupId")
		if attr != "" {
			groupIDs = strings.Fields(strings.ReplaceAll(value, ",", " "))
		}
		if len(groupIDs) == 0 {
			return nil, awserr.MissingParameter("GroupId")
		}
		for _, g := range groupIDs {
			if !groupIDPattern.MatchString(g) {
				return nil, awserr.New("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", g)
			}
		}
	default:
		// Read-only here (productCodes, rootDeviceName, enclaveOptions), or
		// features an instance-store, virtio instance does not have.
		return nil, awserr.InvalidParameterValue("The attribute %s cannot be modified on this cloud's instances.", name)
	}
	if err := a.cloud.ModifyInstanceAttribute(ctx, req.Caller.AccountID, id, u, groupIDs); err != nil {
		return nil, err
	}
	return ok()
}

// ---- DescribeInstanceCreditSpecifications

type creditSpecItem struct {
	InstanceID string `xml:"instanceId"`
	CPUCredits string `xml:"cpuCredits"`
}

type describeCreditSpecsResponse struct {
	Response
	Items     setOf[creditSpecItem] `xml:"instanceCreditSpecificationSet"`
	NextToken string                `xml:"nextToken,omitempty"`
}

var creditSpecFilters = filterFields[creditSpecItem]{
	"instance-id": func(c creditSpecItem) []string { return optValue(c.InstanceID) },
}

func (a *api) describeInstanceCreditSpecifications(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	var ids []string
	page, next, err := describe(p, describeCall[creditSpecItem]{
		fields: creditSpecFilters, filterNamesFirst: true,
		check: func() (err error) { ids, err = describedInstanceIDs(p); return err },
		fetch: func() ([]creditSpecItem, error) {
			insts, err := a.cloud.DescribeInstances(ctx, req.Caller.AccountID, ids)
			if err != nil {
				return nil, err
			}
			var items []creditSpecItem
			for _, in := range insts {
				if len(ids) == 0 && in.State == store.InstanceTerminated {
					continue
				}
				credits := in.Options.CPUCredits
				if credits == "" {
					credits = "standard"
				}
				items = append(items, creditSpecItem{InstanceID: in.ID, CPUCredits: credits})
			}
			return items, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeCreditSpecsResponse{Items: setOf[creditSpecItem]{page}, NextToken: next}, nil
}
