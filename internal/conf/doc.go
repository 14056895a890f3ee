// Package conf reads eucalyptus.conf, the shell-style KEY="value" file that
// configured Eucalyptus 1.x, into a typed Config with line-numbered
// diagnostics.
//
// Why a reader of its own rather than "source it in a shell": the point of
// euca is that an existing Eucalyptus 1.5/1.6 setup switches by replacing the
// daemons and keeping its file, and those files were often pasted from
// documents. So the reader accepts what an operator plainly meant and says
// what it changed (typographic quotes, a quoted list continued over lines, the
// document's own "…" at the end of a list, keys that no longer apply), and
// refuses with the key, the value and the line whatever cannot be meant (an
// ellipsis where an address must be, a netmask with holes, an unknown network
// mode). Unlike Eucalyptus, a missing key is never fatal: every key has a
// default a laptop can run on.
//
// Reading happens in three steps:
//
//  1. lex.go splits the text into assignments, the way a POSIX shell would
//     (quotes, backslash-newline, $VAR and ${VAR} of earlier keys, comments),
//     plus the tolerances above. It never sees key semantics.
//  2. keys.go holds one row per known key, in the documented order: how its
//     value is parsed and validated, and how its effective value is printed.
//     Only the last assignment of a key is applied, so cross-key rules do not
//     depend on the order of lines in the file.
//  3. derive (keys.go) fills in what follows from other keys (subnet from
//     VNET_SUBNET and VNET_NETMASK, INSTANCE_PATH from EUCALYPTUS,
//     CLUSTER_NAME from REGION, interfaces from the older VNET_INTERFACE) and
//     checks the keys against each other.
//
// Diagnostics come back sorted by line. Parse never fails: it returns the
// defaults for whatever it could not read, so `euca conf check` can print
// everything at once. Load refuses a file with any Error diagnostic, because
// a cloud started on a value the operator did not write is worse than one
// that does not start.
package conf
