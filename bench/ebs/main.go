// Command ebs measures EBS volumes and snapshots on a real cloud it starts
// (bin/euca --roles=all with its own EUCALYPTUS, ports and subnet), as
// ratios against baselines measured in the same run (a benchmark, not a
// test: nothing here asserts on time):
//
//   - snapshots: CreateSnapshot until DescribeSnapshots says completed, for
//     a volume holding -snap-mib MiB of data (the first snapshot), then
//     again after -change-mib MiB of it changed (incremental), against
//     `cp --sparse=always` of the volume's file and a sync of the copy (the
//     raw operation underneath: Walrus fsyncs each chunk it stores); and
//     the objects and bytes the admin-owned bucket euca-snapshots gained,
//     counted with the AWS CLI as the admin;
//   - I/O: sequential and random I/O inside a guest (the test guest's timed
//     disk commands, busybox dd: 1 MiB O_DIRECT blocks; 4 KiB blocks at
//     random offsets, one dd each) on an attached volume, against the same
//     on a file of the guest's root disk and against the volume's backing
//     file on the host (the same shell function under the same busybox).
//
// The guest runs under TCG here: absolute figures say little, the ratios
// are the result. The data of the snapshot volume is written into its file
// on the host (the storage controller's side) before each snapshot, not
// timed.
//
// Run by bench/ebs/run.sh (make bench-ebs) inside private mount, network
// and pid namespaces with a libvirtd of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/euca-cloud/euca/bench/internal/cloud"
)

type bench struct {
	eucaBin, guest, work, busybox, guestScript string
	rounds                                     int
	snapMiB, changeMiB                         int
	ioMiB, randOps                             int

	dir, conf, volPath, instPath string
	port                         int
	proc                         *cloud.Process
	env                          cloud.Env
	awsConfig                    string
	zone                         string
}

func main() {
	b := &bench{}
	flag.StringVar(&b.eucaBin, "euca", "bin/euca", "the euca binary")
	flag.StringVar(&b.guest, "guest", "build/guest", "the test guest (make guest-image)")
	flag.StringVar(&b.work, "work", "", "a scratch directory (removed by run.sh)")
	flag.StringVar(&b.busybox, "busybox", "", "the guest's busybox, for the host baseline")
	flag.StringVar(&b.guestScript, "guest-script", "scripts/guest-image.sh", "the guest's build script, whose timing function the host baseline runs")
	flag.IntVar(&b.rounds, "rounds", 3, "rounds of each measurement")
	flag.IntVar(&b.snapMiB, "snap-mib", 256, "MiB of data in the snapshotted volume")
	flag.IntVar(&b.changeMiB, "change-mib", 4, "MiB changed (1 MiB in each of as many 4 MiB chunks) before the incremental snapshot")
	flag.IntVar(&b.ioMiB, "io-mib", 32, "MiB the I/O patterns cover (the guest's root file system holds ~50)")
	flag.IntVar(&b.randOps, "rand-ops", 300, "4 KiB operations of each random pattern")
	only := flag.String("only", "", "run only snap or io")
	flag.Parse()
	if b.work == "" {
		log.Fatal("bench-ebs: -work is required (run it through bench/ebs/run.sh)")
	}
	if b.snapMiB < 4 || b.snapMiB > 1024 || b.changeMiB < 1 || b.changeMiB > b.snapMiB/4 {
		log.Fatal("bench-ebs: want 4 <= -snap-mib <= 1024 and 1 <= -change-mib <= snap-mib/4")
	}
	ctx := context.Background()
	fmt.Printf("bench-ebs: %s, %d CPUs, load average %s at the start\n", time.Now().UTC().Format(time.RFC3339), numCPU(), loadavg())
	if err := b.start(); err != nil {
		log.Fatal(err)
	}
	rc := 0
	if *only == "" || *only == "snap" {
		if err := b.snapshots(ctx); err != nil {
			log.Print(err)
			rc = 1
		}
	}
	if *only == "" || *only == "io" {
		if err := b.io(ctx); err != nil {
			log.Print(err)
			rc = 1
		}
	}
	b.proc.Stop()
	fmt.Printf("bench-ebs: load average %s at the end\n", loadavg())
	os.Exit(rc)
}

// start writes the configuration (every port free, HYPERVISOR qemu: TCG,
// the cloud's subnet in the benchmark's 10.247.0.0/16, NBD on loopback)
// and runs euca until it listens, then takes the admin's credentials.
func (b *bench) start() error {
	b.dir = b.work
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	b.conf = filepath.Join(b.dir, "eucalyptus.conf")
	home := filepath.Join(b.dir, "euca")
	b.instPath = filepath.Join(b.dir, "instances")
	b.volPath = filepath.Join(b.dir, "volumes")
	var ports [3]int
	for i := range ports {
		p, err := cloud.FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	b.port = ports[0]
	conf := fmt.Sprintf("EUCALYPTUS=%q\nCLOUD_PORT=\"%d\"\nMETADATA_PORT=\"%d\"\nSC_NBD_PORT=\"%d\"\nSC_NBD_ADDRESS=\"127.0.0.1\"\n"+
		"SC_VOLUMES_PATH=%q\nLOGLEVEL=\"DEBUG\"\nHYPERVISOR=\"qemu\"\nINSTANCE_PATH=%q\nVNET_SUBNET=\"10.247.0.0\"\nVNET_NETMASK=\"255.255.128.0\"\n",
		home, ports[0], ports[1], ports[2], b.volPath, b.instPath)
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		return err
	}
	var err error
	b.proc, err = cloud.Start("euca", exec.Command(b.eucaBin, "--roles=all", "--conf", b.conf), filepath.Join(b.dir, "euca.log"), b.port)
	if err != nil {
		return err
	}
	d := filepath.Join(b.dir, "creds")
	zipPath := filepath.Join(d, "admin.zip")
	if b.env, err = cloud.Credentials(exec.Command(b.eucaBin, "--conf", b.conf, "credentials", "--account", "admin", "--zip", zipPath), zipPath, d); err != nil {
		return err
	}
	// Walrus is reached by path (no wildcard DNS here).
	b.awsConfig = filepath.Join(b.dir, "aws.config")
	if err := os.WriteFile(b.awsConfig, []byte("[default]\ns3 =\n  addressing_style = path\n"), 0o644); err != nil {
		return err
	}
	var zones struct{ AvailabilityZones []struct{ ZoneName string } }
	if err := b.awsJSON(&zones, "ec2", "describe-availability-zones"); err != nil {
		return err
	}
	if len(zones.AvailabilityZones) == 0 {
		return fmt.Errorf("no availability zone")
	}
	b.zone = zones.AvailabilityZones[0].ZoneName
	return nil
}

// clientEnv is this process's environment without a developer's own AWS
// settings, plus the eucarc's.
func (b *bench) clientEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "EC2_") {
			out = append(out, kv)
		}
	}
	out = append(out, "AWS_CONFIG_FILE="+b.awsConfig, "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
	return append(out, b.env...)
}

// run runs a client command (aws, euca) with the admin's environment.
func (b *bench) run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = b.clientEnv()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out)), nil
}

// aws runs the AWS CLI against the cloud: "ec2 ..." against EC2_URL, "s3api ..."
// against S3_URL.
func (b *bench) aws(args ...string) (string, error) {
	url := b.env.Get("EC2_URL")
	if len(args) > 0 && (args[0] == "s3api" || args[0] == "s3") {
		url = b.env.Get("S3_URL")
	}
	return b.run("aws", append([]string{"--endpoint-url", url, "--output", "json"}, args...)...)
}

func (b *bench) awsJSON(v any, args ...string) error {
	out, err := b.aws(args...)
	if err != nil {
		return err
	}
	return jsonUnmarshal(out, v)
}

// waitVolume polls DescribeVolumes until vol is in state (and, for
// in-use, attached); gone waits for InvalidVolume.NotFound.
func (b *bench) waitVolume(vol, state string, within time.Duration) error {
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		var out struct {
			Volumes []struct {
				State       string
				Attachments []struct{ State string }
			}
		}
		err := b.awsJSON(&out, "ec2", "describe-volumes", "--volume-ids", vol)
		switch {
		case err != nil && state == "gone" && strings.Contains(err.Error(), "InvalidVolume.NotFound"):
			return nil
		case err != nil:
			last = err.Error()
		case len(out.Volumes) == 1:
			v := out.Volumes[0]
			last = v.State
			if v.State == state && (state != "in-use" || len(v.Attachments) == 1 && v.Attachments[0].State == "attached") {
				return nil
			}
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("volume %s: not %s within %v (last: %s)", vol, state, within, last)
}

// createVolume makes a volume of sizeGiB and waits until it is available.
func (b *bench) createVolume(sizeGiB int) (string, error) {
	var v struct{ VolumeId string }
	if err := b.awsJSON(&v, "ec2", "create-volume", "--size", fmt.Sprint(sizeGiB), "--availability-zone", b.zone); err != nil {
		return "", err
	}
	return v.VolumeId, b.waitVolume(v.VolumeId, "available", 5*time.Minute)
}

// volumeFile is the volume's backing file under SC_VOLUMES_PATH.
func (b *bench) volumeFile(vol string) (string, error) {
	p := filepath.Join(b.volPath, vol+".raw")
	if _, err := os.Stat(p); err != nil {
		ents, _ := os.ReadDir(b.volPath)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return "", fmt.Errorf("volume %s: no backing file %s (the directory holds %v): %w", vol, p, names, err)
	}
	return p, nil
}

func (b *bench) deleteVolume(vol string) {
	if _, err := b.aws("ec2", "delete-volume", "--volume-id", vol); err != nil {
		log.Printf("cleanup: %v", err)
		return
	}
	if err := b.waitVolume(vol, "gone", 2*time.Minute); err != nil {
		log.Printf("cleanup: %v", err)
	}
}
