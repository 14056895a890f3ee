package e2e

import (
	"testing"

	"github.com/euca-cloud/euca/internal/diskcmd"
)

// TestEBSGuestVolume: through the AWS API, a volume is created, attached
// to a running guest as /dev/sdf, written from inside the guest (found by
// its virtio serial, as the guest's kernel names it in probe order),
// detached, attached to a second guest, and read back there identical.
// One host (every role, a libvirtd of its own in the host's namespace):
// the volume goes from the storage controller's file over NBD with TLS to
// the node's socket and QEMU.
func TestEBSGuestVolume(t *testing.T) {
	t.Parallel() // its host is a network namespace of its own
	needGuestLAN(t)
	l := newLANNamed(t, "ebe", "10.241.1")
	fe := l.host("fe", `HYPERVISOR="qemu"`)
	e := &ebsCloud{guestLAN: startGuestLAN(t, fe)}
	e.cmds = serveDiskCommands(t, fe)
	group := e.group("ebs")

	a, zone := e.launchPolling(group)
	b, _ := e.launchPolling(group)
	vol := e.createVolume(zone, 1)
	serial := serialOf(vol)
	const mib = 8
	want := diskcmd.Sum("ebs-"+vol, mib)

	e.waitFor(a, 1, "EUCA-READY")
	e.attach(vol, a, "/dev/sdf")
	w := e.write(a, serial, "ebs-"+vol, mib)
	if w.SHA256 != want || w.Dev == "" || w.Dev == "vda" {
		t.Fatalf("%s wrote %+v, want sha256 %s on a disk of its own", a, w, want)
	}
	e.detach(vol)

	e.waitFor(b, 1, "EUCA-READY")
	e.attach(vol, b, "/dev/sdg")
	r := e.read(b, serial, mib)
	if r.SHA256 != want {
		t.Errorf("%s read %+v, want sha256 %s: what %s wrote", b, r, want, a)
	}
	e.detach(vol)
	e.aws("ec2", "delete-volume", "--volume-id", vol)
	e.terminate(a, b)
}

// TestEBSAcrossHosts: a volume served by the storage controller on the
// front-end (clc, walrus, sc, cc) is attached to a guest on a compute host
// that joined with a token: the node dials the front-end's NBD port under
// its joined identity, and the guest writes and reads it back; the bytes
// stay after a detach and a second attach.
func TestEBSAcrossHosts(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needGuestLAN(t)
	l := newLANNamed(t, "ebe", "10.241.2")
	fe := l.host("fe")
	n1 := l.host("n1", `HYPERVISOR="qemu"`)
	e := &ebsCloud{guestLAN: startStorageLAN(t, fe, n1)}
	e.cmds = serveDiskCommands(t, fe)
	group := e.group("ebs")

	id, zone := e.launchPolling(group)
	vol := e.createVolume(zone, 1)
	serial := serialOf(vol)
	const mib = 4
	want := diskcmd.Sum("far-"+vol, mib)
	e.waitFor(id, 1, "EUCA-READY")
	if countIn(e.nodes[0], []string{id}) != 1 {
		t.Fatalf("%s is not on the compute host", id)
	}
	e.attach(vol, id, "/dev/sdf")
	if w := e.write(id, serial, "far-"+vol, mib); w.SHA256 != want {
		t.Fatalf("wrote %+v, want sha256 %s", w, want)
	}
	e.detach(vol)
	e.attach(vol, id, "/dev/sdf")
	if r := e.read(id, serial, mib); r.SHA256 != want {
		t.Errorf("read back %+v, want sha256 %s", r, want)
	}
	e.detach(vol)
	e.aws("ec2", "delete-volume", "--volume-id", vol)
	e.terminate(id)
}
