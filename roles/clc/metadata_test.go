package clc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/logbuf"
	"github.com/euca-cloud/euca/roles/nc/ncapi"
	"github.com/euca-cloud/euca/store"
)

// imdsClient speaks to the metadata handler as a guest at addr would.
type imdsClient struct {
	t     *testing.T
	h     http.Handler
	addr  string
	token string   // sent with every GET when set
	log   []string // "GET /path status", in order
}

func (c *imdsClient) do(method, path string, header map[string]string) (int, string) {
	c.t.Helper()
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
	r.RemoteAddr = c.addr + ":40000"
	if c.token != "" {
		r.Header.Set(tokenHeader, c.token)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	c.log = append(c.log, method+" "+path+" "+strconv.Itoa(w.Code))
	return w.Code, string(body)
}

func (c *imdsClient) get(path string) (int, string) { return c.do(http.MethodGet, path, nil) }

// crawl is cloud-init 22.4's MetadataMaterializer (ec2.py): a listing's
// lines ending in "/" are directories, crawled depth-first; "N=name" lines
// are public keys, fetched at N/openssh-key; values that look like JSON
// are parsed, and values with a line break become lists of lines.
func (c *imdsClient) crawl(base string) map[string]any {
	c.t.Helper()
	code, blob := c.get(base)
	if code != http.StatusOK {
		c.t.Fatalf("GET %s: %d", base, code)
	}
	out := map[string]any{}
	var children []string
	leaves := map[string]string{}
	for _, field := range strings.Split(blob, "\n") {
		field = strings.TrimSpace(field)
		name := strings.TrimSuffix(field, "/")
		if field == "" || name == "" || name == "security-credentials" {
			continue
		}
		if strings.HasSuffix(field, "/") {
			children = append(children, name)
			continue
		}
		resource := name
		if ident, sub, ok := strings.Cut(field, "="); ok {
			if _, err := strconv.Atoi(ident); err == nil {
				resource, name = ident+"/openssh-key", sub
			}
		}
		leaves[name] = resource
	}
	for _, ch := range children {
		out[ch] = c.crawl(base + ch + "/")
	}
	for name, resource := range leaves {
		code, v := c.get(base + resource)
		if code != http.StatusOK {
			c.t.Fatalf("GET %s%s: %d", base, resource, code)
		}
		switch {
		case strings.HasPrefix(v, "{"):
			var doc map[string]any
			if err := json.Unmarshal([]byte(v), &doc); err != nil {
				c.t.Fatalf("%s%s: %v", base, resource, err)
			}
			out[name] = doc
		case strings.Contains(v, "\n"): // Python's splitlines
			out[name] = strings.Split(strings.TrimSuffix(v, "\n"), "\n")
		default:
			out[name] = v
		}
	}
	return out
}

// dig follows keys through nested maps.
func dig(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a directory in %v", k, v)
		}
		if v, ok = mm[k]; !ok {
			t.Fatalf("no %s among %v", strings.Join(keys, "/"), mm)
		}
	}
	return v
}

func metadataFixture(t *testing.T) (*instFixture, store.Instance) {
	t.Helper()
	f := newInstFixture(t, 10)
	spec := f.spec(1, 1)
	spec.KeyName = "mykey"
	spec.UserData = []byte("#cloud-config\nhostname: web\n")
	insts, err := f.c.RunInstances(context.Background(), f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	return f, f.running(t, insts[0].ID)
}

// running has the fake cluster report the instance running, and returns
// it as the cloud controller then records it.
func (f *instFixture) running(t *testing.T, id string) store.Instance {
	t.Helper()
	f.cl.set(id, ncapi.StateRunning, "")
	f.reconcile(t)
	in, err := f.c.store.Instance(context.Background(), f.alice, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != store.InstanceRunning {
		t.Fatalf("%s is %s, not running", id, in.State)
	}
	return in
}

// TestCloudInitCrawl replays what cloud-init 22.4's EC2 datasource asks,
// in order, as a guest not identified as AWS (plain GETs) and as one that
// is (a token first, then every GET with it).
func TestCloudInitCrawl(t *testing.T) {
	f, in := metadataFixture(t)
	for _, aws := range []bool{false, true} {
		t.Run("aws="+strconv.FormatBool(aws), func(t *testing.T) {
			c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
			if aws {
				code, tok := c.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "21600"})
				if code != http.StatusOK || tok == "" {
					t.Fatalf("token: %d %q", code, tok)
				}
				c.token = tok
			}
			// wait_for_metadata_service, then get_metadata_api_version.
			if code, id := c.get("/2009-04-04/meta-data/instance-id"); code != http.StatusOK || id != in.ID {
				t.Fatalf("probe: %d %q", code, id)
			}
			if code, id := c.get("/2021-03-23/meta-data/instance-id"); code != http.StatusOK || id != in.ID {
				t.Fatalf("api version: %d %q", code, id)
			}
			if code, ud := c.get("/2021-03-23/user-data"); code != http.StatusOK || ud != "#cloud-config\nhostname: web\n" {
				t.Fatalf("user-data: %d %q", code, ud)
			}
			md := c.crawl("/2021-03-23/meta-data/")
			identity := c.crawl("/2021-03-23/dynamic/instance-identity/")

			mac := in.MAC
			checks := map[string]any{
				"ami-id": in.ImageID, "instance-id": in.ID, "instance-type": "m1.small", "local-ipv4": in.PrivateIP,
				"reservation-id": in.ReservationID, "ami-launch-index": "0", "kernel-id": in.KernelID, "ramdisk-id": in.RamdiskID,
				"local-hostname": privateDNSName("us-east-1", in.PrivateIP), "mac": mac, "security-groups": "default",
				"ami-manifest-path": "b/debian.manifest.xml", "instance-action": "none", "public-ipv4": in.PrivateIP,
			}
			for k, want := range checks {
				if got := dig(t, md, k); got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			if got, ok := dig(t, md, "public-keys", "mykey").([]string); !ok || len(got) != 1 || got[0] != f.key.PublicKey {
				t.Errorf("public key %q", got)
			}
			if got := dig(t, md, "placement", "availability-zone"); got != "us-east-1a" {
				t.Errorf("zone %v", got)
			}
			if got := dig(t, md, "placement", "region"); got != "us-east-1" {
				t.Errorf("region %v", got)
			}
			if got := dig(t, md, "block-device-mapping", "root"); got != "/dev/sda1" {
				t.Errorf("root device %v", got)
			}
			iface := dig(t, md, "network", "interfaces", "macs", mac).(map[string]any)
			for k, want := range map[string]string{
				"device-number": "0", "interface-id": in.ENIID, "local-ipv4s": in.PrivateIP, "mac": mac, "owner-id": in.AccountID,
				"subnet-id": in.SubnetID, "subnet-ipv4-cidr-block": "172.31.0.0/16", "vpc-id": in.VPCID,
				"vpc-ipv4-cidr-block": "172.31.0.0/16", "vpc-ipv4-cidr-blocks": "172.31.0.0/16",
				"security-group-ids": in.Groups[0].ID, "security-groups": "default",
				"local-hostname": privateDNSName("us-east-1", in.PrivateIP),
			} {
				if iface[k] != want {
					t.Errorf("macs/%s/%s = %v, want %s", mac, k, iface[k], want)
				}
			}
			doc := dig(t, identity, "document").(map[string]any)
			for k, want := range map[string]any{
				"accountId": in.AccountID, "instanceId": in.ID, "imageId": in.ImageID, "instanceType": "m1.small",
				"availabilityZone": "us-east-1a", "region": "us-east-1", "privateIp": in.PrivateIP, "version": "2017-09-30",
				"architecture": "x86_64", "kernelId": in.KernelID, "ramdiskId": in.RamdiskID,
			} {
				if doc[k] != want {
					t.Errorf("identity %s = %v, want %v", k, doc[k], want)
				}
			}
			if _, err := time.Parse(time.RFC3339, doc["pendingTime"].(string)); err != nil {
				t.Errorf("pendingTime: %v", err)
			}
			for _, l := range c.log {
				if !strings.HasSuffix(l, " 200") {
					t.Errorf("not answered: %s", l)
				}
			}
		})
	}
}

// TestMetadataBlockDevices: block-device-mapping names the disks the node
// attaches by the letters the guest's kernel gives them (vdb, vdc), as sdb
// and sdc, which cloud-init maps back to vdb and vdc: the ephemeral disk
// lands on /mnt and swap is turned on. Partition names (sda2, sda3) match
// no disk a guest has.
func TestMetadataBlockDevices(t *testing.T) {
	f, in := metadataFixture(t)
	c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
	want := map[string]string{"ami": "sda1", "ephemeral0": "sdb", "root": "/dev/sda1", "swap": "sdc"}
	if _, list := c.get("/latest/meta-data/block-device-mapping/"); list != "ami\nephemeral0\nroot\nswap" {
		t.Errorf("listing %q", list)
	}
	for name, dev := range want {
		if code, got := c.get("/latest/meta-data/block-device-mapping/" + name); code != http.StatusOK || got != dev {
			t.Errorf("%s: %d %q, want %q", name, code, got, dev)
		}
	}
	// No swap disk (SWAP_SIZE=0): no swap entry.
	f.c.cfg.SwapSizeMB = 0
	if _, list := c.get("/latest/meta-data/block-device-mapping/"); list != "ami\nephemeral0\nroot" {
		t.Errorf("listing without swap %q", list)
	}
	if code, _ := c.get("/latest/meta-data/block-device-mapping/swap"); code != http.StatusNotFound {
		t.Errorf("swap without a swap disk: %d", code)
	}
}

func TestMetadataListings(t *testing.T) {
	f, in := metadataFixture(t)
	c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
	cases := []struct {
		path string
		code int
		body string // "" : not checked
	}{
		{"/", 200, ""},
		{"/latest", 200, "dynamic\nmeta-data\nuser-data"},
		{"/latest/", 200, "dynamic\nmeta-data\nuser-data"},
		{"/2030-01-01/meta-data/instance-id", 200, in.ID},
		{"/1.0/meta-data/instance-id", 200, in.ID},
		{"/foo/meta-data/instance-id", 404, ""},
		{"/latest/meta-data/public-keys/", 200, "0=mykey"},
		{"/latest/meta-data/public-keys/0/", 200, "openssh-key"},
		{"/latest/meta-data/public-keys/0/openssh-key", 200, f.key.PublicKey + "\n"},
		{"/latest/meta-data/placement", 200, "availability-zone\navailability-zone-id\nregion"},
		{"/latest/meta-data/block-device-mapping/", 200, "ami\nephemeral0\nroot\nswap"},
		{"/latest/meta-data/services/domain", 200, "amazonaws.com"},
		{"/latest/meta-data/network/interfaces/macs/", 200, in.MAC + "/"},
		{"/latest/meta-data/instance-id/extra", 404, ""},
		{"/latest/meta-data/nothing", 404, ""},
		{"/latest/dynamic/", 200, "instance-identity/"},
		{"/latest/dynamic/instance-identity/", 200, "document"},
	}
	for _, tc := range cases {
		code, body := c.get(tc.path)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	code, body := c.get("/latest/meta-data/")
	if code != 200 || !strings.Contains(body, "\nnetwork/\n") || !strings.Contains(body, "\npublic-keys/\n") || strings.HasSuffix(body, "\n") {
		t.Errorf("meta-data/ listing: %d %q", code, body)
	}
	if code, _ := c.do(http.MethodPost, "/latest/meta-data/", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
}

func TestMetadataUnknownCallers(t *testing.T) {
	f, in := metadataFixture(t)
	h := f.c.MetadataHandler()
	for _, addr := range []string{"172.31.200.200", "10.0.0.1", "::1"} {
		c := &imdsClient{t: t, h: h, addr: addr}
		if addr == "::1" {
			c.addr = "[::1]"
		}
		for _, p := range []string{"/", "/latest/meta-data/instance-id", "/latest/user-data"} {
			if code, body := c.get(p); code != http.StatusNotFound || strings.Contains(body, in.ID) {
				t.Errorf("%s GET %s: %d %q", addr, p, code, body)
			}
		}
		if code, _ := c.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "60"}); code != http.StatusNotFound {
			t.Errorf("%s PUT token: %d", addr, code)
		}
	}
	// A shutting-down, then terminated, instance's address no longer
	// answers.
	if _, err := f.c.TerminateInstances(context.Background(), f.alice, []string{in.ID}); err != nil {
		t.Fatal(err)
	}
	refused(t, h, in, store.InstanceShuttingDown)
	f.cl.set(in.ID, "", "")
	f.reconcile(t)
	refused(t, h, in, store.InstanceTerminated)
}

// refused checks that nothing is answered to in's address, in is in state.
func refused(t *testing.T, h http.Handler, in store.Instance, state string) {
	t.Helper()
	c := &imdsClient{t: t, h: h, addr: in.PrivateIP}
	for _, p := range []string{"/latest/meta-data/instance-id", "/latest/user-data", "/latest/"} {
		if code, body := c.get(p); code != http.StatusNotFound || strings.Contains(body, in.ID) || strings.Contains(body, "cloud-config") {
			t.Errorf("%s instance: GET %s: %d %q", state, p, code, body)
		}
	}
	if code, _ := c.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "60"}); code != http.StatusNotFound {
		t.Errorf("%s instance: PUT token: %d", state, code)
	}
}

// TestMetadataRunningOnly: only a running instance's address is answered.
// A host that takes the address of an instance still pending (its guest
// not booted yet) must not read its user data, which often holds secrets;
// neither may one that takes a stopping or stopped instance's.
func TestMetadataRunningOnly(t *testing.T) {
	ctx := context.Background()
	defer func(w time.Duration) { pendingWait = w }(pendingWait)
	pendingWait = 0
	f := newInstFixture(t, 10)
	spec := f.spec(1, 1)
	spec.UserData = []byte("#cloud-config\npassword: s3cret\n")
	insts, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	in := insts[0]
	h := f.c.MetadataHandler()
	refused(t, h, in, store.InstancePending)

	in = f.running(t, in.ID)
	c := &imdsClient{t: t, h: h, addr: in.PrivateIP}
	if code, ud := c.get("/latest/user-data"); code != http.StatusOK || ud != string(spec.UserData) {
		t.Fatalf("running instance: user-data %d %q", code, ud)
	}

	for _, state := range []string{store.InstanceStopping, store.InstanceStopped} {
		if _, err := f.c.store.SetInstanceState(ctx, in.ID, nil, store.StateChange{State: state}); err != nil {
			t.Fatal(err)
		}
		refused(t, h, in, state)
	}
}

// TestMetadataPendingWaits: a pending instance's guest that asks before the
// cloud controller has seen it running (it boots faster than the report
// arrives) is answered once it has, not refused: cloud-init on EC2 gives
// up on any HTTP error.
func TestMetadataPendingWaits(t *testing.T) {
	defer func(w time.Duration, f func()) { pendingWait, waitingForRun = w, f }(pendingWait, waitingForRun)
	pendingWait = time.Minute // an upper bound; the test ends as soon as the state changes
	waiting := make(chan struct{})
	waitingForRun = func() { close(waiting) }

	f := newInstFixture(t, 10)
	insts, err := f.c.RunInstances(context.Background(), f.alice, f.spec(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	in := insts[0]
	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() {
		c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
		code, body := c.get("/latest/meta-data/instance-id")
		got <- answer{code, body}
	}()
	select {
	case <-waiting:
	case a := <-got:
		t.Fatalf("pending: answered %d %q without waiting", a.code, a.body)
	}
	f.running(t, in.ID)
	if a := <-got; a.code != http.StatusOK || a.body != in.ID {
		t.Fatalf("pending, then running: %d %q", a.code, a.body)
	}
}

// TestMetadataDebugLog: each request is logged at debug level with the
// instance and the path, never the user data or a token.
func TestMetadataDebugLog(t *testing.T) {
	f, in := metadataFixture(t)
	var buf logbuf.Buffer
	f.c.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: in.PrivateIP}
	code, tok := c.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "60"})
	if code != http.StatusOK {
		t.Fatalf("token: %d", code)
	}
	c.token = tok
	if code, _ := c.get("/latest/user-data"); code != http.StatusOK {
		t.Fatalf("user-data: %d", code)
	}
	stranger := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: "10.9.9.9"}
	stranger.get("/latest/meta-data/")
	out := buf.String()
	for _, want := range []string{
		"level=DEBUG msg=\"metadata request\" instance=" + in.ID + " caller=" + in.PrivateIP + ":40000 method=PUT path=/latest/api/token status=200",
		"instance=" + in.ID + " caller=" + in.PrivateIP + ":40000 method=GET path=/latest/user-data status=200",
		"instance=\"\" caller=10.9.9.9:40000 method=GET path=/latest/meta-data/ status=404",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{tok, "hostname: web"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
}

func TestMetadataUserDataNone(t *testing.T) {
	f := newInstFixture(t, 10)
	insts, err := f.c.RunInstances(context.Background(), f.alice, f.spec(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	f.running(t, insts[0].ID)
	c := &imdsClient{t: t, h: f.c.MetadataHandler(), addr: insts[0].PrivateIP}
	if code, _ := c.get("/2021-03-23/user-data"); code != http.StatusNotFound {
		t.Errorf("no user data: %d", code)
	}
	if _, body := c.get("/latest/"); body != "dynamic\nmeta-data" {
		t.Errorf("listing without user data: %q", body)
	}
	if code, _ := c.get("/latest/meta-data/public-keys/"); code != http.StatusNotFound {
		t.Errorf("public keys without a key: %d", code)
	}
}

func TestIMDSv2(t *testing.T) {
	ctx := context.Background()
	f, in := metadataFixture(t)
	h := f.c.MetadataHandler()
	c := &imdsClient{t: t, h: h, addr: in.PrivateIP}
	put := func(hdr map[string]string) (int, string) { return c.do(http.MethodPut, "/latest/api/token", hdr) }
	for _, ttl := range []string{"", "0", "21601", "-5", "abc"} {
		hdr := map[string]string{}
		if ttl != "" {
			hdr[tokenTTLHeader] = ttl
		}
		if code, _ := put(hdr); code != http.StatusBadRequest {
			t.Errorf("TTL %q: %d", ttl, code)
		}
	}
	if code, _ := put(map[string]string{tokenTTLHeader: "60", "X-Forwarded-For": "10.1.1.1"}); code != http.StatusForbidden {
		t.Errorf("PUT through a proxy: %d", code)
	}
	if code, _ := c.do(http.MethodPut, "/latest/meta-data/", map[string]string{tokenTTLHeader: "60"}); code != http.StatusNotFound {
		t.Errorf("PUT elsewhere: %d", code)
	}
	code, tok := put(map[string]string{tokenTTLHeader: "60"})
	if code != http.StatusOK {
		t.Fatalf("token: %d", code)
	}
	c.token = tok
	if code, id := c.get("/latest/meta-data/instance-id"); code != 200 || id != in.ID {
		t.Fatalf("GET with token: %d %q", code, id)
	}
	// A wrong token is refused, even where no token is needed.
	for _, bad := range []string{"garbage", tok + "x", strings.Replace(tok, ".", ".A", 1)} {
		c.token = bad
		if code, _ := c.get("/latest/meta-data/instance-id"); code != http.StatusUnauthorized {
			t.Errorf("token %q: %d", bad, code)
		}
	}
	// Another instance's token is not this one's.
	other, err := f.c.RunInstances(ctx, f.alice, f.spec(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	f.running(t, other[0].ID)
	c2 := &imdsClient{t: t, h: h, addr: other[0].PrivateIP, token: tok}
	if code, _ := c2.get("/latest/meta-data/instance-id"); code != http.StatusUnauthorized {
		t.Errorf("another instance's token: %d", code)
	}
	// Expired.
	c.token = tok
	old := timeNow
	timeNow = func() time.Time { return old().Add(61 * time.Second) }
	code, _ = c.get("/latest/meta-data/instance-id")
	timeNow = old
	if code != http.StatusUnauthorized {
		t.Errorf("expired token: %d", code)
	}
	// HttpTokens=required: no token, no answer; a token, an answer.
	spec := f.spec(1, 1)
	spec.Options.HTTPTokens = "required"
	req, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	f.running(t, req[0].ID)
	c3 := &imdsClient{t: t, h: h, addr: req[0].PrivateIP}
	if code, _ := c3.get("/latest/meta-data/instance-id"); code != http.StatusUnauthorized {
		t.Errorf("required without token: %d", code)
	}
	_, c3.token = c3.do(http.MethodPut, "/latest/api/token", map[string]string{tokenTTLHeader: "21600"})
	if code, id := c3.get("/latest/meta-data/instance-id"); code != 200 || id != req[0].ID {
		t.Errorf("required with token: %d %q", code, id)
	}
	// HttpEndpoint=disabled: nothing.
	spec.Options.HTTPTokens, spec.Options.HTTPEndpoint = "optional", "disabled"
	dis, err := f.c.RunInstances(ctx, f.alice, spec)
	if err != nil {
		t.Fatal(err)
	}
	f.running(t, dis[0].ID)
	c4 := &imdsClient{t: t, h: h, addr: dis[0].PrivateIP}
	if code, _ := c4.get("/latest/meta-data/instance-id"); code != http.StatusForbidden {
		t.Errorf("endpoint disabled: %d", code)
	}
}
