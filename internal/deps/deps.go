// Package deps pins the project's fixed dependencies in go.mod before the
// packages that use them land (the hypervisor, network and DHCP layers), so
// that engineers working in parallel never need to edit go.mod at once.
// Delete an import here once a real package uses it.
package deps

import (
	_ "github.com/digitalocean/go-libvirt"                // hypervisor/libvirt
	_ "github.com/digitalocean/go-libvirt/socket/dialers" // hypervisor/libvirt
	_ "github.com/google/nftables"                        // netmode
	_ "github.com/insomniacslk/dhcp/dhcpv4/nclient4"      // netmode/dhcp tests
	_ "github.com/insomniacslk/dhcp/dhcpv4/server4"       // netmode/dhcp
	_ "github.com/vishvananda/netlink"                    // netmode
	_ "libvirt.org/go/libvirtxml"                         // hypervisor/libvirt
)
