package conf

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Value syntax shared by several keys. Each parser returns "" or the message
// for an Error diagnostic; the caller adds the key, value and line.

// parseYN accepts what operators actually write for a yes/no key.
func parseYN(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "y", "yes", "true", "1":
		return true, true
	case "n", "no", "false", "0":
		return false, true
	}
	return false, false
}

func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// zeroOne prints a flag the way Eucalyptus wrote MANUAL_INSTANCES_CLEANUP.
func zeroOne(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func parseCount(v, unit string) (int64, string) {
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, "too large"
	case err != nil:
		return 0, "not a whole number" + unit
	case n < 0:
		return 0, "must not be negative"
	}
	return n, ""
}

func parsePort(v string) (int, string) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, "not a port number (1-65535)"
	}
	return n, ""
}

func parseSeconds(v string) (int64, string) {
	n, msg := parseCount(v, " of seconds")
	if msg == "" && n > math.MaxInt64/int64(time.Second) {
		return 0, "too large"
	}
	return n, msg
}

const ellipsis = "…"

// isEllipsis: a list element that is only the document's "and so on".
func isEllipsis(s string) bool {
	return strings.Trim(s, ellipsis) == "" || len(s) >= 3 && strings.Trim(s, ".") == ""
}

func parseIPv4(v string) (netip.Addr, string) {
	a, err := netip.ParseAddr(v)
	switch {
	case strings.Contains(v, ellipsis):
		return netip.Addr{}, `not an IPv4 address: "…" stood for "more of the same" in the document it was copied from`
	case err != nil || !a.Is4():
		return netip.Addr{}, "not an IPv4 address"
	}
	return a, ""
}

// maskBits returns the prefix length of a dotted netmask.
func maskBits(v string) (int, string) {
	a, msg := parseIPv4(v)
	if msg != "" {
		return 0, msg
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if inv := ^m; inv&(inv+1) != 0 {
		return 0, "not a netmask: its one-bits must be contiguous from the left (like 255.255.255.0)"
	}
	ones := 32 - countZeros(m)
	if ones == 0 {
		return 0, "netmask 0.0.0.0 leaves no network"
	}
	return ones, ""
}

func countZeros(m uint32) int {
	n := 0
	for ; n < 32 && m&(1<<n) == 0; n++ {
	}
	return n
}

func maskString(bits int) string {
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func lastAddr(p netip.Prefix) netip.Addr {
	n := addr4(p.Masked().Addr()) | ^(^uint32(0) << (32 - p.Bits()))
	if p.Bits() == 0 {
		n = ^uint32(0)
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// compressAddrs writes runs of three or more consecutive addresses back as
// a-b ranges, so a report of a /16 of public addresses stays one line.
func compressAddrs(as []netip.Addr) string {
	var parts []string
	for i := 0; i < len(as); {
		j := i
		for j+1 < len(as) && as[j].Is4() && as[j+1].Is4() && addr4(as[j+1]) == addr4(as[j])+1 && addr4(as[j]) != math.MaxUint32 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, as[i].String()+"-"+as[j].String())
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, as[k].String())
			}
		}
		i = j + 1
	}
	return strings.Join(parts, " ")
}

func parseMAC(v string) (net.HardwareAddr, bool) {
	m, err := net.ParseMAC(v)
	return m, err == nil && len(m) == 6
}

// validIfName follows the kernel's rules (dev_valid_name).
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == ':' || unicode.IsSpace(r) || r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(isNameChar(c) || c == '-') {
				return false
			}
		}
	}
	return true
}

// validNode accepts host, host:port, an IP address and [v6]:port.
func validNode(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return true
	}
	host := s
	if strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return false
		}
		if _, msg := parsePort(p); msg != "" {
			return false
		}
		if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
			return true
		}
		host = h
	}
	return validHostname(host)
}

// field is one blank-separated element of a list value and where it starts.
type field struct {
	off  int
	text string
}

func fields(s string) []field {
	var out []field
	start := -1
	for i, r := range s {
		switch {
		case unicode.IsSpace(r) && start >= 0:
			out = append(out, field{start, s[start:i]})
			start = -1
		case !unicode.IsSpace(r) && start < 0:
			start = i
		}
	}
	if start >= 0 {
		out = append(out, field{start, s[start:]})
	}
	return out
}
