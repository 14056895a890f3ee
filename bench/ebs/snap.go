package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

//go:embed snapshot.py
var snapshotPy string

const chunkSize = 4 << 20 // the snapshot engine's chunk (roles/sc/snapshot)

// bucketStats is what the bucket euca-snapshots holds.
type bucketStats struct {
	Chunks, Manifests int
	ChunkBytes        int64
}

// bucket lists euca-snapshots with the AWS CLI as the admin, who owns it.
func (b *bench) bucket() (bucketStats, error) {
	var out struct {
		Contents []struct {
			Key  string
			Size int64
		}
	}
	var st bucketStats
	if err := b.awsJSON(&out, "s3api", "list-objects-v2", "--bucket", "euca-snapshots"); err != nil {
		return st, err
	}
	for _, o := range out.Contents {
		switch {
		case strings.HasPrefix(o.Key, "chunks/"):
			st.Chunks++
			st.ChunkBytes += o.Size
		case strings.HasPrefix(o.Key, "manifests/"):
			st.Manifests++
		}
	}
	return st, nil
}

// snapRound is one round of the snapshot benchmark.
type snapRound struct {
	firstAPI, firstSC, firstCopy float64 // seconds
	incAPI, incSC, incCopy       float64
	firstStored, incStored       bucketStats // what each snapshot added
	afterDelete                  bucketStats
}

// snapshots runs the snapshot benchmark's rounds, each on a fresh volume,
// and prints its table.
func (b *bench) snapshots(ctx context.Context) error {
	fmt.Printf("\n## snapshots: %d MiB of data in a 1 GiB volume, then %d MiB changed; %d rounds\n", b.snapMiB, b.changeMiB, b.rounds)
	var rounds []snapRound
	for r := 0; r < b.rounds; r++ {
		sr, err := b.snapRound(ctx, r)
		if err != nil {
			return fmt.Errorf("snapshot round %d: %w", r+1, err)
		}
		fmt.Printf("round %d: first %.2f s (SC %.2f s), cp %.2f s; incremental %.2f s (SC %.2f s), cp %.2f s; stored +%d chunks %d MiB, then +%d chunks %d MiB; after deletes %d chunks, %d manifests\n",
			r+1, sr.firstAPI, sr.firstSC, sr.firstCopy, sr.incAPI, sr.incSC, sr.incCopy,
			sr.firstStored.Chunks, sr.firstStored.ChunkBytes>>20, sr.incStored.Chunks, sr.incStored.ChunkBytes>>20,
			sr.afterDelete.Chunks, sr.afterDelete.Manifests)
		rounds = append(rounds, sr)
	}
	col := func(f func(snapRound) float64) []float64 {
		var v []float64
		for _, r := range rounds {
			v = append(v, f(r))
		}
		return v
	}
	fmt.Printf("\n| measurement | euca (API: CreateSnapshot → completed) | the SC's own time | `cp --sparse=always` + sync | ratio (API time / cp) |\n|---|---|---|---|---|\n")
	row := func(name string, api, sc, cp func(snapRound) float64) {
		ratios := col(func(r snapRound) float64 { return api(r) / cp(r) })
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f s | %s |\n", name, median(col(api)), median(col(sc)), median(col(cp)), spread(ratios))
	}
	row(fmt.Sprintf("first snapshot, %d MiB of data", b.snapMiB),
		func(r snapRound) float64 { return r.firstAPI }, func(r snapRound) float64 { return r.firstSC }, func(r snapRound) float64 { return r.firstCopy })
	row(fmt.Sprintf("incremental, %d MiB changed", b.changeMiB),
		func(r snapRound) float64 { return r.incAPI }, func(r snapRound) float64 { return r.incSC }, func(r snapRound) float64 { return r.incCopy })
	last := rounds[len(rounds)-1]
	fmt.Printf("\nstored in euca-snapshots (last round): first snapshot +%d chunks, %d MiB, +%d manifest; incremental +%d chunks, %d MiB, +%d manifest; after both snapshots were deleted: %d chunks, %d manifests\n",
		last.firstStored.Chunks, last.firstStored.ChunkBytes>>20, last.firstStored.Manifests,
		last.incStored.Chunks, last.incStored.ChunkBytes>>20, last.incStored.Manifests, last.afterDelete.Chunks, last.afterDelete.Manifests)
	return nil
}

func (b *bench) snapRound(ctx context.Context, r int) (sr snapRound, err error) {
	vol, err := b.createVolume(1)
	if err != nil {
		return sr, err
	}
	defer b.deleteVolume(vol)
	path, err := b.volumeFile(vol)
	if err != nil {
		return sr, err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{byte(r), 'e', 'b', 's'}))
	// The data: snapMiB MiB from the start, none of it zeros (a chunk of
	// zeros might be stored once for all), the rest of the volume a hole.
	if err := fill(path, rng, 0, int64(b.snapMiB)<<20); err != nil {
		return sr, err
	}
	if sr.firstCopy, err = copyTime(path); err != nil {
		return sr, err
	}
	before, err := b.bucket()
	if err != nil {
		return sr, err
	}
	snap1, api, err := b.snapshot(vol)
	if err != nil {
		return sr, err
	}
	sr.firstAPI, sr.firstSC = api, b.scSeconds(snap1)
	after1, err := b.bucket()
	if err != nil {
		return sr, err
	}
	sr.firstStored = after1.minus(before)

	// changeMiB MiB: 1 MiB in each of as many distinct chunks.
	for _, c := range rng.Perm(b.snapMiB * (1 << 20) / chunkSize)[:b.changeMiB] {
		off := int64(c)*chunkSize + int64(rng.IntN(chunkSize>>20))<<20
		if err := fill(path, rng, off, 1<<20); err != nil {
			return sr, err
		}
	}
	if sr.incCopy, err = copyTime(path); err != nil {
		return sr, err
	}
	snap2, api, err := b.snapshot(vol)
	if err != nil {
		return sr, err
	}
	sr.incAPI, sr.incSC = api, b.scSeconds(snap2)
	after2, err := b.bucket()
	if err != nil {
		return sr, err
	}
	sr.incStored = after2.minus(after1)
	for _, s := range []string{snap2, snap1} {
		if _, err := b.aws("ec2", "delete-snapshot", "--snapshot-id", s); err != nil {
			return sr, err
		}
	}
	// Deletion collects chunks in the background: wait for the bucket to
	// be as it was before this round (or say what is left).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if sr.afterDelete, err = b.bucket(); err != nil {
			return sr, err
		}
		if sr.afterDelete == before || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	return sr, nil
}

func (s bucketStats) minus(o bucketStats) bucketStats {
	return bucketStats{Chunks: s.Chunks - o.Chunks, Manifests: s.Manifests - o.Manifests, ChunkBytes: s.ChunkBytes - o.ChunkBytes}
}

// fill writes n bytes of random data at off in the file, then fdatasyncs.
func fill(path string, rng *rand.Rand, off, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; done += int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.WriteAt(buf, off+done); err != nil {
			return err
		}
	}
	return f.Sync()
}

// copyTime is the baseline: `cp --sparse=always` of the volume's file and
// `sync` of the copy (fsync), in seconds; the copy is removed after.
func copyTime(path string) (float64, error) {
	dst := path + ".bench-copy"
	defer os.Remove(dst)
	t := time.Now()
	if out, err := exec.Command("cp", "--sparse=always", path, dst).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("cp: %v: %s", err, out)
	}
	if out, err := exec.Command("sync", dst).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("sync: %v: %s", err, out)
	}
	return time.Since(t).Seconds(), nil
}

// snapshot runs snapshot.py: CreateSnapshot until completed, timed by a
// warm boto3 client.
func (b *bench) snapshot(vol string) (id string, seconds float64, err error) {
	cmd := exec.Command("python3", "-c", snapshotPy, vol)
	cmd.Env = b.clientEnv()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", 0, fmt.Errorf("snapshot of %s: %w", vol, err)
	}
	var res struct {
		Snapshot, State string
		Seconds         float64
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return "", 0, fmt.Errorf("snapshot of %s: %q: %w", vol, out, err)
	}
	if res.State != "completed" {
		return "", 0, fmt.Errorf("snapshot %s of %s: %s", res.Snapshot, vol, res.State)
	}
	return res.Snapshot, res.Seconds, nil
}

// scSeconds is the SC's own time for a snapshot, from its "snapshot
// completed" log line (ms); 0 when not found.
func (b *bench) scSeconds(snap string) float64 {
	logb, err := os.ReadFile(b.proc.LogPath)
	if err != nil {
		return 0
	}
	re := regexp.MustCompile(`snapshot completed[^\n]*` + regexp.QuoteMeta(snap) + `[^\n]*\bms["=:]+(\d+)`)
	m := re.FindSubmatch(logb)
	if m == nil {
		log.Printf("no 'snapshot completed' line for %s in the log", snap)
		return 0
	}
	ms, _ := strconv.Atoi(string(m[1]))
	return float64(ms) / 1000
}
