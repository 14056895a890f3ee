#!/usr/bin/env bash
# The launch benchmark's wrapper (make bench-launch; root). A benchmark, not
# a test: nothing here asserts on time.
#
#   bench/launch/run.sh [GUEST_DIR] [-- BENCH FLAGS...]
#
# It builds euca and the benchmark, then runs both in private namespaces:
# a mount namespace with its own /run/libvirt, /var/lib/libvirt,
# /var/cache/libvirt and /var/log/libvirt, where it starts its own virtlogd
# and libvirtd; a network namespace (its own euca-br0, taps, nftables
# tables, DHCP); a pid namespace, so that every process of the run (euca,
# libvirtd, each QEMU) dies with it, however the run ends.
#
# Why not the host's libvirtd: an NC destroys every euca-* domain on its
# libvirt that its own store does not want, and a CC owns the euca-br0
# bridge and the euca nftables table. A second cloud on a shared host
# therefore kills the guests of any other cloud or end-to-end test running
# there (and they kill its). The namespaces keep the benchmark and the
# host's other users apart. The host's capability cache is copied in, so
# the private libvirtd does not probe QEMU again.
set -euo pipefail

if [ "${1:-}" = --inside ]; then
  W=$2 GUEST=$3
  shift 3
  P=$W/libvirt
  mkdir -p "$P"/{run,lib/qemu,cache,log/qemu}
  cp -a /var/cache/libvirt/. "$P/cache/" 2>/dev/null || true
  mount --make-rprivate /
  mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
  mount --bind "$P/run" /run/libvirt
  mount --bind "$P/lib" /var/lib/libvirt
  mount --bind "$P/cache" /var/cache/libvirt
  mount --bind "$P/log" /var/log/libvirt
  ip link set lo up
  virtlogd -d -p "$P/virtlogd.pid"
  libvirtd -d -p "$P/libvirtd.pid"
  for _ in $(seq 1 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
  [ -S /run/libvirt/libvirt-sock ] || { echo "bench-launch: the private libvirtd did not start" >&2; exit 1; }
  rc=0
  "$W/bench-launch" -guest "$GUEST" -euca "$W/euca" -work "$W/run" "$@" || rc=$?
  # Everything else in the pid namespace is killed when this script ends;
  # the daemons are asked first so they leave no state behind.
  for f in libvirtd virtlogd; do kill "$(cat "$P/$f.pid")" 2>/dev/null || true; done
  exit $rc
fi

[ "$(id -u)" = 0 ] || { echo "bench-launch: must run as root (libvirt, bridges, nftables, namespaces)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=build/guest
if [ $# -gt 0 ] && [ "$1" != -- ]; then GUEST=$1; shift; fi
[ "${1:-}" = -- ] && shift
GUEST=$(cd "$GUEST" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/euca-bench-launch.XXXXXX")
trap '[ -n "${KEEP:-}" ] && echo "bench-launch: kept $W" >&2 || rm -rf "$W"' EXIT
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$W/euca" . && go build -o "$W/bench-launch" ./bench/launch)
unshare --mount --net --pid --fork --mount-proc "$ROOT/bench/launch/run.sh" --inside "$W" "$GUEST" "$@"
