package conf

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
)

// keySpec is one row of the key table: how a key's value is read into the
// Config and how its effective value is printed back.
type keySpec struct {
	name string
	// apply reads v (the trimmed, non-empty value of the key's last
	// assignment st) into a.c, or reports why it cannot.
	apply func(a *applier, st *statement, v string)
	// format prints the effective value; nil for keys without a typed field,
	// whose value is shown as written.
	format func(c *Config) string
}

// keyTable lists every known key in the order of eucalyptus.conf.example;
// Entries and the report follow it.
var keyTable = []keySpec{
	// basic
	pathKey("EUCALYPTUS", func(c *Config) *string { return &c.Home }),
	stringKey("EUCA_USER", func(c *Config) *string { return &c.EucaUser }),
	ynKey("DISABLE_EBS", func(c *Config) *bool { return &c.DisableEBS }),
	{name: "ENABLE_WS_SECURITY", apply: applyWSSecurity, format: func(c *Config) string { return yn(c.WSSecurity) }},
	{name: "JOIN_TOKEN", apply: applyJoinToken, format: func(c *Config) string {
		if c.JoinToken == "" {
			return ""
		}
		return c.JoinToken.String() // redacted: a report or a log must not carry it
	}},
	{name: "JOIN_SERVER", apply: applyJoinServer, format: func(c *Config) string { return c.JoinServer }},
	{name: "LOGLEVEL", apply: applyLogLevel, format: func(c *Config) string { return c.LogLevel.String() }},

	// cloud
	portKey("CLOUD_PORT", func(c *Config) *int { return &c.CloudPort }),
	portKey("CLOUD_SSL_PORT", func(c *Config) *int { return &c.CloudSSLPort }),
	portKey("METADATA_PORT", func(c *Config) *int { return &c.MetadataPort }),
	{name: "REGION", apply: applyRegion, format: func(c *Config) string { return c.Region }},

	// walrus
	pathKey("WALRUS_BUCKETS_PATH", func(c *Config) *string { return &c.WalrusBucketsPath }),
	countKey("WALRUS_MAX_BUCKETS", "", func(c *Config) *int { return &c.WalrusMaxBuckets }),
	countKey("WALRUS_MAX_BUCKET_SIZE_MB", " of megabytes", func(c *Config) *int64 { return &c.WalrusMaxBucketSizeMB }),
	countKey("WALRUS_IMAGE_CACHE_MB", " of megabytes", func(c *Config) *int64 { return &c.WalrusImageCacheMB }),

	// storage controller
	pathKey("SC_VOLUMES_PATH", func(c *Config) *string { return &c.SCVolumesPath }),
	portKey("SC_NBD_PORT", func(c *Config) *int { return &c.SCNBDPort }),
	addrKey("SC_NBD_ADDRESS", func(c *Config) *netip.Addr { return &c.SCNBDAddress }),

	// cluster
	portKey("CC_PORT", func(c *Config) *int { return &c.CCPort }),
	{name: "CLUSTER_NAME", apply: applyClusterName, format: func(c *Config) string { return c.ClusterName }},
	enumKey("SCHEDPOLICY", "not a scheduling policy", strings.ToUpper, func(c *Config) *string { return &c.SchedPolicy },
		"GREEDY", "ROUNDROBIN", "POWERSAVE"),
	secondsKey("POWER_IDLETHRESH", func(c *Config) *time.Duration { return &c.PowerIdleThresh }),
	secondsKey("POWER_WAKETHRESH", func(c *Config) *time.Duration { return &c.PowerWakeThresh }),
	{name: "NODES", apply: applyNodes, format: func(c *Config) string { return strings.Join(c.Nodes, " ") }},
	stringKey("NC_SERVICE", func(c *Config) *string { return &c.NCService }),

	// node
	portKey("NC_PORT", func(c *Config) *int { return &c.NCPort }),
	{name: "HYPERVISOR", apply: applyHypervisor, format: func(c *Config) string { return c.Hypervisor }},
	countKey("MAX_MEM", " of megabytes", func(c *Config) *int { return &c.MaxMemMB }),
	countKey("MAX_CORES", "", func(c *Config) *int { return &c.MaxCores }),
	countKey("MAX_DISK", " of gigabytes", func(c *Config) *int { return &c.MaxDiskGB }),
	countKey("SWAP_SIZE", " of megabytes", func(c *Config) *int { return &c.SwapSizeMB }),
	{name: "MANUAL_INSTANCES_CLEANUP", apply: applyYN(func(c *Config) *bool { return &c.ManualInstancesCleanup }),
		format: func(c *Config) string { return zeroOne(c.ManualInstancesCleanup) }},
	pathKey("INSTANCE_PATH", func(c *Config) *string { return &c.InstancePath }),
	countKey("NC_CACHE_SIZE", " of megabytes", func(c *Config) *int { return &c.NCCacheSizeMB }),

	// network
	enumKey("VNET_MODE", "not a network mode", strings.ToUpper, func(c *Config) *string { return &c.VNetMode },
		"SYSTEM", "STATIC", "MANAGED", "MANAGED-NOVLAN"),
	ifaceKey("VNET_PUBINTERFACE", func(c *Config) *string { return &c.VNetPubInterface }),
	ifaceKey("VNET_PRIVINTERFACE", func(c *Config) *string { return &c.VNetPrivInterface }),
	{name: "VNET_INTERFACE", apply: applyInterface},
	ifaceKey("VNET_BRIDGE", func(c *Config) *string { return &c.VNetBridge }),
	retiredKey("VNET_DHCPDAEMON", "no longer applies: DHCP is built into euca and no outside daemon is run; value ignored"),
	retiredKey("VNET_DHCPUSER", "no longer applies: the built-in DHCP server needs no user of its own; value ignored"),
	{name: "VNET_SUBNET", apply: applySubnet, format: func(c *Config) string { return c.VNetSubnet.Addr().String() }},
	{name: "VNET_NETMASK", apply: applyNetmask, format: func(c *Config) string { return maskString(c.VNetSubnet.Bits()) }},
	addrKey("VNET_BROADCAST", func(c *Config) *netip.Addr { return &c.VNetBroadcast }),
	addrKey("VNET_ROUTER", func(c *Config) *netip.Addr { return &c.VNetRouter }),
	{name: "VNET_DNS", apply: applyDNS, format: func(c *Config) string { return joinAddrs(c.VNetDNS) }},
	{name: "VNET_MACMAP", apply: applyMACMap, format: formatMACMap},
	{name: "VNET_ADDRSPERNET", apply: applyAddrsPerNet, format: func(c *Config) string { return strconv.Itoa(c.VNetAddrsPerNet) }},
	{name: "VNET_PUBLICIPS", apply: applyPublicIPs, format: func(c *Config) string { return compressAddrs(c.VNetPublicIPs) }},
	addrKey("VNET_LOCALIP", func(c *Config) *netip.Addr { return &c.VNetLocalIP }),
	addrKey("VNET_CLOUDIP", func(c *Config) *netip.Addr { return &c.VNetCloudIP }),
	ynKey("DISABLE_DNS", func(c *Config) *bool { return &c.DisableDNS }),
}

var keyIndex = func() map[string]int {
	m := make(map[string]int, len(keyTable))
	for i, k := range keyTable {
		m[k.name] = i
	}
	return m
}()

// defaultStrings gives $VAR a value for known keys the file has not set.
func defaultStrings() map[string]string {
	m := map[string]string{}
	for _, e := range Defaults().Entries() {
		m[e.Key] = e.Value
	}
	return m
}

// applier carries the state of applying one file's statements to a Config.
type applier struct {
	c    *Config
	ds   *sink
	last map[string]*statement // last assignment of each known key

	subnet   netip.Addr // VNET_SUBNET as written; combined with the mask in derive
	maskBits int
	iface    string // VNET_INTERFACE
	macLines []int  // line of each VNetMACMap pair
	pubLines []int  // line of each VNetPublicIPs address
}

func apply(c *Config, stmts []*statement, ds *sink) {
	a := &applier{c: c, ds: ds, last: map[string]*statement{}}
	for _, st := range stmts {
		if _, known := keyIndex[st.key]; !known {
			msg := "unknown key, ignored"
			if _, ok := keyIndex[strings.ToUpper(st.key)]; ok {
				msg += fmt.Sprintf(" (keys are upper case: %s?)", strings.ToUpper(st.key))
			}
			a.ds.add(Diagnostic{Line: st.line, Key: st.key, Severity: Warning, Message: msg})
			continue
		}
		if prev := a.last[st.key]; prev != nil {
			a.warn(st, "", fmt.Sprintf("set again (before on line %d); this later value wins", prev.line))
		}
		a.last[st.key] = st
	}
	for _, k := range keyTable {
		st := a.last[k.name]
		if st == nil {
			continue
		}
		// KEY="" is how the shipped files spell "not set" (NODES="", VNET_PUBLICIPS="").
		if v := strings.TrimSpace(st.value); v != "" {
			k.apply(a, st, v)
		}
	}
	a.derive()
}

func (a *applier) report(st *statement, line int, value string, sev Severity, msg string) {
	a.ds.add(Diagnostic{Line: line, Key: st.key, Value: value, Severity: sev, Message: msg})
}
func (a *applier) fail(st *statement, v, msg string) { a.report(st, st.line, v, Error, msg) }
func (a *applier) warn(st *statement, v, msg string) { a.report(st, st.line, v, Warning, msg) }

// fromFile records that the key's effective value is the one on st's line.
func (a *applier) fromFile(st *statement) {
	a.c.meta[st.key] = entryMeta{source: FromFile, line: st.line, raw: strings.TrimSpace(st.value)}
}

func (a *applier) isSet(key string) bool { return a.c.meta[key].source == FromFile }

// derivedFrom marks key as following from src when the file sets src; when
// it does not, the value is as much a default as src's is.
func (a *applier) derivedFrom(key, src string) {
	if m := a.c.meta[src]; m.source == FromFile {
		a.c.meta[key] = entryMeta{source: FromDerived, line: m.line, from: src}
	}
}

// --- row constructors ---

func stringKey(name string, field func(*Config) *string) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			*field(a.c) = v
			a.fromFile(st)
		},
		format: func(c *Config) string { return *field(c) },
	}
}

func pathKey(name string, field func(*Config) *string) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			if !filepath.IsAbs(v) {
				a.fail(st, v, "not an absolute path")
				return
			}
			*field(a.c) = filepath.Clean(v)
			a.fromFile(st)
		},
		format: func(c *Config) string { return *field(c) },
	}
}

func applyYN(field func(*Config) *bool) func(*applier, *statement, string) {
	return func(a *applier, st *statement, v string) {
		b, ok := parseYN(v)
		if !ok {
			a.fail(st, v, "not Y or N (also read: yes/no, true/false, 1/0)")
			return
		}
		*field(a.c) = b
		a.fromFile(st)
	}
}

func ynKey(name string, field func(*Config) *bool) keySpec {
	return keySpec{name: name, apply: applyYN(field), format: func(c *Config) string { return yn(*field(c)) }}
}

func countKey[T int | int64](name, unit string, field func(*Config) *T) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			n, msg := parseCount(v, unit)
			if msg == "" && int64(T(n)) != n {
				msg = "too large"
			}
			if msg != "" {
				a.fail(st, v, msg)
				return
			}
			*field(a.c) = T(n)
			a.fromFile(st)
		},
		format: func(c *Config) string { return strconv.FormatInt(int64(*field(c)), 10) },
	}
}

func portKey(name string, field func(*Config) *int) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			n, msg := parsePort(v)
			if msg != "" {
				a.fail(st, v, msg)
				return
			}
			*field(a.c) = n
			a.fromFile(st)
		},
		format: func(c *Config) string { return strconv.Itoa(*field(c)) },
	}
}

func secondsKey(name string, field func(*Config) *time.Duration) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			n, msg := parseSeconds(v)
			if msg != "" {
				a.fail(st, v, msg)
				return
			}
			*field(a.c) = time.Duration(n) * time.Second
			a.fromFile(st)
		},
		format: func(c *Config) string { return strconv.FormatInt(int64(*field(c)/time.Second), 10) },
	}
}

func enumKey(name, what string, norm func(string) string, field func(*Config) *string, values ...string) keySpec {
	msg := fmt.Sprintf("%s (%s)", what, strings.Join(values, ", "))
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			n := norm(v)
			if !slices.Contains(values, n) {
				a.fail(st, v, msg)
				return
			}
			*field(a.c) = n
			a.fromFile(st)
		},
		format: func(c *Config) string { return *field(c) },
	}
}

func ifaceKey(name string, field func(*Config) *string) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			if !validIfName(v) {
				a.fail(st, v, "not a network interface name (at most 15 characters; no blanks, '/' or ':')")
				return
			}
			*field(a.c) = v
			a.fromFile(st)
		},
		format: func(c *Config) string { return *field(c) },
	}
}

func addrKey(name string, field func(*Config) *netip.Addr) keySpec {
	return keySpec{name: name,
		apply: func(a *applier, st *statement, v string) {
			ip, msg := parseIPv4(v)
			if msg != "" {
				a.fail(st, v, msg)
				return
			}
			*field(a.c) = ip
			a.fromFile(st)
		},
		format: func(c *Config) string { return addrString(*field(c)) },
	}
}

// retiredKey: a key of Eucalyptus that no longer means anything here. Any
// value is accepted (the 1.5 docs even leave "<dhcpusername>" placeholders)
// with one warning, so an old file still starts.
func retiredKey(name, msg string) keySpec {
	return keySpec{name: name, apply: func(a *applier, st *statement, v string) {
		a.warn(st, v, msg)
		a.fromFile(st)
	}}
}

// --- keys with rules of their own ---

func applyWSSecurity(a *applier, st *statement, v string) {
	applyYN(func(c *Config) *bool { return &c.WSSecurity })(a, st, v)
	if a.isSet("ENABLE_WS_SECURITY") && !a.c.WSSecurity {
		// Without it, node join tokens and instance control travel in the clear.
		a.warn(st, v, "traffic between roles is not encrypted or authenticated: for debugging only")
	}
}

func applyLogLevel(a *applier, st *statement, v string) {
	var l slog.Level
	switch strings.ToUpper(v) {
	case "DEBUG":
		l = slog.LevelDebug
	case "INFO":
		l = slog.LevelInfo
	case "WARN", "WARNING":
		l = slog.LevelWarn
	case "ERROR", "FATAL": // slog has nothing above ERROR; Eucalyptus's FATAL logged only fatal errors
		l = slog.LevelError
	case "TRACE", "EXTREME", "ALL": // Eucalyptus 3's finer levels
		a.warn(st, v, "read as DEBUG, the finest level here")
		l = slog.LevelDebug
	default:
		a.fail(st, v, "not a log level (DEBUG, INFO, WARN, ERROR, FATAL)")
		return
	}
	a.c.LogLevel = l
	a.fromFile(st)
}

var (
	awsRegion = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)
	dnsLabels = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

func applyRegion(a *applier, st *statement, v string) {
	switch {
	case len(v) > 63 || !dnsLabels.MatchString(v):
		a.fail(st, v, "not a region name (lowercase letters, digits and dashes, like us-east-1)")
		return
	case !awsRegion.MatchString(v):
		// Terraform's AWS provider and some SDKs check the shape of a region name.
		a.warn(st, v, "not shaped like an AWS region (like us-east-1): clients that check region names may refuse it")
	}
	a.c.Region = v
	a.fromFile(st)
}

func applyClusterName(a *applier, st *statement, v string) {
	if len(v) > 63 || !dnsLabels.MatchString(v) {
		a.fail(st, v, "not an availability zone name (lowercase letters, digits and dashes, like us-east-1a)")
		return
	}
	a.c.ClusterName = v
	a.fromFile(st)
}

func applyHypervisor(a *applier, st *statement, v string) {
	h := strings.ToLower(v)
	switch h {
	case "auto", "kvm", "qemu":
	case "xen":
		// Valid for Eucalyptus, so the file is read; the node controller refuses it.
		a.warn(st, v, "this build cannot drive xen (only kvm and qemu): a node controller will refuse to start with it")
	case "not_configured": // what Eucalyptus 1.6 packages shipped until the admin chose
		a.warn(st, v, "read as auto (kvm when the host can, else qemu)")
		h = "auto"
	default:
		a.fail(st, v, "not a hypervisor (kvm, qemu, xen)")
		return
	}
	a.c.Hypervisor = h
	a.fromFile(st)
}

func applyNodes(a *applier, st *statement, _ string) {
	var nodes []string
	seen := map[string]bool{}
	for _, f := range fields(st.value) {
		line := st.lineAt(f.off)
		switch {
		case !validNode(f.text):
			a.report(st, line, f.text, Error, "not a host or host:port")
		case seen[f.text]:
			a.report(st, line, f.text, Warning, "listed twice; polled once")
		default:
			seen[f.text] = true
			nodes = append(nodes, f.text)
		}
	}
	a.c.Nodes = nodes
	a.fromFile(st)
}

func applyInterface(a *applier, st *statement, v string) {
	if !validIfName(v) {
		a.fail(st, v, "not a network interface name (at most 15 characters; no blanks, '/' or ':')")
		return
	}
	a.iface = v
	a.fromFile(st)
	if a.isSet("VNET_PUBINTERFACE") && a.isSet("VNET_PRIVINTERFACE") {
		a.warn(st, v, "deprecated, and ignored: VNET_PUBINTERFACE and VNET_PRIVINTERFACE are both set")
		return
	}
	a.warn(st, v, "deprecated: read as VNET_PUBINTERFACE and VNET_PRIVINTERFACE where those are not set; set them instead")
}

func applySubnet(a *applier, st *statement, v string) {
	ip, msg := parseIPv4(v)
	if msg != "" {
		if strings.Contains(v, "/") {
			msg += " (give the mask in VNET_NETMASK)"
		}
		a.fail(st, v, msg)
		return
	}
	a.subnet = ip
	a.fromFile(st)
}

func applyNetmask(a *applier, st *statement, v string) {
	bits, msg := maskBits(v)
	if msg != "" {
		a.fail(st, v, msg)
		return
	}
	a.maskBits = bits
	a.fromFile(st)
}

func applyDNS(a *applier, st *statement, _ string) {
	var out []netip.Addr
	for _, f := range fields(st.value) {
		ip, msg := parseIPv4(f.text)
		if msg != "" {
			a.report(st, st.lineAt(f.off), f.text, Error, msg)
			continue
		}
		out = append(out, ip)
	}
	a.c.VNetDNS = out
	a.fromFile(st)
}

// dropEllipsis reports an element that is only "…" (the 1.5 document's
// "and so on") and says whether the caller should skip it.
func (a *applier) dropEllipsis(st *statement, f field, what string) bool {
	if !isEllipsis(f.text) {
		return false
	}
	a.report(st, st.lineAt(f.off), f.text, Warning,
		fmt.Sprintf("dropped: it stood for \"more of the same\" in the document this was copied from; list every %s", what))
	return true
}

func applyMACMap(a *applier, st *statement, _ string) {
	var out []MACIP
	var lines []int
	seenMAC := map[string]int{}
	seenIP := map[netip.Addr]int{}
	for _, f := range fields(st.value) {
		if a.dropEllipsis(st, f, "MAC=IP pair") {
			continue
		}
		line := st.lineAt(f.off)
		bad := func(msg string) { a.report(st, line, f.text, Error, msg) }
		macText, ipText, ok := strings.Cut(f.text, "=")
		if !ok || strings.Contains(ipText, "=") {
			bad("not a MAC=IP pair (like 00:AA:DD:11:CE:FE=192.168.1.3)")
			continue
		}
		mac, ok := parseMAC(macText)
		if !ok {
			bad(fmt.Sprintf("not a MAC=IP pair: %q is not a MAC address (like 00:AA:DD:11:CE:FE)", macText))
			continue
		}
		ip, msg := parseIPv4(ipText)
		if msg != "" {
			bad(fmt.Sprintf("not a MAC=IP pair: %q is %s", ipText, msg))
			continue
		}
		if prev, dup := seenMAC[mac.String()]; dup {
			bad(fmt.Sprintf("MAC address already mapped on line %d", prev))
			continue
		}
		if prev, dup := seenIP[ip]; dup {
			bad(fmt.Sprintf("IP address already mapped on line %d", prev))
			continue
		}
		seenMAC[mac.String()], seenIP[ip] = line, line
		out = append(out, MACIP{MAC: mac, IP: ip})
		lines = append(lines, line)
	}
	a.c.VNetMACMap, a.macLines = out, lines
	a.fromFile(st)
}

func formatMACMap(c *Config) string {
	s := make([]string, len(c.VNetMACMap))
	for i, m := range c.VNetMACMap {
		s[i] = m.String()
	}
	return strings.Join(s, " ")
}

func applyAddrsPerNet(a *applier, st *statement, v string) {
	n, msg := parseCount(v, "")
	if msg == "" && (n < 4 || n&(n-1) != 0 || n > 1<<31) {
		msg = "not a power of two of at least 4 (4, 8, 16, 32, ...)"
	}
	if msg != "" {
		a.fail(st, v, msg)
		return
	}
	a.c.VNetAddrsPerNet = int(n)
	a.fromFile(st)
}

// maxPublicIPs bounds what ranges expand to (a /16); Eucalyptus itself kept
// at most 2048, and an unbounded 0.0.0.0-255.255.255.255 would be 4G entries.
const maxPublicIPs = 1 << 16

func applyPublicIPs(a *applier, st *statement, _ string) {
	var out []netip.Addr
	var lines []int
	seen := map[netip.Addr]bool{}
	add := func(ip netip.Addr, line int, text string) {
		if seen[ip] {
			a.report(st, line, text, Warning, fmt.Sprintf("%s listed twice; used once", ip))
			return
		}
		seen[ip] = true
		out = append(out, ip)
		lines = append(lines, line)
	}
	for _, f := range fields(st.value) {
		if a.dropEllipsis(st, f, "address (or write a range: 10.0.0.10-10.0.0.20)") {
			continue
		}
		line := st.lineAt(f.off)
		from, to, isRange := strings.Cut(f.text, "-")
		if base, bits, isCIDR := strings.Cut(f.text, "/"); isCIDR && !isRange {
			lo, hi, msg := cidrHosts(base, bits)
			if msg != "" {
				a.report(st, line, f.text, Error, msg)
				continue
			}
			from, to, isRange = lo.String(), hi.String(), true
		}
		if !isRange {
			ip, msg := parseIPv4(f.text)
			if msg != "" {
				a.report(st, line, f.text, Error, msg)
				continue
			}
			add(ip, line, f.text)
			continue
		}
		lo, msg := parseIPv4(from)
		hi, msg2 := parseIPv4(to)
		switch {
		case msg != "" || msg2 != "":
			a.report(st, line, f.text, Error, "not an IPv4 address or range (like 10.0.0.10-10.0.0.20): "+cmpOr(msg, msg2))
			continue
		case hi.Less(lo):
			a.report(st, line, f.text, Error, "range runs backwards")
			continue
		case int64(addr4(hi))-int64(addr4(lo))+1+int64(len(out)) > maxPublicIPs:
			a.report(st, line, f.text, Error, fmt.Sprintf("more than %d public addresses", maxPublicIPs))
			continue
		}
		for ip := lo; ; ip = ip.Next() {
			add(ip, line, f.text)
			if ip == hi {
				break
			}
		}
	}
	a.c.VNetPublicIPs, a.pubLines = out, lines
	a.fromFile(st)
}

// cidrHosts is the range of a CIDR block in VNET_PUBLICIPS (10.0.0.0/29):
// its host addresses, so without the network and broadcast addresses of a
// block of four or more, which no host on a link carrying the block can
// use; a /31 or /32 is all of it.
func cidrHosts(base, bits string) (lo, hi netip.Addr, msg string) {
	p, err := netip.ParsePrefix(base + "/" + bits)
	switch {
	case err != nil || !p.Addr().Is4():
		return lo, hi, "not an IPv4 address, range or CIDR block (like 10.0.0.8/29)"
	case p.Masked() != p:
		return lo, hi, fmt.Sprintf("not the first address of its block: write %s", p.Masked())
	}
	lo, hi = p.Addr(), lastAddr(p)
	if p.Bits() <= 30 {
		lo, hi = lo.Next(), hi.Prev()
	}
	return lo, hi, ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// derive fills in values that follow from other keys and checks keys
// against each other, once every key has been read.
func (a *applier) derive() {
	c := a.c

	for _, k := range []struct {
		key   string
		field *string
		sub   string
	}{
		{"INSTANCE_PATH", &c.InstancePath, "instances"},
		{"WALRUS_BUCKETS_PATH", &c.WalrusBucketsPath, "bucket"},
		{"SC_VOLUMES_PATH", &c.SCVolumesPath, "volumes"},
	} {
		if !a.isSet(k.key) {
			*k.field = filepath.Join(c.Home, dataSubdir, k.sub)
			a.derivedFrom(k.key, "EUCALYPTUS")
		}
	}

	if !a.isSet("CLUSTER_NAME") {
		c.ClusterName = c.Region + "a"
		a.derivedFrom("CLUSTER_NAME", "REGION")
	} else if !strings.HasPrefix(c.ClusterName, c.Region) {
		a.warn(a.last["CLUSTER_NAME"], c.ClusterName, fmt.Sprintf(
			"does not start with REGION %q: clients that take the region from the zone name will look in the wrong one", c.Region))
	}

	if a.iface != "" {
		for _, k := range []struct {
			key   string
			field *string
		}{{"VNET_PUBINTERFACE", &c.VNetPubInterface}, {"VNET_PRIVINTERFACE", &c.VNetPrivInterface}} {
			if !a.isSet(k.key) {
				*k.field = a.iface
				a.derivedFrom(k.key, "VNET_INTERFACE")
			}
		}
	}

	a.deriveNetwork()
	a.checkPorts()
}

func (a *applier) deriveNetwork() {
	c := a.c
	addr, bits := c.VNetSubnet.Addr(), c.VNetSubnet.Bits()
	if a.subnet.IsValid() {
		addr = a.subnet
	}
	if a.maskBits > 0 {
		bits = a.maskBits
	}
	p := netip.PrefixFrom(addr, bits)
	if m := p.Masked(); m != p {
		st := a.last["VNET_SUBNET"]
		if !a.isSet("VNET_SUBNET") {
			st = a.last["VNET_NETMASK"]
		}
		a.warn(st, strings.TrimSpace(st.value), fmt.Sprintf("%s has host bits set under netmask %s; read as network %s",
			addr, maskString(bits), m.Addr()))
	}
	c.VNetSubnet = p.Masked()
	subnetSet := a.isSet("VNET_SUBNET") || a.isSet("VNET_NETMASK")
	subnetNote := fmt.Sprintf("outside VNET_SUBNET/VNET_NETMASK (%s)", c.VNetSubnet)

	if !a.isSet("VNET_BROADCAST") {
		c.VNetBroadcast = lastAddr(c.VNetSubnet)
		if subnetSet {
			from := "VNET_NETMASK"
			if a.isSet("VNET_SUBNET") {
				from = "VNET_SUBNET"
			}
			a.derivedFrom("VNET_BROADCAST", from)
		}
	} else if !c.VNetSubnet.Contains(c.VNetBroadcast) {
		a.warn(a.last["VNET_BROADCAST"], c.VNetBroadcast.String(), subnetNote)
	}
	if c.VNetRouter.IsValid() && !c.VNetSubnet.Contains(c.VNetRouter) {
		a.warn(a.last["VNET_ROUTER"], c.VNetRouter.String(), subnetNote)
	}
	for i, m := range c.VNetMACMap {
		if !c.VNetSubnet.Contains(m.IP) {
			a.report(a.last["VNET_MACMAP"], a.macLines[i], m.String(), Warning, subnetNote)
		}
	}

	if size := int64(1) << (32 - c.VNetSubnet.Bits()); int64(c.VNetAddrsPerNet) > size {
		st := a.last["VNET_ADDRSPERNET"]
		if !a.isSet("VNET_ADDRSPERNET") {
			st = a.last["VNET_NETMASK"]
		}
		msg := fmt.Sprintf("VNET_ADDRSPERNET %d is more than VNET_SUBNET/VNET_NETMASK (%s) holds (%d addresses)",
			c.VNetAddrsPerNet, c.VNetSubnet, size)
		if st == nil {
			a.ds.add(Diagnostic{Key: "VNET_ADDRSPERNET", Severity: Error, Message: msg})
		} else {
			a.fail(st, strings.TrimSpace(st.value), msg)
		}
	}

	// In the managed modes public addresses are NATed to private ones; one
	// inside the private range would route to the wrong place.
	if strings.HasPrefix(c.VNetMode, "MANAGED") {
		for i, ip := range c.VNetPublicIPs {
			if c.VNetSubnet.Contains(ip) {
				a.report(a.last["VNET_PUBLICIPS"], a.pubLines[i], ip.String(), Error,
					fmt.Sprintf("public address inside the private VNET_SUBNET/VNET_NETMASK (%s)", c.VNetSubnet))
			}
		}
	}
}

// checkPorts: ports of roles that may share a host must differ.
func (a *applier) checkPorts() {
	c := a.c
	ports := []struct {
		key  string
		port int
	}{{"CLOUD_PORT", c.CloudPort}, {"CLOUD_SSL_PORT", c.CloudSSLPort}, {"METADATA_PORT", c.MetadataPort}, {"CC_PORT", c.CCPort}, {"NC_PORT", c.NCPort}, {"SC_NBD_PORT", c.SCNBDPort}}
	for i, p := range ports {
		for _, q := range ports[:i] {
			if p.port != q.port {
				continue
			}
			// Report it on a line the file has: p's if the file sets p, else q's.
			key := p.key
			if !a.isSet(key) {
				key = q.key
			}
			st := a.last[key]
			if st == nil {
				continue
			}
			sev, why := Warning, "the two roles cannot share a host"
			if q.key == "CLOUD_PORT" && p.key == "CLOUD_SSL_PORT" {
				sev, why = Error, "the cloud controller needs two ports"
			}
			other := q.key
			if key == q.key {
				other = p.key
			}
			a.report(st, st.line, strconv.Itoa(p.port), sev, fmt.Sprintf("same port as %s: %s", other, why))
		}
	}
}

// applyJoinToken keeps the token without checking it here: a diagnostic
// shows the value, and the token must not reach a terminal or a log. The
// role that joins checks it and says what is wrong without repeating it.
func applyJoinToken(a *applier, st *statement, v string) {
	a.c.JoinToken = pki.Secret(v)
	a.c.meta[st.key] = entryMeta{source: FromFile, line: st.line}
}

func applyJoinServer(a *applier, st *statement, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		a.fail(st, v, "not HOST:PORT (the front-end's address and CLOUD_PORT)")
		return
	}
	if _, msg := parsePort(port); msg != "" {
		a.fail(st, v, msg)
		return
	}
	a.c.JoinServer = v
	a.fromFile(st)
}
