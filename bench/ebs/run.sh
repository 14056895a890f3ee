#!/usr/bin/env bash
# The EBS benchmark's wrapper (make bench-ebs; root). A benchmark, not a
# test: nothing here asserts on time.
#
#   bench/ebs/run.sh [GUEST_DIR] [-- BENCH FLAGS...]     (bench-ebs -h lists the flags)
#
# It builds euca and the benchmark, then runs both as bench/launch/run.sh
# does (see there why): in private mount, network and pid namespaces with a
# libvirtd of its own, so that the benchmark's node controller never sees
# (and destroys) the guests of another cloud on this host, its bridge and
# nftables tables are its own, and every process of the run (euca,
# libvirtd, each QEMU) dies with it however the run ends. Everything it
# makes is under one temporary directory, removed at the end (KEEP=1 keeps
# it). The host baseline runs the guest's own timing function
# (scripts/guest-image.sh) under the guest's busybox, unpacked from
# GUEST_DIR/debs.
set -euo pipefail

if [ "${1:-}" = --inside ]; then
  W=$2 GUEST=$3 ROOT=$4
  shift 4
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
  # The address the guests fetch their disk commands from (10.247.0.0/16
  # is this benchmark's range; the cloud's subnet is 10.247.0.0/17).
  ip addr add 10.247.200.1/32 dev lo
  virtlogd -d -p "$P/virtlogd.pid"
  libvirtd -d -p "$P/libvirtd.pid"
  for _ in $(seq 1 100); do [ -S /run/libvirt/libvirt-sock ] && break; sleep 0.1; done
  [ -S /run/libvirt/libvirt-sock ] || { echo "bench-ebs: the private libvirtd did not start" >&2; exit 1; }
  rc=0
  "$W/bench-ebs" -guest "$GUEST" -euca "$W/euca" -work "$W/run" -busybox "$W/bb/bin/busybox" \
    -guest-script "$ROOT/scripts/guest-image.sh" "$@" || rc=$?
  for f in libvirtd virtlogd; do kill "$(cat "$P/$f.pid")" 2>/dev/null || true; done
  exit $rc
fi

[ "$(id -u)" = 0 ] || { echo "bench-ebs: must run as root (libvirt, bridges, nftables, namespaces)" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=build/guest
if [ $# -gt 0 ] && [ "$1" != -- ]; then GUEST=$1; shift; fi
[ "${1:-}" = -- ] && shift
GUEST=$(cd "$GUEST" && pwd)
BBDEB=$(ls "$GUEST"/debs/busybox-static_*.deb 2>/dev/null | tail -1)
[ -n "$BBDEB" ] || { echo "bench-ebs: no busybox-static package in $GUEST/debs (make guest-image)" >&2; exit 1; }
# Not /tmp if it is a tmpfs: the host baseline's O_DIRECT needs a real file system.
W=$(mktemp -d /var/tmp/ebg-bench-ebs.XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "bench-ebs: kept $W" >&2 || rm -rf "$W"' EXIT
dpkg-deb -x "$BBDEB" "$W/bb"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$W/euca" . && go build -o "$W/bench-ebs" ./bench/ebs)
unshare --mount --net --pid --fork --mount-proc "$ROOT/bench/ebs/run.sh" --inside "$W" "$GUEST" "$ROOT" "$@"
