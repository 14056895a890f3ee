package clc

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
)

// TestMetadataFollowsAddresses: the metadata's public-ipv4 and
// public-hostname are the address lent at launch, then the elastic IP once
// associated, then a lent one again once it is disassociated.
func TestMetadataFollowsAddresses(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.VNetPublicIPs = []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}
	f := newInstFixtureConf(t, 10, cfg)
	insts, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	in := f.running(t, insts[0].ID)
	c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
	want := func(ip string) {
		t.Helper()
		if code, got := c.get("/latest/meta-data/public-ipv4"); code != http.StatusOK || got != ip {
			t.Errorf("public-ipv4: %d %q, want %s", code, got, ip)
		}
		if code, got := c.get("/latest/meta-data/public-hostname"); code != http.StatusOK || got != privateDNSName("us-east-1", ip) {
			t.Errorf("public-hostname: %d %q", code, got)
		}
	}
	want("192.0.2.10")
	a, err := f.c.AllocateAddress(ctx, f.alice, "", "", nil)
	if err != nil || a.PublicIP != "192.0.2.11" {
		t.Fatalf("allocate: %+v %v", a, err)
	}
	assoc, err := f.c.AssociateAddress(ctx, f.alice, a.AllocationID, "", in.ID, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	want("192.0.2.11")
	if err := f.c.DisassociateAddress(ctx, f.alice, assoc, ""); err != nil {
		t.Fatal(err)
	}
	want("192.0.2.10")
}
