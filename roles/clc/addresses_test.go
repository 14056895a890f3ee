package clc

import (
	"errors"
	"sync"

	"context"
	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/store"
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

// TestAddressLimit: an account holds at most MaxElasticIPs allocations,
// however many calls race for more (AddressLimitExceeded, as EC2's
// per-account limit answers), so one account cannot drain the pool the
// others share; another account still allocates, and a release makes
// room again.
func TestAddressLimit(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	for i := range 20 {
		cfg.VNetPublicIPs = append(cfg.VNetPublicIPs, netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}))
	}
	f := newInstFixtureConf(t, 10, cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []store.Address
	limited := 0
	for range 3 * MaxElasticIPs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := f.c.AllocateAddress(ctx, f.alice, "", "", nil)
			mu.Lock()
			defer mu.Unlock()
			var ae *awserr.Error
			switch {
			case errors.As(err, &ae) && ae.Code == "AddressLimitExceeded":
				limited++
			case err != nil:
				t.Error(err)
			default:
				got = append(got, a)
			}
		}()
	}
	wg.Wait()
	if len(got) != MaxElasticIPs || limited != 2*MaxElasticIPs {
		t.Fatalf("%d allocated, %d refused; want %d and %d", len(got), limited, MaxElasticIPs, 2*MaxElasticIPs)
	}
	if _, err := f.c.AllocateAddress(ctx, f.bob, "", "", nil); err != nil {
		t.Fatalf("another account: %v", err)
	}
	if err := f.c.ReleaseAddress(ctx, f.alice, got[0].AllocationID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.AllocateAddress(ctx, f.alice, "", "", nil); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}
