package power

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
)

// ARPTable is the kernel's neighbour table as Linux prints it.
const ARPTable = "/proc/net/arp"

// ARPMAC is the MAC address of node (a host name or address, with or
// without a port) from the ARP table at path: the host must have been
// reached lately, as a node the cluster controller polled until it went to
// sleep has been. Eucalyptus found a sleeping node's MAC the same way.
func ARPMAC(path string) func(node string) (net.HardwareAddr, error) {
	return func(node string) (net.HardwareAddr, error) {
		host := node
		if h, _, err := net.SplitHostPort(node); err == nil {
			host = h
		}
		ips, err := net.LookupIP(host)
		if err != nil {
			return nil, fmt.Errorf("power: address of %s: %w", node, err)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("power: %w", err)
		}
		defer f.Close()
		for _, ip := range ips {
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				continue
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, fmt.Errorf("power: %w", err)
			}
			if mac, err := lookupARP(f, a.Unmap()); err == nil {
				return mac, nil
			}
		}
		return nil, fmt.Errorf("power: no MAC address for %s in %s (the host has not been reached lately)", node, path)
	}
}

// lookupARP finds ip's complete entry in an ARP table.
func lookupARP(r io.Reader, ip netip.Addr) (net.HardwareAddr, error) {
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[0] != ip.String() {
			continue
		}
		mac, err := net.ParseMAC(f[3])
		if err != nil || f[2] == "0x0" { // 0x0: incomplete, no reply yet
			continue
		}
		return mac, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("power: %s not in the ARP table", ip)
}
