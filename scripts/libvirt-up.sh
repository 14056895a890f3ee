#!/usr/bin/env bash
# libvirt-up.sh: install and start libvirtd on a host without systemd (a
# developer's Debian 12 machine, CI), idempotently: packages present → no
# apt; daemons running → nothing started. Needs root.
#
# Why each step (checked on this kind of machine, see shared/MACHINE.md):
#   - never libvirt-daemon-system: it pulls in systemd-sysv, which replaces init;
#   - the libvirt-qemu user and group are what the daemon's packages expect
#     and postinst scripts do not create here;
#   - user = "root" in qemu.conf: without it libvirtd re-probes QEMU on every
#     domain start (/dev/kvm is root-only) and each start takes ~48 s;
#   - the daemons start with no descriptor but stdin, stdout and stderr: a
#     daemon keeps whatever it inherits, so under `flock LOCKFILE make
#     libvirt` it would hold the lock for as long as it runs;
#   - apt waits for another apt or dpkg (DPkg::Lock::Timeout) instead of
#     failing at once.
# Prints the socket path on success.
set -euo pipefail

SOCK=/var/run/libvirt/libvirt-sock
PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils nftables)

[ "$(id -u)" = 0 ] || { echo "libvirt-up: must run as root (libvirtd and QEMU are system daemons)" >&2; exit 1; }

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "libvirt-up: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=300
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${PKGS[@]}"
fi

mkdir -p /var/log/libvirt /etc/libvirt
getent group libvirt-qemu >/dev/null || groupadd -r -g 64055 libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
  useradd -r -u 64055 -g libvirt-qemu -d /var/lib/libvirt -M -s /usr/sbin/nologin libvirt-qemu

# Rewrite qemu.conf only when it differs, and then restart a running
# libvirtd, which reads the file only at start.
want=$'user = "root"\ngroup = "root"'
conf_changed=0
if [ "$(cat /etc/libvirt/qemu.conf 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > /etc/libvirt/qemu.conf
  conf_changed=1
fi

# A pid file alone is not proof: the daemon may have died and left it.
running() { local pid; pid=$(cat "/var/run/$1.pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# detached CMD...: run a daemon's start with every descriptor above stderr
# closed and stdin from /dev/null (it daemonizes itself: -d).
detached() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd<&-" 2>/dev/null
    done
    exec "$@" </dev/null
  )
}

running virtlogd || detached virtlogd -d
if running libvirtd && [ $conf_changed = 1 ]; then
  echo "libvirt-up: qemu.conf changed; restarting libvirtd"
  pid=$(cat /var/run/libvirtd.pid); kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
running libvirtd || detached libvirtd -d

# libvirtd -d returns before the socket is bound.
for _ in $(seq 300); do
  [ -S "$SOCK" ] && { echo "$SOCK"; exit 0; }
  sleep 0.1
done
echo "libvirt-up: $SOCK did not appear within 30 s (see /var/log/libvirt/)" >&2
exit 1
