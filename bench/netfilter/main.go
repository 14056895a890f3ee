// Command netfilter measures how long a security-group change takes to be
// in force with many groups: the time from a changed nft.Spec to the
// kernel holding the table that implements it (nft.Sync: build, compare
// with the kernel's table, replace it in one batch), against a baseline
// in the same run: the same ruleset applied where there is no table yet.
//
// It runs as root in a fresh network namespace (run.sh starts it under
// unshare -n; it refuses a namespace with any link but loopback), so the
// host's rules are never touched. It does not lock its thread into a
// namespace of its own: a locked thread makes each of the batch's
// thousands of netlink acknowledgements a thread handoff, ten times the
// cost, which the cluster controller, running in the host's namespace,
// never pays. Usage:
//
//	bench/netfilter/run.sh [-groups 1000] [-rules 10] [-members 2] [-runs 7]
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/euca-cloud/euca/netmode/nft"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func main() {
	groups := flag.Int("groups", 1000, "security groups")
	rules := flag.Int("rules", 10, "ingress rules per group (and the allow-all egress rule)")
	members := flag.Int("members", 2, "instances per group")
	runs := flag.Int("runs", 7, "measurements of each kind (the median is reported)")
	prof := flag.String("cpuprofile", "", "write a CPU profile")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		check(err)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "netfilter: needs root (a network namespace of its own)")
		os.Exit(2)
	}
	// Started by run.sh under unshare -n: refuse a namespace that has
	// anything but loopback, which would be someone's real network.
	links, err := netlink.LinkList()
	check(err)
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		check(fmt.Errorf("run me in a fresh network namespace (bench/netfilter/run.sh): this one has %d links", len(links)))
	}

	a := spec(*groups, *rules, *members, 0)
	b := spec(*groups, *rules, *members, 1)
	launched := spec(*groups, *rules, *members, 2)
	rs, err := nft.Build(a)
	check(err)
	fmt.Printf("netfilter: %d groups x %d rules, %d instances: %d chains, %d rules in the table\n",
		*groups, *rules, *groups**members, len(rs.Chains), len(rs.Rules))

	c, err := nftables.New()
	check(err)
	var empty, change, launch, build []time.Duration
	for range *runs {
		check(nft.Remove(c, nft.TableName))
		empty = append(empty, timed(a))
	}
	for i := range *runs {
		s := a
		if i%2 == 0 {
			s = b
		}
		t0 := time.Now()
		_, err := nft.Build(s)
		check(err)
		build = append(build, time.Since(t0))
		change = append(change, timed(s))
	}
	for i := range *runs {
		s := a
		if i%2 == 0 {
			s = launched
		}
		launch = append(launch, timed(s))
	}
	check(nft.Remove(c, nft.TableName))
	me, mc, ml := median(empty), median(change), median(launch)
	fmt.Printf("baseline: the ruleset into an empty namespace   %8.1f ms\n", ms(me))
	fmt.Printf("one rule changed, in force (Sync returned)      %8.1f ms  (%.2fx the baseline; building the ruleset %.1f ms of it)\n",
		ms(mc), float64(mc)/float64(me), ms(median(build)))
	fmt.Printf("one instance launched into a group, in force     %8.1f ms  (%.2fx the baseline)\n", ms(ml), float64(ml)/float64(me))
}

// timed syncs s and returns how long until the kernel held it.
func timed(s nft.Spec) time.Duration {
	t0 := time.Now()
	_, changed, err := nft.Sync(s)
	d := time.Since(t0)
	check(err)
	if !changed {
		check(fmt.Errorf("the kernel already held the spec: nothing was measured"))
	}
	return d
}

// spec is a cloud of n groups, each with members instances and rules
// ingress rules: a CIDR rule per port range, and every fifth rule naming
// the next group as its source (its members, as netmode hands them over). Variant 1
// changes one port of one rule of the middle group, variant 2 launches
// one more instance into it (a peer of the group before it).
func spec(n, rules, members, variant int) nft.Spec {
	s := nft.Spec{Bridges: []string{"euca-br0"}, Subnet: netip.MustParsePrefix("10.0.0.0/8"), Filter: true,
		Metadata: netip.MustParseAddrPort("127.0.0.1:8773"), Masquerade: true}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	if variant == 2 {
		i := 2 + n*members
		s.Instances = append(s.Instances, nft.Instance{ID: fmt.Sprintf("i-%08x", i), Addr: addr(i), Groups: []string{fmt.Sprintf("sg-%05d", n/2)}})
	}
	for g := range n {
		for m := range members {
			i := 2 + g*members + m
			s.Instances = append(s.Instances, nft.Instance{ID: fmt.Sprintf("i-%08x", i), Addr: addr(i), Groups: []string{fmt.Sprintf("sg-%05d", g)}})
		}
	}
	for g := range n {
		grp := nft.Group{ID: fmt.Sprintf("sg-%05d", g),
			Egress: []nft.Rule{{Proto: -1, FromPort: -1, ToPort: -1, Peers: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}}}
		for r := range rules {
			port := 1000 + r*10
			if variant == 1 && g == n/2 && r == 0 {
				port++
			}
			rule := nft.Rule{Proto: unix.IPPROTO_TCP, FromPort: port, ToPort: port + 5}
			if r%5 == 4 {
				rule.PeerGroup = fmt.Sprintf("sg-%05d", (g+1)%n)
			} else {
				rule.Peers = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(g % 256), byte(r * 16)}), 28)}
			}
			grp.Ingress = append(grp.Ingress, rule)
		}
		s.Groups = append(s.Groups, grp)
	}
	return s
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "netfilter:", err)
		os.Exit(1)
	}
}
