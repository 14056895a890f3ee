package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/euca-cloud/euca/internal/nstest"
)

// TestElasticIPAPI drives the address calls with the AWS CLI and boto3 as
// users do, against a cloud controller whose pool (a CIDR block, as
// VNET_PUBLICIPS may give it) holds two addresses: allocation in both
// domains, tags, filters, the reverse DNS attribute, the refusals EC2
// gives (exhausted pool, unknown ids, another account's address), the
// administrator's verbose view and `euca address list`.
func TestElasticIPAPI(t *testing.T) {
	Need(t, "aws", "python3")
	c := Start(t, "clc", `VNET_PUBLICIPS="10.240.200.8/30"`)
	aws := func(args ...string) string {
		t.Helper()
		out, err := c.AWS(t, c.Env, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, tail(c.Log(), 20))
		}
		return out
	}
	var a1 struct{ AllocationId, PublicIp, Domain string }
	jsonField(t, aws("ec2", "allocate-address", "--domain", "vpc",
		"--tag-specifications", "ResourceType=elastic-ip,Tags=[{Key=Name,Value=web}]"), &a1)
	if !strings.HasPrefix(a1.AllocationId, "eipalloc-") || a1.PublicIp != "10.240.200.9" || a1.Domain != "vpc" {
		t.Fatalf("allocate-address: %+v", a1)
	}
	var ids []string
	jsonField(t, aws("ec2", "describe-addresses", "--filters", "Name=tag:Name,Values=web", "Name=domain,Values=vpc",
		"--query", "Addresses[].AllocationId"), &ids)
	if len(ids) != 1 || ids[0] != a1.AllocationId {
		t.Errorf("describe-addresses by tag: %v", ids)
	}
	var ptr []string
	jsonField(t, aws("ec2", "describe-addresses-attribute", "--attribute", "domain-name", "--allocation-ids", a1.AllocationId,
		"--query", "Addresses[].PtrRecord"), &ptr)
	// No reverse name was given, so there is no record to list (Terraform's
	// aws_eip_domain_name waits on exactly this after a reset).
	if len(ptr) != 0 {
		t.Errorf("describe-addresses-attribute of an address never named: %v", ptr)
	}
	if out, err := c.Euca(t, "account", "create", "alice"); err != nil {
		t.Fatalf("account create: %v %s", err, out)
	}
	alice := c.Credentials(t, "alice")
	out, err := c.Python(t, append(alice, "ADMIN_IP="+a1.PublicIp), `
import os, boto3
from botocore.exceptions import ClientError
ec2 = boto3.client('ec2', endpoint_url=os.environ['EC2_URL'])
def code(f, **kw):
    try:
        f(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    return 'no error'
a = ec2.allocate_address(Domain='standard')
assert a['Domain'] == 'standard' and a['PublicIp'] == '10.240.200.10', a
assert code(ec2.allocate_address) == 'InsufficientAddressCapacity'
assert code(ec2.release_address, AllocationId='eipalloc-00000000') == 'InvalidAllocationID.NotFound'
assert code(ec2.release_address, PublicIp=os.environ['ADMIN_IP']) == 'AuthFailure'
assert code(ec2.describe_addresses, PublicIps=[os.environ['ADMIN_IP']]) == 'InvalidAddress.NotFound'
assert code(ec2.disassociate_address, AssociationId='eipassoc-00000000') == 'InvalidAssociationID.NotFound'
assert code(ec2.associate_address, AllocationId=a['AllocationId'], InstanceId='i-00000000') == 'InvalidInstanceID.NotFound'
assert code(ec2.describe_addresses, PublicIps=['verbose']) == 'InvalidAddress.Malformed'
got = ec2.describe_addresses()['Addresses']
assert [x['PublicIp'] for x in got] == ['10.240.200.10'], got
print('ok')
`)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("boto3 as alice: %v %s\n%s", err, out, tail(c.Log(), 20))
	}
	// The administrator sees the whole pool and who holds each address.
	var verbose []string
	var rows [][]string
	jsonField(t, aws("ec2", "describe-addresses", "--public-ips", "verbose", "--query", "Addresses[].[PublicIp,InstanceId]"), &rows)
	for _, r := range rows {
		verbose = append(verbose, strings.Join(r, " "))
	}
	if want := []string{"10.240.200.9 available (admin)", "10.240.200.10 available (alice)"}; strings.Join(verbose, ",") != strings.Join(want, ",") {
		t.Errorf("verbose: %q, want %q", verbose, want)
	}
	list, err := c.Euca(t, "address", "list")
	if err != nil || !regexp.MustCompile(`(?m)^10\.240\.200\.10\s+alice \(\d{12}\)\s+eipalloc-\w+\s+-$`).MatchString(list) {
		t.Errorf("euca address list: %v\n%s", err, list)
	}
	aws("ec2", "release-address", "--allocation-id", a1.AllocationId)
	if out := aws("ec2", "describe-addresses", "--query", "Addresses"); strings.TrimSpace(out) != "[]" {
		t.Errorf("after release: %s", out)
	}
}

// TestElasticIPGuests: two guests of the test image on one host (all roles,
// MANAGED-NOVLAN from the 1.5 documentation's block, its own libvirtd) and
// a client host outside the cloud on the same LAN. Each guest polls, every
// second, its metadata's public-ipv4 and a server on the client host that
// answers with the address it sees the guest's connection come from. Each
// guest is lent an address of the pool at launch: the client reaches the
// guest through it, the guest's metadata names it, and the guest's own
// connections leave from it. An elastic IP associated with the first guest
// then does all three for it (the lent address goes back to the pool and
// answers no more); re-associated to the second it does them for the second
// while the first is lent an address again; once disassociated it answers
// nothing and the second is lent one again.
func TestElasticIPGuests(t *testing.T) {
	t.Parallel() // its hosts are network namespaces of its own
	needLAN(t)
	Need(t, "aws", "curl", "unzip", "bash", "libvirtd", "virtlogd", "qemu-system-x86_64")
	if !exists(filepath.Join(guestDir(t), "root.img")) {
		Missing(t, "no test guest (make guest-image)")
	}
	l := newLANNamed(t, "eip", "10.240.30")
	fe := l.host("fe", append(docBlock(t, "managed-novlan-frontend.conf",
		"192.168.1.0", "10.240.0.0", "255.255.0.0", "255.255.240.0", "192.168.1.2", "10.240.30.1",
		"10.0.0.0 10.0.0.1 …", "10.240.200.0/29"), `HYPERVISOR="qemu"`)...)
	client := l.host("cl")
	// The client host's server: it answers with the address a request
	// comes from.
	clientNS, err := netns.GetFromName(client.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clientNS.Close() })
	var ln net.Listener
	nstest.MustDo(t, clientNS, func() (err error) { ln, err = net.Listen("tcp4", client.IP+":8080"); return err })
	t.Cleanup(func() { ln.Close() })
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprint(w, host)
	}))
	// The client host routes the pool to the front-end, as the LAN's
	// router would.
	if out, err := client.run(nil, "ip", "route", "add", "10.240.200.0/29", "via", fe.IP); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	front := fe.startWithHypervisor("--roles=all")
	front.waitListening(8773)
	env := lanCredentials(t, fe)
	try, aws := lanAWS(t, fe, env, func() string { return front.log.String() })

	g := guestDir(t)
	eki := lanRegister(t, fe, env, aws, filepath.Join(g, "vmlinuz"), "kernel", "--kernel", "true")
	eri := lanRegister(t, fe, env, aws, filepath.Join(g, "initrd.img"), "ramdisk", "--ramdisk", "true")
	emi := lanRegister(t, fe, env, aws, filepath.Join(g, "root.img"), "root", "--kernel", eki, "--ramdisk", eri)
	var group string
	jsonField(t, aws("ec2", "create-security-group", "--group-name", "web", "--description", "web", "--query", "GroupId"), &group)
	aws("ec2", "authorize-security-group-ingress", "--group-id", group, "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")

	const metaURL = "http://169.254.169.254/latest/meta-data/public-ipv4"
	seenURL := "http://" + client.IP + ":8080/"
	var run struct {
		Instances []struct{ InstanceId, PublicIpAddress string }
	}
	jsonField(t, aws("ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small", "--count", "2",
		"--security-group-ids", group, "--user-data", "EUCA-POLL "+metaURL+"\nEUCA-POLL "+seenURL+"\n"), &run)
	if len(run.Instances) != 2 {
		t.Fatalf("run-instances: %+v", run)
	}
	g1, g2 := run.Instances[0].InstanceId, run.Instances[1].InstanceId
	lent := map[string]string{}
	for _, in := range run.Instances {
		if !strings.HasPrefix(in.PublicIpAddress, "10.240.200.") {
			t.Fatalf("%s launched without a public address of the pool: %q", in.InstanceId, in.PublicIpAddress)
		}
		lent[in.InstanceId] = in.PublicIpAddress
	}
	console := func(id string) string {
		var out string
		jsonField(t, aws("ec2", "get-console-output", "--instance-id", id, "--latest", "--query", "Output"), &out)
		if b, err := base64.StdEncoding.DecodeString(out); err == nil {
			return string(b)
		}
		return out
	}
	// answers waits until the guest's console shows both polls answered
	// with ip, each later than since (a line the console showed before).
	answers := func(id, ip string, since map[string]int) map[string]int {
		t.Helper()
		at := map[string]int{}
		var last string
		eventually(t, id+" sees "+ip, 6*time.Minute, func() error {
			last = console(id)
			for _, u := range []string{metaURL, seenURL} {
				// The serial console ends lines with \r\n.
				found := regexp.MustCompile(`EUCA-POLL-OK url=`+regexp.QuoteMeta(u)+` body=`+regexp.QuoteMeta(ip)+`\s*(\n|$)`).
					FindAllStringIndex(last, -1)
				i := -1
				if len(found) > 0 {
					i = found[len(found)-1][0]
				}
				if i < 0 || i <= since[u] {
					return fmt.Errorf("%s does not answer %s yet; console ends:\n%s", u, ip, tail(last, 8))
				}
				at[u] = i
			}
			return nil
		})
		return at
	}
	never := map[string]int{metaURL: -1, seenURL: -1}
	seen1, seen2 := answers(g1, lent[g1], never), answers(g2, lent[g2], never)

	get := func(ip string) (string, error) {
		out, err := client.run(nil, "curl", "-sS", "-m", "3", "http://"+ip+"/")
		return strings.TrimSpace(out), err
	}
	reaches := func(ip, id string) {
		t.Helper()
		eventually(t, ip+" reaches "+id, time.Minute, func() error {
			if out, err := get(ip); err != nil || !strings.Contains(out, id) {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
	}
	silent := func(ip string) {
		t.Helper()
		eventually(t, ip+" answers no more", 30*time.Second, func() error {
			if out, err := get(ip); err == nil {
				return fmt.Errorf("answered %q", out)
			}
			return nil
		})
	}
	publicOf := func(id string) string {
		var ip string
		jsonField(t, aws("ec2", "describe-instances", "--instance-ids", id, "--query", "Reservations[0].Instances[0].PublicIpAddress"), &ip)
		return ip
	}
	reaches(lent[g1], g1)
	reaches(lent[g2], g2)

	var eip struct{ AllocationId, PublicIp string }
	jsonField(t, aws("ec2", "allocate-address"), &eip)
	var assoc struct{ AssociationId string }
	jsonField(t, aws("ec2", "associate-address", "--allocation-id", eip.AllocationId, "--instance-id", g1), &assoc)
	if got := publicOf(g1); got != eip.PublicIp {
		t.Errorf("describe-instances after associate: %q, want %s", got, eip.PublicIp)
	}
	reaches(eip.PublicIp, g1)
	silent(lent[g1])
	seen1 = answers(g1, eip.PublicIp, seen1)
	// Without AllowReassociation an address in use is refused.
	if out, err := try("ec2", "associate-address", "--allocation-id", eip.AllocationId, "--instance-id", g2); err == nil ||
		!strings.Contains(out, "Resource.AlreadyAssociated") {
		t.Errorf("re-association without allow-reassociation: %v %s", err, out)
	}
	jsonField(t, aws("ec2", "associate-address", "--allocation-id", eip.AllocationId, "--instance-id", g2, "--allow-reassociation"), &assoc)
	reaches(eip.PublicIp, g2)
	seen2 = answers(g2, eip.PublicIp, seen2)
	again := publicOf(g1)
	if again == "" || again == eip.PublicIp {
		t.Fatalf("%s has no public address after its elastic IP moved: %q", g1, again)
	}
	reaches(again, g1)
	answers(g1, again, seen1)
	if out, err := fe.euca("address", "list"); err != nil || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(eip.PublicIp)+`\s+admin .*`+eip.AllocationId+`\s+`+g2+`$`).MatchString(out) {
		t.Errorf("euca address list: %v\n%s", err, out)
	}

	aws("ec2", "disassociate-address", "--association-id", assoc.AssociationId)
	silent(eip.PublicIp)
	if back := publicOf(g2); back == "" || back == eip.PublicIp {
		t.Errorf("%s has no public address after disassociation: %q", g2, back)
	} else {
		reaches(back, g2)
		answers(g2, back, seen2)
	}
	aws("ec2", "release-address", "--allocation-id", eip.AllocationId)
	var left []any
	jsonField(t, aws("ec2", "describe-addresses", "--query", "Addresses"), &left)
	if len(left) != 0 {
		t.Errorf("addresses after release: %v", left)
	}
	aws("ec2", "terminate-instances", "--instance-ids", g1, g2)
	eventually(t, "guests terminated", 2*time.Minute, func() error { return wantStates(aws, []string{g1, g2}, "terminated", 2) })
	if out, _ := fe.euca("address", "list"); strings.Contains(out, "(lent)") {
		t.Errorf("terminated instances still hold addresses:\n%s", out)
	}
}
