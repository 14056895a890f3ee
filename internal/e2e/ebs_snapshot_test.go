package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/euca-cloud/euca/internal/diskcmd"
	"github.com/euca-cloud/euca/internal/nstest"
	"github.com/euca-cloud/euca/roles/clc"
)

// ebhLab is a cloud whose storage controller serves EBS volumes to the
// test guest, driven with the AWS CLI and boto3 as a user would: a
// front-end (every role on one host, or clc, walrus, sc and cc with the
// node on a host of its own so that the front-end can die alone), and a
// client host outside the cloud that serves the guests their disk
// commands (internal/diskcmd) over the cloud's network, reached through
// the front-end as an office network would.
type ebhLab struct {
	t      *testing.T
	fe     *lanHost
	node   *lanHost // nil when the front-end is the node too
	roles  string   // the front-end's roles when split
	g      *guestLAN
	try    func(...string) (string, error) // the AWS CLI on the front-end, errors returned
	cmds   *diskcmd.Server
	zone   string
	group  string
	volDev map[string]string // the device each attached volume was given
}

// newEBHLab starts a lab on the LAN 10.248.n.0/24 (the cloud's private
// subnet 10.248.100+n.0/24); split puts the node on a host of its own.
func newEBHLab(t *testing.T, n int, split bool) *ebhLab {
	t.Helper()
	needGuestLAN(t)
	Need(t, "python3")
	sub := fmt.Sprintf("10.248.%d", n)
	private := fmt.Sprintf("10.248.%d.0", 100+n)
	l := newLANNamed(t, "ebh", sub)
	feConf := []string{`VNET_MODE="MANAGED-NOVLAN"`, `VNET_SUBNET="` + private + `"`, `VNET_NETMASK="255.255.255.0"`,
		// The address nodes dial the storage controller at: the
		// front-end's own bridges carry addresses too.
		`SC_NBD_ADDRESS="` + sub + `.1"`}
	if !split {
		feConf = append(feConf, `HYPERVISOR="qemu"`)
	}
	x := &ebhLab{t: t, fe: l.host("fe", feConf...), roles: "clc,walrus,sc,cc", volDev: map[string]string{}}
	var nodes []*lanHost
	if split {
		x.node = l.host("n1", `HYPERVISOR="qemu"`)
		nodes = append(nodes, x.node)
	}
	client := l.host("client")
	if out, err := client.run(nil, "ip", "route", "add", private+"/24", "via", x.fe.IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ns, err := netns.GetFromName(client.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nstest.MustDo(t, ns, func() (err error) {
		x.cmds, err = diskcmd.Serve(net.JoinHostPort(client.IP, "0"))
		return err
	})
	t.Cleanup(func() { x.cmds.Close() })

	x.g = startGuestLANRoles(t, x.roles, x.fe, nodes...)
	x.try, _ = lanAWS(t, x.fe, x.g.env, func() string { return x.g.front.log.String() })
	jsonField(t, x.aws("ec2", "describe-availability-zones", "--query", "AvailabilityZones[0].ZoneName"), &x.zone)
	x.group = x.g.group("ebs")
	return x
}

// until is eventually with the end of the front-end's log (and the
// node's) in the failure.
func (x *ebhLab) until(what string, limit time.Duration, f func() error) {
	x.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			nodeLog := ""
			if len(x.g.nodes) > 0 {
				nodeLog = "\n--- node:\n" + tail(x.g.nodes[0].log.String(), 30)
			}
			x.t.Fatalf("%s: not within %v: %v\n--- front-end:\n%s%s\n--- lines naming %s:\n%s", what, limit, err,
				tail(x.g.front.log.String(), 40), nodeLog, strings.Fields(what)[0], x.naming(strings.Fields(what)[0]))
		}
		time.Sleep(time.Second)
	}
}

// naming is the last lines of the front-end's and node's logs naming id.
func (x *ebhLab) naming(id string) string {
	var out []string
	logs := []string{x.g.front.log.String()}
	for _, n := range x.g.nodes {
		logs = append(logs, n.log.String())
	}
	for _, l := range logs {
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(line, id) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out[max(0, len(out)-30):], "\n")
}

func (x *ebhLab) aws(args ...string) string {
	x.t.Helper()
	return x.g.aws(args...)
}

// launch runs a guest that polls the lab's disk commands and waits until
// it is up.
func (x *ebhLab) launch() string {
	x.t.Helper()
	id, _ := x.g.launch(x.group, x.cmds.UserData())
	x.g.waitFor(id, 1, "EUCA-READY")
	return id
}

// createVolume makes a 1 GiB volume (from snap when not empty) and waits
// until it is available.
func (x *ebhLab) createVolume(snap string) string {
	x.t.Helper()
	args := []string{"ec2", "create-volume", "--availability-zone", x.zone, "--size", "1", "--query", "VolumeId"}
	if snap != "" {
		args = append(args, "--snapshot-id", snap)
	}
	var id string
	jsonField(x.t, x.aws(args...), &id)
	x.waitVolume(id, "available", "")
	return id
}

// volume is a volume's state and its attachment's ("" when none).
func (x *ebhLab) volume(id string) (state, attachment string, err error) {
	out, err := x.try("ec2", "describe-volumes", "--volume-ids", id)
	if err != nil {
		return "", "", err
	}
	var v struct {
		Volumes []struct {
			State       string
			Attachments []struct{ State string }
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Volumes) != 1 {
		return "", "", fmt.Errorf("describe-volumes %s: %v: %s", id, err, out)
	}
	if a := v.Volumes[0].Attachments; len(a) > 0 {
		attachment = a[0].State
	}
	return v.Volumes[0].State, attachment, nil
}

// waitVolume waits until the volume is in state with its attachment in
// attachment.
func (x *ebhLab) waitVolume(id, state, attachment string) {
	x.t.Helper()
	x.until(id+" "+state+" "+attachment, 3*time.Minute, func() error {
		s, a, err := x.volume(id)
		if err != nil {
			return err
		}
		if s == "error" {
			x.t.Fatalf("%s went to error:\n%s", id, tail(x.g.front.log.String(), 30))
		}
		if s != state || a != attachment {
			return fmt.Errorf("%s %q", s, a)
		}
		return nil
	})
}

// attach attaches a volume to the instance at dev and waits until the
// cloud says it is attached.
func (x *ebhLab) attach(vol, inst, dev string) {
	x.t.Helper()
	x.aws("ec2", "attach-volume", "--volume-id", vol, "--instance-id", inst, "--device", dev)
	x.volDev[vol] = dev
	x.waitVolume(vol, "in-use", "attached")
	x.t.Logf("%s attached to %s at %s", vol, inst, dev)
}

// detach detaches a volume and waits until it is available.
func (x *ebhLab) detach(vol string) {
	x.t.Helper()
	x.aws("ec2", "detach-volume", "--volume-id", vol)
	x.waitVolume(vol, "available", "")
}

// snapshot starts a snapshot of vol and returns its id.
func (x *ebhLab) snapshot(vol string) string {
	x.t.Helper()
	var id string
	jsonField(x.t, x.aws("ec2", "create-snapshot", "--volume-id", vol, "--description", "ebh", "--query", "SnapshotId"), &id)
	return id
}

// waitSnapshot waits until the snapshot leaves pending and returns its
// state.
func (x *ebhLab) waitSnapshot(id string) string {
	x.t.Helper()
	var state string
	x.until(id+" done", 5*time.Minute, func() error {
		out, err := x.try("ec2", "describe-snapshots", "--snapshot-ids", id, "--query", "Snapshots[0].State")
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &state); err != nil {
			return err
		}
		if state == "pending" {
			return fmt.Errorf("pending")
		}
		return nil
	})
	return state
}

// console is the instance's console as diskcmd.Wait reads it; an error
// (the front-end restarting) is tried again by Wait.
func (x *ebhLab) console(id string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		out, err := x.try("ec2", "get-console-output", "--instance-id", id, "--latest", "--query", "Output")
		if err != nil {
			return nil, err
		}
		var s string
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
}

// disk waits for the outcome of disk command seq on the instance.
func (x *ebhLab) disk(inst string, seq int) diskcmd.Result {
	x.t.Helper()
	r, err := diskcmd.Wait(context.Background(), x.console(inst), seq, 5*time.Minute)
	if err != nil {
		x.t.Fatalf("%s: %v\n--- front-end:\n%s", inst, err, tail(x.g.front.log.String(), 30))
	}
	return r
}

// write has the instance write mib MiB of seed's pattern at the start of
// the volume, and checks what it read back.
func (x *ebhLab) write(inst, vol, seed string, mib int) {
	x.t.Helper()
	r := x.disk(inst, x.cmds.Write(clc.VolumeSerial(vol), seed, mib))
	x.t.Logf("%s wrote %d MiB of %s to %s (%s)", inst, mib, seed, vol, r.Dev)
	if want := diskcmd.Sum(seed, mib); r.SHA256 != want {
		x.t.Fatalf("%s wrote %s to %s and read back %+v, want sha256 %s", inst, seed, vol, r, want)
	}
}

// read is the sha256 the instance reads from the first mib MiB of vol.
func (x *ebhLab) read(inst, vol string, mib int) string {
	x.t.Helper()
	return x.disk(inst, x.cmds.Read(clc.VolumeSerial(vol), mib)).SHA256
}

// ebhLayer is mib MiB of seed's pattern written at the start of a volume.
type ebhLayer struct {
	seed string
	mib  int
}

// ebhLayered is the bytes of a volume's first MiB megabytes after the layers
// were written in order (each from offset 0), zeros where none reached.
func ebhLayered(mib int, layers ...ebhLayer) []byte {
	b := make([]byte, mib<<20)
	for _, l := range layers {
		p := bytes.Repeat([]byte(l.seed+"\n"), (l.mib<<20)/(len(l.seed)+1)+1)
		copy(b, p[:min(l.mib<<20, len(b))])
	}
	return b
}

func ebhSum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// ebhChunkSums is the sha256 of each 4 MiB chunk of b that is not all zeros
// (the snapshot engine's chunk keys).
func ebhChunkSums(b []byte) []string {
	var out []string
	zero := make([]byte, 4<<20)
	for off := 0; off < len(b); off += 4 << 20 {
		c := b[off:min(off+4<<20, len(b))]
		if !bytes.Equal(c, zero[:len(c)]) {
			out = append(out, ebhSum(c))
		}
	}
	return out
}

// ebhObject is an object of the snapshot bucket as S3 lists it.
type ebhObject struct {
	Key, ETag, LastModified string
	Size                    int64
}

// snapBucket lists the snapshot bucket as the admin account, with the
// AWS CLI's s3api, keyed by object key.
func (x *ebhLab) snapBucket() map[string]ebhObject {
	x.t.Helper()
	out, err := x.fe.run(x.g.env, "aws", "--endpoint-url", s3Root(x.g.env), "--output", "json",
		"s3api", "list-objects-v2", "--bucket", "euca-snapshots")
	if err != nil {
		x.t.Fatalf("%v\n%s", err, out)
	}
	var l struct{ Contents []ebhObject }
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			x.t.Fatalf("list-objects-v2: %v: %s", err, out)
		}
	}
	m := map[string]ebhObject{}
	for _, o := range l.Contents {
		m[o.Key] = o
	}
	return m
}

// manifestChunks is a snapshot's manifest's chunk list, read from the
// bucket with the AWS CLI.
func (x *ebhLab) manifestChunks(snap string) []string {
	x.t.Helper()
	file := x.t.TempDir() + "/" + snap + ".json"
	if out, err := x.fe.run(x.g.env, "aws", "--endpoint-url", s3Root(x.g.env), "s3", "cp",
		"s3://euca-snapshots/manifests/"+snap+".json", file); err != nil {
		x.t.Fatalf("%v\n%s", err, out)
	}
	var m struct{ Chunks []string }
	out, err := x.fe.run(nil, "cat", file)
	if err != nil || json.Unmarshal([]byte(out), &m) != nil {
		x.t.Fatalf("manifest of %s: %v: %s", snap, err, out)
	}
	return m.Chunks
}

// TestEBSSnapshots: a guest writes 32 MiB to an attached volume; a
// snapshot taken while it is attached completes, and a volume made from it
// reads back the same bytes in the guest. The guest rewrites the first
// 4 MiB; a second snapshot stores exactly one new chunk object and its
// manifest in the admin's euca-snapshots bucket (listed with the AWS CLI),
// and leaves every chunk object of the first untouched (same ETag, same
// LastModified: not stored again); its manifest differs from the first's
// at chunk 0 only. The first snapshot deleted, the second still makes a
// volume that reads back the rewritten pattern over the first.
func TestEBSSnapshots(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	x := newEBHLab(t, 1, false)
	inst := x.launch()
	const mib = 32
	a, b := ebhLayer{"ebhsnapA", mib}, ebhLayer{"ebhsnapB", 4}
	first, second := ebhLayered(mib, a), ebhLayered(mib, a, b)

	vol := x.createVolume("")
	x.attach(vol, inst, "/dev/sdf")
	x.write(inst, vol, a.seed, a.mib)
	before := x.snapBucket()

	s1 := x.snapshot(vol) // while attached
	if st := x.waitSnapshot(s1); st != "completed" {
		t.Fatalf("snapshot %s: %s\n%s", s1, st, tail(x.g.front.log.String(), 30))
	}
	afterS1 := x.snapBucket()
	want1 := ebhChunkSums(first)
	slices.Sort(want1)
	want1 = slices.Compact(want1)
	var gained []string
	for k := range afterS1 {
		if _, ok := before[k]; !ok {
			gained = append(gained, k)
		}
	}
	slices.Sort(gained)
	wantGained := []string{}
	for _, h := range want1 {
		wantGained = append(wantGained, "chunks/"+h)
	}
	wantGained = append(wantGained, "manifests/"+s1+".json")
	slices.Sort(wantGained)
	if !slices.Equal(gained, wantGained) {
		t.Errorf("the first snapshot added %v to euca-snapshots, want its distinct chunks and manifest %v", gained, wantGained)
	}

	x.write(inst, vol, b.seed, b.mib)
	s2 := x.snapshot(vol)
	if st := x.waitSnapshot(s2); st != "completed" {
		t.Fatalf("snapshot %s: %s\n%s", s2, st, tail(x.g.front.log.String(), 30))
	}
	afterS2 := x.snapBucket()
	var added []string
	for k, o := range afterS2 {
		old, ok := afterS1[k]
		switch {
		case !ok:
			added = append(added, k)
		case old.ETag != o.ETag || old.LastModified != o.LastModified:
			t.Errorf("%s was stored again by the second snapshot: %+v, was %+v", k, o, old)
		}
	}
	slices.Sort(added)
	newChunk := "chunks/" + ebhChunkSums(second[:4<<20])[0]
	if want := []string{newChunk, "manifests/" + s2 + ".json"}; !slices.Equal(added, want) {
		t.Errorf("the second snapshot added %v, want only the rewritten chunk and its manifest %v", added, want)
	}
	m1, m2 := x.manifestChunks(s1), x.manifestChunks(s2)
	if len(m1) != len(m2) || len(m1) < 8 {
		t.Fatalf("manifests of %d and %d chunks", len(m1), len(m2))
	}
	for i := range m1 {
		if (m1[i] != m2[i]) != (i == 0) {
			t.Errorf("chunk %d: %q in %s, %q in %s: only chunk 0 was rewritten", i, m1[i], s1, m2[i], s2)
		}
	}
	t.Logf("first snapshot: %d chunk objects for %d MiB; second: %d new", len(want1), mib, len(added)-1)

	// Restore the first while it exists, then delete it: the second must
	// still restore (the chunks it shares with the first are kept).
	v1 := x.createVolume(s1)
	x.aws("ec2", "delete-snapshot", "--snapshot-id", s1)
	eventually(t, s1+" gone", 2*time.Minute, func() error {
		if _, err := x.try("ec2", "describe-snapshots", "--snapshot-ids", s1); err == nil {
			return fmt.Errorf("still listed")
		}
		if _, ok := x.snapBucket()["manifests/"+s1+".json"]; ok {
			return fmt.Errorf("its manifest is still in the bucket")
		}
		return nil
	})
	v2 := x.createVolume(s2)
	x.attach(v1, inst, "/dev/sdg")
	x.attach(v2, inst, "/dev/sdh")
	if got := x.read(inst, v1, mib); got != ebhSum(first) {
		t.Errorf("volume %s from %s reads %s, want %s (what was written)", v1, s1, got, ebhSum(first))
	}
	if got := x.read(inst, v2, mib); got != ebhSum(second) {
		t.Errorf("volume %s from %s (after %s was deleted) reads %s, want %s", v2, s2, s1, got, ebhSum(second))
	}
	for _, v := range []string{vol, v1, v2} {
		x.detach(v)
		x.aws("ec2", "delete-volume", "--volume-id", v)
	}
	x.g.terminate(inst)
}
