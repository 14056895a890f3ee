package clc

// The instance metadata service. Instances reach 169.254.169.254:80; their
// cluster DNATs that to the listener the cloud controller serves
// MetadataHandler on, keeping the guest's source address, which is how the
// caller is identified: the private address of a running instance. Any
// other source (an address no instance holds, or one of an instance that is
// not running: pending, stopping, stopped, shutting down, terminated) gets
// 404 and learns nothing. A pending instance's request first waits a little
// for the instance to be seen running (its guest may boot faster than the
// node's report arrives), because cloud-init on EC2 gives up on any HTTP
// error rather than retrying.
//
// The listener binds loopback only (MetadataListenAddr), and that very
// address is what the clusters redirect to (the network sets route_localnet
// on its own bridges and drops anything else addressed to loopback arriving
// there), so the service cannot be reached from the LAN in any network
// mode: only through the redirect on the cloud's bridges. In STATIC mode the
// bridge is the LAN itself, so a LAN host could ask through the redirect as
// an instance does; it is answered only if it holds a running instance's
// address. When the cluster controller runs on another host than the cloud
// controller, loopback is the cluster's host: the cluster serves a relay
// there (internal/mdrelay) that asks over the internal mutual TLS, naming
// the caller's address (metadatarelay.go), rather than DNAT instances'
// traffic across the LAN to the cloud controller. In STATIC and SYSTEM,
// where a guest's router is the LAN's, each node on a host of its own
// relays its own guests' requests the same way (netmode/nodenet).
//
// It serves EC2's layout (meta-data/, user-data, dynamic/instance-identity/)
// under `latest` and under any date-shaped version, index listings as EC2
// writes them (plain text, one entry a line, directories ending in "/"),
// and IMDSv2 in AWS's "optional" mode: PUT /latest/api/token answers a
// token bound to the instance, a GET that presents one must present a valid
// one of that instance, and a GET without one is served unless the
// instance's MetadataOptions.HttpTokens is "required". cloud-init on a guest
// not identified as AWS never asks for a token; one identified as AWS asks
// first and gives up on any 4xx, so both must work.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/store"
)

// IMDSv2 headers and limits, as EC2 has them.
const (
	tokenHeader    = "X-aws-ec2-metadata-token"
	tokenTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds"
	tokenMaxTTL    = 21600
	identityDocVer = "2017-09-30"
)

// metadataVersions are the versions "/" lists, as EC2 lists them; any
// date-shaped version is served too.
var metadataVersions = []string{
	"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01", "2008-09-01",
	"2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12", "2014-02-25", "2014-11-05", "2015-10-20",
	"2016-04-19", "2016-06-30", "2016-09-02", "2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01",
	"2020-10-27", "2021-01-03", "2021-03-23", "2021-07-15", "2022-09-24", "latest",
}

var dateVersion = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// SetMetadataTarget says where the clusters must redirect
// 169.254.169.254:80 instead of MetadataListenAddr (tests point it
// elsewhere). It goes to every cluster with the next network hand-over.
func (c *Cloud) SetMetadataTarget(target netip.AddrPort) {
	c.inst.mu.Lock()
	defer c.inst.mu.Unlock()
	c.inst.metadata = target
}

// MetadataListenAddr is where the metadata listener binds and, unless
// SetMetadataTarget says otherwise, where the clusters redirect
// 169.254.169.254:80: loopback on METADATA_PORT, which nothing off this
// host can reach but that redirect.
func (c *Cloud) MetadataListenAddr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(c.cfg.MetadataPort))
}

// MetadataHandler is the metadata service, to be mounted on a listener of
// its own (it answers every path, and trusts the connection's source
// address, so it must never sit behind a proxy).
func (c *Cloud) MetadataHandler() http.Handler { return metadataServer{c: c} }

// metadataServer answers for the instance at the caller's address; zones,
// when set (a relay of a cluster on another host), are the only zones whose
// instances it answers for.
type metadataServer struct {
	c     *Cloud
	zones []string
	// node, when set (a node's relay, STATIC and SYSTEM), is the relaying
	// node's certificate: it answers only for instances running there.
	node *x509.Certificate
}

// pendingWait bounds how long a request from a pending instance waits for
// the instance to be seen running; pendingPoll is how often it looks.
// waitingForRun, when set (tests), is called as such a wait begins.
var (
	pendingWait   = 5 * time.Second
	pendingPoll   = 100 * time.Millisecond
	waitingForRun func()
)

// logPathMax is how much of a request's path the debug log keeps.
const logPathMax = 256

// statusRecorder remembers the status a handler answered, for the log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (m metadataServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusRecorder{ResponseWriter: rw, code: http.StatusOK}
	w.Header().Set("Server", "EC2ws")
	in, ok := m.caller(r)
	// One debug line a request: who asked (the instance, or the address
	// when it is none's running instance), what, and the answer; never a
	// body, a header or a token.
	defer func() {
		path := r.URL.Path
		if len(path) > logPathMax {
			path = path[:logPathMax] + "..."
		}
		m.c.log.DebugContext(r.Context(), "metadata request", "instance", in.ID, "caller", r.RemoteAddr,
			"method", r.Method, "path", path, "status", w.code)
	}()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if in.Options.HTTPEndpoint == "disabled" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	path := r.URL.Path
	if r.Method == http.MethodPut {
		m.putToken(w, r, in, path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if tok := r.Header.Get(tokenHeader); tok != "" || r.Header.Values(tokenHeader) != nil {
		if !m.c.validToken(tok, in.ID) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	} else if in.Options.HTTPTokens == "required" {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	body, ctype, found := m.c.metadataGet(r.Context(), in, path)
	if !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// caller is the running instance whose private address the request comes
// from. The instance is returned when ok is false too, when there is one
// (for the log).
func (m metadataServer) caller(r *http.Request) (store.Instance, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return store.Instance{}, false
	}
	addr := ip.Unmap().String()
	in, err := m.instanceAt(r.Context(), addr)
	if err == nil && in.State == store.InstancePending {
		in, err = m.awaitRunning(r.Context(), addr, in)
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			m.c.log.Warn("metadata: identify caller", "addr", addr, "err", err)
		}
		return store.Instance{}, false
	}
	if m.zones != nil && !slices.Contains(m.zones, in.Zone) {
		// Another zone's instance: the relaying cluster learns nothing,
		// as from an address no instance holds.
		m.c.log.Warn("metadata: a cluster relays a request from another zone's instance", "addr", addr, "zones", strings.Join(m.zones, ","), "instance_zone", in.Zone)
		return store.Instance{}, false
	}
	if m.node != nil && (in.Node == "" || !certNames(m.node, in.Node)) {
		m.c.log.Warn("metadata: a node relays a request from an instance of another node", "addr", addr, "node", m.node.Subject.CommonName, "instance_node", in.Node)
		return store.Instance{}, false
	}
	return in, in.State == store.InstanceRunning
}

func (m metadataServer) instanceAt(ctx context.Context, addr string) (store.Instance, error) {
	return m.c.store.LiveInstanceByAddress(ctx, addr)
}

// awaitRunning looks again at the pending instance at addr until it is no
// longer pending (or another instance holds the address), for at most
// pendingWait.
func (m metadataServer) awaitRunning(ctx context.Context, addr string, in store.Instance) (store.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, pendingWait)
	defer cancel()
	if waitingForRun != nil {
		waitingForRun()
	}
	t := time.NewTicker(pendingPoll)
	defer t.Stop()
	for in.State == store.InstancePending {
		select {
		case <-ctx.Done():
			return in, nil
		case <-t.C:
		}
		now, err := m.instanceAt(ctx, addr)
		switch {
		case err != nil && ctx.Err() != nil:
			return in, nil
		case err != nil:
			return store.Instance{}, err
		case now.ID != in.ID:
			return store.Instance{}, fmt.Errorf("instance at %s: %w", addr, store.ErrNotFound)
		}
		in = now
	}
	return in, nil
}

// putToken is IMDSv2's session start. A PUT carrying X-Forwarded-For is
// refused as EC2 refuses it: a token must not be obtainable through a proxy
// running on the instance.
func (m metadataServer) putToken(w http.ResponseWriter, r *http.Request, in store.Instance, path string) {
	if strings.TrimSuffix(path, "/") != "/latest/api/token" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(tokenTTLHeader)))
	if err != nil || ttl < 1 || ttl > tokenMaxTTL {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	tok := m.c.newToken(in.ID, timeNow().Add(time.Duration(ttl)*time.Second))
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set(tokenTTLHeader, strconv.Itoa(ttl))
	_, _ = w.Write([]byte(tok))
}

func (c *Cloud) tokenKey() []byte {
	c.inst.keyOnce.Do(func() {
		c.inst.key = make([]byte, 32)
		_, _ = rand.Read(c.inst.key)
	})
	return c.inst.key
}

// newToken is an IMDSv2 token: the instance and the expiry, signed with a
// key the process made at start (a restart ends every session, and cloud-init
// asks again on 401).
func (c *Cloud) newToken(instanceID string, expires time.Time) string {
	payload := instanceID + "." + strconv.FormatInt(expires.Unix(), 10)
	mac := hmac.New(sha256.New, c.tokenKey())
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (c *Cloud) validToken(tok, instanceID string) bool {
	p, s, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha256.New, c.tokenKey())
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return false
	}
	id, exp, ok := strings.Cut(string(payload), ".")
	if !ok || id != instanceID {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && timeNow().Unix() < unix
}

// mdNode is one entry of the metadata tree: a value, or a directory of
// named children listed in order. listing, when set, is what the directory
// lists instead of its children's names (public-keys/ lists "0=<key name>").
type mdNode struct {
	value    *string
	children []mdChild
	listing  []string
}

type mdChild struct {
	name string
	node *mdNode
}

func mdLeaf(v string) *mdNode { return &mdNode{value: &v} }

func mdDir(children ...mdChild) *mdNode { return &mdNode{children: children} }

func mdEntry(name string, n *mdNode) mdChild { return mdChild{name: name, node: n} }

func (n *mdNode) child(name string) *mdNode {
	for _, c := range n.children {
		if c.name == name {
			return c.node
		}
	}
	return nil
}

// list is a directory's index as EC2 writes it.
func (n *mdNode) list() string {
	if n.listing != nil {
		return strings.Join(n.listing, "\n")
	}
	names := make([]string, len(n.children))
	for i, c := range n.children {
		names[i] = c.name
		if c.node.value == nil {
			names[i] += "/"
		}
	}
	return strings.Join(names, "\n")
}

const textPlain = "text/plain"

// metadataGet answers a GET of path for instance in: the body, its content
// type, and whether there is anything at that path.
func (c *Cloud) metadataGet(ctx context.Context, in store.Instance, path string) ([]byte, string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		return []byte(strings.Join(metadataVersions, "\n")), textPlain, true
	}
	ver := parts[0]
	if ver != "latest" && ver != "1.0" && !dateVersion.MatchString(ver) {
		return nil, "", false
	}
	rest := parts[1:]
	if len(rest) == 0 {
		top := []string{"dynamic", "meta-data"}
		if in.UserData != nil {
			top = append(top, "user-data")
		}
		return []byte(strings.Join(top, "\n")), textPlain, true
	}
	var root *mdNode
	switch rest[0] {
	case "user-data":
		if len(rest) > 1 || in.UserData == nil {
			return nil, "", false
		}
		return in.UserData, "application/octet-stream", true
	case "meta-data":
		root = c.metaData(ctx, in)
	case "dynamic":
		root = c.dynamicData(ctx, in)
	default:
		return nil, "", false
	}
	n := root
	for _, p := range rest[1:] {
		if p == "" {
			continue
		}
		if n.value != nil {
			return nil, "", false
		}
		if n = n.child(p); n == nil {
			return nil, "", false
		}
	}
	if n.value != nil {
		return []byte(*n.value), textPlain, true
	}
	return []byte(n.list()), textPlain, true
}

// privateDNSName is EC2's private host name of an address outside
// us-east-1: ip-172-31-0-5.<region>.compute.internal.
func privateDNSName(region, ip string) string {
	if ip == "" {
		return ""
	}
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + region + ".compute.internal"
}

// metaData is the meta-data/ tree of an instance.
func (c *Cloud) metaData(ctx context.Context, in store.Instance) *mdNode {
	region := c.Region()
	host := privateDNSName(region, in.PrivateIP)
	publicIP, publicHost := in.PublicIP, privateDNSName(region, in.PublicIP)
	if publicIP == "" {
		// No public address: the private one is how the instance is
		// reached on this cloud (Eucalyptus answered the same).
		publicIP, publicHost = in.PrivateIP, host
	}
	manifest := "(unknown)"
	if im, err := c.store.ImageByID(ctx, in.ImageID); err == nil && im.Location != "" {
		manifest = im.Location
	}
	var groupIDs, groupNames []string
	for _, g := range in.Groups {
		groupIDs = append(groupIDs, g.ID)
		groupNames = append(groupNames, g.Name)
	}
	subnetCIDR, vpcCIDR := "", ""
	if sn, err := c.store.SubnetByID(ctx, in.SubnetID); err == nil {
		subnetCIDR = sn.CIDR
	}
	if v, err := c.store.VPCByID(ctx, in.VPCID); err == nil {
		vpcCIDR = v.CIDR
	}
	mac := strings.ToLower(in.MAC)
	iface := mdDir(
		mdEntry("device-number", mdLeaf("0")),
		mdEntry("interface-id", mdLeaf(in.ENIID)),
		mdEntry("local-hostname", mdLeaf(host)),
		mdEntry("local-ipv4s", mdLeaf(in.PrivateIP)),
		mdEntry("mac", mdLeaf(mac)),
		mdEntry("owner-id", mdLeaf(in.AccountID)),
		mdEntry("public-hostname", mdLeaf(publicHost)),
		mdEntry("public-ipv4s", mdLeaf(publicIP)),
		mdEntry("security-group-ids", mdLeaf(strings.Join(groupIDs, "\n"))),
		mdEntry("security-groups", mdLeaf(strings.Join(groupNames, "\n"))),
		mdEntry("subnet-id", mdLeaf(in.SubnetID)),
		mdEntry("subnet-ipv4-cidr-block", mdLeaf(subnetCIDR)),
		mdEntry("vpc-id", mdLeaf(in.VPCID)),
		mdEntry("vpc-ipv4-cidr-block", mdLeaf(vpcCIDR)),
		mdEntry("vpc-ipv4-cidr-blocks", mdLeaf(vpcCIDR)),
	)
	entries := []mdChild{
		mdEntry("ami-id", mdLeaf(in.ImageID)),
		mdEntry("ami-launch-index", mdLeaf(strconv.Itoa(in.LaunchIndex))),
		mdEntry("ami-manifest-path", mdLeaf(manifest)),
		mdEntry("block-device-mapping", c.blockDevices(ctx, in)),
		mdEntry("hostname", mdLeaf(host)),
		mdEntry("instance-action", mdLeaf("none")),
		mdEntry("instance-id", mdLeaf(in.ID)),
		mdEntry("instance-type", mdLeaf(in.InstanceType)),
	}
	if in.KernelID != "" {
		entries = append(entries, mdEntry("kernel-id", mdLeaf(in.KernelID)))
	}
	entries = append(entries,
		mdEntry("local-hostname", mdLeaf(host)),
		mdEntry("local-ipv4", mdLeaf(in.PrivateIP)),
		mdEntry("mac", mdLeaf(mac)),
		mdEntry("network", mdDir(mdEntry("interfaces", mdDir(mdEntry("macs", mdDir(mdEntry(mac, iface))))))),
		mdEntry("placement", mdDir(
			mdEntry("availability-zone", mdLeaf(in.Zone)),
			mdEntry("availability-zone-id", mdLeaf(c.ZoneID(in.Zone))),
			mdEntry("region", mdLeaf(region)),
		)),
		mdEntry("public-hostname", mdLeaf(publicHost)),
		mdEntry("public-ipv4", mdLeaf(publicIP)),
	)
	if in.KeyName != "" {
		keys := mdDir(mdEntry("0", mdDir(mdEntry("openssh-key", mdLeaf(strings.TrimSpace(in.PublicKey)+"\n")))))
		keys.listing = []string{"0=" + in.KeyName}
		entries = append(entries, mdEntry("public-keys", keys))
	}
	if in.RamdiskID != "" {
		entries = append(entries, mdEntry("ramdisk-id", mdLeaf(in.RamdiskID)))
	}
	entries = append(entries,
		mdEntry("reservation-id", mdLeaf(in.ReservationID)),
		mdEntry("security-groups", mdLeaf(strings.Join(groupNames, "\n"))),
		mdEntry("services", mdDir(
			mdEntry("domain", mdLeaf("amazonaws.com")),
			mdEntry("partition", mdLeaf("aws")),
		)),
	)
	return mdDir(entries...)
}

// blockDevices is meta-data/block-device-mapping/: the disks the node gives
// the instance, by the names cloud-init looks for. The node attaches whole
// virtio disks, root (vda), then ephemeral (the VM type's disk, when it has
// one) and swap (when SWAP_SIZE is not 0), named in that order by the
// guest's kernel; EC2 calls such whole disks sdb, sdc, which cloud-init maps
// to vdb, vdc (or xvdb, xvdc) and so mounts the ephemeral disk on /mnt and
// turns swap on. The root keeps the instance-store image's name, sda1, as
// RootDeviceName says; cloud-init mounts neither ami nor root.
//
// SWAP_SIZE is read here, from this host's configuration: the node shares
// the process. A node on another host will have to report the disks it
// attached instead.
func (c *Cloud) blockDevices(ctx context.Context, in store.Instance) *mdNode {
	ephemeral := true // every VM type has a disk (store.SetVMType)
	if vt, err := c.store.VMType(ctx, in.InstanceType); err == nil {
		ephemeral = vt.DiskGB > 0
	} else {
		c.log.Warn("metadata: VM type of instance", "instance", in.ID, "type", in.InstanceType, "err", err)
	}
	eph, swap := hypervisor.GuestDisks(ephemeral, c.cfg.SwapSizeMB > 0)
	// The root: an instance-store image's sda1, an EBS-backed one's root
	// device name as its image gave it (as EC2 lists /dev/xvda).
	ami, root := "sda1", "/dev/sda1"
	if in.EBS() && in.RootDeviceName != "" {
		ami, root = in.RootDeviceName, in.RootDeviceName
	}
	entries := []mdChild{mdEntry("ami", mdLeaf(ami))}
	for i, dev := range c.bootVolumeDevices(ctx, in) { // volumes.go
		entries = append(entries, mdEntry(fmt.Sprintf("ebs%d", i+1), mdLeaf(dev)))
	}
	if eph != "" {
		entries = append(entries, mdEntry("ephemeral0", mdLeaf(ec2DiskName(eph))))
	}
	entries = append(entries, mdEntry("root", mdLeaf(root)))
	if swap != "" {
		entries = append(entries, mdEntry("swap", mdLeaf(ec2DiskName(swap))))
	}
	return mdDir(entries...)
}

// ec2DiskName is EC2's name of the guest's disk vdX: sdX.
func ec2DiskName(guestDev string) string { return "sd" + strings.TrimPrefix(guestDev, "vd") }

// identityDocument is dynamic/instance-identity/document, its members in
// EC2's order.
type identityDocument struct {
	AccountID               string   `json:"accountId"`
	Architecture            string   `json:"architecture"`
	AvailabilityZone        string   `json:"availabilityZone"`
	BillingProducts         []string `json:"billingProducts"`
	DevpayProductCodes      []string `json:"devpayProductCodes"`
	MarketplaceProductCodes []string `json:"marketplaceProductCodes"`
	ImageID                 string   `json:"imageId"`
	InstanceID              string   `json:"instanceId"`
	InstanceType            string   `json:"instanceType"`
	KernelID                *string  `json:"kernelId"`
	PendingTime             string   `json:"pendingTime"`
	PrivateIP               string   `json:"privateIp"`
	RamdiskID               *string  `json:"ramdiskId"`
	Region                  string   `json:"region"`
	Version                 string   `json:"version"`
}

func (c *Cloud) dynamicData(_ context.Context, in store.Instance) *mdNode {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	arch := in.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	doc, _ := json.MarshalIndent(identityDocument{
		AccountID: in.AccountID, Architecture: arch, AvailabilityZone: in.Zone,
		ImageID: in.ImageID, InstanceID: in.ID, InstanceType: in.InstanceType,
		KernelID: opt(in.KernelID), RamdiskID: opt(in.RamdiskID),
		PendingTime: store.Time(in.CreatedMS).Format("2006-01-02T15:04:05Z"), PrivateIP: in.PrivateIP,
		Region: c.Region(), Version: identityDocVer,
	}, "", "  ")
	return mdDir(mdEntry("instance-identity", mdDir(mdEntry("document", mdLeaf(string(doc))))))
}
