package ec2api

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/queryapi"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/clc"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// apiCluster is a cluster controller that starts nothing: its instances
// take the states the test gives them.
type apiCluster struct {
	mu      sync.Mutex
	zone    string
	states  map[string]string
	console map[string][]byte
	// unreachable: instances whose node the cluster cannot reach (why);
	// lost: instances a returned node no longer has (why).
	unreachable, lost map[string]string
	since             time.Time        // when the unreachable ones' node stopped answering
	nodes             []ccapi.NodeInfo // nil: one node, n1, up
	network           ccapi.Network    // the last one handed to it
	stops             []string         // instances StopInstances named
	runs              []ccapi.InstanceRequest
}

func (c *apiCluster) Zone() string { return c.zone }

func (c *apiCluster) Describe(ctx context.Context, types []ccapi.VMType) (ccapi.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ccapi.Status{Zone: c.zone, Capacity: map[string]ccapi.Capacity{}, Nodes: []ccapi.NodeInfo{{Host: "n1", Up: true,
		Free: ncapi.Resources{Cores: 64, MemoryMiB: 1 << 20, DiskGiB: 1 << 10}}}}
	if c.nodes != nil {
		st.Nodes = c.nodes
	}
	for _, t := range types {
		st.Capacity[t.Name] = ccapi.Capacity{Free: 100, Max: 100}
	}
	for id, s := range c.states {
		is := ccapi.InstanceStatus{Node: "n1", InstanceStatus: ncapi.InstanceStatus{ID: id, State: s}, Unreachable: c.unreachable[id]}
		if is.Unreachable != "" {
			is.UnreachableSince = c.since
		}
		if why, ok := c.lost[id]; ok {
			is.State, is.Reason, is.Lost = ncapi.StateTerminated, why, true
		}
		st.Instances = append(st.Instances, is)
	}
	return st, nil
}

func (c *apiCluster) RunInstances(ctx context.Context, reqs []ccapi.InstanceRequest) ([]ccapi.Placement, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ccapi.Placement
	for _, r := range reqs {
		c.states[r.ID] = ncapi.StatePending
		c.runs = append(c.runs, r)
		out = append(out, ccapi.Placement{ID: r.ID, Node: "n1"})
	}
	return out, nil
}

func (c *apiCluster) TerminateInstances(ctx context.Context, list []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range list {
		delete(c.states, id)
	}
	return nil
}

func (c *apiCluster) RebootInstances(ctx context.Context, list []string) error { return nil }

func (c *apiCluster) ConsoleOutput(ctx context.Context, id string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.console[id]; ok {
		return b, nil
	}
	return nil, ccapi.ErrNoSuchInstance
}

func (c *apiCluster) SetNetwork(ctx context.Context, n ccapi.Network) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.network = n
	return nil
}

// publicIPs is the network last handed to the cluster: each instance's
// public address, by instance id.
func (c *apiCluster) publicIPs() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for _, in := range c.network.Instances {
		if in.PublicIP.IsValid() {
			out[in.ID] = in.PublicIP.String()
		}
	}
	return out
}

func (c *apiCluster) set(id, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states[id] = state
}

// instAPI is the EC2 API over a cloud controller whose zone is served by
// an apiCluster and whose reconcile loop runs; alice owns a machine image
// with its kernel and ramdisk, and a key pair.
type instAPI struct {
	*catFixture
	cl       *apiCluster
	emi, key string
}

func newInstAPI(t *testing.T) *instAPI {
	t.Helper()
	return newInstAPIWith(t, nil)
}

// newInstAPIWith is newInstAPI over the configuration cfg (nil: testConfig's).
func newInstAPIWith(t *testing.T, cfg *conf.Config) *instAPI {
	t.Helper()
	f := catalogAPIWith(t, cfg)
	ctx := context.Background()
	cloud := f.a.cloud.(*clc.Cloud)
	cl := &apiCluster{zone: cloud.Zones()[0], states: map[string]string{}, console: map[string][]byte{},
		unreachable: map[string]string{}, lost: map[string]string{}}
	cloud.SetCluster(cl)
	eki, eri, emi := ids.New("eki"), ids.New("eri"), ids.New("emi")
	for _, im := range []store.Image{
		{ID: eki, AccountID: f.alice, Kind: store.ImageKernel, Name: "k", Location: "b/k.manifest.xml", Architecture: "x86_64", State: store.ImageAvailable},
		{ID: eri, AccountID: f.alice, Kind: store.ImageRamdisk, Name: "r", Location: "b/r.manifest.xml", Architecture: "x86_64", State: store.ImageAvailable},
		{ID: emi, AccountID: f.alice, Kind: store.ImageMachine, Name: "m", Location: "b/m.manifest.xml", Architecture: "x86_64",
			KernelID: eki, RamdiskID: eri, State: store.ImageAvailable},
	} {
		if err := f.st.CreateImage(ctx, im); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.st.CreateKeyPair(ctx, store.KeyPair{ID: ids.New("key"), AccountID: f.alice, Name: "mykey", Type: "ed25519",
		Fingerprint: "ff", PublicKey: "ssh-ed25519 AAAA alice"}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = cloud.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &instAPI{catFixture: f, cl: cl, emi: emi, key: "mykey"}
}

// must calls an action as alice and returns botocore's parse of its
// answer, its XML checked against the model on the way.
func (f *instAPI) must(t *testing.T, action string, p queryapi.Params) map[string]any {
	t.Helper()
	resp, err := f.call(f.alice, action, p)
	if err != nil {
		t.Fatalf("%s %v: %v", action, p, err)
	}
	if loadModel(t).Operations[action].Output.Shape == "" {
		return map[string]any{} // botocore reads nothing of the answer
	}
	return botoParse(t, action, resp)
}

func (f *instAPI) fails(t *testing.T, action string, p queryapi.Params, code string) {
	t.Helper()
	_, err := f.call(f.alice, action, p)
	if e, ok := awserr.As(err); !ok || e.Code != code {
		t.Errorf("%s %v: %v, want %s", action, p, err, code)
	}
}

func obj(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %s", v, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || len(l) <= k {
				t.Fatalf("%v: no item %d", v, k)
			}
			v = l[k]
		}
	}
	return v
}

// waitState polls DescribeInstances until the instance is in state.
func (f *instAPI) waitState(t *testing.T, id, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := f.must(t, "DescribeInstances", queryapi.Params{"InstanceId.1": id})
		inst := obj(t, r, "Reservations", 0, "Instances", 0).(map[string]any)
		if obj(t, inst, "State", "Name") == state {
			return inst
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %s: %v", id, state, obj(t, inst, "State"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTerraformInstanceSequence follows CLIENTS.md's aws_instance: the
// create call as the provider sends it, every read after it, and its
// delete.
func TestTerraformInstanceSequence(t *testing.T) {
	f := newInstAPI(t)
	sgs := f.must(t, "DescribeSecurityGroups", queryapi.Params{"GroupName.1": "default"})
	sg := obj(t, sgs, "SecurityGroups", 0, "GroupId").(string)
	// The create call as the provider sends it (each call gets its own map).
	create := func() queryapi.Params {
		return queryapi.Params{
			"ImageId": f.emi, "InstanceType": "m1.small", "MinCount": "1", "MaxCount": "1", "KeyName": f.key,
			"ClientToken": "terraform-20261125000000000000000001", "DisableApiTermination": "false", "EbsOptimized": "false",
			"HibernationOptions.Configured": "false", "Monitoring.Enabled": "false", "Placement.AvailabilityZone": "",
			"SecurityGroupId.1": sg, "UserData": base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n")),
			"TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": "web",
			"MetadataOptions.HttpTokens": "optional", "MetadataOptions.HttpEndpoint": "enabled", "MetadataOptions.HttpPutResponseHopLimit": "2",
			"CreditSpecification.CpuCredits": "standard",
		}
	}
	r := f.must(t, "RunInstances", create())
	if obj(t, r, "OwnerId") != f.alice || !strings.HasPrefix(obj(t, r, "ReservationId").(string), "r-") {
		t.Fatalf("reservation %v", r)
	}
	inst := obj(t, r, "Instances", 0).(map[string]any)
	id := inst["InstanceId"].(string)
	for k, want := range map[string]any{
		"ImageId": f.emi, "InstanceType": "m1.small", "KeyName": f.key, "AmiLaunchIndex": float64(0),
		"RootDeviceType": "instance-store", "RootDeviceName": "/dev/sda1", "VirtualizationType": "paravirtual",
		"Hypervisor": "xen", "Architecture": "x86_64", "ClientToken": "terraform-20261125000000000000000001",
		"SourceDestCheck": true, "EbsOptimized": false, "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances",
		"BootMode": "legacy-bios",
	} {
		if inst[k] != want {
			t.Errorf("%s = %v, want %v", k, inst[k], want)
		}
	}
	if obj(t, inst, "State", "Name") != "pending" || obj(t, inst, "State", "Code") != float64(0) {
		t.Errorf("state %v", inst["State"])
	}
	if obj(t, inst, "Placement", "AvailabilityZone") != "us-east-1a" || obj(t, inst, "Monitoring", "State") != "disabled" {
		t.Errorf("placement %v monitoring %v", inst["Placement"], inst["Monitoring"])
	}
	if obj(t, inst, "MetadataOptions", "HttpPutResponseHopLimit") != float64(2) || obj(t, inst, "MetadataOptions", "State") != "applied" {
		t.Errorf("metadata options %v", inst["MetadataOptions"])
	}
	if len(obj(t, inst, "BlockDeviceMappings").([]any)) != 0 {
		t.Errorf("instance-store instance has block devices: %v", inst["BlockDeviceMappings"])
	}
	eni := obj(t, inst, "NetworkInterfaces", 0).(map[string]any)
	ip := inst["PrivateIpAddress"].(string)
	if eni["PrivateIpAddress"] != ip || !strings.HasPrefix(eni["NetworkInterfaceId"].(string), "eni-") ||
		obj(t, eni, "Attachment", "DeviceIndex") != float64(0) || eni["SubnetId"] != inst["SubnetId"] || eni["VpcId"] != inst["VpcId"] ||
		!strings.HasPrefix(eni["MacAddress"].(string), "d0:0d:") || obj(t, eni, "Groups", 0, "GroupId") != sg {
		t.Errorf("network interface %v", eni)
	}
	if inst["PrivateDnsName"] != "ip-"+strings.ReplaceAll(ip, ".", "-")+".us-east-1.compute.internal" {
		t.Errorf("private DNS name %v", inst["PrivateDnsName"])
	}
	if obj(t, inst, "Tags", 0, "Key") != "Name" || obj(t, inst, "SecurityGroups", 0, "GroupName") != "default" {
		t.Errorf("tags %v groups %v", inst["Tags"], inst["SecurityGroups"])
	}
	// A retry of the same call (same token) answers the same reservation.
	again := f.must(t, "RunInstances", create())
	if obj(t, again, "Instances", 0, "InstanceId") != id {
		t.Fatalf("retried token launched %v", obj(t, again, "Instances", 0, "InstanceId"))
	}

	// Polled until running.
	f.cl.set(id, ncapi.StateRunning)
	running := f.waitState(t, id, "running")
	if running["LaunchTime"] == nil || obj(t, running, "State", "Code") != float64(16) {
		t.Errorf("running instance %v", running)
	}
	// Every read.
	f.must(t, "DescribeInstanceTypes", queryapi.Params{"InstanceType.1": "m1.small"})
	tags := f.must(t, "DescribeTags", queryapi.Params{"Filter.1.Name": "resource-id", "Filter.1.Value.1": id, "Filter.2.Name": "key", "Filter.2.Value.1": "Name"})
	if obj(t, tags, "Tags", 0, "ResourceType") != "instance" || obj(t, tags, "Tags", 0, "Value") != "web" {
		t.Errorf("DescribeTags %v", tags)
	}
	f.must(t, "DescribeVpcs", queryapi.Params{"VpcId.1": running["VpcId"].(string)})
	attr := func(name string) map[string]any {
		return f.must(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": name})
	}
	if v := attr("disableApiStop"); obj(t, v, "DisableApiStop", "Value") != false || v["InstanceId"] != id {
		t.Errorf("disableApiStop %v", v)
	}
	if v := attr("disableApiTermination"); obj(t, v, "DisableApiTermination", "Value") != false {
		t.Errorf("disableApiTermination %v", v)
	}
	if v := attr("instanceInitiatedShutdownBehavior"); obj(t, v, "InstanceInitiatedShutdownBehavior", "Value") != "stop" {
		t.Errorf("shutdown behavior %v", v)
	}
	ud := obj(t, attr("userData"), "UserData", "Value").(string)
	if b, _ := base64.StdEncoding.DecodeString(ud); string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("user data %q", ud)
	}
	if v := f.must(t, "DescribeVolumes", queryapi.Params{}); len(obj(t, v, "Volumes").([]any)) != 0 {
		t.Errorf("volumes %v", v)
	}
	f.fails(t, "DescribeVolumes", queryapi.Params{"VolumeId.1": "vol-0123456789abcdef0"}, "InvalidVolume.NotFound")
	cs := f.must(t, "DescribeInstanceCreditSpecifications", queryapi.Params{"InstanceId.1": id})
	if obj(t, cs, "InstanceCreditSpecifications", 0, "CpuCredits") != "standard" {
		t.Errorf("credit specification %v", cs)
	}
	st := f.must(t, "DescribeInstanceStatus", queryapi.Params{"InstanceId.1": id})
	if obj(t, st, "InstanceStatuses", 0, "InstanceStatus", "Status") != "ok" || obj(t, st, "InstanceStatuses", 0, "InstanceState", "Name") != "running" {
		t.Errorf("status %v", st)
	}
	// The console.
	f.cl.mu.Lock()
	f.cl.console[id] = []byte("Debian GNU/Linux\nlogin: ")
	f.cl.mu.Unlock()
	co := f.must(t, "GetConsoleOutput", queryapi.Params{"InstanceId": id})
	if out, _ := base64.StdEncoding.DecodeString(co["Output"].(string)); string(out) != "Debian GNU/Linux\nlogin: " || co["InstanceId"] != id {
		t.Errorf("console %v", co)
	}
	f.must(t, "RebootInstances", queryapi.Params{"InstanceId.1": id})

	// Delete: lift protection, terminate, poll until terminated.
	f.must(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "DisableApiTermination.Value": "false"})
	tr := f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id})
	if obj(t, tr, "TerminatingInstances", 0, "CurrentState", "Name") != "shutting-down" ||
		obj(t, tr, "TerminatingInstances", 0, "PreviousState", "Name") != "running" ||
		obj(t, tr, "TerminatingInstances", 0, "CurrentState", "Code") != float64(32) {
		t.Errorf("terminate %v", tr)
	}
	gone := f.waitState(t, id, "terminated")
	if obj(t, gone, "State", "Code") != float64(48) || gone["PrivateIpAddress"] != nil || len(obj(t, gone, "NetworkInterfaces").([]any)) != 0 ||
		obj(t, gone, "StateReason", "Code") != "Client.UserInitiatedShutdown" {
		t.Errorf("terminated instance %v", gone)
	}
	// The group is free again.
	f.must(t, "DescribeSecurityGroups", queryapi.Params{"GroupId.1": sg})
}

func TestDescribeInstancesFilters(t *testing.T) {
	f := newInstAPI(t)
	var insts []string
	for i := 0; i < 6; i++ {
		r := f.must(t, "RunInstances", queryapi.Params{"ImageId": f.emi, "MinCount": "1", "MaxCount": "1",
			"TagSpecification.1.ResourceType": "instance", "TagSpecification.1.Tag.1.Key": "n", "TagSpecification.1.Tag.1.Value": fmt.Sprint(i)})
		insts = append(insts, obj(t, r, "Instances", 0, "InstanceId").(string))
	}
	f.cl.set(insts[0], ncapi.StateRunning)
	first := f.waitState(t, insts[0], "running")
	count := func(p queryapi.Params) int {
		t.Helper()
		r := f.must(t, "DescribeInstances", p)
		n := 0
		for _, res := range r["Reservations"].([]any) {
			n += len(obj(t, res, "Instances").([]any))
		}
		return n
	}
	filter := func(name string, values ...string) queryapi.Params {
		p := queryapi.Params{"Filter.1.Name": name}
		for i, v := range values {
			p[fmt.Sprintf("Filter.1.Value.%d", i+1)] = v
		}
		return p
	}
	for _, tc := range []struct {
		p    queryapi.Params
		want int
	}{
		{queryapi.Params{}, 6},
		{filter("instance-state-name", "running"), 1},
		{filter("instance-state-name", "pending", "running"), 6},
		{filter("instance-state-code", "0"), 5},
		{filter("tag:n", "3"), 1},
		{filter("tag-key", "n"), 6},
		{filter("instance-id", insts[2]), 1},
		{filter("private-ip-address", first["PrivateIpAddress"].(string)), 1},
		{filter("network-interface.mac-address", first["NetworkInterfaces"].([]any)[0].(map[string]any)["MacAddress"].(string)), 1},
		{filter("reservation-id", "r-*"), 6},
		{filter("vpc-id", first["VpcId"].(string)), 6},
		{filter("subnet-id", first["SubnetId"].(string)), 6},
		{filter("availability-zone", "us-east-1a"), 6},
		{filter("instance.group-name", "default"), 6},
		{filter("group-name", "default"), 6},
		{filter("image-id", f.emi), 6},
		{filter("instance-type", "m1.small"), 6},
		{filter("instance-type", "c1.medium"), 0},
		{filter("key-name", "mykey"), 0},
		{filter("root-device-type", "instance-store"), 6},
		{filter("ip-address", "1.2.3.4"), 0},
		{filter("owner-id", f.alice), 6},
		{queryapi.Params{"InstanceId.1": insts[1], "InstanceId.2": insts[4]}, 2},
	} {
		if got := count(tc.p); got != tc.want {
			t.Errorf("%v: %d instances, want %d", tc.p, got, tc.want)
		}
	}
	// Pages of reservations.
	r := f.must(t, "DescribeInstances", queryapi.Params{"MaxResults": "5"})
	if len(r["Reservations"].([]any)) != 5 || r["NextToken"] == nil {
		t.Fatalf("first page %v", r)
	}
	r = f.must(t, "DescribeInstances", queryapi.Params{"MaxResults": "5", "NextToken": r["NextToken"].(string)})
	if len(r["Reservations"].([]any)) != 1 || r["NextToken"] != nil {
		t.Fatalf("second page %v", r)
	}
	// Another account sees none of them.
	resp, err := f.call(f.admin, "DescribeInstances", queryapi.Params{})
	if err != nil || len(botoParse(t, "DescribeInstances", resp)["Reservations"].([]any)) != 0 {
		t.Fatalf("admin sees alice's instances: %v", err)
	}
	_, err = f.call(f.admin, "DescribeInstances", queryapi.Params{"InstanceId.1": insts[0]})
	if e, _ := awserr.As(err); e == nil || e.Code != "InvalidInstanceID.NotFound" {
		t.Fatalf("admin describes alice's instance: %v", err)
	}
	// Status: running ones by default, all with IncludeAllInstances.
	st := f.must(t, "DescribeInstanceStatus", queryapi.Params{})
	if len(st["InstanceStatuses"].([]any)) != 1 {
		t.Errorf("status of running instances: %v", st)
	}
	st = f.must(t, "DescribeInstanceStatus", queryapi.Params{"IncludeAllInstances": "true", "Filter.1.Name": "instance-status.status", "Filter.1.Value.1": "initializing"})
	if len(st["InstanceStatuses"].([]any)) != 5 {
		t.Errorf("initializing instances: %v", st)
	}
	f.fails(t, "DescribeInstanceStatus", queryapi.Params{"Filter.1.Name": "nope", "Filter.1.Value.1": "x"}, "InvalidParameterValue")
	f.fails(t, "DescribeInstances", queryapi.Params{"Filter.1.Name": "state", "Filter.1.Value.1": "x"}, "InvalidParameterValue")
	f.fails(t, "DescribeInstanceCreditSpecifications", queryapi.Params{"InstanceId.1": "i-0000000000000dead"}, "InvalidInstanceID.NotFound")
	if cs := f.must(t, "DescribeInstanceCreditSpecifications", queryapi.Params{}); len(cs["InstanceCreditSpecifications"].([]any)) != 6 {
		t.Errorf("credit specifications %v", cs)
	}
	// CreateTags reaches instances too.
	f.must(t, "CreateTags", queryapi.Params{"ResourceId.1": insts[5], "Tag.1.Key": "role", "Tag.1.Value": "db"})
	if got := count(filter("tag:role", "db")); got != 1 {
		t.Errorf("instance tagged with CreateTags: %d", got)
	}
}

func TestInstanceActionErrors(t *testing.T) {
	f := newInstAPI(t)
	run := func(extra queryapi.Params) queryapi.Params {
		p := queryapi.Params{"ImageId": f.emi, "MinCount": "1", "MaxCount": "1"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	for _, tc := range []struct {
		p    queryapi.Params
		code string
	}{
		{queryapi.Params{"MinCount": "1", "MaxCount": "1"}, "MissingParameter"},
		{queryapi.Params{"ImageId": f.emi, "MaxCount": "1"}, "MissingParameter"},
		{run(queryapi.Params{"ImageId": "debian"}), "InvalidAMIID.Malformed"},
		{run(queryapi.Params{"ImageId": "emi-0000dead"}), "InvalidAMIID.NotFound"},
		{run(queryapi.Params{"MinCount": "0"}), "InvalidParameterValue"},
		{run(queryapi.Params{"MinCount": "x"}), "InvalidParameterValue"},
		{run(queryapi.Params{"UserData": "!!not base64!!"}), "InvalidUserData.Malformed"},
		{run(queryapi.Params{"UserData": base64.StdEncoding.EncodeToString(make([]byte, 16*1024+1))}), "InvalidParameterValue"},
		{run(queryapi.Params{"KernelId": "emi-0123456789abcdef0"}), "InvalidKernelId.Malformed"},
		{run(queryapi.Params{"RamdiskId": "eki-0123456789abcdef0"}), "InvalidRamDiskId.Malformed"},
		{run(queryapi.Params{"InstanceInitiatedShutdownBehavior": "hibernate"}), "InvalidParameterValue"},
		{run(queryapi.Params{"MetadataOptions.HttpTokens": "sometimes"}), "InvalidParameterValue"},
		{run(queryapi.Params{"MetadataOptions.HttpPutResponseHopLimit": "65"}), "InvalidParameterValue"},
		{run(queryapi.Params{"DisableApiTermination": "maybe"}), "InvalidParameterValue"},
		{run(queryapi.Params{"Placement.AvailabilityZone": "mars-1a"}), "InvalidParameterValue"},
		{run(queryapi.Params{"KeyName": "nokey"}), "InvalidKeyPair.NotFound"},
		{run(queryapi.Params{"SecurityGroup.1": "nogroup"}), "InvalidGroup.NotFound"},
		{run(queryapi.Params{"SecurityGroupId.1": "web"}), "InvalidGroupId.Malformed"},
		{run(queryapi.Params{"SubnetId": "sub"}), "InvalidSubnetID.Malformed"},
		{run(queryapi.Params{"InstanceType": "m9.huge"}), "InvalidParameterValue"},
		{run(queryapi.Params{"TagSpecification.1.ResourceType": "image", "TagSpecification.1.Tag.1.Key": "a"}), "InvalidParameterValue"},
		{run(queryapi.Params{"LaunchTemplate.LaunchTemplateId": "lt-0123456789abcdef0"}), "Unsupported"},
		// No storage controller serves the zone: no volumes.
		{run(queryapi.Params{"BlockDeviceMapping.1.DeviceName": "/dev/sdb", "BlockDeviceMapping.1.Ebs.VolumeSize": "8"}), "Unsupported"},
		{run(queryapi.Params{"BlockDeviceMapping.1.DeviceName": "/dev/sdb", "BlockDeviceMapping.1.Ebs.VolumeType": "fast"}), "InvalidParameterValue"},
		{run(queryapi.Params{"NetworkInterface.1.DeviceIndex": "0", "NetworkInterface.1.SubnetId": "subnet-0123456789abcdef0", "SubnetId": "subnet-0123456789abcdef0"}), "InvalidParameterCombination"},
		{run(queryapi.Params{"MaxCount": "2", "PrivateIpAddress": "172.31.5.5"}), "InvalidParameterCombination"},
		{run(queryapi.Params{"ClientToken": strings.Repeat("x", 65)}), "InvalidParameterValue"},
	} {
		f.fails(t, "RunInstances", tc.p, tc.code)
	}
	// Nothing stayed behind.
	if r := f.must(t, "DescribeInstances", queryapi.Params{}); len(r["Reservations"].([]any)) != 0 {
		t.Fatalf("refused launches left %v", r)
	}
	// Terraform's network-interface form, and volume tags accepted.
	subnets := f.must(t, "DescribeSubnets", queryapi.Params{})
	subnet := obj(t, subnets, "Subnets", 0, "SubnetId").(string)
	r := f.must(t, "RunInstances", run(queryapi.Params{"NetworkInterface.1.DeviceIndex": "0", "NetworkInterface.1.SubnetId": subnet,
		"NetworkInterface.1.AssociatePublicIpAddress": "true", "NetworkInterface.1.PrivateIpAddress": "172.31.7.7",
		"TagSpecification.1.ResourceType": "volume", "TagSpecification.1.Tag.1.Key": "a", "TagSpecification.1.Tag.1.Value": "b",
		"DisableApiTermination": "true"}))
	inst := obj(t, r, "Instances", 0).(map[string]any)
	id := inst["InstanceId"].(string)
	if inst["SubnetId"] != subnet || inst["PrivateIpAddress"] != "172.31.7.7" {
		t.Fatalf("network interface form: %v", inst)
	}
	f.fails(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id}, "OperationNotPermitted")
	f.fails(t, "TerminateInstances", queryapi.Params{}, "MissingParameter")
	f.fails(t, "TerminateInstances", queryapi.Params{"InstanceId.1": "web1"}, "InvalidInstanceID.Malformed")
	f.fails(t, "TerminateInstances", queryapi.Params{"InstanceId.1": "i-0000000000000dead"}, "InvalidInstanceID.NotFound")
	f.fails(t, "RebootInstances", queryapi.Params{"InstanceId.1": "i-0000000000000dead"}, "InvalidInstanceID.NotFound")
	f.fails(t, "GetConsoleOutput", queryapi.Params{"InstanceId": "i-0000000000000dead"}, "InvalidInstanceID.NotFound")
	f.fails(t, "GetConsoleOutput", queryapi.Params{}, "MissingParameter")
	if co := f.must(t, "GetConsoleOutput", queryapi.Params{"InstanceId": id}); co["Output"] != nil {
		t.Errorf("console before there is one: %v", co)
	}
	f.fails(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id}, "MissingParameter")
	f.fails(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "color"}, "InvalidParameterValue")
	for _, a := range instanceAttributes {
		f.must(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": a})
	}
	if g := f.must(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "groupSet"}); obj(t, g, "Groups", 0, "GroupName") != "default" {
		t.Errorf("groupSet %v", g)
	}
	if k := f.must(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "kernel"}); !strings.HasPrefix(obj(t, k, "KernelId", "Value").(string), "eki-") {
		t.Errorf("kernel %v", k)
	}
	if u := f.must(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "userData"}); obj(t, u, "UserData") == nil {
		t.Errorf("userData without user data must still answer: %v", u)
	}
	// ModifyInstanceAttribute, both forms.
	f.fails(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id}, "InvalidParameterCombination")
	f.fails(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "DisableApiTermination.Value": "false", "DisableApiStop.Value": "true"}, "InvalidParameterCombination")
	f.fails(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "InstanceType.Value": "c1.medium"}, "IncorrectInstanceState")
	f.fails(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "instanceInitiatedShutdownBehavior", "Value": "explode"}, "InvalidParameterValue")
	f.fails(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "DisableApiTermination.Value": "perhaps"}, "InvalidParameterValue")
	f.must(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "disableApiTermination", "Value": "false"})
	f.must(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "InstanceInitiatedShutdownBehavior.Value": "terminate"})
	f.must(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "SourceDestCheck.Value": "false"})
	if v := f.must(t, "DescribeInstanceAttribute", queryapi.Params{"InstanceId": id, "Attribute": "sourceDestCheck"}); obj(t, v, "SourceDestCheck", "Value") != false {
		t.Errorf("sourceDestCheck %v", v)
	}
	created := f.must(t, "CreateSecurityGroup", queryapi.Params{"GroupName": "web", "GroupDescription": "web"})
	f.must(t, "ModifyInstanceAttribute", queryapi.Params{"InstanceId": id, "GroupId.1": created["GroupId"].(string)})
	f.fails(t, "DeleteSecurityGroup", queryapi.Params{"GroupId": created["GroupId"].(string)}, "DependencyViolation")
	f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id})
}

// TestInstanceFilterNamesFollowModel: the Describe calls of this file
// accept every filter name their model documentation lists.
func TestInstanceFilterNamesFollowModel(t *testing.T) {
	want := modelFilterNames(t, "DescribeInstances", "DescribeInstanceStatus", "DescribeVolumes", "DescribeInstanceCreditSpecifications")
	have := map[string]func(string) bool{
		"DescribeInstances":                    func(n string) bool { _, ok := instanceFilters[n]; return ok },
		"DescribeInstanceStatus":               func(n string) bool { _, ok := instanceStatusFilters[n]; return ok },
		"DescribeVolumes":                      func(n string) bool { _, ok := volumeFilters[n]; return ok },
		"DescribeInstanceCreditSpecifications": func(n string) bool { _, ok := creditSpecFilters[n]; return ok },
	}
	for op, names := range want {
		for _, n := range names {
			if !have[op](n) {
				t.Errorf("%s: filter %q of the model is not accepted", op, n)
			}
		}
	}
}

// TestNetworkInterfacesOfInstances: each live instance's interface is
// listed, found by the filters Terraform uses before deleting a group, and
// gone once the instance is terminated.
func TestNetworkInterfacesOfInstances(t *testing.T) {
	f := newInstAPI(t)
	sgs := f.must(t, "DescribeSecurityGroups", queryapi.Params{"GroupName.1": "default"})
	sg := obj(t, sgs, "SecurityGroups", 0, "GroupId").(string)
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": f.emi, "MinCount": "1", "MaxCount": "1"})
	inst := obj(t, r, "Instances", 0).(map[string]any)
	id := inst["InstanceId"].(string)
	eniID := obj(t, inst, "NetworkInterfaces", 0, "NetworkInterfaceId").(string)

	all := f.must(t, "DescribeNetworkInterfaces", queryapi.Params{})
	n := obj(t, all, "NetworkInterfaces", 0).(map[string]any)
	for k, want := range map[string]any{
		"NetworkInterfaceId": eniID, "PrivateIpAddress": inst["PrivateIpAddress"], "SubnetId": inst["SubnetId"],
		"VpcId": inst["VpcId"], "AvailabilityZone": "us-east-1a", "Status": "in-use", "OwnerId": f.alice,
		"MacAddress": obj(t, inst, "NetworkInterfaces", 0, "MacAddress"), "InterfaceType": "interface",
	} {
		if n[k] != want {
			t.Errorf("%s = %v, want %v", k, n[k], want)
		}
	}
	if obj(t, n, "Attachment", "InstanceId") != id || obj(t, n, "Attachment", "Status") != "attached" || obj(t, n, "Groups", 0, "GroupId") != sg {
		t.Errorf("attachment %v groups %v", n["Attachment"], n["Groups"])
	}
	for _, flt := range []queryapi.Params{
		{"Filter.1.Name": "group-id", "Filter.1.Value.1": sg},
		{"Filter.1.Name": "attachment.instance-id", "Filter.1.Value.1": id},
		{"NetworkInterfaceId.1": eniID},
	} {
		got := f.must(t, "DescribeNetworkInterfaces", flt)
		if l := obj(t, got, "NetworkInterfaces").([]any); len(l) != 1 {
			t.Errorf("%v found %d interfaces", flt, len(l))
		}
	}
	if l := obj(t, f.must(t, "DescribeNetworkInterfaces", queryapi.Params{"Filter.1.Name": "group-id", "Filter.1.Value.1": "sg-00000000000000000"}), "NetworkInterfaces").([]any); len(l) != 0 {
		t.Errorf("another group's filter found %v", l)
	}
	// Another account sees none of them.
	if resp, err := f.call(f.admin, "DescribeNetworkInterfaces", queryapi.Params{"NetworkInterfaceId.1": eniID}); err == nil {
		t.Errorf("admin found alice's interface: %v", resp)
	}
	f.must(t, "TerminateInstances", queryapi.Params{"InstanceId.1": id})
	f.cl.set(id, ncapi.StateTerminated)
	f.waitState(t, id, "terminated")
	if l := obj(t, f.must(t, "DescribeNetworkInterfaces", queryapi.Params{}), "NetworkInterfaces").([]any); len(l) != 0 {
		t.Errorf("a terminated instance's interface is still listed: %v", l)
	}
	f.fails(t, "DescribeNetworkInterfaces", queryapi.Params{"NetworkInterfaceId.1": eniID}, "InvalidNetworkInterfaceID.NotFound")
}

// TestInstanceStatusOfUnreachableNode: an instance whose node the cluster
// cannot reach is impaired (instance and system status, reachability
// failed), with and without IncludeAllInstances, instead of passing for
// running; when the node answers again without it, it is terminated at once
// with the reason.
func TestInstanceStatusOfUnreachableNode(t *testing.T) {
	f := newInstAPI(t)
	r := f.must(t, "RunInstances", queryapi.Params{"ImageId": f.emi, "MinCount": "2", "MaxCount": "2", "InstanceType": "m1.small"})
	a := obj(t, r, "Instances", 0, "InstanceId").(string)
	b := obj(t, r, "Instances", 1, "InstanceId").(string)
	f.cl.set(a, ncapi.StateRunning)
	f.cl.set(b, ncapi.StateRunning)
	f.waitState(t, a, "running")
	f.waitState(t, b, "running")

	f.cl.mu.Lock()
	f.cl.unreachable[a] = "node n1 does not answer: connection refused"
	f.cl.since = time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	f.cl.mu.Unlock()
	statusOf := func(p queryapi.Params) map[string]any {
		out := map[string]any{}
		for _, s := range f.must(t, "DescribeInstanceStatus", p)["InstanceStatuses"].([]any) {
			m := s.(map[string]any)
			out[m["InstanceId"].(string)] = m
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for obj(t, statusOf(queryapi.Params{}), a, "InstanceStatus", "Status") != "impaired" {
		if time.Now().After(deadline) {
			t.Fatalf("never impaired: %v", statusOf(queryapi.Params{}))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range []queryapi.Params{{}, {"IncludeAllInstances": "true"}} {
		st := statusOf(p)
		for _, check := range []string{"InstanceStatus", "SystemStatus"} {
			if obj(t, st, a, check, "Status") != "impaired" || obj(t, st, a, check, "Details", 0, "Name") != "reachability" ||
				obj(t, st, a, check, "Details", 0, "Status") != "failed" ||
				!strings.HasPrefix(fmt.Sprint(obj(t, st, a, check, "Details", 0, "ImpairedSince")), "2026-12-07 13:00:00+00:00") {
				t.Errorf("%v %s of the unreachable instance: %v", p, check, st[a])
			}
			if obj(t, st, b, check, "Status") != "ok" {
				t.Errorf("%v %s of the reachable one: %v", p, check, st[b])
			}
		}
		if obj(t, st, a, "InstanceState", "Name") != "running" {
			t.Errorf("the unreachable instance's state: %v", st[a])
		}
	}
	if st := statusOf(queryapi.Params{"Filter.1.Name": "instance-status.reachability", "Filter.1.Value.1": "failed"}); len(st) != 1 || st[a] == nil {
		t.Errorf("filtered on reachability failed: %v", st)
	}

	// The node answers again without it.
	f.cl.mu.Lock()
	delete(f.cl.unreachable, a)
	f.cl.lost[a] = "node n1 no longer has the instance (the host restarted or lost it)"
	f.cl.mu.Unlock()
	inst := f.waitState(t, a, "terminated")
	if obj(t, inst, "StateReason", "Code") != "Server.InternalError" || !strings.Contains(obj(t, inst, "StateReason", "Message").(string), "no longer has the instance") {
		t.Errorf("state reason of the lost instance: %v", inst["StateReason"])
	}
	if obj(t, statusOf(queryapi.Params{}), b, "InstanceStatus", "Status") != "ok" {
		t.Errorf("the other instance: %v", statusOf(queryapi.Params{}))
	}
}

// TestZonesShowNodes: DescribeAvailabilityZones shows its nodes' state: the
// zone is unavailable while none of its nodes answers, and the verbose
// report (the administrator's) has a line per node after the VM types.
func TestZonesShowNodes(t *testing.T) {
	f := newInstAPI(t)
	seen := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	f.cl.mu.Lock()
	f.cl.nodes = []ccapi.NodeInfo{
		{Host: "10.0.0.2", Port: 8775, Up: true, Max: ncapi.Resources{Cores: 4, MemoryMiB: 2048, DiskGiB: 40}, Free: ncapi.Resources{Cores: 3, MemoryMiB: 1920, DiskGiB: 38}},
		{Host: "10.0.0.3", Port: 8775, LastSeen: seen, Error: "connection refused"},
	}
	f.cl.mu.Unlock()
	zones := func(account string, p queryapi.Params) []string {
		resp, err := f.call(account, "DescribeAvailabilityZones", p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, z := range resp.(*describeZonesResponse).Zones.Items {
			out = append(out, z.ZoneName+"\t"+z.State)
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(zones(f.admin, queryapi.Params{"ZoneName.1": "verbose"}), "|- node 10.0.0.3:8775\tdown, last seen 2026-12-07T13:00:00Z: connection refused") {
		if time.Now().After(deadline) {
			t.Fatalf("verbose: %q", zones(f.admin, queryapi.Params{"ZoneName.1": "verbose"}))
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := zones(f.admin, queryapi.Params{"ZoneName.1": "verbose"})
	if !slices.Contains(got, "|- node 10.0.0.2:8775\tup     cores 3/4  ram 1920/2048  disk 38/40") || got[0] != "us-east-1a\tavailable" {
		t.Errorf("verbose:\n%s", strings.Join(got, "\n"))
	}
	// Another account sees the zone, not the nodes.
	if got := zones(f.alice, queryapi.Params{"ZoneName.1": "verbose"}); len(got) != 1 {
		t.Errorf("alice's verbose: %q", got)
	}

	f.cl.mu.Lock()
	f.cl.nodes = []ccapi.NodeInfo{{Host: "10.0.0.3", Port: 8775, Error: "connection refused"}}
	f.cl.mu.Unlock()
	for zones(f.alice, queryapi.Params{})[0] != "us-east-1a\tunavailable" {
		if time.Now().After(deadline) {
			t.Fatalf("zone with no node up: %q", zones(f.alice, queryapi.Params{}))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Volumes are not modelled by this fake: the EBS issue's tests drive them.
func (f *apiCluster) AttachVolume(context.Context, string, ncapi.VolumeAttachment) error { return nil }
func (f *apiCluster) DetachVolume(context.Context, string, string, bool) error           { return nil }

// StopInstances forgets the instances, as a node that powered them off.
func (c *apiCluster) StopInstances(ctx context.Context, list []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stops = append(c.stops, list...)
	for _, id := range list {
		delete(c.states, id)
	}
	return nil
}
