package clc

// Instances. The cloud controller owns their records; the cluster
// controller of their zone (ccapi.Cluster, connected with SetCluster) places
// and runs them. The pipeline of a launch:
//
//  1. RunInstances checks the request (image, kernel, ramdisk, key, type,
//     zone, subnet, groups, user data) and answers a retried client token
//     with the reservation it made the first time.
//  2. It asks the cluster how many instances of the type fit, and records
//     the reservation and that many instances (pending) in one store
//     transaction that also gives each its private address and MAC, so two
//     launches can never take one address.
//  3. It hands the cluster the zone's whole network (SetNetwork: every live
//     instance's MAC, address and groups, every group's ingress rules, the
//     metadata service's address), then asks it to run the instances. A
//     refusal for capacity retries with one instance fewer down to
//     MinCount; any other failure deletes the rows and hands the network
//     again, so nothing half-started stays.
//
// After that, Run's reconcile loop polls each cluster every reconcileEvery
// and moves states as EC2 does: pending → running when the node says so;
// a failed boot → terminated with Server.InternalError; shutting-down →
// terminated when the node reports it gone. It re-sends terminations the
// cluster has not carried out, stops instances no record asks for, hands
// the network again when it changed (a security group rule, say), and
// deletes terminated instances an hour after they ended.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/internal/conf"
	"github.com/euca-cloud/euca/internal/ids"
	"github.com/euca-cloud/euca/internal/nodeview"
	"github.com/euca-cloud/euca/netmode/ipam"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

const (
	// reconcileEvery is how often Run polls the clusters.
	reconcileEvery = 2 * time.Second
	// After a launch, terminate or reboot the loop polls fast for a while,
	// so that an instance shows running (or terminated) a poll of the
	// cluster after it is, not up to reconcileEvery later.
	reconcileFast    = 250 * time.Millisecond
	reconcileFastFor = time.Minute
	// terminatedKeep is how long a terminated instance stays visible.
	terminatedKeep = time.Hour
	// lostAfter is how long a pending or running instance may be missing
	// from every poll of a cluster, its node up (every node, when its node
	// is not known), before it is declared lost (terminated). A node that
	// is down keeps its instances. It is the last resort: a cluster says
	// itself, at once, when a node that answers again no longer has an
	// instance (ccapi.InstanceStatus.Lost).
	lostAfter = 5 * time.Minute
	// resendEvery re-sends an unchanged network now and then: harmless,
	// and it repairs a cluster controller that lost it.
	resendEvery = time.Minute
	// MaxUserData is the most user data an instance may have, decoded.
	MaxUserData = 16 * 1024
	// DefaultInstanceType is what RunInstances launches without InstanceType.
	DefaultInstanceType = "m1.small"
)

// pushWait bounds the push of a network that an API call makes at
// once (a rule, group or address changed): the change is stored, and
// a cluster that does not answer is sent it again by the reconcile
// loop, instead of holding the call (and every other account's calls
// to its zone) for the cluster client's retries.
var pushWait = 10 * time.Second

// timeNow is the instances' clock; tests move it.
var timeNow = time.Now

// instanceRuntime is what the cloud controller holds about instances
// beyond the store: the clusters, what it last told them, and the metadata
// service's secrets.
type instanceRuntime struct {
	mu       sync.Mutex
	clusters map[string]ccapi.Cluster // by zone
	local    map[string]bool          // zones served in this process (SetCluster)
	metadata netip.AddrPort           // where the clusters redirect 169.254.169.254:80
	missing  map[string]time.Time     // instances no poll reported, since when
	// unreachable is, by zone, the instances whose node the last poll of
	// the zone's cluster could not reach, and why (DescribeInstanceStatus
	// reports them impaired).
	unreachable map[string]map[string]ccapi.InstanceStatus
	// nodes is, by zone, the nodes as the last poll of its cluster
	// reported them (DescribeAvailabilityZones).
	nodes map[string][]ccapi.NodeInfo

	// netMu guards netLocks and sent. A zone's network is computed and
	// sent holding its lock in netLocks (a channel of one, so that a
	// caller with a deadline stops waiting), one zone at a time each, so
	// that a cluster that does not answer holds up only its own zone.
	netMu    sync.Mutex
	netLocks map[string]chan struct{}
	sent     map[string]sentNetwork

	keyOnce sync.Once
	key     []byte // signs IMDSv2 tokens

	changed atomic.Int64 // UnixNano of the last launch, terminate or reboot

	// booting are the launched instances waiting for their volumes to
	// exist before they boot (instances_ebs.go): pending, and on no node
	// yet, but not lost.
	booting map[string]bool
	// boots counts the goroutines booting them (tests wait for it).
	boots sync.WaitGroup
}

// touch marks a change the reconcile loop should follow closely.
func (r *instanceRuntime) touch() { r.changed.Store(timeNow().UnixNano()) }

// nextReconcile is how long the loop waits before its next pass.
func (r *instanceRuntime) nextReconcile() time.Duration {
	if timeNow().Sub(time.Unix(0, r.changed.Load())) < reconcileFastFor {
		return reconcileFast
	}
	return reconcileEvery
}

type sentNetwork struct {
	hash string
	at   time.Time
}

func (r *instanceRuntime) setCluster(cl ccapi.Cluster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clusters == nil {
		r.clusters = map[string]ccapi.Cluster{}
	}
	r.clusters[cl.Zone()] = cl
}

func (r *instanceRuntime) cluster(zone string) ccapi.Cluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clusters[zone]
}

func (r *instanceRuntime) allClusters() map[string]ccapi.Cluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]ccapi.Cluster, len(r.clusters))
	for z, cl := range r.clusters {
		out[z] = cl
	}
	return out
}

// ---- RunInstances

// RunInstances launches between spec.MinCount and spec.MaxCount instances
// (as many as fit), or none, and returns them.
func (c *Cloud) RunInstances(ctx context.Context, accountID string, spec store.LaunchSpec) ([]store.Instance, error) {
	defer c.inst.touch()
	if spec.MinCount < 1 {
		return nil, awserr.InvalidParameterValue("Value (%d) for parameter minCount is invalid. Expected a positive integer.", spec.MinCount)
	}
	if spec.MaxCount < 1 {
		return nil, awserr.InvalidParameterValue("Value (%d) for parameter maxCount is invalid. Expected a positive integer.", spec.MaxCount)
	}
	if spec.MinCount > spec.MaxCount {
		return nil, awserr.InvalidParameterValue("Value (%d) for parameter minCount is invalid. It must not exceed maxCount (%d).", spec.MinCount, spec.MaxCount)
	}
	if spec.InstanceType == "" {
		spec.InstanceType = DefaultInstanceType
	}
	hash := launchHash(spec)
	if spec.ClientToken != "" {
		r, err := c.store.ReservationByClientToken(ctx, accountID, spec.ClientToken)
		switch {
		case err == nil:
			return c.sameReservation(ctx, accountID, r.ID, r.RequestHash, hash)
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("client token: %w", err)
		}
	}
	vt, err := c.vmType(ctx, spec.InstanceType)
	if err != nil {
		return nil, err
	}
	img, kernel, ramdisk, err := c.launchImages(ctx, accountID, spec.ImageID, spec.KernelID, spec.RamdiskID)
	if err != nil {
		return nil, err
	}
	// The EBS volumes each instance gets (instances_ebs.go).
	devs, err := c.launchDevices(ctx, accountID, img, spec.BlockDevices)
	if err != nil {
		return nil, err
	}
	var key store.KeyPair
	if spec.KeyName != "" {
		key, err = c.store.KeyPairByName(ctx, accountID, spec.KeyName)
		if errors.Is(err, store.ErrNotFound) {
			return nil, awserr.New("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", spec.KeyName)
		}
		if err != nil {
			return nil, fmt.Errorf("key pair: %w", err)
		}
	}
	zone := spec.Zone
	if zone == "" && spec.SubnetID == "" {
		zone = c.pickZone(ctx, vt.Name)
	}
	subnet, err := c.launchSubnet(ctx, accountID, zone, spec.SubnetID)
	if err != nil {
		return nil, err
	}
	groups, err := c.launchGroups(ctx, accountID, subnet, spec.GroupNames, spec.GroupIDs)
	if err != nil {
		return nil, err
	}
	if len(spec.UserData) > MaxUserData {
		return nil, awserr.InvalidParameterValue("User data is limited to %d bytes", MaxUserData)
	}
	prefix, err := netip.ParsePrefix(subnet.CIDR)
	if err != nil {
		return nil, fmt.Errorf("subnet %s: %w", subnet.ID, err)
	}
	var want netip.Addr
	if spec.PrivateIP != "" {
		if spec.MaxCount > 1 {
			return nil, awserr.New("InvalidParameterCombination", "Cannot specify a private IP address when launching more than one instance")
		}
		want, err = netip.ParseAddr(spec.PrivateIP)
		if err != nil || !want.Is4() {
			return nil, awserr.InvalidParameterValue("Invalid value '%s' for privateIpAddress", spec.PrivateIP)
		}
		if !prefix.Contains(want) {
			return nil, awserr.InvalidParameterValue("Address %s does not fall within the subnet's address range", spec.PrivateIP)
		}
	}
	cl := c.inst.cluster(subnet.Zone)
	if cl == nil {
		return nil, insufficientCapacity(spec.InstanceType, subnet.Zone)
	}
	if len(devs) > 0 && c.storageOf(subnet.Zone) == nil {
		return nil, awserr.New("Unsupported", "EBS volumes are not available in zone '%s': no storage controller serves it.", subnet.Zone)
	}
	n := c.fitCount(ctx, cl, vt, spec.MaxCount)
	if n < spec.MinCount {
		return nil, insufficientCapacity(spec.InstanceType, subnet.Zone)
	}
	if n, err = c.fitPairs(ctx, subnet.Zone, n, want); err != nil {
		return nil, err
	}
	if n < spec.MinCount {
		return nil, noPair(spec.InstanceType, subnet.Zone, len(c.cfg.VNetMACMap))
	}

	res := store.Reservation{ID: ids.New("r"), AccountID: accountID, ClientToken: spec.ClientToken, RequestHash: hash}
	// A public address from the pool, as the subnet says (a default
	// subnet maps one, as Eucalyptus gave every instance one) unless the
	// launch says otherwise; lent after the records are written.
	mapPublic := subnet.MapPublicIP
	if spec.AssociatePublicIP != nil {
		mapPublic = *spec.AssociatePublicIP
	}
	insts := make([]store.Instance, n)
	for i := range insts {
		insts[i] = store.Instance{
			ID: ids.New("i"), LaunchIndex: i, ImageID: img.ID, KernelID: kernel.ID, RamdiskID: ramdisk.ID,
			InstanceType: vt.Name, Architecture: img.Architecture, KeyName: key.Name, PublicKey: key.PublicKey,
			Zone: subnet.Zone, SubnetID: subnet.ID, VPCID: subnet.VPCID, ENIID: ids.New("eni"), MapPublicIP: mapPublic,
			State: store.InstancePending, UserData: spec.UserData, Options: spec.Options, Groups: groups, Tags: spec.InstanceTags,
			RootDeviceType: img.RootDeviceType, RootDeviceName: img.RootDeviceName,
		}
		if !img.EBS() {
			// Instance-store: the root is the image, on /dev/sda1 as the
			// node gives it whatever the manifest says.
			insts[i].RootDeviceType, insts[i].RootDeviceName = store.RootInstanceStore, store.DefaultRootDeviceName
		}
	}
	insts, err = c.store.LaunchInstances(ctx, res, insts, c.segmentRange(prefix), c.allocator(prefix, want))
	var cte *store.ClientTokenError
	switch {
	case errors.As(err, &cte): // the same token, launched meanwhile
		return c.sameReservation(ctx, accountID, cte.ReservationID, cte.RequestHash, hash)
	case errors.Is(err, errAddressInUse):
		return nil, awserr.New("InvalidIPAddress.InUse", "Address %s is in use.", spec.PrivateIP)
	case errors.Is(err, errAddressReserved):
		return nil, awserr.InvalidParameterValue("Address %s is reserved in subnet %s", spec.PrivateIP, subnet.ID)
	case errors.Is(err, errNoPair):
		return nil, noPair(spec.InstanceType, subnet.Zone, len(c.cfg.VNetMACMap))
	case errors.Is(err, errAddressOutsideSegment):
		return nil, awserr.InvalidParameterValue("Address %s is not in the network of security group %s (MANAGED: %v)",
			spec.PrivateIP, groups[0].ID, errors.Unwrap(err))
	case errors.Is(err, store.ErrNoSegment):
		c.log.WarnContext(ctx, "MANAGED: launch refused, every network segment of the zone is held by a group with instances",
			"zone", subnet.Zone, "group", groups[0].ID, "err", err)
		return nil, insufficientCapacity(spec.InstanceType, subnet.Zone)
	case errors.Is(err, ipam.ErrExhausted) && c.managed():
		return nil, awserr.New("InsufficientFreeAddressesInSubnet",
			"There are not enough free addresses in the network of security group '%s' (VNET_ADDRSPERNET=%d, MANAGED mode) to satisfy the requested number of instances.",
			groups[0].ID, c.cfg.VNetAddrsPerNet)
	case errors.Is(err, ipam.ErrExhausted):
		return nil, awserr.New("InsufficientFreeAddressesInSubnet",
			"There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", subnet.ID)
	case errors.Is(err, store.ErrTagLimit):
		return nil, awserr.New("TagLimitExceeded", "The maximum number of tags per resource is %d.", store.MaxTags)
	case err != nil:
		return nil, fmt.Errorf("record instances: %w", err)
	}
	if mapPublic {
		if _, err := c.store.FillPublicAddresses(ctx, c.publicPool()); err != nil {
			c.log.Warn("lend public addresses", "err", err)
		}
	}
	if len(devs) > 0 {
		// Pending until their volumes exist; then each boots on a node
		// its volumes are exported to.
		if err := c.launchVolumes(ctx, cl, subnet.Zone, insts, devs, spec.VolumeTags); err != nil {
			return nil, err
		}
		return c.reservationInstances(ctx, accountID, res.ID)
	}
	reqs := make([]ccapi.InstanceRequest, len(insts))
	for i, in := range insts {
		ip, _ := netip.ParseAddr(in.PrivateIP)
		reqs[i] = ccapi.InstanceRequest{InstanceRequest: ncapi.InstanceRequest{
			ID: in.ID, VMType: vt.Name, MAC: in.MAC, PrivateIP: ip,
			Holds: ncapi.Resources{Cores: vt.Cores, MemoryMiB: vt.MemoryMB, DiskGiB: vt.DiskGB},
			Image: imageRef(img), Kernel: optImageRef(kernel), Ramdisk: optImageRef(ramdisk),
		}}
	}
	if err := c.start(ctx, cl, subnet.Zone, spec.MinCount, insts, reqs); err != nil {
		return nil, err
	}
	return c.reservationInstances(ctx, accountID, res.ID)
}

// noPair refuses a STATIC launch for want of VNET_MACMAP pairs.
func noPair(instanceType, zone string, pairs int) error {
	return awserr.New("InsufficientInstanceCapacity",
		"We currently do not have sufficient %s capacity in the Availability Zone you requested (%s): every address of this cloud's STATIC network (its %d VNET_MACMAP pairs) is held by an instance. Launch again after one is terminated.",
		instanceType, zone, pairs)
}

// fitPairs lowers n, in STATIC mode, to the VNET_MACMAP pairs the zone's
// live instances leave free: as EC2 launches as many of MaxCount as fit
// (the launch's own transaction still takes each pair for one instance
// only). A launch asking for an address (want) is one instance, which
// the allocator answers for that address alone.
func (c *Cloud) fitPairs(ctx context.Context, zone string, n int, want netip.Addr) (int, error) {
	if !strings.EqualFold(c.cfg.VNetMode, "STATIC") || want.IsValid() {
		return n, nil
	}
	live, err := c.store.ZoneInstances(ctx, zone)
	if err != nil {
		return 0, err
	}
	held := map[string]bool{}
	for _, in := range live {
		held[in.PrivateIP] = true
	}
	free := 0
	for _, p := range c.cfg.VNetMACMap {
		if !held[p.IP.String()] {
			free++
		}
	}
	return min(n, free), nil
}

func insufficientCapacity(instanceType, zone string) error {
	return awserr.New("InsufficientInstanceCapacity",
		"We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.",
		instanceType, zone, instanceType)
}

// start hands the network and the instances to the cluster; on a capacity
// refusal it drops the last instance and tries again while MinCount allows.
// When it fails, the instances are gone from the store and the network.
func (c *Cloud) start(ctx context.Context, cl ccapi.Cluster, zone string, minCount int, insts []store.Instance, reqs []ccapi.InstanceRequest) error {
	for {
		err := c.sendNetwork(ctx, zone, true)
		var placed []ccapi.Placement
		if err == nil {
			placed, err = cl.RunInstances(ctx, reqs)
		}
		if err == nil {
			nodes := make(map[string]string, len(placed))
			for _, p := range placed {
				nodes[p.ID] = p.Node
			}
			if err := c.store.SetInstanceNodes(ctx, nodes); err != nil {
				c.log.Warn("record placements", "err", err)
			}
			return nil
		}
		capacity := errors.Is(err, ccapi.ErrInsufficientCapacity)
		if capacity && len(insts) > minCount {
			last := insts[len(insts)-1]
			if derr := c.store.DeleteInstances(context.WithoutCancel(ctx), []string{last.ID}); derr != nil {
				c.rollback(ctx, cl, zone, insts, false)
				return fmt.Errorf("drop instance %s: %w", last.ID, derr)
			}
			insts, reqs = insts[:len(insts)-1], reqs[:len(reqs)-1]
			continue
		}
		c.rollback(ctx, cl, zone, insts, !capacity)
		if capacity {
			return insufficientCapacity(reqs[0].VMType, zone)
		}
		return fmt.Errorf("start instances in %s: %w", zone, err)
	}
}

// rollback removes a launch that did not start: its rows, its place in
// the network and, when the cluster's answer leaves it unsure, whatever the
// cluster may have started anyway. It runs even if the request was
// cancelled.
func (c *Cloud) rollback(ctx context.Context, cl ccapi.Cluster, zone string, insts []store.Instance, stop bool) {
	ctx = context.WithoutCancel(ctx)
	var idList []string
	for _, in := range insts {
		idList = append(idList, in.ID)
	}
	if stop {
		if err := cl.TerminateInstances(ctx, idList); err != nil {
			c.log.Warn("stop instances of a failed launch", "instances", idList, "err", err)
		}
	}
	if err := c.store.DeleteInstances(ctx, idList); err != nil {
		c.log.Error("delete instances of a failed launch", "instances", idList, "err", err)
	}
	if err := c.sendNetwork(ctx, zone, true); err != nil {
		c.log.Warn("network after a failed launch", "zone", zone, "err", err)
	}
}

// launchHash identifies a launch's parameters, the client token aside.
func launchHash(spec store.LaunchSpec) string {
	spec.ClientToken = ""
	doc, _ := json.Marshal(spec)
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// sameReservation answers a client token seen before: the reservation it
// made when the parameters are the same, IdempotentParameterMismatch when
// they are not.
func (c *Cloud) sameReservation(ctx context.Context, accountID, reservationID, storedHash, hash string) ([]store.Instance, error) {
	if storedHash != hash {
		return nil, awserr.New("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
	}
	return c.reservationInstances(ctx, accountID, reservationID)
}

func (c *Cloud) reservationInstances(ctx context.Context, accountID, reservationID string) ([]store.Instance, error) {
	out, err := c.store.ReservationInstances(ctx, accountID, reservationID)
	if err != nil {
		return nil, fmt.Errorf("instances of %s: %w", reservationID, err)
	}
	return out, nil
}

func (c *Cloud) vmType(ctx context.Context, name string) (store.VMType, error) {
	types, err := c.store.VMTypes(ctx)
	if err != nil {
		return store.VMType{}, fmt.Errorf("vm types: %w", err)
	}
	for _, t := range types {
		if t.Name == name {
			return t, nil
		}
	}
	return store.VMType{}, awserr.InvalidParameterValue("Invalid value '%s' for InstanceType.", name)
}

func (c *Cloud) ccTypes(ctx context.Context) ([]ccapi.VMType, error) {
	types, err := c.store.VMTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("vm types: %w", err)
	}
	out := make([]ccapi.VMType, len(types))
	for i, t := range types {
		out[i] = ccapi.VMType{Name: t.Name, Cores: t.Cores, MemoryMiB: t.MemoryMB, DiskGiB: t.DiskGB}
	}
	return out, nil
}

// fitCount is how many of want instances of a type the cluster says fit.
// When it cannot say, the cluster's RunInstances decides.
func (c *Cloud) fitCount(ctx context.Context, cl ccapi.Cluster, vt store.VMType, want int) int {
	types, err := c.ccTypes(ctx)
	if err != nil {
		return want
	}
	st, err := cl.Describe(ctx, types)
	if err != nil {
		c.log.Warn("cluster capacity", "zone", cl.Zone(), "err", err)
		return want
	}
	capa, ok := st.Capacity[vt.Name]
	if !ok {
		return want
	}
	return min(want, capa.Free)
}

// visibleImage returns an image the account may launch: its own, a public
// one, or one it was given permission on. ok is false for any other, and
// for a deregistered one.
func (c *Cloud) visibleImage(ctx context.Context, accountID, id string) (store.Image, bool, error) {
	im, err := c.store.ImageByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return im, false, nil
	}
	if err != nil {
		return im, false, fmt.Errorf("image %s: %w", id, err)
	}
	visible := im.AccountID == accountID || im.Public || slices.Contains(im.LaunchPermissions, accountID)
	return im, visible && im.State != store.ImageDeregistered, nil
}

// launchImages resolves the machine image and the kernel and ramdisk it
// boots with (the ones asked for, else the image's own).
func (c *Cloud) launchImages(ctx context.Context, accountID, imageID, kernelID, ramdiskID string) (img, kernel, ramdisk store.Image, err error) {
	img, ok, err := c.visibleImage(ctx, accountID, imageID)
	if err != nil {
		return img, kernel, ramdisk, err
	}
	if !ok {
		return img, kernel, ramdisk, awserr.New("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imageID)
	}
	if img.Kind != store.ImageMachine {
		return img, kernel, ramdisk, awserr.InvalidParameterValue("The image %s is a %s image: only machine images can be launched", imageID, img.Kind)
	}
	if img.State != store.ImageAvailable {
		return img, kernel, ramdisk, awserr.New("InvalidAMIID.Unavailable", "The image id '[%s]' is not available (its state is %s)", imageID, img.State)
	}
	if kernelID == "" {
		kernelID = img.KernelID
	}
	if ramdiskID == "" {
		ramdiskID = img.RamdiskID
	}
	if kernelID != "" {
		if kernel, err = c.bootImage(ctx, accountID, kernelID, store.ImageKernel, "InvalidKernelID.NotFound", "kernel"); err != nil {
			return img, kernel, ramdisk, err
		}
	}
	if ramdiskID != "" {
		if ramdisk, err = c.bootImage(ctx, accountID, ramdiskID, store.ImageRamdisk, "InvalidRamDiskID.NotFound", "ramdisk"); err != nil {
			return img, kernel, ramdisk, err
		}
	}
	return img, kernel, ramdisk, nil
}

func (c *Cloud) bootImage(ctx context.Context, accountID, id, kind, code, noun string) (store.Image, error) {
	im, ok, err := c.visibleImage(ctx, accountID, id)
	if err != nil {
		return im, err
	}
	if !ok || im.Kind != kind {
		return im, awserr.New(code, "The %s ID '%s' does not exist", noun, id)
	}
	if im.State != store.ImageAvailable {
		return im, awserr.New("InvalidAMIID.Unavailable", "The image id '[%s]' is not available (its state is %s)", id, im.State)
	}
	return im, nil
}

func imageRef(im store.Image) ncapi.ImageRef {
	return ncapi.ImageRef{ID: im.ID, SHA256: im.SHA256, Size: im.SizeBytes}
}

func optImageRef(im store.Image) *ncapi.ImageRef {
	if im.ID == "" {
		return nil
	}
	r := imageRef(im)
	return &r
}

// launchSubnet is the subnet a launch lands in: the one named, else the
// default subnet of the zone named, else of the first zone a cluster serves.
func (c *Cloud) launchSubnet(ctx context.Context, accountID, zone, subnetID string) (store.Subnet, error) {
	if zone != "" && !slices.Contains(c.Zones(), zone) {
		return store.Subnet{}, awserr.InvalidParameterValue("Invalid availability zone: [%s]", zone)
	}
	subnets, err := c.store.Subnets(ctx, accountID)
	if err != nil {
		return store.Subnet{}, fmt.Errorf("subnets: %w", err)
	}
	if subnetID != "" {
		for _, sn := range subnets {
			if sn.ID == subnetID {
				if zone != "" && zone != sn.Zone {
					return store.Subnet{}, awserr.InvalidParameterValue("The subnet %s is in %s, not in the availability zone %s requested", sn.ID, sn.Zone, zone)
				}
				return sn, nil
			}
		}
		return store.Subnet{}, awserr.New("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
	}
	if zone == "" {
		zone = c.Zones()[0]
		for _, z := range c.Zones() {
			if c.inst.cluster(z) != nil {
				zone = z
				break
			}
		}
	}
	for _, sn := range subnets {
		if sn.Zone == zone && sn.DefaultForAZ {
			return sn, nil
		}
	}
	return store.Subnet{}, awserr.New("MissingInput", "No default subnet for availability zone: '%s'.", zone)
}

// launchGroups resolves the groups named and given by id, which must be in
// the subnet's VPC; none means the VPC's default group.
func (c *Cloud) launchGroups(ctx context.Context, accountID string, subnet store.Subnet, names, groupIDs []string) ([]store.GroupRef, error) {
	var out []store.GroupRef
	add := func(g store.SecurityGroup) {
		for _, have := range out {
			if have.ID == g.ID {
				return
			}
		}
		out = append(out, store.GroupRef{ID: g.ID, Name: g.Name})
	}
	for _, name := range names {
		g, err := c.store.SecurityGroupByName(ctx, accountID, subnet.VPCID, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, awserr.New("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", name, subnet.VPCID)
		}
		if err != nil {
			return nil, fmt.Errorf("security group %s: %w", name, err)
		}
		add(g)
	}
	for _, id := range groupIDs {
		g, err := c.groupInVPC(ctx, accountID, id, subnet)
		if err != nil {
			return nil, err
		}
		add(g)
		if len(out) > MaxSecurityGroupsPerInterface {
			return nil, tooManyGroups()
		}
	}
	if len(out) > MaxSecurityGroupsPerInterface {
		return nil, tooManyGroups()
	}
	if len(out) == 0 {
		if err := c.ensureDefaultSecurityGroup(ctx, accountID, subnet.VPCID); err != nil {
			return nil, err
		}
		g, err := c.store.SecurityGroupByName(ctx, accountID, subnet.VPCID, DefaultSecurityGroup)
		if err != nil {
			return nil, fmt.Errorf("default security group: %w", err)
		}
		add(g)
	}
	return out, nil
}

// tooManyGroups refuses an instance more groups than
// MaxSecurityGroupsPerInterface (AWS's default quota, which
// DescribeAccountAttributes reports): each group's rules are chains of
// every filtering host's table, which an unbounded list would swell.
func tooManyGroups() error {
	return awserr.New("SecurityGroupsPerInstanceLimitExceeded",
		"The maximum number of security groups per instance (%d) has been reached.", MaxSecurityGroupsPerInterface)
}

func (c *Cloud) groupInVPC(ctx context.Context, accountID, id string, subnet store.Subnet) (store.SecurityGroup, error) {
	if !sgIDPattern.MatchString(id) {
		return store.SecurityGroup{}, awserr.New("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
	}
	g, err := c.store.SecurityGroup(ctx, accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return g, sgNotFound(id)
	}
	if err != nil {
		return g, fmt.Errorf("security group %s: %w", id, err)
	}
	if g.VPCID != subnet.VPCID {
		return g, awserr.New("InvalidParameter", "Security group %s and subnet %s belong to different networks.", id, subnet.ID)
	}
	return g, nil
}

var (
	errAddressInUse    = errors.New("address in use")
	errAddressReserved = errors.New("address reserved")
	// errNoPair: STATIC's VNET_MACMAP has no pair left. Unlike an exhausted
	// subnet, the cloud's capacity is what runs out: EC2's
	// InsufficientInstanceCapacity.
	errNoPair                = errors.New("no free VNET_MACMAP pair")
	errAddressOutsideSegment = errors.New("address outside the group's segment")
)

// managed reports whether VNET_MODE is MANAGED: a segment per security group.
func (c *Cloud) managed() bool { return strings.EqualFold(c.cfg.VNetMode, "MANAGED") }

// segmentRange is the segments a zone whose private space is p may give its
// groups: in MANAGED, the VNET_ADDRSPERNET blocks of VNET_SUBNET inside p
// (all of them with one zone), numbered as the cluster's network mode
// numbers them; none in the other modes.
func (c *Cloud) segmentRange(p netip.Prefix) store.SegmentRange {
	if !c.managed() {
		return store.SegmentRange{}
	}
	first, n := ipam.SegmentsIn(c.cfg.VNetSubnet, c.cfg.VNetAddrsPerNet, p)
	return store.SegmentRange{First: first, Count: n}
}

// allocator gives instances their addresses in p: the one asked for
// (want), or the network mode's next one. STATIC mode hands out the
// administrator's VNET_MACMAP pairs (want must be one of them); SYSTEM
// gives a random MAC and no address (the outside DHCP server picks it and
// the node reports it); the others take the next free address and derive
// the MAC from it: in MANAGED, of the segment the store gave the launch's
// first security group (its network: VNET_ADDRSPERNET addresses whose
// first is the network's, second the gateway's, last the broadcast, as
// Eucalyptus's vnetwork.c laid them out).
func (c *Cloud) allocator(p netip.Prefix, want netip.Addr) store.AddressAllocator {
	var reserved []netip.Addr
	if c.cfg.VNetRouter.IsValid() {
		reserved = append(reserved, c.cfg.VNetRouter)
	}
	if c.cfg.VNetBroadcast.IsValid() {
		reserved = append(reserved, c.cfg.VNetBroadcast)
	}
	reserved = append(reserved, c.cfg.VNetDNS...)
	return func(used []netip.Addr, macs []string, segment int) (netip.Addr, string, error) {
		switch strings.ToUpper(c.cfg.VNetMode) {
		case "STATIC":
			pairs := c.cfg.VNetMACMap
			if want.IsValid() {
				i := slices.IndexFunc(pairs, func(m conf.MACIP) bool { return m.IP == want })
				if i < 0 {
					return want, "", errAddressReserved
				}
				if slices.Contains(used, want) {
					return want, "", errAddressInUse
				}
				pairs = pairs[i : i+1]
			}
			pair, err := ipam.NextPair(pairs, used)
			if err != nil {
				return pair.IP, "", fmt.Errorf("%w: %w", errNoPair, err)
			}
			return pair.IP, strings.ToLower(pair.MAC.String()), nil
		case "SYSTEM":
			return netip.Addr{}, ipam.RandomMAC(macs...).String(), nil
		}
		p := p
		if segment >= 0 {
			seg, err := ipam.Segment(c.cfg.VNetSubnet, c.cfg.VNetAddrsPerNet, segment)
			if err != nil {
				return netip.Addr{}, "", fmt.Errorf("segment %d: %w", segment, err)
			}
			if want.IsValid() && !seg.Contains(want) {
				return want, "", fmt.Errorf("%w: %s", errAddressOutsideSegment, seg)
			}
			p = seg
		}
		if want.IsValid() {
			if slices.Contains(used, want) {
				return want, "", errAddressInUse
			}
			m := p.Masked()
			if want == m.Addr() || want == ipam.Gateway(m) || want == ipam.Broadcast(m) || slices.Contains(reserved, want) {
				return want, "", errAddressReserved
			}
			return want, ipam.MAC(want).String(), nil
		}
		ip, err := ipam.Next(p, used, reserved...)
		if err != nil {
			return ip, "", err
		}
		return ip, ipam.MAC(ip).String(), nil
	}
}

// ---- the other instance actions

// DescribeInstances lists the account's instances (terminated ones for an
// hour); with ids, exactly those, InvalidInstanceID.NotFound naming the
// missing ones.
func (c *Cloud) DescribeInstances(ctx context.Context, accountID string, instanceIDs []string) ([]store.Instance, error) {
	read := c.store.Instances
	if len(instanceIDs) > 0 {
		// Only the instances named: a call about one instance (a client
		// waiting for it to run, TerminateInstances) must not read all.
		read = func(ctx context.Context, accountID string) ([]store.Instance, error) {
			return c.store.InstancesByID(ctx, accountID, instanceIDs)
		}
	}
	all, err := read(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	return byIDsOrAll(all, instanceIDs, func(in store.Instance) string { return in.ID }, "InvalidInstanceID.NotFound", "instance")
}

// TerminateInstances moves the instances to shutting-down and asks their
// cluster to stop them; the reconcile loop sees them terminated. An
// instance with termination protection refuses the whole call.
func (c *Cloud) TerminateInstances(ctx context.Context, accountID string, instanceIDs []string) ([]store.InstanceTransition, error) {
	defer c.inst.touch()
	all, err := c.DescribeInstances(ctx, accountID, instanceIDs)
	if err != nil {
		return nil, err
	}
	zoneOf := map[string]string{}
	var unique []string
	for _, in := range all {
		zoneOf[in.ID] = in.Zone
		unique = append(unique, in.ID)
	}
	reason := fmt.Sprintf("User initiated (%s GMT)", timeNow().UTC().Format("2006-01-02 15:04:05"))
	tr, err := c.store.TerminateInstances(ctx, accountID, unique, reason)
	var prot *store.TerminationProtectedError
	var missing *store.MissingResourceError
	switch {
	case errors.As(err, &prot):
		return nil, awserr.New("OperationNotPermitted",
			"The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", prot.ID)
	case errors.As(err, &missing):
		return nil, missingIDsError("InvalidInstanceID.NotFound", "instance", []string{missing.ID})
	case err != nil:
		return nil, fmt.Errorf("terminate instances: %w", err)
	}
	byZone := map[string][]string{}
	for _, t := range tr {
		if t.Current == store.InstanceShuttingDown && t.Previous != store.InstanceShuttingDown {
			byZone[zoneOf[t.ID]] = append(byZone[zoneOf[t.ID]], t.ID)
		}
	}
	for zone, stop := range byZone {
		cl := c.inst.cluster(zone)
		if cl == nil {
			// No cluster serves the zone: nothing of them runs anywhere.
			for _, id := range stop {
				if _, err := c.store.SetInstanceState(ctx, id, []string{store.InstanceShuttingDown}, store.StateChange{State: store.InstanceTerminated}); err != nil {
					return nil, fmt.Errorf("terminate %s: %w", id, err)
				}
			}
			continue
		}
		if err := cl.TerminateInstances(ctx, stop); err != nil {
			// The reconcile loop sends it again.
			c.log.Warn("terminate instances", "zone", zone, "instances", stop, "err", err)
		}
	}
	return tr, nil
}

// RebootInstances asks the clusters to reset the running instances among
// those named; the others are left as they are, as EC2 does.
func (c *Cloud) RebootInstances(ctx context.Context, accountID string, instanceIDs []string) error {
	defer c.inst.touch()
	all, err := c.DescribeInstances(ctx, accountID, instanceIDs)
	if err != nil {
		return err
	}
	byZone := map[string][]string{}
	for _, in := range all {
		if in.State == store.InstanceRunning {
			byZone[in.Zone] = append(byZone[in.Zone], in.ID)
		}
	}
	for zone, list := range byZone {
		cl := c.inst.cluster(zone)
		if cl == nil {
			continue
		}
		if err := cl.RebootInstances(ctx, list); err != nil {
			return fmt.Errorf("reboot %s: %w", strings.Join(list, ", "), err)
		}
	}
	return nil
}

// ConsoleOutput is the instance's console as its node keeps it; nothing
// when no node has it (yet, or any more).
func (c *Cloud) ConsoleOutput(ctx context.Context, accountID, instanceID string) ([]byte, error) {
	in, err := c.store.Instance(ctx, accountID, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missingIDsError("InvalidInstanceID.NotFound", "instance", []string{instanceID})
	}
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", instanceID, err)
	}
	cl := c.inst.cluster(in.Zone)
	if cl == nil {
		return nil, nil
	}
	out, err := cl.ConsoleOutput(ctx, in.ID)
	if errors.Is(err, ccapi.ErrNoSuchInstance) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console of %s: %w", in.ID, err)
	}
	return out, nil
}

// ModifyInstanceAttribute changes one attribute of an instance. The type,
// kernel, ramdisk, user data and EBS optimisation change only while it is
// stopped; a new group set must be in the instance's VPC and is handed to
// the network at once.
func (c *Cloud) ModifyInstanceAttribute(ctx context.Context, accountID, instanceID string, u store.InstanceUpdate, groupIDs []string) error {
	in, err := c.store.Instance(ctx, accountID, instanceID)
	if errors.Is(err, store.ErrNotFound) {
		return missingIDsError("InvalidInstanceID.NotFound", "instance", []string{instanceID})
	}
	if err != nil {
		return fmt.Errorf("instance %s: %w", instanceID, err)
	}
	if in.State == store.InstanceTerminated {
		return awserr.New("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be modified.", in.ID)
	}
	if (u.InstanceType != nil || u.KernelID != nil || u.RamdiskID != nil || u.UserData != nil || u.EBSOptimized != nil) &&
		in.State != store.InstanceStopped {
		return awserr.New("IncorrectInstanceState", "The instance '%s' is not in the 'stopped' state.", in.ID)
	}
	if u.InstanceType != nil {
		if _, err := c.vmType(ctx, *u.InstanceType); err != nil {
			return awserr.New("InvalidInstanceAttributeValue", "The instanceType '%s' is invalid.", *u.InstanceType)
		}
	}
	if u.KernelID != nil && *u.KernelID != "" {
		if _, err := c.bootImage(ctx, accountID, *u.KernelID, store.ImageKernel, "InvalidKernelID.NotFound", "kernel"); err != nil {
			return err
		}
	}
	if u.RamdiskID != nil && *u.RamdiskID != "" {
		if _, err := c.bootImage(ctx, accountID, *u.RamdiskID, store.ImageRamdisk, "InvalidRamDiskID.NotFound", "ramdisk"); err != nil {
			return err
		}
	}
	if u.UserData != nil && len(*u.UserData) > MaxUserData {
		return awserr.InvalidParameterValue("User data is limited to %d bytes", MaxUserData)
	}
	if groupIDs != nil {
		subnet := store.Subnet{ID: in.SubnetID, VPCID: in.VPCID}
		u.Groups = []store.GroupRef{}
		for _, id := range groupIDs {
			g, err := c.groupInVPC(ctx, accountID, id, subnet)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(u.Groups, func(r store.GroupRef) bool { return r.ID == g.ID }) {
				u.Groups = append(u.Groups, store.GroupRef{ID: g.ID, Name: g.Name})
			}
			if len(u.Groups) > MaxSecurityGroupsPerInterface {
				return tooManyGroups()
			}
		}
		// In MANAGED the first group is the instance's network: its address
		// is in that group's segment, so the first group stays; the others
		// change freely.
		if c.managed() && len(in.Groups) > 0 && len(u.Groups) > 0 && u.Groups[0].ID != in.Groups[0].ID {
			return awserr.InvalidParameterValue("In MANAGED mode the first security group (%s) is the instance's network and cannot change while it lives; list it first.", in.Groups[0].ID)
		}
	}
	if err := c.store.UpdateInstance(ctx, accountID, in.ID, u); err != nil {
		return fmt.Errorf("modify %s: %w", in.ID, err)
	}
	if groupIDs != nil {
		c.pushNetworks(ctx, map[string]bool{in.Zone: true}, "network after an instance's group change; sent again at the next reconcile")
	}
	return nil
}

// ---- the network of a zone

// zoneNetwork is the desired network of a zone, whole: every live
// instance, every group they are in with its rules both ways, the metadata
// service's address.
func (c *Cloud) zoneNetwork(ctx context.Context, zone string) (ccapi.Network, error) {
	n := ccapi.Network{Subnet: c.zonePrefix(ctx, zone), Instances: []ccapi.NetInstance{}, Groups: []ccapi.SecurityGroup{}}
	c.inst.mu.Lock()
	n.Metadata = c.inst.metadata
	c.inst.mu.Unlock()
	if !n.Metadata.IsValid() && c.cfg.MetadataPort > 0 {
		// The listener itself, on loopback: the cluster shares this host
		// (see metadata.go for when it will not).
		n.Metadata = c.MetadataListenAddr()
	}
	n.Metadata = c.zoneMetadata(zone, n.Metadata)
	live, err := c.store.ZoneInstances(ctx, zone)
	if err != nil {
		return n, err
	}
	seen := map[string]bool{}
	var groupIDs []string
	for _, in := range live {
		ni := ccapi.NetInstance{ID: in.ID, MAC: in.MAC, Groups: []string{}}
		ni.PrivateIP, _ = netip.ParseAddr(in.PrivateIP)
		if in.PublicIP != "" {
			ni.PublicIP, _ = netip.ParseAddr(in.PublicIP)
		}
		for _, g := range in.Groups {
			ni.Groups = append(ni.Groups, g.ID)
			if !seen[g.ID] {
				seen[g.ID] = true
				groupIDs = append(groupIDs, g.ID)
			}
		}
		n.Instances = append(n.Instances, ni)
	}
	sort.Strings(groupIDs)
	rules, err := c.store.NetworkRules(ctx, groupIDs)
	if err != nil {
		return n, err
	}
	var segments map[string]int
	if c.managed() {
		if segments, err = c.store.ZoneSegments(ctx, zone); err != nil {
			return n, err
		}
	}
	for _, id := range groupIDs {
		g := ccapi.SecurityGroup{ID: id, Segment: segments[id], Ingress: []ccapi.Rule{}, Egress: []ccapi.Rule{}}
		for _, r := range rules[id] {
			rule := ccapi.Rule{Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort}
			switch {
			case r.PeerGroupID != "":
				rule.PeerGroup = r.PeerGroupID
			case r.CIDRIPv4 != "":
				p, err := netip.ParsePrefix(r.CIDRIPv4)
				if err != nil {
					continue
				}
				rule.CIDR = p
			default:
				continue // IPv6 and prefix lists: the private network is IPv4 only
			}
			if r.Egress {
				g.Egress = append(g.Egress, rule)
			} else {
				g.Ingress = append(g.Ingress, rule)
			}
		}
		n.Groups = append(n.Groups, g)
	}
	return n, nil
}

// groupsChanged hands every zone's network to its cluster at once after a
// security group changed, so that the change is in force when the call
// that made it returns rather than at the next reconcile (sendNetwork
// skips the zones it leaves as they were). A failure is logged: the
// reconcile loop sends again.
func (c *Cloud) groupsChanged(ctx context.Context) {
	zones := map[string]bool{}
	for zone := range c.inst.allClusters() {
		zones[zone] = true
	}
	c.pushNetworks(ctx, zones, "network after a security group change; sent again at the next reconcile")
}

// pushNetworks hands the networks of zones to their clusters at once, the
// zones side by side, each within pushWait; a failure is logged with msg.
func (c *Cloud) pushNetworks(ctx context.Context, zones map[string]bool, msg string) {
	// The change is made: a caller gone does not undo it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushWait)
	defer cancel()
	var wg sync.WaitGroup
	for zone := range zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.sendNetwork(ctx, zone, false); err != nil {
				c.log.WarnContext(ctx, msg, "zone", zone, "err", err)
			}
		}()
	}
	wg.Wait()
}

// sendNetwork hands a zone's network to its cluster when it changed since
// it was last sent, when it has not been sent for a while, or when force
// says so (before a launch).
func (c *Cloud) sendNetwork(ctx context.Context, zone string, force bool) error {
	cl := c.inst.cluster(zone)
	if cl == nil {
		return nil
	}
	unlock, err := c.inst.lockZone(ctx, zone)
	if err != nil {
		return fmt.Errorf("network of %s: waiting for the one being sent: %w", zone, err)
	}
	defer unlock()
	n, err := c.zoneNetwork(ctx, zone)
	if err != nil {
		return fmt.Errorf("network of %s: %w", zone, err)
	}
	doc, err := json.Marshal(n)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	now := timeNow()
	c.inst.netMu.Lock()
	last, ok := c.inst.sent[zone]
	c.inst.netMu.Unlock()
	if !force && ok && last.hash == hash && now.Sub(last.at) < resendEvery {
		return nil
	}
	err = cl.SetNetwork(ctx, n)
	c.inst.netMu.Lock()
	defer c.inst.netMu.Unlock()
	if err != nil {
		delete(c.inst.sent, zone)
		return fmt.Errorf("hand the network of %s to its cluster: %w", zone, err)
	}
	if c.inst.sent == nil {
		c.inst.sent = map[string]sentNetwork{}
	}
	c.inst.sent[zone] = sentNetwork{hash: hash, at: now}
	return nil
}

// lockZone takes zone's network lock, or gives up when ctx ends first.
func (r *instanceRuntime) lockZone(ctx context.Context, zone string) (unlock func(), err error) {
	r.netMu.Lock()
	l, ok := r.netLocks[zone]
	if !ok {
		if r.netLocks == nil {
			r.netLocks = map[string]chan struct{}{}
		}
		l = make(chan struct{}, 1)
		r.netLocks[zone] = l
	}
	r.netMu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ---- the reconcile loop

// Run keeps the instances' states in step with what their clusters
// report, until ctx ends: see the pipeline at the top of this file.
func (c *Cloud) Run(ctx context.Context) error {
	storageDone := make(chan struct{})
	go func() { defer close(storageDone); c.runStorage(ctx) }() // volumes.go
	defer func() { <-storageDone }()
	t := time.NewTimer(reconcileEvery)
	defer t.Stop()
	for {
		if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("reconcile instances", "err", err)
		}
		t.Reset(c.inst.nextReconcile())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcile is one pass of Run.
func (c *Cloud) reconcile(ctx context.Context) error {
	types, err := c.ccTypes(ctx)
	if err != nil {
		return err
	}
	// The zones at once: a cluster controller that does not answer (its
	// calls retried until they time out) holds up only its own zone.
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for zone, cl := range c.inst.allClusters() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.reconcileZone(ctx, zone, cl, types); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("zone %s: %w", zone, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Launches a cloud controller before a restart left waiting for
	// their volumes (instances_resume.go).
	if err := c.resumeLaunches(ctx); err != nil {
		errs = append(errs, err)
	}
	// Addresses that terminated instances let go are lent to those
	// waiting for one (the zones' networks are sent next pass).
	if _, err := c.store.FillPublicAddresses(ctx, c.publicPool()); err != nil {
		errs = append(errs, fmt.Errorf("lend public addresses: %w", err))
	}
	// Images CreateImage made, once their snapshots are done.
	if err := c.reconcileImages(ctx); err != nil {
		errs = append(errs, fmt.Errorf("pending images: %w", err))
	}
	gone, err := c.store.DeleteTerminatedInstances(ctx, timeNow().Add(-terminatedKeep).UnixMilli())
	if err != nil {
		errs = append(errs, err)
	} else if len(gone) > 0 {
		c.log.Info("terminated instances removed", "instances", gone)
	}
	return errors.Join(errs...)
}

func (c *Cloud) reconcileZone(ctx context.Context, zone string, cl ccapi.Cluster, types []ccapi.VMType) error {
	// The poll comes before the records: an instance the poll reports was
	// recorded before its cluster heard of it, so a reported instance
	// missing from the records is truly no one's.
	st, err := cl.Describe(ctx, types)
	if err != nil {
		return fmt.Errorf("describe cluster: %w", err)
	}
	live, err := c.store.ZoneInstances(ctx, zone)
	if err != nil {
		return err
	}
	reported := make(map[string]ccapi.InstanceStatus, len(st.Instances))
	for _, is := range st.Instances {
		reported[is.ID] = is
	}
	allUp := true
	nodeUp := make(map[string]bool, len(st.Nodes))
	for _, n := range st.Nodes {
		up := n.Up || n.Asleep // a sleeping node is idle: it hides no instance
		allUp = allUp && up
		nodeUp[n.Host] = up
	}
	unreachable := map[string]ccapi.InstanceStatus{}
	for _, is := range st.Instances {
		if is.Unreachable != "" {
			unreachable[is.ID] = is
		}
	}
	now := timeNow()
	isLive := map[string]bool{}
	var stop, stopEBS []string
	set := func(in store.Instance, from string, ch store.StateChange) {
		ok, err := c.store.SetInstanceState(ctx, in.ID, []string{from}, ch)
		if err != nil {
			c.log.Warn("instance state", "instance", in.ID, "err", err)
			return
		}
		if ok {
			c.log.Info("instance state", "instance", in.ID, "from", from, "to", ch.State, "reason", ch.ReasonMessage)
		}
	}
	c.inst.mu.Lock()
	if c.inst.missing == nil {
		c.inst.missing = map[string]time.Time{}
	}
	missingFor := func(id string) time.Duration {
		since, ok := c.inst.missing[id]
		if !ok {
			c.inst.missing[id] = now
			return 0
		}
		return now.Sub(since)
	}
	lost := func(in store.Instance) bool {
		if c.inst.booting[in.ID] {
			return false
		}
		up := allUp
		if in.Node != "" {
			up = nodeUp[in.Node]
		}
		return up && missingFor(in.ID) > lostAfter
	}
	if c.inst.unreachable == nil {
		c.inst.unreachable = map[string]map[string]ccapi.InstanceStatus{}
	}
	c.inst.unreachable[zone] = unreachable
	if c.inst.nodes == nil {
		c.inst.nodes = map[string][]ccapi.NodeInfo{}
	}
	c.inst.nodes[zone] = st.Nodes
	var changes []func()
	for _, in := range live {
		isLive[in.ID] = true
		is, seen := reported[in.ID]
		if seen {
			delete(c.inst.missing, in.ID)
		}
		switch in.State {
		case store.InstancePending:
			switch {
			case seen && is.State == ncapi.StateRunning:
				launched := is.LaunchedAt
				if launched.IsZero() {
					launched = now
				}
				changes = append(changes, func() {
					set(in, store.InstancePending, store.StateChange{State: store.InstanceRunning, LaunchedMS: launched.UnixMilli(), Node: is.Node})
				})
			case seen && (is.State == ncapi.StateFailed || is.State == ncapi.StateTerminated):
				msg := "Server.InternalError: Internal error on launch"
				if is.Reason != "" {
					msg += " (" + is.Reason + ")"
				}
				changes = append(changes, func() {
					set(in, store.InstancePending, store.StateChange{State: store.InstanceTerminated,
						ReasonCode: "Server.InternalError", ReasonMessage: msg, TransitionReason: msg})
				})
			case seen && is.State == ncapi.StateShuttingDown:
				changes = append(changes, func() { set(in, store.InstancePending, store.StateChange{State: store.InstanceShuttingDown}) })
			case !seen && lost(in):
				changes = append(changes, func() { c.lose(in, set) })
			}
		case store.InstanceRunning:
			switch {
			case seen && (is.Lost || is.State == ncapi.StateFailed):
				// Its node lost it (a host that restarted), or the
				// guest failed: not the instance's doing.
				msg := "Server.InternalError: Internal error: " + is.Reason
				if is.Reason == "" {
					msg += "the instance failed on its node"
				}
				changes = append(changes, func() {
					set(in, store.InstanceRunning, store.StateChange{State: store.InstanceTerminated,
						ReasonCode: "Server.InternalError", ReasonMessage: msg, TransitionReason: msg})
				})
			case seen && is.State == ncapi.StateTerminated:
				changes = append(changes, func() {
					set(in, store.InstanceRunning, store.StateChange{State: store.InstanceTerminated,
						ReasonCode: "Client.InstanceInitiatedShutdown", ReasonMessage: "Client.InstanceInitiatedShutdown: Instance initiated shutdown"})
				})
			case seen && is.State == ncapi.StateShuttingDown:
				changes = append(changes, func() { set(in, store.InstanceRunning, store.StateChange{State: store.InstanceShuttingDown}) })
			case !seen && lost(in):
				changes = append(changes, func() { c.lose(in, set) })
			}
		case store.InstanceStopping, store.InstanceStopped:
			stopped, again := stoppingSeen(in, is, seen)
			if stopped {
				changes = append(changes, func() { c.instanceStopped(ctx, in.ID) })
			}
			if again {
				stopEBS = append(stopEBS, in.ID)
			}
		case store.InstanceShuttingDown:
			switch {
			case !seen || is.State == ncapi.StateTerminated || is.State == ncapi.StateFailed:
				changes = append(changes, func() { set(in, store.InstanceShuttingDown, store.StateChange{State: store.InstanceTerminated}) })
			case is.State != ncapi.StateShuttingDown && is.Unreachable == "":
				// The terminate did not reach it: again (once its node
				// answers: a node that is down cannot take it).
				stop = append(stop, in.ID)
			}
		}
	}
	for id := range c.inst.missing {
		if !isLive[id] {
			delete(c.inst.missing, id)
		}
	}
	c.inst.mu.Unlock()
	for _, f := range changes {
		f()
	}
	c.learnAddresses(ctx, live, reported)
	// Instances a node runs that no record asks for: a launch rolled back
	// after its cluster started it, or an instance deleted from the store.
	for id, is := range reported {
		if !isLive[id] && (is.State == ncapi.StatePending || is.State == ncapi.StateRunning) {
			stop = append(stop, id)
		}
	}
	sort.Strings(stop)
	var errs []error
	if len(stop) > 0 {
		if err := cl.TerminateInstances(ctx, stop); err != nil {
			errs = append(errs, fmt.Errorf("terminate %s: %w", strings.Join(stop, ", "), err))
		}
	}
	if err := c.stopAgain(ctx, cl, stopEBS); err != nil {
		errs = append(errs, err)
	}
	if err := c.sendNetwork(ctx, zone, false); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// learnAddresses records, in SYSTEM mode, the address each instance's
// node learned from its guest's DHCP (an outside server gives it):
// DescribeInstances and the metadata service (which knows its callers by
// their address) follow it, and the network sent to the cluster names it
// for the security groups. In the other modes the cloud gave the address
// and a node's report changes nothing.
func (c *Cloud) learnAddresses(ctx context.Context, live []store.Instance, reported map[string]ccapi.InstanceStatus) {
	if !strings.EqualFold(c.cfg.VNetMode, "SYSTEM") {
		return
	}
	for _, in := range live {
		is, seen := reported[in.ID]
		if !seen || !is.PrivateIP.Is4() || is.PrivateIP.String() == in.PrivateIP || is.Unreachable != "" {
			continue
		}
		if err := c.store.SetInstanceAddress(ctx, in.ID, is.PrivateIP); err != nil {
			c.log.Warn("instance address not recorded", "instance", in.ID, "addr", is.PrivateIP, "err", err)
			continue
		}
		c.log.Info("instance address learned", "instance", in.ID, "addr", is.PrivateIP, "was", in.PrivateIP)
	}
}

// lose ends an instance no node reports any more although every node
// answers.
func (c *Cloud) lose(in store.Instance, set func(store.Instance, string, store.StateChange)) {
	msg := "Server.InternalError: Internal error: the instance is no longer on any node"
	set(in, in.State, store.StateChange{State: store.InstanceTerminated, ReasonCode: "Server.InternalError", ReasonMessage: msg, TransitionReason: msg})
}

// Unreachable says which of the instances ids (all when nil) sit on a node
// their cluster could not reach at the last reconcile, as the cluster
// reported them (Unreachable says why, UnreachableSince since when): their
// state is the last known, and DescribeInstanceStatus reports them
// impaired rather than passing.
func (c *Cloud) Unreachable(ids []string) map[string]nodeview.Unreachable {
	c.inst.mu.Lock()
	defer c.inst.mu.Unlock()
	out := map[string]nodeview.Unreachable{}
	for _, zone := range c.inst.unreachable {
		for id, is := range zone {
			if ids == nil || slices.Contains(ids, id) {
				out[id] = nodeview.Unreachable{Why: is.Unreachable, Since: is.UnreachableSince}
			}
		}
	}
	return out
}

// ZoneNodes are a zone's nodes as the last reconcile's poll of its cluster
// reported them; known is false before the first.
func (c *Cloud) ZoneNodes(zone string) (nodes []nodeview.Node, known bool) {
	c.inst.mu.Lock()
	defer c.inst.mu.Unlock()
	infos, known := c.inst.nodes[zone]
	for _, n := range infos {
		nodes = append(nodes, nodeview.Node{Host: n.Host, Port: n.Port, Up: n.Up, Asleep: n.Asleep,
			Free: nodeview.Resources(n.Free), Max: nodeview.Resources(n.Max), LastSeen: n.LastSeen, Error: n.Error})
	}
	return nodes, known
}
