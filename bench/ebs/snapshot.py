"""The EBS benchmark's snapshot timer: boto3, as a user would call the cloud.

  python3 snapshot.py VOLUME_ID

Python and botocore's model are loaded and one call made before the clock
starts; then CreateSnapshot, and DescribeSnapshots every 50 ms until the
snapshot is completed (or in error). Prints one JSON line:
{"snapshot": ID, "state": S, "seconds": T}. Credentials and the endpoint
come from a sourced eucarc (EC2_URL, AWS_ACCESS_KEY_ID, ...).
"""
import json
import os
import sys
import time

import boto3
from botocore.config import Config

ec2 = boto3.client(
    "ec2",
    endpoint_url=os.environ["EC2_URL"],
    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    config=Config(retries={"max_attempts": 1, "mode": "standard"}),
)
vol = sys.argv[1]
ec2.describe_volumes(VolumeIds=[vol])

t0 = time.monotonic()
snap = ec2.create_snapshot(VolumeId=vol, Description="bench-ebs")["SnapshotId"]
while True:
    s = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    if s["State"] in ("completed", "error"):
        break
    if time.monotonic() - t0 > 1800:
        sys.exit("snapshot %s still %s after 30 min" % (snap, s["State"]))
    time.sleep(0.05)
t1 = time.monotonic()
print(json.dumps({"snapshot": snap, "state": s["State"], "seconds": t1 - t0}))
