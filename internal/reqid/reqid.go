// Package reqid gives every request a correlation id that travels in its
// context from the edge through the cluster and node controllers, appears in
// every log line about it (through Handler) and in error documents.
package reqid

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
)

type key struct{}

// New makes an id shaped like AWS's request ids (a random UUID).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Header is the HTTP header that carries the id between roles and back to
// clients (the name S3 and EC2 use for theirs).
const Header = "X-Amz-Request-Id"

// Handler wraps a slog.Handler so that every record logged with a context
// carrying an id gets a request_id attribute.
type Handler struct{ slog.Handler }

func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h Handler) WithAttrs(as []slog.Attr) slog.Handler { return Handler{h.Handler.WithAttrs(as)} }
func (h Handler) WithGroup(name string) slog.Handler    { return Handler{h.Handler.WithGroup(name)} }
