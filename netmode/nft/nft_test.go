package nft

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

// spec is a small cloud: one bridge, one instance with an elastic IP in
// group sg-1, which admits TCP 1000-2000 from 10.0.0.0/9 and pings from
// anywhere, and lets out DNS to 10.0.0.0/9 and everything anywhere.
func spec() Spec {
	return Spec{
		Bridges:    []string{"euca-br0"},
		Subnet:     mp("172.31.0.0/16"),
		Metadata:   netip.MustParseAddrPort("172.31.0.1:8773"),
		Masquerade: true,
		NAT:        []OneToOne{{Public: ma("10.99.0.100"), Private: ma("172.31.0.5")}},
		Filter:     true,
		Instances:  []Instance{{ID: "i-1", Addr: ma("172.31.0.5"), Groups: []string{"sg-1"}}},
		Groups: []Group{{ID: "sg-1", Ingress: []Rule{
			{Proto: unix.IPPROTO_TCP, FromPort: 1000, ToPort: 2000, Peers: []netip.Prefix{mp("10.0.0.0/9")}},
			{Proto: unix.IPPROTO_ICMP, FromPort: 8, ToPort: -1, Peers: []netip.Prefix{mp("0.0.0.0/0")}},
		}, Egress: []Rule{
			{Proto: unix.IPPROTO_UDP, FromPort: 53, ToPort: 53, Peers: []netip.Prefix{mp("10.0.0.0/9")}},
			{Proto: -1, FromPort: -1, ToPort: -1, Peers: []netip.Prefix{mp("0.0.0.0/0")}},
		}}},
	}
}

func mustBuild(t *testing.T, s Spec) *Ruleset {
	t.Helper()
	rs, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// marshal returns the netlink payload google/nftables sends for r, after
// the 16-byte header, as tailscale's tests capture it.
func marshal(t *testing.T, r *nftables.Rule) []byte {
	t.Helper()
	var msgs [][]byte
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, b[16:])
		}
		return nil, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	c.AddRule(r)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 { // batch begin, the rule, batch end
		t.Fatalf("%d messages", len(msgs))
	}
	return msgs[1]
}

var commentRe = regexp.MustCompile(`comment "([^"]*)"$`)

// TestSameBytesAsNft: the rules carry the very bytes nft itself sends for
// the same rule written in its language (testdata/nft-golden.txt), so they
// mean what their comments say.
func TestSameBytesAsNft(t *testing.T) {
	f, err := os.Open("testdata/nft-golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs := mustBuild(t, spec())
	// The guard chain comes with a metadata listener on loopback.
	lo := spec()
	lo.Metadata = netip.MustParseAddrPort("127.0.0.1:8779")
	for _, r := range mustBuild(t, lo).Rules {
		if r.Chain.Name == ChainGuard {
			rs.Rules = append(rs.Rules, r)
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		chain, text, _ := strings.Cut(line, "\t")
		if !sc.Scan() {
			t.Fatal("golden file ends without hex")
		}
		var want []byte
		if _, err := fmt.Sscanf(sc.Text(), "%x", &want); err != nil {
			t.Fatal(err)
		}
		comment := commentRe.FindStringSubmatch(text)[1]
		var rule *nftables.Rule
		for _, r := range rs.Rules {
			if r.Chain.Name == chain && Comment(r) == comment {
				rule = r
			}
		}
		if rule == nil {
			t.Errorf("no rule %q in chain %s; have %q", comment, chain, rs.Comments(chain))
			continue
		}
		if got := marshal(t, rule); !bytes.Equal(got, want) {
			t.Errorf("%s %q:\n got  %x\n want %x", chain, comment, got, want)
		}
		n++
	}
	if n < 26 {
		t.Fatalf("only %d golden rules", n)
	}
}

// TestGuard: a metadata listener on loopback brings the guard chain,
// before the DNAT, dropping what the bridges address to loopback or send
// from it; one elsewhere does not need it.
func TestGuard(t *testing.T) {
	s := spec()
	s.Bridges = []string{"euca-br1", "euca-br0"}
	s.Metadata = netip.MustParseAddrPort("127.0.0.1:8779")
	rs := mustBuild(t, s)
	var guard *nftables.Chain
	for _, c := range rs.Chains {
		if c.Name == ChainGuard {
			guard = c
		}
	}
	if guard == nil || guard.Type != nftables.ChainTypeFilter || *guard.Hooknum != *nftables.ChainHookPrerouting ||
		*guard.Priority >= *nftables.ChainPriorityNATDest {
		t.Fatalf("guard chain %+v: want a filter chain on prerouting before the DNAT", guard)
	}
	if got := rs.Comments(ChainGuard); !slices.Equal(got, []string{"nothing to loopback from euca-br0", "nothing from loopback on euca-br0",
		"nothing to loopback from euca-br1", "nothing from loopback on euca-br1"}) {
		t.Errorf("guard rules %q", got)
	}
	for _, c := range mustBuild(t, spec()).Chains {
		if c.Name == ChainGuard {
			t.Error("guard chain without a loopback listener")
		}
	}
}

func TestComments(t *testing.T) {
	rs := mustBuild(t, spec())
	want := map[string][]string{
		ChainPrerouting:  {"metadata from euca-br0 to 172.31.0.1:8773", "elastic 10.99.0.100 to 172.31.0.5"},
		ChainOutput:      {"elastic 10.99.0.100 to 172.31.0.5 from the host"},
		ChainPostrouting: {"metadata to 172.31.0.1:8773 keeps its source", "elastic 10.99.0.100 from 172.31.0.5", "masquerade 172.31.0.0/16"},
		ChainForward: {"no 172.31.0.0/16 from outside", "established", "invalid", "metadata", "metadata at 172.31.0.1:8773", "dhcp broadcast to a server", "dhcp broadcast answers", "no broadcast", "no multicast", "no IPv6 to euca-br0",
			"no IPv6 from euca-br0", "from the instances", "towards the instances"},
		ChainToInstances: {"to the instances", "nothing else new to 172.31.0.0/16", "elsewhere"},
		ChainHostOutput:  {"established", "to itself", "dhcp answers", "towards the instances"},
		"group-sg-1":     {"tcp 1000-2000 from 10.0.0.0/9", "icmp type 8 from 0.0.0.0/0"},
		"out-group-sg-1": {"udp 53-53 to 10.0.0.0/9", "all to 0.0.0.0/0"},
		"inst-i-1":       {"group sg-1", "default drop"},
		"out-inst-i-1":   {"group sg-1", "default drop"},
	}
	var names []string
	for _, c := range rs.Chains {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"prerouting", "output", "postrouting", "forward", "to-instances", "host-output",
		"group-sg-1", "out-group-sg-1", "inst-i-1", "out-inst-i-1"}) {
		t.Errorf("chains %v", names)
	}
	for chain, w := range want {
		if got := rs.Comments(chain); !slices.Equal(got, w) {
			t.Errorf("%s:\n got  %q\n want %q", chain, got, w)
		}
	}
	for _, r := range rs.Rules {
		if c := Comment(r); len(c) > 127 {
			t.Errorf("comment longer than nft shows: %q", c)
		}
	}
}

// TestRuleExprs: one security-group rule per row, against the expressions
// expected (the tailscale way, without root).
func TestRuleExprs(t *testing.T) {
	ip4 := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
	proto := func(p byte) []expr.Any {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}}}
	}
	saddr := func(n uint32, data ...byte) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: n},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
		}
	}
	th := func(off uint32, n uint32) expr.Any {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
	}
	eq := func(b ...byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	for _, tc := range []struct {
		name string
		rule Rule
		src  string
		text string
		want []expr.Any // nil: no rule
	}{
		{"ssh from anywhere", Rule{Proto: 6, FromPort: 22, ToPort: 22}, "0.0.0.0/0", "tcp 22-22 from 0.0.0.0/0",
			concat(ip4, proto(6), []expr.Any{th(2, 2), eq(0, 22), accept})},
		{"dns from a /24", Rule{Proto: 17, FromPort: 53, ToPort: 53}, "192.168.7.0/24", "udp 53-53 from 192.168.7.0/24",
			concat(ip4, saddr(3, 192, 168, 7), proto(17), []expr.Any{th(2, 2), eq(0, 53), accept})},
		{"all tcp ports", Rule{Proto: 6, FromPort: 0, ToPort: 65535}, "10.1.2.3/32", "tcp from 10.1.2.3/32",
			concat(ip4, saddr(4, 10, 1, 2, 3), proto(6), []expr.Any{accept})},
		{"every protocol", Rule{Proto: -1, FromPort: -1, ToPort: -1}, "10.1.2.3/32", "all from 10.1.2.3/32",
			concat(ip4, saddr(4, 10, 1, 2, 3), []expr.Any{accept})},
		{"gre", Rule{Proto: 47, FromPort: -1, ToPort: -1}, "0.0.0.0/0", "47 from 0.0.0.0/0",
			concat(ip4, proto(47), []expr.Any{accept})},
		{"icmp echo code 0", Rule{Proto: 1, FromPort: 8, ToPort: 0}, "0.0.0.0/0", "icmp type 8 code 0 from 0.0.0.0/0",
			concat(ip4, proto(1), []expr.Any{th(0, 1), eq(8), th(1, 1), eq(0), accept})},
		{"all icmp", Rule{Proto: 1, FromPort: -1, ToPort: -1}, "0.0.0.0/0", "icmp from 0.0.0.0/0",
			concat(ip4, proto(1), []expr.Any{accept})},
		{"host bits cleared", Rule{Proto: -1}, "10.1.2.3/8", "all from 10.0.0.0/8",
			concat(ip4, saddr(1, 10), []expr.Any{accept})},
		{"IPv6 source: nothing", Rule{Proto: 6, FromPort: 22, ToPort: 22}, "::/0", "", nil},
		{"ports backwards: nothing", Rule{Proto: 6, FromPort: 30, ToPort: 20}, "0.0.0.0/0", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, text, ok := ruleExprs(tc.rule, mp(tc.src), ingress)
			if tc.want == nil {
				if ok {
					t.Fatalf("rule made: %q", text)
				}
				return
			}
			if text != tc.text {
				t.Errorf("comment %q, want %q", text, tc.text)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("exprs\n got  %#v\n want %#v", got, tc.want)
			}
		})
	}
}

func TestPeerGroupsAndOrder(t *testing.T) {
	s := Spec{
		Bridges: []string{"euca-br0"}, Subnet: mp("172.31.0.0/16"), Filter: true,
		Instances: []Instance{
			{ID: "i-b", Addr: ma("172.31.0.3"), Groups: []string{"sg-web", "sg-gone", "sg-web"}},
			{ID: "i-a", Addr: ma("172.31.0.2"), Groups: []string{"sg-db"}},
		},
		Groups: []Group{
			{ID: "sg-web", Ingress: []Rule{{Proto: 6, FromPort: 80, ToPort: 80, Peers: []netip.Prefix{mp("0.0.0.0/0")}}}},
			// sg-db admits sg-web's members (peers resolved to addresses).
			{ID: "sg-db", Ingress: []Rule{
				{Proto: 6, FromPort: 5432, ToPort: 5432, Peers: []netip.Prefix{mp("172.31.0.3/32"), mp("172.31.0.3/32")}},
				{Proto: 6, FromPort: 22, ToPort: 22}, // a peer group with no members
			}},
		},
	}
	rs := mustBuild(t, s)
	if got := rs.Comments("group-sg-db"); !slices.Equal(got, []string{"tcp 5432-5432 from 172.31.0.3/32"}) {
		t.Errorf("sg-db %q", got)
	}
	if got := rs.Comments("inst-i-b"); !slices.Equal(got, []string{"group sg-web", "default drop"}) {
		t.Errorf("i-b %q (an unknown group admits nothing)", got)
	}
	if got := rs.Comments(ChainForward); !slices.Equal(got, []string{"no 172.31.0.0/16 from outside", "established", "invalid", "metadata", "dhcp broadcast to a server", "dhcp broadcast answers", "no broadcast",
		"no multicast", "no IPv6 to euca-br0",
		"no IPv6 from euca-br0", "from the instances", "towards the instances"}) {
		t.Errorf("forward %q", got)
	}
	if got := rs.Comments(ChainToInstances); !slices.Equal(got, []string{"to the instances",
		"nothing else new to 172.31.0.0/16", "elsewhere"}) {
		t.Errorf("to-instances %q", got)
	}
	for _, m := range rs.Maps {
		want := []string{"172.31.0.2 -4 inst-i-a", "172.31.0.3 -4 inst-i-b"}
		if m.Set.Name == MapFromInstances {
			want = []string{"172.31.0.2 -4 out-inst-i-a", "172.31.0.3 -4 out-inst-i-b"}
		}
		if got := m.Texts(); !slices.Equal(got, want) {
			t.Errorf("map %s %q, want %q", m.Set.Name, got, want)
		}
	}
	if got := rs.Comments(ChainPostrouting); len(got) != 0 {
		t.Errorf("no NAT asked for, got %q", got)
	}

	// The same state listed in another order builds the same ruleset.
	s2 := s
	s2.Instances = []Instance{s.Instances[1], s.Instances[0]}
	s2.Groups = []Group{s.Groups[1], s.Groups[0]}
	if !shapeOf(mustBuild(t, s2)).equal(shapeOf(rs)) {
		t.Error("order changed the ruleset")
	}
	for i := range rs.Rules {
		if !bytes.Equal(marshal(t, rs.Rules[i]), marshal(t, mustBuild(t, s2).Rules[i])) {
			t.Errorf("rule %d differs", i)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for name, mutate := range map[string]func(*Spec){
		"IPv6 subnet":        func(s *Spec) { s.Subnet = mp("fd00::/64") },
		"NAT without subnet": func(s *Spec) { s.Subnet = netip.Prefix{} },
		"instance outside":   func(s *Spec) { s.Instances[0].Addr = ma("10.0.0.1") },
		"shared address":     func(s *Spec) { s.Instances = append(s.Instances, Instance{ID: "i-2", Addr: ma("172.31.0.5")}) },
		"group twice":        func(s *Spec) { s.Groups = append(s.Groups, s.Groups[0]) },
		"IPv6 metadata":      func(s *Spec) { s.Metadata = netip.MustParseAddrPort("[::1]:80") },
		"IPv6 elastic":       func(s *Spec) { s.NAT[0].Public = ma("2001:db8::1") },
		"instance IPv6 addr": func(s *Spec) { s.Instances[0].Addr = ma("::1") },
	} {
		s := spec()
		mutate(&s)
		if _, err := Build(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestKernelApply: against the kernel, in a fresh namespace: the table is
// made, a second Apply sends nothing (the rule handles stay), a change
// replaces it, Remove deletes it, and the rules read back are the rules
// sent.
func TestKernelApply(t *testing.T) {
	ns := nstest.New(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	rs := mustBuild(t, spec())
	if changed, err := Apply(c, rs); err != nil || !changed {
		t.Fatalf("Apply = %v, %v", changed, err)
	}
	handles := func() map[string]uint64 {
		t.Helper()
		out := map[string]uint64{}
		tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
		for _, ch := range rs.Chains {
			rules, err := c.GetRules(tbl, ch)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules {
				out[ch.Name+"/"+Comment(r)] = r.Handle
			}
		}
		return out
	}
	before := handles()
	if len(before) != len(rs.Rules) {
		t.Fatalf("kernel holds %d rules, built %d", len(before), len(rs.Rules))
	}
	if changed, err := Apply(c, mustBuild(t, spec())); err != nil || changed {
		t.Fatalf("second Apply = %v, %v", changed, err)
	}
	if after := handles(); !reflect.DeepEqual(before, after) {
		t.Errorf("second Apply touched the rules:\n%v\n%v", before, after)
	}

	// What the kernel holds is what was sent, expression by expression.
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	for _, ch := range rs.Chains {
		got, err := c.GetRules(tbl, ch)
		if err != nil {
			t.Fatal(err)
		}
		var want []*nftables.Rule
		for _, r := range rs.Rules {
			if r.Chain.Name == ch.Name {
				want = append(want, r)
			}
		}
		for i := range want {
			if i < len(got) && !reflect.DeepEqual(got[i].Exprs, kernelForm(want[i].Exprs)) {
				t.Errorf("%s rule %q reads back as\n%s\nnot\n%s", ch.Name, Comment(want[i]), dump(got[i].Exprs), dump(want[i].Exprs))
			}
		}
	}

	s := spec()
	s.Instances = nil
	if changed, err := Apply(c, mustBuild(t, s)); err != nil || !changed {
		t.Fatalf("Apply after a change = %v, %v", changed, err)
	}
	if _, ok := handles()["inst-i-1/default drop"]; ok {
		t.Error("the removed instance's chain is still there")
	}
	if err := Remove(c, TableName); err != nil {
		t.Fatal(err)
	}
	if ok, err := Exists(c, TableName); err != nil || ok {
		t.Fatalf("table still there: %v %v", ok, err)
	}
	if err := Remove(c, TableName); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func dump(es []expr.Any) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %T %+v\n", e, e)
	}
	return b.String()
}

// kernelForm is how the kernel reports exprs back: a NAT range with no
// maximum register reads back with the minimum's.
func kernelForm(es []expr.Any) []expr.Any {
	out := slices.Clone(es)
	for i, e := range out {
		if n, ok := e.(*expr.NAT); ok {
			c := *n
			if c.RegAddrMax == 0 {
				c.RegAddrMax = c.RegAddrMin
			}
			if c.RegProtoMax == 0 {
				c.RegProtoMax = c.RegProtoMin
			}
			out[i] = &c
		}
		if l, ok := e.(*expr.Lookup); ok { // a batch's set id is not kept
			c := *l
			c.SetID = 0
			out[i] = &c
		}
	}
	return out
}

// TestHost: a node's table lets the cloud's own address (the gateway)
// through before any group decides, both ways; without Host there is no
// such rule (the gateway's own host never forwards its traffic).
func TestHost(t *testing.T) {
	s := spec()
	s.Table = NodeTableName
	s.Host = []netip.Addr{netip.MustParseAddr("172.31.0.1"), netip.MustParseAddr("172.31.0.1")}
	rs := mustBuild(t, s)
	if rs.Table.Name != NodeTableName {
		t.Errorf("table %s", rs.Table.Name)
	}
	want := []string{"no 172.31.0.0/16 from outside", "established", "invalid", "from the host 172.31.0.1", "to the host 172.31.0.1", "metadata",
		"metadata at 172.31.0.1:8773", "dhcp broadcast to a server", "dhcp broadcast answers", "no broadcast", "no multicast", "no IPv6 to euca-br0", "no IPv6 from euca-br0", "from the instances", "towards the instances"}
	if got := rs.Comments(ChainForward); !slices.Equal(got, want) {
		t.Errorf("forward:\n got  %q\n want %q", got, want)
	}
	s.Host = []netip.Addr{netip.MustParseAddr("::1")}
	if _, err := Build(s); err == nil {
		t.Error("an IPv6 host address accepted")
	}
}

// forget drops what this process remembers of the tables it wrote, as a
// restarted process has it.
func forget() {
	applied.Lock()
	applied.shape, applied.order = nil, nil
	applied.Unlock()
}

// TestKernelApplyDiff: a change to one group is sent as that group's
// chain alone (the other chains' rules keep their handles), a removed
// group's and instance's chains go, the table carries one digest; a
// process that does not know the digest reads the table whole, adopting
// it as it is and putting back what was changed by hand.
func TestKernelApplyDiff(t *testing.T) {
	ns := nstest.New(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	s := spec()
	s.Instances = append(s.Instances, Instance{ID: "i-2", Addr: ma("172.31.0.6"), Groups: []string{"sg-2"}})
	s.Groups = append(s.Groups, Group{ID: "sg-2", Ingress: []Rule{{Proto: 6, FromPort: 22, ToPort: 22, Peers: []netip.Prefix{mp("10.0.0.0/8")}}}})
	apply := func(s Spec, wantChanged bool) {
		t.Helper()
		if changed, err := Apply(c, mustBuild(t, s)); err != nil || changed != wantChanged {
			t.Fatalf("Apply = %v, %v; want changed %v", changed, err, wantChanged)
		}
	}
	// holds checks the kernel holds s, rule by rule, under one digest.
	holds := func(s Spec) {
		t.Helper()
		forget()
		got, digest, err := load(c, nftables.TableFamilyINet, TableName)
		if err != nil {
			t.Fatal(err)
		}
		want := shapeOf(mustBuild(t, s))
		if !got.equal(want) || digest != want.digest() {
			t.Fatalf("kernel holds\n%v (digest %s)\nwant\n%v (digest %s)", got, digest, want, want.digest())
		}
	}
	apply(s, true)
	holds(s)
	before := nstest.RuleHandles(t, ns, TableName)

	s2 := s
	s2.Groups = slices.Clone(s.Groups)
	// One more rule: the table made whole would shift every later handle.
	s2.Groups[1].Ingress = []Rule{{Proto: 6, FromPort: 2222, ToPort: 2222, Peers: []netip.Prefix{mp("10.0.0.0/8")}},
		{Proto: 17, FromPort: 53, ToPort: 53, Peers: []netip.Prefix{mp("10.0.0.0/8")}}}
	apply(s2, true)
	holds(s2)
	after := nstest.RuleHandles(t, ns, TableName)
	for k, h := range before {
		if !strings.HasPrefix(k, GroupChain("sg-2")+"/") && after[k] != h {
			t.Errorf("rule %s of an unchanged chain was replaced (handle %d -> %d)", k, h, after[k])
		}
	}
	if _, ok := after[GroupChain("sg-2")+"/tcp 2222-2222 from 10.0.0.0/8"]; !ok {
		t.Errorf("the changed rule is not in the kernel: %v", after)
	}

	apply(spec(), true) // i-2 and sg-2 gone
	holds(spec())
	for k := range nstest.RuleHandles(t, ns, TableName) {
		if strings.Contains(k, "sg-2") || strings.Contains(k, "i-2") {
			t.Errorf("rule %s of a removed group or instance", k)
		}
	}

	// A restarted process reads the table whole and adopts it...
	forget()
	apply(spec(), false)
	// ...or puts back what was changed by hand.
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	c.AddRule(&nftables.Rule{Table: tbl, Chain: &nftables.Chain{Name: GroupChain("sg-1"), Table: tbl},
		Exprs: verdict(expr.VerdictAccept), UserData: userdata.AppendString(nil, userdata.TypeComment, "by hand")})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	forget()
	apply(spec(), true)
	holds(spec())
}

// TestOperatorLAN: without the cloud's subnet (guests on the operator's
// LAN: STATIC, SYSTEM) the groups decide for the instances alone, and the
// LAN's other addresses are not dropped.
func TestOperatorLAN(t *testing.T) {
	s := spec()
	s.Subnet, s.NAT, s.Masquerade, s.Metadata = netip.Prefix{}, nil, false, netip.AddrPort{}
	s.Instances[0].Addr = ma("192.168.1.77")
	rs := mustBuild(t, s)
	if got := rs.Comments(ChainToInstances); !slices.Equal(got, []string{"to the instances", "elsewhere"}) {
		t.Errorf("to-instances %q", got)
	}
	if got := rs.Comments("inst-i-1"); !slices.Equal(got, []string{"group sg-1", "default drop"}) {
		t.Errorf("inst-i-1 %q", got)
	}
}

// TestKernelScale: a table of 2,000 groups of 5 rules and as many
// instances goes into the kernel and reads back whole: its batch is past
// the default socket buffers, and its maps' elements past what one netlink
// attribute holds.
func TestKernelScale(t *testing.T) {
	ns := nstest.New(t)
	s := Spec{Bridges: []string{"euca-br0"}, Subnet: mp("10.0.0.0/8"), Filter: true}
	for i := range 2000 {
		g := fmt.Sprintf("sg-%04d", i)
		s.Instances = append(s.Instances, Instance{ID: fmt.Sprintf("i-%04d", i), Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Groups: []string{g}})
		grp := Group{ID: g, Egress: []Rule{{Proto: -1, FromPort: -1, ToPort: -1, Peers: []netip.Prefix{mp("0.0.0.0/0")}}}}
		for r := range 5 {
			grp.Ingress = append(grp.Ingress, Rule{Proto: 6, FromPort: 1000 + r, ToPort: 1000 + r, Peers: []netip.Prefix{mp("192.168.0.0/16")}})
		}
		s.Groups = append(s.Groups, grp)
	}
	rs := mustBuild(t, s)
	// Not from a thread locked into ns (nstest.Do): each of the batch's
	// acknowledgements would cost a thread handoff.
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.WithSockOptions(rs.Buffers()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(c, rs); err != nil {
		t.Fatal(err)
	}
	forget()
	got, _, err := load(c, nftables.TableFamilyINet, TableName)
	if err != nil {
		t.Fatal(err)
	}
	if want := shapeOf(rs); !got.equal(want) {
		t.Fatalf("the kernel holds %d chains and maps, built %d", len(got), len(want))
	}
	if n := len(got[mapKey(MapToInstances)].comments); n != 2000 {
		t.Errorf("%d elements in %s", n, MapToInstances)
	}
}

// TestKernelPeerSets: a rule naming a group matches the set of its
// members; a launch into that group changes the set's elements and not
// the rules; a set no rule names any more goes, in a diff.
func TestKernelPeerSets(t *testing.T) {
	ns := nstest.New(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	s := Spec{Bridges: []string{"euca-br0"}, Subnet: mp("172.31.0.0/16"), Filter: true,
		Instances: []Instance{
			{ID: "i-1", Addr: ma("172.31.0.5"), Groups: []string{"sg-1"}},
			{ID: "i-2", Addr: ma("172.31.0.6"), Groups: []string{"sg-2"}},
		},
		Groups: []Group{{ID: "sg-1"}, {ID: "sg-2", Ingress: []Rule{{Proto: 6, FromPort: 22, ToPort: 22, PeerGroup: "sg-1"}}}},
	}
	apply := func(s Spec) map[string]uint64 {
		t.Helper()
		if _, err := Apply(c, mustBuild(t, s)); err != nil {
			t.Fatal(err)
		}
		forget()
		got, _, err := load(c, nftables.TableFamilyINet, TableName)
		if err != nil {
			t.Fatal(err)
		}
		if want := shapeOf(mustBuild(t, s)); !got.equal(want) {
			t.Fatalf("kernel holds\n%v\nwant\n%v", got, want)
		}
		return nstest.RuleHandles(t, ns, TableName)
	}
	before := apply(s)
	rule := GroupChain("sg-2") + "/tcp 22-22 from group sg-1"
	if before[rule] == 0 {
		t.Fatalf("no rule %s: %v", rule, before)
	}
	s.Instances = append(s.Instances, Instance{ID: "i-3", Addr: ma("172.31.0.7"), Groups: []string{"sg-1"}})
	after := apply(s)
	if after[rule] != before[rule] {
		t.Errorf("a launch into sg-1 replaced the rule naming it (handle %d -> %d)", before[rule], after[rule])
	}
	s.Groups[1].Ingress[0].PeerGroup = "sg-3"
	last := slices.Max(slices.Collect(maps.Values(after)))
	after = apply(s)
	// Added to the table as it was, the new rule's handle is past every
	// earlier one (a table made whole numbers its rules from the start).
	if h := after[GroupChain("sg-2")+"/tcp 22-22 from group sg-3"]; h <= last {
		t.Errorf("the table was made whole for a set made and one deleted (new rule's handle %d, the last was %d)", h, last)
	}
	sets, err := c.GetSets(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range sets {
		if set.Name == MembersSet("sg-1") {
			t.Error("the set of sg-1, which no rule names any more, is still there")
		}
	}
}

// TestEgressExprs: an egress rule matches the destination and goes on to
// the destination's ingress side; a rule naming a group looks its
// members up in the group's set.
func TestEgressExprs(t *testing.T) {
	got, text, ok := ruleExprs(Rule{Proto: 6, FromPort: 443, ToPort: 443}, mp("10.1.2.0/24"), egress)
	want := concat(ipv4(), addr(offDaddr, expr.CmpOpEq, mp("10.1.2.0/24")), l4(6), port(offDport, 443, 443),
		verdict(expr.VerdictGoto, ChainToInstances))
	if !ok || text != "tcp 443-443 to 10.1.2.0/24" || !reflect.DeepEqual(got, want) {
		t.Errorf("egress rule %q:\n got  %#v\n want %#v", text, got, want)
	}
	rs := mustBuild(t, Spec{Subnet: mp("172.31.0.0/16"), Filter: true,
		Instances: []Instance{{ID: "i-1", Addr: ma("172.31.0.5"), Groups: []string{"sg-1"}}},
		Groups:    []Group{{ID: "sg-1", Egress: []Rule{{Proto: 17, FromPort: 53, ToPort: 53, PeerGroup: "sg-1"}}}}})
	var rule *nftables.Rule
	for _, r := range rs.Rules {
		if r.Chain.Name == GroupEgressChain("sg-1") {
			rule = r
		}
	}
	if rule == nil || Comment(rule) != "udp 53-53 to group sg-1" {
		t.Fatalf("egress rule naming a group: %v", rs.Comments(GroupEgressChain("sg-1")))
	}
	lookup, ok := rule.Exprs[3].(*expr.Lookup)
	if p, isPayload := rule.Exprs[2].(*expr.Payload); !isPayload || p.Offset != offDaddr || !ok || lookup.SetName != MembersSet("sg-1") {
		t.Errorf("egress rule naming a group: %s", dump(rule.Exprs))
	}
}
