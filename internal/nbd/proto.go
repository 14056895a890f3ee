package nbd

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Wire constants of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md).
// All integers on the wire are big-endian.
const (
	magicInit      = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt       = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply  = 0x3e889045565a9
	magicRequest   = 0x25609513
	magicReply     = 0x67446698
	magicStructRep = 0x668e33ef

	// Handshake flags (server) and client flags.
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	// Options.
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10

	// Option reply types.
	repAck         = 1
	repServer      = 2
	repInfo        = 3
	repErrBit      = 1 << 31
	repErrUnsup    = repErrBit + 1
	repErrPolicy   = repErrBit + 2
	repErrInvalid  = repErrBit + 3
	repErrPlatform = repErrBit + 4
	repErrTLSReqd  = repErrBit + 5
	repErrUnknown  = repErrBit + 6
	repErrShutdown = repErrBit + 7

	// Info types in NBD_REP_INFO replies and NBD_OPT_GO/INFO requests.
	infoExport    = 0
	infoName      = 1
	infoDescr     = 2
	infoBlockSize = 3

	// Transmission flags.
	tflagHasFlags        = 1 << 0
	tflagReadOnly        = 1 << 1
	tflagSendFlush       = 1 << 2
	tflagSendFUA         = 1 << 3
	tflagSendTrim        = 1 << 5
	tflagSendWriteZeroes = 1 << 6

	// Commands.
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdWriteZeroes = 6

	// Command flags.
	cmdFlagFUA    = 1 << 0
	cmdFlagNoHole = 1 << 1

	requestHeaderLen = 28
	replyHeaderLen   = 16
)

// The flags every export is served with. Not CAN_MULTI_CONN: one connection
// per attachment keeps fencing ([Server.Drop]) simple, and QEMU opens one.
const exportFlags = tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes

// Limits. MaxRequest is also what INFO_BLOCK_SIZE advertises as the maximum,
// so a conforming client never exceeds it; a request above it is refused and
// the connection closed, since its payload cannot be trusted to be bounded.
const (
	MaxRequest     = 32 << 20
	preferredBlock = 4096
	maxOptionLen   = 4096
	maxOptions     = 64
)

// Errno is an NBD error value as carried in a reply (the protocol's own
// numbering, which happens to match Linux's for the values it defines).
type Errno uint32

// NBD error values.
const (
	EPERM     Errno = 1
	EIO       Errno = 5
	ENOMEM    Errno = 12
	EINVAL    Errno = 22
	ENOSPC    Errno = 28
	EOVERFLOW Errno = 75
	ENOTSUP   Errno = 95
	ESHUTDOWN Errno = 108
)

func (e Errno) Error() string {
	switch e {
	case EPERM:
		return "nbd: operation not permitted"
	case EIO:
		return "nbd: input/output error"
	case ENOMEM:
		return "nbd: out of memory"
	case EINVAL:
		return "nbd: invalid argument"
	case ENOSPC:
		return "nbd: no space left on device"
	case EOVERFLOW:
		return "nbd: value too large"
	case ENOTSUP:
		return "nbd: operation not supported"
	case ESHUTDOWN:
		return "nbd: server shutting down"
	}
	return fmt.Sprintf("nbd: error %d", uint32(e))
}

// errnoOf maps an export's error to the NBD error sent to the client. Only
// the class of failure crosses the wire, never the message.
func errnoOf(err error) Errno {
	var e Errno
	if errors.As(err, &e) {
		return e
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		switch se {
		case syscall.EPERM, syscall.EACCES, syscall.EROFS:
			return EPERM
		case syscall.ENOSPC, syscall.EDQUOT:
			return ENOSPC
		case syscall.ENOMEM:
			return ENOMEM
		case syscall.EINVAL:
			return EINVAL
		case syscall.EOPNOTSUPP:
			return ENOTSUP
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return EPERM
	}
	return EIO
}

// OptionError is an error reply to an option during the handshake, as a
// client sees it.
type OptionError struct {
	Option  uint32
	Type    uint32
	Message string
}

func (e *OptionError) Error() string {
	name := map[uint32]string{
		repErrUnsup: "unsupported", repErrPolicy: "refused by policy", repErrInvalid: "invalid",
		repErrPlatform: "not supported on this platform", repErrTLSReqd: "TLS required",
		repErrUnknown: "unknown export", repErrShutdown: "server shutting down",
	}[e.Type]
	if name == "" {
		name = fmt.Sprintf("error %#x", e.Type)
	}
	if e.Message != "" {
		return fmt.Sprintf("nbd: option %d: %s: %s", e.Option, name, e.Message)
	}
	return fmt.Sprintf("nbd: option %d: %s", e.Option, name)
}

// Errors a Lookup may return to choose the handshake's answer; any other
// error is answered as a server-side failure without its text.
var (
	// ErrUnknownExport: no such export (NBD_REP_ERR_UNKNOWN).
	ErrUnknownExport = errors.New("nbd: unknown export")
	// ErrDenied: the peer may not use this export (NBD_REP_ERR_POLICY).
	ErrDenied = errors.New("nbd: export not allowed for this peer")
)
