package conf

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// wantDiag pins one diagnostic: line, severity, key and value exactly, and a
// part of the message.
type wantDiag struct {
	line  int
	sev   Severity
	key   string
	value string
	msg   string
}

func checkDiags(t *testing.T, got []Diagnostic, want []wantDiag) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.Line == w.line && g.Severity == w.sev && g.Key == w.key && g.Value == w.value && strings.Contains(g.Message, w.msg)
	}
	if !ok {
		var b strings.Builder
		for _, d := range got {
			b.WriteString("\n\t" + d.String())
		}
		t.Errorf("diagnostics:%s\nwant %d:", b.String(), len(want))
		for _, w := range want {
			t.Errorf("\t%d %s %s=%q: ...%s...", w.line, w.sev, w.key, w.value, w.msg)
		}
	}
}

// entryString renders an entry as "value|source" for compact expectations:
// "eth0|file:2", "eth0|derived:VNET_INTERFACE", "8773|default".
func entryString(e Entry) string {
	switch e.Source {
	case FromFile:
		return e.Value + "|file:" + strconv.Itoa(e.Line)
	case FromDerived:
		return e.Value + "|derived:" + e.DerivedFrom
	}
	return e.Value + "|default"
}

// checkEntries asserts the entries named in want, and that every other key
// has its default value and source.
func checkEntries(t *testing.T, c *Config, want map[string]string) {
	t.Helper()
	defaults := map[string]string{}
	for _, e := range Defaults().Entries() {
		defaults[e.Key] = entryString(e)
	}
	for _, e := range c.Entries() {
		w, ok := want[e.Key]
		if !ok {
			w = defaults[e.Key]
		}
		if got := entryString(e); got != w {
			t.Errorf("%s: got %q, want %q", e.Key, got, w)
		}
		delete(want, e.Key)
	}
	for k := range want {
		t.Errorf("%s: expected but not an entry", k)
	}
}

const (
	tq        = "typographic quotes (”) read as plain quotes"
	retired   = "no longer applies"
	dropped   = "dropped: it stood for \"more of the same\""
	deprecate = "deprecated: read as VNET_PUBINTERFACE and VNET_PRIVINTERFACE"
)

// The examples of the Eucalyptus 1.5 documentation, verbatim (see the
// README beside them): each reads without an error, and says what it changed.
var docCases = []struct {
	file    string
	entries map[string]string
	diags   []wantDiag
	check   func(t *testing.T, c *Config)
}{
	{
		file: "basic.conf",
		entries: map[string]string{
			"EUCALYPTUS":          "/opt/eucalyptus|file:1",
			"EUCA_USER":           "root|file:2",
			"ENABLE_WS_SECURITY":  "Y|file:4",
			"LOGLEVEL":            "DEBUG|file:5",
			"INSTANCE_PATH":       "/opt/eucalyptus/var/lib/eucalyptus/instances|derived:EUCALYPTUS",
			"WALRUS_BUCKETS_PATH": "/opt/eucalyptus/var/lib/eucalyptus/bucket|derived:EUCALYPTUS",
			"SC_VOLUMES_PATH":     "/opt/eucalyptus/var/lib/eucalyptus/volumes|derived:EUCALYPTUS",
		},
		diags: []wantDiag{
			{1, Warning, "EUCALYPTUS", "/opt/eucalyptus", tq},
			{2, Warning, "EUCA_USER", "root", tq},
			{4, Warning, "ENABLE_WS_SECURITY", "Y", tq},
		},
		check: func(t *testing.T, c *Config) {
			if c.DisableEBS || !c.WSSecurity || c.DataDir() != "/opt/eucalyptus/var/lib/eucalyptus" {
				t.Errorf("DisableEBS %v, WSSecurity %v, DataDir %s", c.DisableEBS, c.WSSecurity, c.DataDir())
			}
		},
	},
	{
		file: "cloud.conf",
		entries: map[string]string{
			"CLOUD_PORT":     "8773|file:1",
			"CLOUD_SSL_PORT": "8443|file:2",
		},
	},
	{
		file: "cluster.conf",
		entries: map[string]string{
			"CC_PORT":     "8774|file:1",
			"SCHEDPOLICY": "ROUNDROBIN|file:2",
			"NODES":       "localhost|file:3",
			"NC_SERVICE":  "axis2/services/EucalyptusNC|file:4",
		},
		check: func(t *testing.T, c *Config) {
			if !slices.Equal(c.Nodes, []string{"localhost"}) {
				t.Errorf("Nodes %q", c.Nodes)
			}
		},
	},
	{
		file: "managed-frontend.conf",
		entries: map[string]string{
			"VNET_MODE":          "MANAGED|file:1",
			"VNET_INTERFACE":     "eth0|file:2",
			"VNET_PUBINTERFACE":  "eth0|derived:VNET_INTERFACE",
			"VNET_PRIVINTERFACE": "eth0|derived:VNET_INTERFACE",
			"VNET_DHCPDAEMON":    "/usr/sbin/dhcp3|file:3",
			"VNET_DHCPUSER":      "<dhcpusername>|file:4",
			"VNET_SUBNET":        "192.168.0.0|file:5",
			"VNET_NETMASK":       "255.255.0.0|file:6",
			"VNET_BROADCAST":     "192.168.255.255|derived:VNET_SUBNET",
			"VNET_DNS":           "192.168.1.2|file:7",
			"VNET_ADDRSPERNET":   "64|file:8",
			"VNET_PUBLICIPS":     "10.0.0.0 10.0.0.1|file:9",
		},
		diags: managedFrontendDiags("MANAGED"),
		check: checkManagedFrontend,
	},
	{
		file: "managed-node.conf",
		entries: map[string]string{
			"VNET_MODE":          "MANAGED|file:1",
			"VNET_INTERFACE":     "peth0|file:2",
			"VNET_PUBINTERFACE":  "peth0|derived:VNET_INTERFACE",
			"VNET_PRIVINTERFACE": "peth0|derived:VNET_INTERFACE",
		},
		diags: []wantDiag{
			{1, Warning, "VNET_MODE", "MANAGED", tq},
			{2, Warning, "VNET_INTERFACE", "peth0", tq},
			{2, Warning, "VNET_INTERFACE", "peth0", deprecate},
		},
	},
	{
		file: "managed-novlan-frontend.conf",
		entries: map[string]string{
			"VNET_MODE":          "MANAGED-NOVLAN|file:1",
			"VNET_INTERFACE":     "eth0|file:2",
			"VNET_PUBINTERFACE":  "eth0|derived:VNET_INTERFACE",
			"VNET_PRIVINTERFACE": "eth0|derived:VNET_INTERFACE",
			"VNET_DHCPDAEMON":    "/usr/sbin/dhcp3|file:3",
			"VNET_DHCPUSER":      "<dhcpusername>|file:4",
			"VNET_SUBNET":        "192.168.0.0|file:5",
			"VNET_NETMASK":       "255.255.0.0|file:6",
			"VNET_BROADCAST":     "192.168.255.255|derived:VNET_SUBNET",
			"VNET_DNS":           "192.168.1.2|file:7",
			"VNET_ADDRSPERNET":   "64|file:8",
			"VNET_PUBLICIPS":     "10.0.0.0 10.0.0.1|file:9",
		},
		diags: managedFrontendDiags("MANAGED-NOVLAN"),
		check: checkManagedFrontend,
	},
	{
		file: "managed-novlan-node.conf",
		entries: map[string]string{
			"VNET_MODE":   "MANAGED-NOVLAN|file:1",
			"VNET_BRIDGE": "virbr0|file:2",
		},
		diags: []wantDiag{
			{1, Warning, "VNET_MODE", "MANAGED-NOVLAN", tq},
			{2, Warning, "VNET_BRIDGE", "virbr0", tq},
		},
	},
	{
		file: "node.conf",
		entries: map[string]string{
			"NC_PORT":                  "8775|file:1",
			"HYPERVISOR":               "xen|file:2",
			"MAX_MEM":                  "2048|file:3",
			"MAX_CORES":                "2|file:4",
			"SWAP_SIZE":                "512|file:5",
			"MANUAL_INSTANCES_CLEANUP": "0|file:6",
			"INSTANCE_PATH":            "/opt/eucalyptus/var/lib/eucalyptus/instances|file:7",
			"NC_CACHE_SIZE":            "99999|file:8",
		},
		diags: []wantDiag{
			{2, Warning, "HYPERVISOR", "xen", "this build cannot drive xen"},
		},
		check: func(t *testing.T, c *Config) {
			if c.Hypervisor != "xen" || c.MaxMemMB != 2048 || c.MaxCores != 2 || c.MaxDiskGB != 0 ||
				c.SwapSizeMB != 512 || c.ManualInstancesCleanup || c.NCCacheSizeMB != 99999 {
				t.Errorf("node fields: %+v", c)
			}
		},
	},
	{
		file: "static-frontend.conf",
		entries: map[string]string{
			"VNET_MODE":          "STATIC|file:1",
			"VNET_INTERFACE":     "eth0|file:2",
			"VNET_PUBINTERFACE":  "eth0|derived:VNET_INTERFACE",
			"VNET_PRIVINTERFACE": "eth0|derived:VNET_INTERFACE",
			"VNET_DHCPDAEMON":    "/usr/sbin/dhcp3|file:3",
			"VNET_DHCPUSER":      "<dhcpusername>|file:4",
			"VNET_SUBNET":        "192.168.1.0|file:5",
			"VNET_NETMASK":       "255.255.255.0|file:6",
			"VNET_BROADCAST":     "192.168.1.255|file:7",
			"VNET_ROUTER":        "192.168.1.1|file:8",
			"VNET_DNS":           "192.168.1.2|file:9",
			"VNET_MACMAP":        "00:AA:DD:11:CE:FE=192.168.1.3 00:AA:DD:11:CE:FF=192.168.1.4|file:10",
		},
		diags: []wantDiag{
			{1, Warning, "VNET_MODE", "STATIC", tq},
			{2, Warning, "VNET_INTERFACE", "eth0", tq},
			{2, Warning, "VNET_INTERFACE", "eth0", deprecate},
			{3, Warning, "VNET_DHCPDAEMON", "/usr/sbin/dhcp3", tq},
			{3, Warning, "VNET_DHCPDAEMON", "/usr/sbin/dhcp3", retired},
			{4, Warning, "VNET_DHCPUSER", "<dhcpusername>", tq},
			{4, Warning, "VNET_DHCPUSER", "<dhcpusername>", retired},
			{5, Warning, "VNET_SUBNET", "192.168.1.0", tq},
			{6, Warning, "VNET_NETMASK", "255.255.255.0", tq},
			{7, Warning, "VNET_BROADCAST", "192.168.1.255", tq},
			{8, Warning, "VNET_ROUTER", "192.168.1.1", tq},
			{9, Warning, "VNET_DNS", "192.168.1.2", tq},
			// One warning for the whole three-line value, on the line of its key.
			{10, Warning, "VNET_MACMAP", "00:AA:DD:11:CE:FE=192.168.1.3\n     00:AA:DD:11:CE:FF=192.168.1.4\n …", tq},
			{12, Warning, "VNET_MACMAP", "…", dropped},
		},
		check: func(t *testing.T, c *Config) {
			if len(c.VNetMACMap) != 2 ||
				c.VNetMACMap[0].MAC.String() != "00:aa:dd:11:ce:fe" || c.VNetMACMap[0].IP != netip.MustParseAddr("192.168.1.3") ||
				c.VNetMACMap[1].MAC.String() != "00:aa:dd:11:ce:ff" || c.VNetMACMap[1].IP != netip.MustParseAddr("192.168.1.4") {
				t.Errorf("VNetMACMap %v", c.VNetMACMap)
			}
			if c.VNetSubnet != netip.MustParsePrefix("192.168.1.0/24") {
				t.Errorf("VNetSubnet %v", c.VNetSubnet)
			}
		},
	},
	{
		file: "static-node.conf",
		entries: map[string]string{
			"VNET_MODE":   "STATIC|file:1",
			"VNET_BRIDGE": "virbr0|file:2",
		},
		diags: []wantDiag{
			{1, Warning, "VNET_MODE", "STATIC", tq},
			{2, Warning, "VNET_BRIDGE", "virbr0", tq},
		},
	},
	{
		file:    "system-frontend.conf",
		entries: map[string]string{"VNET_MODE": "SYSTEM|file:1"},
		diags:   []wantDiag{{1, Warning, "VNET_MODE", "SYSTEM", tq}},
	},
	{
		file: "system-node.conf",
		entries: map[string]string{
			"VNET_MODE":   "SYSTEM|file:1",
			"VNET_BRIDGE": "virbr0|file:2",
		},
		diags: []wantDiag{
			{1, Warning, "VNET_MODE", "SYSTEM", tq},
			{2, Warning, "VNET_BRIDGE", "virbr0", tq},
		},
	},
	{
		// The commented-out xenbr0 line is a comment, not a duplicate.
		file: "ubuntu-single-host.conf",
		entries: map[string]string{
			"VNET_BRIDGE": "virbr0|file:2",
			"NODES":       "localhost|file:4",
		},
	},
}

func managedFrontendDiags(mode string) []wantDiag {
	return []wantDiag{
		{1, Warning, "VNET_MODE", mode, tq},
		{2, Warning, "VNET_INTERFACE", "eth0", tq},
		{2, Warning, "VNET_INTERFACE", "eth0", deprecate},
		{3, Warning, "VNET_DHCPDAEMON", "/usr/sbin/dhcp3", tq},
		{3, Warning, "VNET_DHCPDAEMON", "/usr/sbin/dhcp3", retired},
		{4, Warning, "VNET_DHCPUSER", "<dhcpusername>", tq},
		{4, Warning, "VNET_DHCPUSER", "<dhcpusername>", retired},
		{5, Warning, "VNET_SUBNET", "192.168.1.0", tq},
		// 192.168.1.0 under 255.255.0.0: what the operator can only have meant is the /16.
		{5, Warning, "VNET_SUBNET", "192.168.1.0", "host bits set under netmask 255.255.0.0; read as network 192.168.0.0"},
		{6, Warning, "VNET_NETMASK", "255.255.0.0", tq},
		{7, Warning, "VNET_DNS", "192.168.1.2", tq},
		{8, Warning, "VNET_ADDRSPERNET", "64", tq},
		// Unquoted list: no quote warning; the ellipsis goes, with its own warning.
		{9, Warning, "VNET_PUBLICIPS", "…", dropped},
	}
}

func checkManagedFrontend(t *testing.T, c *Config) {
	want := []netip.Addr{netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("10.0.0.1")}
	if !slices.Equal(c.VNetPublicIPs, want) {
		t.Errorf("VNetPublicIPs %v", c.VNetPublicIPs)
	}
	if c.VNetSubnet != netip.MustParsePrefix("192.168.0.0/16") || c.VNetAddrsPerNet != 64 ||
		!slices.Equal(c.VNetDNS, []netip.Addr{netip.MustParseAddr("192.168.1.2")}) {
		t.Errorf("subnet %v, addrs per net %d, DNS %v", c.VNetSubnet, c.VNetAddrsPerNet, c.VNetDNS)
	}
}

func TestEucalyptus15DocExamples(t *testing.T) {
	dir := filepath.Join("testdata", "eucalyptus-1.5-doc")
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tc := range docCases {
		covered[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			c, diags, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, d := range diags {
				if d.File != path {
					t.Errorf("diagnostic names file %q, want %q", d.File, path)
				}
			}
			checkDiags(t, diags, tc.diags)
			checkEntries(t, c, tc.entries)
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no expectations in docCases", f)
		}
	}
}

// The copies must stay byte for byte those of shared/testdata, when that is
// beside the repository (it is on developers' machines and in CI).
func TestDocExamplesAreVerbatim(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "testdata", "eucalyptus-1.5-doc")
	orig, err := os.ReadDir(shared)
	if err != nil {
		t.Skipf("shared testdata not beside the repository: %v", err)
	}
	for _, e := range orig {
		want, err := os.ReadFile(filepath.Join(shared, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", "eucalyptus-1.5-doc", e.Name()))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s differs from the shared original (%v)", e.Name(), err)
		}
	}
}
