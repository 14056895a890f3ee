package ec2api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/principal"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/store"
)

// catFixture is the EC2 API over a real cloud controller: the admin account
// and one other.
type catFixture struct {
	a            *api
	st           *store.Store
	admin, alice string
}

func catalogAPI(t *testing.T) *catFixture {
	t.Helper()
	return catalogAPIWith(t, nil)
}

// catalogAPIWith is catalogAPI over the configuration cfg (nil: testConfig's).
func catalogAPIWith(t *testing.T, cfg *conf.Config) *catFixture {
	t.Helper()
	c, st, ids := newTestCloud(t, cfg, clc.AdminAccount, "alice")
	return &catFixture{a: &api{cloud: c}, st: st, admin: ids[0], alice: ids[1]}
}

// withCluster gives the cloud's zone a cluster (with no nodes).
func (f *catFixture) withCluster() {
	cloud := f.a.cloud.(*clc.Cloud)
	cloud.SetCluster(&apiCluster{zone: cloud.Zones()[0], states: map[string]string{}, console: map[string][]byte{}})
}

// call runs an action as account through the action table.
func (f *catFixture) call(account, action string, params queryapi.Params) (any, error) {
	if params == nil {
		params = queryapi.Params{}
	}
	req := &queryapi.Request{Action: action, Params: params, Caller: principal.Principal{AccountID: account},
		HTTP: httptest.NewRequest("POST", "http://cloud.example:8773/", nil)}
	h, ok := f.a.actions()[action]
	if !ok {
		return nil, awserr.New("InvalidAction", "The action %s is not valid for this web service.", action)
	}
	return h(context.Background(), req)
}

// catCase is one call and what it must answer: an error code, or a response
// that botocore parses into something check accepts.
type catCase struct {
	name    string
	account string // "" is alice
	params  queryapi.Params
	code    string
	check   func(t *testing.T, r map[string]any)
}

func (f *catFixture) run(t *testing.T, action string, cases []catCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(action+"/"+tc.name, func(t *testing.T) {
			account := tc.account
			if account == "" {
				account = f.alice
			}
			resp, err := f.call(account, action, tc.params)
			if tc.code != "" {
				e, ok := awserr.As(err)
				if !ok || e.Code != tc.code {
					t.Fatalf("error %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", action, err)
			}
			r := botoParse(t, action, resp)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// catList is r[key] as a list of objects.
func catList(t *testing.T, r map[string]any, key string) []map[string]any {
	t.Helper()
	raw, ok := r[key].([]any)
	if !ok {
		t.Fatalf("%s missing or not a list in %v", key, r)
	}
	var out []map[string]any
	for _, v := range raw {
		out = append(out, v.(map[string]any))
	}
	return out
}

func catLen(key string, n int) func(t *testing.T, r map[string]any) {
	return func(t *testing.T, r map[string]any) {
		t.Helper()
		if got := catList(t, r, key); len(got) != n {
			t.Fatalf("%s: %d items, want %d: %v", key, len(got), n, got)
		}
	}
}

func TestDescribeRegions(t *testing.T) {
	f := catalogAPI(t)
	f.run(t, "DescribeRegions", []catCase{
		{name: "all", check: func(t *testing.T, r map[string]any) {
			regions := catList(t, r, "Regions")
			want := map[string]any{"RegionName": "us-east-1", "Endpoint": "http://cloud.example:8773/services/Eucalyptus", "OptInStatus": "opt-in-not-required"}
			if len(regions) != 1 || !mapsEqual(regions[0], want) {
				t.Fatalf("regions %v", regions)
			}
		}},
		{name: "by name", params: queryapi.Params{"RegionName.1": "us-east-1", "AllRegions": "true"}, check: catLen("Regions", 1)},
		{name: "unknown name", params: queryapi.Params{"RegionName.1": "us-east-1", "RegionName.2": "us-west-2"}, code: "InvalidParameterValue"},
		{name: "filter match", params: queryapi.Params{"Filter.1.Name": "region-name", "Filter.1.Value.1": "us-*"}, check: catLen("Regions", 1)},
		{name: "filter endpoint", params: queryapi.Params{"Filter.1.Name": "endpoint", "Filter.1.Value.1": "*cloud.example*"}, check: catLen("Regions", 1)},
		{name: "filter miss", params: queryapi.Params{"Filter.1.Name": "opt-in-status", "Filter.1.Value.1": "opted-in"}, check: catLen("Regions", 0)},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "zone-name", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
		{name: "bad boolean", params: queryapi.Params{"AllRegions": "yes"}, code: "InvalidParameterValue"},
	})
}

func mapsEqual(got, want map[string]any) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestDescribeAvailabilityZones(t *testing.T) {
	f := catalogAPI(t)
	f.withCluster()
	zone := func(t *testing.T, r map[string]any) {
		zones := catList(t, r, "AvailabilityZones")
		want := map[string]any{"ZoneName": "us-east-1a", "State": "available", "RegionName": "us-east-1", "ZoneId": "use1-az1",
			"ZoneType": "availability-zone", "GroupName": "us-east-1", "NetworkBorderGroup": "us-east-1", "OptInStatus": "opt-in-not-required"}
		if len(zones) != 1 || !mapsEqual(zones[0], want) {
			t.Fatalf("zones %v", zones)
		}
		if msgs, ok := zones[0]["Messages"].([]any); !ok || len(msgs) != 0 {
			t.Fatalf("messages %v", zones[0]["Messages"])
		}
	}
	f.run(t, "DescribeAvailabilityZones", []catCase{
		{name: "all", check: zone},
		{name: "by name", params: queryapi.Params{"ZoneName.1": "us-east-1a"}, check: zone},
		{name: "by id", params: queryapi.Params{"ZoneId.1": "use1-az1"}, check: zone},
		{name: "unknown name", params: queryapi.Params{"ZoneName.1": "us-east-1b"}, code: "InvalidParameterValue"},
		{name: "unknown id", params: queryapi.Params{"ZoneId.1": "use1-az9"}, code: "InvalidParameterValue"},
		{name: "filter state", params: queryapi.Params{"Filter.1.Name": "state", "Filter.1.Value.1": "available", "Filter.2.Name": "zone-id", "Filter.2.Value.1": "use1-az1"}, check: zone},
		{name: "filter miss", params: queryapi.Params{"Filter.1.Name": "zone-type", "Filter.1.Value.1": "local-zone"}, check: catLen("AvailabilityZones", 0)},
		{name: "filter message", params: queryapi.Params{"Filter.1.Name": "message", "Filter.1.Value.1": "*"}, check: catLen("AvailabilityZones", 0)},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "zoneName", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "verbose for another account is plain", params: queryapi.Params{"ZoneName.1": "verbose"}, check: zone},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

// TestZoneWithoutClusterUnavailable: a zone no cluster controller serves
// (a front-end without the cc role, before any cluster is registered) is
// shown unavailable, saying why, not available with no room.
func TestZoneWithoutClusterUnavailable(t *testing.T) {
	f := catalogAPI(t)
	resp, err := f.call(f.alice, "DescribeAvailabilityZones", queryapi.Params{"Filter.1.Name": "state", "Filter.1.Value.1": "unavailable"})
	if err != nil {
		t.Fatal(err)
	}
	zones := catList(t, botoParse(t, "DescribeAvailabilityZones", resp), "AvailabilityZones")
	if len(zones) != 1 || zones[0]["State"] != "unavailable" {
		t.Fatalf("zones %v", zones)
	}
	if msgs, ok := zones[0]["Messages"].([]any); !ok || len(msgs) != 1 || !strings.Contains(fmt.Sprint(msgs[0]), "no cluster controller") {
		t.Fatalf("messages %v", zones[0]["Messages"])
	}
}

// TestVerboseZonesLayout: `euca-describe-availability-zones verbose` prints
// zoneName and zoneState of each item; the lines must be Eucalyptus's.
func TestVerboseZonesLayout(t *testing.T) {
	f := catalogAPI(t)
	f.withCluster()
	if _, err := f.a.cloud.(*clc.Cloud).SetVMType(context.Background(), "m1.small", 1, 192, 2); err != nil {
		t.Fatal(err)
	}
	for _, params := range []queryapi.Params{{"ZoneName.1": "verbose"}, {"ZoneName.1": "verbose", "ZoneName.2": "us-east-1a"}} {
		resp, err := f.call(f.admin, "DescribeAvailabilityZones", params)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, z := range resp.(*describeZonesResponse).Zones.Items {
			lines = append(lines, "AVAILABILITYZONE\t"+z.ZoneName+"\t"+z.State)
		}
		want := []string{
			"AVAILABILITYZONE\tus-east-1a\tavailable",
			"AVAILABILITYZONE\t|- vm types\tfree / max   cpu   ram  disk",
			"AVAILABILITYZONE\t|- m1.small\t0100 / 0100   1    192     2",
			"AVAILABILITYZONE\t|- c1.medium\t0100 / 0100   1    256     5",
			"AVAILABILITYZONE\t|- m1.large\t0100 / 0100   2    512    10",
			"AVAILABILITYZONE\t|- m1.xlarge\t0100 / 0100   2   1024    20",
			"AVAILABILITYZONE\t|- c1.xlarge\t0100 / 0100   4   2048    20",
		}
		if !slices.Equal(lines, want) {
			t.Errorf("%v:\n%s\nwant\n%s", params, strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		// botocore still reads it (the extra items have only name and state).
		r := botoParse(t, "DescribeAvailabilityZones", resp)
		if got := catList(t, r, "AvailabilityZones"); len(got) != len(want) {
			t.Errorf("botocore read %d zones", len(got))
		}
	}
	// Capacity figures from the cluster fill the free / max columns.
	lines := verboseZoneLines([]store.VMType{{Name: "m1.small", Cores: 1, MemoryMB: 128, DiskGB: 2}},
		map[string]store.VMTypeCapacity{"m1.small": {Free: 3, Max: 4}})
	if lines[1].State != "0003 / 0004   1    128     2" {
		t.Errorf("line %q", lines[1].State)
	}
	if _, err := f.call(f.admin, "DescribeAvailabilityZones", queryapi.Params{"ZoneName.1": "verbose", "ZoneName.2": "nowhere"}); err == nil {
		t.Error("verbose with an unknown zone succeeded")
	}
}

func TestDescribeAccountAttributes(t *testing.T) {
	f := catalogAPI(t)
	vpc, err := f.st.DefaultVPC(context.Background(), f.alice)
	if err != nil {
		t.Fatal(err)
	}
	attrs := func(want map[string]string) func(t *testing.T, r map[string]any) {
		return func(t *testing.T, r map[string]any) {
			items := catList(t, r, "AccountAttributes")
			got := map[string]string{}
			for _, it := range items {
				vals := it["AttributeValues"].([]any)
				got[it["AttributeName"].(string)] = vals[0].(map[string]any)["AttributeValue"].(string)
			}
			if len(got) != len(want) || !mapsEqual(toAny(got), toAny(want)) {
				t.Fatalf("attributes %v, want %v", got, want)
			}
		}
	}
	f.run(t, "DescribeAccountAttributes", []catCase{
		{name: "all", check: attrs(map[string]string{
			"supported-platforms": "VPC", "default-vpc": vpc.ID, "max-instances": "20",
			"vpc-max-security-groups-per-interface": "5", "max-elastic-ips": "5", "vpc-max-elastic-ips": "5",
		})},
		{name: "one", params: queryapi.Params{"AttributeName.1": "default-vpc"}, check: attrs(map[string]string{"default-vpc": vpc.ID})},
		{name: "two", params: queryapi.Params{"AttributeName.1": "supported-platforms", "AttributeName.2": "max-instances"},
			check: attrs(map[string]string{"supported-platforms": "VPC", "max-instances": "20"})},
		{name: "unknown", params: queryapi.Params{"AttributeName.1": "max-volumes"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestDescribeInstanceTypes(t *testing.T) {
	f := catalogAPI(t)
	names := func(want ...string) func(t *testing.T, r map[string]any) {
		return func(t *testing.T, r map[string]any) {
			var got []string
			for _, it := range catList(t, r, "InstanceTypes") {
				got = append(got, it["InstanceType"].(string))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("types %v, want %v", got, want)
			}
		}
	}
	small := func(t *testing.T, r map[string]any) {
		it := catList(t, r, "InstanceTypes")[0]
		b, _ := json.Marshal(it)
		for _, want := range []string{
			`"InstanceType":"m1.small"`, `"CurrentGeneration":true`, `"FreeTierEligible":false`, `"BareMetal":false`,
			`"Hypervisor":"nitro"`, `"SupportedArchitectures":["x86_64"]`,
			`"VCpuInfo":{"DefaultCores":1,"DefaultThreadsPerCore":1,"DefaultVCpus":1}`,
			`"MemoryInfo":{"SizeInMiB":128}`, `"InstanceStorageSupported":true`,
			`"Disks":[{"Count":1,"SizeInGB":2,"Type":"ssd"}]`, `"TotalSizeInGB":2`,
			`"EbsOptimizedSupport":"unsupported"`, `"MaximumNetworkInterfaces":1`, `"Ipv4AddressesPerInterface":1`,
			`"Ipv6Supported":false`, `"BurstablePerformanceSupported":false`, `"HibernationSupported":false`,
			`"DedicatedHostsSupported":false`, `"AutoRecoverySupported":false`, `"SupportedUsageClasses":["on-demand"]`,
			`"SupportedRootDeviceTypes":["ebs","instance-store"]`, `"SupportedVirtualizationTypes":["hvm","paravirtual"]`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("missing %s in %s", want, b)
			}
		}
	}
	f.run(t, "DescribeInstanceTypes", []catCase{
		{name: "all", check: names("m1.small", "c1.medium", "m1.large", "m1.xlarge", "c1.xlarge")},
		{name: "one", params: queryapi.Params{"InstanceType.1": "m1.small"}, check: small},
		{name: "in asked order", params: queryapi.Params{"InstanceType.1": "c1.xlarge", "InstanceType.2": "m1.small", "InstanceType.3": "c1.xlarge"},
			check: names("c1.xlarge", "m1.small")},
		{name: "unknown", params: queryapi.Params{"InstanceType.1": "m1.small", "InstanceType.2": "t2.micro"}, code: "InvalidInstanceType"},
		{name: "filter vcpus", params: queryapi.Params{"Filter.1.Name": "vcpu-info.default-vcpus", "Filter.1.Value.1": "2"}, check: names("m1.large", "m1.xlarge")},
		{name: "filter memory", params: queryapi.Params{"Filter.1.Name": "memory-info.size-in-mib", "Filter.1.Value.1": "2048", "Filter.1.Value.2": "256"}, check: names("c1.medium", "c1.xlarge")},
		{name: "filter type wildcard", params: queryapi.Params{"Filter.1.Name": "instance-type", "Filter.1.Value.1": "c1.*"}, check: names("c1.medium", "c1.xlarge")},
		{name: "filter current generation", params: queryapi.Params{"Filter.1.Name": "current-generation", "Filter.1.Value.1": "true", "Filter.2.Name": "burstable-performance-supported", "Filter.2.Value.1": "false"},
			check: names("m1.small", "c1.medium", "m1.large", "m1.xlarge", "c1.xlarge")},
		{name: "filter nothing has", params: queryapi.Params{"Filter.1.Name": "vcpu-info.valid-cores", "Filter.1.Value.1": "1"}, check: catLen("InstanceTypes", 0)},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "cores", "Filter.1.Value.1": "1"}, code: "InvalidParameterValue"},
		{name: "page", params: queryapi.Params{"MaxResults": "5"}, check: func(t *testing.T, r map[string]any) {
			catLen("InstanceTypes", 5)(t, r)
			if _, ok := r["NextToken"]; ok {
				t.Error("NextToken on the last page")
			}
		}},
		{name: "second page", params: queryapi.Params{"MaxResults": "5", "NextToken": "3"}, check: names("m1.xlarge", "c1.xlarge")},
		{name: "max results too small", params: queryapi.Params{"MaxResults": "4"}, code: "InvalidParameterValue"},
		{name: "max results too big", params: queryapi.Params{"MaxResults": "101"}, code: "InvalidParameterValue"},
		{name: "bad token", params: queryapi.Params{"NextToken": "xyz"}, code: "InvalidPaginationToken"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

func TestDescribeImagesEmpty(t *testing.T) {
	f := catalogAPI(t)
	empty := catLen("Images", 0)
	f.run(t, "DescribeImages", []catCase{
		{name: "all", check: empty},
		{name: "owners", params: queryapi.Params{"Owner.1": "self", "Owner.2": "amazon", "ExecutableBy.1": "all"}, check: empty},
		{name: "filters", params: queryapi.Params{"Filter.1.Name": "name", "Filter.1.Value.1": "debian-*", "Filter.2.Name": "tag:Name", "Filter.2.Value.1": "x",
			"Filter.3.Name": "is-public", "Filter.3.Value.1": "true"}, check: empty},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "instance-type", "Filter.1.Value.1": "x"}, code: "InvalidParameterValue"},
		{name: "unknown emi", params: queryapi.Params{"ImageId.1": "emi-DFFC107E"}, code: "InvalidAMIID.NotFound"},
		{name: "unknown ami", params: queryapi.Params{"ImageId.1": "ami-0123456789abcdef0"}, code: "InvalidAMIID.NotFound"},
		{name: "malformed", params: queryapi.Params{"ImageId.1": "debian"}, code: "InvalidAMIID.Malformed"},
		{name: "malformed length", params: queryapi.Params{"ImageId.1": "ami-123"}, code: "InvalidAMIID.Malformed"},
		{name: "max results", params: queryapi.Params{"MaxResults": "1000"}, check: empty},
		{name: "max results too big", params: queryapi.Params{"MaxResults": "1001"}, code: "InvalidParameterValue"},
		{name: "bad token", params: queryapi.Params{"NextToken": "abc"}, code: "InvalidPaginationToken"},
		{name: "bad boolean", params: queryapi.Params{"IncludeDeprecated": "maybe"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

func TestDescribeInstancesEmpty(t *testing.T) {
	f := catalogAPI(t)
	empty := catLen("Reservations", 0)
	f.run(t, "DescribeInstances", []catCase{
		{name: "all", check: empty},
		{name: "filters", params: queryapi.Params{"Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running", "Filter.2.Name": "tag-key", "Filter.2.Value.1": "Name"}, check: empty},
		{name: "legacy filter", params: queryapi.Params{"Filter.1.Name": "group-name", "Filter.1.Value.1": "default"}, check: empty},
		{name: "unknown filter", params: queryapi.Params{"Filter.1.Name": "state", "Filter.1.Value.1": "running"}, code: "InvalidParameterValue"},
		{name: "unknown id", params: queryapi.Params{"InstanceId.1": "i-0123456789abcdef0"}, code: "InvalidInstanceID.NotFound"},
		{name: "unknown ids", params: queryapi.Params{"InstanceId.1": "i-12345678", "InstanceId.2": "i-ABCDEF01"}, code: "InvalidInstanceID.NotFound"},
		{name: "malformed", params: queryapi.Params{"InstanceId.1": "web1"}, code: "InvalidInstanceID.Malformed"},
		{name: "ids with max results", params: queryapi.Params{"InstanceId.1": "i-12345678", "MaxResults": "5"}, code: "InvalidParameterCombination"},
		{name: "max results", params: queryapi.Params{"MaxResults": "5"}, check: empty},
		{name: "max results too small", params: queryapi.Params{"MaxResults": "4"}, code: "InvalidParameterValue"},
		{name: "dry run", params: queryapi.Params{"DryRun": "true"}, code: "DryRunOperation"},
	})
}

// TestFilterNamesFollowModel: each Describe accepts every filter name its
// model documentation lists (tag:<key> and tag-key come with applyFilters).
func TestFilterNamesFollowModel(t *testing.T) {
	want := modelFilterNames(t, "DescribeRegions", "DescribeAvailabilityZones", "DescribeInstanceTypes", "DescribeVpcs", "DescribeSubnets",
		"DescribeNetworkInterfaces", "DescribeImages", "DescribeInstances", "DescribeRouteTables", "DescribeInternetGateways",
		"DescribeDhcpOptions", "DescribeNetworkAcls", "DescribeVpcEndpoints", "DescribePrefixLists", "DescribeInstanceTypeOfferings")
	have := map[string]func(string) bool{
		"DescribeRegions":               func(n string) bool { _, ok := regionFilters[n]; return ok },
		"DescribeAvailabilityZones":     func(n string) bool { _, ok := zoneFilters[n]; return ok },
		"DescribeInstanceTypes":         func(n string) bool { _, ok := instanceTypeFilters[n]; return ok },
		"DescribeVpcs":                  func(n string) bool { _, ok := vpcFilters[n]; return ok },
		"DescribeSubnets":               func(n string) bool { _, ok := subnetFilters[n]; return ok },
		"DescribeNetworkInterfaces":     func(n string) bool { _, ok := networkInterfaceFilters[n]; return ok },
		"DescribeImages":                func(n string) bool { _, ok := imageFilters[n]; return ok },
		"DescribeInstances":             func(n string) bool { _, ok := instanceFilters[n]; return ok },
		"DescribeRouteTables":           func(n string) bool { _, ok := routeTableFilters[n]; return ok },
		"DescribeInternetGateways":      func(n string) bool { _, ok := internetGatewayFilters[n]; return ok },
		"DescribeDhcpOptions":           func(n string) bool { _, ok := dhcpOptionsFilters[n]; return ok },
		"DescribeNetworkAcls":           func(n string) bool { _, ok := networkACLFilters[n]; return ok },
		"DescribeVpcEndpoints":          func(n string) bool { _, ok := vpcEndpointFilters[n]; return ok },
		"DescribePrefixLists":           func(n string) bool { _, ok := prefixListFilters[n]; return ok },
		"DescribeInstanceTypeOfferings": func(n string) bool { _, ok := instanceTypeOfferingFilters[n]; return ok },
	}
	for op, names := range want {
		if len(names) == 0 {
			t.Errorf("%s: no filter names found in the model's documentation", op)
		}
		for _, n := range names {
			if !have[op](n) {
				t.Errorf("%s: filter %q of the model is not accepted", op, n)
			}
		}
	}
}
