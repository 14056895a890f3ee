#!/usr/bin/env bash
# The scheduling benchmark's wrapper (make bench-sched). A benchmark, not a
# test: nothing here asserts on time.
#
#   bench/sched/run.sh [FLAGS...]     e.g. -hosts 200 -instances 2000
#
# Everything runs in one process (internal/simcloud): a cloud controller,
# its cluster controller and -hosts node controllers over the sim driver,
# each on its own mutual-TLS endpoint on 127.0.0.1. Needs qemu-img and
# mkfs.ext4 (each node makes each instance's disk files, as a real launch
# does) and a hard RLIMIT_NOFILE of about 16 per host.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for t in qemu-img mkfs.ext4; do
  command -v "$t" >/dev/null || { echo "bench-sched: $t is not installed" >&2; exit 1; }
done
W=$(mktemp -d "${TMPDIR:-/tmp}/euca-bench-sched.XXXXXX")
trap 'rm -rf "$W"' EXIT
(cd "$ROOT" && go build -o "$W/bench-sched" ./bench/sched)
"$W/bench-sched" -work "$W/run" "$@"
