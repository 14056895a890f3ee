package nc

// EBS volumes on a node. The storage controller serves each attachment
// over NBD with TLS; the node does not hand that to QEMU (libvirt 9.0 has
// one NBD TLS identity per host and no reconnect), but serves every
// attachment on a unix socket of its own, root's only, in the instance's
// directory (or SocketDir, when that path is too long for a socket), with an nbd.Proxy that dials the storage controller under the
// node's certificate and, when that connection breaks (the SC restarted),
// dials again and resends what was not answered. QEMU's disk stops the
// guest on an I/O error rather than failing the guest's write; the node
// resumes such a guest once its volumes answer again (reconcileVolumes).
//
// The store's nc_volumes rows say which volumes each instance holds and
// how far an attach or detach got (the row is written before the
// hypervisor is touched): a restarted node serves them again, finishes a
// detach it was in the middle of, and takes an attach it was in the middle
// of as attached once the domain has it (Driver.AttachVolume is harmless
// twice).

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// StopGrace is how long StopInstance waits for a guest to power off after
// the ACPI request before pulling the plug (the test guest has no ACPI
// daemon, so it always waits this long; EC2 waits minutes, but the call
// must end within the node API's deadline).
var StopGrace = 10 * time.Second

// volume is an EBS volume the node holds for an instance. Its fields are
// guarded by Node.mu, and changed under the instance's op too.
type volume struct {
	att   ncapi.VolumeAttachment
	state string     // ncapi.VolumeAttaching, VolumeAttached, VolumeDetaching
	proxy *nbd.Proxy // nil while not served (the SC unreachable since a restart)
}

// UseVolumeTLS sets the client configuration the node reaches storage
// controllers with: its certificate from the cloud's CA (the SC lets a
// node's certificate reach only the exports made for that node). nil: plain
// NBD (ENABLE_WS_SECURITY="N"). The roles call it right after New, before
// the node takes calls.
func (n *Node) UseVolumeTLS(tc *tls.Config) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.volTLS = tc
	if n.bg.Err() != nil {
		return
	}
	// The guests New adopted get their volumes served now rather than at
	// the next reconcile.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.reconcileVolumes(n.bg)
	}()
}

var volumeIDRE = regexp.MustCompile(`^vol-[0-9a-z]{1,32}$`)

// checkAttachment reports what is wrong with an attachment.
func checkAttachment(a ncapi.VolumeAttachment) error {
	if !volumeIDRE.MatchString(a.VolumeID) {
		return fmt.Errorf("volume id %q: want vol- and up to 32 lower-case letters or digits", a.VolumeID)
	}
	if a.Host == "" || a.Port < 1 || a.Port > 65535 {
		return fmt.Errorf("volume %s: storage controller %q port %d: want a host and a port", a.VolumeID, a.Host, a.Port)
	}
	if a.Export == "" || len(a.Export) > 4096 {
		return fmt.Errorf("volume %s: no export name", a.VolumeID)
	}
	if a.Serial != "" && len(a.Serial) > 20 {
		return fmt.Errorf("volume %s: serial %q: at most 20 bytes", a.VolumeID, a.Serial)
	}
	return nil
}

// serial is the virtio serial the guest sees: the attachment's, or "vol"
// and the id's hex as EC2's Nitro hosts give.
func serial(a ncapi.VolumeAttachment) string {
	if a.Serial != "" {
		return a.Serial
	}
	s := strings.ReplaceAll(a.VolumeID, "-", "")
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// disk is the hypervisor's view of a volume of in: the socket the node
// serves it on. The export QEMU asks the socket for is the volume's id:
// the storage controller's export name carries a secret, which stays out
// of the domain's XML.
func (in *instance) disk(a ncapi.VolumeAttachment) hypervisor.VolumeDisk {
	return hypervisor.VolumeDisk{VolumeID: a.VolumeID, Serial: serial(a),
		Socket: socketPath(in.dir, a.VolumeID), Boot: a.Boot}
}

// SocketDir holds the volumes' sockets of instances whose directory's path
// is too long for one (a unix socket's path is at most 107 bytes): a
// directory only root may write, so no one else can put a socket of their
// own where QEMU will connect.
var SocketDir = "/run/euca/nbd"

// socketPath is where the node serves volume volumeID of the instance in
// dir: in dir when the path fits, else in SocketDir under a name hashed
// from both (the same after a restart; distinct for two nodes on a host).
func socketPath(dir, volumeID string) string {
	p := filepath.Join(dir, volumeID+".nbd")
	if len(p) <= 107 {
		return p
	}
	sum := sha256.Sum256([]byte(p))
	return filepath.Join(SocketDir, hex.EncodeToString(sum[:12])+".nbd")
}

// socketDir makes the directory of a socket path: the instance's, or
// SocketDir, which must be a directory of this user's that no one else
// may write.
func socketDir(path string) error {
	dir := filepath.Dir(path)
	if dir != SocketDir {
		return os.MkdirAll(dir, 0o755)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 || !ok || int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s: not a directory of this user's that only it may write", dir)
	}
	return nil
}

// dialer opens the remote export of a at its storage controller.
func (n *Node) dialer(a ncapi.VolumeAttachment) func(ctx context.Context) (*nbd.Client, error) {
	n.mu.Lock()
	tc := n.volTLS
	n.mu.Unlock()
	if tc != nil {
		tc = tc.Clone()
		tc.ServerName = a.Host // the SC's certificate names the address it is reached at
	}
	addr := net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	return func(ctx context.Context) (*nbd.Client, error) {
		return nbd.Dial(ctx, "tcp", addr, tc, a.Export)
	}
}

// serve starts v's proxy unless it runs; the caller holds in.op.
func (n *Node) serve(ctx context.Context, in *instance, v *volume) error {
	n.mu.Lock()
	running := v.proxy != nil
	a := v.att
	n.mu.Unlock()
	if running {
		return nil
	}
	if err := socketDir(in.disk(a).Socket); err != nil {
		return fmt.Errorf("serve volume %s: %w", a.VolumeID, err)
	}
	p := &nbd.Proxy{Path: in.disk(a).Socket, Name: a.VolumeID, Dial: n.dialer(a), RetryFor: n.proxyRetry,
		Log: n.log.With("instance", in.id, "volume", a.VolumeID)}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := p.Start(dctx); err != nil {
		return fmt.Errorf("serve volume %s: %w", a.VolumeID, err)
	}
	n.mu.Lock()
	v.proxy = p
	n.mu.Unlock()
	return nil
}

// unserve stops v's proxy; the caller holds in.op.
func (n *Node) unserve(v *volume) {
	n.mu.Lock()
	p := v.proxy
	v.proxy = nil
	n.mu.Unlock()
	if p != nil {
		if err := p.Close(); err != nil {
			n.log.Warn("closing a volume's socket", "volume", v.att.VolumeID, "error", err)
		}
	}
}

// putVolume records v as state; the caller holds in.op.
func (n *Node) putVolume(ctx context.Context, in *instance, v *volume, state string) error {
	js, err := json.Marshal(v.att)
	if err != nil {
		return err
	}
	if err := n.st.NCPutVolume(context.WithoutCancel(ctx), store.NCVolume{InstanceID: in.id, VolumeID: v.att.VolumeID,
		Attachment: string(js), State: state}); err != nil {
		return fmt.Errorf("record volume %s of %s: %w", v.att.VolumeID, in.id, err)
	}
	n.mu.Lock()
	v.state = state
	if in.vols == nil {
		in.vols = map[string]*volume{}
	}
	in.vols[v.att.VolumeID] = v
	n.mu.Unlock()
	return nil
}

// dropVolume forgets v; the caller holds in.op.
func (n *Node) dropVolume(ctx context.Context, in *instance, volumeID string) error {
	if err := n.st.NCDeleteVolume(context.WithoutCancel(ctx), in.id, volumeID); err != nil {
		return fmt.Errorf("forget volume %s of %s: %w", volumeID, in.id, err)
	}
	n.mu.Lock()
	delete(in.vols, volumeID)
	n.mu.Unlock()
	return nil
}

// volumesOf lists in's volumes; the caller holds in.op or n.mu.
func volumesOf(in *instance) []*volume {
	out := make([]*volume, 0, len(in.vols))
	for _, v := range in.vols {
		out = append(out, v)
	}
	return out
}

// AttachVolume serves a volume to a running instance and hot-plugs it. An
// attachment the instance has already (same volume and export) is left as
// it is; the same volume with another export (the storage controller
// exported it again) is served from the new one.
func (n *Node) AttachVolume(ctx context.Context, id string, a ncapi.VolumeAttachment) error {
	if err := n.awake(); err != nil {
		return err
	}
	if err := checkAttachment(a); err != nil {
		return fmt.Errorf("%w: %v", ncapi.ErrBadRequest, err)
	}
	if a.Boot {
		return fmt.Errorf("%w: volume %s: a boot volume is given at launch, not hot-plugged", ncapi.ErrBadRequest, a.VolumeID)
	}
	in, err := n.get(id)
	if err != nil {
		return err
	}
	if s := n.state(in); s != ncapi.StateRunning { // before in.op: a launch holds it for a download
		return fmt.Errorf("%w: instance %s is %s", ncapi.ErrIncorrectState, id, s)
	}
	in.op.Lock()
	defer in.op.Unlock()
	if s := n.state(in); s != ncapi.StateRunning {
		return fmt.Errorf("%w: instance %s is %s", ncapi.ErrIncorrectState, id, s)
	}
	n.mu.Lock()
	old := in.vols[a.VolumeID]
	same := old != nil && old.att == a && old.state == ncapi.VolumeAttached && old.proxy != nil
	n.mu.Unlock()
	if same {
		return nil
	}
	if old != nil && old.state == ncapi.VolumeDetaching {
		return fmt.Errorf("%w: volume %s is being detached from %s", ncapi.ErrIncorrectState, a.VolumeID, id)
	}
	if old != nil && old.att.Export != a.Export {
		n.unserve(old) // the old export is withdrawn: serve the new one
	}
	v := &volume{att: a}
	if old != nil {
		n.mu.Lock()
		v.proxy = old.proxy
		n.mu.Unlock()
	}
	if err := n.putVolume(ctx, in, v, ncapi.VolumeAttaching); err != nil {
		return err
	}
	undo := func(cause error) error {
		n.unserve(v)
		if err := n.dropVolume(ctx, in, a.VolumeID); err != nil {
			n.log.ErrorContext(ctx, "forgetting a failed attachment", "instance", id, "volume", a.VolumeID, "error", err)
		}
		return cause
	}
	if err := n.serve(ctx, in, v); err != nil {
		return undo(err)
	}
	if err := n.drv.AttachVolume(ctx, id, in.disk(a)); err != nil {
		if errors.Is(err, hypervisor.ErrNotFound) {
			err = fmt.Errorf("%w: instance %s: %v", ncapi.ErrIncorrectState, id, err)
		}
		return undo(fmt.Errorf("attach %s to %s: %w", a.VolumeID, id, err))
	}
	if err := n.putVolume(ctx, in, v, ncapi.VolumeAttached); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "volume attached", "instance", id, "volume", a.VolumeID, "device", a.Device, "sc", a.Host)
	return nil
}

// DetachVolume unplugs a volume and stops serving it once the guest let it
// go (forced: at once). A volume the instance does not have is not an
// error; an unknown instance is ncapi.ErrNoSuchInstance.
func (n *Node) DetachVolume(ctx context.Context, id, volumeID string, force bool) error {
	if err := n.awake(); err != nil {
		return err
	}
	in, err := n.get(id)
	if err != nil {
		return err
	}
	in.op.Lock()
	defer in.op.Unlock()
	n.mu.Lock()
	v := in.vols[volumeID]
	n.mu.Unlock()
	if v == nil {
		return nil
	}
	return n.detachOp(ctx, in, v, force)
}

// detachOp detaches v from in; the caller holds in.op.
func (n *Node) detachOp(ctx context.Context, in *instance, v *volume, force bool) error {
	id, volumeID := in.id, v.att.VolumeID
	if err := n.putVolume(ctx, in, v, ncapi.VolumeDetaching); err != nil {
		return err
	}
	err := n.drv.DetachVolume(ctx, id, volumeID, force)
	if err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		// Still detaching: a later call (or the next start) finishes it.
		return fmt.Errorf("detach %s from %s: %w", volumeID, id, err)
	}
	n.unserve(v)
	if err := n.dropVolume(ctx, in, volumeID); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "volume detached", "instance", id, "volume", volumeID, "force", force)
	return nil
}

// releaseVolumes stops serving all of in's volumes and forgets them (the
// guest is gone: terminated, stopped, failed); the caller holds in.op.
func (n *Node) releaseVolumes(ctx context.Context, in *instance) error {
	n.mu.Lock()
	vols := volumesOf(in)
	n.mu.Unlock()
	for _, v := range vols {
		n.unserve(v)
	}
	if err := n.st.NCDeleteVolumes(context.WithoutCancel(ctx), in.id); err != nil {
		return fmt.Errorf("forget volumes of %s: %w", in.id, err)
	}
	n.mu.Lock()
	in.vols = nil
	n.mu.Unlock()
	return nil
}

// volumeStatusesLocked is what Describe says of in's volumes; the caller
// holds n.mu.
func volumeStatusesLocked(in *instance) []ncapi.VolumeStatus {
	if len(in.vols) == 0 {
		return nil
	}
	out := make([]ncapi.VolumeStatus, 0, len(in.vols))
	for _, v := range in.vols {
		out = append(out, ncapi.VolumeStatus{VolumeID: v.att.VolumeID, Device: v.att.Device, State: v.state})
	}
	sortVolumeStatuses(out)
	return out
}

func sortVolumeStatuses(s []ncapi.VolumeStatus) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].VolumeID < s[j-1].VolumeID; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// launchVolumes records and serves the volumes a launch request brings and
// returns their disks for the spec (a boot volume among them); the caller
// holds in.op.
func (n *Node) launchVolumes(ctx context.Context, in *instance) ([]hypervisor.VolumeDisk, error) {
	var disks []hypervisor.VolumeDisk
	for _, a := range in.req.Volumes {
		n.mu.Lock()
		v := in.vols[a.VolumeID]
		n.mu.Unlock()
		if v == nil {
			v = &volume{att: a}
			if err := n.putVolume(ctx, in, v, ncapi.VolumeAttaching); err != nil {
				return nil, err
			}
		}
		if err := n.serve(ctx, in, v); err != nil {
			return nil, err
		}
		disks = append(disks, in.disk(a))
	}
	return disks, nil
}

// launchedVolumes marks the launch's volumes attached; the caller holds
// in.op.
func (n *Node) launchedVolumes(ctx context.Context, in *instance) {
	n.mu.Lock()
	vols := volumesOf(in)
	n.mu.Unlock()
	for _, v := range vols {
		if v.state == ncapi.VolumeAttaching {
			if err := n.putVolume(ctx, in, v, ncapi.VolumeAttached); err != nil {
				n.log.ErrorContext(ctx, "volume attached but not recorded", "instance", in.id, "volume", v.att.VolumeID, "error", err)
			}
		}
	}
}

// recoverVolumes reads the volumes rows at start: those of instances that
// still hold resources are taken back (served again by reconcileVolumes),
// the others forgotten. The caller holds n.mu.
func (n *Node) recoverVolumesLocked(ctx context.Context) error {
	rows, err := n.st.NCVolumes(ctx)
	if err != nil {
		return fmt.Errorf("nc: read volumes: %w", err)
	}
	for _, r := range rows {
		in := n.insts[r.InstanceID]
		var a ncapi.VolumeAttachment
		jerr := json.Unmarshal([]byte(r.Attachment), &a)
		if in == nil || !holds(in.rec.State) || jerr != nil {
			if jerr != nil {
				n.log.ErrorContext(ctx, "unreadable volume record: forgotten", "instance", r.InstanceID, "volume", r.VolumeID, "error", jerr)
			}
			if err := n.st.NCDeleteVolume(ctx, r.InstanceID, r.VolumeID); err != nil {
				return fmt.Errorf("nc: forget volume %s: %w", r.VolumeID, err)
			}
			continue
		}
		if in.vols == nil {
			in.vols = map[string]*volume{}
		}
		in.vols[r.VolumeID] = &volume{att: a, state: r.State}
	}
	return nil
}

// reconcileVolumes brings the running instances' volumes to their
// records: each is served (a restart, or a storage controller that did not
// answer the last time), an attach cut short is finished and a detach
// carried on; and a guest the hypervisor paused for an I/O error is
// resumed once all its volumes answer again. It never waits for an
// instance busy with another step.
func (n *Node) reconcileVolumes(ctx context.Context) {
	n.mu.Lock()
	var insts []*instance
	for _, in := range n.insts {
		if in.rec.State == ncapi.StateRunning && len(in.vols) > 0 {
			insts = append(insts, in)
		}
	}
	n.mu.Unlock()
	for _, in := range insts {
		if !in.op.TryLock() {
			continue
		}
		n.reconcileInstanceVolumes(ctx, in)
		in.op.Unlock()
	}
}

func (n *Node) reconcileInstanceVolumes(ctx context.Context, in *instance) {
	n.mu.Lock()
	vols := volumesOf(in)
	n.mu.Unlock()
	ready := true
	for _, v := range vols {
		n.mu.Lock()
		state := v.state
		n.mu.Unlock()
		switch state {
		case ncapi.VolumeDetaching:
			if err := n.detachOp(ctx, in, v, false); err != nil {
				n.log.WarnContext(ctx, "finishing a detach", "instance", in.id, "volume", v.att.VolumeID, "error", err)
			}
			continue
		}
		if err := n.serve(ctx, in, v); err != nil {
			n.log.WarnContext(ctx, "serving a volume: its storage controller does not answer; trying again", "instance", in.id, "volume", v.att.VolumeID, "error", err)
			ready = false
			continue
		}
		if state == ncapi.VolumeAttaching {
			if err := n.drv.AttachVolume(ctx, in.id, in.disk(v.att)); err != nil {
				n.log.WarnContext(ctx, "finishing an attach", "instance", in.id, "volume", v.att.VolumeID, "error", err)
				continue
			}
			if err := n.putVolume(ctx, in, v, ncapi.VolumeAttached); err != nil {
				n.log.WarnContext(ctx, "finishing an attach", "instance", in.id, "volume", v.att.VolumeID, "error", err)
			}
		}
	}
	if !ready {
		return
	}
	st, err := n.drv.State(ctx, in.id)
	if err != nil || st != hypervisor.Paused {
		return
	}
	// Paused: perhaps for an I/O error of a volume whose storage
	// controller was away longer than the proxy retries. Resume only when
	// every volume's storage controller answers a fresh connection, or the
	// guest's retried request fails again at once.
	for _, v := range vols {
		if err := n.probe(ctx, v.att); err != nil {
			n.log.InfoContext(ctx, "a paused guest's volume does not answer yet", "instance", in.id, "volume", v.att.VolumeID, "error", err)
			return
		}
	}
	if resumed, err := n.drv.ResumeIOError(ctx, in.id); err != nil {
		n.log.WarnContext(ctx, "resuming a guest paused by an I/O error", "instance", in.id, "error", err)
	} else if resumed {
		n.log.InfoContext(ctx, "resumed a guest paused by a volume's I/O error: its volumes answer again", "instance", in.id)
	}
}

// probe opens a's export once and closes it: the storage controller
// answers.
func (n *Node) probe(ctx context.Context, a ncapi.VolumeAttachment) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := n.dialer(a)(ctx)
	if err != nil {
		return err
	}
	return c.Close()
}

// StopInstance powers an instance's guest off (ACPI, then the plug after
// StopGrace), stops serving its volumes (the volumes themselves are the
// storage controller's, untouched), removes its files and forgets it, so
// its id may be run again here or elsewhere. An unknown id is not an
// error: it was stopped already.
func (n *Node) StopInstance(ctx context.Context, id string) error {
	if err := n.awake(); err != nil {
		return err
	}
	n.mu.Lock()
	in := n.insts[id]
	if in == nil {
		n.mu.Unlock()
		return nil
	}
	if holds(in.rec.State) && in.rec.State != ncapi.StateShuttingDown {
		if err := n.setStateLocked(ctx, in, ncapi.StateShuttingDown, ""); err != nil {
			n.mu.Unlock()
			return err
		}
	}
	if in.cancel != nil {
		in.cancel() // a launch in progress stops; the op lock below waits for it
	}
	n.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	n.log.InfoContext(ctx, "stopping instance", "instance", id)
	in.op.Lock()
	defer in.op.Unlock()
	if err := n.drv.Stop(ctx, id, StopGrace); err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if err := n.teardown(ctx, in); err != nil {
		return err
	}
	if err := n.st.NCDeleteInstance(ctx, id); err != nil {
		return fmt.Errorf("forget %s: %w", id, err)
	}
	n.mu.Lock()
	if n.insts[id] == in {
		delete(n.insts, id)
	}
	n.mu.Unlock()
	n.syncPorts(ctx) // a failure is logged; the next reconcile tries again
	n.log.InfoContext(ctx, "instance stopped and forgotten", "instance", id)
	return nil
}
