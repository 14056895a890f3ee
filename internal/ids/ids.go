// Package ids makes resource identifiers shaped as EC2's: a prefix, a dash
// and 17 lower-case hex digits (vpc-0a1b2c3d4e5f60718). Today's clients
// accept 8 or 17 digits; 17 leaves no room for collisions in practice.
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// New returns a fresh id with the given prefix ("sg", "vpc", "key", ...).
func New(prefix string) string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])[:17]
}

// HasPrefix reports whether id is of the kind prefix names.
func HasPrefix(id, prefix string) bool { return strings.HasPrefix(id, prefix+"-") }

// Prefix returns the kind part of an id ("sg" of "sg-0123..."), or "".
func Prefix(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return ""
}
