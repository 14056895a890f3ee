// Package eipnat measures what the cloud's filter and NAT cost a guest's
// traffic (make bench-eip): TCP throughput from a client outside the cloud
// to a guest through its elastic IP (MANAGED-NOVLAN's bridge, security
// group filter and 1:1 NAT, built by package netmode) against the same
// path, veth to router to bridge to veth, with nothing but routing, in the
// same run. Network namespaces stand in for the guests. A benchmark, not a
// test: nothing asserts on time.
package eipnat
