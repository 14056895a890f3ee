#!/usr/bin/env bash
# The EC2 API benchmark's wrapper (make bench-ec2). A benchmark, not a test:
# nothing here asserts on time.
#
#   bench/ec2/run.sh [BENCH FLAGS...]     e.g. -d 5s -c 1,8 -instances 2000
#
# It builds euca and the benchmark (bench/ec2), then runs the benchmark,
# which starts euca (--roles=all --driver sim) and moto_server itself. As
# root it runs in a private pid namespace, so that euca and moto die with it
# however the run ends; euca itself runs as nobody (bench/ec2/main.go says
# why). Needs moto_server on the PATH and qemu-img, mkfs.ext4 and mkswap
# (the node makes each instance's disk files, even over the sim driver).
# A full run takes 20 to 40 minutes on 2 shared CPUs, half of it filling the store
# with 10,000 instances.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for t in moto_server qemu-img mkfs.ext4 mkswap; do
  command -v "$t" >/dev/null || { echo "bench-ec2: $t is not installed" >&2; exit 1; }
done
W=$(mktemp -d "${TMPDIR:-/tmp}/euca-bench-ec2.XXXXXX")
trap 'rm -rf "$W"' EXIT
chmod 755 "$W" # euca runs as nobody under root
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$W/euca" . && go build -o "$W/bench-ec2" ./bench/ec2)
if [ "$(id -u)" = 0 ]; then
  unshare --pid --fork --mount-proc "$W/bench-ec2" -euca "$W/euca" -work "$W/run" "$@"
else
  "$W/bench-ec2" -euca "$W/euca" -work "$W/run" "$@"
fi
