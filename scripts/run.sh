#!/usr/bin/env bash
# make run: start a whole cloud on this machine, with its state under
# RUNDIR, register the test guest, and print the commands that launch it.
# The cloud runs until Ctrl-C (or SIGTERM), which stops it cleanly: exit 0.
#
# As root the cloud runs every role (instances need libvirtd, a bridge and
# nftables: scripts/libvirt-up.sh and scripts/guest-image.sh are run first).
# As another user it runs the roles that need no root (clc, walrus, sc) and
# says so. ROLES overrides the roles; METADATA_PORT and SC_NBD_PORT the
# metadata listener's and the storage controller's NBD port of a new RUNDIR.
#
# The cloud logs to files under RUNDIR (euca --log-files), so the banner
# with the next commands stays on the terminal.
set -euo pipefail

# On a terminal, run again as a foreground job of our own (set -m): Ctrl-C
# then reaches this script and the cloud only, not make, which would
# otherwise report the interrupt as its own failure ("make: *** Interrupt").
if [ -t 0 ] && [ -z "${EUCA_RUN_JOB:-}" ]; then
  set -m
  EUCA_RUN_JOB=$$ "$0" "$@" && exit 0 || exit $?
fi
parent=${EUCA_RUN_JOB:-}

BIN=${BIN:-bin/euca}
RUNDIR=${RUNDIR:-$PWD/build/run}
PORT=${PORT:-8773}
GUEST=${GUEST:-$PWD/build/guest}
mkdir -p "$RUNDIR/creds"

if [ "$(id -u)" = 0 ]; then
  ROLES=${ROLES:-all}
else
  ROLES=${ROLES:-clc,walrus,sc}
  echo "run: not root: starting $ROLES only (instances need root for libvirt, the bridge and nftables)" >&2
fi
has() { [[ ",$ROLES," == *,all,* || ",$ROLES," == *,$1,* ]]; }
if has nc; then
  scripts/libvirt-up.sh
  scripts/guest-image.sh "$GUEST"
fi

conf=$RUNDIR/eucalyptus.conf
if [ ! -f "$conf" ]; then
  printf 'EUCALYPTUS="%s"\nCLOUD_PORT="%s"\nLOGLEVEL="INFO"\n' "$RUNDIR" "$PORT" > "$conf"
  [ -z "${METADATA_PORT:-}" ] || printf 'METADATA_PORT="%s"\n' "$METADATA_PORT" >> "$conf"
  [ -z "${SC_NBD_PORT:-}" ] || printf 'SC_NBD_PORT="%s"\n' "$SC_NBD_PORT" >> "$conf"
fi
logs=$RUNDIR/var/log/eucalyptus

"$BIN" --roles="$ROLES" --conf "$conf" --kvm-probe "$GUEST" --log-files 2>>"$RUNDIR/euca.stderr" &
pid=$!
echo "$pid" > "$RUNDIR/euca.pid"

# Stop: ask the cloud to stop (SIGTERM; as a background job it ignores
# SIGINT), wait for it, and end with its status: 0 for a clean stop.
stop() {
  trap - INT TERM HUP
  echo "run: stopping the cloud" >&2
  kill -TERM "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" || rc=$?
  echo "run: stopped (guests keep running; euca network flush removes the network once none runs)" >&2
  exit $rc
}
trap stop INT TERM HUP
trap 'kill -TERM $pid 2>/dev/null || true' EXIT

died() {
  echo "run: euca exited; the end of its logs:" >&2
  tail -n 20 "$RUNDIR/euca.stderr" "$logs/cloud-output.log" >&2 2>/dev/null || true
  exit 1
}
for _ in $(seq 1 300); do
  (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || died
  sleep 0.2
done

"$BIN" --conf "$conf" credentials --account admin --zip "$RUNDIR/creds/admin.zip" 2>/dev/null
(cd "$RUNDIR/creds" && unzip -o -q admin.zip)
set -a; . "$RUNDIR/creds/eucarc"; set +a

# Register the test guest once: kernel, ramdisk, then the machine image
# that names them, from bundles uploaded to Walrus as euca2ools users did.
if [ -f "$GUEST/root.img" ] && has walrus; then
  emi=$(aws ec2 describe-images --owners self --filters Name=name,Values=euca-test-guest --query 'Images[0].ImageId' --output text 2>/dev/null || true)
  if [ -z "$emi" ] || [ "$emi" = None ]; then
    b="$RUNDIR/bundles"; rm -rf "$b"; mkdir -p "$b"
    "$BIN" bundle-image -i "$GUEST/vmlinuz" -d "$b" -p euca-test-kernel --kernel true --no-progress >/dev/null
    "$BIN" bundle-image -i "$GUEST/initrd.img" -d "$b" -p euca-test-ramdisk --ramdisk true --no-progress >/dev/null
    "$BIN" upload-bundle -b euca-test-guest -m "$b/euca-test-kernel.manifest.xml" --no-progress >/dev/null
    "$BIN" upload-bundle -b euca-test-guest -m "$b/euca-test-ramdisk.manifest.xml" --no-progress >/dev/null
    eki=$(aws ec2 register-image --image-location euca-test-guest/euca-test-kernel.manifest.xml --name euca-test-kernel --query ImageId --output text)
    eri=$(aws ec2 register-image --image-location euca-test-guest/euca-test-ramdisk.manifest.xml --name euca-test-ramdisk --query ImageId --output text)
    "$BIN" bundle-image -i "$GUEST/root.img" -d "$b" -p euca-test-guest --kernel "$eki" --ramdisk "$eri" --no-progress >/dev/null
    "$BIN" upload-bundle -b euca-test-guest -m "$b/euca-test-guest.manifest.xml" --no-progress >/dev/null
    emi=$(aws ec2 register-image --image-location euca-test-guest/euca-test-guest.manifest.xml --name euca-test-guest --query ImageId --output text)
    rm -rf "$b"
  fi
  # The README's walkthrough, with this cloud's image.
  next=$(cat <<MSG
  source $RUNDIR/creds/eucarc
  (umask 077; aws ec2 create-key-pair --key-name mykey --query KeyMaterial --output text > "\${TMPDIR:-/tmp}/mykey.pem")
  aws ec2 run-instances --image-id $emi --instance-type m1.small --key-name mykey --user-data "hello"
  aws ec2 describe-instances
  aws ec2 get-console-output --instance-id i-... --output text
MSG
)
else
  next=$(cat <<MSG
  source $RUNDIR/creds/eucarc
  aws ec2 describe-availability-zones --zone-names verbose
MSG
)
fi
if has sc || [[ ",$ROLES," == *,storage,* ]]; then
  # The storage controller's own line of the log: where its volumes are
  # and where nodes reach them.
  sc=$(grep -m1 'storage controller running' "$logs/cloud-output.log" 2>/dev/null | grep -o 'volumes=[^ ]* nbd=[^ ]* nodes_dial=[^ ]*' || true)
  storage="
Storage controller (EBS volumes): ${sc:-see the log}
"
else
  storage=""
fi
cat <<MSG

The cloud is up. In another shell:

$next
$storage
Logs: $logs/cloud-output.log (cc.log, nc.log beside it). Ctrl-C stops the cloud.

MSG

# Wait for the cloud. A trap interrupts `wait`, so poll instead of waiting
# once; the poll also notices when the job's parent (the copy of this script
# make started) is gone, as when make itself is sent SIGTERM.
while kill -0 "$pid" 2>/dev/null; do
  if [ -n "$parent" ] && ! kill -0 "$parent" 2>/dev/null; then
    stop
  fi
  sleep 1 & wait $! || true
done
rc=0
wait "$pid" || rc=$?
[ $rc = 0 ] || died
