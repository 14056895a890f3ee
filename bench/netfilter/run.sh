#!/usr/bin/env bash
# The security-group benchmark's wrapper (make bench-netfilter). A
# benchmark, not a test: nothing here asserts on time.
#
#   bench/netfilter/run.sh [FLAGS...]     e.g. -groups 250 -runs 5
#
# Root: the benchmark runs in a network namespace of its own (unshare -n),
# so the host's nftables rules are never touched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench-netfilter: needs root (a network namespace of its own)" >&2; exit 1; }
command -v unshare >/dev/null || { echo "bench-netfilter: unshare (util-linux) is not installed" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/euca-bench-netfilter.XXXXXX")
trap 'rm -rf "$W"' EXIT
(cd "$ROOT" && go build -o "$W/bench-netfilter" ./bench/netfilter)
unshare -n "$W/bench-netfilter" "$@"
