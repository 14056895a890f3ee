package pki

import "log/slog"

const redacted = "[REDACTED]"

// Secret is a string that must never reach a log: a secret access key, a join
// token, a password. It prints, logs (slog), and text/JSON-encodes as
// "[REDACTED]", so passing one to a logger or an error by accident is harmless.
// Call Reveal to get the value, where it is really meant to leave the process
// (a signature, a credentials file); a wire format must carry Reveal()'s
// string, not the Secret, because encoding a Secret redacts it too.
type Secret string

// Reveal returns the secret value. Every call is a place a reviewer should look.
func (s Secret) Reveal() string { return string(s) }

// String redacts, so fmt's %s, %v, %q and %x never show the value.
func (s Secret) String() string { return redacted }

// GoString redacts %#v as well.
func (s Secret) GoString() string { return `pki.Secret("` + redacted + `")` }

// LogValue redacts the value for log/slog, whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText redacts the value in encoding/json and encoding/xml, which is how
// a struct holding a Secret reaches a JSON log handler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
