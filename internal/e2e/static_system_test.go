package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netns"
)

// operatorBridge gives a host the bridge an operator of STATIC or SYSTEM
// mode makes on each node (the 1.5 documentation's virbr0, here br0):
// eth0 joins it and the host's address moves onto it.
func operatorBridge(t *testing.T, h *lanHost) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "eth0", "master", "br0"},
		{"addr", "del", h.IP + "/24", "dev", "eth0"},
		{"addr", "add", h.IP + "/24", "dev", "br0"},
		{"link", "set", "br0", "up"},
	} {
		if out, err := h.run(nil, "ip", args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
}

// guestCloud is a front-end (clc, walrus, cc) and one compute host with
// a libvirtd of its own, joined and registered, with the test guest's
// images: what TestStaticMode and TestSystemMode share.
type guestCloud struct {
	fe, n1    *lanHost
	front, nc *lanProc
	env       []string
	try       func(...string) (string, error)
	aws       func(...string) string
	emi       string
}

func newGuestCloud(t *testing.T, l *lan, feConf, nodeConf []string) *guestCloud {
	t.Helper()
	g := &guestCloud{fe: l.host("fe", feConf...), n1: l.host("n1", append(nodeConf, `HYPERVISOR="qemu"`)...)}
	operatorBridge(t, g.n1)
	g.front = g.fe.start("--roles=clc,walrus,cc")
	g.front.waitListening(8773)
	g.env = lanCredentials(t, g.fe)
	g.try, g.aws = lanAWS(t, g.fe, g.env, func() string { return g.front.log.String() })
	g.nc = g.n1.startWithHypervisor("--roles=nc", "--join", lanToken(t, g.fe), "--server", g.fe.IP+":8773")
	g.nc.waitListening(8775)
	if out, err := g.fe.euca("node", "register", g.n1.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "the node up", time.Minute, func() error { return nodesUp(g.fe, g.n1.IP) })
	dir := guestDir(t)
	eki := lanRegister(t, g.fe, g.env, g.aws, filepath.Join(dir, "vmlinuz"), "kernel", "--kernel", "true")
	eri := lanRegister(t, g.fe, g.env, g.aws, filepath.Join(dir, "initrd.img"), "ramdisk", "--ramdisk", "true")
	g.emi = lanRegister(t, g.fe, g.env, g.aws, filepath.Join(dir, "root.img"), "root", "--kernel", eki, "--ramdisk", eri)
	return g
}

// openHTTPD has the default group admit the front-end's address on port
// 80, where the guests' httpd is.
func (g *guestCloud) openHTTPD() {
	g.aws("ec2", "authorize-security-group-ingress", "--group-name", "default", "--protocol", "tcp", "--port", "80", "--cidr", g.fe.IP+"/32")
}

// closedHTTPD fails t if the front-end reaches the guest's httpd.
func (g *guestCloud) closedHTTPD(t *testing.T, ip string) {
	t.Helper()
	if out, err := g.fe.run(nil, "curl", "-sS", "-m", "3", "http://"+ip+"/"); err == nil {
		t.Errorf("the front-end reaches %s's httpd, which the default group does not open to it: %q", ip, out)
	}
}

// instance is what DescribeInstances says of one instance's network.
type instanceNet struct {
	ID, PrivateIP, MAC, State string
}

func (g *guestCloud) describe(t *testing.T, id string) instanceNet {
	t.Helper()
	var out [][]string
	jsonField(t, g.aws("ec2", "describe-instances", "--instance-ids", id, "--query",
		"Reservations[].Instances[].[InstanceId,PrivateIpAddress,NetworkInterfaces[0].MacAddress,State.Name]"), &out)
	if len(out) != 1 || len(out[0]) != 4 {
		t.Fatalf("describe-instances %s: %v", id, out)
	}
	return instanceNet{ID: out[0][0], PrivateIP: out[0][1], MAC: out[0][2], State: out[0][3]}
}

func (g *guestCloud) run(t *testing.T) (string, error) {
	t.Helper()
	out, err := g.try("ec2", "run-instances", "--image-id", g.emi, "--instance-type", "m1.small", "--query", "Instances[0].InstanceId")
	if err != nil {
		return out, err
	}
	var id string
	jsonField(t, out, &id)
	return id, nil
}

// console waits until the guest's console holds marker and returns it.
func (g *guestCloud) console(t *testing.T, id, marker string) string {
	t.Helper()
	var last string
	eventually(t, id+" prints "+marker, 6*time.Minute, func() error {
		var out string
		jsonField(t, g.aws("ec2", "get-console-output", "--instance-id", id, "--latest", "--query", "Output"), &out)
		if b, err := base64.StdEncoding.DecodeString(out); err == nil {
			out = string(b)
		}
		last = out
		if strings.Contains(out, marker) {
			return nil
		}
		return fmt.Errorf("not yet; console ends:\n%s", tail(out, 8))
	})
	return last
}

// reachHTTPD waits until the front-end fetches the guest's index page,
// which holds its instance id.
func (g *guestCloud) reachHTTPD(t *testing.T, ip, id string) {
	t.Helper()
	eventually(t, "the front-end reaches "+id+"'s httpd", time.Minute, func() error {
		out, err := g.fe.run(nil, "curl", "-sS", "-m", "5", "http://"+ip+"/")
		if err != nil || !strings.Contains(out, id) {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
}

func (g *guestCloud) terminate(t *testing.T, id string) {
	t.Helper()
	g.aws("ec2", "terminate-instances", "--instance-ids", id)
	eventually(t, id+" terminated", 2*time.Minute, func() error {
		return wantStates(g.aws, []string{id}, "terminated", 1)
	})
}

func needGuests(t *testing.T) {
	t.Helper()
	needLAN(t)
	Need(t, "aws", "curl", "unzip", "bash", "libvirtd", "virtlogd", "qemu-system-x86_64")
	if !exists(filepath.Join(guestDir(t), "root.img")) {
		Missing(t, "no test guest (make guest-image)")
	}
}

// TestStaticMode runs STATIC from the 1.5 documentation's blocks (its
// front-end's VNET_MACMAP cut to one pair) on a front-end and a compute
// host whose operator put eth0 on the bridge br0: the guest gets the
// mapped MAC and address from the front-end's DHCP with the block's
// router (the LAN's, here the switch: not the front-end), DNS and
// netmask, the metadata service answers it through its node's relay, a second
// launch finds the map exhausted and is refused with
// InsufficientInstanceCapacity, the node filters the guest by its group
// (its httpd reached once the group opens port 80), and the pair is free
// again once the guest is terminated.
func TestStaticMode(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needGuests(t)
	l := newLANNamed(t, "nmd", "10.247.10")
	feConf := docBlock(t, "static-frontend.conf",
		"\n     00:AA:DD:11:CE:FF=192.168.1.4\n …”", "”", // one pair: one guest exhausts the map
		// The LAN's router is the switch, not the front-end: nothing
		// of the cloud is on the guest's way to 169.254.169.254 but
		// its own node.
		"VNET_ROUTER=”192.168.1.1”", "VNET_ROUTER=”10.247.10.254”",
		"192.168.1.", "10.247.10.")
	l.ip("-n", l.prefix+"-sw", "addr", "add", "10.247.10.254/24", "dev", "br0")
	g := newGuestCloud(t, l, feConf, docBlock(t, "static-node.conf", "virbr0", "br0"))

	id, err := g.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.describe(t, id); got.PrivateIP != "10.247.10.3" || got.MAC != "00:aa:dd:11:ce:fe" {
		t.Errorf("instance %+v: want the map's pair 00:aa:dd:11:ce:fe=10.247.10.3", got)
	}
	if out, err := g.run(t); err == nil || !strings.Contains(out, "InsufficientInstanceCapacity") || !strings.Contains(out, "VNET_MACMAP") {
		t.Errorf("a launch with the map exhausted: %v\n%s", err, out)
	}
	console := g.console(t, id, "EUCA-READY")
	for _, want := range []string{"EUCA-NIC mac=00:aa:dd:11:ce:fe", "EUCA-LEASE ip=10.247.10.3 mask=24 router=10.247.10.254 dns=10.247.10.2",
		"EUCA-IMDS v", "EUCA-META instance-id=" + id} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, tail(console, 30))
		}
	}
	// The node filters its guest on the operator's bridge: port 80 is
	// closed to the front-end until the default group opens it.
	g.closedHTTPD(t, "10.247.10.3")
	g.openHTTPD()
	g.reachHTTPD(t, "10.247.10.3", id)
	g.terminate(t, id)
	again, err := g.run(t)
	if err != nil {
		t.Fatalf("the pair is not free after termination: %v", err)
	}
	if got := g.describe(t, again); got.PrivateIP != "10.247.10.3" {
		t.Errorf("after termination: %+v, want the pair again", got)
	}
	g.terminate(t, again)
}

// lanDHCP is the LAN's own DHCP server, outside the cloud (SYSTEM mode's
// arrangement), on the switch's bridge: each MAC gets the next address of
// a pool, the switch's address as router.
type lanDHCP struct {
	srv    *server4.Server
	server net.IP
	mu     sync.Mutex
	next   netip.Addr
	leases map[string]netip.Addr
	acked  map[string]time.Time // each MAC's first ACK
}

func startLANDHCP(t *testing.T, l *lan, server, first string) *lanDHCP {
	t.Helper()
	sw := l.prefix + "-sw"
	l.ip("-n", sw, "addr", "add", server+"/24", "dev", "br0")
	ns, err := netns.GetFromName(sw)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	d := &lanDHCP{server: net.ParseIP(server).To4(), next: netip.MustParseAddr(first), leases: map[string]netip.Addr{},
		acked: map[string]time.Time{}}
	nstest.MustDo(t, ns, func() (err error) {
		d.srv, err = server4.NewServer("br0", nil, d.handle)
		return err
	})
	go d.srv.Serve()
	t.Cleanup(func() { d.srv.Close() })
	return d
}

func (d *lanDHCP) handle(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
	var mt dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		mt = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		mt = dhcpv4.MessageTypeAck
	default:
		return
	}
	d.mu.Lock()
	ip, ok := d.leases[req.ClientHWAddr.String()]
	if !ok {
		ip = d.next
		d.next = d.next.Next()
		d.leases[req.ClientHWAddr.String()] = ip
	}
	d.mu.Unlock()
	resp, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(mt), dhcpv4.WithYourIP(net.IP(ip.AsSlice())),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(d.server)), dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(d.server)), dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)))
	if err != nil {
		return
	}
	if _, err := conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}); err == nil && mt == dhcpv4.MessageTypeAck {
		d.mu.Lock()
		if _, ok := d.acked[req.ClientHWAddr.String()]; !ok {
			d.acked[req.ClientHWAddr.String()] = time.Now()
		}
		d.mu.Unlock()
	}
}

// ackedAt is when mac's first ACK was sent (zero: none yet).
func (d *lanDHCP) ackedAt(mac string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked[strings.ToLower(mac)]
}

func (d *lanDHCP) lease(mac string) (netip.Addr, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.leases[strings.ToLower(mac)]
	return a, ok
}

// TestSystemMode runs SYSTEM from the 1.5 documentation's blocks: the
// guest bridges onto the compute host's br0 with a random, locally
// administered MAC and leases its address from the LAN's DHCP server,
// which the cloud does not run; the node learns the address from the
// server's answer, DescribeInstances shows it (Eucalyptus showed
// 0.0.0.0), the guest reads its own metadata through its node's relay,
// and, its port now holding it to that address, serves the front-end
// once its group opens port 80.
func TestSystemMode(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needGuests(t)
	l := newLANNamed(t, "nmd", "10.247.11")
	dhcp := startLANDHCP(t, l, "10.247.11.254", "10.247.11.100")
	g := newGuestCloud(t, l, docBlock(t, "system-frontend.conf"), docBlock(t, "system-node.conf", "virbr0", "br0"))

	id, err := g.run(t)
	if err != nil {
		t.Fatal(err)
	}
	first := g.describe(t, id)
	if m, err := net.ParseMAC(first.MAC); err != nil || m[0]&2 == 0 || m[0]&1 != 0 {
		t.Errorf("MAC %q: not a locally administered unicast address", first.MAC)
	}
	if first.PrivateIP != "" {
		t.Errorf("an address %q before the guest leased one", first.PrivateIP)
	}
	var leased netip.Addr
	eventually(t, "the guest leases from the LAN's DHCP", 5*time.Minute, func() error {
		var ok bool
		if leased, ok = dhcp.lease(first.MAC); !ok {
			return fmt.Errorf("no lease for %s yet", first.MAC)
		}
		return nil
	})
	eventually(t, "DescribeInstances shows the leased address", time.Minute, func() error {
		if got := g.describe(t, id); got.PrivateIP != leased.String() {
			return fmt.Errorf("PrivateIpAddress %q, the guest leased %s", got.PrivateIP, leased)
		}
		return nil
	})
	// A figure for the README, not a bound: the polls of the node and the
	// cluster decide it.
	t.Logf("DescribeInstances showed the lease %s after the server's ACK", time.Since(dhcp.ackedAt(first.MAC)).Round(100*time.Millisecond))
	console := g.console(t, id, "EUCA-LEASE")
	if !strings.Contains(console, "EUCA-LEASE ip="+leased.String()+" ") {
		t.Errorf("console lacks the lease %s:\n%s", leased, tail(console, 20))
	}
	// Its metadata, through its node's relay: the LAN's router knows
	// nothing of 169.254.169.254, and the front-end knows the guest by
	// the address the node learned.
	console = g.console(t, id, "EUCA-HTTPD")
	for _, want := range []string{"EUCA-IMDS v", "EUCA-META instance-id=" + id} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, tail(console, 30))
		}
	}
	g.closedHTTPD(t, leased.String())
	g.openHTTPD()
	eventually(t, "the front-end reaches the guest's httpd", 2*time.Minute, func() error {
		out, err := g.fe.run(nil, "curl", "-sS", "-m", "5", "http://"+leased.String()+"/")
		if err != nil {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	g.terminate(t, id)
}
