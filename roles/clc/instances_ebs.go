package clc

// EBS-backed instances: StopInstances and StartInstances.
//
// Only an instance whose root device is an EBS volume stops (EC2 refuses
// instance-store ones with UnsupportedOperation). Stopping is
// stopping → (the cluster powers the guest off and frees its node:
// ccapi.Cluster.StopInstances) → stopped, which the reconcile loop sees
// when the cluster no longer reports the instance running. A stopped
// instance keeps its records: private address, MAC, security groups,
// tags, elastic IP and volumes; a public address lent from the pool goes
// back to it (as EC2 does). StartInstances is stopped → pending: the
// instance is placed again (any node of its zone), its volumes exported to
// that node, and run under the same id; the reconcile loop then sees it
// running as after a launch.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/euca-cloud/euca/internal/awserr"
	"github.com/euca-cloud/euca/roles/cc/ccapi"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// StopInstances stops EBS-backed instances, all or none. force and
// hibernate are accepted as EC2 takes them: the guest is powered off
// either way (a hibernation that cannot be done is a normal stop, as EC2
// documents), and a forced stop is what the node does when the guest does
// not power off by itself.
func (c *Cloud) StopInstances(ctx context.Context, accountID string, instanceIDs []string, force, hibernate bool) ([]store.InstanceTransition, error) {
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
	tr, err := c.store.StopInstances(ctx, accountID, unique, reason)
	var notEBS *store.NotEBSError
	var state *store.InstanceStateError
	var prot *store.StopProtectedError
	var missing *store.MissingResourceError
	switch {
	case errors.As(err, &notEBS):
		return nil, awserr.New("UnsupportedOperation", "The instance '%s' does not have an 'ebs' root device type and cannot be stopped.", notEBS.ID)
	case errors.As(err, &state):
		return nil, awserr.New("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be stopped.", state.ID)
	case errors.As(err, &prot):
		return nil, awserr.New("OperationNotPermitted",
			"The instance '%s' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.", prot.ID)
	case errors.As(err, &missing):
		return nil, missingIDsError("InvalidInstanceID.NotFound", "instance", []string{missing.ID})
	case err != nil:
		return nil, fmt.Errorf("stop instances: %w", err)
	}
	byZone := map[string][]string{}
	for _, t := range tr {
		if t.Current == store.InstanceStopping && t.Previous != store.InstanceStopping {
			byZone[zoneOf[t.ID]] = append(byZone[zoneOf[t.ID]], t.ID)
		}
	}
	for zone, stop := range byZone {
		cl := c.inst.cluster(zone)
		if cl == nil {
			// No cluster serves the zone: nothing of them runs anywhere.
			for _, id := range stop {
				c.instanceStopped(ctx, id)
			}
			continue
		}
		if err := cl.StopInstances(ctx, stop); err != nil {
			// The reconcile loop sends it again.
			c.log.WarnContext(ctx, "stop instances", "zone", zone, "instances", stop, "err", err)
		}
	}
	c.log.InfoContext(ctx, "stop instances", "account", accountID, "instances", unique, "force", force, "hibernate", hibernate)
	return tr, nil
}

// instanceStopped records that a stopping instance is off: its node is
// free, its lent public address back in the pool, its volumes let go by
// the node.
func (c *Cloud) instanceStopped(ctx context.Context, id string) {
	ok, err := c.store.SetInstanceState(ctx, id, []string{store.InstanceStopping},
		store.StateChange{State: store.InstanceStopped, ReasonCode: "Client.UserInitiatedShutdown",
			ReasonMessage: "Client.UserInitiatedShutdown: User initiated shutdown"})
	if err != nil {
		c.log.WarnContext(ctx, "instance state", "instance", id, "err", err)
		return
	}
	if ok {
		c.log.InfoContext(ctx, "instance state", "instance", id, "from", store.InstanceStopping, "to", store.InstanceStopped)
	}
	// Its volumes stay attached in the records; the node let them go, so
	// their exports go too (the next start exports them to its node).
	in, err := c.store.InstanceByID(ctx, id)
	if err == nil {
		err = c.unexportInstanceVolumes(ctx, in)
	}
	if err != nil {
		c.log.WarnContext(ctx, "stopped instance's volume exports", "instance", id, "err", err)
	}
}

// pickNode chooses the node of a zone an instance with volumes runs on:
// of the nodes up and awake, the one with the most free memory that fits.
func (c *Cloud) pickNode(ctx context.Context, cl ccapi.Cluster, need ncapi.Resources) (string, error) {
	types, err := c.ccTypes(ctx)
	if err != nil {
		return "", err
	}
	st, err := cl.Describe(ctx, types)
	if err != nil {
		return "", fmt.Errorf("nodes of %s: %w", cl.Zone(), err)
	}
	best, bestFree := "", -1
	for _, n := range st.Nodes {
		if n.Up && !n.Asleep && n.Free.Fits(need) && n.Free.MemoryMiB > bestFree {
			best, bestFree = n.Host, n.Free.MemoryMiB
		}
	}
	if best == "" {
		return "", ccapi.ErrInsufficientCapacity
	}
	return best, nil
}

// launchVolumes makes the volumes of a launch's block device mapping for
// each of its instances (creating: the storage controller makes them in
// the background) and starts, for each instance, what boots it once they
// exist: attached, exported to the node chosen, run there. The instances
// stay pending meanwhile. When a volume cannot even be recorded, the
// launch is undone: its volumes deleted, its instances removed.
func (c *Cloud) launchVolumes(ctx context.Context, cl ccapi.Cluster, zone string, insts []store.Instance, devs []store.ImageBlockDevice, tags []store.Tag) error {
	made := make([][]store.Volume, len(insts))
	for i, in := range insts {
		for _, d := range devs {
			v, err := c.createVolume(ctx, in.AccountID, store.VolumeSpec{Zone: zone, SizeGiB: d.VolumeSize, SnapshotID: d.SnapshotID,
				Type: d.VolumeType, Tags: tags})
			if err != nil {
				for _, vs := range made {
					for _, v := range vs {
						if derr := c.DeleteVolume(context.WithoutCancel(ctx), in.AccountID, v.ID); derr != nil {
							c.log.WarnContext(ctx, "volume of a failed launch", "volume", v.ID, "err", derr)
						}
					}
				}
				c.rollback(ctx, cl, zone, insts, false)
				return err
			}
			made[i] = append(made[i], v)
		}
	}
	// Recorded before they boot: a cloud controller restarted while they
	// wait for their volumes resumes them from these records
	// (instances_resume.go).
	var recs []store.LaunchVolume
	launches := make([][]store.LaunchVolume, len(insts))
	for i, in := range insts {
		for k, v := range made[i] {
			lv := store.LaunchVolume{VolumeID: v.ID, InstanceID: in.ID, Device: devs[k].Device,
				DeleteOnTermination: devs[k].DeleteOnTermination, BootIndex: k}
			launches[i] = append(launches[i], lv)
			recs = append(recs, lv)
		}
	}
	c.inst.mu.Lock()
	if c.inst.booting == nil {
		c.inst.booting = map[string]bool{}
	}
	for _, in := range insts {
		c.inst.booting[in.ID] = true
	}
	c.inst.mu.Unlock()
	if err := c.store.RecordLaunchVolumes(ctx, recs); err != nil {
		c.inst.mu.Lock()
		for _, in := range insts {
			delete(c.inst.booting, in.ID)
		}
		c.inst.mu.Unlock()
		for _, vs := range made {
			for _, v := range vs {
				if derr := c.DeleteVolume(context.WithoutCancel(ctx), v.AccountID, v.ID); derr != nil {
					c.log.WarnContext(ctx, "volume of a failed launch", "volume", v.ID, "err", derr)
				}
			}
		}
		c.rollback(ctx, cl, zone, insts, false)
		return err
	}
	for i, in := range insts {
		c.inst.boots.Add(1)
		go c.bootLaunched(context.WithoutCancel(ctx), in, launches[i])
	}
	return nil
}

// bootWait bounds how long a launched instance waits for its volumes and
// its start.
var bootWait = 15 * time.Minute

// errLaunchTaken: another (a goroutine of this process, or of a cloud
// controller before a restart) took the launch and boots the instance.
var errLaunchTaken = errors.New("launch taken by another")

// bootLaunched waits for a launched instance's new volumes to exist, takes
// the launch (store.TakeLaunch: only one boots it, however many wait),
// attaches them and boots it; when it cannot, the instance is terminated
// (Server.InternalError, as a failed boot) and its volumes let go as its
// DeleteOnTermination says. The launch's volumes are recorded
// (store.LaunchVolume) until it is taken, so that a cloud controller
// restarted meanwhile calls it again (resumeLaunches).
func (c *Cloud) bootLaunched(ctx context.Context, in store.Instance, vols []store.LaunchVolume) {
	ctx, cancel := context.WithTimeout(ctx, bootWait)
	defer cancel()
	defer func() {
		c.inst.mu.Lock()
		delete(c.inst.booting, in.ID)
		c.inst.mu.Unlock()
		c.inst.touch()
		c.inst.boots.Done()
	}()
	err := func() error {
		var waitErr error
		cur, err := c.store.InstanceByID(ctx, in.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			// Still recorded: the next reconcile pass resumes it.
			c.log.WarnContext(ctx, "launched instance", "instance", in.ID, "err", err)
			return errLaunchTaken
		}
		if err == nil && cur.State == store.InstancePending {
			for _, lv := range vols {
				v, err := c.store.VolumeByID(ctx, lv.VolumeID)
				if err != nil {
					waitErr = volumeError(lv.VolumeID, err)
					break
				}
				if v.State == store.VolumeCreating {
					if waitErr = c.waitVolume(ctx, v); waitErr != nil {
						break
					}
				}
			}
		}
		took, err := c.store.TakeLaunch(context.WithoutCancel(ctx), in.ID)
		if err != nil {
			// Still recorded: the next reconcile pass resumes it.
			c.log.WarnContext(ctx, "take launch", "instance", in.ID, "err", err)
			return errLaunchTaken
		}
		if !took {
			return errLaunchTaken
		}
		if waitErr != nil {
			return waitErr
		}
		if cur, err := c.store.InstanceByID(ctx, in.ID); err != nil || cur.State != store.InstancePending {
			return fmt.Errorf("instance %s is %s (%v)", in.ID, cur.State, err) // terminated meanwhile
		}
		for _, lv := range vols {
			if err := c.attachAtLaunch(ctx, in.AccountID, lv.VolumeID, in.ID, lv.Device, lv.DeleteOnTermination, lv.BootIndex); err != nil {
				return err
			}
		}
		cur, err = c.store.InstanceByID(ctx, in.ID)
		if err != nil {
			return err
		}
		if cur.State != store.InstancePending {
			return fmt.Errorf("instance %s is %s", in.ID, cur.State) // terminated meanwhile
		}
		return c.boot(ctx, cur)
	}()
	if err == nil || errors.Is(err, errLaunchTaken) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	c.log.WarnContext(ctx, "EBS-backed instance did not start", "instance", in.ID, "err", err)
	msg := "Server.InternalError: Internal error on launch (" + err.Error() + ")"
	if _, serr := c.store.SetInstanceState(ctx, in.ID, []string{store.InstancePending}, store.StateChange{State: store.InstanceTerminated,
		ReasonCode: "Server.InternalError", ReasonMessage: msg, TransitionReason: msg}); serr != nil {
		c.log.ErrorContext(ctx, "instance that did not start left pending", "instance", in.ID, "err", serr)
	}
	c.releaseInstanceVolumes(ctx, in.ID)
	for _, lv := range vols {
		// Volumes never attached: the mapping's DeleteOnTermination says.
		if cur, err := c.store.VolumeByID(ctx, lv.VolumeID); err == nil && cur.Attachment == nil && lv.DeleteOnTermination {
			if err := c.DeleteVolume(ctx, in.AccountID, lv.VolumeID); err != nil {
				c.log.WarnContext(ctx, "volume of an instance that did not start", "volume", lv.VolumeID, "err", err)
			}
		}
	}
}

// StartInstances starts stopped instances, all or none; pending and
// running ones are answered as they are. Each is placed again and run with
// its volumes; one that cannot be placed (no capacity) stays stopped and
// fails the call, as EC2 answers InsufficientInstanceCapacity.
func (c *Cloud) StartInstances(ctx context.Context, accountID string, instanceIDs []string) ([]store.InstanceTransition, error) {
	defer c.inst.touch()
	all, err := c.DescribeInstances(ctx, accountID, instanceIDs)
	if err != nil {
		return nil, err
	}
	byID := map[string]store.Instance{}
	var unique []string
	for _, in := range all {
		byID[in.ID] = in
		unique = append(unique, in.ID)
	}
	tr, err := c.store.StartInstances(ctx, accountID, unique)
	var state *store.InstanceStateError
	var missing *store.MissingResourceError
	switch {
	case errors.As(err, &state):
		return nil, awserr.New("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be started.", state.ID)
	case errors.As(err, &missing):
		return nil, missingIDsError("InvalidInstanceID.NotFound", "instance", []string{missing.ID})
	case err != nil:
		return nil, fmt.Errorf("start instances: %w", err)
	}
	var started []store.Instance
	for _, t := range tr {
		if t.Previous == store.InstanceStopped && t.Current == store.InstancePending {
			started = append(started, byID[t.ID])
		}
	}
	if len(started) == 0 {
		return tr, nil
	}
	if _, err := c.store.FillPublicAddresses(ctx, c.publicPool()); err != nil {
		c.log.WarnContext(ctx, "lend public addresses", "err", err)
	}
	var errs []error
	for _, in := range started {
		if err := c.boot(ctx, in); err != nil {
			// It did not start: stopped again, as it was, its volumes'
			// exports withdrawn.
			bg := context.WithoutCancel(ctx)
			if _, serr := c.store.SetInstanceState(bg, in.ID, []string{store.InstancePending},
				store.StateChange{State: store.InstanceStopped}); serr != nil {
				c.log.ErrorContext(ctx, "instance that did not start left pending", "instance", in.ID, "err", serr)
			}
			if uerr := c.unexportInstanceVolumes(bg, in); uerr != nil {
				c.log.WarnContext(ctx, "exports of an instance that did not start", "instance", in.ID, "err", uerr)
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		var ae *awserr.Error
		if errors.As(errs[0], &ae) {
			return nil, ae
		}
		return nil, fmt.Errorf("start instances: %w", errors.Join(errs...))
	}
	return tr, nil
}

// boot hands an instance recorded pending to its zone's cluster: its
// network first, then the request to run it.
func (c *Cloud) boot(ctx context.Context, in store.Instance) error {
	cl := c.inst.cluster(in.Zone)
	if cl == nil {
		return insufficientCapacity(in.InstanceType, in.Zone)
	}
	req, err := c.bootRequest(ctx, in)
	if err != nil {
		return err
	}
	if in.EBS() || len(in.BlockDevices) > 0 {
		// Its volumes are exported to one node: the cloud controller
		// chooses it, and the cluster runs the instance there.
		node, err := c.pickNode(ctx, cl, req.Holds)
		if errors.Is(err, ccapi.ErrInsufficientCapacity) {
			return insufficientCapacity(in.InstanceType, in.Zone)
		}
		if err != nil {
			return err
		}
		vols, err := c.exportForBoot(ctx, in, node, in.RootDeviceName)
		if err != nil {
			return fmt.Errorf("start %s: %w", in.ID, err)
		}
		if in.EBS() && !slices.ContainsFunc(vols, func(v ncapi.VolumeAttachment) bool { return v.Boot }) {
			return fmt.Errorf("start %s: no volume is attached on its root device %s", in.ID, in.RootDeviceName)
		}
		req.Node, req.Volumes = node, vols
	}
	if err := c.sendNetwork(ctx, in.Zone, true); err != nil {
		return fmt.Errorf("start %s: %w", in.ID, err)
	}
	placed, err := cl.RunInstances(ctx, []ccapi.InstanceRequest{req})
	if errors.Is(err, ccapi.ErrInsufficientCapacity) {
		return insufficientCapacity(in.InstanceType, in.Zone)
	}
	if err != nil {
		return fmt.Errorf("start %s in %s: %w", in.ID, in.Zone, err)
	}
	nodes := map[string]string{}
	for _, p := range placed {
		nodes[p.ID] = p.Node
	}
	if err := c.store.SetInstanceNodes(ctx, nodes); err != nil {
		c.log.WarnContext(ctx, "record placements", "err", err)
	}
	return nil
}

// bootRequest is what a node needs to run an instance already recorded:
// its type's size, kernel and ramdisk, address and MAC.
func (c *Cloud) bootRequest(ctx context.Context, in store.Instance) (ccapi.InstanceRequest, error) {
	vt, err := c.vmType(ctx, in.InstanceType)
	if err != nil {
		return ccapi.InstanceRequest{}, err
	}
	ip, _ := netip.ParseAddr(in.PrivateIP)
	r := ncapi.InstanceRequest{
		ID: in.ID, VMType: vt.Name, MAC: in.MAC, PrivateIP: ip,
		Holds: ncapi.Resources{Cores: vt.Cores, MemoryMiB: vt.MemoryMB, DiskGiB: vt.DiskGB},
	}
	for _, b := range []struct {
		id  string
		dst **ncapi.ImageRef
	}{{in.KernelID, &r.Kernel}, {in.RamdiskID, &r.Ramdisk}} {
		if b.id == "" {
			continue
		}
		im, err := c.store.ImageByID(ctx, b.id)
		if err != nil {
			return ccapi.InstanceRequest{}, awserr.New("InvalidParameterValue",
				"The instance %s cannot start: its image %s is no longer registered.", in.ID, b.id).WithCause(err)
		}
		ref := imageRef(im)
		*b.dst = &ref
	}
	if !in.EBS() {
		im, err := c.store.ImageByID(ctx, in.ImageID)
		if err != nil {
			return ccapi.InstanceRequest{}, fmt.Errorf("image %s of %s: %w", in.ImageID, in.ID, err)
		}
		r.Image = imageRef(im)
	}
	return ccapi.InstanceRequest{InstanceRequest: r}, nil
}

// stoppingSeen is the reconcile loop's view of a stopping or stopped
// instance: stopping ones the cluster no longer runs are stopped; those it
// still runs are stopped again (the stop did not reach it, or a node that
// was down came back with it).
func stoppingSeen(in store.Instance, is ccapi.InstanceStatus, seen bool) (stopped, again bool) {
	running := seen && (is.State == ncapi.StatePending || is.State == ncapi.StateRunning)
	gone := !seen || is.State == ncapi.StateTerminated || is.State == ncapi.StateFailed
	switch in.State {
	case store.InstanceStopping:
		return gone, running && is.Unreachable == ""
	case store.InstanceStopped:
		return false, running && is.Unreachable == ""
	}
	return false, false
}

// stopAgain re-sends the stop of instances the cluster still runs.
func (c *Cloud) stopAgain(ctx context.Context, cl ccapi.Cluster, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	if err := cl.StopInstances(ctx, ids); err != nil {
		return fmt.Errorf("stop %v: %w", ids, err)
	}
	return nil
}
