package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibvirtUpReleasesLock: `flock LOCKFILE scripts/libvirt-up.sh` returns
// with the lock free although the daemons it started run on (they start
// without the descriptors they would inherit), and a second run restarts
// nothing. It runs in private mount, pid and network namespaces with their
// own /run and libvirt directories, so the daemons it starts are fresh
// ones of its own and the host's libvirtd is left alone; they die with the
// pid namespace.
func TestLibvirtUpReleasesLock(t *testing.T) {
	Need(t, "unshare", "flock")
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "libvirtd and namespaces need root"
	case !exists("/usr/sbin/libvirtd") || !exists("/usr/sbin/virtlogd"):
		why = "libvirtd is not installed (make libvirt)"
	}
	Missing(t, why)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w := t.TempDir()
	lock := filepath.Join(w, "lock")
	const inside = `
set -euo pipefail
W=$1 LOCK=$2
mount --make-rprivate /
mount -t tmpfs tmpfs /run
for d in /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
  mkdir -p "$W/ns$d" "$d"
  mount --bind "$W/ns$d" "$d"
done
ip link set lo up
flock "$LOCK" scripts/libvirt-up.sh >/dev/null
lv=$(cat /run/libvirtd.pid) vl=$(cat /run/virtlogd.pid)
kill -0 "$lv" && kill -0 "$vl"
flock -n "$LOCK" true || { echo "the lock is still held after libvirt-up.sh returned:"; ls -l /proc/$lv/fd /proc/$vl/fd | grep -F "$LOCK"; exit 3; }
flock "$LOCK" scripts/libvirt-up.sh >/dev/null
[ "$(cat /run/libvirtd.pid) $(cat /run/virtlogd.pid)" = "$lv $vl" ] || { echo "a second run restarted the daemons"; exit 4; }
flock -n "$LOCK" true || { echo "the lock is held after the second run"; exit 5; }
kill "$lv" "$vl"
echo ok
`
	cmd := exec.Command("unshare", "--mount", "--pid", "--net", "--fork", "--mount-proc", "bash", "-c", inside, "bash", w, lock)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("%v\n%s", err, out)
	}
}
