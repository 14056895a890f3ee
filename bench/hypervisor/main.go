// Command hypervisor measures what the libvirt driver adds over the bare
// tools, on the project's test guest, in one run (a benchmark, not a test:
// nothing here asserts on time):
//
//   - start: Driver.Start until the domain runs, against `virsh create` of
//     the very domain XML the driver defines;
//   - boot: Driver.Start until the guest prints its marker, against a bare
//     qemu-system-x86_64 with the same kernel, ramdisk and disks.
//
// The guest has no NIC here, so its init skips DHCP and metadata: the boot
// measures hypervisor, kernel and init, not a network. Run as root with
// libvirtd up and the guest built: `make bench-hypervisor`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/euca-cloud/euca/hypervisor"
	"github.com/euca-cloud/euca/hypervisor/disk"
	"github.com/euca-cloud/euca/hypervisor/libvirt"
)

func main() {
	guest := flag.String("guest", "build/guest", "the test guest's directory (make guest-image)")
	rounds := flag.Int("n", 5, "rounds of each measurement")
	hv := flag.String("hypervisor", "qemu", "HYPERVISOR: qemu (TCG), kvm or auto")
	marker := flag.String("marker", "EUCA-READY", "the console line that ends a boot")
	mem := flag.Int("mem", 128, "guest memory, MiB")
	flag.Parse()
	ctx := context.Background()
	log.SetFlags(0)

	abs := func(f string) string { p, _ := filepath.Abs(filepath.Join(*guest, f)); return p }
	kernel, ramdisk, root := abs("vmlinuz"), abs("initrd.img"), abs("root.img")
	d, err := libvirt.New(ctx, libvirt.Options{Hypervisor: *hv,
		Probe: libvirt.Probe{Kernel: kernel, Ramdisk: ramdisk},
		Log:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	dir, err := os.MkdirTemp("", "euca-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	spec := hypervisor.InstanceSpec{ID: fmt.Sprintf("i-bench%08x", time.Now().UnixNano()&0xffffffff),
		Cores: 1, MemoryMiB: *mem, Kernel: kernel, Ramdisk: ramdisk, KernelCmdline: "console=ttyS0 quiet",
		RootDisk:      hypervisor.Disk{Path: filepath.Join(dir, "root.qcow2"), Format: hypervisor.QCOW2},
		EphemeralDisk: hypervisor.Disk{Path: filepath.Join(dir, "ephemeral.img"), Format: hypervisor.Raw},
		SwapDisk:      hypervisor.Disk{Path: filepath.Join(dir, "swap.img"), Format: hypervisor.Raw},
		ConsoleLog:    filepath.Join(dir, "console.log")}
	must(disk.NewOverlay(ctx, root, spec.RootDisk.Path))
	must(disk.NewEphemeral(ctx, spec.EphemeralDisk.Path, 1))
	must(disk.NewSwap(ctx, spec.SwapDisk.Path, 64))
	doc, err := d.DomainXML(spec)
	must(err)
	xmlPath := filepath.Join(dir, "domain.xml")
	must(os.WriteFile(xmlPath, []byte(doc), 0o600))
	name := hypervisor.DomainName(spec.ID)
	defer d.Destroy(ctx, spec.ID)
	defer exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()

	fmt.Printf("driver %s, guest %s, %d MiB, %d rounds, marker %s\n", d.Name(), *guest, *mem, *rounds, *marker)
	// A first start warms libvirtd's and the kernel's caches for both sides.
	_, err = d.Start(ctx, spec)
	must(err)
	must(d.Destroy(ctx, spec.ID))

	var drvStart, virshStart, drvBoot, qemuBoot []time.Duration
	for i := range *rounds {
		// Alternate which side goes first, so neither always runs warm.
		order := []func(){
			func() {
				os.Remove(spec.ConsoleLog)
				t0 := time.Now()
				_, err := d.Start(ctx, spec)
				must(err)
				drvStart = append(drvStart, time.Since(t0))
				drvBoot = append(drvBoot, waitMarker(spec.ConsoleLog, *marker, t0))
				must(d.Destroy(ctx, spec.ID))
			},
			func() {
				os.Remove(spec.ConsoleLog)
				t0 := time.Now()
				out, err := exec.Command("virsh", "-c", "qemu:///system", "create", xmlPath).CombinedOutput()
				if err != nil {
					log.Fatalf("virsh create: %v: %s", err, out)
				}
				virshStart = append(virshStart, time.Since(t0))
				waitMarker(spec.ConsoleLog, *marker, t0)
				exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()
			},
			func() {
				os.Remove(spec.ConsoleLog)
				accel := "tcg"
				if d.Accel() == hypervisor.AccelKVM {
					accel = "kvm"
				}
				t0 := time.Now()
				cmd := exec.Command("qemu-system-x86_64", "-machine", "pc,accel="+accel,
					"-m", fmt.Sprint(*mem), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
					"-kernel", kernel, "-initrd", ramdisk, "-append", spec.KernelCmdline,
					"-drive", "file="+spec.RootDisk.Path+",if=virtio,format=qcow2",
					"-drive", "file="+spec.EphemeralDisk.Path+",if=virtio,format=raw",
					"-drive", "file="+spec.SwapDisk.Path+",if=virtio,format=raw",
					"-serial", "file:"+spec.ConsoleLog)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				must(cmd.Start())
				qemuBoot = append(qemuBoot, waitMarker(spec.ConsoleLog, *marker, t0))
				cmd.Process.Kill()
				cmd.Wait()
			},
		}
		if i%2 == 1 {
			order[0], order[2] = order[2], order[0]
		}
		for _, f := range order {
			f()
		}
	}
	fmt.Printf("\n%-44s %8s %8s %8s\n", "", "median", "min", "max")
	row := func(what string, ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		med := s[len(s)/2]
		fmt.Printf("%-44s %8s %8s %8s\n", what, ms(med), ms(s[0]), ms(s[len(s)-1]))
		return med
	}
	a := row("Driver.Start until running", drvStart)
	b := row("virsh create (same XML) until running", virshStart)
	c := row("Driver.Start until "+*marker, drvBoot)
	e := row("bare qemu-system-x86_64 until "+*marker, qemuBoot)
	fmt.Printf("\nstart: driver/virsh = %.2f; boot: driver/bare qemu = %.2f\n",
		float64(a)/float64(b), float64(c)/float64(e))
}

// waitMarker waits for marker in the console file and returns the time
// since t0; two minutes without it ends the run.
func waitMarker(path, marker string, t0 time.Time) time.Duration {
	for {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(marker)) {
			return time.Since(t0)
		}
		if time.Since(t0) > 2*time.Minute {
			log.Fatalf("no %s on the console after 2 minutes:\n%s", marker, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
