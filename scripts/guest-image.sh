#!/usr/bin/env bash
# guest-image.sh: build the project's test guest from Debian packages only.
#
#   scripts/guest-image.sh [OUTDIR]        (default build/guest; `make guest-image`)
#
# Writes OUTDIR/vmlinuz (the kernel of linux-image-cloud-amd64),
# OUTDIR/initrd.img (busybox-static and that kernel's virtio modules) and
# OUTDIR/root.img (a small ext4 file system made with `mkfs.ext4 -d`: no loop
# mount, no root needed for that part). Nothing here is installed on the host:
# the packages are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`.
#
# Idempotent: when the three outputs exist and were made by this very script
# (a hash of it is kept in OUTDIR/.stamp), it does nothing; editing the guest's
# init below rebuilds on the next run.
#
# What the guest prints on its serial console, one marker per line, so tests
# and `aws ec2 get-console-output` readers can find them:
#   EUCA-INITRD-OK            the ramdisk ran and loaded the virtio modules
#   EUCA-PROBE-OK             (kernel argument euca.probe) then powers off: the KVM probe
#   EUCA-ROOT-OK ...          the root disk is mounted and its init runs
#   EUCA-EPHEMERAL / EUCA-SWAP  the ephemeral disk mounted, the swap enabled
#   EUCA-LEASE ip=... / EUCA-DHCP-FAIL
#   EUCA-IMDS v2|v1           whether a session token (IMDSv2) was obtained
#   EUCA-META instance-id=... / EUCA-META public-key=...
#   EUCA-USERDATA-BEGIN ... EUCA-USERDATA-END  (or EUCA-USERDATA-NONE)
#   EUCA-BDM ephemeral0=sdb dev=/dev/vdb bytes=N ok   (and swap=...): the disk the
#                             metadata's block-device-mapping names, found as
#                             cloud-init finds it (sdX, else vdX or xvdX), is the
#                             one the node labelled for that use ("FAIL" if not;
#                             "EUCA-BDM swap=none" when the mapping has no entry)
#   EUCA-HTTPD port=80        busybox httpd serves /index.html (the instance id)
#   EUCA-HTTPD port=8080      and the same page on a second port, so a test can
#                             tell a port a group opened from one it did not;
#                             both also serve /big, 2 MiB of zeros: a download
#                             a test can hold open across a rule change
#   EUCA-READY ...            init is done; the guest then idles
#   EUCA-FETCHED url=... body=... / EUCA-FETCH-FAIL url=...  for each
#                             "EUCA-FETCH URL" line of the user data (within 40 s)
#   EUCA-POLL-OK url=... body=... / EUCA-POLL-FAIL url=...  for each
#                             "EUCA-POLL URL" line of the user data: the URL is
#                             fetched every second, for as long as the guest
#                             runs, and a line is printed on the first outcome
#                             and whenever it changes (an answer after none,
#                             another body; no answer twice in a row after one),
#                             so the console shows each transition a rule
#                             change makes
#   EUCA-DISK seq=N op=write|read serial=S dev=vdX sha256=H / EUCA-DISK seq=N error=...
#                             for each command of the "EUCA-DISKCMD URL" lines of the
#                             user data: the URL is fetched every second; its body
#                             holds lines "SEQ write SERIAL SEED MIB" (write MIB MiB
#                             of "SEED\n" repeated, as `yes SEED` prints it, to the
#                             virtio disk whose serial is SERIAL, fsync, read it back)
#                             or "SEQ read SERIAL MIB" (sha256 of its first MIB MiB);
#                             each SEQ runs once, in order, and the disk is waited
#                             for up to 60 s (a volume being hot-plugged). Volumes
#                             are found by serial: the kernel names hot-plugged
#                             virtio disks in probe order, not by EC2's device names
#   EUCA-DISK seq=N op=OP serial=S dev=D mib=M n=K ms=T  for the timed commands of the
#                             same URL (bench/ebs): "SEQ seqwrite|seqread SERIAL MIB"
#                             (MIB MiB in 1 MiB blocks, O_DIRECT, a write fsynced at
#                             its end) and "SEQ randwrite|randread SERIAL MIB K" (K
#                             4 KiB blocks at random offsets of the first MIB MiB, a
#                             busybox dd each, O_DIRECT, a write fsynced at its end);
#                             "randnull none MIB K" times the same loop from /dev/zero
#                             to /dev/null (what the dd processes cost); SERIAL
#                             "rootfs" is the file /bench.img on the root disk's
#                             file system. T is milliseconds, from /proc/uptime
set -euo pipefail

OUT=${1:-build/guest}
ROOT_SIZE=${ROOT_SIZE:-64M} # small: the image is bundled and uploaded in tests
SELF=$(readlink -f "$0")
STAMP=$(sha256sum "$SELF" | cut -d' ' -f1)

if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ] && [ -s "$OUT/root.img" ] &&
  [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  echo "guest-image: $OUT is up to date"
  exit 0
fi

for tool in apt-get dpkg-deb mkfs.ext4 gzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "guest-image: $tool is missing (Debian's apt, dpkg, e2fsprogs)" >&2; exit 1; }
done

mkdir -p "$OUT/debs"
OUT=$(readlink -f "$OUT")
DEBS=$OUT/debs
WORK=$OUT/work
rm -rf "$WORK"
mkdir -p "$WORK"

# download PKG...: into $DEBS, as root without the _apt sandbox warning; a
# machine whose package lists were never fetched gets them once.
download() {
  (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null 2>"$WORK/apt.err") && return 0
  echo "guest-image: apt-get download $* failed; updating the package lists" >&2
  apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
  (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null) || {
    cat "$WORK/apt.err" >&2
    return 1
  }
}

# The kernel: whatever linux-image-cloud-amd64 points at today (its one
# dependency, "linux-image-6.1.0-NN-cloud-amd64 (= ...)"), never a pinned one.
rm -f "$DEBS"/linux-image-cloud-amd64_*.deb
download linux-image-cloud-amd64
KPKG=$(dpkg-deb -f "$DEBS"/linux-image-cloud-amd64_*.deb Depends | tr ',' '\n' | awk '/linux-image-/{print $1; exit}')
[ -n "$KPKG" ] || { echo "guest-image: cannot read the kernel package from linux-image-cloud-amd64" >&2; exit 1; }
KV=${KPKG#linux-image-}
# Kernels of earlier builds are no use once the meta package moved on.
find "$DEBS" -name 'linux-image-*.deb' ! -name "${KPKG}_*" ! -name 'linux-image-cloud-amd64_*' -delete
ls "$DEBS/${KPKG}"_*.deb >/dev/null 2>&1 || download "$KPKG"
ls "$DEBS"/busybox-static_*.deb >/dev/null 2>&1 || download busybox-static
echo "guest-image: kernel $KV, $(cd "$DEBS" && ls busybox-static_*.deb)"

mkdir "$WORK/kern" "$WORK/bb"
dpkg-deb -x "$(ls "$DEBS/${KPKG}"_*.deb | tail -1)" "$WORK/kern"
dpkg-deb -x "$(ls "$DEBS"/busybox-static_*.deb | tail -1)" "$WORK/bb"
BB=$WORK/bb/bin/busybox
MODS=$WORK/kern/lib/modules/$KV/kernel
cp "$WORK/kern/boot/vmlinuz-$KV" "$WORK/vmlinuz"

# --- the ramdisk: busybox and the virtio modules, in dependency order ---
INITRD=$WORK/initrd
mkdir -p "$INITRD"/{bin,lib/modules,dev,proc,sys,newroot}
cp "$BB" "$INITRD/bin/"
MODLIST="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net"
for f in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
  drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk \
  net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
  # Debian ships modules uncompressed in bookworm, compressed (.ko.xz) later.
  if [ -f "$MODS/$f.ko" ]; then
    cp "$MODS/$f.ko" "$INITRD/lib/modules/"
  elif [ -f "$MODS/$f.ko.xz" ]; then
    "$BB" xzcat "$MODS/$f.ko.xz" >"$INITRD/lib/modules/$(basename "$f").ko"
  else
    echo "guest-image: module $f missing from $KPKG" >&2
    exit 1
  fi
done
cat >"$INITRD/init" <<EOF
#!/bin/busybox sh
# The ramdisk's init: load virtio, mount the root disk (/dev/vda, a whole-disk
# ext4 file system) and hand over to its /sbin/init.
B=/bin/busybox
\$B mount -t proc proc /proc
\$B mount -t sysfs sys /sys
\$B mount -t devtmpfs dev /dev
for m in $MODLIST; do
  \$B insmod /lib/modules/\$m.ko || echo "EUCA-INSMOD-FAIL \$m"
done
echo "EUCA-INITRD-OK"
if \$B grep -qw euca.probe /proc/cmdline; then
  echo "EUCA-PROBE-OK"
  \$B poweroff -f
fi
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do \$B usleep 100000; i=\$((i+1)); done
if \$B mount -t ext4 /dev/vda /newroot; then
  \$B umount /proc /sys
  \$B mount --move /dev /newroot/dev
  exec \$B switch_root /newroot /sbin/init
fi
echo "EUCA-NO-ROOT"
while :; do \$B sleep 3600; done
EOF
chmod +x "$INITRD/init"
# The host has no cpio: busybox's writes the newc format the kernel reads.
(cd "$INITRD" && find . | "$BB" cpio -o -H newc 2>/dev/null | gzip -9) >"$WORK/initrd.img"

# --- the root file system ---
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,www,media}
cp "$BB" "$ROOT/bin/"
for a in $("$BB" --list); do [ "$a" = busybox ] || ln -sf busybox "$ROOT/bin/$a"; done
echo euca-guest >"$ROOT/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"

cat >"$ROOT/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc calls this on each lease event.
case "$1" in
deconfig)
  ip addr flush dev "$interface"
  ip link set "$interface" up
  ;;
bound | renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/${mask:-24}" dev "$interface"
  [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
  # A network carried between hosts offers its smaller MTU (option 26).
  [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
  : >/etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
  [ -n "$hostname" ] && hostname "$hostname"
  # udhcpc's own output is kept out of the console; this line is for it.
  echo "EUCA-LEASE ip=$ip mask=$mask router=$router dns=$dns hostname=$hostname lease=$lease mtu=$(cat /sys/class/net/$interface/mtu)" >/dev/console
  ;;
esac
exit 0
EOF

cat >"$ROOT/sbin/init" <<'EOF'
#!/bin/sh
# The test guest's init: report on the serial console what the cloud gave
# this instance (disks, address, metadata), between markers, then serve HTTP.
export PATH=/bin
MD=http://169.254.169.254
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname -F /etc/hostname
up() { cut -d' ' -f1 /proc/uptime; }
echo "EUCA-ROOT-OK kernel=$(uname -r) uptime=$(up)"

# The NC labels the disks it makes, whatever order they are attached in.
if dev=$(findfs LABEL=ephemeral0 2>/dev/null); then
  mkdir -p /media/ephemeral0
  mount -t ext4 "$dev" /media/ephemeral0 &&
    echo "EUCA-EPHEMERAL dev=$dev kb=$(df -k /media/ephemeral0 | awk 'NR==2{print $2}')"
fi
if dev=$(findfs LABEL=swap 2>/dev/null); then
  swapon "$dev" && echo "EUCA-SWAP dev=$dev kb=$(awk '/^SwapTotal/{print $2}' /proc/meminfo)"
fi

# imds_token: an IMDSv2 session token, or nothing. busybox wget cannot
# send a PUT, so the request is written by hand through nc.
imds_token() {
  printf 'PUT /latest/api/token HTTP/1.0\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n' |
    timeout 10 nc 169.254.169.254 80 >/tmp/token.http 2>/dev/null || return 0
  head -n1 /tmp/token.http | grep -q '^HTTP/1\.[01] 200' || return 0
  tr -d '\r' </tmp/token.http | sed '1,/^$/d' | tr -d '\n'
}
# get PATH: one metadata GET (busybox 1.35's wget -T segfaults: use timeout).
get() {
  if [ -n "$TOKEN" ]; then
    timeout 10 wget -q -O - --header "X-aws-ec2-metadata-token: $TOKEN" "$MD/latest/$1"
  else
    timeout 10 wget -q -O - "$MD/latest/$1"
  fi
}

# bdm NAME DEVICE: the block-device-mapping entry NAME (ephemeral0, swap)
# names DEVICE ("sdb" or "/dev/sdb"); find it as cloud-init does (as given,
# else sdX as vdX, then xvdX) and check it is the disk the node labelled for
# that use (ephemeral0, swap).
bdm() {
  short=${2#/dev/}
  cands=/dev/$short
  case $short in sd*) cands="$cands /dev/vd${short#sd} /dev/xvd${short#sd}" ;; esac
  dev=
  for c in $cands; do
    [ -b "$c" ] && { dev=$c; break; }
  done
  if [ -z "$dev" ]; then
    echo "$1=$2 dev=none FAIL"
    return
  fi
  bytes=$(($(cat "/sys/class/block/${dev#/dev/}/size") * 512))
  st=FAIL
  [ "$(findfs "LABEL=$1" 2>/dev/null)" = "$dev" ] && st=ok
  echo "$1=$2 dev=$dev bytes=$bytes $st"
}

# disk_by_serial SERIAL: the name (vdX) of the virtio disk whose serial is
# SERIAL, waiting up to 60 s for it to appear.
disk_by_serial() {
  i=0
  while [ $i -lt 60 ]; do
    for d in /sys/block/vd*; do
      [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && { echo "${d##*/}"; return 0; }
    done
    i=$((i + 1))
    sleep 1
  done
  return 1
}
# disk_sum DEV MIB: sha256 of DEV's first MIB MiB, read from the disk (the
# page cache dropped first, so a write is read back from the volume).
disk_sum() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
  dd if="/dev/$1" bs=1M count="$2" 2>/dev/null | sha256sum | cut -d' ' -f1
}
# now_cs: centiseconds since boot ("1" before the fraction keeps a leading
# 0 from reading as octal).
now_cs() {
  read -r u _ </proc/uptime
  echo $((${u%.*} * 100 + 1${u#*.} - 100))
}
# io_time OP PATH MIB N: run one timed I/O pattern (see the header) on
# PATH and print the milliseconds it took; its data is made beforehand.
io_time() {
  [ "$1" = seqwrite ] && [ "$(stat -c %s /tmp/pattern 2>/dev/null)" != $(($3 << 20)) ] &&
    yes euca-bench | head -c $(($3 << 20)) >/tmp/pattern
  [ -s /tmp/pattern4k ] || yes euca-bench | head -c 4096 >/tmp/pattern4k
  blocks=$(($3 * 256)) i=0 rc=0
  sync
  t0=$(now_cs)
  case $1 in
  seqwrite) dd if=/tmp/pattern of="$2" bs=1M count="$3" oflag=direct conv=fsync,notrunc 2>/tmp/dd.err || rc=1 ;;
  seqread) dd if="$2" of=/dev/null bs=1M count="$3" iflag=direct 2>/tmp/dd.err || rc=1 ;;
  *)
    while [ $i -lt "$4" ] && [ $rc = 0 ]; do
      off=$(((RANDOM * 32768 + RANDOM) % blocks))
      case $1 in
      randwrite) dd if=/tmp/pattern4k of="$2" bs=4096 count=1 seek=$off oflag=direct conv=notrunc 2>/tmp/dd.err || rc=1 ;;
      randread) dd if="$2" of=/dev/null bs=4096 count=1 skip=$off iflag=direct 2>/tmp/dd.err || rc=1 ;;
      *) dd if=/dev/zero of=/dev/null bs=4096 count=1 2>/tmp/dd.err || rc=1 ;;
      esac
      i=$((i + 1))
    done
    if [ "$1" = randwrite ] && [ $rc = 0 ]; then
      dd if=/dev/null of="$2" count=0 conv=fsync,notrunc 2>/tmp/dd.err || rc=1
    fi
    ;;
  esac
  t1=$(now_cs)
  [ $rc = 0 ] && echo $(((t1 - t0) * 10))
}
# diskcmd SEQ OP SERIAL ARGS...: one disk command (see the header).
diskcmd() {
  seq=$1 op=$2 serial=$3
  case $op in
  seqwrite | seqread | randwrite | randread | randnull)
    mib=$4 n=${5:-0}
    case $mib$n in '' | *[!0-9]*) echo "EUCA-DISK seq=$seq error=bad-size:$mib:$n"; return ;; esac
    case $serial in
    rootfs) path=/bench.img dev=rootfs ;;
    none) path=/dev/null dev=none ;;
    *)
      if ! dev=$(disk_by_serial "$serial"); then
        echo "EUCA-DISK seq=$seq error=no-disk serial=$serial"
        return
      fi
      path=/dev/$dev
      ;;
    esac
    if ms=$(io_time "$op" "$path" "$mib" "$n"); then
      echo "EUCA-DISK seq=$seq op=$op serial=$serial dev=$dev mib=$mib n=$n ms=$ms"
    else
      echo "EUCA-DISK seq=$seq error=io-failed op=$op dev=$dev $(tr '\n' ' ' </tmp/dd.err)"
    fi
    return
    ;;
  write) seed=$4 mib=$5 ;;
  read) seed= mib=$4 ;;
  *) echo "EUCA-DISK seq=$seq error=unknown-op:$op"; return ;;
  esac
  case $mib in '' | *[!0-9]*) echo "EUCA-DISK seq=$seq error=bad-size:$mib"; return ;; esac
  if ! dev=$(disk_by_serial "$serial"); then
    echo "EUCA-DISK seq=$seq error=no-disk serial=$serial"
    return
  fi
  if [ "$op" = write ]; then
    if ! yes "$seed" | head -c $((mib << 20)) | dd of="/dev/$dev" bs=1M iflag=fullblock conv=fsync 2>/tmp/dd.err; then
      echo "EUCA-DISK seq=$seq error=write-failed dev=$dev $(tr '\n' ' ' </tmp/dd.err)"
      return
    fi
  fi
  echo "EUCA-DISK seq=$seq op=$op serial=$serial dev=$dev sha256=$(disk_sum "$dev" "$mib")"
}

IID=
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up
  echo "EUCA-NIC mac=$(cat /sys/class/net/eth0/address) mtu=$(cat /sys/class/net/eth0/mtu)"
  # Without -q, udhcpc stays in the background after the lease to renew it.
  if udhcpc -i eth0 -s /etc/udhcpc.script -O mtu -t 10 -T 2 -n >/tmp/udhcpc.log 2>&1; then
    TOKEN=
    i=0
    while [ $i -lt 5 ]; do
      TOKEN=$(imds_token)
      [ -n "$TOKEN" ] && break
      IID=$(timeout 10 wget -q -O - "$MD/latest/meta-data/instance-id") && break
      i=$((i + 1))
      sleep 2
    done
    if [ -n "$TOKEN" ]; then echo "EUCA-IMDS v2"; else echo "EUCA-IMDS v1"; fi
    IID=$(get meta-data/instance-id) && echo "EUCA-META instance-id=$IID" || echo "EUCA-META-FAIL instance-id"
    KEY=$(get meta-data/public-keys/0/openssh-key) && echo "EUCA-META public-key=$KEY" || echo "EUCA-META-NONE public-key"
    if get user-data >/run/user-data; then
      echo "EUCA-USERDATA-BEGIN"
      cat /run/user-data
      echo
      echo "EUCA-USERDATA-END"
    else
      echo "EUCA-USERDATA-NONE"
    fi
    for name in ephemeral0 swap; do
      if m=$(get "meta-data/block-device-mapping/$name"); then
        echo "EUCA-BDM $(bdm "$name" "$m")"
      else
        echo "EUCA-BDM $name=none"
      fi
    done
  else
    echo "EUCA-DHCP-FAIL"
  fi
fi

echo "${IID:-unknown}" >/www/index.html
dd if=/dev/zero of=/www/big bs=65536 count=32 2>/dev/null
httpd -p 80 -h /www && echo "EUCA-HTTPD port=80"
httpd -p 8080 -h /www && echo "EUCA-HTTPD port=8080"
echo "EUCA-READY instance-id=${IID:-unknown} uptime=$(up)"
# "EUCA-FETCH URL" lines in the user data: fetch each URL (another
# instance's httpd, say) for up to 40 s and say whether it answered, so a
# test sees what the security groups let through between guests.
if [ -s /run/user-data ]; then
  grep '^EUCA-FETCH ' /run/user-data | while read -r _ url; do
    (
      n=0
      while [ $n -lt 20 ]; do
        if body=$(timeout 3 wget -q -O - "$url" 2>/dev/null); then
          echo "EUCA-FETCHED url=$url body=$body"
          exit 0
        fi
        n=$((n + 1))
        sleep 2
      done
      echo "EUCA-FETCH-FAIL url=$url"
    ) &
  done
  # "EUCA-POLL URL" lines: fetch each URL every second, forever, and print
  # its outcome when it changes, so a test can change a rule and watch the
  # guest's traffic follow (a connection a filter drops times out in 3 s).
  # One probe without an answer may be a slow moment of a busy host; the
  # outcome changes to FAIL only on the second in a row.
  grep '^EUCA-POLL ' /run/user-data | while read -r _ url; do
    (
      last=
      fails=0
      while :; do
        if body=$(timeout 3 wget -q -O - "$url" 2>/dev/null); then
          now="EUCA-POLL-OK url=$url body=$(printf '%s' "$body" | tr '\n' ' ')"
          fails=0
        else
          now="EUCA-POLL-FAIL url=$url"
          fails=$((fails + 1))
          [ -n "$last" ] && [ $fails -lt 2 ] && now=$last
        fi
        [ "$now" = "$last" ] || echo "$now"
        last=$now
        sleep 1
      done
    ) &
  done
  # "EUCA-DISKCMD URL" lines: disk commands from a test (see the header),
  # polled every second, so a test can write and read a volume it attaches
  # long after boot, across detach, attach and stop. Each SEQ runs once.
  : >/run/diskcmd.done
  grep '^EUCA-DISKCMD ' /run/user-data | while read -r _ url; do
    (
      while :; do
        if timeout 3 wget -q -O /run/diskcmd.body "$url" 2>/dev/null; then
          while read -r seq op serial a b; do
            case $seq in '' | *[!0-9]*) continue ;; esac
            grep -qx "$seq" /run/diskcmd.done && continue
            echo "$seq" >>/run/diskcmd.done
            diskcmd "$seq" "$op" "$serial" "$a" "$b"
          done </run/diskcmd.body
        fi
        sleep 1
      done
    ) &
  done
fi
sync
while :; do sleep 3600; done
EOF
chmod +x "$ROOT/etc/udhcpc.script" "$ROOT/sbin/init"
mkfs.ext4 -q -F -L eucaroot -d "$ROOT" "$WORK/root.img" "$ROOT_SIZE"

# Publish: outputs first, the stamp last, so an interrupted run rebuilds.
rm -f "$OUT/.stamp"
mv -f "$WORK/vmlinuz" "$WORK/initrd.img" "$WORK/root.img" "$OUT/"
rm -rf "$WORK"
echo "$STAMP" >"$OUT/.stamp"
ls -l "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/root.img"
