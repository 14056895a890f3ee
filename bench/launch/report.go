package main

import (
	"fmt"
	"log"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type stat struct {
	min, med, max time.Duration
	n             int
}

// summarize gives min, median (the mean of the middle two for an even
// count) and max of the positive durations.
func summarize(ds []time.Duration) stat {
	var s []time.Duration
	for _, d := range ds {
		if d > 0 {
			s = append(s, d)
		}
	}
	if len(s) == 0 {
		return stat{}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{min: s[0], med: med, max: s[len(s)-1], n: len(s)}
}

func row(what string, ds []time.Duration) stat {
	s := summarize(ds)
	fmt.Printf("  %-58s %8s %8s %8s  %2d\n", what, ms(s.min), ms(s.med), ms(s.max), s.n)
	return s
}

func ratio(what string, a, base stat) {
	if base.med <= 0 || a.med <= 0 {
		fmt.Printf("  %-58s %8s\n", what, "-")
		return
	}
	fmt.Printf("  %-58s %8.2f   (%+d ms, %+.0f%%)\n", what, float64(a.med)/float64(base.med),
		(a.med - base.med).Milliseconds(), 100*(float64(a.med)/float64(base.med)-1))
}

func since(ls []*launch, f func(*launch) time.Time) []time.Duration {
	var out []time.Duration
	for _, l := range ls {
		if t := f(l); !t.IsZero() {
			out = append(out, t.Sub(l.t0))
		}
	}
	return out
}

func (b *bench) report(w warmResult, c concResult, fresh, restart coldResult) {
	lines, err := readLog(b.cl.logPath)
	if err != nil {
		log.Printf("euca log: %v", err)
	}
	tl := timeline(lines)

	fmt.Printf("\nlaunch benchmark: euca --roles=all, HYPERVISOR=qemu (TCG), m1.small, %d CPUs shared with whatever else runs here\n", runtime.NumCPU())
	fmt.Printf("times from the call (boto3 RunInstances sent; virsh or qemu exec'd); %s\n", "min / median / max over the rounds, n = samples")
	fmt.Printf("\n  %-58s %8s %8s %8s  %2s\n", "", "min", "median", "max", "n")

	fmt.Printf("1. start, warm cache (the image already on the node)%s\n", otherNote(w.other))
	cw := row("RunInstances → domain started (cloud)", since(w.cloud, func(l *launch) time.Time { return l.started }))
	vw := row("virsh create → domain started (same XML, bare files)", w.virshStart)
	row("  (virsh create returned)", w.virshDone)
	ratio("ratio cloud / virsh", cw, vw)

	for i, cr := range []coldResult{fresh, restart} {
		fmt.Printf("2%c. start, cold cache (%s)%s\n", 'a'+i, coldHow(cr.restart), otherNote(cr.other))
		cc := row("RunInstances → domain started (cloud)", since(cr.cloud, func(l *launch) time.Time { return l.started }))
		vc := row("virsh create → domain started (same rounds)", cr.virshStart)
		ratio("ratio cloud / virsh", cc, vc)
		row("RunInstances → EUCA-READY (cold)", since(cr.cloud, func(l *launch) time.Time { return l.markers[mReady] }))
	}

	fmt.Printf("3. boot (same kernel, ramdisk, command line, disks; the rounds of 1)%s\n", otherNote(w.other))
	cr := row("RunInstances → EUCA-ROOT-OK (cloud)", since(w.cloud, func(l *launch) time.Time { return l.markers[mRoot] }))
	vr := row("virsh create → EUCA-ROOT-OK", w.virshRoot)
	qr := row("qemu-system-x86_64 → EUCA-ROOT-OK (no NIC)", w.qemuRoot)
	ratio("ratio cloud / bare qemu", cr, qr)
	ratio("ratio cloud / virsh", cr, vr)
	one := row("RunInstances → EUCA-READY (DHCP lease, metadata read)", since(w.cloud, func(l *launch) time.Time { return l.markers[mReady] }))
	row("RunInstances → API says running (DescribeInstances / 100 ms)", since(w.cloud, func(l *launch) time.Time { return l.apiRunning }))

	fmt.Printf("4. %d at once (one launch: section 3's EUCA-READY, same run)%s\n", c.n, otherNote(c.other))
	if c.n >= 2 {
		a := row(fmt.Sprintf("RunInstances --count %d → last EUCA-READY", c.n), c.countLast)
		row(fmt.Sprintf("RunInstances --count %d → last domain started", c.n), c.countStart)
		ac := row(fmt.Sprintf("RunInstances --count %d → last EUCA-ROOT-OK", c.n), c.countRoot)
		bb := row(fmt.Sprintf("%d RunInstances calls at once → last EUCA-READY", c.n), c.callsLast)
		row(fmt.Sprintf("%d RunInstances calls at once → last domain started", c.n), c.callsStart)
		bc := row(fmt.Sprintf("%d RunInstances calls at once → last EUCA-ROOT-OK", c.n), c.callsRoot)
		q := row(fmt.Sprintf("%d bare qemu at once → last EUCA-ROOT-OK", c.n), c.qemuLast)
		ratio(fmt.Sprintf("ratio --count %d / one", c.n), a, one)
		ratio(fmt.Sprintf("ratio %d calls / one", c.n), bb, one)
		ratio(fmt.Sprintf("ratio --count %d / one, to EUCA-ROOT-OK", c.n), ac, cr)
		ratio(fmt.Sprintf("ratio %d calls / one, to EUCA-ROOT-OK", c.n), bc, cr)
		ratio(fmt.Sprintf("ratio %d bare qemu / one bare qemu", c.n), q, qr)
	} else {
		fmt.Println("  (fewer than two m1.small fit: nothing to measure)")
	}

	b.whereTimeGoes("warm", w.cloud, tl)
	b.whereTimeGoes("cold, fresh registration", fresh.cloud, tl)
	b.whereTimeGoes("cold, euca restarted and cache removed", restart.cloud, tl)
}

// otherNote says how much of the machine other users took meanwhile.
func otherNote(share float64) string {
	return fmt.Sprintf("  [other users: %.0f%% of the CPUs]", 100*share)
}

// logTimes is what euca's log says about one instance's launch.
type logTimes struct {
	accepted, running, netApplied time.Time
	serverMS                      int
	cached                        []string // "eki-… 43ms" of the images fetched for it
	cacheEnd                      time.Time
}

// timeline reads the launch of each instance out of euca's log: the NC's
// "instance accepted" and "instance running", and, by its request id, the
// CLC's RunInstances request line, the CC's network hand-over and the NC's
// image downloads.
func timeline(lines []logLine) map[string]*logTimes {
	byID := map[string]*logTimes{}
	reqOf := map[string]string{}
	for _, l := range lines {
		id := l.kv["instance"]
		switch l.msg {
		case "instance accepted":
			t := &logTimes{accepted: l.t}
			byID[id] = t
			reqOf[l.kv["request_id"]] = id
		case "instance running":
			if t := byID[id]; t != nil {
				t.running = l.t
			}
		}
	}
	for _, l := range lines {
		id, ok := reqOf[l.kv["request_id"]]
		if !ok {
			continue
		}
		t := byID[id]
		switch {
		case l.msg == "request" && l.kv["action"] == "RunInstances":
			t.serverMS, _ = strconv.Atoi(l.kv["ms"])
		case l.msg == "cc: network applied" && t.netApplied.IsZero():
			t.netApplied = l.t
		case l.msg == "image cached":
			t.cached = append(t.cached, l.kv["image"][:3]+" "+l.kv["took"])
			if l.t.After(t.cacheEnd) {
				t.cacheEnd = l.t
			}
		}
	}
	return byID
}

// whereTimeGoes prints the median offset of each step of a launch from the
// moment RunInstances was sent.
func (b *bench) whereTimeGoes(what string, ls []*launch, tl map[string]*logTimes) {
	if len(ls) == 0 {
		return
	}
	fmt.Printf("5. where the time goes (%s): offsets from RunInstances sent, median over %d launches [min max]\n", what, len(ls))
	step := func(name string, f func(l *launch, t *logTimes) time.Time) {
		var ds []time.Duration
		for _, l := range ls {
			t := tl[l.id]
			if t == nil {
				t = &logTimes{}
			}
			if at := f(l, t); !at.IsZero() {
				ds = append(ds, at.Sub(l.t0))
			}
		}
		s := summarize(ds)
		fmt.Printf("  %-58s %8s  [%s %s]\n", name, ms(s.med), ms(s.min), ms(s.max))
	}
	dur := func(name string, f func(l *launch) time.Duration) {
		var ds []time.Duration
		for _, l := range ls {
			ds = append(ds, f(l))
		}
		s := summarize(ds)
		fmt.Printf("  %-58s %8s  [%s %s]\n", name, ms(s.med), ms(s.min), ms(s.max))
	}
	step("CC has the zone's network (CLC SetNetwork; log)", func(l *launch, t *logTimes) time.Time { return t.netApplied })
	step("NC accepted the instance (log)", func(l *launch, t *logTimes) time.Time { return t.accepted })
	step("NC launch began: instance directory made (birth time)", func(l *launch, t *logTimes) time.Time { return l.files.dir.born })
	step("RunInstances answered (client)", func(l *launch, t *logTimes) time.Time { return l.answered })
	step("images in the NC's cache (log, when fetched)", func(l *launch, t *logTimes) time.Time { return t.cacheEnd })
	step("root overlay made (qemu-img create)", func(l *launch, t *logTimes) time.Time { return l.files.root.written })
	step("swap made (mkswap)", func(l *launch, t *logTimes) time.Time { return l.files.swap.written })
	step("ephemeral made (mkfs.ext4)", func(l *launch, t *logTimes) time.Time { return l.files.ephemeral.written })
	step("domain defined (libvirt event)", func(l *launch, t *logTimes) time.Time { return l.defined })
	step("console file opened (QEMU starting; birth time)", func(l *launch, t *logTimes) time.Time { return l.files.console.born })
	step("domain started (libvirt event)", func(l *launch, t *logTimes) time.Time { return l.started })
	step("NC says running (log)", func(l *launch, t *logTimes) time.Time { return t.running })
	step("API says running (DescribeInstances every 100 ms)", func(l *launch, t *logTimes) time.Time { return l.apiRunning })
	step("guest: EUCA-ROOT-OK", func(l *launch, t *logTimes) time.Time { return l.markers[mRoot] })
	step("guest: EUCA-LEASE (DHCP)", func(l *launch, t *logTimes) time.Time { return l.markers[mLease] })
	step("guest: EUCA-META instance-id (metadata)", func(l *launch, t *logTimes) time.Time { return l.markers[mMeta] })
	step("guest: EUCA-READY", func(l *launch, t *logTimes) time.Time { return l.markers[mReady] })
	dur("  RunInstances on the server (log ms)", func(l *launch) time.Duration {
		if t := tl[l.id]; t != nil {
			return time.Duration(t.serverMS) * time.Millisecond
		}
		return 0
	})
	dur("  root overlay: qemu-img create took", func(l *launch) time.Duration { return l.files.root.written.Sub(l.files.root.born) })
	dur("  ephemeral: truncate + mkfs.ext4 took", func(l *launch) time.Duration { return l.files.ephemeral.written.Sub(l.files.ephemeral.born) })
	dur("  swap: truncate + mkswap took", func(l *launch) time.Duration { return l.files.swap.written.Sub(l.files.swap.born) })
	dur("  last file made → domain defined", func(l *launch) time.Duration {
		last := l.files.root.written
		for _, t := range []time.Time{l.files.ephemeral.written, l.files.swap.written} {
			if t.After(last) {
				last = t
			}
		}
		return l.defined.Sub(last)
	})
	dur("  defined → started (libvirt create)", func(l *launch) time.Duration { return l.started.Sub(l.defined) })
	dur("  started → API running", func(l *launch) time.Duration {
		if l.apiRunning.IsZero() {
			return 0
		}
		return l.apiRunning.Sub(l.started)
	})
	var cached []string
	for _, l := range ls {
		if t := tl[l.id]; t != nil && len(t.cached) > 0 {
			cached = append(cached, strings.Join(t.cached, ", "))
		}
	}
	if len(cached) > 0 {
		fmt.Printf("  images fetched (log, per launch): %s\n", strings.Join(cached, " | "))
	}
	for _, l := range ls {
		if l.files.err != nil {
			fmt.Printf("  (files of %s: %v)\n", l.id, l.files.err)
			break
		}
	}
}
