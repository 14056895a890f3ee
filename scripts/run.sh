#!/usr/bin/env bash
# make run: start a whole cloud on this machine, with its state under
# RUNDIR, register the test guest, and print the command that launches it.
# The cloud runs in the foreground of this script; Ctrl-C stops it.
#
# As root the cloud runs every role (instances need libvirtd, a bridge and
# nftables: scripts/libvirt-up.sh and scripts/guest-image.sh are run first).
# As another user it runs the roles that need no root (clc, walrus) and says
# so.
set -euo pipefail
BIN=${BIN:-bin/euca}
RUNDIR=${RUNDIR:-$PWD/build/run}
PORT=${PORT:-8773}
GUEST=${GUEST:-$PWD/build/guest}
mkdir -p "$RUNDIR/creds"

if [ "$(id -u)" = 0 ]; then
  ROLES=${ROLES:-all}
  scripts/libvirt-up.sh
  scripts/guest-image.sh "$GUEST"
else
  ROLES=${ROLES:-clc,walrus}
  echo "run: not root: starting $ROLES only (instances need root for libvirt, the bridge and nftables)" >&2
fi

conf=$RUNDIR/eucalyptus.conf
[ -f "$conf" ] || printf 'EUCALYPTUS="%s"\nCLOUD_PORT="%s"\nLOGLEVEL="INFO"\n' "$RUNDIR" "$PORT" > "$conf"

"$BIN" --roles="$ROLES" --conf "$conf" --kvm-probe "$GUEST" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 300); do
  (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { echo "run: euca exited" >&2; exit 1; }
  sleep 0.2
done

"$BIN" --conf "$conf" credentials --account admin --zip "$RUNDIR/creds/admin.zip" 2>/dev/null
(cd "$RUNDIR/creds" && unzip -o -q admin.zip)
set -a; . "$RUNDIR/creds/eucarc"; set +a

# Register the test guest once: kernel, ramdisk, then the machine image
# that names them, from bundles uploaded to Walrus as euca2ools users did.
if [ -f "$GUEST/root.img" ] && [[ ",$ROLES," == *,all,* || ",$ROLES," == *,walrus,* ]]; then
  emi=$(aws ec2 describe-images --owners self --filters Name=name,Values=euca-test-guest --query 'Images[0].ImageId' --output text 2>/dev/null || true)
  if [ -z "$emi" ] || [ "$emi" = None ]; then
    b="$RUNDIR/bundles"; rm -rf "$b"; mkdir -p "$b"
    "$BIN" bundle-image -i "$GUEST/vmlinuz" -d "$b" -p euca-test-kernel --kernel true >/dev/null
    "$BIN" bundle-image -i "$GUEST/initrd.img" -d "$b" -p euca-test-ramdisk --ramdisk true >/dev/null
    "$BIN" upload-bundle -b euca-test-guest -m "$b/euca-test-kernel.manifest.xml" >/dev/null
    "$BIN" upload-bundle -b euca-test-guest -m "$b/euca-test-ramdisk.manifest.xml" >/dev/null
    eki=$(aws ec2 register-image --image-location euca-test-guest/euca-test-kernel.manifest.xml --name euca-test-kernel --query ImageId --output text)
    eri=$(aws ec2 register-image --image-location euca-test-guest/euca-test-ramdisk.manifest.xml --name euca-test-ramdisk --query ImageId --output text)
    "$BIN" bundle-image -i "$GUEST/root.img" -d "$b" -p euca-test-guest --kernel "$eki" --ramdisk "$eri" >/dev/null
    "$BIN" upload-bundle -b euca-test-guest -m "$b/euca-test-guest.manifest.xml" >/dev/null
    emi=$(aws ec2 register-image --image-location euca-test-guest/euca-test-guest.manifest.xml --name euca-test-guest --query ImageId --output text)
    rm -rf "$b"
  fi
  cat <<MSG

The cloud is up. In another shell:

  source $RUNDIR/creds/eucarc
  aws ec2 run-instances --image-id $emi --instance-type m1.small
  aws ec2 describe-instances
  aws ec2 get-console-output --instance-id <i-...> --output text

MSG
else
  cat <<MSG

The cloud is up. In another shell:

  source $RUNDIR/creds/eucarc
  aws ec2 describe-availability-zones --zone-names verbose

MSG
fi
wait $pid
