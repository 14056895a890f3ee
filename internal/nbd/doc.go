// Package nbd is the EBS data path: a Network Block Device server, client
// and reconnecting proxy, written from the protocol's specification
// (NetworkBlockDevice/nbd doc/proto.md) because no Go implementation is
// available to the build.
package nbd
