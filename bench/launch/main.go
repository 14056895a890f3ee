// Command launch measures what the cloud adds to launching an instance over
// the bare hypervisor, in one run, as ratios against baselines measured in
// the same run (a benchmark, not a test: nothing here asserts on time):
//
//   - start, warm: RunInstances (boto3) until libvirt reports the domain
//     euca-<id> started, with the images already in the NC's cache, against
//     `virsh create` of the same domain XML (a cloud-made domain's, with its
//     name, uuid, MAC and file paths rewritten to copies and overlays made
//     outside the cloud) until started;
//   - start, cold: the same with images the NC has never seen, two ways: a
//     fresh registration of the guest each round (the process stays warm),
//     and euca stopped, INSTANCE_PATH/cache removed and euca started again;
//   - boot: RunInstances until the guest prints EUCA-ROOT-OK (its root disk
//     is mounted), against virsh create and a bare qemu-system-x86_64 of the
//     same kernel, ramdisk, command line and disks (which has no DHCP or
//     metadata service, so EUCA-ROOT-OK is the last marker both reach); and
//     RunInstances until EUCA-READY (it has read its metadata) on its own;
//   - at once: as many m1.small as fit (at most -at-once), launched by one
//     RunInstances and by as many concurrent calls, until the last
//     EUCA-READY, against one launch; and as many bare QEMUs at once.
//
// "Started" is libvirt's lifecycle event, received on a connection opened
// before the call: the same clock for both sides, with no polling interval
// in it. Where the time goes comes from euca's log (DEBUG), the NC's files
// (birth and modification times of the disks it makes) and the events.
//
// Run by bench/launch/run.sh (make bench-launch) inside private mount,
// network and pid namespaces with a libvirtd of its own; see there why.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/euca-cloud/euca/hypervisor/disk"
)

// Console markers of the test guest (scripts/guest-image.sh).
const (
	mRoot  = "EUCA-ROOT-OK"
	mLease = "EUCA-LEASE"
	mMeta  = "EUCA-META instance-id"
	mReady = "EUCA-READY"
)

const (
	startWithin = 2 * time.Minute
	bootWithin  = 3 * time.Minute
)

type bench struct {
	guest, work string
	eucaBin     string
	cl          *eucaCloud
	ec2         *ec2Client
	ev          *domEvents
	emi         string

	// The bare side: copies of the guest's files and the cloud-made domain.
	bareDir              string
	kernel, ramdisk      string
	base                 string // raw root image the bare overlays are made of
	dom                  *libvirtxml.Domain
	cmdline              string
	memMiB, vcpus        int
	ephemeralGiB, swapMB int

	mu     sync.Mutex
	live   map[string]bool    // instances started and not yet terminated
	qemus  map[int]*exec.Cmd  // bare QEMUs running, by PID
	starts map[string]*launch // every cloud launch, by instance id
}

// launch is what one cloud launch measured; zero times were not reached.
type launch struct {
	id               string
	t0, answered     time.Time
	defined, started time.Time
	apiRunning       time.Time
	markers          map[string]time.Time
	files            instanceFiles
	cold             bool
}

var b *bench

func main() {
	guest := flag.String("guest", "build/guest", "the test guest's directory (make guest-image)")
	eucaBin := flag.String("euca", "bin/euca", "the euca binary")
	work := flag.String("work", "", "a new directory for the cloud and the bare guests' files (required)")
	n := flag.Int("n", 7, "rounds of the warm measurements (start and boot)")
	nCold := flag.Int("cold", 5, "rounds of each cold measurement")
	nConc := flag.Int("conc", 5, "rounds of the launches at once")
	atOnce := flag.Int("at-once", 4, "launches at once, at most (fewer if fewer m1.small fit)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if *work == "" {
		log.Fatal("-work is required")
	}
	g, _ := filepath.Abs(*guest)
	w, _ := filepath.Abs(*work)
	b = &bench{guest: g, work: w, eucaBin: abs(*eucaBin), live: map[string]bool{}, qemus: map[int]*exec.Cmd{}, starts: map[string]*launch{}}
	defer b.cleanup()

	b.setup()
	s0 := sampleCPU()
	warm := b.warmRounds(*n)
	s1 := sampleCPU()
	conc := b.concRounds(*nConc, *atOnce)
	s2 := sampleCPU()
	fresh := b.coldRounds(*nCold, false)
	s3 := sampleCPU()
	restart := b.coldRounds(*nCold, true)
	s4 := sampleCPU()
	cpus := runtime.NumCPU()
	warm.other, conc.other = otherLoad(s0, s1, cpus), otherLoad(s1, s2, cpus)
	fresh.other, restart.other = otherLoad(s2, s3, cpus), otherLoad(s3, s4, cpus)
	b.report(warm, conc, fresh, restart)
}

// die ends the run, cleaning up first (log.Fatal would skip the defers).
func die(format string, args ...any) {
	log.Printf("FATAL: "+format, args...)
	if b != nil {
		b.cleanup()
	}
	os.Exit(1)
}

func must(err error) {
	if err != nil {
		die("%v", err)
	}
}

// setup starts the cloud, registers the guest, launches it once (which
// fills the NC's cache and gives the domain XML the bare side uses), and
// makes the bare side's copies.
func (b *bench) setup() {
	var err error
	fmt.Printf("host: %d CPUs (shared: other work on this machine shows in the spread), %s\n", runtime.NumCPU(), hostMem())
	b.ev, err = watchDomains()
	must(err)
	b.cl, err = newCloud(b.eucaBin, filepath.Join(b.work, "cloud"))
	must(err)
	must(b.cl.start())
	log.Printf("euca --roles=all up on port %d (HYPERVISOR=qemu, TCG)", b.cl.port)
	b.emi, err = b.cl.register(b.guest, "warm")
	must(err)
	b.ec2, err = b.cl.newClient()
	must(err)
	log.Printf("guest registered: %s", b.emi)

	// The first launch fills the cache; its domain is the bare side's model,
	// read while it runs.
	var model string
	ls := b.launchMany(b.emi, 1, 1, mReady, func(ids []string) {
		dom, err := b.ev.l.DomainLookupByName("euca-" + ids[0])
		must(err)
		model, err = b.ev.l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		must(err)
		dir := filepath.Join(b.cl.instPath, ids[0])
		size := func(p string) int64 { fi, err := os.Stat(p); must(err); return fi.Size() }
		b.ephemeralGiB = int(size(filepath.Join(dir, "ephemeral.img")) >> 30)
		b.swapMB = int(size(filepath.Join(dir, "swap.img")) >> 20)
	})
	must(ls[0].err)
	delete(b.starts, ls[0].id)
	b.dom = &libvirtxml.Domain{}
	must(b.dom.Unmarshal(model))

	b.bareDir = filepath.Join(b.work, "bare")
	must(os.MkdirAll(b.bareDir, 0o755))
	cp := func(name string) string {
		dst := filepath.Join(b.bareDir, name)
		out, err := exec.Command("cp", "--sparse=always", filepath.Join(b.guest, name), dst).CombinedOutput()
		if err != nil {
			die("cp %s: %v: %s", name, err, out)
		}
		return dst
	}
	b.kernel, b.ramdisk, b.base = cp("vmlinuz"), cp("initrd.img"), cp("root.img")
	b.cmdline = b.dom.OS.Cmdline
	b.memMiB = int(b.dom.Memory.Value >> 10)
	if b.dom.Memory.Unit != "KiB" && b.dom.Memory.Unit != "" {
		die("domain memory in %q", b.dom.Memory.Unit)
	}
	b.vcpus = int(b.dom.VCPU.Value)
	fmt.Printf("guest: m1.small = %d vCPU, %d MiB, ephemeral %d GiB, swap %d MiB; cmdline %q\n",
		b.vcpus, b.memMiB, b.ephemeralGiB, b.swapMB, b.cmdline)
}

// ---- the cloud side

type launched struct {
	launch
	err error
}

// launchOne is one RunInstances of one m1.small, measured until the guest
// prints until (mRoot or mReady), then terminated.
func (b *bench) launchOne(image, until string) launched {
	ls := b.launchMany(image, 1, 1, until, nil)
	return ls[0]
}

// launchMany makes `calls` RunInstances calls at once of `count` instances
// each, measures each instance until the guest prints `until` ("" : until
// the domain started), calls running (if not nil) and terminates them all.
func (b *bench) launchMany(image string, count, calls int, until string, running func(ids []string)) []launched {
	t0 := time.Now()
	ids, _, err := b.ec2.run(image, count, calls)
	answered := time.Now()
	b.mu.Lock()
	for _, id := range ids {
		b.live[id] = true
	}
	b.mu.Unlock()
	defer b.terminate(ids)
	if err != nil {
		return []launched{{err: fmt.Errorf("RunInstances: %w", err)}}
	}
	out := make([]launched, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		l := &launch{id: id, t0: t0, answered: answered, markers: map[string]time.Time{}}
		b.mu.Lock()
		b.starts[id] = l
		b.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = launched{launch: *l, err: b.follow(l, until)}
			*l = out[i].launch
		}()
	}
	wg.Wait()
	for _, l := range out {
		if l.err != nil {
			return []launched{l}
		}
	}
	if running != nil {
		running(ids)
	}
	return out
}

// follow waits for l's domain to start and its guest to print until.
func (b *bench) follow(l *launch, until string) error {
	name := "euca-" + l.id
	dir := filepath.Join(b.cl.instPath, l.id)
	con := watchConsole(filepath.Join(dir, "console.log"), mRoot, mLease, mMeta, mReady)
	defer con.close()
	var err error
	if l.started, err = b.ev.wait(name, golibvirt.DomainEventStarted, startWithin); err != nil {
		return err
	}
	// At once, before the guest writes to its disks.
	l.files = statInstance(dir)
	l.defined, _ = b.ev.get(name, golibvirt.DomainEventDefined)
	// DescribeInstances every 100 ms: when does the API say running? Not
	// before the domain started (it cannot), so the polls load neither the
	// start nor the bare side.
	stopPoll := make(chan struct{})
	polled := make(chan time.Time, 1)
	go func() {
		defer close(polled)
		for {
			st, err := b.ec2.states([]string{l.id})
			if err == nil && st[l.id] == "running" {
				polled <- time.Now()
				return
			}
			select {
			case <-stopPoll:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-stopPoll:
		default:
			close(stopPoll)
		}
	}()
	if until != "" {
		if _, err := con.wait(until, bootWithin); err != nil {
			return err
		}
	}
	for _, m := range []string{mRoot, mLease, mMeta, mReady} {
		if t, ok := con.get(m); ok {
			l.markers[m] = t
		}
	}
	select {
	case t, ok := <-polled:
		if ok {
			l.apiRunning = t
		}
	case <-time.After(30 * time.Second):
	}
	return nil
}

// terminate ends instances and waits until the API says terminated and
// their domains are gone, then for the CPU to settle.
func (b *bench) terminate(ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := b.ec2.terminate(ids); err != nil {
		log.Printf("terminate %v: %v", ids, err)
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := b.ec2.states(ids)
		done := err == nil
		for _, id := range ids {
			if st[id] != "terminated" {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			die("instances %v not terminated after 2 minutes: %v %v", ids, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range ids {
		if _, ok := b.ev.get("euca-"+id, golibvirt.DomainEventStarted); ok {
			if _, err := b.ev.wait("euca-"+id, golibvirt.DomainEventUndefined, time.Minute); err != nil {
				die("%v", err)
			}
		}
	}
	b.mu.Lock()
	for _, id := range ids {
		delete(b.live, id)
	}
	b.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
}

// waitFree waits until the zone offers n m1.small (the cluster has seen
// the last round's instances go).
func (b *bench) waitFree(n int) {
	deadline := time.Now().Add(time.Minute)
	for {
		f, _, err := b.ec2.free()
		if err == nil && f >= n {
			return
		}
		if time.Now().After(deadline) {
			die("the zone does not offer %d m1.small after a minute (free %d, %v)", n, f, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- the bare side

// bareFiles makes a fresh overlay, ephemeral and swap disk for one bare
// guest (not timed: the cloud's timing includes making them, the bare
// side's does not, as a hand-started guest's files exist beforehand).
func (b *bench) bareFiles(tag string) (dir, root, eph, swap, con string) {
	dir = filepath.Join(b.bareDir, tag)
	os.RemoveAll(dir)
	must(os.MkdirAll(dir, 0o755))
	root, eph, swap, con = filepath.Join(dir, "root.qcow2"), filepath.Join(dir, "ephemeral.img"), filepath.Join(dir, "swap.img"), filepath.Join(dir, "console.log")
	must(disk.NewOverlay(contextBG, b.base, root))
	must(disk.NewEphemeral(contextBG, eph, b.ephemeralGiB))
	must(disk.NewSwap(contextBG, swap, b.swapMB))
	return
}

// bareXML is the cloud-made domain renamed, its uuid dropped, its MAC
// changed, its metadata (the NC's mark) removed and its files pointed at
// the bare copies.
func (b *bench) bareXML(name, root, eph, swap, con string) string {
	var d libvirtxml.Domain
	x, err := b.dom.Marshal()
	must(err)
	must(d.Unmarshal(x))
	d.Name, d.UUID, d.ID, d.Metadata = name, "", nil, nil
	d.OS.Kernel, d.OS.Initrd = b.kernel, b.ramdisk
	files := map[string]string{"vda": root, "vdb": eph, "vdc": swap}
	for i := range d.Devices.Disks {
		dk := &d.Devices.Disks[i]
		f, ok := files[dk.Target.Dev]
		if !ok || dk.Source == nil || dk.Source.File == nil {
			die("the cloud's domain has an unexpected disk %+v", dk.Target)
		}
		dk.Source.File.File = f
		dk.BackingStore = nil
	}
	for i := range d.Devices.Interfaces {
		d.Devices.Interfaces[i].MAC = &libvirtxml.DomainInterfaceMAC{Address: fmt.Sprintf("52:54:00:be:%02x:%02x", i, time.Now().Nanosecond()&0xff)}
		d.Devices.Interfaces[i].Target = nil
	}
	for i := range d.Devices.Serials {
		if s := d.Devices.Serials[i].Source; s != nil && s.File != nil {
			s.File.Path = con
		}
	}
	for i := range d.Devices.Consoles {
		if s := d.Devices.Consoles[i].Source; s != nil && s.File != nil {
			s.File.Path = con
		}
	}
	out, err := d.Marshal()
	must(err)
	return out
}

type bareRun struct {
	started, virshDone, rootOK time.Duration
}

// virshOne times `virsh create` of the bare domain until started and, if
// boot, until its guest prints EUCA-ROOT-OK; then destroys it.
func (b *bench) virshOne(tag string, boot bool) bareRun {
	dir, root, eph, swap, conPath := b.bareFiles(tag)
	defer os.RemoveAll(dir)
	name := "lb-bare-" + tag
	xmlPath := filepath.Join(dir, "domain.xml")
	must(os.WriteFile(xmlPath, []byte(b.bareXML(name, root, eph, swap, conPath)), 0o644))
	con := watchConsole(conPath, mRoot)
	defer con.close()
	var r bareRun
	t0 := time.Now()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "create", xmlPath).CombinedOutput()
	r.virshDone = time.Since(t0)
	if err != nil {
		die("virsh create: %v: %s", err, out)
	}
	defer func() {
		exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()
		b.ev.wait(name, golibvirt.DomainEventStopped, time.Minute)
		time.Sleep(300 * time.Millisecond)
	}()
	st, err := b.ev.wait(name, golibvirt.DomainEventStarted, startWithin)
	must(err)
	r.started = st.Sub(t0)
	if boot {
		t, err := con.wait(mRoot, bootWithin)
		must(err)
		r.rootOK = t.Sub(t0)
	}
	return r
}

// qemuMany starts n bare qemu-system-x86_64 at once with the cloud
// domain's kernel, ramdisk, command line, memory, vCPUs and disks (no NIC:
// nothing would answer its DHCP) and returns each one's time to
// EUCA-ROOT-OK; each is killed by its PID after.
func (b *bench) qemuMany(tag string, n int) []time.Duration {
	type one struct {
		dir string
		con *console
		cmd *exec.Cmd
	}
	all := make([]one, n)
	for i := range all {
		dir, root, eph, swap, conPath := b.bareFiles(fmt.Sprintf("%s-%d", tag, i))
		cmd := exec.Command("qemu-system-x86_64", "-machine", "pc,accel=tcg", "-cpu", "qemu64",
			"-m", strconv.Itoa(b.memMiB), "-smp", strconv.Itoa(b.vcpus),
			"-nodefaults", "-no-user-config", "-display", "none",
			"-kernel", b.kernel, "-initrd", b.ramdisk, "-append", b.cmdline,
			"-drive", "file="+root+",if=virtio,format=qcow2",
			"-drive", "file="+eph+",if=virtio,format=raw",
			"-drive", "file="+swap+",if=virtio,format=raw",
			"-serial", "file:"+conPath)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		all[i] = one{dir: dir, con: watchConsole(conPath, mRoot), cmd: cmd}
	}
	t0 := time.Now()
	for _, o := range all {
		must(o.cmd.Start())
		b.mu.Lock()
		b.qemus[o.cmd.Process.Pid] = o.cmd
		b.mu.Unlock()
	}
	out := make([]time.Duration, n)
	for i, o := range all {
		t, err := o.con.wait(mRoot, bootWithin)
		must(err)
		out[i] = t.Sub(t0)
	}
	for _, o := range all {
		o.con.close()
		b.killQemu(o.cmd)
		os.RemoveAll(o.dir)
	}
	time.Sleep(300 * time.Millisecond)
	return out
}

func (b *bench) killQemu(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	b.mu.Lock()
	delete(b.qemus, cmd.Process.Pid)
	b.mu.Unlock()
}

// ---- rounds

type warmResult struct {
	other                                      float64 // share of the CPUs other users took meanwhile
	cloud                                      []*launch
	virshStart, virshDone, virshRoot, qemuRoot []time.Duration
}

// warmRounds: each round one cloud launch (to EUCA-READY), one virsh
// create (to EUCA-ROOT-OK) and one bare QEMU (to EUCA-ROOT-OK), in an
// order that alternates, so that neither side always runs first.
func (b *bench) warmRounds(n int) warmResult {
	var r warmResult
	for i := range n {
		steps := []func(){
			func() {
				l := b.launchOne(b.emi, mReady)
				must(l.err)
				r.cloud = append(r.cloud, b.starts[l.id])
			},
			func() {
				v := b.virshOne(fmt.Sprintf("w%d", i), true)
				r.virshStart, r.virshDone, r.virshRoot = append(r.virshStart, v.started), append(r.virshDone, v.virshDone), append(r.virshRoot, v.rootOK)
			},
			func() { r.qemuRoot = append(r.qemuRoot, b.qemuMany(fmt.Sprintf("q%d", i), 1)[0]) },
		}
		if i%2 == 1 {
			steps[0], steps[2] = steps[2], steps[0]
		}
		for _, s := range steps {
			s()
		}
		l := r.cloud[len(r.cloud)-1]
		log.Printf("warm %d/%d: cloud start %s ready %s; virsh start %s; qemu root-ok %s", i+1, n,
			ms(l.started.Sub(l.t0)), ms(l.markers[mReady].Sub(l.t0)), ms(r.virshStart[i]), ms(r.qemuRoot[i]))
	}
	return r
}

type concResult struct {
	other                  float64
	n                      int
	countLast, callsLast   []time.Duration // RunInstances → last EUCA-READY
	countStart, callsStart []time.Duration // → last domain started
	countRoot, callsRoot   []time.Duration // → last EUCA-ROOT-OK
	qemuLast               []time.Duration // → last bare EUCA-ROOT-OK
}

// concRounds launches as many m1.small as fit (at most max) at once.
func (b *bench) concRounds(rounds, max int) concResult {
	_, zoneMax, err := b.ec2.free()
	must(err)
	r := concResult{n: min(max, zoneMax)}
	fmt.Printf("at once: the zone offers %d m1.small (MAX_CORES can only lower what the host has; %d CPUs): launching %d at once\n",
		zoneMax, runtime.NumCPU(), r.n)
	if r.n < 2 {
		return r
	}
	last := func(ls []launched, f func(launch) time.Time) time.Duration {
		var m time.Duration
		for _, l := range ls {
			m = max2(m, f(l.launch).Sub(l.t0))
		}
		return m
	}
	for i := range rounds {
		steps := []func(){
			func() {
				b.waitFree(r.n)
				ls := b.launchMany(b.emi, r.n, 1, mReady, nil)
				must(ls[0].err)
				r.countLast = append(r.countLast, last(ls, func(l launch) time.Time { return l.markers[mReady] }))
				r.countStart = append(r.countStart, last(ls, func(l launch) time.Time { return l.started }))
				r.countRoot = append(r.countRoot, last(ls, func(l launch) time.Time { return l.markers[mRoot] }))
			},
			func() {
				b.waitFree(r.n)
				ls := b.launchMany(b.emi, 1, r.n, mReady, nil)
				must(ls[0].err)
				r.callsLast = append(r.callsLast, last(ls, func(l launch) time.Time { return l.markers[mReady] }))
				r.callsStart = append(r.callsStart, last(ls, func(l launch) time.Time { return l.started }))
				r.callsRoot = append(r.callsRoot, last(ls, func(l launch) time.Time { return l.markers[mRoot] }))
			},
			func() {
				ds := b.qemuMany(fmt.Sprintf("c%d", i), r.n)
				sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
				r.qemuLast = append(r.qemuLast, ds[len(ds)-1])
			},
		}
		if i%2 == 1 {
			steps[0], steps[2] = steps[2], steps[0]
		}
		for _, s := range steps {
			s()
		}
		log.Printf("at once %d/%d: --count %d last ready %s; %d calls last ready %s; %d bare qemu last root-ok %s", i+1, rounds,
			r.n, ms(r.countLast[i]), r.n, ms(r.callsLast[i]), r.n, ms(r.qemuLast[i]))
	}
	return r
}

type coldResult struct {
	other      float64
	restart    bool
	cloud      []*launch
	virshStart []time.Duration
}

// coldRounds launches images the NC has never seen: with restart, euca is
// stopped, INSTANCE_PATH/cache removed and euca started again before each
// round (the same image); without, the guest is registered afresh each
// round (new ids: nothing cached under them; the process stays warm).
func (b *bench) coldRounds(rounds int, restart bool) coldResult {
	r := coldResult{restart: restart}
	for i := range rounds {
		image := b.emi
		if restart {
			b.ec2.close()
			b.cl.stop()
			must(os.RemoveAll(filepath.Join(b.cl.instPath, "cache")))
			must(b.cl.start())
			var err error
			b.ec2, err = b.cl.newClient()
			must(err)
		} else {
			var err error
			image, err = b.cl.register(b.guest, fmt.Sprintf("cold%d", i))
			must(err)
		}
		b.waitFree(1)
		time.Sleep(time.Second) // the restart's or the registration's work settles
		steps := []func(){
			func() {
				l := b.launchOne(image, mReady)
				must(l.err)
				cl := b.starts[l.id]
				cl.cold = true
				r.cloud = append(r.cloud, cl)
			},
			func() {
				r.virshStart = append(r.virshStart, b.virshOne(fmt.Sprintf("k%s%d", map[bool]string{false: "f", true: "r"}[restart], i), false).started)
			},
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			s()
		}
		l := r.cloud[len(r.cloud)-1]
		log.Printf("cold (%s) %d/%d: cloud start %s ready %s; virsh start %s", coldHow(restart), i+1, rounds,
			ms(l.started.Sub(l.t0)), ms(l.markers[mReady].Sub(l.t0)), ms(r.virshStart[i]))
	}
	return r
}

func coldHow(restart bool) string {
	if restart {
		return "euca restarted, cache removed"
	}
	return "fresh registration"
}

// cleanup ends what the run started: instances (through the API), euca
// (by its PID), bare QEMUs (by PID) and bare domains.
func (b *bench) cleanup() {
	b.mu.Lock()
	var ids []string
	for id := range b.live {
		ids = append(ids, id)
	}
	qemus := make([]*exec.Cmd, 0, len(b.qemus))
	for _, c := range b.qemus {
		qemus = append(qemus, c)
	}
	b.live = map[string]bool{}
	b.mu.Unlock()
	if len(ids) > 0 && b.ec2 != nil {
		_ = b.ec2.terminate(ids)
	}
	for _, c := range qemus {
		b.killQemu(c)
	}
	if b.ec2 != nil {
		b.ec2.close()
		b.ec2 = nil
	}
	if b.cl != nil {
		b.cl.stop()
	}
	if b.ev != nil {
		b.ev.destroyAll("lb-bare-")
		b.ev.destroyAll("euca-")
	}
}

// ---- helpers

func ms(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

func max2(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func hostMem() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%d MiB", kb>>10)
		}
	}
	return ""
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	must(err)
	return a
}

var contextBG = context.Background()
