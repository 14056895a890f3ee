package nbd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// qemuIO runs qemu-io with the given image options and commands, and fails
// the test on a non-zero exit or any failure it prints.
func qemuIO(t *testing.T, credsDir, imageOpts string, cmds ...string) string {
	t.Helper()
	out, err := runQemuIO(credsDir, imageOpts, cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runQemuIO is qemuIO for any goroutine: qemu-io exits 0 even when a
// command fails, so its output is searched for failures too.
func runQemuIO(credsDir, imageOpts string, cmds ...string) (string, error) {
	args := []string{}
	if credsDir != "" {
		args = append(args, "--object", "tls-creds-x509,id=tls0,endpoint=client,dir="+credsDir)
	}
	args = append(args, "--image-opts", imageOpts)
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-io", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("qemu-io %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	low := strings.ToLower(string(out))
	for _, bad := range []string{"fail", "error", "mismatch"} {
		if strings.Contains(low, bad) {
			return string(out), fmt.Errorf("qemu-io %s:\n%s", strings.Join(args, " "), out)
		}
	}
	return string(out), nil
}

// The commands every interop test runs: write, flush, read back, discard,
// write-zeroes, each verified by QEMU's own pattern check.
var qemuCommands = []string{
	"write -P 0xab 0 1M",
	"write -f -P 0xcd 1M 1M", // -f: FUA
	"flush",
	"read -P 0xab 0 1M",
	"read -P 0xcd 1M 1M",
	"discard 512k 256k",
	"read -P 0 512k 256k",
	"write -z 1M 64k",
	"read -P 0 1M 64k",
	"read -P 0xcd 1088k 960k",
	"write -P 0x11 4095 3", // unaligned
	"read -P 0x11 4095 3",
	"read -P 0 3M 1M",
}

// checkImage verifies the image holds what qemuCommands left.
func checkImage(t *testing.T, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, len(got))
	fill := func(off, n int, b byte) {
		for i := off; i < off+n; i++ {
			want[i] = b
		}
	}
	fill(0, 1<<20, 0xab)
	fill(1<<20, 1<<20, 0xcd)
	fill(512<<10, 256<<10, 0)
	fill(1<<20, 64<<10, 0)
	fill(4095, 3, 0x11)
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("image differs first at byte %d: %#x, want %#x", i, got[i], want[i])
			}
		}
	}
}

// TestQEMUOverTLS: QEMU's own NBD client (GnuTLS) against the Server
// (crypto/tls) with certificates from internal/pki.
func TestQEMUOverTLS(t *testing.T) {
	need(t, "qemu-io")
	p := newPKI(t)
	path, f := newImage(t, 4<<20)
	_, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-test": f})
	host, port, _ := net.SplitHostPort(addr)
	qemuIO(t, p.qemuDir(t), "driver=nbd,host="+host+",port="+port+",export=vol-test,tls-creds=tls0", qemuCommands...)
	checkImage(t, path)
}

// TestQEMURefusedWithoutTLS: a plain client cannot use a TLS server.
func TestQEMURefusedWithoutTLS(t *testing.T) {
	need(t, "qemu-io")
	p := newPKI(t)
	_, f := newImage(t, 1<<20)
	_, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-test": f})
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("qemu-io", "--image-opts", "driver=nbd,host="+host+",port="+port+",export=vol-test", "-c", "read 0 4k").CombinedOutput()
	if err == nil {
		t.Fatalf("qemu-io without TLS succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "TLS") {
		t.Errorf("qemu-io failed, but not for TLS:\n%s", out)
	}
}

// TestQEMUThroughProxy: QEMU over the proxy's unix socket, the proxy over
// TLS to the Server: the node's whole data path.
func TestQEMUThroughProxy(t *testing.T) {
	need(t, "qemu-io")
	p := newPKI(t)
	path, f := newImage(t, 4<<20)
	_, addr := startServer(t, p.serverTLS(), map[string]Export{"vol-test": f})
	px := &Proxy{
		Path: t.TempDir() + "/vol-test.sock", Name: "vol-test",
		Dial: func(ctx context.Context) (*Client, error) {
			return Dial(ctx, "tcp", addr, p.clientTLS(), "vol-test")
		},
	}
	if err := px.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	qemuIO(t, "", "driver=nbd,server.type=unix,server.path="+px.Path+",export=vol-test", qemuCommands...)
	checkImage(t, path)
}

// TestQEMUThroughProxySurvivesRestart: the SC dies while QEMU's write is
// in flight and comes back; QEMU sees no error and reads its data back.
func TestQEMUThroughProxySurvivesRestart(t *testing.T) {
	need(t, "qemu-io")
	p := newPKI(t)
	path, f := newImage(t, 4<<20)
	lost := &lostWrite{Export: f, entered: make(chan struct{}), release: make(chan struct{})}
	var mu sync.Mutex
	var current Export = noClose{lost}
	sc := newRestartable(t, p, func() Export { mu.Lock(); defer mu.Unlock(); return current })
	px := startProxy(t, sc.dial, time.Minute)

	done := make(chan error, 1)
	go func() {
		_, err := runQemuIO("", "driver=nbd,server.type=unix,server.path="+px.Path+",export=vol-a",
			"write -P 0x5a 1M 1M", "flush", "read -P 0x5a 1M 1M", "read -P 0 0 1M")
		done <- err
	}()
	select {
	case <-lost.entered:
	case err := <-done:
		t.Fatalf("qemu-io ended before its write reached the SC: %v", err)
	}
	old := px.current()
	killed := make(chan struct{})
	go func() { sc.kill(); close(killed) }()
	waitBroken(t, old)
	close(lost.release)
	<-killed
	mu.Lock()
	current = noClose{f}
	mu.Unlock()
	sc.start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[1<<20:2<<20], bytes.Repeat([]byte{0x5a}, 1<<20)) {
		t.Fatal("QEMU's write is not on disk after the restart")
	}
}
