package ec2api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/edge"
	"github.com/euca-cloud/euca/internal/nodeview"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/store"
)

// The catalog: DescribeRegions, DescribeAvailabilityZones (with
// Eucalyptus's "verbose" report of room per VM type),
// DescribeAccountAttributes and DescribeInstanceTypes (the VM types). Also
// DescribeImages as it answers before images exist: every parameter
// checked, nothing found.

// CatalogService is what the catalog needs from the cloud controller.
type CatalogService interface {
	// Region is the one region the cloud answers as.
	Region() string
	// Zones are its availability zones, one per cluster.
	Zones() []string
	// ZoneStates are the zones' states ("available", "unavailable"; a
	// zone missing is available) and a message saying what is wrong.
	ZoneStates(ctx context.Context) (states, messages map[string]string)
	// ZoneID is a zone's id ("use1-az1"), "" for an unknown zone.
	ZoneID(zone string) string
	// ZoneCapacity is, per zone and VM type, how many instances fit now and
	// on empty nodes; visible is false for a caller who may not see it.
	ZoneCapacity(ctx context.Context, accountID string) (capacity map[string]map[string]store.VMTypeCapacity, visible bool, err error)
	// AccountAttributes are DescribeAccountAttributes' values by name.
	AccountAttributes(ctx context.Context, accountID string) (map[string][]string, error)
	// VMTypes are the instance types, smallest first.
	VMTypes(ctx context.Context) ([]store.VMType, error)
	// InstanceHypervisor is "xen" or "nitro", the names EC2 knows.
	InstanceHypervisor() string
	// ZoneNodes are a zone's nodes as its cluster last reported them;
	// known is false before it has reported.
	ZoneNodes(zone string) (nodes []nodeview.Node, known bool)
}

// setOf is a list that is always present in a response, empty or not: EC2
// sends <xSet/> for an empty result and clients (boto3's resp["Reservations"])
// rely on the key being there.
type setOf[T any] struct {
	Items []T `xml:"item"`
}

// optInNotRequired is the opt-in status of a region or zone every account has.
const optInNotRequired = "opt-in-not-required"

// ---- DescribeRegions

type regionItem struct {
	RegionName  string `xml:"regionName"`
	Endpoint    string `xml:"regionEndpoint"`
	OptInStatus string `xml:"optInStatus"`
}

type describeRegionsResponse struct {
	Response
	Regions setOf[regionItem] `xml:"regionInfo"`
}

var regionFilters = filterFields[regionItem]{
	"endpoint":      func(r regionItem) []string { return []string{r.Endpoint} },
	"opt-in-status": func(r regionItem) []string { return []string{r.OptInStatus} },
	"region-name":   func(r regionItem) []string { return []string{r.RegionName} },
}

func (a *api) describeRegions(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if _, err := p.Bool("AllRegions"); err != nil {
		return nil, err
	}
	items, _, err := describe(p, describeCall[regionItem]{
		fields: regionFilters,
		fetch: func() ([]regionItem, error) {
			region := a.cloud.Region()
			var unknown []string
			for _, n := range p.List("RegionName") {
				if n != region {
					unknown = append(unknown, n)
				}
			}
			if len(unknown) > 0 {
				return nil, awserr.InvalidParameterValue("Invalid region: [%s]", strings.Join(unknown, ", "))
			}
			// Every account is in the cloud's one region, so AllRegions adds nothing.
			return []regionItem{{RegionName: region, Endpoint: regionEndpoint(req.HTTP), OptInStatus: optInNotRequired}}, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &describeRegionsResponse{Regions: setOf[regionItem]{items}}, nil
}

// regionEndpoint is the EC2 URL of the request: the host the client reached
// and Eucalyptus's service path, which answers whatever path the request
// itself used. Eucalyptus returned a whole URL here (AWS a bare host name);
// a URL is what a client can use.
func regionEndpoint(r *http.Request) string {
	if r == nil || r.Host == "" {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + edge.PathEC2
}

// ---- DescribeAvailabilityZones

type zoneMessage struct {
	Message string `xml:"message"`
}

type zoneItem struct {
	ZoneName           string              `xml:"zoneName"`
	State              string              `xml:"zoneState"`
	RegionName         string              `xml:"regionName,omitempty"`
	ZoneID             string              `xml:"zoneId,omitempty"`
	ZoneType           string              `xml:"zoneType,omitempty"`
	GroupName          string              `xml:"groupName,omitempty"`
	NetworkBorderGroup string              `xml:"networkBorderGroup,omitempty"`
	OptInStatus        string              `xml:"optInStatus,omitempty"`
	Messages           *setOf[zoneMessage] `xml:"messageSet,omitempty"`
}

type describeZonesResponse struct {
	Response
	Zones setOf[zoneItem] `xml:"availabilityZoneInfo"`
}

var zoneFilters = filterFields[zoneItem]{
	"group-long-name":  func(z zoneItem) []string { return nil },
	"group-name":       func(z zoneItem) []string { return []string{z.GroupName} },
	"message":          func(z zoneItem) []string { return nil },
	"opt-in-status":    func(z zoneItem) []string { return []string{z.OptInStatus} },
	"parent-zone-id":   func(z zoneItem) []string { return nil },
	"parent-zone-name": func(z zoneItem) []string { return nil },
	"region-name":      func(z zoneItem) []string { return []string{z.RegionName} },
	"state":            func(z zoneItem) []string { return []string{z.State} },
	"zone-id":          func(z zoneItem) []string { return []string{z.ZoneID} },
	"zone-name":        func(z zoneItem) []string { return []string{z.ZoneName} },
	"zone-type":        func(z zoneItem) []string { return []string{z.ZoneType} },
}

// Eucalyptus's verbose report: after each zone, a header line and one line
// per VM type, as the cloud controller of Eucalyptus 1.5 to 4 wrote them
// (euca2ools prints zoneName and zoneState side by side).
const (
	verboseKeyword = "verbose"
	verboseHeader  = "free / max   cpu   ram  disk"
	verboseLine    = "%04d / %04d  %2d   %4d  %4d"
)

func (a *api) describeAvailabilityZones(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if _, err := p.Bool("AllAvailabilityZones"); err != nil {
		return nil, err
	}
	var capacity map[string]map[string]store.VMTypeCapacity
	verbose := false
	zones, _, err := describe(p, describeCall[zoneItem]{
		fields: zoneFilters,
		fetch: func() ([]zoneItem, error) {
			names := p.List("ZoneName")
			if len(names) > 0 && names[0] == verboseKeyword {
				names = names[1:]
				var err error
				if capacity, verbose, err = a.cloud.ZoneCapacity(ctx, req.Caller.AccountID); err != nil {
					return nil, err
				}
			}
			return selectZones(a.zoneItems(ctx), names, p.List("ZoneId"))
		},
	})
	if err != nil {
		return nil, err
	}
	if !verbose {
		return &describeZonesResponse{Zones: setOf[zoneItem]{zones}}, nil
	}
	types, err := a.cloud.VMTypes(ctx)
	if err != nil {
		return nil, err
	}
	var out []zoneItem
	for _, z := range zones {
		out = append(out, z)
		out = append(out, verboseZoneLines(types, capacity[z.ZoneName])...)
		nodes, _ := a.cloud.ZoneNodes(z.ZoneName)
		out = append(out, verboseNodeLines(nodes)...)
	}
	return &describeZonesResponse{Zones: setOf[zoneItem]{out}}, nil
}

// zoneItems are the cloud's zones, one per cluster, in the state their
// clusters are.
func (a *api) zoneItems(ctx context.Context) []zoneItem {
	region := a.cloud.Region()
	states, messages := a.cloud.ZoneStates(ctx)
	var zones []zoneItem
	for _, z := range a.cloud.Zones() {
		state, msgs := states[z], &setOf[zoneMessage]{}
		if state == "" {
			state = "available"
		}
		if m := messages[z]; m != "" {
			msgs.Items = append(msgs.Items, zoneMessage{Message: m})
		}
		zones = append(zones, zoneItem{
			ZoneName: z, State: state, RegionName: region, ZoneID: a.cloud.ZoneID(z),
			ZoneType: "availability-zone", GroupName: region, NetworkBorderGroup: region,
			OptInStatus: optInNotRequired, Messages: msgs,
		})
	}
	return zones
}

// verboseZoneLines are the items Eucalyptus added after a zone: the header,
// then free and max instances, cores, memory (MB) and disk (GB) per VM type.
func verboseZoneLines(types []store.VMType, capacity map[string]store.VMTypeCapacity) []zoneItem {
	out := []zoneItem{{ZoneName: "|- vm types", State: verboseHeader}}
	for _, t := range types {
		c := capacity[t.Name]
		out = append(out, zoneItem{ZoneName: "|- " + t.Name, State: fmt.Sprintf(verboseLine, c.Free, c.Max, t.Cores, t.MemoryMB, t.DiskGB)})
	}
	return out
}

// verboseNodeLines are the items after a zone's VM types in the verbose
// report: one per node, its state and its cores, memory (MB) and disk (GB)
// free and total, as `euca node list` prints them; a node that is down says
// since when and why.
func verboseNodeLines(nodes []nodeview.Node) []zoneItem {
	var out []zoneItem
	for _, n := range nodes {
		host := n.Host
		if n.Port != 0 {
			host = net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		}
		state := "down"
		switch {
		case n.Up:
			state = "up"
		case n.Asleep:
			state = "asleep"
		}
		line := fmt.Sprintf("%-6s cores %d/%d  ram %d/%d  disk %d/%d", state,
			n.Free.Cores, n.Max.Cores, n.Free.MemoryMiB, n.Max.MemoryMiB, n.Free.DiskGiB, n.Max.DiskGiB)
		if !n.Up && !n.Asleep {
			line = "down"
			if !n.LastSeen.IsZero() {
				line += ", last seen " + n.LastSeen.UTC().Format(time.RFC3339)
			}
			if n.Error != "" {
				line += ": " + n.Error
			}
		}
		out = append(out, zoneItem{ZoneName: "|- node " + host, State: line})
	}
	return out
}

// selectZones keeps the zones named by ZoneName.N or ZoneId.N (all when
// neither is given); a name or id of no zone is refused as EC2 refuses it.
func selectZones(zones []zoneItem, names, ids []string) ([]zoneItem, error) {
	if len(names) == 0 && len(ids) == 0 {
		return zones, nil
	}
	byName, byID := map[string]bool{}, map[string]bool{}
	for _, z := range zones {
		byName[z.ZoneName], byID[z.ZoneID] = true, true
	}
	for _, n := range names {
		if !byName[n] {
			return nil, awserr.InvalidParameterValue("The zone '%s' does not exist.", n)
		}
	}
	for _, id := range ids {
		if !byID[id] {
			return nil, awserr.InvalidParameterValue("The zone ID '%s' does not exist.", id)
		}
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []zoneItem
	for _, z := range zones {
		if want[z.ZoneName] || slices.Contains(ids, z.ZoneID) {
			out = append(out, z)
		}
	}
	return out, nil
}

// ---- DescribeAccountAttributes

// accountAttributeNames are the attributes EC2 answers, in its order.
var accountAttributeNames = []string{
	"supported-platforms", "default-vpc", "max-instances",
	"vpc-max-security-groups-per-interface", "max-elastic-ips", "vpc-max-elastic-ips",
}

type accountAttributeValue struct {
	Value string `xml:"attributeValue"`
}

type accountAttributeItem struct {
	Name   string                       `xml:"attributeName"`
	Values setOf[accountAttributeValue] `xml:"attributeValueSet"`
}

type describeAccountAttributesResponse struct {
	Response
	Attributes setOf[accountAttributeItem] `xml:"accountAttributeSet"`
}

func (a *api) describeAccountAttributes(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if err := dryRun(p); err != nil {
		return nil, err
	}
	names := accountAttributeNames
	if asked := p.List("AttributeName"); len(asked) > 0 {
		for _, n := range asked {
			if !slices.Contains(accountAttributeNames, n) {
				return nil, awserr.InvalidParameterValue("Value (%s) for parameter attributeName is invalid. Unknown attribute.", n)
			}
		}
		names = asked
	}
	values, err := a.cloud.AccountAttributes(ctx, req.Caller.AccountID)
	if err != nil {
		return nil, err
	}
	resp := &describeAccountAttributesResponse{}
	for _, n := range names {
		item := accountAttributeItem{Name: n}
		for _, v := range values[n] {
			item.Values.Items = append(item.Values.Items, accountAttributeValue{v})
		}
		resp.Attributes.Items = append(resp.Attributes.Items, item)
	}
	return resp, nil
}

// ---- DescribeInstanceTypes

type instanceTypeItem struct {
	InstanceType                  string             `xml:"instanceType"`
	CurrentGeneration             bool               `xml:"currentGeneration"`
	FreeTierEligible              bool               `xml:"freeTierEligible"`
	SupportedUsageClasses         setOf[string]      `xml:"supportedUsageClasses"`
	SupportedRootDeviceTypes      setOf[string]      `xml:"supportedRootDeviceTypes"`
	SupportedVirtualizationTypes  setOf[string]      `xml:"supportedVirtualizationTypes"`
	BareMetal                     bool               `xml:"bareMetal"`
	Hypervisor                    string             `xml:"hypervisor"`
	ProcessorInfo                 processorInfo      `xml:"processorInfo"`
	VCpuInfo                      vcpuInfo           `xml:"vCpuInfo"`
	MemoryInfo                    memoryInfo         `xml:"memoryInfo"`
	InstanceStorageSupported      bool               `xml:"instanceStorageSupported"`
	InstanceStorageInfo           instanceStorage    `xml:"instanceStorageInfo"`
	EbsInfo                       ebsInfo            `xml:"ebsInfo"`
	NetworkInfo                   networkInfo        `xml:"networkInfo"`
	PlacementGroupInfo            placementGroupInfo `xml:"placementGroupInfo"`
	HibernationSupported          bool               `xml:"hibernationSupported"`
	BurstablePerformanceSupported bool               `xml:"burstablePerformanceSupported"`
	DedicatedHostsSupported       bool               `xml:"dedicatedHostsSupported"`
	AutoRecoverySupported         bool               `xml:"autoRecoverySupported"`
	SupportedBootModes            setOf[string]      `xml:"supportedBootModes"`
	NitroEnclavesSupport          string             `xml:"nitroEnclavesSupport"`
	NitroTpmSupport               string             `xml:"nitroTpmSupport"`
	PhcSupport                    string             `xml:"phcSupport"`
	RebootMigrationSupport        string             `xml:"rebootMigrationSupport"`
	SupportedInRegion             bool               `xml:"supportedInRegion"`
}

type processorInfo struct {
	SupportedArchitectures setOf[string] `xml:"supportedArchitectures"`
	// SustainedClockSpeedInGhz is left out: the front-end cannot know the
	// nodes' processors, and a made-up figure would be worse than none.
	SustainedClockSpeedInGhz float64 `xml:"sustainedClockSpeedInGhz,omitempty"`
}

type vcpuInfo struct {
	DefaultVCpus          int `xml:"defaultVCpus"`
	DefaultCores          int `xml:"defaultCores"`
	DefaultThreadsPerCore int `xml:"defaultThreadsPerCore"`
}

type memoryInfo struct {
	SizeInMiB int `xml:"sizeInMiB"`
}

type diskInfo struct {
	SizeInGB int    `xml:"sizeInGB"`
	Count    int    `xml:"count"`
	Type     string `xml:"type"`
}

type instanceStorage struct {
	TotalSizeInGB     int             `xml:"totalSizeInGB"`
	Disks             setOf[diskInfo] `xml:"disks"`
	NvmeSupport       string          `xml:"nvmeSupport"`
	EncryptionSupport string          `xml:"encryptionSupport"`
}

type ebsInfo struct {
	EbsOptimizedSupport string `xml:"ebsOptimizedSupport"`
	EncryptionSupport   string `xml:"encryptionSupport"`
	NvmeSupport         string `xml:"nvmeSupport"`
}

type networkCard struct {
	NetworkCardIndex         int    `xml:"networkCardIndex"`
	NetworkPerformance       string `xml:"networkPerformance"`
	MaximumNetworkInterfaces int    `xml:"maximumNetworkInterfaces"`
}

type networkInfo struct {
	NetworkPerformance           string             `xml:"networkPerformance"`
	MaximumNetworkInterfaces     int                `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards          int                `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex      int                `xml:"defaultNetworkCardIndex"`
	NetworkCards                 setOf[networkCard] `xml:"networkCards"`
	Ipv4AddressesPerInterface    int                `xml:"ipv4AddressesPerInterface"`
	Ipv6AddressesPerInterface    int                `xml:"ipv6AddressesPerInterface"`
	Ipv6Supported                bool               `xml:"ipv6Supported"`
	EnaSupport                   string             `xml:"enaSupport"`
	EfaSupported                 bool               `xml:"efaSupported"`
	EncryptionInTransitSupported bool               `xml:"encryptionInTransitSupported"`
	EnaSrdSupported              bool               `xml:"enaSrdSupported"`
}

type placementGroupInfo struct {
	SupportedStrategies setOf[string] `xml:"supportedStrategies"`
}

type describeInstanceTypesResponse struct {
	Response
	InstanceTypes setOf[instanceTypeItem] `xml:"instanceTypeSet"`
	NextToken     string                  `xml:"nextToken,omitempty"`
}

// networkPerformance is what every VM type gets: instances share their
// node's links, with no per-type shaping.
const networkPerformance = "Moderate"

// instanceTypeInfo describes a VM type in EC2's terms: one NIC with one
// address (the network modes give each instance one private address), the
// VM type's disk as one local (instance-store) disk, and none of the
// features a private cloud does not offer (bursting, hibernation, dedicated
// hosts), which also keeps clients from asking about them.
func instanceTypeInfo(t store.VMType, hypervisor string) instanceTypeItem {
	unsupported := "unsupported"
	return instanceTypeItem{
		InstanceType:                 t.Name,
		CurrentGeneration:            true,
		SupportedUsageClasses:        setOf[string]{[]string{"on-demand"}},
		SupportedRootDeviceTypes:     setOf[string]{[]string{"ebs", "instance-store"}},
		SupportedVirtualizationTypes: setOf[string]{[]string{"hvm", "paravirtual"}},
		Hypervisor:                   hypervisor,
		ProcessorInfo:                processorInfo{SupportedArchitectures: setOf[string]{[]string{"x86_64"}}},
		VCpuInfo:                     vcpuInfo{DefaultVCpus: t.Cores, DefaultCores: t.Cores, DefaultThreadsPerCore: 1},
		MemoryInfo:                   memoryInfo{SizeInMiB: t.MemoryMB},
		InstanceStorageSupported:     true,
		InstanceStorageInfo: instanceStorage{
			TotalSizeInGB: t.DiskGB,
			Disks:         setOf[diskInfo]{[]diskInfo{{SizeInGB: t.DiskGB, Count: 1, Type: "ssd"}}},
			NvmeSupport:   unsupported, EncryptionSupport: unsupported,
		},
		EbsInfo: ebsInfo{EbsOptimizedSupport: unsupported, EncryptionSupport: unsupported, NvmeSupport: unsupported},
		NetworkInfo: networkInfo{
			NetworkPerformance: networkPerformance, MaximumNetworkInterfaces: 1, MaximumNetworkCards: 1,
			NetworkCards:              setOf[networkCard]{[]networkCard{{NetworkPerformance: networkPerformance, MaximumNetworkInterfaces: 1}}},
			Ipv4AddressesPerInterface: 1, EnaSupport: unsupported,
		},
		SupportedBootModes:     setOf[string]{[]string{"legacy-bios"}},
		NitroEnclavesSupport:   unsupported,
		NitroTpmSupport:        unsupported,
		PhcSupport:             unsupported,
		RebootMigrationSupport: unsupported,
		SupportedInRegion:      true,
	}
}

// Filter values of one instance type.
func fvInt(i int) []string             { return []string{strconv.Itoa(i)} }
func fvBool(b bool) []string           { return []string{boolString(b)} }
func fvStr(s string) []string          { return []string{s} }
func fvNone(instanceTypeItem) []string { return nil }

// instanceTypeFilters are the model's filters of DescribeInstanceTypes; the
// ones about features no VM type has match nothing.
var instanceTypeFilters = filterFields[instanceTypeItem]{
	"auto-recovery-supported":                                 func(i instanceTypeItem) []string { return fvBool(i.AutoRecoverySupported) },
	"bare-metal":                                              func(i instanceTypeItem) []string { return fvBool(i.BareMetal) },
	"burstable-performance-supported":                         func(i instanceTypeItem) []string { return fvBool(i.BurstablePerformanceSupported) },
	"current-generation":                                      func(i instanceTypeItem) []string { return fvBool(i.CurrentGeneration) },
	"dedicated-hosts-supported":                               func(i instanceTypeItem) []string { return fvBool(i.DedicatedHostsSupported) },
	"ebs-info.attachment-limit-type":                          fvNone,
	"ebs-info.maximum-ebs-attachments":                        fvNone,
	"ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps":  fvNone,
	"ebs-info.ebs-optimized-info.baseline-iops":               fvNone,
	"ebs-info.ebs-optimized-info.baseline-throughput-in-mbps": fvNone,
	"ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps":   fvNone,
	"ebs-info.ebs-optimized-info.maximum-iops":                fvNone,
	"ebs-info.ebs-optimized-info.maximum-throughput-in-mbps":  fvNone,
	"ebs-info.ebs-optimized-support":                          func(i instanceTypeItem) []string { return fvStr(i.EbsInfo.EbsOptimizedSupport) },
	"ebs-info.encryption-support":                             func(i instanceTypeItem) []string { return fvStr(i.EbsInfo.EncryptionSupport) },
	"ebs-info.nvme-support":                                   func(i instanceTypeItem) []string { return fvStr(i.EbsInfo.NvmeSupport) },
	"free-tier-eligible":                                      func(i instanceTypeItem) []string { return fvBool(i.FreeTierEligible) },
	"hibernation-supported":                                   func(i instanceTypeItem) []string { return fvBool(i.HibernationSupported) },
	"hypervisor":                                              func(i instanceTypeItem) []string { return fvStr(i.Hypervisor) },
	"instance-storage-info.disk.count": func(i instanceTypeItem) []string {
		return diskValues(i, func(d diskInfo) string { return strconv.Itoa(d.Count) })
	},
	"instance-storage-info.disk.size-in-gb": func(i instanceTypeItem) []string {
		return diskValues(i, func(d diskInfo) string { return strconv.Itoa(d.SizeInGB) })
	},
	"instance-storage-info.disk.type": func(i instanceTypeItem) []string {
		return diskValues(i, func(d diskInfo) string { return d.Type })
	},
	"instance-storage-info.encryption-support":     func(i instanceTypeItem) []string { return fvStr(i.InstanceStorageInfo.EncryptionSupport) },
	"instance-storage-info.nvme-support":           func(i instanceTypeItem) []string { return fvStr(i.InstanceStorageInfo.NvmeSupport) },
	"instance-storage-info.total-size-in-gb":       func(i instanceTypeItem) []string { return fvInt(i.InstanceStorageInfo.TotalSizeInGB) },
	"instance-storage-supported":                   func(i instanceTypeItem) []string { return fvBool(i.InstanceStorageSupported) },
	"instance-type":                                func(i instanceTypeItem) []string { return fvStr(i.InstanceType) },
	"memory-info.size-in-mib":                      func(i instanceTypeItem) []string { return fvInt(i.MemoryInfo.SizeInMiB) },
	"network-info.bandwidth-weightings":            fvNone,
	"network-info.efa-info.maximum-efa-interfaces": fvNone,
	"network-info.efa-supported":                   func(i instanceTypeItem) []string { return fvBool(i.NetworkInfo.EfaSupported) },
	"network-info.ena-support":                     func(i instanceTypeItem) []string { return fvStr(i.NetworkInfo.EnaSupport) },
	"network-info.flexible-ena-queues-support":     fvNone,
	"network-info.encryption-in-transit-supported": func(i instanceTypeItem) []string { return fvBool(i.NetworkInfo.EncryptionInTransitSupported) },
	"network-info.ipv4-addresses-per-interface":    func(i instanceTypeItem) []string { return fvInt(i.NetworkInfo.Ipv4AddressesPerInterface) },
	"network-info.ipv6-addresses-per-interface":    func(i instanceTypeItem) []string { return fvInt(i.NetworkInfo.Ipv6AddressesPerInterface) },
	"network-info.ipv6-supported":                  func(i instanceTypeItem) []string { return fvBool(i.NetworkInfo.Ipv6Supported) },
	"network-info.maximum-network-cards":           func(i instanceTypeItem) []string { return fvInt(i.NetworkInfo.MaximumNetworkCards) },
	"network-info.maximum-network-interfaces":      func(i instanceTypeItem) []string { return fvInt(i.NetworkInfo.MaximumNetworkInterfaces) },
	"network-info.network-performance":             func(i instanceTypeItem) []string { return fvStr(i.NetworkInfo.NetworkPerformance) },
	"nitro-enclaves-support":                       func(i instanceTypeItem) []string { return fvStr(i.NitroEnclavesSupport) },
	"nitro-tpm-support":                            func(i instanceTypeItem) []string { return fvStr(i.NitroTpmSupport) },
	"nitro-tpm-info.supported-versions":            fvNone,
	"processor-info.supported-architecture":        func(i instanceTypeItem) []string { return i.ProcessorInfo.SupportedArchitectures.Items },
	"processor-info.sustained-clock-speed-in-ghz":  fvNone,
	"processor-info.supported-features":            fvNone,
	"reboot-migration-support":                     func(i instanceTypeItem) []string { return fvStr(i.RebootMigrationSupport) },
	"supported-boot-mode":                          func(i instanceTypeItem) []string { return i.SupportedBootModes.Items },
	"supported-root-device-type":                   func(i instanceTypeItem) []string { return i.SupportedRootDeviceTypes.Items },
	"supported-usage-class":                        func(i instanceTypeItem) []string { return i.SupportedUsageClasses.Items },
	"supported-virtualization-type":                func(i instanceTypeItem) []string { return i.SupportedVirtualizationTypes.Items },
	"vcpu-info.default-cores":                      func(i instanceTypeItem) []string { return fvInt(i.VCpuInfo.DefaultCores) },
	"vcpu-info.default-threads-per-core":           func(i instanceTypeItem) []string { return fvInt(i.VCpuInfo.DefaultThreadsPerCore) },
	"vcpu-info.default-vcpus":                      func(i instanceTypeItem) []string { return fvInt(i.VCpuInfo.DefaultVCpus) },
	"vcpu-info.valid-cores":                        fvNone,
	"vcpu-info.valid-threads-per-core":             fvNone,
}

func diskValues(i instanceTypeItem, f func(diskInfo) string) []string {
	var out []string
	for _, d := range i.InstanceStorageInfo.Disks.Items {
		out = append(out, f(d))
	}
	return out
}

func (a *api) describeInstanceTypes(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	if _, err := p.Bool("IncludeUnsupportedInRegion"); err != nil {
		return nil, err
	}
	page, next, err := describe(p, describeCall[instanceTypeItem]{
		fields: instanceTypeFilters,
		fetch: func() ([]instanceTypeItem, error) {
			return a.instanceTypes(ctx, p.List("InstanceType"))
		},
		minResults: 5, maxResults: 100,
	})
	if err != nil {
		return nil, err
	}
	return &describeInstanceTypesResponse{InstanceTypes: setOf[instanceTypeItem]{page}, NextToken: next}, nil
}

// instanceTypes are the VM types asked for (all when none is), each once,
// or the error that names those that do not exist.
func (a *api) instanceTypes(ctx context.Context, asked []string) ([]instanceTypeItem, error) {
	types, err := a.cloud.VMTypes(ctx)
	if err != nil {
		return nil, err
	}
	hv := a.cloud.InstanceHypervisor()
	var items []instanceTypeItem
	if len(asked) > 0 {
		byName := map[string]store.VMType{}
		for _, t := range types {
			byName[t.Name] = t
		}
		var unknown []string
		seen := map[string]bool{}
		for _, n := range asked {
			t, ok := byName[n]
			switch {
			case !ok:
				unknown = append(unknown, n)
			case !seen[n]:
				seen[n] = true
				items = append(items, instanceTypeInfo(t, hv))
			}
		}
		if len(unknown) > 0 {
			return nil, awserr.New("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(unknown, ", "))
		}
	} else {
		for _, t := range types {
			items = append(items, instanceTypeInfo(t, hv))
		}
	}
	return items, nil
}

// ---- DescribeInstanceTypeOfferings: every VM type, in the region and in
// each zone

type instanceTypeOfferingItem struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

type describeInstanceTypeOfferingsResponse struct {
	Response
	Offerings setOf[instanceTypeOfferingItem] `xml:"instanceTypeOfferingSet"`
	NextToken string                          `xml:"nextToken,omitempty"`
}

var instanceTypeOfferingFilters = filterFields[instanceTypeOfferingItem]{
	"instance-type": func(o instanceTypeOfferingItem) []string { return []string{o.InstanceType} },
	"location":      func(o instanceTypeOfferingItem) []string { return []string{o.Location} },
}

// Location types of DescribeInstanceTypeOfferings.
const (
	locationRegion  = "region"
	locationZone    = "availability-zone"
	locationZoneID  = "availability-zone-id"
	locationOutpost = "outpost"
)

func (a *api) describeInstanceTypeOfferings(ctx context.Context, req *queryapi.Request) (any, error) {
	p := req.Params
	locType := p.String("LocationType")
	if locType == "" {
		locType = locationRegion
	}
	page, next, err := describe(p, describeCall[instanceTypeOfferingItem]{
		fields: instanceTypeOfferingFilters,
		check: func() error {
			switch locType {
			case locationRegion, locationZone, locationZoneID, locationOutpost:
				return nil
			}
			return awserr.InvalidParameterValue("Value (%s) for parameter locationType is invalid. Valid values are region, availability-zone, availability-zone-id, outpost.", locType)
		},
		fetch: func() ([]instanceTypeOfferingItem, error) {
			types, err := a.cloud.VMTypes(ctx)
			if err != nil {
				return nil, err
			}
			var locations []string
			switch locType {
			case locationRegion:
				locations = []string{a.cloud.Region()}
			case locationZone:
				locations = a.cloud.Zones()
			case locationZoneID:
				for _, z := range a.cloud.Zones() {
					locations = append(locations, a.cloud.ZoneID(z))
				}
			} // no outposts: no offerings
			var out []instanceTypeOfferingItem
			for _, t := range types {
				for _, l := range locations {
					out = append(out, instanceTypeOfferingItem{InstanceType: t.Name, LocationType: locType, Location: l})
				}
			}
			return out, nil
		},
		minResults: 5, maxResults: 1000,
	})
	if err != nil {
		return nil, err
	}
	return &describeInstanceTypeOfferingsResponse{Offerings: setOf[instanceTypeOfferingItem]{page}, NextToken: next}, nil
}

// ---- Helpers of the Describe calls (DescribeImages is in images.go)

// knownFilterNames are filters that are valid but match nothing yet: the calls
// that use them check the names a client sends, and find no resources.
func knownFilterNames(names ...string) filterFields[struct{}] {
	f := filterFields[struct{}]{}
	for _, n := range names {
		f[n] = func(struct{}) []string { return nil }
	}
	return f
}

// noTags lets tag:<key>, tag-key and tag-value through validation.
func noTags(struct{}) []store.Tag { return nil }

// checkFiltersKnown validates a call's filters against the names it knows.
func checkFiltersKnown(p queryapi.Params, names filterFields[struct{}]) error {
	filters, err := p.Filters()
	if err != nil {
		return err
	}
	_, err = applyFilters(nil, filters, names, noTags)
	return err
}

// idPattern is an EC2 id of one of prefixes: 8 hex digits (the older form,
// which Eucalyptus printed in capitals) or 17.
func idPattern(prefixes ...string) *regexp.Regexp {
	return regexp.MustCompile(`^(` + strings.Join(prefixes, "|") + `)-([0-9a-fA-F]{8}|[0-9a-fA-F]{17})$`)
}

var (
	// Images are EMIs, EKIs and ERIs; clients written for AWS send AMI ids.
	imageIDPattern    = idPattern("emi", "eki", "eri", "ami", "aki", "ari")
	instanceIDPattern = idPattern("i")
)
