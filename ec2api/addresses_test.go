package ec2api

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/queryapi"
)

// newAddrAPI is the instances' fixture with a pool of four public
// addresses.
func newAddrAPI(t *testing.T) *instAPI {
	t.Helper()
	cfg := testConfig(t)
	for a, i := netip.MustParseAddr("192.0.2.10"), 0; i < 4; a, i = a.Next(), i+1 {
		cfg.VNetPublicIPs = append(cfg.VNetPublicIPs, a)
	}
	return newInstAPIWith(t, cfg)
}

func (f *instAPI) launch(t *testing.T) map[string]any {
	t.Helper()
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": f.emi, "MinCount": "1", "MaxCount": "1"})
	return obj(t, r, "Instances", 0).(map[string]any)
}

func (f *instAPI) instance(t *testing.T, id string) map[string]any {
	t.Helper()
	r := f.must(t, "DescribeInstances", queryapi.Params{"InstanceId.1": id})
	return obj(t, r, "Reservations", 0, "Instances", 0).(map[string]any)
}

func (f *instAPI) addresses(t *testing.T, p queryapi.Params) []any {
	t.Helper()
	l, _ := f.must(t, "DescribeAddresses", p)["Addresses"].([]any)
	return l
}

// TestElasticIPs walks the address calls as boto3 makes them, each answer
// parsed by botocore against the model, through every refusal EC2 has for
// them, and checks that the cluster is handed each change at once.
func TestElasticIPs(t *testing.T) {
	f := newAddrAPI(t)
	// A launch into the default subnet is lent an address of the pool;
	// it is no allocation.
	i1 := f.launch(t)
	id1 := i1["InstanceId"].(string)
	if i1["PublicIpAddress"] != "192.0.2.10" || obj(t, i1, "NetworkInterfaces", 0, "Association", "IpOwnerId") != "amazon" {
		t.Fatalf("launched without a public address: %v %v", i1["PublicIpAddress"], i1["NetworkInterfaces"])
	}
	if got := f.cl.publicIPs()[id1]; got != "192.0.2.10" {
		t.Fatalf("cluster has %q", got)
	}
	if l := f.addresses(t, nil); len(l) != 0 {
		t.Fatalf("a lent address is described: %v", l)
	}
	// Allocation, in both domains.
	a1 := f.must(t, "AllocateAddress", queryapi.Params{"Domain": "vpc",
		"TagSpecification.1.ResourceType": "elastic-ip", "TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": "web"})
	alloc1, pub1 := a1["AllocationId"].(string), a1["PublicIp"].(string)
	if !strings.HasPrefix(alloc1, "eipalloc-") || pub1 != "192.0.2.11" || a1["Domain"] != "vpc" {
		t.Fatalf("allocate: %v", a1)
	}
	a2 := f.must(t, "AllocateAddress", queryapi.Params{"Domain": "standard"})
	alloc2, pub2 := a2["AllocationId"].(string), a2["PublicIp"].(string)
	if a2["Domain"] != "standard" || pub2 != "192.0.2.12" {
		t.Fatalf("allocate standard: %v", a2)
	}
	// Associate by allocation id: the lent address returns to the pool.
	as := f.must(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc1, "InstanceId": id1})
	assoc1 := as["AssociationId"].(string)
	if !strings.HasPrefix(assoc1, "eipassoc-") {
		t.Fatalf("associate: %v", as)
	}
	in := f.instance(t, id1)
	eni := obj(t, in, "NetworkInterfaces", 0).(map[string]any)
	if in["PublicIpAddress"] != pub1 || in["PublicDnsName"] != "ip-192-0-2-11.us-east-1.compute.internal" ||
		obj(t, eni, "Association", "IpOwnerId") != f.alice || obj(t, eni, "PrivateIpAddresses", 0, "Association", "PublicIp") != pub1 {
		t.Fatalf("instance after associate: %v %v", in["PublicIpAddress"], eni)
	}
	if got := f.cl.publicIPs()[id1]; got != pub1 {
		t.Fatalf("cluster has %q after associate", got)
	}
	nis := f.must(t, "DescribeNetworkInterfaces", queryapi.Params{"Filter.1.Name": "association.allocation-id", "Filter.1.Value.1": alloc1})
	if obj(t, nis, "NetworkInterfaces", 0, "Association", "AssociationId") != assoc1 {
		t.Fatalf("interface by allocation: %v", nis)
	}
	for name, v := range map[string]string{"network-interface.association.allocation-id": alloc1, "ip-address": pub1,
		"network-interface.association.ip-owner-id": f.alice, "network-interface.addresses.association.association-id": assoc1} {
		r := f.must(t, "DescribeInstances", queryapi.Params{"Filter.1.Name": name, "Filter.1.Value.1": v})
		if obj(t, r, "Reservations", 0, "Instances", 0, "InstanceId") != id1 {
			t.Errorf("instances by %s=%s: %v", name, v, r)
		}
	}
	// Every filter finds it.
	d := obj(t, f.addresses(t, queryapi.Params{"AllocationId.1": alloc1}), 0).(map[string]any)
	for k, want := range map[string]any{"InstanceId": id1, "AssociationId": assoc1, "PublicIp": pub1, "Domain": "vpc",
		"NetworkInterfaceId": eni["NetworkInterfaceId"], "NetworkInterfaceOwnerId": f.alice, "PrivateIpAddress": in["PrivateIpAddress"]} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	for name, v := range map[string]string{"allocation-id": alloc1, "association-id": assoc1, "instance-id": id1, "public-ip": pub1,
		"domain": "vpc", "network-interface-id": eni["NetworkInterfaceId"].(string), "private-ip-address": in["PrivateIpAddress"].(string),
		"tag:Name": "web"} {
		l := f.addresses(t, queryapi.Params{"Filter.1.Name": name, "Filter.1.Value.1": v})
		if len(l) != 1 || obj(t, l, 0, "AllocationId") != alloc1 {
			t.Errorf("filter %s=%s: %v", name, v, l)
		}
	}
	if l := f.addresses(t, queryapi.Params{"PublicIp.1": pub2}); len(l) != 1 || obj(t, l, 0, "AllocationId") != alloc2 {
		t.Errorf("by public address: %v", l)
	}
	f.must(t, "CreateTags", queryapi.Params{"ResourceId.1": alloc2, "Tag.1.Key": "role", "Tag.1.Value": "db"})
	if l := f.addresses(t, queryapi.Params{"Filter.1.Name": "tag:role", "Filter.1.Value.1": "db"}); len(l) != 1 || obj(t, l, 0, "AllocationId") != alloc2 {
		t.Errorf("tagged by CreateTags: %v", l)
	}
	tags := f.must(t, "DescribeTags", queryapi.Params{"Filter.1.Name": "resource-id", "Filter.1.Value.1": alloc2})
	if obj(t, tags, "Tags", 0, "ResourceType") != "elastic-ip" {
		t.Errorf("DescribeTags: %v", tags)
	}
	// An instance that has an address takes another by public address:
	// the first is let go, still allocated.
	f.must(t, "AssociateAddress", queryapi.Params{"PublicIp": pub2, "InstanceId": id1})
	if d := obj(t, f.addresses(t, queryapi.Params{"AllocationId.1": alloc1}), 0).(map[string]any); d["InstanceId"] != nil || d["AssociationId"] != nil {
		t.Fatalf("first address still associated: %v", d)
	}
	// A second instance: the address in use is refused without
	// reassociation, moved with it; the first instance is lent one again.
	i2 := f.launch(t)
	id2 := i2["InstanceId"].(string)
	f.fails(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc2, "InstanceId": id2}, "Resource.AlreadyAssociated")
	f.must(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc2, "NetworkInterfaceId": obj(t, i2, "NetworkInterfaces", 0, "NetworkInterfaceId").(string),
		"AllowReassociation": "true"})
	if got := f.instance(t, id2)["PublicIpAddress"]; got != pub2 {
		t.Fatalf("moved address: %v", got)
	}
	if got := f.instance(t, id1)["PublicIpAddress"]; got == nil || got == pub2 || got == pub1 {
		t.Fatalf("first instance after its address moved: %v", got)
	}
	if ips := f.cl.publicIPs(); ips[id2] != pub2 || ips[id1] == "" {
		t.Fatalf("cluster after the move: %v", ips)
	}
	// Terraform's aws_eip whose instance changes names the new instance
	// and, still from its state, the old one's interface: EC2 takes that
	// without an error, and the instance named wins.
	f.must(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc2, "InstanceId": id2,
		"NetworkInterfaceId": eni["NetworkInterfaceId"].(string), "AllowReassociation": "true"})
	if got := f.instance(t, id2)["PublicIpAddress"]; got != pub2 {
		t.Fatalf("instance and another's interface named: the address went to %v's interface", f.instance(t, id1)["PublicIpAddress"])
	}
	// The administrator's verbose view: every address with who holds it.
	lent1 := f.instance(t, id1)["PublicIpAddress"].(string)
	resp, err := f.call(f.admin, "DescribeAddresses", queryapi.Params{"PublicIp.1": "verbose"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, it := range obj(t, botoParse(t, "DescribeAddresses", resp), "Addresses").([]any) {
		lines = append(lines, obj(t, it, "PublicIp").(string)+" "+obj(t, it, "Domain").(string)+" "+obj(t, it, "InstanceId").(string))
	}
	// Each allocation in its own domain; the others as EC2-Classic's.
	if want := []string{lent1 + " standard " + id1 + " (eucalyptus)", "192.0.2.11 vpc available (alice)", "192.0.2.12 standard " + id2 + " (alice)",
		"192.0.2.13 standard nobody"}; !slices.Equal(lines, want) {
		t.Errorf("verbose view %q, want %q", lines, want)
	}
	f.fails(t, "DescribeAddresses", queryapi.Params{"PublicIp.1": "verbose"}, "InvalidAddress.Malformed")
	f.fails(t, "ReleaseAddress", queryapi.Params{"PublicIp": "10.0.0"}, "InvalidAddress.Malformed")
	f.fails(t, "AllocateAddress", queryapi.Params{"Address": "192.0.2.99"}, "InvalidAddress.NotFound")
	// Refusals, with EC2's codes.
	f.fails(t, "ReleaseAddress", queryapi.Params{"AllocationId": "eipalloc-00000000"}, "InvalidAllocationID.NotFound")
	f.fails(t, "ReleaseAddress", queryapi.Params{"PublicIp": "198.51.100.7"}, "InvalidAddress.NotFound")
	f.fails(t, "DescribeAddresses", queryapi.Params{"PublicIp.1": "198.51.100.7"}, "InvalidAddress.NotFound")
	f.fails(t, "DescribeAddresses", queryapi.Params{"AllocationId.1": "eipalloc-00000000"}, "InvalidAllocationID.NotFound")
	f.fails(t, "DisassociateAddress", queryapi.Params{"AssociationId": "eipassoc-00000000"}, "InvalidAssociationID.NotFound")
	f.fails(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc1, "InstanceId": "i-00000000"}, "InvalidInstanceID.NotFound")
	f.fails(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc1, "NetworkInterfaceId": "eni-00000000"}, "InvalidNetworkInterfaceID.NotFound")
	f.fails(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc1}, "MissingParameter")
	f.fails(t, "AllocateAddress", queryapi.Params{"Domain": "classic"}, "InvalidParameterValue")
	f.must(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc1, "InstanceId": id1})
	f.fails(t, "ReleaseAddress", queryapi.Params{"AllocationId": alloc1}, "InvalidIPAddress.InUse")
	// Another account: an address not its own by public address is
	// AuthFailure, by allocation id not found.
	for _, c := range []struct {
		action string
		p      queryapi.Params
		code   string
	}{
		{"AssociateAddress", queryapi.Params{"PublicIp": pub1, "InstanceId": id1}, "AuthFailure"},
		{"ReleaseAddress", queryapi.Params{"PublicIp": pub1}, "AuthFailure"},
		{"DisassociateAddress", queryapi.Params{"PublicIp": pub2}, "AuthFailure"},
		{"ReleaseAddress", queryapi.Params{"AllocationId": alloc1}, "InvalidAllocationID.NotFound"},
		{"DescribeAddresses", queryapi.Params{"AllocationId.1": alloc1}, "InvalidAllocationID.NotFound"},
		{"DescribeAddresses", queryapi.Params{"PublicIp.1": pub1}, "InvalidAddress.NotFound"},
	} {
		if _, err := f.call(f.admin, c.action, c.p); !isCode(err, c.code) {
			t.Errorf("admin %s %v: %v, want %s", c.action, c.p, err, c.code)
		}
	}
	// The pool runs out.
	a3 := f.must(t, "AllocateAddress", nil)
	a4 := f.must(t, "AllocateAddress", nil)
	f.fails(t, "AllocateAddress", nil, "InsufficientAddressCapacity")
	f.fails(t, "AllocateAddress", queryapi.Params{"Address": pub1}, "InvalidIPAddress.InUse")
	// The reverse DNS name: none until the account gives one.
	domainNames(t, f, alloc1, pub1)
	// Disassociation by public address: no address is free, so the
	// instance has none, until one is released.
	f.must(t, "DisassociateAddress", queryapi.Params{"PublicIp": pub1})
	if got := f.instance(t, id1)["PublicIpAddress"]; got != nil {
		t.Errorf("lent an address from an exhausted pool: %v", got)
	}
	f.must(t, "ReleaseAddress", queryapi.Params{"AllocationId": a4["AllocationId"].(string)})
	if got := f.instance(t, id1)["PublicIpAddress"]; got != a4["PublicIp"] {
		t.Errorf("not lent the released address: %v", got)
	}
	// Release of a standard address while associated disassociates it.
	f.must(t, "ReleaseAddress", queryapi.Params{"PublicIp": pub2})
	if got := f.instance(t, id2)["PublicIpAddress"]; got != pub2 {
		t.Errorf("after releasing its standard address: %v", got)
	}
	f.must(t, "ReleaseAddress", queryapi.Params{"AllocationId": alloc1})
	if l := f.addresses(t, nil); len(l) != 1 {
		t.Errorf("after release: %v", l)
	}
	// Its reverse DNS name went with it: allocated again, it has none.
	again := f.must(t, "AllocateAddress", queryapi.Params{"Address": pub1})["AllocationId"].(string)
	if l := f.must(t, "DescribeAddressesAttribute", nil)["Addresses"].([]any); len(l) != 0 {
		t.Errorf("a released address kept its name: %v", l)
	}
	f.must(t, "ReleaseAddress", queryapi.Params{"AllocationId": again})
	// Termination lets an elastic IP go, still allocated.
	alloc3 := a3["AllocationId"].(string)
	f.must(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc3, "InstanceId": id2})
	f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id2})
	f.fails(t, "AssociateAddress", queryapi.Params{"AllocationId": alloc3, "InstanceId": id2, "AllowReassociation": "true"}, "IncorrectInstanceState")
}

func isCode(err error, code string) bool {
	e, ok := awserr.As(err)
	return ok && e.Code == code
}

// Without NAT (STATIC and SYSTEM) there is no elastic IP to allocate, and
// instances are lent none.
func TestElasticIPsNeedNAT(t *testing.T) {
	cfg := testConfig(t)
	cfg.VNetMode = "SYSTEM"
	cfg.VNetPublicIPs = []netip.Addr{netip.MustParseAddr("192.0.2.10")}
	f := newInstAPIWith(t, cfg)
	f.fails(t, "AllocateAddress", nil, "UnsupportedOperation")
	if in := f.launch(t); in["PublicIpAddress"] != nil {
		t.Errorf("lent %v without NAT", in["PublicIpAddress"])
	}
}

// TestAddressFiltersMatchModel: DescribeAddresses answers every filter the
// model documents.
func TestAddressFiltersMatchModel(t *testing.T) {
	want := modelFilterNames(t, "DescribeAddresses")["DescribeAddresses"]
	for _, name := range want {
		if _, ok := addressFilters[name]; !ok && !strings.HasPrefix(name, "tag") {
			t.Errorf("filter %s not answered", name)
		}
	}
}

// A launch that asks for no public address (the AWS CLI's
// --no-associate-public-ip-address) is lent none; the default subnet's
// MapPublicIpOnLaunch lends the next.
func TestLaunchWithoutPublicAddress(t *testing.T) {
	f := newAddrAPI(t)
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": f.emi, "MinCount": "1", "MaxCount": "1",
		"NetworkInterface.1.DeviceIndex": "0", "NetworkInterface.1.AssociatePublicIpAddress": "false"})
	if in := obj(t, r, "Instances", 0).(map[string]any); in["PublicIpAddress"] != nil {
		t.Errorf("lent %v though the launch asked for none", in["PublicIpAddress"])
	}
	if in := f.launch(t); in["PublicIpAddress"] != "192.0.2.10" {
		t.Errorf("default launch lent %v", in["PublicIpAddress"])
	}
}

// domainNames runs Terraform's aws_eip_domain_name against an allocation
// (ModifyAddressAttribute, DescribeAddressesAttribute until no update is
// PENDING, ResetAddressAttribute, DescribeAddressesAttribute until the
// address is not listed) with the refusals around it.
func domainNames(t *testing.T, f *instAPI, alloc, pub string) {
	t.Helper()
	attrs := func() []any {
		t.Helper()
		l, _ := f.must(t, "DescribeAddressesAttribute", queryapi.Params{"AllocationId.1": alloc, "Attribute": "domain-name"})["Addresses"].([]any)
		return l
	}
	if l := attrs(); len(l) != 0 {
		t.Errorf("a name before any was given: %v", l)
	}
	m := f.must(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc, "DomainName": "Mail.Example.com"})
	if obj(t, m, "Address", "AllocationId") != alloc || obj(t, m, "Address", "PublicIp") != pub ||
		obj(t, m, "Address", "PtrRecord") != "ip-192-0-2-11.us-east-1.compute.internal." ||
		obj(t, m, "Address", "PtrRecordUpdate", "Value") != "mail.example.com." || obj(t, m, "Address", "PtrRecordUpdate", "Status") != "PENDING" {
		t.Errorf("modify: %v", m)
	}
	// What Terraform waits for: the address listed, no update in flight.
	l := attrs()
	if len(l) != 1 || obj(t, l[0], "PtrRecord") != "mail.example.com." || obj(t, l[0], "AllocationId") != alloc {
		t.Fatalf("after modify: %v", l)
	}
	if u, ok := l[0].(map[string]any)["PtrRecordUpdate"]; ok {
		t.Errorf("an update still in flight: %v", u)
	}
	// A change answers the record it replaces.
	m = f.must(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc, "DomainName": "smtp.example.com."})
	if obj(t, m, "Address", "PtrRecord") != "mail.example.com." || obj(t, m, "Address", "PtrRecordUpdate", "Value") != "smtp.example.com." {
		t.Errorf("second modify: %v", m)
	}
	if l := f.must(t, "DescribeAddressesAttribute", nil)["Addresses"].([]any); len(l) != 1 || obj(t, l[0], "PtrRecord") != "smtp.example.com." {
		t.Errorf("every address's attribute: %v", l)
	}
	for _, bad := range []string{"localhost", "-bad.example.com", "bad-.example.com", "a..example.com", "under_score.example.com",
		"192.0.2.11", strings.Repeat("a", 64) + ".example.com", strings.Repeat("abcdefghi.", 26) + "com", "ex ample.com"} {
		f.fails(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc, "DomainName": bad}, "InvalidParameterValue")
	}
	f.fails(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc}, "MissingParameter")
	f.fails(t, "ModifyAddressAttribute", queryapi.Params{"DomainName": "a.example.com"}, "MissingParameter")
	f.fails(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": "eipalloc-00000000", "DomainName": "a.example.com"}, "InvalidAllocationID.NotFound")
	f.fails(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc, "DomainName": "a.example.com", "DryRun": "true"}, "DryRunOperation")
	f.fails(t, "ResetAddressAttribute", queryapi.Params{"AllocationId": alloc, "Attribute": "description"}, "InvalidParameterValue")
	f.fails(t, "ResetAddressAttribute", queryapi.Params{"AllocationId": alloc}, "MissingParameter")
	f.fails(t, "ResetAddressAttribute", queryapi.Params{"AllocationId": "eipalloc-00000000", "Attribute": "domain-name"}, "InvalidAllocationID.NotFound")
	// Another account's allocation is not found, and keeps its name.
	for _, c := range []struct {
		action string
		p      queryapi.Params
	}{
		{"ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc, "DomainName": "evil.example.com"}},
		{"ResetAddressAttribute", queryapi.Params{"AllocationId": alloc, "Attribute": "domain-name"}},
		{"DescribeAddressesAttribute", queryapi.Params{"AllocationId.1": alloc}},
	} {
		if _, err := f.call(f.admin, c.action, c.p); !isCode(err, "InvalidAllocationID.NotFound") {
			t.Errorf("admin %s: %v, want InvalidAllocationID.NotFound", c.action, err)
		}
	}
	if l := attrs(); len(l) != 1 || obj(t, l[0], "PtrRecord") != "smtp.example.com." {
		t.Errorf("after another account's calls: %v", l)
	}
	r := f.must(t, "ResetAddressAttribute", queryapi.Params{"AllocationId": alloc, "Attribute": "domain-name"})
	if obj(t, r, "Address", "PtrRecord") != "smtp.example.com." || obj(t, r, "Address", "PtrRecordUpdate", "Value") != "ip-192-0-2-11.us-east-1.compute.internal." ||
		obj(t, r, "Address", "PtrRecordUpdate", "Status") != "PENDING" {
		t.Errorf("reset: %v", r)
	}
	// What Terraform's delete waits for: the address no longer listed.
	if l := attrs(); len(l) != 0 {
		t.Errorf("after reset: %v", l)
	}
	// Set again, to be dropped when the address is released.
	f.must(t, "ModifyAddressAttribute", queryapi.Params{"AllocationId": alloc, "DomainName": "mail.example.com"})
}
