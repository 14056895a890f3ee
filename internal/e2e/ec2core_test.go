package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEC2Core drives key pairs, security groups, VPC views, tags and the
// catalog with the AWS CLI, the way a user of Eucalyptus's ec2-api-tools
// would today.
func TestEC2Core(t *testing.T) {
	Need(t, "aws", "ssh-keygen", "openssl")
	c := Start(t, "clc")
	env := c.Env
	aws := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := c.AWS(t, env, args...)
		if err != nil {
			t.Fatalf("%v\n--- euca log:\n%s", err, tail(c.Log(), 20))
		}
		return out
	}
	text := func(t *testing.T, args ...string) string {
		t.Helper()
		return strings.TrimSpace(aws(t, append(args, "--output", "text")...))
	}
	fails := func(t *testing.T, code string, args ...string) {
		t.Helper()
		_, err := c.AWS(t, env, args...)
		if err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("%v: got %v, want %s", args, err, code)
		}
	}

	t.Run("catalog", func(t *testing.T) {
		region := Getenv(env, "AWS_DEFAULT_REGION")
		if got := text(t, "ec2", "describe-regions", "--query", "Regions[0].RegionName"); got != region {
			t.Errorf("region %q, want %q", got, region)
		}
		// The default region is one AWS's own tools know (Terraform's provider
		// refuses any other without skip_region_validation).
		if out, err := c.Python(t, env, `
import os, botocore.session
r = os.environ['AWS_DEFAULT_REGION']
print(r in botocore.session.get_session().get_available_regions('ec2'))
`); err != nil || strings.TrimSpace(out) != "True" {
			t.Errorf("region %q is not one botocore knows for ec2: %v %s", region, err, out)
		}
		zone := text(t, "ec2", "describe-availability-zones", "--query", "AvailabilityZones[0].ZoneName")
		if !strings.HasPrefix(zone, region) || len(zone) != len(region)+1 {
			t.Errorf("zone %q is not <region><letter>", zone)
		}
		verbose := aws(t, "ec2", "describe-availability-zones", "--zone-names", "verbose")
		for _, want := range []string{"|- vm types", "free / max", "|- m1.small", "|- c1.xlarge"} {
			if !strings.Contains(verbose, want) {
				t.Errorf("verbose zones lack %q:\n%s", want, verbose)
			}
		}
		if got := text(t, "ec2", "describe-instance-types", "--instance-types", "c1.xlarge", "--query", "InstanceTypes[0].[VCpuInfo.DefaultVCpus,MemoryInfo.SizeInMiB]"); got != "4\t2048" {
			t.Errorf("c1.xlarge = %q, want 4 cores 2048 MiB", got)
		}
		fails(t, "InvalidInstanceType", "ec2", "describe-instance-types", "--instance-types", "m9.huge")
		if got := text(t, "ec2", "describe-account-attributes", "--attribute-names", "supported-platforms", "--query", "AccountAttributes[0].AttributeValues[0].AttributeValue"); got != "VPC" {
			t.Errorf("supported-platforms %q", got)
		}
	})

	t.Run("default vpc", func(t *testing.T) {
		vpc := text(t, "ec2", "describe-vpcs", "--filters", "Name=isDefault,Values=true", "--query", "Vpcs[0].VpcId")
		if !strings.HasPrefix(vpc, "vpc-") {
			t.Fatalf("no default vpc: %q", vpc)
		}
		if got := text(t, "ec2", "describe-account-attributes", "--attribute-names", "default-vpc", "--query", "AccountAttributes[0].AttributeValues[0].AttributeValue"); got != vpc {
			t.Errorf("default-vpc attribute %q, want %q", got, vpc)
		}
		subnets := text(t, "ec2", "describe-subnets", "--filters", "Name=vpc-id,Values="+vpc, "Name=default-for-az,Values=true", "--query", "Subnets[].SubnetId")
		if !strings.HasPrefix(subnets, "subnet-") {
			t.Errorf("no default subnet in %s: %q", vpc, subnets)
		}
		fails(t, "InvalidVpcID.NotFound", "ec2", "describe-vpcs", "--vpc-ids", "vpc-0123456789abcdef0")
		// What the default VPC comes with, as the AWS CLI reads it.
		if got := text(t, "ec2", "describe-vpc-attribute", "--vpc-id", vpc, "--attribute", "enableDnsHostnames", "--query", "EnableDnsHostnames.Value"); got != "True" {
			t.Errorf("enableDnsHostnames %q", got)
		}
		if got := text(t, "ec2", "describe-route-tables", "--filters", "Name=vpc-id,Values="+vpc, "--query", "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].GatewayId"); !strings.HasPrefix(got, "igw-") {
			t.Errorf("default route %q", got)
		}
		if got := text(t, "ec2", "describe-internet-gateways", "--filters", "Name=attachment.vpc-id,Values="+vpc, "--query", "InternetGateways[0].Attachments[0].VpcId"); got != vpc {
			t.Errorf("internet gateway attached to %q", got)
		}
		if got := text(t, "ec2", "describe-dhcp-options", "--query", "DhcpOptions[0].DhcpOptionsId"); !strings.HasPrefix(got, "dopt-") {
			t.Errorf("dhcp options %q", got)
		}
		if got := text(t, "ec2", "describe-network-acls", "--filters", "Name=vpc-id,Values="+vpc, "--query", "NetworkAcls[0].[VpcId,IsDefault]"); got != vpc+"\tTrue" {
			t.Errorf("network acl %q", got)
		}
		if got := text(t, "ec2", "describe-instance-type-offerings", "--query", "InstanceTypeOfferings[?InstanceType=='m1.small'].Location"); got != Getenv(env, "AWS_DEFAULT_REGION") {
			t.Errorf("m1.small offered in %q", got)
		}
	})

	t.Run("key pairs", func(t *testing.T) {
		dir := t.TempDir()
		pem := text(t, "ec2", "create-key-pair", "--key-name", "k1", "--query", "KeyMaterial")
		if !strings.Contains(pem, "BEGIN RSA PRIVATE KEY") {
			t.Fatalf("key material %q", pem)
		}
		os.WriteFile(filepath.Join(dir, "k1.pem"), []byte(pem+"\n"), 0o600)
		// AWS's fingerprint of a key it created: SHA-1 of the PKCS#8 DER.
		want := shell(t, "openssl pkcs8 -in "+filepath.Join(dir, "k1.pem")+" -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c | awk '{print $NF}'")
		if got := text(t, "ec2", "describe-key-pairs", "--key-names", "k1", "--query", "KeyPairs[0].KeyFingerprint"); got != want {
			t.Errorf("created key fingerprint %q, want %q", got, want)
		}
		fails(t, "InvalidKeyPair.Duplicate", "ec2", "create-key-pair", "--key-name", "k1")
		shell(t, "ssh-keygen -q -t rsa -b 2048 -N '' -f "+filepath.Join(dir, "id"))
		want = shell(t, "ssh-keygen -e -m PKCS8 -f "+filepath.Join(dir, "id.pub")+" | openssl pkey -pubin -outform DER | openssl md5 -c | awk '{print $NF}'")
		if got := text(t, "ec2", "import-key-pair", "--key-name", "k2", "--public-key-material", "fileb://"+filepath.Join(dir, "id.pub"), "--query", "KeyFingerprint"); got != want {
			t.Errorf("imported key fingerprint %q, want %q", got, want)
		}
		fails(t, "InvalidKeyPair.NotFound", "ec2", "describe-key-pairs", "--key-names", "nope")
		aws(t, "ec2", "delete-key-pair", "--key-name", "k2")
		if got := text(t, "ec2", "describe-key-pairs", "--query", "KeyPairs[].KeyName"); got != "k1" {
			t.Errorf("after delete: %q", got)
		}
	})

	t.Run("security groups", func(t *testing.T) {
		gid := text(t, "ec2", "create-security-group", "--group-name", "web", "--description", "web servers", "--query", "GroupId")
		aws(t, "ec2", "authorize-security-group-ingress", "--group-name", "web", "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
		aws(t, "ec2", "authorize-security-group-ingress", "--group-id", gid, "--ip-permissions", "IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=10.0.0.0/8,Description=admins}]")
		fails(t, "InvalidPermission.Duplicate", "ec2", "authorize-security-group-ingress", "--group-name", "web", "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
		fails(t, "InvalidGroup.Duplicate", "ec2", "create-security-group", "--group-name", "web", "--description", "again")
		fails(t, "MissingParameter", "ec2", "create-security-group", "--group-name", "x", "--description", "")
		rules := aws(t, "ec2", "describe-security-groups", "--group-ids", gid)
		for _, want := range []string{"0.0.0.0/0", "10.0.0.0/8", "admins", `"FromPort": 22`} {
			if !strings.Contains(rules, want) {
				t.Errorf("group lacks %q:\n%s", want, rules)
			}
		}
		// Terraform removes the default egress rule right after create.
		aws(t, "ec2", "revoke-security-group-egress", "--group-id", gid, "--ip-permissions", "IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]")
		if got := text(t, "ec2", "describe-security-groups", "--group-ids", gid, "--query", "length(SecurityGroups[0].IpPermissionsEgress)"); got != "0" {
			t.Errorf("egress rules after revoke: %s", got)
		}
		// A group another group's rule names cannot go.
		other := text(t, "ec2", "create-security-group", "--group-name", "db", "--description", "db", "--query", "GroupId")
		aws(t, "ec2", "authorize-security-group-ingress", "--group-id", other, "--ip-permissions", "IpProtocol=tcp,FromPort=5432,ToPort=5432,UserIdGroupPairs=[{GroupId="+gid+"}]")
		fails(t, "DependencyViolation", "ec2", "delete-security-group", "--group-id", gid)
		aws(t, "ec2", "delete-security-group", "--group-id", other)
		aws(t, "ec2", "delete-security-group", "--group-id", gid)
		fails(t, "InvalidGroup.NotFound", "ec2", "describe-security-groups", "--group-ids", gid)
		if got := text(t, "ec2", "describe-security-groups", "--group-names", "default", "--query", "SecurityGroups[0].GroupName"); got != "default" {
			t.Errorf("default group: %q", got)
		}
	})

	t.Run("tags", func(t *testing.T) {
		gid := text(t, "ec2", "create-security-group", "--group-name", "tagged", "--description", "t",
			"--tag-specifications", "ResourceType=security-group,Tags=[{Key=Name,Value=tagged}]", "--query", "GroupId")
		aws(t, "ec2", "create-tags", "--resources", gid, "--tags", "Key=team,Value=blue")
		if got := text(t, "ec2", "describe-security-groups", "--filters", "Name=tag:team,Values=bl*", "--query", "SecurityGroups[].GroupName"); got != "tagged" {
			t.Errorf("tag filter with wildcard: %q", got)
		}
		if got := text(t, "ec2", "describe-tags", "--filters", "Name=resource-id,Values="+gid, "Name=key,Values=team", "--query", "Tags[0].[ResourceType,Value]"); got != "security-group\tblue" {
			t.Errorf("describe-tags: %q", got)
		}
		aws(t, "ec2", "delete-tags", "--resources", gid, "--tags", "Key=team,Value=red") // a different value stays
		if got := text(t, "ec2", "describe-tags", "--filters", "Name=resource-id,Values="+gid, "--query", "length(Tags)"); got != "2" {
			t.Errorf("tags after a non-matching delete: %s", got)
		}
		aws(t, "ec2", "delete-tags", "--resources", gid, "--tags", "Key=team")
		if got := text(t, "ec2", "describe-tags", "--filters", "Name=resource-id,Values="+gid, "--query", "Tags[].Key"); got != "Name" {
			t.Errorf("tags after delete: %q", got)
		}
		fails(t, "InvalidInstanceID.NotFound", "ec2", "create-tags", "--resources", "i-0123456789abcdef0", "--tags", "Key=a,Value=b")
	})

	t.Run("empty describes", func(t *testing.T) {
		if got := text(t, "ec2", "describe-instances", "--query", "length(Reservations)"); got != "0" {
			t.Errorf("instances: %s", got)
		}
		if got := text(t, "ec2", "describe-images", "--owners", "self", "--query", "length(Images)"); got != "0" {
			t.Errorf("images: %s", got)
		}
		fails(t, "InvalidInstanceID.NotFound", "ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0")
	})
}

// TestTerraformSequence replays with boto3 the calls Terraform's AWS
// provider v5 makes for aws_key_pair and aws_security_group
// (shared/CLIENTS.md), reads included, with no skip flags.
func TestTerraformSequence(t *testing.T) {
	Need(t, "python3", "ssh-keygen")
	c := Start(t, "clc")
	dir := t.TempDir()
	shell(t, "ssh-keygen -q -t ed25519 -N '' -f "+filepath.Join(dir, "tf"))
	out, err := c.Python(t, append(c.Env, "TF_PUB="+filepath.Join(dir, "tf.pub")), `
import os, boto3
from botocore.exceptions import ClientError
ep = os.environ['EC2_URL']
root = ep.rsplit('/services/', 1)[0]
sts = boto3.client('sts', endpoint_url=root)
acct = sts.get_caller_identity()['Account']
ec2 = boto3.client('ec2', endpoint_url=ep)

# aws_key_pair
pub = open(os.environ['TF_PUB'], 'rb').read()
ec2.import_key_pair(KeyName='tf-key', PublicKeyMaterial=pub)
kp = ec2.describe_key_pairs(KeyNames=['tf-key'])['KeyPairs'][0]
assert kp['KeyType'] == 'ed25519', kp

# aws_security_group
g = ec2.create_security_group(GroupName='tf-sg', Description='managed by terraform')['GroupId']
ec2.describe_security_groups(GroupIds=[g])
ec2.revoke_security_group_egress(GroupId=g, IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])
try:
    ec2.revoke_security_group_egress(GroupId=g, IpPermissions=[{'IpProtocol': '-1', 'Ipv6Ranges': [{'CidrIpv6': '::/0'}]}])
except ClientError as e:
    assert e.response['Error']['Code'] == 'InvalidPermission.NotFound', e
ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 443, 'ToPort': 443,
    'IpRanges': [{'CidrIp': '0.0.0.0/0', 'Description': 'https'}]}])
for _ in range(4):
    sg = ec2.describe_security_groups(GroupIds=[g])['SecurityGroups'][0]
    assert sg['OwnerId'] == acct, sg
    assert sg['IpPermissionsEgress'] == [], sg
    assert sg['IpPermissions'][0]['IpRanges'][0]['Description'] == 'https', sg

# destroy
assert ec2.describe_network_interfaces(Filters=[{'Name': 'group-id', 'Values': [g]}])['NetworkInterfaces'] == []
ec2.delete_security_group(GroupId=g)
try:
    ec2.describe_security_groups(GroupIds=[g])
    raise SystemExit('deleted group still described')
except ClientError as e:
    assert e.response['Error']['Code'] == 'InvalidGroup.NotFound', e
ec2.delete_key_pair(KeyName='tf-key')
assert ec2.describe_key_pairs()['KeyPairs'] == []
print('ok')
`)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("terraform sequence: %v %s\n%s", err, out, tail(c.Log(), 20))
	}
}

func shell(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("bash", "-o", "pipefail", "-c", script).Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

// TestTerraformDefaultVPCSequence replays with boto3 the calls Terraform's
// AWS provider 5.x makes to read the default VPC (data "aws_vpc" with
// default = true, data "aws_subnets", data "aws_route_table",
// data "aws_internet_gateway", data "aws_vpc_dhcp_options", the import and
// read of aws_default_route_table and aws_default_network_acl,
// aws_default_vpc's enable_dns_hostnames, and
// data "aws_ec2_instance_type_offerings"), with the filters it sends, and
// checks that the ids agree across calls.
func TestTerraformDefaultVPCSequence(t *testing.T) {
	Need(t, "python3")
	c := Start(t, "clc")
	out, err := c.Python(t, c.Env, `
import os, boto3
from botocore.exceptions import ClientError
ec2 = boto3.client('ec2', endpoint_url=os.environ['EC2_URL'])
def one(items, what):
    assert len(items) == 1, (what, items)
    return items[0]
def fails(code, f, **kw):
    try:
        f(**kw)
    except ClientError as e:
        assert e.response['Error']['Code'] == code, (code, e.response['Error'])
        return
    raise SystemExit('%s did not fail with %s' % (f.__name__, code))

# data "aws_vpc" { default = true }
vpc = one(ec2.describe_vpcs(Filters=[{'Name': 'isDefault', 'Values': ['true']}])['Vpcs'], 'default vpc')
vid = vpc['VpcId']
attrs = {}
for a, key in (('enableDnsHostnames', 'EnableDnsHostnames'), ('enableDnsSupport', 'EnableDnsSupport'),
               ('enableNetworkAddressUsageMetrics', 'EnableNetworkAddressUsageMetrics')):
    r = ec2.describe_vpc_attribute(VpcId=vid, Attribute=a)
    assert r['VpcId'] == vid, r
    attrs[a] = r[key]['Value']
assert attrs == {'enableDnsHostnames': True, 'enableDnsSupport': True, 'enableNetworkAddressUsageMetrics': False}, attrs
main = one(ec2.describe_route_tables(Filters=[{'Name': 'association.main', 'Values': ['true']},
                                              {'Name': 'vpc-id', 'Values': [vid]}])['RouteTables'], 'main route table')
rtb = main['RouteTableId']

# data "aws_subnets" { filter { name = "vpc-id" } }
subnets = ec2.get_paginator('describe_subnets').paginate(Filters=[{'Name': 'vpc-id', 'Values': [vid]}]).build_full_result()['Subnets']
assert subnets and all(s['VpcId'] == vid for s in subnets), subnets

# data "aws_route_table" { vpc_id = ... }
rt = one(ec2.describe_route_tables(Filters=[{'Name': 'vpc-id', 'Values': [vid]}])['RouteTables'], 'route table of the vpc')
assert rt['RouteTableId'] == rtb, rt
routes = {r['DestinationCidrBlock']: r for r in rt['Routes']}
assert routes[vpc['CidrBlock']]['GatewayId'] == 'local', routes
igw_route = routes['0.0.0.0/0']['GatewayId']

# data "aws_internet_gateway" { filter { name = "attachment.vpc-id" } }
igw = one(ec2.describe_internet_gateways(Filters=[{'Name': 'attachment.vpc-id', 'Values': [vid]}])['InternetGateways'], 'gateway')
assert igw['InternetGatewayId'] == igw_route, (igw, igw_route)
assert igw['Attachments'] == [{'State': 'available', 'VpcId': vid}], igw
one(ec2.describe_internet_gateways(InternetGatewayIds=[igw_route])['InternetGateways'], 'gateway by id')

# data "aws_vpc_dhcp_options" { dhcp_options_id = vpc.dhcp_options_id }
dopt = one(ec2.describe_dhcp_options(DhcpOptionsIds=[vpc['DhcpOptionsId']])['DhcpOptions'], 'dhcp options')
assert {c['Key'] for c in dopt['DhcpConfigurations']} == {'domain-name', 'domain-name-servers'}, dopt

# aws_default_route_table: import (the main table of the vpc), then read by id
one(ec2.describe_route_tables(Filters=[{'Name': 'association.main', 'Values': ['true']},
                                       {'Name': 'vpc-id', 'Values': [vid]}])['RouteTables'], 'import')
assert one(ec2.describe_route_tables(RouteTableIds=[rtb])['RouteTables'], 'read')['VpcId'] == vid
# ... with tags = { Name = "main" }: CreateTags, then the read sees them
ec2.create_tags(Resources=[rtb], Tags=[{'Key': 'Name', 'Value': 'main'}])
assert one(ec2.describe_route_tables(RouteTableIds=[rtb])['RouteTables'], 'tagged')['Tags'] == [{'Key': 'Name', 'Value': 'main'}]

# aws_default_network_acl read: the vpc's default ACL, associated with every subnet
acl = one(ec2.describe_network_acls(Filters=[{'Name': 'default', 'Values': ['true']},
                                             {'Name': 'vpc-id', 'Values': [vid]}])['NetworkAcls'], 'default acl')
assert {a['SubnetId'] for a in acl['Associations']} == {s['SubnetId'] for s in subnets}, acl
one(ec2.describe_network_acls(NetworkAclIds=[acl['NetworkAclId']])['NetworkAcls'], 'acl by id')

# aws_default_vpc with enable_dns_hostnames = false: the change, its wait (the
# attribute read until it says so), then the resource's read
ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={'Value': False})
assert ec2.describe_vpc_attribute(VpcId=vid, Attribute='enableDnsHostnames')['EnableDnsHostnames']['Value'] is False
one(ec2.describe_vpcs(VpcIds=[vid])['Vpcs'], 'vpc by id')
read = [ec2.describe_vpc_attribute(VpcId=vid, Attribute=a) for a in ('enableDnsHostnames', 'enableDnsSupport', 'enableNetworkAddressUsageMetrics')]
assert [r.get('EnableDnsHostnames', r.get('EnableDnsSupport', r.get('EnableNetworkAddressUsageMetrics')))['Value'] for r in read] == [False, True, False], read
assert one(ec2.describe_network_acls(Filters=[{'Name': 'default', 'Values': ['true']},
                                              {'Name': 'vpc-id', 'Values': [vid]}])['NetworkAcls'], 'default acl')['NetworkAclId'] == acl['NetworkAclId']
assert one(ec2.describe_route_tables(Filters=[{'Name': 'association.main', 'Values': ['true']},
                                              {'Name': 'vpc-id', 'Values': [vid]}])['RouteTables'], 'main')['RouteTableId'] == rtb
one(ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['default']},
                                          {'Name': 'vpc-id', 'Values': [vid]}])['SecurityGroups'], 'default group')
ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={'Value': True})

# data "aws_ec2_instance_type_offerings"
offers = ec2.get_paginator('describe_instance_type_offerings').paginate(LocationType='availability-zone',
    Filters=[{'Name': 'instance-type', 'Values': ['m1.small', 'c1.*']}]).build_full_result()['InstanceTypeOfferings']
assert sorted(o['InstanceType'] for o in offers) == ['c1.medium', 'c1.xlarge', 'm1.small'], offers
assert {o['Location'] for o in offers} == {s['AvailabilityZone'] for s in subnets}, offers

# What modules read besides: no endpoints, no prefix lists.
assert ec2.describe_vpc_endpoints(Filters=[{'Name': 'vpc-id', 'Values': [vid]}])['VpcEndpoints'] == []
assert ec2.describe_prefix_lists()['PrefixLists'] == []

# Ids stay the same from call to call, and unknown ones fail as EC2 fails.
assert ec2.describe_vpcs(VpcIds=[vid])['Vpcs'][0]['DhcpOptionsId'] == dopt['DhcpOptionsId']
assert ec2.describe_route_tables()['RouteTables'][0]['RouteTableId'] == rtb
fails('InvalidRouteTableID.NotFound', ec2.describe_route_tables, RouteTableIds=['rtb-0123456789abcdef0'])
fails('InvalidInternetGatewayID.NotFound', ec2.describe_internet_gateways, InternetGatewayIds=['igw-0123456789abcdef0'])
fails('InvalidDhcpOptionID.NotFound', ec2.describe_dhcp_options, DhcpOptionsIds=['dopt-0123456789abcdef0'])
fails('InvalidNetworkAclID.NotFound', ec2.describe_network_acls, NetworkAclIds=['acl-0123456789abcdef0'])
fails('InvalidVpcID.NotFound', ec2.describe_vpc_attribute, VpcId='vpc-0123456789abcdef0', Attribute='enableDnsSupport')
print('ok')
`)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("terraform default vpc sequence: %v %s\n%s", err, out, tail(c.Log(), 20))
	}
}
