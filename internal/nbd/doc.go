// Package nbd is the EBS data path: a Network Block Device server, client
// and reconnecting proxy, written from the protocol's specification
// (NetworkBlockDevice/nbd doc/proto.md) because no Go implementation is
// available to the build.
//
// # The path of a guest's write
//
//	guest virtio-blk -> QEMU's NBD client -> unix socket (root only)
//	  -> the node controller's Proxy -> TCP + mutual TLS (cloud CA)
//	  -> the storage controller's Server -> Export (the volume's file)
//
// # Why a proxy on the node
//
// libvirt 9.0 gives QEMU one NBD TLS credential directory per host: one CA
// and one client identity for every cloud on the host, where tests run
// several clouds side by side, each with its own CA. And it has no NBD
// reconnect option, so a restart of the storage controller would be an I/O
// error in the guest. So QEMU speaks plain NBD over a root-only unix
// socket to the node controller, whose Proxy speaks TLS with the node's own
// certificate and hides a storage controller restart: it dials again with
// backoff and resends every request not yet answered. NBD's requests are
// idempotent (READ, WRITE, FLUSH, TRIM and WRITE_ZEROES all give the same
// result done twice), so resending is safe; only after [Proxy.RetryFor]
// does the guest see EIO (and with error_policy='stop', a paused domain).
//
// # The server
//
// Fixed newstyle handshake with NO_ZEROES. With a tls.Config the server is
// TLS-only: every option before NBD_OPT_STARTTLS gets NBD_REP_ERR_TLS_REQD
// and NBD_OPT_EXPORT_NAME hangs up, so no export name or data ever crosses
// the network in clear. NBD_OPT_GO/INFO answer NBD_INFO_EXPORT and
// NBD_INFO_BLOCK_SIZE (1 / 4096 / 32 MiB); NBD_OPT_LIST is refused (export
// names are capabilities) and NBD_OPT_STRUCTURED_REPLY too, so every reply
// is a simple reply and QEMU never asks for block status. The exports'
// transmission flags: HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM,
// SEND_WRITE_ZEROES — not CAN_MULTI_CONN, since one connection per
// attachment makes fencing ([Server.Drop]) a matter of closing it.
//
// Requests are pipelined: one goroutine reads requests, each runs in its
// own goroutine (at most MaxInFlight and MaxInFlightBytes at once per
// connection), and replies are written whole under a mutex in completion
// order. Everything a client controls is bounded: the handshake's time
// (10 s), an option's length (4 KiB) and count, a request's length (32
// MiB; more is EINVAL and a hang-up), the connections per Server, and the
// time a reply may wait for a client that does not read. Idle connections
// are fine: QEMU keeps its connection open while the disk is attached.
//
// # Durability contract
//
// A WRITE is acknowledged once pwrite(2) has put it in the page cache of
// the storage controller's host. A SIGKILL of the storage controller
// therefore loses nothing acknowledged: the kernel still holds it and
// writes it back. Durability against a host crash is what the guest asks
// for with FLUSH (and with FUA on a single write): both are fdatasync(2)
// of the volume's file before the reply. A FLUSH resent by the Proxy after
// a reconnect syncs the whole file, so it also covers writes acknowledged
// by the storage controller's previous process.
//
// A READ that fails is answered with its error and no data (what QEMU's
// client and qemu-nbd expect of simple replies).
package nbd
