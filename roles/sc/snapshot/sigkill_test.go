package snapshot

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// sigkillEnv names the child's root directory.
const sigkillEnv = "EUCA_SNAPSHOT_SIGKILL_CHILD"

// TestSIGKILLChild is the process TestSIGKILLMidSnapshot kills: it starts a
// snapshot whose chunks reach Walrus slowly, writes to the volume after
// the point in time (through BeforeWrite), says so, and uploads until it
// is killed. Run alone it does nothing.
func TestSIGKILLChild(t *testing.T) {
	root := os.Getenv(sigkillEnv)
	if root == "" {
		return
	}
	v := openEnv(t, root)
	slow := hookObjects{v.bucket, func(key string) error {
		time.Sleep(100 * time.Millisecond)
		return nil
	}}
	e := v.engine(slow)
	f, err := os.OpenFile(v.volPath("vol-1"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.create(e, "snap-1", "vol-1")
	write(t, e, "vol-1", f, 3*ChunkSize+5, []byte("written after the snapshot"))
	write(t, e, "vol-1", f, 13*ChunkSize, pattern(77, 4096)) // a hole then
	write(t, e, "vol-1", f, 15*ChunkSize, pattern(78, ChunkSize))
	os.Stdout.WriteString("written\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.Run(ctx)
}

// TestSIGKILLMidSnapshot: the storage controller's process is killed
// (SIGKILL: nothing deferred runs) half-way through a snapshot, after the
// volume was written past its point in time. A new engine over what is
// left resumes it to a snapshot holding exactly the volume as it was at
// Create, with no chunk left unreferenced.
func TestSIGKILLMidSnapshot(t *testing.T) {
	root := t.TempDir()
	v := openEnv(t, root)
	f := v.volume("vol-1", volSize)
	for _, i := range []int64{0, 1, 3, 4, 6, 8, 9, 15} {
		if _, err := f.WriteAt(pattern(uint64(i), ChunkSize), i*ChunkSize); err != nil {
			t.Fatal(err)
		}
	}
	before := contents(t, f)

	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), sigkillEnv+"="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { cmd.Process.Kill(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		kill()
		t.Fatalf("child said %q: %v", line, err)
	}
	// Kill it once a few chunks are recorded, with others to go.
	for {
		sn, err := v.st.SCSnapshot(context.Background(), "snap-1")
		if err == nil && sn.NextChunk >= 3 {
			break
		}
		if err == nil && sn.State != "pending" {
			kill()
			t.Fatalf("the child's snapshot ended before the kill: %+v", sn)
		}
		time.Sleep(2 * time.Millisecond)
	}
	kill()
	sn, err := v.st.SCSnapshot(context.Background(), "snap-1")
	if err != nil || sn.State != "pending" || sn.NextChunk >= sn.ChunkCount {
		t.Fatalf("after the kill: %+v %v", sn, err)
	}
	after := contents(t, f)
	if strings.Contains(string(before[3*ChunkSize:4*ChunkSize]), "written after the snapshot") ||
		!strings.Contains(string(after[3*ChunkSize:4*ChunkSize]), "written after the snapshot") {
		t.Fatal("the child's writes did not land as expected")
	}

	v2 := openEnv(t, root) // Walrus sweeps what the kill left half-written
	e := v2.engine(nil)
	v2.run(e)
	s := v2.wait(e, "snap-1")
	if s.State != "completed" || s.Chunks != 8 {
		t.Fatalf("resumed snapshot: %+v", s)
	}
	got, err := v2.restore(e, "snap-1", volSize)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "snapshot resumed after SIGKILL", got, before)
	sameBytes(t, "volume", contents(t, f), after)
	if g, _ := v2.st.SCGarbageChunks(context.Background()); len(g) != 0 {
		t.Fatalf("unreferenced chunks left: %v", g)
	}
	if n := len(v2.keys("chunks/")); n != 8 {
		t.Fatalf("%d chunk objects, want 8", n)
	}
}
