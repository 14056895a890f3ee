"""The launch benchmark's EC2 client: boto3, as a user would call the cloud.

One long-lived process, so that no measurement pays for starting Python or
loading botocore's model: the benchmark writes one JSON request a line on
stdin and reads one JSON answer a line on stdout. The credentials and the
endpoint come from the environment of a sourced eucarc (EC2_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).

Requests:
  {"op": "run", "image": ID, "type": T, "count": N, "calls": K}
      K RunInstances calls at once (threads), each for N instances;
      answers {"calls": [{"ids": [...], "sent": unix, "done": unix}, ...]}
  {"op": "terminate", "ids": [...]}        answers {}
  {"op": "states", "ids": [...]}           answers {"states": {id: name}}
  {"op": "free", "type": T}                answers {"free": n, "max": n}
Any failure answers {"error": "..."}.
"""
import json
import os
import sys
import threading
import time

import boto3
from botocore.config import Config

MAX_CALLS = 8


def client():
    # No retries: a refusal (InsufficientInstanceCapacity, say) must show,
    # not be hidden behind a back-off that the timing would then include.
    return boto3.client(
        "ec2",
        endpoint_url=os.environ["EC2_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


clients = [client() for _ in range(MAX_CALLS)]
# Warm every client: the model is loaded and a connection is open.
for c in clients:
    c.describe_instances()


def run(req):
    calls = int(req.get("calls", 1))
    count = int(req.get("count", 1))
    if calls > MAX_CALLS:
        raise ValueError("at most %d calls at once" % MAX_CALLS)
    out = [None] * calls
    errs = []

    def one(i):
        try:
            t = time.time()
            r = clients[i].run_instances(
                ImageId=req["image"],
                InstanceType=req.get("type", "m1.small"),
                MinCount=count,
                MaxCount=count,
            )
            out[i] = {"ids": [x["InstanceId"] for x in r["Instances"]], "sent": t, "done": time.time()}
        except Exception as e:  # reported, not raised in a thread
            errs.append(str(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errs:
        # What did start is reported too, so that the caller can end it.
        return {"error": "; ".join(errs), "calls": [c for c in out if c]}
    return {"calls": out}


def states(req):
    r = clients[0].describe_instances(InstanceIds=req["ids"])
    return {
        "states": {
            i["InstanceId"]: i["State"]["Name"]
            for res in r["Reservations"]
            for i in res["Instances"]
        }
    }


def free(req):
    want = "|- " + req.get("type", "m1.small")
    r = clients[0].describe_availability_zones(ZoneNames=["verbose"])
    for z in r["AvailabilityZones"]:
        if z["ZoneName"] == want:
            f, m = z["State"].split()[0::2][:2]
            return {"free": int(f), "max": int(m)}
    raise ValueError("no %r line in describe-availability-zones verbose" % want)


ops = {
    "run": run,
    "terminate": lambda req: (clients[0].terminate_instances(InstanceIds=req["ids"]), {})[1],
    "states": states,
    "free": free,
}

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    try:
        req = json.loads(line)
        resp = ops[req["op"]](req)
    except Exception as e:
        resp = {"error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(resp), flush=True)
