package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func init() {
	tableSeeds["clc_segments"] = []string{
		`INSERT INTO clc_segments (zone, segment, group_id, assigned_ms) VALUES ('us-euca-1a', 3, 'sg-0123456789abcdef0', 12)`,
	}
}

// segmentStore is instanceStore with groups sg-0 … sg-(n-1) besides sg-1's
// "web".
func segmentStore(t *testing.T, n int) *Store {
	t.Helper()
	s := instanceStore(t)
	if err := s.tx(context.Background(), func(tx *sql.Tx) error {
		for i := 0; i < n; i++ {
			if _, err := tx.Exec(`INSERT INTO security_groups (id, account_id, vpc_id, name, description, created_ms) VALUES (?, '111122223333', 'vpc-1', ?, 'd', 1)`,
				fmt.Sprintf("sg-g%d", i), fmt.Sprintf("g%d", i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

var launchSeq atomic.Int64

// segAlloc gives the next address of 10.<segment>.0.0/24, and says which
// segment it was asked for.
func segAlloc(used []netip.Addr, _ []string, segment int) (netip.Addr, string, error) {
	taken := map[netip.Addr]bool{}
	for _, a := range used {
		taken[a] = true
	}
	for a := netip.AddrFrom4([4]byte{10, byte(segment), 0, 2}); a.As4()[3] < 255; a = a.Next() {
		if !taken[a] {
			return a, fmt.Sprintf("seg-%d", segment), nil
		}
	}
	return netip.Addr{}, "", errors.New("exhausted")
}

// launchInGroup launches n instances whose first group is group, into the
// segments r of zone.
func launchInGroup(s *Store, zone, group string, n int, r SegmentRange) ([]Instance, error) {
	k := launchSeq.Add(1)
	var insts []Instance
	for i := 0; i < n; i++ {
		insts = append(insts, Instance{ID: fmt.Sprintf("i-seg-%d-%d", k, i), ImageID: "emi-1", InstanceType: "m1.small", Zone: zone,
			SubnetID: "subnet-1", VPCID: "vpc-1", ENIID: "eni-1", State: InstancePending,
			Groups: []GroupRef{{ID: group, Name: group}, {ID: "sg-1", Name: "web"}}})
	}
	return s.LaunchInstances(context.Background(), Reservation{ID: fmt.Sprintf("r-seg-%d", k), AccountID: "111122223333"}, insts, r, segAlloc)
}

func segmentOf(t *testing.T, insts []Instance) int {
	t.Helper()
	var seg int
	if _, err := fmt.Sscanf(insts[0].MAC, "seg-%d", &seg); err != nil {
		t.Fatalf("MAC %q: %v", insts[0].MAC, err)
	}
	return seg
}

func TestSegmentsAssignedAndFreed(t *testing.T) {
	ctx := context.Background()
	s := segmentStore(t, 3)
	r := SegmentRange{First: 4, Count: 2}
	a, err := launchInGroup(s, "z1", "sg-g0", 2, r)
	if err != nil || segmentOf(t, a) != 4 || a[1].PrivateIP != "10.4.0.3" {
		t.Fatalf("first group: %+v %v", a, err)
	}
	// The same group again: its segment. Another: the next. A third: none left.
	if a2, err := launchInGroup(s, "z1", "sg-g0", 1, r); err != nil || segmentOf(t, a2) != 4 || a2[0].PrivateIP != "10.4.0.4" {
		t.Fatalf("same group: %+v %v", a2, err)
	}
	b, err := launchInGroup(s, "z1", "sg-g1", 1, r)
	if err != nil || segmentOf(t, b) != 5 {
		t.Fatalf("second group: %+v %v", b, err)
	}
	if _, err := launchInGroup(s, "z1", "sg-g2", 1, r); !errors.Is(err, ErrNoSegment) {
		t.Fatalf("third group in two segments: %v", err)
	}
	// A group that is only a second group holds nothing; another zone's
	// segments are its own.
	if c, err := launchInGroup(s, "z2", "sg-g2", 1, r); err != nil || segmentOf(t, c) != 4 {
		t.Fatalf("other zone: %+v %v", c, err)
	}
	got, err := s.ZoneSegments(ctx, "z1")
	if err != nil || len(got) != 2 || got["sg-g0"] != 4 || got["sg-g1"] != 5 {
		t.Fatalf("zone segments %v %v", got, err)
	}

	// sg-g0's instances end, one at a time: it keeps its segment while one
	// lives, and gives it up with the last.
	for i, in := range append(a, mustInstancesOf(t, s, "sg-g0", a)...) {
		if ok, err := s.SetInstanceState(ctx, in.ID, nil, StateChange{State: InstanceTerminated}); !ok || err != nil {
			t.Fatal(i, ok, err)
		}
		got, _ := s.ZoneSegments(ctx, "z1")
		if _, held := got["sg-g0"]; held != (i < 2) {
			t.Fatalf("after %d of 3 ended: %v", i+1, got)
		}
	}
	c, err := launchInGroup(s, "z1", "sg-g2", 1, r)
	if err != nil || segmentOf(t, c) != 4 || c[0].PrivateIP != "10.4.0.2" {
		t.Fatalf("freed segment not reused: %+v %v", c, err)
	}
	// A changed range (another VNET_ADDRSPERNET): a group takes a segment in it.
	if d, err := launchInGroup(s, "z1", "sg-g1", 1, SegmentRange{First: 0, Count: 2}); err != nil || segmentOf(t, d) != 0 {
		t.Fatalf("new range: %+v %v", d, err)
	}

	// Deleting a group takes its row with it.
	for _, in := range c {
		if _, err := s.SetInstanceState(ctx, in.ID, nil, StateChange{State: InstanceTerminated}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSecurityGroup(ctx, "111122223333", "sg-g2"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.r.QueryRow(`SELECT count(*) FROM clc_segments WHERE group_id = 'sg-g2'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows of a deleted group: %d %v", n, err)
	}
}

// mustInstancesOf are the live instances whose first group is group, other
// than those in except.
func mustInstancesOf(t *testing.T, s *Store, group string, except []Instance) []Instance {
	t.Helper()
	all, err := s.ZoneInstances(context.Background(), "z1")
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{}
	for _, in := range except {
		skip[in.ID] = true
	}
	var out []Instance
	for _, in := range all {
		if !skip[in.ID] && len(in.Groups) > 0 && in.Groups[0].ID == group {
			out = append(out, in)
		}
	}
	return out
}

// TestSegmentsConcurrent: launches at once never give two groups one
// segment, nor one group two, and exactly as many groups as there are
// segments get one.
func TestSegmentsConcurrent(t *testing.T) {
	const groups, segments = 12, 8
	s := segmentStore(t, groups)
	r := SegmentRange{First: 0, Count: segments}
	var mu sync.Mutex
	segOf := map[string]map[int]bool{}
	refused := map[string]bool{}
	var wg sync.WaitGroup
	for g := 0; g < groups; g++ {
		for rep := 0; rep < 3; rep++ {
			wg.Add(1)
			go func(group string) {
				defer wg.Done()
				insts, err := launchInGroup(s, "z1", group, 1, r)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, ErrNoSegment):
					refused[group] = true
				case err != nil:
					t.Error(group, err)
				default:
					if segOf[group] == nil {
						segOf[group] = map[int]bool{}
					}
					var seg int
					fmt.Sscanf(insts[0].MAC, "seg-%d", &seg)
					segOf[group][seg] = true
				}
			}(fmt.Sprintf("sg-g%d", g))
		}
	}
	wg.Wait()
	owner := map[int]string{}
	for g, segs := range segOf {
		if len(segs) != 1 {
			t.Errorf("%s got segments %v", g, segs)
		}
		if refused[g] {
			t.Errorf("%s both got a segment and was refused one", g)
		}
		for seg := range segs {
			if other, dup := owner[seg]; dup {
				t.Errorf("segment %d given to %s and %s", seg, other, g)
			}
			owner[seg] = g
		}
	}
	if len(segOf) != segments || len(refused) != groups-segments {
		t.Errorf("%d groups got segments, %d were refused; want %d and %d", len(segOf), len(refused), segments, groups-segments)
	}
}
