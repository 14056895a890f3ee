package sc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/nbd"
	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/scapi"
)

// The child of TestKilledDuringWrites: a storage controller over the
// directory it is given, serving NBD on loopback with the CA there; it
// prints its address and an export of vol-w to node1, then serves until
// killed.
func TestHelperServeForever(t *testing.T) {
	dir := os.Getenv("EUCA_SC_SERVE")
	if dir == "" {
		t.Skip("helper of TestKilledDuringWrites")
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := openWith(t, dir, nil)
	ctx := context.Background()
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-w", SizeBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	waitState(t, s, "vol-w", scapi.VolumeAvailable)
	tg, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-w", Node: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := s.NBDServer(sc.ServerTLS(ca.ServerTLSConfig(cert)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("serving %s %s\n", ln.Addr(), tg.Export)
	srv.Serve(ln)
}

// TestKilledDuringWrites: a storage controller killed (SIGKILL) while a
// node writes loses no write it acknowledged, and after a restart the
// volume and its export are as they were.
func TestKilledDuringWrites(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServeForever$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EUCA_SC_SERVE="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "serving" {
		t.Fatalf("child said %q: %v", line, err)
	}
	addr, export := f[1], f[2]
	cert, err := ca.IssueClient("nc:node1")
	if err != nil {
		t.Fatal(err)
	}
	tc := ca.ClientTLSConfig(cert)
	tc.ServerName = "127.0.0.1"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbd.Dial(ctx, "tcp", addr, tc, export)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// 4 KiB blocks, each stamped with its number, written by 8 writers at
	// once (QEMU pipelines likewise); the kill comes once 200 are
	// acknowledged, with others in flight.
	const block, blocks, writers = 4096, 4096, 8
	stamp := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i)}, block)
		binary.BigEndian.PutUint64(b, uint64(i)+1)
		return b
	}
	var (
		mu    sync.Mutex
		acked []int
		wg    sync.WaitGroup
		once  sync.Once
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < blocks; i += writers {
				if _, err := c.WriteAt(stamp(i), int64(i)*block); err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, i)
				n := len(acked)
				mu.Unlock()
				if n >= 200 {
					once.Do(func() { cmd.Process.Kill() })
				}
			}
		}()
	}
	wg.Wait()
	cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("only %d writes were acknowledged before the kill", len(acked))
	}

	s, st, be := openWith(t, dir, nil)
	defer st.Close()
	defer s.Close()
	v := waitState(t, s, "vol-w", scapi.VolumeAvailable)
	if len(v.Exports) != 1 || v.Exports[0] != export {
		t.Errorf("after the restart the exports are %v, want %s", v.Exports, export)
	}
	d, err := be.Open("vol-w")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := make([]byte, block)
	for _, i := range acked {
		d.ReadAt(got, int64(i)*block)
		if !bytes.Equal(got, stamp(i)) {
			t.Fatalf("acknowledged write %d lost in the kill", i)
		}
	}
	t.Logf("%d writes acknowledged, all there after the kill", len(acked))
}
