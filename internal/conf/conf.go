package conf

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
)

// Severity says whether a diagnostic stops start-up.
type Severity int

const (
	// Warning: the value was read, perhaps not literally; the operator should know.
	Warning Severity = iota
	// Error: the value cannot be meant; Load refuses the file.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diagnostic is one finding about the file, tied to a line where there is one.
type Diagnostic struct {
	File     string // the name given to Parse; "" prints as eucalyptus.conf
	Line     int    // 1-based; 0 when it concerns the file as a whole
	Key      string
	Value    string // the value (or the list element) the finding is about
	Severity Severity
	Message  string
}

// String formats d the way compilers do, so editors can jump to the line:
// "eucalyptus.conf:3: error: VNET_MODE="BOGUS": not a network mode (...)".
func (d Diagnostic) String() string {
	file := d.File
	if file == "" {
		file = "eucalyptus.conf"
	}
	var b strings.Builder
	b.WriteString(file)
	if d.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(d.Line))
	}
	b.WriteString(": ")
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Key != "" {
		b.WriteString(d.Key)
		if d.Value != "" {
			b.WriteString("=")
			b.WriteString(strconv.Quote(d.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// HasErrors reports whether any diagnostic is an Error.
func HasErrors(diags []Diagnostic) bool {
	return slices.ContainsFunc(diags, func(d Diagnostic) bool { return d.Severity == Error })
}

// Source says where an effective value came from.
type Source int

const (
	FromDefault Source = iota // the key is absent (or empty) and nothing it follows from is set
	FromFile                  // the file sets it
	FromDerived               // absent, but it follows from another key the file sets
)

func (s Source) String() string {
	switch s {
	case FromFile:
		return "file"
	case FromDerived:
		return "derived"
	}
	return "default"
}

// Entry is one known key with its effective value, for reports.
type Entry struct {
	Key         string
	Value       string // canonical form of the effective value
	Source      Source
	Line        int    // where the file sets it (FromFile), or sets DerivedFrom (FromDerived)
	DerivedFrom string // the key a FromDerived value follows from
}

// MACIP is one VNET_MACMAP pair: the MAC address STATIC mode gives an
// instance and the IPv4 address its DHCP lease carries.
type MACIP struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

func (m MACIP) String() string { return strings.ToUpper(m.MAC.String()) + "=" + m.IP.String() }

// Config is the effective configuration: the file's values over the defaults.
type Config struct {
	Home       string // EUCALYPTUS: prefix of etc/, var/lib/, var/log/
	EucaUser   string // EUCA_USER: informational; the service manager decides the user
	DisableEBS bool
	WSSecurity bool // ENABLE_WS_SECURITY: mutual TLS between roles
	// JoinToken and JoinServer (JOIN_TOKEN, JOIN_SERVER) are --join and
	// --server for an unattended install: the token `euca token create`
	// printed on the front-end, and the front-end's HOST:PORT.
	JoinToken  pki.Secret
	JoinServer string
	LogLevel   slog.Level

	CloudPort, CloudSSLPort, CCPort, NCPort int
	// MetadataPort is where the cloud controller serves the instance
	// metadata service; the network redirects 169.254.169.254:80 to it.
	MetadataPort int

	SchedPolicy                      string // GREEDY, ROUNDROBIN or POWERSAVE
	PowerIdleThresh, PowerWakeThresh time.Duration
	Nodes                            []string // host or host:port, as written
	NCService                        string   // NC_SERVICE: informational (the Axis2 path of Eucalyptus's NC)

	Hypervisor             string // "auto", "kvm", "qemu" or "xen"
	MaxMemMB, MaxCores     int    // 0: the whole host
	MaxDiskGB              int    // 0: the whole host
	SwapSizeMB             int
	ManualInstancesCleanup bool
	InstancePath           string
	NCCacheSizeMB          int // 0 disables the image cache

	VNetMode                            string       // SYSTEM, STATIC, MANAGED or MANAGED-NOVLAN
	VNetPubInterface, VNetPrivInterface string       // "": the network mode chooses
	VNetBridge                          string       // "": the network mode chooses
	VNetSubnet                          netip.Prefix // VNET_SUBNET/VNET_NETMASK, host bits cleared
	VNetBroadcast                       netip.Addr   // absent: the subnet's last address
	VNetRouter                          netip.Addr   // invalid (zero) when unset
	VNetDNS                             []netip.Addr
	VNetMACMap                          []MACIP
	VNetAddrsPerNet                     int
	VNetPublicIPs                       []netip.Addr // ranges expanded, in file order
	VNetLocalIP, VNetCloudIP            netip.Addr   // invalid (zero) when unset
	DisableDNS                          bool

	Region, ClusterName string // ClusterName is the availability zone

	WalrusBucketsPath                         string
	WalrusMaxBuckets                          int
	WalrusMaxBucketSizeMB, WalrusImageCacheMB int64

	// SCVolumesPath holds the storage controller's volumes (sparse raw
	// files), SCNBDPort is where it serves them to nodes over NBD with
	// TLS, and SCNBDAddress the address nodes reach it at (invalid: chosen
	// at start, see roles).
	SCVolumesPath string
	SCNBDPort     int
	SCNBDAddress  netip.Addr

	Path string // the file read; "" for Defaults()

	meta map[string]entryMeta // per key: where its value came from
}

// entryMeta records what Entries cannot recover from the typed fields.
type entryMeta struct {
	source Source
	line   int
	from   string // DerivedFrom
	raw    string // value of keys that have no typed field
}

const (
	defaultRegion = "us-east-1"
	dataSubdir    = "var/lib/eucalyptus"
)

// Defaults returns the configuration of a host with no eucalyptus.conf.
//
// EUCALYPTUS defaults to "/" when running as root, as a packaged Eucalyptus
// did, and otherwise to $HOME/.euca, so that a developer's laptop runs without
// root and without writing outside the home directory.
func Defaults() *Config {
	home := defaultHome()
	c := &Config{
		Home:                  home,
		EucaUser:              "root",
		DisableEBS:            false,
		WSSecurity:            true,
		LogLevel:              slog.LevelDebug,
		CloudPort:             8773,
		CloudSSLPort:          8443,
		CCPort:                8774,
		MetadataPort:          8779,
		NCPort:                8775,
		SchedPolicy:           "GREEDY",
		PowerIdleThresh:       300 * time.Second,
		PowerWakeThresh:       300 * time.Second,
		NCService:             "axis2/services/EucalyptusNC",
		Hypervisor:            "auto",
		SwapSizeMB:            512,
		InstancePath:          filepath.Join(home, dataSubdir, "instances"),
		NCCacheSizeMB:         99999,
		VNetMode:              "MANAGED-NOVLAN",
		VNetSubnet:            netip.MustParsePrefix("172.31.0.0/16"),
		VNetAddrsPerNet:       32,
		Region:                defaultRegion,
		ClusterName:           defaultRegion + "a",
		WalrusBucketsPath:     filepath.Join(home, dataSubdir, "bucket"),
		WalrusMaxBuckets:      5,
		WalrusMaxBucketSizeMB: 5120,
		WalrusImageCacheMB:    30720,
		SCVolumesPath:         filepath.Join(home, dataSubdir, "volumes"),
		SCNBDPort:             10809,
	}
	c.VNetBroadcast = lastAddr(c.VNetSubnet)
	return c
}

func defaultHome() string {
	if os.Geteuid() == 0 {
		return "/"
	}
	if h, err := os.UserHomeDir(); err == nil && filepath.IsAbs(h) {
		return filepath.Join(h, ".euca")
	}
	// No usable $HOME (a bare service account): still a private, absolute place.
	return filepath.Join(os.TempDir(), "euca-"+strconv.Itoa(os.Geteuid()))
}

// DataDir is where roles keep state: $EUCALYPTUS/var/lib/eucalyptus.
func (c *Config) DataDir() string { return filepath.Join(c.Home, dataSubdir) }

// LogDir is where services write the legacy log files.
func (c *Config) LogDir() string { return filepath.Join(c.Home, "var/log/eucalyptus") }

// ConfDir holds eucalyptus.conf and the cloud's keys.
func (c *Config) ConfDir() string { return filepath.Join(c.Home, "etc/eucalyptus") }

// Entries lists every known key in the order of eucalyptus.conf.example
// (basic, cloud, walrus, cluster, node, network) with its effective value.
func (c *Config) Entries() []Entry {
	out := make([]Entry, 0, len(keyTable))
	for _, k := range keyTable {
		m := c.meta[k.name]
		e := Entry{Key: k.name, Source: m.source, Line: m.line, DerivedFrom: m.from}
		if k.format != nil {
			e.Value = k.format(c)
		} else {
			e.Value = m.raw
		}
		out = append(out, e)
	}
	return out
}

// maxFileSize bounds what Parse reads: real files are a few KiB, and the
// bound keeps a wrong --conf (a disk image, /dev/zero) from eating memory.
const maxFileSize = 4 << 20

// Parse reads a eucalyptus.conf from r. name is used in diagnostics and as
// Config.Path. The Config is never nil: keys that could not be read keep
// their defaults, and the diagnostics say which.
func Parse(r io.Reader, name string) (*Config, []Diagnostic) {
	c := Defaults()
	c.Path = name
	c.meta = map[string]entryMeta{}
	ds := &sink{file: name}

	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	switch {
	case err != nil:
		ds.add(Diagnostic{Severity: Error, Message: "cannot read: " + err.Error()})
		return c, ds.done()
	case len(data) > maxFileSize:
		ds.add(Diagnostic{Severity: Error, Message: fmt.Sprintf("larger than %d MiB: not a eucalyptus.conf", maxFileSize>>20)})
		return c, ds.done()
	}

	stmts := lex(string(bytes.TrimPrefix(data, []byte("\uFEFF"))), ds)
	apply(c, stmts, ds)
	return c, ds.done()
}

// Load reads the file at path. The error is non-nil when the file cannot be
// read (Config and diagnostics are then nil) or when any diagnostic is an
// Error; in that case Config and diagnostics are returned too, so a caller
// can still print the whole report.
func Load(path string) (*Config, []Diagnostic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("eucalyptus.conf: %w", err)
	}
	defer f.Close()
	c, diags := Parse(f, path)
	if !HasErrors(diags) {
		return c, diags, nil
	}
	var b strings.Builder
	n := 0
	for _, d := range diags {
		if d.Severity == Error {
			n++
			b.WriteString("\n\t")
			b.WriteString(d.String())
		}
	}
	return c, diags, fmt.Errorf("%s: %d %s:%s", path, n, plural(n, "error", "errors"), b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// maxDiags keeps a file of garbage from producing a million diagnostics;
// nobody reads past the first screens anyway.
const maxDiags = 500

// sink collects diagnostics in emission order.
type sink struct {
	file          string
	diags         []Diagnostic
	dropped       int
	droppedErrors bool
}

func (s *sink) add(d Diagnostic) {
	if len(s.diags) >= maxDiags {
		s.dropped++
		s.droppedErrors = s.droppedErrors || d.Severity == Error
		return
	}
	d.File = s.file
	s.diags = append(s.diags, d)
}

// done sorts by line (stably, so a line's findings keep the order in which
// reading met them) and notes what was left out.
func (s *sink) done() []Diagnostic {
	slices.SortStableFunc(s.diags, func(a, b Diagnostic) int { return cmp.Compare(a.Line, b.Line) })
	if s.dropped > 0 {
		sev := Warning
		if s.droppedErrors {
			sev = Error
		}
		s.diags = append(s.diags, Diagnostic{File: s.file, Severity: sev,
			Message: fmt.Sprintf("%d more %s not listed", s.dropped, plural(s.dropped, "problem", "problems"))})
	}
	return s.diags
}
