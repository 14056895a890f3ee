package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/euca-cloud/euca/internal/diskcmd"
	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/roles/clc"
)

// ebsCloud is a guestLAN with the helpers the EBS tests share: volumes
// made, attached and waited for through the AWS CLI, and disk commands
// (internal/diskcmd) a guest polls from a server on the front-end's host.
type ebsCloud struct {
	*guestLAN
	cmds   *diskcmd.Server
	guests map[string]*diskcmd.Server // each guest's own commands, by instance id
}

// serveDiskCommands starts the disk-command server in host's namespace, on
// its LAN address, which its guests reach through their router.
func serveDiskCommands(t *testing.T, host *lanHost) *diskcmd.Server {
	t.Helper()
	ns, err := netns.GetFromName(host.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var s *diskcmd.Server
	nstest.MustDo(t, ns, func() (err error) { s, err = diskcmd.Serve(host.IP + ":0"); return err })
	t.Cleanup(func() { s.Close() })
	return s
}

// launchPolling runs a guest that polls the disk commands, in a group
// of its own, and returns its id and availability zone.
func (e *ebsCloud) launchPolling(group string) (id, zone string) {
	e.t.Helper()
	cmds := e.cmds.Guest(fmt.Sprintf("g%d", len(e.guests)+1))
	id, _ = e.launch(group, cmds.UserData()+"\n")
	if e.guests == nil {
		e.guests = map[string]*diskcmd.Server{}
	}
	e.guests[id] = cmds
	out := e.aws("ec2", "describe-instances", "--instance-ids", id, "--query", "Reservations[0].Instances[0].Placement.AvailabilityZone")
	jsonField(e.t, out, &zone)
	return id, zone
}

// createVolume makes a volume of size GiB in zone and waits until it is
// available.
func (e *ebsCloud) createVolume(zone string, size int) string {
	e.t.Helper()
	var id string
	jsonField(e.t, e.aws("ec2", "create-volume", "--availability-zone", zone, "--size", fmt.Sprint(size), "--query", "VolumeId"), &id)
	e.volumeState(id, "available")
	return id
}

// volumeState waits until the volume's state is want (and, when it is
// in-use, its attachment attached).
func (e *ebsCloud) volumeState(id, want string) {
	e.t.Helper()
	defer func() {
		if e.t.Failed() {
			e.t.Logf("front-end log lines of %s:\n%s", id, grepLines(e.front.log.String(), id, 40))
		}
	}()
	eventually(e.t, id+" "+want, 5*time.Minute, func() error {
		var vs []struct {
			State       string
			Attachments []struct{ State, InstanceId string }
		}
		if err := json.Unmarshal([]byte(e.aws("ec2", "describe-volumes", "--volume-ids", id, "--query", "Volumes")), &vs); err != nil || len(vs) != 1 {
			return fmt.Errorf("describe-volumes: %v %+v", err, vs)
		}
		v := vs[0]
		if v.State != want || (want == "in-use" && (len(v.Attachments) != 1 || v.Attachments[0].State != "attached")) {
			return fmt.Errorf("%s is %s %+v", id, v.State, v.Attachments)
		}
		return nil
	})
}

// attach attaches the volume as device and waits until it is attached.
func (e *ebsCloud) attach(volumeID, instanceID, device string) {
	e.t.Helper()
	e.aws("ec2", "attach-volume", "--volume-id", volumeID, "--instance-id", instanceID, "--device", device)
	e.volumeState(volumeID, "in-use")
}

// detach detaches the volume and waits until it is available.
func (e *ebsCloud) detach(volumeID string) {
	e.t.Helper()
	e.aws("ec2", "detach-volume", "--volume-id", volumeID)
	e.volumeState(volumeID, "available")
}

// write has guest id write seed's pattern to the volume of serial and
// returns the outcome.
func (e *ebsCloud) write(id, serial, seed string, mib int) diskcmd.Result {
	e.t.Helper()
	return e.disk(id, e.guests[id].Write(serial, seed, mib))
}

// read has guest id hash the volume of serial and returns the outcome.
func (e *ebsCloud) read(id, serial string, mib int) diskcmd.Result {
	e.t.Helper()
	return e.disk(id, e.guests[id].Read(serial, mib))
}

// disk waits for disk command seq's outcome on the guest's console.
func (e *ebsCloud) disk(id string, seq int) diskcmd.Result {
	e.t.Helper()
	r, err := diskcmd.Wait(context.Background(), func(context.Context) ([]byte, error) {
		return []byte(strings.ReplaceAll(e.console(id), "\r\n", "\n")), nil
	}, seq, 6*time.Minute)
	if err != nil {
		e.t.Fatalf("%s: %v\n--- front-end log:\n%s", id, err, tail(e.front.log.String(), 40))
	}
	return r
}

// serialOf is the virtio serial a guest finds a volume by.
func serialOf(volumeID string) string { return clc.VolumeSerial(volumeID) }

// startStorageLAN is startGuestLAN with the storage controller on the
// front-end (clc, walrus, sc, cc) and nodes on hosts of their own.
func startStorageLAN(t *testing.T, fe *lanHost, nodes ...*lanHost) *guestLAN {
	t.Helper()
	g := &guestLAN{t: t, fe: fe}
	g.front = fe.start("--roles=clc,walrus,sc,cc")
	g.front.waitListening(8773)
	g.env = lanCredentials(t, fe)
	_, g.aws = lanAWS(t, fe, g.env, func() string { return g.front.log.String() })
	server := fe.IP + ":8773"
	var ips []string
	for _, h := range nodes {
		g.nodes = append(g.nodes, h.startWithHypervisor("--roles=nc", "--join", lanToken(t, fe), "--server", server))
		ips = append(ips, h.IP)
	}
	for _, p := range g.nodes {
		p.waitListening(8775)
	}
	if out, err := fe.euca(append([]string{"node", "register"}, ips...)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "nodes up", time.Minute, func() error { return nodesUp(fe, ips...) })
	dir := guestDir(t)
	eki := lanRegister(t, fe, g.env, g.aws, filepath.Join(dir, "vmlinuz"), "kernel", "--kernel", "true")
	eri := lanRegister(t, fe, g.env, g.aws, filepath.Join(dir, "initrd.img"), "ramdisk", "--ramdisk", "true")
	g.emi = lanRegister(t, fe, g.env, g.aws, filepath.Join(dir, "root.img"), "root", "--kernel", eki, "--ramdisk", eri)
	return g
}

// grepLines is the last n lines of s that contain sub.
func grepLines(s, sub string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, "\n")
}
