package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

func init() {
	tableSeeds["addresses"] = []string{
		`INSERT INTO addresses (allocation_id, account_id, public_ip, domain, association_id, instance_id, created_ms) VALUES
			('eipalloc-0123456789abcdef0', '111122223333', '192.0.2.10', 'vpc', 'eipassoc-0123456789abcdef0', 'i-0123456789abcdef0', 11),
			('eipalloc-0123456789abcdef1', '444455556666', '192.0.2.11', 'standard', '', '', 12)`,
	}
}

func pool(n int) []netip.Addr {
	var out []netip.Addr
	a := netip.MustParseAddr("192.0.2.10")
	for range n {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// launchPublic launches n instances of account in zone z1 that take a
// public address from the pool.
func launchPublic(t *testing.T, s *Store, account, token string, n int) []Instance {
	t.Helper()
	var insts []Instance
	for i := range n {
		insts = append(insts, Instance{ID: fmt.Sprintf("i-%s-%s-%d", account[:3], token, i), LaunchIndex: i, ImageID: "emi-1",
			InstanceType: "m1.small", Zone: "z1", SubnetID: "subnet-1", VPCID: "vpc-1", ENIID: fmt.Sprintf("eni-%s-%d", token, i),
			State: InstancePending, MapPublicIP: true})
	}
	out, err := s.LaunchInstances(context.Background(), Reservation{ID: "r-" + account + token, AccountID: account}, insts, SegmentRange{}, seqAlloc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func publicIP(t *testing.T, s *Store, account, id string) Instance {
	t.Helper()
	in, err := s.Instance(context.Background(), account, id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// No public address is ever handed out twice, whether to allocations or
// lent to instances, however many ask at once.
func TestAllocateAddressConcurrent(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	p := pool(30)
	launchPublic(t, s, "111122223333", "a", 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []string
	var exhausted int
	for k := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k%4 == 0 {
				if _, err := s.FillPublicAddresses(ctx, p); err != nil {
					t.Error(err)
				}
				return
			}
			a, err := s.AllocateAddress(ctx, Address{AllocationID: fmt.Sprintf("eipalloc-%d", k), AccountID: "444455556666", Domain: DomainVPC}, p, netip.Addr{}, 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNoFreeAddress):
				exhausted++
			case err != nil:
				t.Error(err)
			default:
				got = append(got, a.PublicIP)
			}
		}()
	}
	wg.Wait()
	all, err := s.Instances(ctx, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, ip := range got {
		if seen[ip] != "" {
			t.Errorf("%s allocated twice", ip)
		}
		seen[ip] = "allocation"
	}
	for _, in := range all {
		if in.PublicIP == "" {
			continue
		}
		if seen[in.PublicIP] != "" {
			t.Errorf("%s lent to %s is also the %s's", in.PublicIP, in.ID, seen[in.PublicIP])
		}
		seen[in.PublicIP] = in.ID
	}
	// 36 allocations ask for more than the pool holds: all of it is in
	// use, once each, and the rest were refused. (A read of the addresses
	// in use outside the allocating transaction fails this.)
	if len(seen) != len(p) || len(got)+exhausted != 36 {
		t.Errorf("%d addresses in use of %d, %d allocations refused: %v", len(seen), len(p), exhausted, seen)
	}
	u, err := s.PublicAddressesInUse(ctx)
	if err != nil || len(u) != len(p) {
		t.Errorf("in use: %+v %v", u, err)
	}
}

func TestAddressLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	const acct, other = "111122223333", "444455556666"
	if err := s.tx(ctx, func(tx *sql.Tx) error {
		return execAll(`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1), ('444455556666', 'alice', 2)`)(ctx, tx)
	}); err != nil {
		t.Fatal(err)
	}
	p := pool(4)
	insts := launchPublic(t, s, acct, "a", 2)
	i1, i2 := insts[0].ID, insts[1].ID
	if _, err := s.FillPublicAddresses(ctx, p); err != nil {
		t.Fatal(err)
	}
	if a, b := publicIP(t, s, acct, i1).PublicIP, publicIP(t, s, acct, i2).PublicIP; a != "192.0.2.10" || b != "192.0.2.11" {
		t.Fatalf("lent %q %q", a, b)
	}
	// A specific address: free, in use, outside the pool.
	if _, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-x", AccountID: acct, Domain: DomainVPC}, p, netip.MustParseAddr("192.0.2.10"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("allocate a lent address: %v", err)
	}
	var missing *MissingResourceError
	if _, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-x", AccountID: acct, Domain: DomainVPC}, p, netip.MustParseAddr("198.51.100.1"), 0); !errors.As(err, &missing) {
		t.Fatalf("allocate outside the pool: %v", err)
	}
	e1, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-1", AccountID: acct, Domain: DomainVPC, Tags: []Tag{{"Name", "web"}}}, p, netip.Addr{}, 0)
	if err != nil || e1.PublicIP != "192.0.2.12" {
		t.Fatalf("allocate: %+v %v", e1, err)
	}
	e2, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-2", AccountID: acct, Domain: DomainStandard}, p, netip.MustParseAddr("192.0.2.13"), 0)
	if err != nil || e2.PublicIP != "192.0.2.13" {
		t.Fatalf("allocate a chosen address: %+v %v", e2, err)
	}
	if _, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-3", AccountID: other, Domain: DomainVPC}, p, netip.Addr{}, 0); !errors.Is(err, ErrNoFreeAddress) {
		t.Fatalf("allocate from an exhausted pool: %v", err)
	}
	// Associating lends the instance's pool address back.
	a, err := s.AssociateAddress(ctx, acct, "eipalloc-1", i1, "eipassoc-1", false)
	if err != nil || a.InstanceID != i1 || a.AssociationID != "eipassoc-1" || a.PrivateIP != "10.0.0.2" || a.ENIID != "eni-a-0" {
		t.Fatalf("associate: %+v %v", a, err)
	}
	if in := publicIP(t, s, acct, i1); in.PublicIP != e1.PublicIP || in.AllocationID != "eipalloc-1" || in.AssociationID != "eipassoc-1" {
		t.Fatalf("instance after associate: %+v", in)
	}
	if a3, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-3", AccountID: other, Domain: DomainVPC}, p, netip.Addr{}, 0); err != nil || a3.PublicIP != "192.0.2.10" {
		t.Fatalf("the lent address did not return to the pool: %+v %v", a3, err)
	}
	// Another account's address and instance are not found.
	if _, err := s.AssociateAddress(ctx, acct, "eipalloc-3", i2, "eipassoc-x", false); !errors.As(err, &missing) || missing.ID != "eipalloc-3" {
		t.Fatalf("another account's address: %v", err)
	}
	if _, err := s.AssociateAddress(ctx, other, "eipalloc-3", i2, "eipassoc-x", false); !errors.As(err, &missing) || missing.ID != i2 {
		t.Fatalf("another account's instance: %v", err)
	}
	// In use elsewhere: refused without reassociation, moved with it.
	var already *AlreadyAssociatedError
	if _, err := s.AssociateAddress(ctx, acct, "eipalloc-1", i2, "eipassoc-2", false); !errors.As(err, &already) || already.AssociationID != "eipassoc-1" {
		t.Fatalf("associate in use: %v", err)
	}
	if _, err := s.AssociateAddress(ctx, acct, "eipalloc-1", i2, "eipassoc-2", true); err != nil {
		t.Fatal(err)
	}
	if in := publicIP(t, s, acct, i1); in.PublicIP != "" || in.AllocationID != "" {
		t.Fatalf("instance the address left: %+v", in)
	}
	// An instance with an address takes another: the first is let go.
	if _, err := s.AssociateAddress(ctx, acct, "eipalloc-2", i2, "eipassoc-3", false); err != nil {
		t.Fatal(err)
	}
	got, err := s.Addresses(ctx, acct)
	if err != nil || len(got) != 2 || got[0].InstanceID != "" || got[1].InstanceID != i2 || len(got[0].Tags) != 1 {
		t.Fatalf("addresses: %+v %v", got, err)
	}
	// Release: refused while associated, unless asked to end it first.
	var inUse *AddressInUseError
	if _, err := s.ReleaseAddress(ctx, acct, "eipalloc-2", false); !errors.As(err, &inUse) {
		t.Fatalf("release while associated: %v", err)
	}
	if _, err := s.DisassociateAddress(ctx, acct, "eipassoc-1"); !errors.As(err, &missing) {
		t.Fatalf("disassociate an ended association: %v", err)
	}
	// The instance without an address is lent the one the other gave
	// back when it took an elastic IP.
	if zones, err := s.FillPublicAddresses(ctx, p); err != nil || len(zones) != 1 {
		t.Fatalf("fill: %v %v", zones, err)
	}
	if in := publicIP(t, s, acct, i1); in.PublicIP != "192.0.2.11" {
		t.Fatalf("not lent the free address: %+v", in)
	}
	// Survives a restart.
	s.Close()
	if s, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if in := publicIP(t, s, acct, i2); in.PublicIP != "192.0.2.13" || in.AssociationID != "eipassoc-3" {
		t.Fatalf("after reopening: %+v", in)
	}
	// Disassociation: the address stays allocated, the instance goes
	// without until lent one.
	if a, err := s.DisassociateAddress(ctx, acct, "eipassoc-3"); err != nil || a.InstanceID != i2 {
		t.Fatalf("disassociate: %+v %v", a, err)
	}
	if _, err := s.FillPublicAddresses(ctx, p); err != nil {
		t.Fatal(err)
	}
	if in := publicIP(t, s, acct, i2); in.PublicIP != "" {
		t.Fatalf("lent an address from a full pool: %+v", in)
	}
	if _, err := s.ReleaseAddress(ctx, other, "eipalloc-3", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FillPublicAddresses(ctx, p); err != nil {
		t.Fatal(err)
	}
	if in := publicIP(t, s, acct, i2); in.PublicIP != "192.0.2.10" {
		t.Fatalf("not lent the released address: %+v", in)
	}
	if _, err := s.AssociateAddress(ctx, acct, "eipalloc-2", i2, "eipassoc-4", false); err != nil {
		t.Fatal(err)
	}
	// Termination ends the association and the loan.
	for _, id := range []string{i1, i2} {
		if _, err := s.SetInstanceState(ctx, id, nil, StateChange{State: InstanceTerminated}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Addresses(ctx, acct); got[1].InstanceID != "" || got[1].AssociationID != "" {
		t.Fatalf("address of a terminated instance: %+v", got[1])
	}
	if u, err := s.PublicAddressesInUse(ctx); err != nil || len(u) != 2 {
		t.Fatalf("in use after termination: %+v %v", u, err)
	}
	if _, err := s.AssociateAddress(ctx, acct, "eipalloc-2", i2, "eipassoc-5", false); !errors.As(err, new(*InstanceStateError)) {
		t.Fatalf("associate to a terminated instance: %v", err)
	}
	if a, err := s.ReleaseAddress(ctx, acct, "eipalloc-2", false); err != nil || a.PublicIP != "192.0.2.13" {
		t.Fatalf("release: %+v %v", a, err)
	}
	if _, err := s.ReleaseAddress(ctx, acct, "eipalloc-2", false); !errors.As(err, &missing) {
		t.Fatalf("release twice: %v", err)
	}
}

// An allocation's reverse DNS name is kept with it, only its account sets
// it, and it goes when the address is released.
func TestAddressDomainName(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	p := pool(2)
	a, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-1", AccountID: "444455556666", Domain: DomainVPC}, p, netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAddressDomainName(ctx, "111122223333", a.AllocationID, "evil.example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another account's allocation: %v", err)
	}
	before, err := s.SetAddressDomainName(ctx, "444455556666", a.AllocationID, "mail.example.com")
	if err != nil || before.DomainName != "" || before.PublicIP != a.PublicIP {
		t.Fatalf("set: %+v %v", before, err)
	}
	if before, err = s.SetAddressDomainName(ctx, "444455556666", a.AllocationID, "smtp.example.com"); err != nil || before.DomainName != "mail.example.com" {
		t.Fatalf("set again: %+v %v", before, err)
	}
	got, err := s.Addresses(ctx, "444455556666")
	if err != nil || len(got) != 1 || got[0].DomainName != "smtp.example.com" {
		t.Fatalf("addresses: %+v %v", got, err)
	}
	if _, err := s.ReleaseAddress(ctx, "444455556666", a.AllocationID, false); err != nil {
		t.Fatal(err)
	}
	want, _ := netip.ParseAddr(a.PublicIP)
	again, err := s.AllocateAddress(ctx, Address{AllocationID: "eipalloc-2", AccountID: "444455556666", Domain: DomainVPC}, p, want, 0)
	if err != nil || again.PublicIP != a.PublicIP {
		t.Fatalf("allocated again: %+v %v", again, err)
	}
	if got, err = s.Addresses(ctx, "444455556666"); err != nil || len(got) != 1 || got[0].DomainName != "" {
		t.Errorf("a released address kept its name: %+v %v", got, err)
	}
}
