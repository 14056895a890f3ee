package e2e

import (
	"strings"
	"testing"
)

// TestAuthHardening drives a clc,walrus cloud with requests that real
// clients sign and someone then alters or misdirects: a boto3 presigned
// URL with x-amz-* headers added on the way, botocore SigV4 signatures made
// for one service and sent to another, and the bucket-level requests of
// euca2ools' S3 signer. Each must be refused in its API's own error format,
// and change nothing; the same requests signed as meant still work.
func TestAuthHardening(t *testing.T) {
	Need(t, "python3")
	c := walrusCloud(t)
	out, err := c.Python(t, c.Env, authHardeningScript)
	if err != nil || strings.TrimSpace(out) != "OK" {
		t.Fatalf("auth hardening: %v\n%s\n--- euca log:\n%s", err, out, tail(c.Log(), 30))
	}
}

const authHardeningScript = `
import base64, email.utils, hashlib, hmac, http.client, os, sys, urllib.parse
import xml.etree.ElementTree as ET
import boto3, botocore.session
from botocore.config import Config
from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest

s3_url = os.environ["S3_URL"]                       # .../services/Walrus
root = s3_url[:-len("/services/Walrus")]
region = os.environ["AWS_DEFAULT_REGION"]
creds = botocore.session.get_session().get_credentials()
s3 = boto3.client("s3", endpoint_url=root, config=Config(s3={"addressing_style": "path"}))

def send(method, url, headers=None, data=None):
    """Sends exactly these headers (urllib would add a Content-Type)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.netloc, timeout=60)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=data, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()

def strip(tag):
    return tag.split("}", 1)[-1]

def fields(body):
    doc = ET.fromstring(body)
    return strip(doc.tag), {strip(e.tag): (e.text or "") for e in doc.iter()}

def expect(what, got, status, root_tag, code, message=None):
    st, body = got
    tag, f = fields(body)
    assert (st, tag, f.get("Code")) == (status, root_tag, code), (what, st, body)
    if message is not None:
        assert f.get("Message") == message, (what, f.get("Message"))
    return f

s3.create_bucket(Bucket="hb-priv")
s3.create_bucket(Bucket="hb-up")
s3.put_object(Bucket="hb-priv", Key="secret", Body=b"secret-data")

# 1a. A presigned PUT, with headers that would make it a copy of a private
# object, published, or given to another account. SigV4 leaves them out of
# the signature: refused as unsigned. SigV2 signs every x-amz-* header: the
# signature no longer matches. (botocore presigns SigV2 in us-east-1.)
def absent(key):
    try:
        s3.head_object(Bucket="hb-up", Key=key); sys.exit("object created by a refused request")
    except s3.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "404", e.response

for sig in ("s3v4", "s3"):
    presigner = boto3.client("s3", endpoint_url=root, config=Config(s3={"addressing_style": "path"}, signature_version=sig))
    key = "k-" + sig
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": "hb-up", "Key": key}, ExpiresIn=300)
    assert ("X-Amz-Signature=" in url) == (sig == "s3v4"), url
    for extra in ({"x-amz-copy-source": "/hb-priv/secret", "x-amz-acl": "public-read"},
                  {"x-amz-grant-full-control": "id=000000000000"}):
        got = send("PUT", url, extra, b"")
        if sig == "s3v4":
            f = expect(extra, got, 403, "Error", "AccessDenied", "There were headers present in the request which were not signed")
            assert f.get("HeadersNotSigned") == ", ".join(sorted(extra)), f
        else:
            expect(extra, got, 403, "Error", "SignatureDoesNotMatch")
        absent(key)
    assert send("GET", root + "/hb-priv/secret")[0] == 403
    # The URL as meant still works.
    assert send("PUT", url, {}, b"own")[0] == 200, sig
    assert s3.get_object(Bucket="hb-up", Key=key)["Body"].read() == b"own"

# 1b. A signature for one service, sent to another.
def signed(service, url, method="POST", data=None, headers=None, signer=SigV4Auth):
    r = AWSRequest(method=method, url=url, data=data, headers=headers or {})
    signer(creds, service, region).add_auth(r)
    p = r.prepare()
    body = p.body.encode() if isinstance(p.body, str) else p.body
    return send(method, p.url, dict(p.headers), body)

form = {"Content-Type": "application/x-www-form-urlencoded"}
ec2 = os.environ["EC2_URL"]
describe = "Action=DescribeRegions&Version=2016-11-15"
for svc in ("s3", "sts", "iam"):
    expect("ec2 <- " + svc, signed(svc, ec2, data=describe, headers=form), 403, "Response", "AuthFailure",
           "Credential should be scoped to correct service: 'ec2'.")
assert signed("ec2", ec2, data=describe, headers=form)[0] == 200

sts = os.environ["TOKEN_URL"]
who = "Action=GetCallerIdentity&Version=2011-06-15"
for svc in ("ec2", "s3", "iam"):
    expect("sts <- " + svc, signed(svc, sts, data=who, headers=form), 403, "ErrorResponse", "SignatureDoesNotMatch",
           "Credential should be scoped to correct service: 'sts'.")
assert signed("sts", sts, data=who, headers=form)[0] == 200

iam = os.environ["AWS_IAM_URL"]
user = "Action=GetUser&Version=2010-05-08"
for svc in ("ec2", "sts"):
    expect("iam <- " + svc, signed(svc, iam, data=user, headers=form), 403, "ErrorResponse", "SignatureDoesNotMatch",
           "Credential should be scoped to correct service: 'iam'.")
assert signed("iam", iam, data=user, headers=form)[0] == 200

# (On the bare endpoint the scope routes the request: S3 is S3_URL.)
for svc in ("ec2", "sts", "iam"):
    expect("s3 <- " + svc, signed(svc, s3_url + "/hb-up/k2", method="PUT", data=b"x", signer=S3SigV4Auth), 400, "Error",
           "AuthorizationHeaderMalformed",
           'The authorization header is malformed; incorrect service "%s". This endpoint belongs to "s3".' % svc)
absent("k2")
assert signed("s3", s3_url + "/hb-up/k2", method="PUT", data=b"x", signer=S3SigV4Auth)[0] == 200

# 5. An empty Content-MD5, an empty or unreadable date.
expect("empty md5", signed("s3", root + "/hb-up/k3", method="PUT", data=b"x", headers={"Content-MD5": ""}, signer=S3SigV4Auth),
       400, "Error", "InvalidDigest")
r = AWSRequest(method="GET", url=root + "/hb-up/k2")
S3SigV4Auth(creds, "s3", region).add_auth(r)
p = r.prepare()
h = dict(p.headers); h["X-Amz-Date"] = "2026-11-25T01:32:24Z"
expect("bad x-amz-date", send("GET", p.url, h), 403, "Error", "AccessDenied",
       "AWS authentication requires a valid Date or x-amz-date header")

# 2a. euca2ools 3.x (requestbuilder's HmacV1Auth): the resource is the
# path less the endpoint's /services/Walrus, so "/BUCKET" for the bucket.
def euca2ools(method, path, query="", secret=creds.secret_key):
    date = email.utils.formatdate()
    sts = "\n".join((method, "", "", date, path))
    sig = base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    return send(method, s3_url + path + query, {"Date": date, "Authorization": "AWS %s:%s" % (creds.access_key, sig)})

assert euca2ools("PUT", "/hb-bundles")[0] == 200
assert euca2ools("GET", "/hb-bundles", "?max-keys=0")[0] == 200
expect("euca2ools wrong secret", euca2ools("DELETE", "/hb-bundles", secret="wrong"), 403, "Error", "SignatureDoesNotMatch")
assert euca2ools("DELETE", "/hb-bundles")[0] == 204
print("OK")
`
