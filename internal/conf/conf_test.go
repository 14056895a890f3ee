package conf

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, src string) (*Config, []Diagnostic) {
	t.Helper()
	return Parse(strings.NewReader(src), "test.conf")
}

func entry(t *testing.T, c *Config, key string) Entry {
	t.Helper()
	for _, e := range c.Entries() {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no entry %s", key)
	return Entry{}
}

func TestDefaults(t *testing.T) {
	c := Defaults()
	home := "/"
	if os.Geteuid() != 0 {
		h, err := os.UserHomeDir()
		if err != nil {
			t.Skip("no home directory")
		}
		home = filepath.Join(h, ".euca")
	}
	want := &Config{
		Home: home, EucaUser: "root", WSSecurity: true, LogLevel: slog.LevelDebug,
		CloudPort: 8773, CloudSSLPort: 8443, MetadataPort: 8779, CCPort: 8774, NCPort: 8775,
		SchedPolicy: "GREEDY", PowerIdleThresh: 300 * time.Second, PowerWakeThresh: 300 * time.Second,
		NCService: "axis2/services/EucalyptusNC", Hypervisor: "auto", SwapSizeMB: 512,
		InstancePath: filepath.Join(home, "var/lib/eucalyptus/instances"), NCCacheSizeMB: 99999,
		VNetMode: "MANAGED-NOVLAN", VNetSubnet: netip.MustParsePrefix("172.31.0.0/16"),
		VNetBroadcast: netip.MustParseAddr("172.31.255.255"), VNetAddrsPerNet: 32,
		Region: "us-east-1", ClusterName: "us-east-1a",
		WalrusBucketsPath: filepath.Join(home, "var/lib/eucalyptus/bucket"),
		WalrusMaxBuckets:  5, WalrusMaxBucketSizeMB: 5120, WalrusImageCacheMB: 30720,
		SCVolumesPath: filepath.Join(home, "var/lib/eucalyptus/volumes"), SCNBDPort: 10809,
	}
	if got, w := c.Entries(), want.Entries(); !slices.Equal(got, w) {
		t.Errorf("Defaults():\n%v\nwant\n%v", got, w)
	}
	if c.DisableEBS || c.DisableDNS || c.ManualInstancesCleanup || c.MaxMemMB != 0 || c.MaxCores != 0 ||
		c.MaxDiskGB != 0 || c.Nodes != nil || c.VNetRouter.IsValid() || c.Path != "" {
		t.Errorf("Defaults() has a value it should not: %+v", c)
	}
	for _, e := range c.Entries() {
		if e.Source != FromDefault {
			t.Errorf("%s: source %v", e.Key, e.Source)
		}
	}

	// An empty file is the defaults, with its name.
	p, diags := parse(t, "\n# nothing\n\n")
	if len(diags) != 0 || p.Path != "test.conf" || !slices.Equal(p.Entries(), c.Entries()) {
		t.Errorf("empty file: %v %v", diags, p.Entries())
	}
}

func TestDirs(t *testing.T) {
	c, _ := parse(t, `EUCALYPTUS="/"`)
	if c.DataDir() != "/var/lib/eucalyptus" || c.LogDir() != "/var/log/eucalyptus" || c.ConfDir() != "/etc/eucalyptus" ||
		c.InstancePath != "/var/lib/eucalyptus/instances" || c.WalrusBucketsPath != "/var/lib/eucalyptus/bucket" {
		t.Errorf("dirs under /: %s %s %s %s %s", c.DataDir(), c.LogDir(), c.ConfDir(), c.InstancePath, c.WalrusBucketsPath)
	}
	c, _ = parse(t, `EUCALYPTUS="/opt/euca/"`)
	if c.Home != "/opt/euca" || c.ConfDir() != "/opt/euca/etc/eucalyptus" {
		t.Errorf("Home %q ConfDir %q", c.Home, c.ConfDir())
	}
}

// Syntax: what the value of a key is, however it is written.
func TestSyntax(t *testing.T) {
	tests := []struct {
		name, src, key, want string
		line                 int
		diags                []wantDiag
	}{
		{"double quotes", `CC_PORT="9000"`, "CC_PORT", "9000", 1, nil},
		{"single quotes", `CC_PORT='9000'`, "CC_PORT", "9000", 1, nil},
		{"unquoted", "CC_PORT=9000", "CC_PORT", "9000", 1, nil},
		{"unquoted, blank after =", "NODES= a b", "NODES", "a b", 1, nil},
		{"unquoted list keeps going", "NODES=a b  c\t d", "NODES", "a b c d", 1, nil},
		{"trailing comment", `CC_PORT="9000" # the CC`, "CC_PORT", "9000", 1, nil},
		{"comment after unquoted", "CC_PORT=9000 # the CC", "CC_PORT", "9000", 1, nil},
		{"# inside a word is no comment", "NC_SERVICE=a#b", "NC_SERVICE", "a#b", 1, nil},
		{"# inside quotes", `NC_SERVICE="a #b"`, "NC_SERVICE", "a #b", 1, nil},
		{"empty means absent", `CC_PORT=""`, "CC_PORT", "8774", 0, nil},
		{"blank means absent", `NODES="  "`, "NODES", "", 0, nil},
		{"export prefix", `export CC_PORT="9000"`, "CC_PORT", "9000", 1, nil},
		{"export of a set key", "CC_PORT=9000\nexport CC_PORT\n", "CC_PORT", "9000", 1, nil},
		{"space around =", `CC_PORT = "9000"`, "CC_PORT", "9000", 1, nil},
		{"leading blanks", "   CC_PORT=9000", "CC_PORT", "9000", 1, nil},
		{"CRLF", "# x\r\nCC_PORT=\"9000\"\r\nNC_PORT=1\r\n", "CC_PORT", "9000", 2, nil},
		{"BOM", "\uFEFFCC_PORT=9000", "CC_PORT", "9000", 1, nil},
		{"concatenation", `NC_SERVICE=a"b c"'d'`, "NC_SERVICE", "ab cd", 1, nil},
		{"backslash escapes outside quotes", `NC_SERVICE=a\ b\"`, "NC_SERVICE", `a b"`, 1, nil},
		{"backslash inside double quotes", `NC_SERVICE="a\"b\\c\$d\n"`, "NC_SERVICE", `a"b\c$d\n`, 1, nil},
		{"backslash inside single quotes", `NC_SERVICE='a\b'`, "NC_SERVICE", `a\b`, 1, nil},
		{"backslash-newline", "NODES=a \\\n  b\nCC_PORT=1", "NODES", "a b", 1, nil},
		{"backslash-newline in quotes", "NODES=\"a \\\nb\"", "NODES", "a b", 1, nil},
		{"quoted value over lines", "NODES=\"a\n   b\n\tc\"\nCC_PORT=1", "NODES", "a b c", 1, nil},
		{"quoted over lines, line numbers go on", "NODES=\"a\nb\"\nCC_PORT='x'", "CC_PORT", "8774", 0,
			[]wantDiag{{3, Error, "CC_PORT", "x", "not a port"}}},
		{"typographic double quotes", "VNET_MODE=”STATIC”", "VNET_MODE", "STATIC", 1,
			[]wantDiag{{1, Warning, "VNET_MODE", "STATIC", "typographic quotes (”) read as plain quotes"}}},
		{"typographic pair", "VNET_MODE=“STATIC”", "VNET_MODE", "STATIC", 1,
			[]wantDiag{{1, Warning, "VNET_MODE", "STATIC", "typographic quotes (“”) read as plain quotes"}}},
		{"typographic single quotes", "VNET_MODE=‘STATIC’", "VNET_MODE", "STATIC", 1,
			[]wantDiag{{1, Warning, "VNET_MODE", "STATIC", "typographic quotes (‘’) read as plain quotes"}}},
		{"mixed quotes pair up", "VNET_MODE=\"STATIC”", "VNET_MODE", "STATIC", 1,
			[]wantDiag{{1, Warning, "VNET_MODE", "STATIC", "(”)"}}},
		{"one warning per line", "NODES=”a” ”b” “c”", "NODES", "a b c", 1,
			[]wantDiag{{1, Warning, "NODES", "a b c", "(”“)"}}},
		{"typographic quotes inside ASCII single quotes are text", `NC_SERVICE='a”b'`, "NC_SERVICE", "a”b", 1, nil},
		{"apostrophe inside double quotes is text", `NC_SERVICE="it’s"`, "NC_SERVICE", "it’s", 1, nil},
		{"ideographic blank separates", "NODES=a\u3000b", "NODES", "a b", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := parse(t, tc.src)
			checkDiags(t, diags, tc.diags)
			e := entry(t, c, tc.key)
			if e.Value != tc.want || e.Line != tc.line {
				t.Errorf("%s = %q (line %d), want %q (line %d)", tc.key, e.Value, e.Line, tc.want, tc.line)
			}
		})
	}
}

func TestExpansion(t *testing.T) {
	tests := []struct {
		name, src, key, want string
		diags                []wantDiag
	}{
		{"${EUCALYPTUS}", "EUCALYPTUS=\"/opt/eucalyptus\"\nINSTANCE_PATH=\"${EUCALYPTUS}/var/lib/eucalyptus/instances\"",
			"INSTANCE_PATH", "/opt/eucalyptus/var/lib/eucalyptus/instances", nil},
		{"$EUCALYPTUS unbraced", "EUCALYPTUS=/srv\nWALRUS_BUCKETS_PATH=$EUCALYPTUS/b", "WALRUS_BUCKETS_PATH", "/srv/b", nil},
		{"EUCALYPTUS=/ gives no double slash", "EUCALYPTUS=\"/\"\nINSTANCE_PATH=\"${EUCALYPTUS}/var/lib/eucalyptus/instances\"",
			"INSTANCE_PATH", "/var/lib/eucalyptus/instances", nil},
		{"an unknown helper key", "BASE=/srv\nINSTANCE_PATH=${BASE}/i", "INSTANCE_PATH", "/srv/i",
			[]wantDiag{{1, Warning, "BASE", "", "unknown key"}}},
		{"later value wins, as in sh", "EUCALYPTUS=/a\nINSTANCE_PATH=$EUCALYPTUS/i\nEUCALYPTUS=/b", "INSTANCE_PATH", "/a/i",
			[]wantDiag{{3, Warning, "EUCALYPTUS", "", "set again (before on line 1)"}}},
		{"not in single quotes", "NC_SERVICE='$EUCALYPTUS'", "NC_SERVICE", "$EUCALYPTUS", nil},
		{"escaped", `NC_SERVICE="\$EUCALYPTUS"`, "NC_SERVICE", "$EUCALYPTUS", nil},
		{"lone dollar", "NC_SERVICE=a$ b$", "NC_SERVICE", "a$ b$", nil},
		{"default of a known key not set", "CC_PORT=1$NC_PORT", "CC_PORT", "18775", nil},
		{"known key set only later", "INSTANCE_PATH=${EUCALYPTUS}/i\nEUCALYPTUS=/opt", "INSTANCE_PATH", "/opt/i",
			// The default home is used on line 1; the report shows the path that results.
			[]wantDiag{{1, Warning, "INSTANCE_PATH", "", "$EUCALYPTUS is set only later (line 2); its default"}}},
		{"unknown variable", "INSTANCE_PATH=/x${NOPE}/i", "INSTANCE_PATH", "/x/i",
			[]wantDiag{{1, Warning, "INSTANCE_PATH", "", "$NOPE is not set above this line; expanded to nothing"}}},
		{"shell forms are kept", "NC_SERVICE=${A:-b}", "NC_SERVICE", "${A:-b}",
			[]wantDiag{{1, Warning, "NC_SERVICE", "${A:-b}", "kept as written"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := parse(t, tc.src)
			checkDiags(t, diags, tc.diags)
			got := entry(t, c, tc.key).Value
			if tc.name == "known key set only later" {
				tc.want = filepath.Join(Defaults().Home, "i")
			}
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// Every class of invalid value: an Error naming key, value and line, and
// the field keeps its default.
func TestInvalidValues(t *testing.T) {
	tests := []struct {
		src   string
		diags []wantDiag
	}{
		{"MAX_MEM=\"lots\"", []wantDiag{{1, Error, "MAX_MEM", "lots", "not a whole number of megabytes"}}},
		{"MAX_CORES=-2", []wantDiag{{1, Error, "MAX_CORES", "-2", "must not be negative"}}},
		{"MAX_DISK=99999999999999999999", []wantDiag{{1, Error, "MAX_DISK", "99999999999999999999", "too large"}}},
		{"\n\nVNET_MODE=\"BOGUS\"", []wantDiag{{3, Error, "VNET_MODE", "BOGUS",
			"not a network mode (SYSTEM, STATIC, MANAGED, MANAGED-NOVLAN)"}}},
		{"SCHEDPOLICY=FASTEST", []wantDiag{{1, Error, "SCHEDPOLICY", "FASTEST", "not a scheduling policy (GREEDY, ROUNDROBIN, POWERSAVE)"}}},
		{"HYPERVISOR=vmware", []wantDiag{{1, Error, "HYPERVISOR", "vmware", "not a hypervisor (kvm, qemu, xen)"}}},
		{"LOGLEVEL=LOUD", []wantDiag{{1, Error, "LOGLEVEL", "LOUD", "not a log level"}}},
		{"DISABLE_EBS=maybe", []wantDiag{{1, Error, "DISABLE_EBS", "maybe", "not Y or N"}}},
		{"MANUAL_INSTANCES_CLEANUP=2", []wantDiag{{1, Error, "MANUAL_INSTANCES_CLEANUP", "2", "not Y or N"}}},
		{"CLOUD_PORT=0", []wantDiag{{1, Error, "CLOUD_PORT", "0", "not a port number (1-65535)"}}},
		{"NC_PORT=65536", []wantDiag{{1, Error, "NC_PORT", "65536", "not a port number"}}},
		{"POWER_IDLETHRESH=5m", []wantDiag{{1, Error, "POWER_IDLETHRESH", "5m", "not a whole number of seconds"}}},
		{"POWER_WAKETHRESH=9999999999999", []wantDiag{{1, Error, "POWER_WAKETHRESH", "9999999999999", "too large"}}},
		{"VNET_DNS=192.168.1.300", []wantDiag{{1, Error, "VNET_DNS", "192.168.1.300", "not an IPv4 address"}}},
		{"VNET_ROUTER=fe80::1", []wantDiag{{1, Error, "VNET_ROUTER", "fe80::1", "not an IPv4 address"}}},
		{"VNET_CLOUDIP=cloud", []wantDiag{{1, Error, "VNET_CLOUDIP", "cloud", "not an IPv4 address"}}},
		{"VNET_LOCALIP=10.1.1", []wantDiag{{1, Error, "VNET_LOCALIP", "10.1.1", "not an IPv4 address"}}},
		{"VNET_SUBNET=10.0.0.0/8", []wantDiag{{1, Error, "VNET_SUBNET", "10.0.0.0/8", "give the mask in VNET_NETMASK"}}},
		{"VNET_NETMASK=255.0.255.0", []wantDiag{{1, Error, "VNET_NETMASK", "255.0.255.0", "one-bits must be contiguous"}}},
		{"VNET_NETMASK=0.0.0.0", []wantDiag{{1, Error, "VNET_NETMASK", "0.0.0.0", "leaves no network"}}},
		{"VNET_ADDRSPERNET=48", []wantDiag{{1, Error, "VNET_ADDRSPERNET", "48", "not a power of two of at least 4"}}},
		{"VNET_ADDRSPERNET=2", []wantDiag{{1, Error, "VNET_ADDRSPERNET", "2", "not a power of two of at least 4"}}},
		{"VNET_NETMASK=255.255.255.0\nVNET_ADDRSPERNET=512", []wantDiag{{2, Error, "VNET_ADDRSPERNET", "512",
			"more than VNET_SUBNET/VNET_NETMASK (172.31.0.0/24) holds (256 addresses)"}}},
		{"VNET_NETMASK=255.255.255.252", []wantDiag{{1, Error, "VNET_NETMASK", "255.255.255.252", "VNET_ADDRSPERNET 32 is more than"}}},
		{"VNET_BRIDGE=\"br 0\"", []wantDiag{{1, Error, "VNET_BRIDGE", "br 0", "not a network interface name"}}},
		{"VNET_PUBINTERFACE=averyveryverylongname", []wantDiag{{1, Error, "VNET_PUBINTERFACE", "averyveryverylongname", "not a network interface name"}}},
		{"EUCALYPTUS=opt/euca", []wantDiag{{1, Error, "EUCALYPTUS", "opt/euca", "not an absolute path"}}},
		{"INSTANCE_PATH=~/instances", []wantDiag{{1, Error, "INSTANCE_PATH", "~/instances", "not an absolute path"}}},
		{"REGION=US_East", []wantDiag{{1, Error, "REGION", "US_East", "not a region name"}}},
		{"CLUSTER_NAME=Zone.A", []wantDiag{{1, Error, "CLUSTER_NAME", "Zone.A", "not an availability zone name"}}},
		{"WALRUS_MAX_BUCKETS=five", []wantDiag{{1, Error, "WALRUS_MAX_BUCKETS", "five", "not a whole number"}}},
		{"NODES=\"node1 bad/host node1:0\"", []wantDiag{
			{1, Error, "NODES", "bad/host", "not a host or host:port"},
			{1, Error, "NODES", "node1:0", "not a host or host:port"}}},
		{"NODES=\"node1 node2 …\"", []wantDiag{{1, Error, "NODES", "…", "not a host"}}},
		{"CLOUD_SSL_PORT=8773", []wantDiag{{1, Error, "CLOUD_SSL_PORT", "8773", "same port as CLOUD_PORT"}}},
		// Unterminated quote: the rest of the file is inside it, so nothing after it is read.
		{"CC_PORT=1\nNODES=\"a\nb\nNC_PORT=2\n", []wantDiag{{2, Error, "NODES", "", "quote \" opened on line 2 is never closed"}}},
		{"VNET_MODE=”STATIC", []wantDiag{{1, Error, "VNET_MODE", "", "quote ” opened on line 1 is never closed"}}},
		{"CC_PORT=1\nthis is prose\n[/etc/network/interfaces]\nNC_PORT=2", []wantDiag{
			{2, Error, "", "this is prose", `not a KEY="value" line`},
			{3, Error, "", "[/etc/network/interfaces]", `not a KEY="value" line`}}},
		{"VNET_MODE \"SYSTEM\"", []wantDiag{{1, Error, "", "VNET_MODE \"SYSTEM\"", `not a KEY="value" line`}}},
	}
	def := Defaults().Entries()
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			c, diags := parse(t, tc.src)
			checkDiags(t, diags, tc.diags)
			if !HasErrors(diags) {
				t.Error("HasErrors = false")
			}
			for i, e := range c.Entries() {
				// Lists keep their valid elements, and cross-key checks find values already read.
				kept := strings.Contains("NODES VNET_DNS CLOUD_SSL_PORT", e.Key) || strings.Contains(tc.diags[0].msg, "VNET_ADDRSPERNET") ||
					strings.Contains(tc.src, "\n")
				if e.Key == tc.diags[0].key && !kept && (e.Value != def[i].Value || e.Source != FromDefault) {
					t.Errorf("%s = %q (%v), want the default %q", e.Key, e.Value, e.Source, def[i].Value)
				}
			}
		})
	}
}

// Lists: the ellipsis of the 1.5 docs, ranges, pairs.
func TestLists(t *testing.T) {
	t.Run("public IPs and ranges", func(t *testing.T) {
		c, diags := parse(t, "VNET_PUBLICIPS=\"10.0.0.10-10.0.0.13 10.0.0.1\n  10.0.0.11 10.0.0.20-10.0.0.20 ...\"")
		checkDiags(t, diags, []wantDiag{
			{2, Warning, "VNET_PUBLICIPS", "10.0.0.11", "10.0.0.11 listed twice"},
			{2, Warning, "VNET_PUBLICIPS", "...", "dropped"},
		})
		want := []string{"10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.1", "10.0.0.20"}
		var got []string
		for _, a := range c.VNetPublicIPs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("VNetPublicIPs %v", got)
		}
		if e := entry(t, c, "VNET_PUBLICIPS"); e.Value != "10.0.0.10-10.0.0.13 10.0.0.1 10.0.0.20" {
			t.Errorf("entry %q", e.Value)
		}
	})
	t.Run("public IPs as CIDR blocks", func(t *testing.T) {
		// A /29's six host addresses, a /31 and a /32 whole, beside a range.
		c, diags := parse(t, "VNET_PUBLICIPS=\"10.0.1.8/29 10.0.2.0/31 10.0.3.7/32 10.0.4.1-10.0.4.2\"")
		checkDiags(t, diags, nil)
		want := []string{"10.0.1.9", "10.0.1.10", "10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14",
			"10.0.2.0", "10.0.2.1", "10.0.3.7", "10.0.4.1", "10.0.4.2"}
		var got []string
		for _, a := range c.VNetPublicIPs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("VNetPublicIPs %v", got)
		}
	})
	for _, tc := range []struct {
		src   string
		diags []wantDiag
	}{
		{"VNET_PUBLICIPS=10.0.1.9/29", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.1.9/29", "write 10.0.1.8/29"}}},
		{"VNET_PUBLICIPS=10.0.1.0/33", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.1.0/33", "not an IPv4 address, range or CIDR block"}}},
		{"VNET_PUBLICIPS=10.0.0.0/8", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.0.0/8", "more than 65536"}}},
		{"VNET_PUBLICIPS=\"10.0.0.1 10.0.0.…\"", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.0.…",
			`not an IPv4 address: "…" stood for "more of the same"`}}},
		{"VNET_PUBLICIPS=10.0.0.1…", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.0.1…", "not an IPv4 address"}}},
		{"VNET_DNS=\"10.0.0.1 …\"", []wantDiag{{1, Error, "VNET_DNS", "…", `"…" stood for`}}},
		{"VNET_ROUTER=192.168.1.…", []wantDiag{{1, Error, "VNET_ROUTER", "192.168.1.…", `"…" stood for`}}},
		{"VNET_PUBLICIPS=10.0.0.9-10.0.0.1", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.0.9-10.0.0.1", "range runs backwards"}}},
		{"VNET_PUBLICIPS=10.0.0.0-10.255.255.255", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.0.0-10.255.255.255", "more than 65536"}}},
		{"VNET_PUBLICIPS=10.0.0.1-x", []wantDiag{{1, Error, "VNET_PUBLICIPS", "10.0.0.1-x", "not an IPv4 address or range"}}},
		{"VNET_PUBLICIPS=172.31.0.5", []wantDiag{{1, Error, "VNET_PUBLICIPS", "172.31.0.5", "inside the private VNET_SUBNET"}}},
		{"VNET_MODE=STATIC\nVNET_PUBLICIPS=172.31.0.5", nil}, // unused outside the managed modes
		{"VNET_MACMAP=\"00:AA:DD:11:CE:FE=172.31.0.3\n 00:AA:DD:11:CE:FF\n00:AA:DD:11:CE:FD=172.31.0.4=x\"", []wantDiag{
			{2, Error, "VNET_MACMAP", "00:AA:DD:11:CE:FF", "not a MAC=IP pair (like 00:AA:DD:11:CE:FE=192.168.1.3)"},
			{3, Error, "VNET_MACMAP", "00:AA:DD:11:CE:FD=172.31.0.4=x", "not a MAC=IP pair"}}},
		{"VNET_MACMAP=\"00:AA:DD:11:CE=172.31.0.3 00:AA:DD:11:CE:FE=172.31.0.300\"", []wantDiag{
			{1, Error, "VNET_MACMAP", "00:AA:DD:11:CE=172.31.0.3", `"00:AA:DD:11:CE" is not a MAC address`},
			{1, Error, "VNET_MACMAP", "00:AA:DD:11:CE:FE=172.31.0.300", `"172.31.0.300" is not an IPv4 address`}}},
		{"VNET_MACMAP=\"00:AA:DD:11:CE:FE=172.31.0.3\n00:aa:dd:11:ce:fe=172.31.0.4 00:AA:DD:11:CE:FF=172.31.0.3\"", []wantDiag{
			{2, Error, "VNET_MACMAP", "00:aa:dd:11:ce:fe=172.31.0.4", "MAC address already mapped on line 1"},
			{2, Error, "VNET_MACMAP", "00:AA:DD:11:CE:FF=172.31.0.3", "IP address already mapped on line 1"}}},
		{"VNET_MACMAP=\"00:AA:DD:11:CE:FE=10.9.0.3 …\"", []wantDiag{
			{1, Warning, "VNET_MACMAP", "…", "list every MAC=IP pair"},
			{1, Warning, "VNET_MACMAP", "00:AA:DD:11:CE:FE=10.9.0.3", "outside VNET_SUBNET/VNET_NETMASK (172.31.0.0/16)"}}},
		{"NODES=\"a b a:8775 a\"", []wantDiag{{1, Warning, "NODES", "a", "listed twice"}}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, diags := parse(t, tc.src)
			checkDiags(t, diags, tc.diags)
		})
	}
	c, _ := parse(t, "NODES=\"node1 10.0.0.2:8775 [fe80::1]:9 host.example.com\"")
	if !slices.Equal(c.Nodes, []string{"node1", "10.0.0.2:8775", "[fe80::1]:9", "host.example.com"}) {
		t.Errorf("Nodes %q", c.Nodes)
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		src   string
		diags []wantDiag
		key   string
		want  string
	}{
		{"VNET_MOD=SYSTEM", []wantDiag{{1, Warning, "VNET_MOD", "", "unknown key, ignored"}}, "VNET_MODE", "MANAGED-NOVLAN"},
		{"vnet_mode=SYSTEM", []wantDiag{{1, Warning, "vnet_mode", "", "keys are upper case: VNET_MODE?"}}, "VNET_MODE", "MANAGED-NOVLAN"},
		{"CC_PORT=1\n\nCC_PORT=2\nCC_PORT=3", []wantDiag{
			{3, Warning, "CC_PORT", "", "set again (before on line 1); this later value wins"},
			{4, Warning, "CC_PORT", "", "set again (before on line 3)"}}, "CC_PORT", "3"},
		{"VNET_DHCPDAEMON=/usr/sbin/dhcpd3\nVNET_DHCPUSER=dhcpd", []wantDiag{
			{1, Warning, "VNET_DHCPDAEMON", "/usr/sbin/dhcpd3", "DHCP is built into euca"},
			{2, Warning, "VNET_DHCPUSER", "dhcpd", "no longer applies"}}, "VNET_DHCPUSER", "dhcpd"},
		{"VNET_INTERFACE=eth1\nVNET_PUBINTERFACE=eth0", []wantDiag{{1, Warning, "VNET_INTERFACE", "eth1", "deprecated: read as"}},
			"VNET_PRIVINTERFACE", "eth1"},
		{"VNET_INTERFACE=eth1\nVNET_PUBINTERFACE=eth0\nVNET_PRIVINTERFACE=eth2", []wantDiag{
			{1, Warning, "VNET_INTERFACE", "eth1", "deprecated, and ignored"}}, "VNET_PUBINTERFACE", "eth0"},
		{"HYPERVISOR=Xen", []wantDiag{{1, Warning, "HYPERVISOR", "Xen", "cannot drive xen"}}, "HYPERVISOR", "xen"},
		{"HYPERVISOR=not_configured", []wantDiag{{1, Warning, "HYPERVISOR", "not_configured", "read as auto"}}, "HYPERVISOR", "auto"},
		{"LOGLEVEL=TRACE", []wantDiag{{1, Warning, "LOGLEVEL", "TRACE", "read as DEBUG"}}, "LOGLEVEL", "DEBUG"},
		{"REGION=mycloud", []wantDiag{{1, Warning, "REGION", "mycloud", "not shaped like an AWS region"}}, "CLUSTER_NAME", "myclouda"},
		{"REGION=eu-lab-2\nCLUSTER_NAME=cluster1", []wantDiag{{2, Warning, "CLUSTER_NAME", "cluster1", `does not start with REGION "eu-lab-2"`}},
			"CLUSTER_NAME", "cluster1"},
		{"VNET_SUBNET=10.1.2.3\nVNET_NETMASK=255.255.255.0\nVNET_BROADCAST=10.1.3.255\nVNET_ROUTER=10.1.2.1", []wantDiag{
			{1, Warning, "VNET_SUBNET", "10.1.2.3", "read as network 10.1.2.0"},
			{3, Warning, "VNET_BROADCAST", "10.1.3.255", "outside VNET_SUBNET/VNET_NETMASK (10.1.2.0/24)"}}, "VNET_SUBNET", "10.1.2.0"},
		{"VNET_NETMASK=255.0.0.0", []wantDiag{{1, Warning, "VNET_NETMASK", "255.0.0.0", "172.31.0.0 has host bits set"}}, "VNET_SUBNET", "172.0.0.0"},
		{"CC_PORT=8775", []wantDiag{{1, Warning, "CC_PORT", "8775", "same port as NC_PORT"}}, "CC_PORT", "8775"},
		{"ENABLE_WS_SECURITY=N", []wantDiag{{1, Warning, "ENABLE_WS_SECURITY", "N", "for debugging only"}}, "ENABLE_WS_SECURITY", "N"},
		{"LOGLEVEL=warning", nil, "LOGLEVEL", "WARN"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			c, diags := parse(t, tc.src)
			checkDiags(t, diags, tc.diags)
			if HasErrors(diags) {
				t.Error("HasErrors = true")
			}
			if e := entry(t, c, tc.key); e.Value != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, e.Value, tc.want)
			}
		})
	}
}

func TestValues(t *testing.T) {
	c, diags := parse(t, `
EUCA_USER=eucalyptus
DISABLE_EBS=yes
ENABLE_WS_SECURITY=true
LOGLEVEL=fatal
SCHEDPOLICY=powersave
POWER_IDLETHRESH=60
POWER_WAKETHRESH=0
HYPERVISOR=KVM
MAX_MEM=4096
MAX_DISK=100
MANUAL_INSTANCES_CLEANUP=1
NC_CACHE_SIZE=0
VNET_MODE=managed
VNET_PUBINTERFACE=eth0
VNET_PRIVINTERFACE=eth1
VNET_BRIDGE=br0
VNET_SUBNET=10.10.0.0
VNET_NETMASK=255.255.0.0
VNET_ROUTER=10.10.0.1
VNET_DNS="8.8.8.8 1.1.1.1"
VNET_ADDRSPERNET=16
VNET_LOCALIP=192.0.2.7
VNET_CLOUDIP=192.0.2.1
DISABLE_DNS=Y
REGION=eu-lab-2
WALRUS_MAX_BUCKETS=0
WALRUS_MAX_BUCKET_SIZE_MB=10000000000
WALRUS_IMAGE_CACHE_MB=1024
`)
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	a := netip.MustParseAddr
	checks := []struct {
		name      string
		got, want any
	}{
		{"EucaUser", c.EucaUser, "eucalyptus"},
		{"DisableEBS", c.DisableEBS, true},
		{"WSSecurity", c.WSSecurity, true},
		{"LogLevel", c.LogLevel, slog.LevelError},
		{"SchedPolicy", c.SchedPolicy, "POWERSAVE"},
		{"PowerIdleThresh", c.PowerIdleThresh, time.Minute},
		{"PowerWakeThresh", c.PowerWakeThresh, time.Duration(0)},
		{"Hypervisor", c.Hypervisor, "kvm"},
		{"MaxMemMB", c.MaxMemMB, 4096},
		{"MaxDiskGB", c.MaxDiskGB, 100},
		{"ManualInstancesCleanup", c.ManualInstancesCleanup, true},
		{"NCCacheSizeMB", c.NCCacheSizeMB, 0},
		{"VNetMode", c.VNetMode, "MANAGED"},
		{"VNetPubInterface", c.VNetPubInterface, "eth0"},
		{"VNetPrivInterface", c.VNetPrivInterface, "eth1"},
		{"VNetBridge", c.VNetBridge, "br0"},
		{"VNetSubnet", c.VNetSubnet, netip.MustParsePrefix("10.10.0.0/16")},
		{"VNetBroadcast", c.VNetBroadcast, a("10.10.255.255")},
		{"VNetRouter", c.VNetRouter, a("10.10.0.1")},
		{"VNetDNS", len(c.VNetDNS) == 2 && c.VNetDNS[0] == a("8.8.8.8") && c.VNetDNS[1] == a("1.1.1.1"), true},
		{"VNetAddrsPerNet", c.VNetAddrsPerNet, 16},
		{"VNetLocalIP", c.VNetLocalIP, a("192.0.2.7")},
		{"VNetCloudIP", c.VNetCloudIP, a("192.0.2.1")},
		{"DisableDNS", c.DisableDNS, true},
		{"Region", c.Region, "eu-lab-2"},
		{"ClusterName", c.ClusterName, "eu-lab-2a"},
		{"WalrusMaxBuckets", c.WalrusMaxBuckets, 0},
		{"WalrusMaxBucketSizeMB", c.WalrusMaxBucketSizeMB, int64(10000000000)},
		{"WalrusImageCacheMB", c.WalrusImageCacheMB, int64(1024)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	for _, k := range []struct{ key, want string }{
		{"LOGLEVEL", "ERROR|file:5"},
		{"POWER_IDLETHRESH", "60|file:7"},
		{"MANUAL_INSTANCES_CLEANUP", "1|file:12"},
		{"VNET_BROADCAST", "10.10.255.255|derived:VNET_SUBNET"},
		{"CLUSTER_NAME", "eu-lab-2a|derived:REGION"},
		{"VNET_NETMASK", "255.255.0.0|file:19"},
	} {
		if got := entryString(entry(t, c, k.key)); got != k.want {
			t.Errorf("%s: %q, want %q", k.key, got, k.want)
		}
	}
}

func TestEntries(t *testing.T) {
	var names []string
	for _, e := range Defaults().Entries() {
		names = append(names, e.Key)
	}
	// The documented order: that of eucalyptus.conf.example.
	want := []string{
		"EUCALYPTUS", "EUCA_USER", "DISABLE_EBS", "ENABLE_WS_SECURITY", "JOIN_TOKEN", "JOIN_SERVER", "LOGLEVEL",
		"CLOUD_PORT", "CLOUD_SSL_PORT", "METADATA_PORT", "REGION",
		"WALRUS_BUCKETS_PATH", "WALRUS_MAX_BUCKETS", "WALRUS_MAX_BUCKET_SIZE_MB", "WALRUS_IMAGE_CACHE_MB",
		"SC_VOLUMES_PATH", "SC_NBD_PORT", "SC_NBD_ADDRESS",
		"CC_PORT", "CLUSTER_NAME", "SCHEDPOLICY", "POWER_IDLETHRESH", "POWER_WAKETHRESH", "NODES", "NC_SERVICE",
		"NC_PORT", "HYPERVISOR", "MAX_MEM", "MAX_CORES", "MAX_DISK", "SWAP_SIZE", "MANUAL_INSTANCES_CLEANUP",
		"INSTANCE_PATH", "NC_CACHE_SIZE",
		"VNET_MODE", "VNET_PUBINTERFACE", "VNET_PRIVINTERFACE", "VNET_INTERFACE", "VNET_BRIDGE",
		"VNET_DHCPDAEMON", "VNET_DHCPUSER", "VNET_SUBNET", "VNET_NETMASK", "VNET_BROADCAST", "VNET_ROUTER",
		"VNET_DNS", "VNET_MACMAP", "VNET_ADDRSPERNET", "VNET_PUBLICIPS", "VNET_LOCALIP", "VNET_CLOUDIP", "DISABLE_DNS",
	}
	if !slices.Equal(names, want) {
		t.Errorf("Entries order:\n%q\nwant\n%q", names, want)
	}

	// A Config built by hand (no meta) still lists everything, as defaults.
	c := &Config{CCPort: 1}
	if e := entry(t, c, "CC_PORT"); e.Value != "1" || e.Source != FromDefault {
		t.Errorf("hand-built Config: %+v", e)
	}

	// An invalid value leaves the default, and says so by its source.
	p, _ := parse(t, "CC_PORT=x\nNC_PORT=9")
	if got := entryString(entry(t, p, "CC_PORT")) + " " + entryString(entry(t, p, "NC_PORT")); got != "8774|default 9|file:2" {
		t.Errorf("got %s", got)
	}
}

func TestDiagnosticString(t *testing.T) {
	for _, tc := range []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{Line: 3, Key: "VNET_MODE", Value: "BOGUS", Severity: Error, Message: "not a network mode"},
			`eucalyptus.conf:3: error: VNET_MODE="BOGUS": not a network mode`},
		{Diagnostic{File: "/etc/e.conf", Line: 4, Key: "VNET_DHCPDAEMON", Message: "no longer applies"},
			`/etc/e.conf:4: warning: VNET_DHCPDAEMON: no longer applies`},
		{Diagnostic{File: "x", Line: 2, Value: "junk", Severity: Error, Message: "not a line"}, `x:2: error: not a line`},
		{Diagnostic{Severity: Error, Message: "cannot read"}, `eucalyptus.conf: error: cannot read`},
		{Diagnostic{Line: 1, Key: "K", Value: "a\nb", Message: "m"}, `eucalyptus.conf:1: warning: K="a\nb": m`},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("VNET_MODE=\"BOGUS\"\nCC_PORT=x\nFOO=1\n"), 0o644)
	c, diags, err := Load(bad)
	if err == nil || c == nil || len(diags) != 3 {
		t.Fatalf("Load(bad) = %v, %v, %v", c, diags, err)
	}
	want := bad + ": 2 errors:\n\t" + bad + `:1: error: VNET_MODE="BOGUS": not a network mode (SYSTEM, STATIC, MANAGED, MANAGED-NOVLAN)` +
		"\n\t" + bad + `:2: error: CC_PORT="x": not a port number (1-65535)`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant\n%s", err, want)
	}

	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("FOO=1\n"), 0o644)
	c, diags, err = Load(good)
	if err != nil || c.Path != good || len(diags) != 1 {
		t.Errorf("Load(good) = %v, %v, %v", c, diags, err)
	}

	c, diags, err = Load(filepath.Join(dir, "missing.conf"))
	if !errors.Is(err, fs.ErrNotExist) || c != nil || diags != nil {
		t.Errorf("Load(missing) = %v, %v, %v", c, diags, err)
	}
}

func TestParseLimits(t *testing.T) {
	c, diags := Parse(bytes.NewReader(make([]byte, maxFileSize+1)), "zero")
	if c == nil || len(diags) != 1 || !strings.Contains(diags[0].Message, "not a eucalyptus.conf") {
		t.Errorf("huge file: %v", diags)
	}

	// Doubling through variables stops at the budget instead of eating memory.
	var b strings.Builder
	b.WriteString("A=xxxxxxxxxxxxxxxx\n")
	for range 40 {
		b.WriteString("A=$A$A\n")
	}
	_, diags = Parse(strings.NewReader(b.String()), "bomb")
	if !HasErrors(diags) || !strings.Contains(diags[len(diags)-1].String(), "value longer than") &&
		!strings.Contains(diags[len(diags)-1].Message, "not listed") {
		t.Errorf("variable bomb: %v", diags[len(diags)-1])
	}

	// Garbage makes a bounded number of diagnostics.
	_, diags = Parse(strings.NewReader(strings.Repeat("?\n", 10000)), "junk")
	if len(diags) != maxDiags+1 || diags[maxDiags].Severity != Error || !strings.Contains(diags[maxDiags].Message, "9500 more problems") {
		t.Errorf("%d diagnostics, last %v", len(diags), diags[len(diags)-1])
	}
}

func TestWriteReport(t *testing.T) {
	c, diags := Parse(strings.NewReader("VNET_MODE=”SYSTEM”\nVNET_BRIDGE=”virbr0”\nVNET_DHCPUSER=\"a\nb\"\n"), "seed.conf")
	var b bytes.Buffer
	WriteReport(&b, c, diags)
	out := b.String()
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "KEY") || !strings.Contains(lines[0], "VALUE") || !strings.HasSuffix(lines[0], "SOURCE") {
		t.Errorf("header %q", lines[0])
	}
	for _, want := range []string{
		"\nVNET_MODE                  SYSTEM ",
		" seed.conf:1\n",
		"\nVNET_BRIDGE                virbr0 ",
		"\nVNET_DHCPUSER              \"a\\nb\" ",
		"\nVNET_ROUTER                \"\" ",
		"\nCLOUD_PORT                 8773 ",
		"  default\n",
		"\nseed.conf:1: warning: VNET_MODE=\"SYSTEM\": typographic quotes (”) read as plain quotes\n",
		"\nseed.conf: 3 warnings, no errors\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 1+len(keyTable)+1+3+2 {
		t.Errorf("%d lines:\n%s", n, out)
	}

	b.Reset()
	c, diags = parse(t, "VNET_MODE=BOGUS\nINSTANCE_PATH=/i")
	WriteReport(&b, c, diags)
	if !strings.HasSuffix(b.String(), "\ntest.conf: 1 error, 0 warnings: euca will not start with this file\n") ||
		!strings.Contains(b.String(), "\nVNET_MODE                  MANAGED-NOVLAN ") {
		t.Errorf("report:\n%s", b.String())
	}

	b.Reset()
	WriteReport(&b, Defaults(), nil)
	if !strings.HasSuffix(b.String(), "\n\neucalyptus.conf: no problems\n") || strings.Contains(b.String(), "warning") {
		t.Errorf("report of defaults:\n%s", b.String())
	}
}

// TestJoinKeys: JOIN_TOKEN is kept but never shown (a report, a
// diagnostic); JOIN_SERVER must be HOST:PORT.
func TestJoinKeys(t *testing.T) {
	const tok = "EUCA10" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef::secretsecret"
	c, diags := Parse(strings.NewReader("JOIN_TOKEN=\""+tok+"\"\nJOIN_SERVER=\"10.0.0.1:8773\"\n"), "t")
	if len(diags) != 0 || c.JoinToken.Reveal() != tok || c.JoinServer != "10.0.0.1:8773" {
		t.Fatalf("%v %q %q", diags, c.JoinToken.Reveal(), c.JoinServer)
	}
	var report strings.Builder
	WriteReport(&report, c, diags)
	if strings.Contains(report.String(), "secretsecret") || !strings.Contains(report.String(), "JOIN_TOKEN") {
		t.Fatalf("the report shows the token:\n%s", report.String())
	}
	for _, bad := range []string{"10.0.0.1", "10.0.0.1:0", ":8773", "h:x"} {
		if _, diags := Parse(strings.NewReader("JOIN_SERVER=\""+bad+"\"\n"), "t"); len(diags) != 1 || diags[0].Severity != Error {
			t.Errorf("JOIN_SERVER=%s: %v", bad, diags)
		}
	}
}
