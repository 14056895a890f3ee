package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/euca-cloud/euca/internal/diskcmd"
	"github.com/euca-cloud/euca/roles/clc"
)

// The three places the I/O patterns run on.
const (
	onVolume = "volume"
	onRoot   = "root disk"
	onHost   = "host file"
)

var ioOps = []string{diskcmd.SeqWrite, diskcmd.SeqRead, diskcmd.RandWrite, diskcmd.RandRead}

// ioRound holds one round's seconds by place and op, and the dd cost
// (RandNull, in the guest or on the host) measured just before each random
// op, by place and op: the load of a shared machine moves it within
// seconds, so each random figure is set against its own.
type ioRound struct {
	sec, null map[string]map[string]float64
}

// io runs the I/O benchmark: one guest, one attached volume, -rounds
// rounds of every pattern on the volume, the root disk and the host file.
func (b *bench) io(ctx context.Context) error {
	fmt.Printf("\n## I/O: %d MiB sequential in 1 MiB O_DIRECT blocks, %d random 4 KiB O_DIRECT blocks (a busybox dd each) over the first %d MiB; %d rounds; the guest is TCG (m1.small, 1 vCPU)\n",
		b.ioMiB, b.randOps, b.ioMiB, b.rounds)
	cmds, err := diskcmd.Serve("10.247.200.1:0")
	if err != nil {
		return err
	}
	defer cmds.Close()
	emi, err := b.register()
	if err != nil {
		return err
	}
	var run struct{ Instances []struct{ InstanceId string } }
	if err := b.awsJSON(&run, "ec2", "run-instances", "--image-id", emi, "--instance-type", "m1.small",
		"--user-data", cmds.UserData()+"\n"); err != nil {
		return err
	}
	if len(run.Instances) != 1 {
		return fmt.Errorf("run-instances: %+v", run)
	}
	id := run.Instances[0].InstanceId
	defer func() {
		if _, err := b.aws("ec2", "terminate-instances", "--instance-ids", id); err != nil {
			log.Printf("cleanup: %v", err)
		}
	}()
	conPath := filepath.Join(b.instPath, id, "console.log")
	console := func(context.Context) ([]byte, error) { return os.ReadFile(conPath) }
	if err := waitConsole(conPath, "EUCA-READY", 5*time.Minute); err != nil {
		return err
	}
	vol, err := b.createVolume(1)
	if err != nil {
		return err
	}
	defer b.deleteVolume(vol)
	if _, err := b.aws("ec2", "attach-volume", "--volume-id", vol, "--instance-id", id, "--device", "/dev/sdf"); err != nil {
		return err
	}
	defer func() {
		if _, err := b.aws("ec2", "detach-volume", "--volume-id", vol); err != nil {
			log.Printf("cleanup: %v", err)
			return
		}
		if err := b.waitVolume(vol, "available", 3*time.Minute); err != nil {
			log.Printf("cleanup: %v", err)
		}
	}()
	if err := b.waitVolume(vol, "in-use", 3*time.Minute); err != nil {
		return err
	}
	serial := clc.VolumeSerial(vol)
	file, err := b.volumeFile(vol)
	if err != nil {
		return err
	}
	host, err := b.hostIO()
	if err != nil {
		return err
	}
	guest := func(op, serial string, n int) (float64, error) {
		seq := cmds.Time(op, serial, b.ioMiB, n)
		res, err := diskcmd.Wait(ctx, console, seq, 15*time.Minute)
		if err != nil {
			return 0, err
		}
		return float64(res.Millis) / 1000, nil
	}
	var rounds []ioRound
	for r := 0; r < b.rounds; r++ {
		ir := ioRound{sec: map[string]map[string]float64{onVolume: {}, onRoot: {}, onHost: {}},
			null: map[string]map[string]float64{onVolume: {}, onRoot: {}, onHost: {}}}
		places := []string{onVolume, onRoot, onHost}
		if r%2 == 1 {
			places = []string{onHost, onRoot, onVolume}
		}
		for _, place := range places {
			for _, op := range ioOps {
				n := 0
				if strings.HasPrefix(op, "rand") {
					n = b.randOps
					var null float64
					if place == onHost {
						null, err = host(diskcmd.RandNull, "/dev/null", n)
					} else {
						null, err = guest(diskcmd.RandNull, diskcmd.NoDisk, n)
					}
					if err != nil {
						return fmt.Errorf("round %d, dd cost before %s on the %s: %w", r+1, op, place, err)
					}
					ir.null[place][op] = null
				}
				var s float64
				switch place {
				case onVolume:
					s, err = guest(op, serial, n)
				case onRoot:
					s, err = guest(op, diskcmd.RootFS, n)
				case onHost:
					s, err = host(op, file, n)
				}
				if err != nil {
					return fmt.Errorf("round %d, %s on the %s: %w", r+1, op, place, err)
				}
				ir.sec[place][op] = s
			}
		}
		fmt.Printf("round %d (load average %s): %s\n", r+1, loadavg(), ir)
		rounds = append(rounds, ir)
	}
	b.ioReport(rounds)
	return nil
}

func (ir ioRound) String() string {
	var parts []string
	for _, place := range []string{onVolume, onRoot, onHost} {
		var p []string
		for _, op := range ioOps {
			p = append(p, fmt.Sprintf("%s %.2fs", op, ir.sec[place][op]))
		}
		parts = append(parts, place+": "+strings.Join(p, " "))
	}
	var nulls []string
	for _, place := range []string{onVolume, onRoot, onHost} {
		for _, op := range []string{diskcmd.RandWrite, diskcmd.RandRead} {
			nulls = append(nulls, fmt.Sprintf("%.2fs", ir.null[place][op]))
		}
	}
	return strings.Join(parts, "; ") + "; dd cost before each random op " + strings.Join(nulls, " ")
}

// ioReport prints the medians and the ratios (of each round, median and
// range) of the volume's throughput to the root disk's and the host's.
func (b *bench) ioReport(rounds []ioRound) {
	type metric struct {
		name string
		op   string
		f    func(ir ioRound, place string) float64 // throughput
	}
	seq := func(op string) func(ioRound, string) float64 {
		return func(ir ioRound, place string) float64 { return float64(b.ioMiB) / ir.sec[place][op] }
	}
	rnd := func(op string, net bool) func(ioRound, string) float64 {
		return func(ir ioRound, place string) float64 {
			s := ir.sec[place][op]
			if net {
				// Noise can make the op cheaper than its dd alone: no figure.
				if s -= ir.null[place][op]; s <= 0 {
					return -1
				}
			}
			return float64(b.randOps) / s
		}
	}
	metrics := []metric{
		{"sequential write, MiB/s", diskcmd.SeqWrite, seq(diskcmd.SeqWrite)},
		{"sequential read, MiB/s", diskcmd.SeqRead, seq(diskcmd.SeqRead)},
		{"random 4 KiB write, IOPS (a dd each)", diskcmd.RandWrite, rnd(diskcmd.RandWrite, false)},
		{"random 4 KiB read, IOPS (a dd each)", diskcmd.RandRead, rnd(diskcmd.RandRead, false)},
		{"random 4 KiB write, IOPS without the dd's own cost", diskcmd.RandWrite, rnd(diskcmd.RandWrite, true)},
		{"random 4 KiB read, IOPS without the dd's own cost", diskcmd.RandRead, rnd(diskcmd.RandRead, true)},
	}
	fmt.Printf("\n| pattern | volume (guest) | root disk (guest) | backing file (host) | volume / root disk | volume / host file |\n|---|---|---|---|---|---|\n")
	for _, m := range metrics {
		var vals [3][]float64
		var toRoot, toHost []float64
		for _, ir := range rounds {
			v, r, h := m.f(ir, onVolume), m.f(ir, onRoot), m.f(ir, onHost)
			for i, x := range []float64{v, r, h} {
				if x > 0 {
					vals[i] = append(vals[i], x)
				}
			}
			if v > 0 && r > 0 {
				toRoot = append(toRoot, v/r)
			}
			if v > 0 && h > 0 {
				toHost = append(toHost, v/h)
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", m.name, num(median(vals[0])), num(median(vals[1])), num(median(vals[2])), spread(toRoot), spread(toHost))
	}
	var gn, hn []float64
	for _, ir := range rounds {
		for _, op := range []string{diskcmd.RandWrite, diskcmd.RandRead} {
			gn = append(gn, ir.null[onVolume][op]*1000/float64(b.randOps), ir.null[onRoot][op]*1000/float64(b.randOps))
			hn = append(hn, ir.null[onHost][op]*1000/float64(b.randOps))
		}
	}
	fmt.Printf("\na dd's own cost (the same loop from /dev/zero to /dev/null), median: %.1f ms in the guest, %.1f ms on the host\n", median(gn), median(hn))
}

// hostIO returns a runner of the guest's own timing function
// (scripts/guest-image.sh's now_cs and io_time) on the host, under the
// guest's busybox, its scratch files in the work directory.
func (b *bench) hostIO() (func(op, path string, n int) (float64, error), error) {
	src, err := os.ReadFile(b.guestScript)
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?s)\nnow_cs\(\) \{.*?\n# diskcmd SEQ`).Find(src)
	if m == nil {
		return nil, fmt.Errorf("%s: no now_cs ... io_time functions", b.guestScript)
	}
	scratch := filepath.Join(b.work, "hostio")
	bin := filepath.Join(scratch, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	fn := strings.ReplaceAll(string(m), "/tmp/", scratch+"/")
	script := filepath.Join(scratch, "io.sh")
	if err := os.WriteFile(script, []byte(fn), 0o644); err != nil {
		return nil, err
	}
	// busybox's applets first on the PATH, as in the guest.
	for _, a := range []string{"dd", "yes", "head", "stat", "sync", "tr", "cat"} {
		_ = os.Symlink(b.busybox, filepath.Join(bin, a))
	}
	return func(op, path string, n int) (float64, error) {
		cmd := exec.Command(b.busybox, "sh", "-c", `. "$1"; io_time "$2" "$3" "$4" "$5"`, "sh", script, op, path, strconv.Itoa(b.ioMiB), strconv.Itoa(n))
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("host %s on %s: %v: %s", op, path, err, out)
		}
		ms, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			errs, _ := os.ReadFile(filepath.Join(scratch, "dd.err"))
			return 0, fmt.Errorf("host %s on %s: %q %s", op, path, out, errs)
		}
		return float64(ms) / 1000, nil
	}, nil
}

// waitConsole waits for marker on a guest's console file.
func waitConsole(path, marker string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), marker) {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Errorf("no %s on %s within %v; it ends:\n%s", marker, path, within, b)
}

// register bundles, uploads and registers the test guest's kernel,
// ramdisk and root disk as scripts/run.sh does, and returns the machine
// image's id. Not timed.
func (b *bench) register() (string, error) {
	dir := filepath.Join(b.work, "bundles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	one := func(file, prefix string, extra ...string) (string, error) {
		args := append([]string{"bundle-image", "-i", filepath.Join(b.guest, file), "-d", dir, "-p", prefix}, extra...)
		if _, err := b.run(b.eucaBin, args...); err != nil {
			return "", err
		}
		if _, err := b.run(b.eucaBin, "upload-bundle", "-b", "bench-ebs", "-m", filepath.Join(dir, prefix+".manifest.xml")); err != nil {
			return "", err
		}
		return b.run("aws", "--endpoint-url", b.env.Get("EC2_URL"), "ec2", "register-image",
			"--image-location", "bench-ebs/"+prefix+".manifest.xml", "--name", prefix, "--query", "ImageId", "--output", "text")
	}
	eki, err := one("vmlinuz", "bench-kernel", "--kernel", "true")
	if err != nil {
		return "", err
	}
	eri, err := one("initrd.img", "bench-ramdisk", "--ramdisk", "true")
	if err != nil {
		return "", err
	}
	return one("root.img", "bench-guest", "--kernel", eki, "--ramdisk", eri)
}
