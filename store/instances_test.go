package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
)

func init() {
	// The instances migration's seed is the seed before it plus a
	// reservation with a client token, an instance and its group.
	v := versionAddingTable("instances")
	migrationSeeds[v] = func(ctx context.Context, tx *sql.Tx) error {
		prev := 0
		for k := range migrationSeeds {
			if k < v && k > prev {
				prev = k
			}
		}
		if err := migrationSeeds[prev](ctx, tx); err != nil {
			return err
		}
		return execAll(
			`INSERT INTO reservations (id, account_id, client_token, request_hash, created_ms) VALUES
				('r-0123456789abcdef0', '111122223333', 'token-1', 'abc', 9)`,
			`INSERT INTO instances (id, reservation_id, account_id, launch_index, image_id, instance_type, zone, subnet_id, vpc_id,
				private_ip, mac, eni_id, state, user_data, created_ms, updated_ms) VALUES
				('i-0123456789abcdef0', 'r-0123456789abcdef0', '111122223333', 0, 'emi-0123456789abcdef0', 'm1.small', 'us-euca-1a',
				 'subnet-0123456789abcdef0', 'vpc-0123456789abcdef0', '172.31.0.2', 'd0:0d:ac:1f:00:02', 'eni-0123456789abcdef0',
				 'running', x'6869', 9, 10)`,
			`INSERT INTO instance_groups (instance_id, group_id, group_name, position) VALUES
				('i-0123456789abcdef0', 'sg-0123456789abcdef0', 'default', 0)`,
		)(ctx, tx)
	}
}

// seqAlloc is ipam's rule in miniature: the lowest address of 10.0.0.0/29
// above the gateway that is not used.
func seqAlloc(used []netip.Addr, _ []string, _ int) (netip.Addr, string, error) {
	taken := map[netip.Addr]bool{}
	for _, a := range used {
		taken[a] = true
	}
	for a := netip.MustParseAddr("10.0.0.2"); a.Less(netip.MustParseAddr("10.0.0.7")); a = a.Next() {
		if !taken[a] {
			b := a.As4()
			return a, net.HardwareAddr{0xd0, 0x0d, b[0], b[1], b[2], b[3]}.String(), nil
		}
	}
	return netip.Addr{}, "", errors.New("exhausted")
}

func instanceStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s := openAtVersion(t, SchemaVersion())
	if err := s.tx(ctx, func(tx *sql.Tx) error {
		return execAll(`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1), ('444455556666', 'alice', 2)`,
			`INSERT INTO vpcs (id, account_id, cidr, is_default, created_ms) VALUES ('vpc-1', '111122223333', '10.0.0.0/16', 1, 1)`,
			`INSERT INTO security_groups (id, account_id, vpc_id, name, description, created_ms) VALUES ('sg-1', '111122223333', 'vpc-1', 'web', 'd', 1)`,
			`INSERT INTO security_group_rules (id, group_id, egress, protocol, from_port, to_port, cidr_ipv4, created_ms) VALUES
				('sgr-1', 'sg-1', 0, 'tcp', 22, 22, '0.0.0.0/0', 1), ('sgr-2', 'sg-1', 1, '-1', -1, -1, '0.0.0.0/0', 2)`,
		)(ctx, tx)
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func launchN(t *testing.T, s *Store, account, zone, token string, n int) ([]Instance, error) {
	t.Helper()
	r := Reservation{ID: fmt.Sprintf("r-%s-%s-%d", account, token, n), AccountID: account, ClientToken: token, RequestHash: "h"}
	var insts []Instance
	for i := 0; i < n; i++ {
		insts = append(insts, Instance{ID: fmt.Sprintf("i-%s-%s-%s-%d", account[:3], zone, token, i), LaunchIndex: i, ImageID: "emi-1", InstanceType: "m1.small",
			Zone: zone, SubnetID: "subnet-1", VPCID: "vpc-1", ENIID: "eni-1", State: InstancePending,
			Groups: []GroupRef{{ID: "sg-1", Name: "web"}}, Tags: []Tag{{"Name", "web"}},
			Options:  InstanceOptions{SourceDestCheck: true, ShutdownBehavior: "stop", CPUCredits: "standard", HTTPTokens: "optional", HTTPEndpoint: "enabled", HTTPHopLimit: 1},
			UserData: []byte("#!/bin/sh\n")})
	}
	return s.LaunchInstances(context.Background(), r, insts, SegmentRange{}, seqAlloc)
}

func TestLaunchInstancesAddresses(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	a, err := launchN(t, s, "111122223333", "z1", "a", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}
	for i, in := range a {
		if in.PrivateIP != want[i] || in.MAC != "d0:0d:0a:00:00:0"+want[i][len(want[i])-1:] {
			t.Fatalf("instance %d: %s %s", i, in.PrivateIP, in.MAC)
		}
	}
	// Another account shares the zone's space: it gets the next address.
	b, err := launchN(t, s, "444455556666", "z1", "b", 1)
	if err != nil || b[0].PrivateIP != "10.0.0.5" {
		t.Fatalf("second account: %+v %v", b, err)
	}
	// Another zone starts over.
	c, err := launchN(t, s, "111122223333", "z2", "c", 1)
	if err != nil || c[0].PrivateIP != "10.0.0.2" {
		t.Fatalf("other zone: %+v %v", c, err)
	}
	// The space is full: nothing of the failed launch stays.
	if _, err := launchN(t, s, "111122223333", "z1", "d", 2); err == nil {
		t.Fatal("launch beyond the space succeeded")
	}
	all, _ := s.Instances(ctx, "111122223333")
	if len(all) != 4 {
		t.Fatalf("instances after a failed launch: %d", len(all))
	}
	// Terminated instances free their address for the next launch.
	if ok, err := s.SetInstanceState(ctx, a[1].ID, nil, StateChange{State: InstanceTerminated}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	d, err := launchN(t, s, "111122223333", "z1", "e", 1)
	if err != nil || d[0].PrivateIP != "10.0.0.3" {
		t.Fatalf("address of a terminated instance not reused: %+v %v", d, err)
	}
	// The unique index holds even against an allocator that repeats itself.
	dup := func([]netip.Addr, []string, int) (netip.Addr, string, error) {
		return netip.MustParseAddr("10.0.0.2"), "m", nil
	}
	_, err = s.LaunchInstances(ctx, Reservation{ID: "r-dup", AccountID: "111122223333"},
		[]Instance{{ID: "i-dup", ImageID: "emi-1", InstanceType: "m1.small", Zone: "z1", SubnetID: "s", VPCID: "v", ENIID: "e", State: InstancePending}}, SegmentRange{}, dup)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate address: %v", err)
	}
	got, err := s.Instance(ctx, "111122223333", a[0].ID)
	if err != nil || len(got.Groups) != 1 || got.Groups[0].Name != "web" || len(got.Tags) != 1 || string(got.UserData) != "#!/bin/sh\n" ||
		got.ClientToken != "a" || !got.Options.SourceDestCheck || got.Options.HTTPTokens != "optional" {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if _, err := s.Instance(ctx, "444455556666", a[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other account's instance: %v", err)
	}
	byIP, err := s.LiveInstanceByAddress(ctx, "10.0.0.5")
	if err != nil || byIP.ID != b[0].ID {
		t.Fatalf("by address: %+v %v", byIP, err)
	}
	// 10.0.0.2 is held in z1 and z2: the caller cannot be told apart.
	if _, err := s.LiveInstanceByAddress(ctx, "10.0.0.2"); !errors.Is(err, ErrConflict) {
		t.Fatalf("ambiguous address: %v", err)
	}
	if _, err := s.LiveInstanceByAddress(ctx, "10.0.0.9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown address: %v", err)
	}
}

func TestClientTokens(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	first, err := launchN(t, s, "111122223333", "z1", "tok", 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.LaunchInstances(ctx, Reservation{ID: "r-2", AccountID: "111122223333", ClientToken: "tok", RequestHash: "other"},
		[]Instance{{ID: "i-2", Zone: "z1", State: InstancePending}}, SegmentRange{}, seqAlloc)
	var cte *ClientTokenError
	if !errors.As(err, &cte) || cte.ReservationID != first[0].ReservationID || cte.RequestHash != "h" || !errors.Is(err, ErrConflict) {
		t.Fatalf("same token again: %v", err)
	}
	// Tokens are per account.
	if _, err := launchN(t, s, "444455556666", "z1", "tok", 1); err != nil {
		t.Fatal(err)
	}
	r, err := s.ReservationByClientToken(ctx, "111122223333", "tok")
	if err != nil || r.ID != first[0].ReservationID {
		t.Fatalf("by token: %+v %v", r, err)
	}
	if _, err := s.ReservationByClientToken(ctx, "111122223333", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty token: %v", err)
	}
	// A rolled-back launch frees its token.
	if err := s.DeleteInstances(ctx, []string{first[0].ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReservationByClientToken(ctx, "111122223333", "tok"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token after rollback: %v", err)
	}
	if tags, _ := s.Tags(ctx, "111122223333"); len(tags) != 0 {
		t.Fatalf("tags after rollback: %v", tags)
	}
}

func TestTerminateAndUpdateInstances(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	in, err := launchN(t, s, "111122223333", "z1", "t", 2)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if err := s.UpdateInstance(ctx, "111122223333", in[1].ID, InstanceUpdate{DisableAPITermination: &yes}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateInstance(ctx, "444455556666", in[1].ID, InstanceUpdate{DisableAPITermination: &yes}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other account updated: %v", err)
	}
	_, err = s.TerminateInstances(ctx, "111122223333", []string{in[0].ID, in[1].ID}, "r")
	var prot *TerminationProtectedError
	if !errors.As(err, &prot) || prot.ID != in[1].ID {
		t.Fatalf("protected: %v", err)
	}
	if got, _ := s.Instance(ctx, "111122223333", in[0].ID); got.State != InstancePending {
		t.Fatalf("refused call changed a state: %s", got.State)
	}
	if _, err := s.TerminateInstances(ctx, "111122223333", []string{in[0].ID, "i-nope"}, "r"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	inUse, err := s.GroupInUse(ctx, "sg-1")
	if err != nil || !inUse {
		t.Fatalf("group in use: %v %v", inUse, err)
	}
	no := false
	none := []byte(nil)
	if err := s.UpdateInstance(ctx, "111122223333", in[1].ID, InstanceUpdate{DisableAPITermination: &no, UserData: &none,
		Groups: []GroupRef{{ID: "sg-2", Name: "db"}}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Instance(ctx, "111122223333", in[1].ID)
	if got.UserData != nil || len(got.Groups) != 1 || got.Groups[0].ID != "sg-2" {
		t.Fatalf("after update: %+v", got)
	}
	tr, err := s.TerminateInstances(ctx, "111122223333", []string{in[0].ID, in[1].ID}, "User initiated")
	if err != nil || len(tr) != 2 || tr[0] != (InstanceTransition{in[0].ID, InstancePending, InstanceShuttingDown}) {
		t.Fatalf("terminate: %+v %v", tr, err)
	}
	// Again: shutting-down stays.
	tr, _ = s.TerminateInstances(ctx, "111122223333", []string{in[0].ID}, "again")
	if tr[0].Previous != InstanceShuttingDown || tr[0].Current != InstanceShuttingDown {
		t.Fatalf("second terminate: %+v", tr)
	}
	// Only a shutting-down instance may become terminated through from.
	if ok, _ := s.SetInstanceState(ctx, in[0].ID, []string{InstanceRunning}, StateChange{State: InstanceTerminated}); ok {
		t.Fatal("state changed from a state it was not in")
	}
	for _, i := range in {
		if ok, err := s.SetInstanceState(ctx, i.ID, []string{InstanceShuttingDown}, StateChange{State: InstanceTerminated}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if inUse, _ := s.GroupInUse(ctx, "sg-1"); inUse {
		t.Fatal("group of terminated instances still in use")
	}
	if live, _ := s.ZoneInstances(ctx, "z1"); len(live) != 0 {
		t.Fatalf("live instances: %+v", live)
	}
	old := now
	now = func() int64 { return old() + 2*3600*1000 }
	defer func() { now = old }()
	ids, err := s.DeleteTerminatedInstances(ctx, now()-3600*1000)
	if err != nil || len(ids) != 2 {
		t.Fatalf("deleted %v %v", ids, err)
	}
	if all, _ := s.Instances(ctx, "111122223333"); len(all) != 0 {
		t.Fatalf("left: %+v", all)
	}
	rules, err := s.NetworkRules(ctx, []string{"sg-1", "sg-x"})
	if err != nil || len(rules["sg-1"]) != 2 || len(rules["sg-x"]) != 0 {
		t.Fatalf("network rules: %+v %v", rules, err)
	}
	if in, out := rules["sg-1"][0], rules["sg-1"][1]; in.Egress || in.FromPort != 22 || !out.Egress || out.Protocol != "-1" || out.CIDRIPv4 != "0.0.0.0/0" {
		t.Fatalf("network rules: ingress %+v, egress %+v", in, out)
	}
	if r, err := s.Resource(ctx, "111122223333", "i-0123456789abcdef0"); err == nil {
		t.Fatalf("resource of a deleted instance: %+v", r)
	}
}

func TestInstancesByID(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	mine, err := launchN(t, s, "111122223333", "z1", "a", 3)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := launchN(t, s, "444455556666", "z1", "b", 1)
	if err != nil {
		t.Fatal(err)
	}
	// More ids than one statement takes: the named instance comes last.
	ids := []string{mine[2].ID, "i-unknown", theirs[0].ID, mine[2].ID}
	for i := 0; i < 600; i++ {
		ids = append(ids, fmt.Sprintf("i-%017d", i))
	}
	ids = append(ids, mine[0].ID)
	got, err := s.InstancesByID(ctx, "111122223333", ids)
	if err != nil {
		t.Fatal(err)
	}
	// Another account's instance is not found; a repeated id is listed once;
	// oldest first; groups and tags as Instances gives them.
	all, err := s.Instances(ctx, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != mine[0].ID || got[1].ID != mine[2].ID {
		t.Fatalf("InstancesByID = %v", got)
	}
	for i, want := range []Instance{all[0], all[2]} {
		if fmt.Sprint(got[i]) != fmt.Sprint(want) || len(got[i].Groups) != 1 || len(got[i].Tags) != 1 {
			t.Errorf("instance %s:\n got %+v\nwant %+v", want.ID, got[i], want)
		}
	}
	if got, err := s.InstancesByID(ctx, "111122223333", []string{"i-unknown"}); err != nil || len(got) != 0 {
		t.Errorf("unknown: %v, %v", got, err)
	}
}

func TestReservationInstances(t *testing.T) {
	ctx := context.Background()
	s := instanceStore(t)
	mine, err := launchN(t, s, "111122223333", "z1", "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := launchN(t, s, "111122223333", "z1", "b", 1); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReservationInstances(ctx, "111122223333", mine[0].ReservationID)
	if err != nil || len(got) != 2 || got[0].ID != mine[0].ID || got[1].ID != mine[1].ID ||
		len(got[0].Groups) != 1 || len(got[1].Tags) != 1 || got[1].Tags[0] != (Tag{"Name", "web"}) {
		t.Fatalf("ReservationInstances = %+v, %v", got, err)
	}
	if got, err := s.ReservationInstances(ctx, "444455556666", mine[0].ReservationID); err != nil || len(got) != 0 {
		t.Errorf("another account's reservation: %v, %v", got, err)
	}
}
