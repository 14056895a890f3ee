#!/usr/bin/env python3
"""Generate botocore_fixtures.json: requests signed by a real client.

Each fixture is a request exactly as botocore (boto3) would put it on the
wire: SigV4 and SigV2 EC2 Query calls, S3 SigV4 (header, presigned,
unsigned-trailer aws-chunked) and S3 SigV2 (hmacv1 header and presigned).
Nothing is sent: a before-send hook records the request and answers it.
The clock is frozen so that the output is the same on every run.

    python3 gen_fixtures.py > botocore_fixtures.json

The Go tests replay the file through Verify with `now` set to the frozen
time. The credentials are made up for the fixtures.
"""
import base64
import calendar
import datetime
import email.utils
import hashlib
import hmac
import io
import json
import sys
import time as _time
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

NOW = datetime.datetime(2026, 11, 25, 1, 32, 24)  # UTC
NOW_TS = calendar.timegm(NOW.timetuple())
AKID = "AKIAEUCAFIXTURE00001"
SECRET = "fixture/Secret+Key/0123456789abcdefghijkl"
REGION = "euca-1"


class _FrozenTime:
    """Stands in for the time module inside botocore.auth."""

    def time(self):
        return float(NOW_TS)

    def gmtime(self, secs=None):
        return _time.gmtime(NOW_TS if secs is None else secs)

    def __getattr__(self, name):
        return getattr(_time, name)


botocore.auth.time = _FrozenTime()
botocore.auth.get_current_datetime = lambda remove_tzinfo=True: NOW
botocore.auth.formatdate = lambda timeval=None, localtime=False, usegmt=False: (
    email.utils.formatdate(NOW_TS if timeval is None else timeval, localtime, usegmt))


class _Raw:
    def __init__(self, body):
        self._body = body

    def stream(self, **kwargs):
        yield self._body

    def read(self, *args, **kwargs):
        b, self._body = self._body, b""
        return b


fixtures = []


def host_of(url):
    u = urlsplit(url)
    host = u.hostname
    if u.port and not ((u.scheme == "http" and u.port == 80) or (u.scheme == "https" and u.port == 443)):
        host = f"{host}:{u.port}"
    return host


def body_bytes(body):
    if body is None:
        return b""
    if hasattr(body, "read"):
        return body.read()
    if isinstance(body, str):
        return body.encode()
    return bytes(body)


def record(name, style, method, url, headers, body, bucket="", expect=None, extra=None):
    hdrs = [["Host", host_of(url)]]
    for k, v in headers:
        if isinstance(v, bytes):
            v = v.decode()
        # Neither is ever signed; fixed so that the output is reproducible.
        if k.lower() == "amz-sdk-invocation-id":
            v = "00000000-0000-4000-8000-000000000000"
        elif k.lower() == "user-agent":
            v = f"Boto3/{boto3.__version__} Botocore/{botocore.__version__}"
        hdrs.append([k, v])
    fx = {
        "name": name,
        "style": style,
        "bucket": bucket,
        "method": method,
        "url": url,
        "headers": hdrs,
        "body_b64": base64.b64encode(body).decode(),
        "now": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "access_key": AKID,
        "secret": SECRET,
        "expect": expect or {},
    }
    if extra:
        fx.update(extra)
    fixtures.append(fx)


def client(service, endpoint, **cfg):
    c = boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, **cfg),
    )
    return c


def capture(c, name, style, call, bucket="", expect=None, extra=None):
    got = []

    def hook(request, **kwargs):
        got.append((request.method, request.url, list(request.headers.items()), body_bytes(request.body)))
        return AWSResponse(request.url, 200, {}, _Raw(b""))

    c.meta.events.register("before-send", hook)
    try:
        call(c)
    except Exception:  # the canned answer need not parse; the request is what we want
        pass
    c.meta.events.unregister("before-send", hook)
    if len(got) != 1:
        sys.exit(f"{name}: captured {len(got)} requests")
    method, url, headers, body = got[0]
    record(name, style, method, url, headers, body, bucket, expect, extra)


def presigned(name, url, bucket="", expect=None):
    record(name, "s3", "GET", url, [], b"", bucket, expect)


EC2 = "http://ec2.euca.test:8773/services/compute"
S3 = "http://s3.euca.test:8773"

# EC2 Query API, SigV4 (botocore's default), POST form body, Eucalyptus path.
capture(client("ec2", EC2), "ec2-sigv4-describe-instances", "query",
        lambda c: c.describe_instances(InstanceIds=["i-0123abcd"], Filters=[
            {"Name": "tag:Name", "Values": ["web server", "caf\u00e9/1~*"]}]),
        expect={"version": 4, "service": "ec2", "region": REGION})
capture(client("ec2", "https://compute.euca.test/"), "ec2-sigv4-default-port", "query",
        lambda c: c.describe_images(Owners=["self"]),
        expect={"version": 4, "service": "ec2", "region": REGION})

# EC2 Query API, SigV2 (signature_version='v2'), POST form body.
capture(client("ec2", EC2, signature_version="v2"), "ec2-sigv2-describe-instances", "query",
        lambda c: c.describe_instances(Filters=[
            {"Name": "tag:Name", "Values": ["web server", "caf\u00e9/1~*"]}]),
        expect={"version": 2})

# SigV2 Query as a GET, with botocore's own SigV2 signer.
req = AWSRequest(method="GET", url=EC2 + "/", params={
    "Action": "DescribeRegions", "Version": "2016-11-15", "RegionName.1": "euca 1+x"})
botocore.auth.SigV2Auth(Credentials(AKID, SECRET)).add_auth(req)
p = req.prepare()
record("ec2-sigv2-get", "query", p.method, p.url, list(p.headers.items()), b"", expect={"version": 2})

# S3 SigV4, header auth: path and virtual-host style.
path_s3 = client("s3", S3, signature_version="s3v4", s3={"addressing_style": "path"})
virt_s3 = client("s3", S3, signature_version="s3v4", s3={"addressing_style": "virtual"})
odd_key = "dir/my file+\u00fc(1)~!$'.txt"
capture(path_s3, "s3-sigv4-put-path", "s3",
        lambda c: c.put_object(Bucket="photos", Key=odd_key, Body=b"hello, walrus\n",
                               ContentType="text/plain", Metadata={"owner": "me too"}),
        expect={"version": 4, "service": "s3", "region": REGION})
capture(virt_s3, "s3-sigv4-get-virtual", "s3",
        lambda c: c.get_object(Bucket="photos", Key="a/b c.txt", Range="bytes=0-9"),
        bucket="photos", expect={"version": 4, "service": "s3", "region": REGION})
capture(virt_s3, "s3-sigv4-list-virtual", "s3",
        lambda c: c.list_objects_v2(Bucket="photos", Prefix="dir/my file", Delimiter="/", MaxKeys=10),
        bucket="photos", expect={"version": 4, "service": "s3", "region": REGION})
capture(path_s3, "s3-sigv4-upload-part", "s3",
        lambda c: c.upload_part(Bucket="photos", Key=odd_key, PartNumber=2, UploadId="up/1+2=3", Body=b"part"),
        expect={"version": 4, "service": "s3", "region": REGION})

# S3 SigV4 over TLS with a streamed body: aws-chunked, unsigned, CRC32 trailer.
tls_s3 = client("s3", "https://s3.euca.test", signature_version="s3v4", s3={"addressing_style": "path"})
payload = bytes(range(256)) * 12  # 3 KB: one data chunk, then the trailer
capture(tls_s3, "s3-sigv4-unsigned-trailer", "s3",
        lambda c: c.put_object(Bucket="photos", Key="big.bin", Body=io.BytesIO(payload)),
        expect={"version": 4, "service": "s3", "region": REGION, "payload_hash": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
        extra={"decoded_b64": base64.b64encode(payload).decode()})

# S3 SigV4 presigned URLs.
presigned("s3-presign-v4-virtual", virt_s3.generate_presigned_url(
    "get_object", Params={"Bucket": "photos", "Key": odd_key}, ExpiresIn=3600),
    bucket="photos", expect={"version": 4, "presigned": True, "service": "s3", "region": REGION})
presigned("s3-presign-v4-path-override", path_s3.generate_presigned_url(
    "get_object", Params={"Bucket": "photos", "Key": "a.txt", "ResponseContentType": "text/x-a b"}, ExpiresIn=604800),
    expect={"version": 4, "presigned": True, "service": "s3", "region": REGION})

# S3 SigV2 ('s3' = hmacv1), header and presigned.
v2_virt = client("s3", S3, signature_version="s3", s3={"addressing_style": "virtual"})
v2_path = client("s3", S3, signature_version="s3", s3={"addressing_style": "path"})
capture(v2_virt, "s3-hmacv1-put-virtual", "s3",
        lambda c: c.put_object(Bucket="photos", Key=odd_key, Body=b"hello", ContentType="text/plain",
                               Metadata={"owner": "me too"}, ACL="public-read"),
        bucket="photos", expect={"version": 2})
capture(v2_path, "s3-hmacv1-get-acl", "s3",
        lambda c: c.get_object_acl(Bucket="photos", Key="a/b c.txt"),
        expect={"version": 2})
capture(v2_virt, "s3-hmacv1-upload-part", "s3",
        lambda c: c.upload_part(Bucket="photos", Key="big.bin", PartNumber=3, UploadId="up/1+2=3", Body=b"part"),
        bucket="photos", expect={"version": 2})
capture(v2_path, "s3-hmacv1-list", "s3",
        lambda c: c.list_objects(Bucket="photos", Prefix="dir/", Delimiter="/"),
        expect={"version": 2})
presigned("s3-presign-hmacv1-virtual", v2_virt.generate_presigned_url(
    "get_object", Params={"Bucket": "photos", "Key": odd_key}, ExpiresIn=600),
    bucket="photos", expect={"version": 2, "presigned": True})
presigned("s3-presign-hmacv1-override", v2_path.generate_presigned_url(
    "get_object", Params={"Bucket": "photos", "Key": "a.txt", "ResponseContentDisposition": "attachment; filename=\"a b.txt\""},
    ExpiresIn=600),
    expect={"version": 2, "presigned": True})


# euca2ools dates its S3 requests "Wed, 25 Nov 2026 01:32:24 -0000": the
# same hmacv1 canonicalisation with that Date.
class Euca2oolsDate(botocore.auth.HmacV1Auth):
    def _get_date(self):
        return email.utils.formatdate(NOW_TS, usegmt=False).replace("+0000", "-0000")


req = AWSRequest(method="GET", url=S3 + "/photos/a.txt?versionId=v1&foo=bar", headers={"x-amz-meta-a": " spaced  "})
Euca2oolsDate(Credentials(AKID, SECRET)).add_auth(req)
p = req.prepare()
record("s3-hmacv1-euca2ools-date", "s3", p.method, p.url, list(p.headers.items()), b"", expect={"version": 2})



# euca2ools 3.x signs S3 with requestbuilder's HmacV1Auth (euca2ools and
# requestbuilder are Python 2 and not installable here, so its steps are
# redone): the Date is email.utils.formatdate() ("... -0000"), and the
# resource is the request path less the endpoint's path, as sent, so a
# bucket-level request signs "/BUCKET" where botocore signs "/BUCKET/".
# Sub-resources are the list of the 2013 S3 documentation.
class Euca2oolsHmacV1:
    HASHED_PARAMS = {"acl", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
                     "requestPayment", "torrent", "uploadId", "uploads", "versionId", "versioning",
                     "versions", "website"}

    def __init__(self, endpoint):
        self.endpoint_path = urlsplit(endpoint).path

    def sign(self, method, url, params, headers):
        headers = dict(headers)
        headers["Date"] = email.utils.formatdate(NOW_TS)
        headers["Host"] = urlsplit(url).netloc
        resource = urlsplit(url).path[len(self.endpoint_path):]
        if self.endpoint_path.endswith("/"):
            resource = "/" + resource
        resource = resource or "/"
        subresources = []
        for key, val in sorted(params.items()):
            if key in self.HASHED_PARAMS:
                subresources.append(key if val is None else key + "=" + val)
        if subresources:
            resource += "?" + "&".join(subresources)
        amz = sorted((k.lower(), " ".join(v.split())) for k, v in headers.items() if k.lower().startswith("x-amz-"))
        c_headers = "".join(f"{k}:{v}\n" for k, v in amz)
        to_sign = "\n".join((method.upper(), headers.get("Content-MD5", ""), headers.get("Content-Type", ""),
                              headers["Date"], c_headers + resource))
        sig = base64.b64encode(hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        headers["Authorization"] = f"AWS {AKID}:{sig}"
        return headers


def euca2ools_s3(name, method, path, params=None, body=b""):
    """One euca2ools request on the endpoint S3 (no path)."""
    params = params or {}
    query = "&".join(k if v is None else f"{k}={v}" for k, v in params.items())
    url = S3 + path + ("?" + query if query else "")
    headers = {"Accept-Encoding": "gzip, deflate", "Accept": "*/*"}
    if method not in ("GET", "HEAD"):
        headers["Content-Length"] = str(len(body))
    headers = Euca2oolsHmacV1(S3).sign(method, url, params, headers)
    hdrs = [(k, v) for k, v in headers.items() if k != "Host"]
    record(name, "s3", method, url, hdrs, body, expect={"version": 2})


# euca-upload-bundle's first request, then the bucket it creates and
# euca-delete-bundle --clear's removal of it.
euca2ools_s3("s3-euca2ools-check-bucket", "GET", "/photos", {"max-keys": "0"})
euca2ools_s3("s3-euca2ools-create-bucket", "PUT", "/photos")
euca2ools_s3("s3-euca2ools-delete-bucket", "DELETE", "/photos")
euca2ools_s3("s3-euca2ools-bucket-acl", "GET", "/photos", {"acl": None})

json.dump({"generator": "gen_fixtures.py", "botocore": botocore.__version__, "fixtures": fixtures},
          sys.stdout, indent=1, ensure_ascii=True)
sys.stdout.write("\n")
