// Package logging sets up euca's log/slog output.
//
// In the foreground everything goes to stderr. Run as a service
// (--log-files), each role writes the files Eucalyptus operators know, under
// $EUCALYPTUS/var/log/eucalyptus/: the cloud controller and Walrus to
// cloud-output.log (INFO and up), cloud-debug.log (everything LOGLEVEL lets
// through) and cloud-error.log (ERROR only); the cluster controller to
// cc.log; the node controller to nc.log. Lines not about one role go to
// cloud-output.log. Every line about a request carries its request_id
// (reqid.Handler).
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/euca-cloud/euca/internal/reqid"
)

// Stderr is the foreground logger.
func Stderr(level slog.Level) *slog.Logger {
	return slog.New(reqid.Handler{Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})})
}

// Files opens the legacy log files in dir; Close them when done.
func Files(dir string, level slog.Level) (*slog.Logger, io.Closer, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("log directory: %w", err)
	}
	files := map[string]*os.File{}
	open := func(name string) (*os.File, error) {
		if f, ok := files[name]; ok {
			return f, nil
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, err
		}
		files[name] = f
		return f, nil
	}
	closer := closeAll(files)
	text := func(name string, min slog.Level) (slog.Handler, error) {
		f, err := open(name)
		if err != nil {
			return nil, err
		}
		return slog.NewTextHandler(f, &slog.HandlerOptions{Level: max(min, level)}), nil
	}
	var cloud []slog.Handler
	for _, spec := range []struct {
		name string
		min  slog.Level
	}{{"cloud-output.log", slog.LevelInfo}, {"cloud-debug.log", slog.LevelDebug}, {"cloud-error.log", slog.LevelError}} {
		h, err := text(spec.name, spec.min)
		if err != nil {
			closer.Close()
			return nil, nil, err
		}
		cloud = append(cloud, h)
	}
	cc, err := text("cc.log", slog.LevelDebug)
	if err != nil {
		closer.Close()
		return nil, nil, err
	}
	nc, err := text("nc.log", slog.LevelDebug)
	if err != nil {
		closer.Close()
		return nil, nil, err
	}
	h := &roleHandler{byRole: map[string][]slog.Handler{"cc": {cc}, "nc": {nc}}, fallback: cloud}
	return slog.New(reqid.Handler{Handler: h}), closer, nil
}

type closeAll map[string]*os.File

func (c closeAll) Close() error {
	var errs []error
	for _, f := range c {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// roleHandler sends each record to the files of the role it is about; the
// role is learnt from a "role" attribute given through Logger.With.
type roleHandler struct {
	byRole   map[string][]slog.Handler
	fallback []slog.Handler
	current  []slog.Handler // nil until a role attribute is seen
	attrs    []slog.Attr
	groups   []string
}

func (h *roleHandler) targets() []slog.Handler {
	if h.current != nil {
		return h.current
	}
	return h.fallback
}

func (h *roleHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, t := range h.targets() {
		if t.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (h *roleHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, t := range h.targets() {
		if t.Enabled(ctx, r.Level) {
			errs = append(errs, t.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (h *roleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	for _, a := range as {
		if a.Key == "role" && len(h.groups) == 0 {
			if hs, ok := h.byRole[a.Value.String()]; ok {
				n.current = hs
			} else {
				n.current = h.fallback
			}
		}
	}
	n.fallback = with(h.fallback, as)
	if n.current != nil {
		n.current = with(n.current, as)
	}
	n.byRole = map[string][]slog.Handler{}
	for k, v := range h.byRole {
		n.byRole[k] = with(v, as)
	}
	return &n
}

func (h *roleHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.groups = append(append([]string{}, h.groups...), name)
	g := func(hs []slog.Handler) []slog.Handler {
		out := make([]slog.Handler, len(hs))
		for i, x := range hs {
			out[i] = x.WithGroup(name)
		}
		return out
	}
	n.fallback = g(h.fallback)
	if n.current != nil {
		n.current = g(n.current)
	}
	n.byRole = map[string][]slog.Handler{}
	for k, v := range h.byRole {
		n.byRole[k] = g(v)
	}
	return &n
}

func with(hs []slog.Handler, as []slog.Attr) []slog.Handler {
	out := make([]slog.Handler, len(hs))
	for i, x := range hs {
		out[i] = x.WithAttrs(as)
	}
	return out
}
