package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/sys/unix"
)

// domEvents records, for every domain of the libvirtd, when each lifecycle
// event (defined, started, stopped, undefined) first arrived. Events are
// pushed by libvirtd the moment the state changes, so "the hypervisor has
// started the domain" is the Started event's arrival: the same clock for the
// cloud's domains and the bare ones, with no polling interval in it.
type domEvents struct {
	l  *golibvirt.Libvirt
	mu sync.Mutex
	at map[string]map[golibvirt.DomainEventType]time.Time
}

func watchDomains() (*domEvents, error) {
	l := golibvirt.NewWithDialer(dialers.NewLocal())
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	ch, err := l.LifecycleEvents(context.Background())
	if err != nil {
		return nil, fmt.Errorf("libvirt events: %w", err)
	}
	e := &domEvents{l: l, at: map[string]map[golibvirt.DomainEventType]time.Time{}}
	go func() {
		for ev := range ch {
			now := time.Now()
			e.mu.Lock()
			m := e.at[ev.Dom.Name]
			if m == nil {
				m = map[golibvirt.DomainEventType]time.Time{}
				e.at[ev.Dom.Name] = m
			}
			if _, ok := m[golibvirt.DomainEventType(ev.Event)]; !ok {
				m[golibvirt.DomainEventType(ev.Event)] = now
			}
			e.mu.Unlock()
		}
	}()
	return e, nil
}

// wait returns when domain name had event ev, or an error after within.
func (e *domEvents) wait(name string, ev golibvirt.DomainEventType, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		if t, ok := e.get(name, ev); ok {
			return t, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("domain %s: no lifecycle event %d within %s", name, ev, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *domEvents) get(name string, ev golibvirt.DomainEventType) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.at[name][ev]
	return t, ok
}

// destroyAll destroys every running domain whose name has prefix: the
// leftovers of an interrupted run (the private libvirtd goes with the run
// anyway; this leaves its state clean).
func (e *domEvents) destroyAll(prefix string) {
	doms, _, err := e.l.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive)
	if err != nil {
		return
	}
	for _, d := range doms {
		if strings.HasPrefix(d.Name, prefix) {
			_ = e.l.DomainDestroyFlags(d, 0)
		}
	}
}

// console watches a serial console file for marker lines and records when
// each first appeared (read every 5 ms; the file may not exist yet).
type console struct {
	path    string
	markers []string
	mu      sync.Mutex
	at      map[string]time.Time
	stop    chan struct{}
	done    chan struct{}
}

func watchConsole(path string, markers ...string) *console {
	c := &console{path: path, markers: markers, at: map[string]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			b, _ := os.ReadFile(c.path)
			now := time.Now()
			c.mu.Lock()
			all := true
			for _, m := range c.markers {
				if _, ok := c.at[m]; !ok {
					if bytes.Contains(b, []byte(m)) {
						c.at[m] = now
					} else {
						all = false
					}
				}
			}
			c.mu.Unlock()
			if all {
				return
			}
			select {
			case <-c.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return c
}

// wait returns when marker has appeared, or an error after within.
func (c *console) wait(marker string, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		t, ok := c.at[marker]
		c.mu.Unlock()
		if ok {
			return t, nil
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(c.path)
			return time.Time{}, fmt.Errorf("no %s on %s within %s:\n%s", marker, c.path, within, b)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *console) get(marker string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[marker]
	return t, ok
}

func (c *console) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// fileTimes is when a file was created (birth) and last written (mtime).
// The NC makes each disk file whole on a temporary name and links it into
// place, so birth is when making it began and mtime when the tool finished
// writing it, as long as nothing wrote to it since (the guest, seconds
// later; libvirt's ownership xattrs change ctime, not mtime).
type fileTimes struct{ born, written time.Time }

func statTimes(path string) (fileTimes, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BTIME|unix.STATX_MTIME, &st); err != nil {
		return fileTimes{}, err
	}
	if st.Mask&unix.STATX_BTIME == 0 {
		return fileTimes{}, fmt.Errorf("%s: the file system keeps no birth time", path)
	}
	return fileTimes{
		born:    time.Unix(st.Btime.Sec, int64(st.Btime.Nsec)),
		written: time.Unix(st.Mtime.Sec, int64(st.Mtime.Nsec)),
	}, nil
}

// instanceFiles are the NC's files of one instance, stat'ed as soon as its
// domain started.
type instanceFiles struct {
	dir, root, ephemeral, swap, console fileTimes
	err                                 error
}

func statInstance(dir string) instanceFiles {
	var f instanceFiles
	for _, p := range []struct {
		name string
		to   *fileTimes
	}{{"", &f.dir}, {"root.qcow2", &f.root}, {"ephemeral.img", &f.ephemeral}, {"swap.img", &f.swap}, {"console.log", &f.console}} {
		t, err := statTimes(filepath.Join(dir, p.name))
		if err != nil && f.err == nil {
			f.err = err
		}
		*p.to = t
	}
	return f
}

// logLine is one line of euca's log (slog's text format: key=value, values
// with spaces quoted).
type logLine struct {
	t   time.Time
	msg string
	kv  map[string]string
}

// readLog parses euca.log; lines it cannot read are skipped.
func readLog(path string) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		kv := logfmt(sc.Text())
		t, err := time.Parse(time.RFC3339Nano, kv["time"])
		if err != nil {
			continue
		}
		out = append(out, logLine{t: t, msg: kv["msg"], kv: kv})
	}
	return out, sc.Err()
}

func logfmt(s string) map[string]string {
	kv := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		k := s[:eq]
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			// A quoted value: up to the next unescaped quote.
			i := 1
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			v = strings.ReplaceAll(s[1:min(i, len(s))], `\"`, `"`)
			s = s[min(i+1, len(s)):]
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			v, s = s[:sp], s[sp:]
		}
		kv[k] = v
	}
	return kv
}

// cpuSample is the host's busy CPU time (/proc/stat is not namespaced) and
// this run's own (every process of the run's pid namespace, with the
// children each has reaped), in seconds. Their difference over a section is
// what the machine's other users took meanwhile: the benchmark says how
// shared the machine was instead of guessing.
type cpuSample struct {
	at          time.Time
	host, owned float64
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	const hz = 100 // USER_HZ
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			if i == 3 || i == 4 || i >= 8 {
				continue // idle, iowait; guest time is in user already
			}
			n, _ := strconv.ParseFloat(v, 64)
			s.host += n / hz
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] { // utime stime cutime cstime
			n, _ := strconv.ParseFloat(v, 64)
			s.owned += n / hz
		}
	}
	return s
}

// otherLoad is the share of the host's CPUs that other users took between
// two samples.
func otherLoad(a, b cpuSample, cpus int) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0
	}
	return max(0, (b.host-a.host)-(b.owned-a.owned)) / (wall * float64(cpus))
}
