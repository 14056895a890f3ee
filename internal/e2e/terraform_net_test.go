package e2e

import (
	"strings"
	"testing"
)

// TestTerraformNetworkSequence replays with boto3 the calls Terraform's AWS
// provider (5.100, traced with TF_LOG=DEBUG against this cloud) makes for
// aws_security_group with inline ingress and egress, aws_security_group_rule,
// aws_vpc_security_group_ingress_rule and _egress_rule, aws_eip (alone and
// with instance), aws_eip_association and the aws_instance they name:
// create, refresh, update (a rule's description, a rule modified in place,
// an address moved to another instance) and destroy, with the parameters
// the provider sends and the fields it reads, including the absences it
// takes for "gone". The instances run on the sim driver (nothing boots);
// the front-end is MANAGED-NOVLAN in a namespace of its own.
func TestTerraformNetworkSequence(t *testing.T) {
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
	out, err := fe.run(append(env, "EMI="+emi), "python3", "-c", terraformNetworkScript)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("terraform network sequence: %v %s\n--- front-end log:\n%s", err, out, tail(front.log.String(), 30))
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
    assert attr[0]['PtrRecord'].endswith('.') and attr[0]['AllocationId'] == alloc, attr
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
