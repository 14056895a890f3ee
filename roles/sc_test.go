package roles

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/conf"
)

func TestDisableEBS(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := conf.Defaults()
	all, _ := Parse("all")
	if !all[SC] {
		t.Fatal("all leaves the storage controller out")
	}
	if got, err := withoutEBS(all, cfg, log); err != nil || !got[SC] {
		t.Fatalf("EBS on: %v %v", got, err)
	}
	cfg.DisableEBS = true
	got, err := withoutEBS(all, cfg, log)
	if err != nil || got[SC] || !got[CLC] || !got[Walrus] {
		t.Fatalf("DISABLE_EBS with all: %v %v", got, err)
	}
	storage, _ := Parse("storage")
	if got, err := withoutEBS(storage, cfg, log); err != nil || got.String() != "walrus" {
		t.Fatalf("DISABLE_EBS with storage: %v %v", got, err)
	}
	if _, err := withoutEBS(Set{SC: true}, cfg, log); err == nil || !strings.Contains(err.Error(), "DISABLE_EBS") {
		t.Fatalf("DISABLE_EBS with sc alone: %v", err)
	}
	if err := Run(context.Background(), Options{Roles: Set{SC: true}, Conf: conf.Defaults(), Log: log}); err == nil || !strings.Contains(err.Error(), "role sc needs role") {
		t.Fatalf("sc without the cloud controller: %v", err)
	}
}

// TestStorageRoleServesNBD: the front-end's process runs the storage
// controller with the cloud controller, listening on SC_NBD_PORT with TLS
// only, volumes under SC_VOLUMES_PATH.
func TestStorageRoleServesNBD(t *testing.T) {
	home := t.TempDir()
	cfg := conf.Defaults()
	cfg.Home = home
	cfg.WalrusBucketsPath = filepath.Join(home, "buckets")
	cfg.InstancePath = filepath.Join(home, "instances")
	cfg.SCVolumesPath = filepath.Join(home, "vols")
	cfg.CloudPort, cfg.MetadataPort = 0, 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SCNBDPort = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Roles: Set{CLC: true, Walrus: true, SC: true}, Conf: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: ready})
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("cloud did not start: %v", err)
	case <-time.After(upperBound):
		t.Fatal("cloud did not start")
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.SCNBDPort)), upperBound)
	if err != nil {
		t.Fatalf("SC_NBD_PORT: %v", err)
	}
	defer c.Close()
	// NBD's greeting: "NBDMAGIC" "IHAVEOPT".
	c.SetDeadline(time.Now().Add(upperBound))
	b := make([]byte, 16)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "NBDMAGICIHAVEOPT" {
		t.Fatalf("greeting %q %v", b, err)
	}
	if st, err := os.Stat(cfg.SCVolumesPath); err != nil || !st.IsDir() {
		t.Fatalf("SC_VOLUMES_PATH: %v", err)
	}
}
