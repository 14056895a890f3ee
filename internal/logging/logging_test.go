package logging

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/reqid"
)

func TestFilesByRole(t *testing.T) {
	dir := t.TempDir()
	log, closer, err := Files(dir, slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	ctx := reqid.With(context.Background(), "req-1")
	log.Info("starting")
	log.With("role", "clc").DebugContext(ctx, "clc detail")
	log.With("role", "clc").ErrorContext(ctx, "clc broke")
	log.With("role", "cc").Info("cc polled")
	log.With("role", "nc").Warn("nc cache full")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		file     string
		has, not []string
	}{
		{"cloud-output.log", []string{"starting", "clc broke"}, []string{"clc detail", "cc polled", "nc cache"}},
		{"cloud-debug.log", []string{"starting", "clc detail", "clc broke", "request_id=req-1"}, []string{"cc polled"}},
		{"cloud-error.log", []string{"clc broke"}, []string{"starting", "clc detail"}},
		{"cc.log", []string{"cc polled"}, []string{"clc", "nc cache"}},
		{"nc.log", []string{"nc cache full"}, []string{"cc polled"}},
	} {
		got := read(c.file)
		for _, s := range c.has {
			if !strings.Contains(got, s) {
				t.Errorf("%s lacks %q:\n%s", c.file, s, got)
			}
		}
		for _, s := range c.not {
			if strings.Contains(got, s) {
				t.Errorf("%s has %q:\n%s", c.file, s, got)
			}
		}
	}
}

func TestLevelHonoured(t *testing.T) {
	dir := t.TempDir()
	log, closer, err := Files(dir, slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	log.With("role", "clc").Info("chatty")
	log.With("role", "clc").Warn("worth knowing")
	closer.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "cloud-debug.log"))
	if strings.Contains(string(b), "chatty") || !strings.Contains(string(b), "worth knowing") {
		t.Errorf("LOGLEVEL=WARN not honoured:\n%s", b)
	}
}
