package e2e

import (
	"strings"
	"testing"
)

// TestNetworkClientSequences drives the network API of one cloud with the
// requests two clients send, each replayed as the client builds it:
//
// terraform: what Terraform's AWS provider (5.100, traced with
// TF_LOG=DEBUG against this cloud) calls, through boto3, for
// aws_security_group with inline ingress and egress,
// aws_security_group_rule, aws_vpc_security_group_ingress_rule and
// _egress_rule, aws_eip (alone and with instance), aws_eip_association and
// the aws_instance they name: create, refresh, update (a rule's
// description, a rule modified in place, an address moved to another
// instance) and destroy, with the parameters the provider sends and the
// fields it reads, including the absences it takes for "gone".
//
// euca2ools: the requests of euca2ools 3.x's address and group commands,
// signed as requestbuilder signs them (SigV2, POST, API version
// 2014-06-15), with the parameter forms each command builds, and the
// answers read by the element names its commands print.
//
// The instances run on the sim driver (nothing boots); the front-end is
// MANAGED-NOVLAN in a namespace of its own.
func TestNetworkClientSequences(t *testing.T) {
	t.Parallel() // its host is a network namespace of its own
	needLAN(t)
	Need(t, "aws", "python3", "unzip", "bash")
	l := newLANNamed(t, "iop", "10.246.1")
	fe := l.host("fe", `VNET_MODE="MANAGED-NOVLAN"`, `VNET_PUBINTERFACE="eth0"`, `VNET_SUBNET="10.246.128.0"`,
		`VNET_NETMASK="255.255.192.0"`, `VNET_DNS="10.246.1.1"`, `VNET_ADDRSPERNET="32"`, `VNET_PUBLICIPS="10.246.200.8/29"`)
	front := fe.start("--roles=all", "--driver", "sim")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	_, mustAWS := lanAWS(t, fe, env, func() string { return front.log.String() })
	emi := lanTinyImage(t, fe, env, mustAWS)
	for _, c := range []struct{ name, script string }{{"terraform", terraformNetworkScript}, {"euca2ools", euca2oolsNetworkScript}} {
		t.Run(c.name, func(t *testing.T) {
			out, err := fe.run(append(env, "EMI="+emi), "python3", "-c", c.script)
			if err != nil || strings.TrimSpace(out) != "ok" {
				t.Fatalf("%s sequence: %v %s\n--- front-end log:\n%s", c.name, err, out, tail(front.log.String(), 30))
			}
		})
	}
}

const terraformNetworkScript = `
import os, time, boto3
from botocore.exceptions import ClientError
ep = os.environ['EC2_URL']
root = ep.rsplit('/services/', 1)[0]
acct = boto3.client('sts', endpoint_url=root + '/services/Tokens').get_caller_identity()['Account']
ec2 = boto3.client('ec2', endpoint_url=ep)
def code(f, **kw):
    try:
        f(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    return 'no error'
def tags(n):
    return [{'Key': 'Name', 'Value': n}]

# ---- create
# aws_security_group "web" (inline rules) and "db" (rules elsewhere)
web = ec2.create_security_group(GroupName='tf-web', Description='web',
    TagSpecifications=[{'ResourceType': 'security-group', 'Tags': tags('tf-web')}])['GroupId']
db = ec2.create_security_group(GroupName='tf-db', Description='db',
    TagSpecifications=[{'ResourceType': 'security-group', 'Tags': tags('tf-db')}])['GroupId']
for g in (web, db):
    sg = ec2.describe_security_groups(GroupIds=[g])['SecurityGroups'][0]
    assert sg['OwnerId'] == acct and sg['VpcId'].startswith('vpc-') and sg['Tags'] == tags(sg['GroupName']), sg
    ec2.revoke_security_group_egress(GroupId=g, IpPermissions=[{'FromPort': 0, 'ToPort': 0, 'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])
    assert code(ec2.revoke_security_group_egress, GroupId=g,
        IpPermissions=[{'FromPort': 0, 'ToPort': 0, 'IpProtocol': '-1', 'Ipv6Ranges': [{'CidrIpv6': '::/0'}]}]) in ('no error', 'InvalidPermission.NotFound')
ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
    {'FromPort': 0, 'ToPort': 65535, 'IpProtocol': 'tcp', 'UserIdGroupPairs': [{'GroupId': web}]},
    {'FromPort': 80, 'ToPort': 80, 'IpProtocol': 'tcp', 'IpRanges': [{'CidrIp': '0.0.0.0/0', 'Description': 'http'}]},
    {'FromPort': 8, 'ToPort': 0, 'IpProtocol': 'icmp', 'IpRanges': [{'CidrIp': '10.0.0.0/8'}]}])
ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[{'IpProtocol': '-1', 'IpRanges': [{'CidrIp': '0.0.0.0/0'}]}])
sg = ec2.describe_security_groups(GroupIds=[web])['SecurityGroups'][0]
ing = {(p['IpProtocol'], p.get('FromPort'), p.get('ToPort')): p for p in sg['IpPermissions']}
assert ing[('icmp', 8, 0)]['IpRanges'] == [{'CidrIp': '10.0.0.0/8'}], ing
assert ing[('tcp', 80, 80)]['IpRanges'] == [{'CidrIp': '0.0.0.0/0', 'Description': 'http'}], ing
assert ing[('tcp', 0, 65535)]['UserIdGroupPairs'] == [{'GroupId': web, 'UserId': acct}], ing
assert [(p['IpProtocol'], 'FromPort' in p, p['IpRanges']) for p in sg['IpPermissionsEgress']] == [('-1', False, [{'CidrIp': '0.0.0.0/0'}])], sg
# aws_security_group_rule db_out (egress) and db_in (from web): the read
# finds the rule in the group, and its id among the group's rules
ec2.authorize_security_group_egress(GroupId=db, IpPermissions=[{'FromPort': 443, 'ToPort': 443, 'IpProtocol': 'tcp', 'IpRanges': [{'CidrIp': '10.1.0.0/16'}]}])
ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{'FromPort': 5432, 'ToPort': 5432, 'IpProtocol': 'tcp', 'UserIdGroupPairs': [{'GroupId': web}]}])
rules = ec2.describe_security_group_rules(Filters=[{'Name': 'group-id', 'Values': [db]}])['SecurityGroupRules']
assert sorted((r['IsEgress'], r['FromPort'], r.get('CidrIpv4'), r.get('ReferencedGroupInfo', {}).get('GroupId')) for r in rules) == \
    [(False, 5432, None, web), (True, 443, '10.1.0.0/16', None)], rules
# aws_vpc_security_group_ingress_rule ssh (tagged), from_web; _egress_rule dns:
# the rule's id comes from the answer, every read is by that id
def one_rule(f, **kw):
    r = f(**kw)['SecurityGroupRules']
    assert len(r) == 1, r
    return r[0]['SecurityGroupRuleId']
ssh = one_rule(ec2.authorize_security_group_ingress, GroupId=db, IpPermissions=[{'FromPort': 22, 'ToPort': 22, 'IpProtocol': 'tcp',
    'IpRanges': [{'CidrIp': '10.2.0.0/16', 'Description': 'ssh'}]}], TagSpecifications=[{'ResourceType': 'security-group-rule', 'Tags': tags('ssh')}])
from_web = one_rule(ec2.authorize_security_group_ingress, GroupId=db, IpPermissions=[{'IpProtocol': '-1', 'UserIdGroupPairs': [{'GroupId': web}]}])
dns = one_rule(ec2.authorize_security_group_egress, GroupId=db, IpPermissions=[{'FromPort': 53, 'ToPort': 53, 'IpProtocol': 'udp', 'IpRanges': [{'CidrIp': '10.3.0.0/16'}]}])
def rule(i):
    r = ec2.describe_security_group_rules(SecurityGroupRuleIds=[i])['SecurityGroupRules']
    assert len(r) == 1 and r[0]['SecurityGroupRuleId'] == i and r[0]['GroupId'] == db and r[0]['GroupOwnerId'] == acct, r
    return r[0]
r = rule(ssh)
assert (r['IsEgress'], r['IpProtocol'], r['FromPort'], r['ToPort'], r['CidrIpv4'], r['Description'], r['Tags']) == (False, 'tcp', 22, 22, '10.2.0.0/16', 'ssh', tags('ssh')), r
r = rule(from_web)
assert (r['IpProtocol'], r['FromPort'], r['ToPort'], r['ReferencedGroupInfo']['GroupId']) == ('-1', -1, -1, web), r
assert rule(dns)['IsEgress'] is True

# aws_instance vm (in web) and vm2 (default group)
def run(*groups):
    kw = {'SecurityGroupIds': list(groups)} if groups else {}
    i = ec2.run_instances(ImageId=os.environ['EMI'], InstanceType='m1.small', MinCount=1, MaxCount=1, ClientToken='terraform-%d' % len(groups),
        DisableApiTermination=False, EbsOptimized=False, HibernationOptions={'Configured': False}, Monitoring={'Enabled': False},
        TagSpecifications=[{'ResourceType': 'instance', 'Tags': tags('vm')}], **kw)['Instances'][0]['InstanceId']
    for _ in range(120):
        if ec2.describe_instances(InstanceIds=[i])['Reservations'][0]['Instances'][0]['State']['Name'] == 'running':
            return i
        time.sleep(1)
    raise SystemExit('%s not running' % i)
vm, vm2 = run(web), run()
def eni(i):
    return ec2.describe_instances(InstanceIds=[i])['Reservations'][0]['Instances'][0]['NetworkInterfaces'][0]['NetworkInterfaceId']

# aws_eip a: allocated, read by allocation id, its reverse name read
a = ec2.allocate_address(Domain='vpc', TagSpecifications=[{'ResourceType': 'elastic-ip', 'Tags': tags('a')}])['AllocationId']
def address(alloc):
    got = ec2.describe_addresses(AllocationIds=[alloc])['Addresses']
    assert len(got) == 1 and got[0]['AllocationId'] == alloc and got[0]['Domain'] == 'vpc', got
    attr = ec2.describe_addresses_attribute(AllocationIds=[alloc], Attribute='domain-name')['Addresses']
    assert attr == [], attr  # no reverse name given: no record listed
    return got[0]
ad = address(a)
assert ad['Tags'] == tags('a') and ad['PublicIpv4Pool'] == 'amazon' and ad['NetworkBorderGroup'] == 'us-east-1' and 'AssociationId' not in ad, ad
# aws_eip b with instance = vm2: allocated, associated, the association read by its id
b = ec2.allocate_address(Domain='vpc')['AllocationId']
address(b)
def by_association(assoc):
    return ec2.describe_addresses(Filters=[{'Name': 'association-id', 'Values': [assoc]}])['Addresses']
bassoc = ec2.associate_address(AllocationId=b, InstanceId=vm2)['AssociationId']
assert [x['InstanceId'] for x in by_association(bassoc)] == [vm2]
ad = address(b)
assert (ad['InstanceId'], ad['AssociationId'], ad['NetworkInterfaceId'], ad['NetworkInterfaceOwnerId']) == (vm2, bassoc, eni(vm2), acct), ad
assert ad['PrivateIpAddress'] == ec2.describe_instances(InstanceIds=[vm2])['Reservations'][0]['Instances'][0]['PrivateIpAddress'], ad
# aws_eip_association a -> vm
aassoc = ec2.associate_address(AllocationId=a, InstanceId=vm)['AssociationId']
for _ in range(2):
    got = by_association(aassoc)
    assert len(got) == 1 and got[0]['AllocationId'] == a and got[0]['InstanceId'] == vm, got

# ---- update
# aws_security_group_rule db_out's description
ec2.update_security_group_rule_descriptions_egress(GroupId=db, IpPermissions=[{'FromPort': 443, 'ToPort': 443, 'IpProtocol': 'tcp',
    'IpRanges': [{'CidrIp': '10.1.0.0/16', 'Description': 'tls out'}]}])
eg = ec2.describe_security_groups(GroupIds=[db])['SecurityGroups'][0]['IpPermissionsEgress']
assert {'CidrIp': '10.1.0.0/16', 'Description': 'tls out'} in [c for p in eg for c in p['IpRanges']], eg
# aws_security_group web: a CIDR added to the icmp rule
ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{'FromPort': 8, 'ToPort': 0, 'IpProtocol': 'icmp', 'IpRanges': [{'CidrIp': '172.16.0.0/12'}]}])
# aws_vpc_security_group_ingress_rule ssh's description, _egress_rule dns's CIDR
ec2.modify_security_group_rules(GroupId=db, SecurityGroupRules=[{'SecurityGroupRuleId': ssh, 'SecurityGroupRule': {
    'CidrIpv4': '10.2.0.0/16', 'Description': 'ssh admins', 'FromPort': 22, 'IpProtocol': 'tcp', 'ToPort': 22}}])
ec2.modify_security_group_rules(GroupId=db, SecurityGroupRules=[{'SecurityGroupRuleId': dns, 'SecurityGroupRule': {
    'CidrIpv4': '10.4.0.0/16', 'FromPort': 53, 'IpProtocol': 'udp', 'ToPort': 53}}])
r = rule(ssh)
assert (r['Description'], r['CidrIpv4'], r['Tags']) == ('ssh admins', '10.2.0.0/16', tags('ssh')), r
r = rule(dns)
assert (r['CidrIpv4'], r['IsEgress']) == ('10.4.0.0/16', True), r
# aws_eip a's tags
ec2.create_tags(Resources=[a], Tags=[{'Key': 'Name', 'Value': 'a2'}, {'Key': 'team', 'Value': 'x'}])
assert sorted(t['Key'] for t in address(a)['Tags']) == ['Name', 'team']
# aws_eip b moves to vm: its association ended, then associated naming vm
# and (from Terraform's state) vm2's interface; vm's own address (a) is let go
ec2.disassociate_address(AssociationId=bassoc)
assert by_association(bassoc) == []
bassoc = ec2.associate_address(AllocationId=b, InstanceId=vm, NetworkInterfaceId=eni(vm2))['AssociationId']
assert [x['InstanceId'] for x in by_association(bassoc)] == [vm]
assert by_association(aassoc) == [], 'aws_eip_association a is gone once b takes vm'
assert 'AssociationId' not in address(a)
# Its old association named again by a retried destroy: not found, which the provider ignores
assert code(ec2.disassociate_address, AssociationId='eipassoc-0123456789abcdef0') == 'InvalidAssociationID.NotFound'
# aws_eip_association a recreated, on vm2
aassoc = ec2.associate_address(AllocationId=a, InstanceId=vm2)['AssociationId']
assert [x['InstanceId'] for x in by_association(aassoc)] == [vm2]
assert ec2.describe_instances(InstanceIds=[vm])['Reservations'][0]['Instances'][0]['PublicIpAddress'] == address(b)['PublicIp']

# ---- destroy
ec2.disassociate_address(AssociationId=aassoc)
ec2.disassociate_address(AssociationId=bassoc)
for alloc in (a, b):
    ec2.release_address(AllocationId=alloc, NetworkBorderGroup='us-east-1')
    assert code(ec2.describe_addresses, AllocationIds=[alloc]) == 'InvalidAllocationID.NotFound'
    assert code(ec2.release_address, AllocationId=alloc) == 'InvalidAllocationID.NotFound'
ec2.revoke_security_group_egress(GroupId=db, SecurityGroupRuleIds=[dns])
ec2.revoke_security_group_ingress(GroupId=db, SecurityGroupRuleIds=[ssh])
ec2.revoke_security_group_ingress(GroupId=db, SecurityGroupRuleIds=[from_web])
assert code(ec2.describe_security_group_rules, SecurityGroupRuleIds=[ssh]) == 'InvalidSecurityGroupRuleId.NotFound'
ec2.revoke_security_group_egress(GroupId=db, IpPermissions=[{'FromPort': 443, 'ToPort': 443, 'IpProtocol': 'tcp',
    'IpRanges': [{'CidrIp': '10.1.0.0/16', 'Description': 'tls out'}]}])
ec2.revoke_security_group_ingress(GroupId=db, IpPermissions=[{'FromPort': 5432, 'ToPort': 5432, 'IpProtocol': 'tcp', 'UserIdGroupPairs': [{'GroupId': web}]}])
ec2.modify_instance_attribute(InstanceId=vm, DisableApiTermination={'Value': False})
ec2.terminate_instances(InstanceIds=[vm, vm2])
for _ in range(120):
    st = {i['State']['Name'] for r in ec2.describe_instances(InstanceIds=[vm, vm2])['Reservations'] for i in r['Instances']}
    if st == {'terminated'}:
        break
    time.sleep(1)
else:
    raise SystemExit('not terminated: %s' % st)
for g in (db, web):
    assert ec2.describe_network_interfaces(Filters=[{'Name': 'group-id', 'Values': [g]}])['NetworkInterfaces'] == []
    ec2.delete_security_group(GroupId=g)
    assert code(ec2.describe_security_groups, GroupIds=[g]) == 'InvalidGroup.NotFound'
print('ok')
`

// euca2oolsNetworkScript sends what euca2ools 3.x's commands send (their
// parameters as each command's configure() builds them) and reads the
// answers as requestbuilder does: namespaces dropped, the command's
// LIST_TAGS made lists, fields read by the names its print_result uses.
const euca2oolsNetworkScript = `
import os, time, hmac, hashlib, base64, urllib.parse, urllib.request, urllib.error, boto3
import xml.etree.ElementTree as ET
URL, KEY, SECRET = os.environ['EC2_URL'], os.environ['AWS_ACCESS_KEY_ID'], os.environ['AWS_SECRET_ACCESS_KEY']
ACCT = os.environ['EC2_USER_ID']

def parse(e, lists):
    # requestbuilder's parse_listdelimited_aws_xml: a LIST_TAGS element is a
    # list of its items, any other element with children a dict.
    tag = e.tag.split('}')[-1]
    if tag in lists:
        return [parse(i, lists) for i in e]
    if len(e) == 0:
        return e.text or ''
    return {c.tag.split('}')[-1]: parse(c, lists) for c in e}

def euca(action, lists=(), fail=None, **params):
    p = {k: str(v) for k, v in params.items() if v is not None}
    p.update(Action=action, Version='2014-06-15', AWSAccessKeyId=KEY, SignatureVersion='2',
             SignatureMethod='HmacSHA256', Timestamp=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    u = urllib.parse.urlparse(URL)
    q = '&'.join(urllib.parse.quote(k, safe='') + '=' + urllib.parse.quote(p[k], safe='-_~') for k in sorted(p))
    p['Signature'] = base64.b64encode(hmac.new(SECRET.encode(), ('POST\n%s\n%s\n%s' % (u.netloc.lower(), u.path or '/', q)).encode(),
                                               hashlib.sha256).digest()).decode()
    req = urllib.request.Request(URL, data=urllib.parse.urlencode(p).encode(), method='POST',
                                 headers={'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8'})
    try:
        with urllib.request.urlopen(req) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        code = ET.fromstring(e.read()).find('.//Code').text
        assert fail == code, (action, params, code)
        return code
    assert fail is None, (action, params, 'succeeded, want', fail)
    return parse(ET.fromstring(body), lists)

ec2 = boto3.client('ec2', endpoint_url=URL)
vm = ec2.run_instances(ImageId=os.environ['EMI'], InstanceType='m1.small', MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']
for _ in range(120):
    inst = ec2.describe_instances(InstanceIds=[vm])['Reservations'][0]['Instances'][0]
    if inst['State']['Name'] == 'running':
        break
    time.sleep(1)
ADDR = ['addressesSet']

# euca-allocate-address: ADDRESS publicIp domain allocationId
a = euca('AllocateAddress')
pub, alloc = a['publicIp'], a['allocationId']
assert pub.startswith('10.246.200.') and alloc.startswith('eipalloc-') and a['domain'] in ('standard', 'vpc'), a
# euca-associate-address -i VM PUBLICIP (the EC2-Classic form)
assoc = euca('AssociateAddress', PublicIp=pub, InstanceId=vm)['associationId']
# euca-describe-addresses PUBLICIP / ALLOCATIONID:
# ADDRESS publicIp instanceId domain allocationId associationId networkInterfaceId privateIpAddress
for kw in ({'PublicIp.1': pub}, {'AllocationId.1': alloc}):
    got = euca('DescribeAddresses', ADDR, **kw)['addressesSet']
    assert len(got) == 1, got
    d = got[0]
    assert (d['publicIp'], d['instanceId'], d['allocationId'], d['associationId'], d['privateIpAddress']) == \
        (pub, vm, alloc, assoc, inst['PrivateIpAddress']), d
    assert d['networkInterfaceId'] == inst['NetworkInterfaces'][0]['NetworkInterfaceId'], d
assert [x['publicIp'] for x in euca('DescribeAddresses', ADDR, **{'Filter.1.Name': 'instance-id', 'Filter.1.Value.1': vm})['addressesSet']] == [pub]
# DescribeInstances names it (ipAddress, what euca-describe-instances prints)
for _ in range(10):
    if ec2.describe_instances(InstanceIds=[vm])['Reservations'][0]['Instances'][0].get('PublicIpAddress') == pub:
        break
    time.sleep(1)
else:
    raise SystemExit('instance does not show %s' % pub)
# euca-disassociate-address PUBLICIP; again: nothing to do, as EC2-Classic answered
assert euca('DisassociateAddress', PublicIp=pub)['return'] == 'true'
euca('DisassociateAddress', PublicIp=pub)
# euca-associate-address -a ALLOC -i VM --allow-reassociation; euca-disassociate-address -a ASSOC
assoc = euca('AssociateAddress', AllocationId=alloc, InstanceId=vm, AllowReassociation='true')['associationId']
euca('DisassociateAddress', AssociationId=assoc)
euca('DisassociateAddress', AssociationId=assoc, fail='InvalidAssociationID.NotFound')
# euca-release-address PUBLICIP; euca-allocate-address -d vpc; euca-release-address -a ALLOC
euca('ReleaseAddress', PublicIp=pub)
euca('DescribeAddresses', ADDR, fail='InvalidAddress.NotFound', **{'PublicIp.1': pub})
v = euca('AllocateAddress', Domain='vpc')
assert v['domain'] == 'vpc', v
euca('ReleaseAddress', AllocationId=v['allocationId'])
euca('ReleaseAddress', AllocationId=v['allocationId'], fail='InvalidAllocationID.NotFound')

# euca-create-group web / db
GROUPS = ['securityGroupInfo', 'ipPermissions', 'ipPermissionsEgress', 'groups', 'ipRanges', 'tagSet']
web = euca('CreateSecurityGroup', GroupName='web', GroupDescription='web servers')['groupId']
db = euca('CreateSecurityGroup', GroupName='db', GroupDescription='db')['groupId']
def perm(proto, frm, to, **peer):
    p = {'IpPermissions.1.IpProtocol': proto, 'IpPermissions.1.FromPort': frm, 'IpPermissions.1.ToPort': to}
    p.update({'IpPermissions.1.' + k.replace('_', '.'): v for k, v in peer.items()})
    if not any(k.startswith('IpPermissions.1.IpRanges') for k in p):
        p['IpPermissions.1.IpRanges.1.CidrIp'] = '0.0.0.0/0'  # euca2ools' default, -o or not
    return p
# euca-authorize -P tcp -p 22 -s 10.0.0.0/8 web
euca('AuthorizeSecurityGroupIngress', GroupName='web', **perm('tcp', 22, 22, IpRanges_1_CidrIp='10.0.0.0/8'))
# euca-authorize -P tcp -p 8000-8080 web (0.0.0.0/0)
euca('AuthorizeSecurityGroupIngress', GroupName='web', **perm('tcp', 8000, 8080))
# euca-authorize -P icmp -t 8:0 -s 10.0.0.0/8 web; euca-authorize -P icmp web (-1:-1)
euca('AuthorizeSecurityGroupIngress', GroupName='web', **perm('icmp', 8, 0, IpRanges_1_CidrIp='10.0.0.0/8'))
euca('AuthorizeSecurityGroupIngress', GroupName='web', **perm('icmp', -1, -1))
# euca-authorize -P tcp -p 5432 -o web -u ACCT db: the group only
euca('AuthorizeSecurityGroupIngress', GroupName='db', **perm('tcp', 5432, 5432, Groups_1_GroupName='web', Groups_1_UserId=ACCT))
# euca-authorize -P udp -p 53 -o WEB-ID -u ACCT DB-ID: 17-digit ids travel as names
euca('AuthorizeSecurityGroupIngress', GroupName=db, **perm('udp', 53, 53, Groups_1_GroupName=web, Groups_1_UserId=ACCT))
euca('AuthorizeSecurityGroupIngress', GroupName='web', fail='InvalidPermission.Duplicate', **perm('tcp', 22, 22, IpRanges_1_CidrIp='10.0.0.0/8'))
# euca-describe-groups web db: GROUP groupId ownerId groupName groupDescription vpcId, and
# PERMISSION ownerId groupName ALLOWS ipProtocol fromPort toPort FROM CIDR cidrIp | FROM USER userId ID groupId
def lines(*names):
    out = []
    for g in euca('DescribeSecurityGroups', GROUPS, **{'GroupName.%d' % (i + 1): n for i, n in enumerate(names)})['securityGroupInfo']:
        out.append(('GROUP', g['groupId'], g['ownerId'], g['groupName'], g['groupDescription'], g['vpcId'].startswith('vpc-')))
        for p in g.get('ipPermissions', []):
            base = ('PERMISSION', g['ownerId'], g['groupName'], 'ALLOWS', p['ipProtocol'], p.get('fromPort'), p.get('toPort'))
            out += [base + ('FROM', 'CIDR', r['cidrIp']) for r in p.get('ipRanges', [])]
            out += [base + ('FROM', 'USER', o['userId'], 'ID', o['groupId']) for o in p.get('groups', [])]
        for p in g.get('ipPermissionsEgress', []):
            out += [('EGRESS', p['ipProtocol'], r['cidrIp']) for r in p.get('ipRanges', [])]
    return sorted(out, key=str)
want = sorted([
    ('GROUP', web, ACCT, 'web', 'web servers', True),
    ('PERMISSION', ACCT, 'web', 'ALLOWS', 'tcp', '22', '22', 'FROM', 'CIDR', '10.0.0.0/8'),
    ('PERMISSION', ACCT, 'web', 'ALLOWS', 'tcp', '8000', '8080', 'FROM', 'CIDR', '0.0.0.0/0'),
    ('PERMISSION', ACCT, 'web', 'ALLOWS', 'icmp', '8', '0', 'FROM', 'CIDR', '10.0.0.0/8'),
    ('PERMISSION', ACCT, 'web', 'ALLOWS', 'icmp', '-1', '-1', 'FROM', 'CIDR', '0.0.0.0/0'),
    ('EGRESS', '-1', '0.0.0.0/0'),
    ('GROUP', db, ACCT, 'db', 'db', True),
    ('PERMISSION', ACCT, 'db', 'ALLOWS', 'tcp', '5432', '5432', 'FROM', 'USER', ACCT, 'ID', web),
    ('PERMISSION', ACCT, 'db', 'ALLOWS', 'udp', '53', '53', 'FROM', 'USER', ACCT, 'ID', web),
    ('EGRESS', '-1', '0.0.0.0/0')], key=str)
got = lines('web', 'db')
assert got == want, '\n'.join(map(str, got))
# euca-revoke, the same forms; then euca-delete-group by name and by id (RETURN return)
euca('RevokeSecurityGroupIngress', GroupName='db', **perm('tcp', 5432, 5432, Groups_1_GroupName='web', Groups_1_UserId=ACCT))
euca('RevokeSecurityGroupIngress', GroupName=db, **perm('udp', 53, 53, Groups_1_GroupName=web, Groups_1_UserId=ACCT))
euca('RevokeSecurityGroupIngress', GroupName='web', **perm('icmp', 8, 0, IpRanges_1_CidrIp='10.0.0.0/8'))
# again: in a default VPC, EC2 answers false (and which rule it did not know)
assert euca('RevokeSecurityGroupIngress', GroupName='web', **perm('icmp', 8, 0, IpRanges_1_CidrIp='10.0.0.0/8'))['return'] == 'false'
assert [l for l in lines('db') if l[0] == 'PERMISSION'] == []
assert len([l for l in lines('web') if l[0] == 'PERMISSION']) == 3
assert euca('DeleteSecurityGroup', GroupName='db')['return'] == 'true'
assert euca('DeleteSecurityGroup', GroupId=web)['return'] == 'true'
euca('DescribeSecurityGroups', GROUPS, fail='InvalidGroup.NotFound', **{'GroupName.1': 'web'})
ec2.terminate_instances(InstanceIds=[vm])
print('ok')
`
