package clc

import (
	"context"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
)

// catalogCloud is a cloud controller over a fresh store, with one more
// account besides admin.
func catalogCloud(t *testing.T) (c *Cloud, admin, other store.Account) {
	t.Helper()
	c, _, accounts := newTestCloud(t, nil, AdminAccount, "alice")
	return c, accounts[0], accounts[1]
}

func TestZoneID(t *testing.T) {
	c, _, _ := catalogCloud(t)
	if got := c.ZoneID("us-east-1a"); got != "use1-az1" {
		t.Errorf("ZoneID = %q", got)
	}
	if got := c.ZoneID("nowhere"); got != "" {
		t.Errorf("ZoneID of unknown zone = %q", got)
	}
	for region, want := range map[string]string{
		"us-east-1": "use1", "us-west-2": "usw2", "eu-central-1": "euc1", "ap-northeast-1": "apne1",
		"ap-southeast-2": "apse2", "us-gov-west-1": "usgw1", "us-euca-1": "use1", "local-1": "local1",
	} {
		if got := regionShort(region); got != want {
			t.Errorf("regionShort(%q) = %q, want %q", region, got, want)
		}
	}
}

func TestZoneCapacityOnlyForAdmin(t *testing.T) {
	ctx := context.Background()
	c, admin, other := catalogCloud(t)
	if _, visible, err := c.ZoneCapacity(ctx, admin.ID); err != nil || !visible {
		t.Errorf("admin: visible %v, err %v", visible, err)
	}
	if _, visible, err := c.ZoneCapacity(ctx, other.ID); err != nil || visible {
		t.Errorf("other account: visible %v, err %v", visible, err)
	}
	if _, visible, err := c.ZoneCapacity(ctx, "000000000000"); err != nil || visible {
		t.Errorf("unknown account: visible %v, err %v", visible, err)
	}
}

func TestAccountAttributes(t *testing.T) {
	ctx := context.Background()
	c, _, other := catalogCloud(t)
	attrs, err := c.AccountAttributes(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	vpc, err := c.store.DefaultVPC(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"supported-platforms": "VPC", "default-vpc": vpc.ID, "max-instances": "20",
		"vpc-max-security-groups-per-interface": "5", "max-elastic-ips": "5", "vpc-max-elastic-ips": "5",
	}
	for k, v := range want {
		if got := attrs[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %v, want %s", k, got, v)
		}
	}
	if len(attrs) != len(want) {
		t.Errorf("attributes %v", attrs)
	}
}

func TestSetVMType(t *testing.T) {
	ctx := context.Background()
	c, _, _ := catalogCloud(t)
	got, err := c.SetVMType(ctx, "m1.small", 1, 192, 2)
	if err != nil || got.MemoryMB != 192 {
		t.Fatalf("got %+v, %v", got, err)
	}
	_, err = c.SetVMType(ctx, "m1.large", 8, 512, 10)
	if err == nil || !strings.Contains(err.Error(), "m1.xlarge") {
		t.Fatalf("crossing m1.xlarge: %v", err)
	}
	_, err = c.SetVMType(ctx, "t1.micro", 1, 64, 1)
	if err == nil || !strings.Contains(err.Error(), `no VM type "t1.micro"`) || !strings.Contains(err.Error(), "m1.small, c1.medium") {
		t.Fatalf("unknown type: %v", err)
	}
	types, err := c.VMTypes(ctx)
	if err != nil || len(types) != 5 || types[0].MemoryMB != 192 || types[2].Cores != 2 {
		t.Fatalf("types %+v, %v", types, err)
	}
}

func TestInstanceHypervisor(t *testing.T) {
	c, _, _ := catalogCloud(t)
	for hv, want := range map[string]string{"xen": "xen", "kvm": "nitro", "qemu": "nitro", "auto": "nitro"} {
		c.cfg.Hypervisor = hv
		if got := c.InstanceHypervisor(); got != want {
			t.Errorf("%s: %q, want %q", hv, got, want)
		}
	}
}

// awsCode is the EC2 code of err, "" for none.
func awsCode(err error) string {
	if e, ok := awserr.As(err); ok {
		return e.Code
	}
	return ""
}

// TestRegionFollowsConfig: the region is us-east-1 unless REGION says
// otherwise, and the credentials (the eucarc's AWS_DEFAULT_REGION), the
// zone and its id follow a custom one.
func TestRegionFollowsConfig(t *testing.T) {
	ctx := context.Background()
	c, _, _ := newTestCloud(t, nil)
	if c.Region() != "us-east-1" || c.Zones()[0] != "us-east-1a" {
		t.Fatalf("default region %q, zones %v", c.Region(), c.Zones())
	}
	cfg := testConfig(t)
	cfg.Region, cfg.ClusterName = "eu-euca-2", "eu-euca-2b"
	c, _, _ = newTestCloud(t, cfg)
	b, err := c.Credentials(ctx, AdminAccount, Endpoints{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Region != "eu-euca-2" || c.Region() != "eu-euca-2" || c.ZoneID("eu-euca-2b") != "eue2-az1" {
		t.Fatalf("credentials region %q, region %q, zone id %q", b.Region, c.Region(), c.ZoneID("eu-euca-2b"))
	}
}
