#!/usr/bin/env bash
# Walrus throughput, measured (not a test: nothing here asserts on time).
#
# PUT and GET of 4 KiB, 1 MiB and 256 MiB objects and a 256 MiB multipart
# upload, driven by boto3 with its default settings, against euca's Walrus
# and, in the same run with the same client, against moto's S3 server
# (python3 -m moto.server); both are compared to a plain file copy of the
# same data on the same disk (read, write, fsync: the durability Walrus
# gives every object).
#
#   bench/walrus.sh [WORKDIR]
#
# WORKDIR (default: a new directory under ${TMPDIR:-/tmp}, removed after)
# holds the test files, the copies and the cloud's buckets, so all three
# share a disk.
# REPS=n repeats each measurement n times and keeps the best (default 3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OWN_WORK=
if [ $# -ge 1 ]; then WORK=$1; else WORK=$(mktemp -d "${TMPDIR:-/tmp}/walrus-bench.XXXXXX"); OWN_WORK=1; fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The objects of the run are large: remove them, and a directory we made.
  rm -rf "$WORK/cloud" "$WORK/copy" "$WORK/got"
  if [ -n "$OWN_WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

python3 -c 'import boto3, moto.server' 2>/dev/null || { echo "needs boto3 and moto[server] for python3" >&2; exit 1; }
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }

echo "building euca..." >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/euca" .)
EPORT=$(freeport)
MPORT=$(freeport)
cat >"$WORK/eucalyptus.conf" <<CONF
EUCALYPTUS="$WORK/cloud"
CLOUD_PORT="$EPORT"
LOGLEVEL="WARN"
WALRUS_MAX_BUCKETS="0"
WALRUS_MAX_BUCKET_SIZE_MB="0"
CONF
"$WORK/euca" --roles=clc,walrus --conf "$WORK/eucalyptus.conf" >"$WORK/euca.log" 2>&1 &
PIDS+=($!)
python3 -m moto.server -p "$MPORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
waitport "$EPORT"
waitport "$MPORT"
"$WORK/euca" --conf "$WORK/eucalyptus.conf" credentials --account admin --zip "$WORK/creds.zip" >/dev/null 2>&1
mkdir -p "$WORK/creds"
(cd "$WORK/creds" && python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall()' "$WORK/creds.zip")
set -a
. "$WORK/creds/eucarc"
set +a

WALRUS_URL="http://127.0.0.1:$EPORT" MOTO_URL="http://127.0.0.1:$MPORT" WORK="$WORK" REPS="${REPS:-3}" python3 - <<'PY'
import os, time, shutil
import boto3
from botocore.config import Config
from boto3.s3.transfer import TransferConfig

work, reps = os.environ['WORK'], int(os.environ['REPS'])
MiB = 1 << 20
cfg = Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1})
clients = {
    'walrus': boto3.client('s3', endpoint_url=os.environ['WALRUS_URL'], config=cfg),
    'moto': boto3.client('s3', endpoint_url=os.environ['MOTO_URL'], config=cfg, region_name='us-east-1',
                         aws_access_key_id='testing', aws_secret_access_key='testing'),
}
for name, c in clients.items():
    if name == 'walrus':
        c.create_bucket(Bucket='bench', CreateBucketConfiguration={'LocationConstraint': os.environ['AWS_DEFAULT_REGION']})
    else:
        c.create_bucket(Bucket='bench')

def source(size):
    p = os.path.join(work, 'src-%d' % size)
    with open(p, 'wb') as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n
    return p

def best(fn, count, size):
    # MB/s of the best of reps runs of count operations.
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        fn(count)
        rates.append(count * size / (time.perf_counter() - t) / 1e6)
    return max(rates)

def file_copy(src, size):
    def run(count):
        for i in range(count):
            dst = os.path.join(work, 'copy')
            with open(src, 'rb') as fi, open(dst, 'wb') as fo:
                shutil.copyfileobj(fi, fo, MiB)
                fo.flush()
                os.fsync(fo.fileno())
    return run

def put(c, src, key):
    def run(count):
        for i in range(count):
            with open(src, 'rb') as f:
                c.put_object(Bucket='bench', Key='%s-%d' % (key, i), Body=f)
    return run

def get(c, key):
    def run(count):
        for i in range(count):
            body = c.get_object(Bucket='bench', Key='%s-%d' % (key, i))['Body']
            with open(os.path.join(work, 'got'), 'wb') as fo:
                for chunk in body.iter_chunks(MiB):
                    fo.write(chunk)
    return run

def multipart(c, src):
    tc = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4)
    def run(count):
        for i in range(count):
            c.upload_file(src, 'bench', 'mp-%d' % i, Config=tc)
    return run

rows = []
for label, size, count in [('4 KiB', 4096, 200), ('1 MiB', MiB, 50), ('256 MiB', 256 * MiB, 1)]:
    src = source(size)
    copy = best(file_copy(src, size), count, size)
    r = {'walrus': {}, 'moto': {}}
    for name, c in clients.items():
        key = 'o%d' % size
        r[name]['PUT'] = best(put(c, src, key), count, size)
        r[name]['GET'] = best(get(c, key), count, size)
    for op in ('PUT', 'GET'):
        rows.append((label, op, copy, r['walrus'][op], r['moto'][op]))
    if size == 256 * MiB:
        rows.append((label, 'multipart', copy, best(multipart(clients['walrus'], src), count, size),
                     best(multipart(clients['moto'], src), count, size)))
    os.remove(src)

print('%-8s %-9s %12s %12s %12s %12s %12s' % ('size', 'op', 'copy MB/s', 'walrus MB/s', 'moto MB/s', 'walrus/copy', 'walrus/moto'))
for label, op, copy, w, m in rows:
    print('%-8s %-9s %12.1f %12.1f %12.1f %12.2f %12.2f' % (label, op, copy, w, m, w / copy, w / m))
PY
