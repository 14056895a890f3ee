// Package diskcmd drives the test guest's disk commands from a test: the
// guest (scripts/guest-image.sh) reads "EUCA-DISKCMD URL" in its user data
// and fetches URL every second; each numbered command there runs once, on
// the virtio disk of the serial it names (an EBS volume, found by serial
// since the guest's kernel names hot-plugged disks in probe order), and its
// outcome is printed on the guest's console as an "EUCA-DISK seq=N ..."
// line, which Find reads back.
//
// A write fills the first MiB megabytes with "SEED\n" repeated (what `yes
// SEED` prints), so the test knows what a later read must hash to (Sum)
// without moving the data.
package diskcmd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server serves the commands to the guests that poll it.
type Server struct {
	ln  net.Listener
	srv *http.Server

	// A Server made by Guest shares its parent's listener, lock and
	// command numbers, and keeps a list of its own at path.
	parent *Server
	path   string

	mu     sync.Mutex // the root's guards every list and seq
	seq    int
	cmds   []string
	guests map[string]*Server
}

func (s *Server) root() *Server {
	if s.parent != nil {
		return s.parent
	}
	return s
}

// Guest is a list of commands of its own (at URL()/NAME) for the guest
// called name, so that commands meant for one guest never run on another
// that is given the same volume later; command numbers stay unique across
// the lists. Asking twice for a name gives the same list.
func (s *Server) Guest(name string) *Server {
	if !tokenRE.MatchString(name) {
		panic(fmt.Sprintf("diskcmd: guest %q: want 1 to 40 letters, digits, '_' or '-'", name))
	}
	r := s.root()
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.guests[name]; ok {
		return g
	}
	g := &Server{ln: r.ln, srv: r.srv, parent: r, path: "/disk/" + name}
	if r.guests == nil {
		r.guests = map[string]*Server{}
	}
	r.guests[name] = g
	return g
}

// Serve listens on addr ("10.1.0.1:0": an address the guests reach).
func Serve(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("diskcmd: %w", err)
	}
	s := &Server{ln: ln, path: "/disk"}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is what the guest's user data names: "EUCA-DISKCMD " + URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + s.path }

// UserData is the user-data line that makes a guest poll s.
func (s *Server) UserData() string { return "EUCA-DISKCMD " + s.URL() }

// Close stops serving (every guest's list).
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	list, ok := s, r.URL.Path == s.path
	if name, isGuest := strings.CutPrefix(r.URL.Path, "/disk/"); isGuest {
		list, ok = s.guests[name]
	}
	var body string
	if ok {
		body = strings.Join(list.cmds, "")
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, body)
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`)

func (s *Server) add(line string) int {
	r := s.root()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	s.cmds = append(s.cmds, strconv.Itoa(r.seq)+" "+line+"\n")
	return r.seq
}

// Write asks for mib MiB of seed's pattern on the disk of serial and
// returns the command's number. Seed and serial are plain tokens.
func (s *Server) Write(serial, seed string, mib int) int {
	if !tokenRE.MatchString(serial) || !tokenRE.MatchString(seed) || mib < 1 {
		panic(fmt.Sprintf("diskcmd: write %q %q %d: want tokens and a positive size", serial, seed, mib))
	}
	return s.add(fmt.Sprintf("write %s %s %d", serial, seed, mib))
}

// Read asks for the sha256 of the first mib MiB of the disk of serial.
func (s *Server) Read(serial string, mib int) int {
	if !tokenRE.MatchString(serial) || mib < 1 {
		panic(fmt.Sprintf("diskcmd: read %q %d: want a token and a positive size", serial, mib))
	}
	return s.add(fmt.Sprintf("read %s %d", serial, mib))
}

// Timed I/O patterns the guest times (bench/ebs; see scripts/guest-image.sh).
const (
	SeqWrite  = "seqwrite"  // mib MiB in 1 MiB blocks, O_DIRECT, fsynced
	SeqRead   = "seqread"   // mib MiB in 1 MiB blocks, O_DIRECT
	RandWrite = "randwrite" // n 4 KiB blocks at random offsets, a dd each, fsynced
	RandRead  = "randread"  // n 4 KiB blocks at random offsets, a dd each
	RandNull  = "randnull"  // the same loop from /dev/zero to /dev/null (serial NoDisk)
)

// RootFS and NoDisk are the serials of Time's other targets: a file on the
// guest's root file system, and none (RandNull).
const (
	RootFS = "rootfs"
	NoDisk = "none"
)

// Time asks for one timed I/O pattern (op, one of SeqWrite...RandNull) over
// the first mib MiB of the disk of serial, n blocks for the random ones;
// the Result's Millis is how long it took in the guest.
func (s *Server) Time(op, serial string, mib, n int) int {
	switch op {
	case SeqWrite, SeqRead, RandWrite, RandRead, RandNull:
	default:
		panic(fmt.Sprintf("diskcmd: unknown timed op %q", op))
	}
	if !tokenRE.MatchString(serial) || mib < 1 || n < 0 {
		panic(fmt.Sprintf("diskcmd: %s %q %d %d: want a token and positive sizes", op, serial, mib, n))
	}
	return s.add(fmt.Sprintf("%s %s %d %d", op, serial, mib, n))
}

// Sum is the sha256 (hex) of mib MiB of seed's pattern: what a read of a
// disk written with it finds.
func Sum(seed string, mib int) string {
	h := sha256.New()
	line := []byte(seed + "\n")
	total := int64(mib) << 20
	buf := make([]byte, 0, 1<<16+len(line))
	for total > 0 {
		buf = buf[:0]
		for len(buf) < 1<<16 {
			buf = append(buf, line...)
		}
		// Each chunk is whole lines, so the pattern carries on across
		// chunks.
		n := int64(len(buf))
		if n > total {
			n = total
		}
		h.Write(buf[:n])
		total -= n
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Result is one "EUCA-DISK" line.
type Result struct {
	Seq    int
	Op     string // write, read
	Serial string
	Dev    string // vdX, as the guest named the disk
	SHA256 string // of the first MiB megabytes, read from the disk
	Millis int64  // how long a timed op took in the guest (10 ms steps)
	Error  string // why the command failed ("" when it did not)
}

var lineRE = regexp.MustCompile(`(?m)^EUCA-DISK seq=(\d+) (.*?)\r?$`)

// Find returns the outcome of command seq on a guest's console.
func Find(console []byte, seq int) (Result, bool) {
	for _, m := range lineRE.FindAllSubmatch(console, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		if n != seq {
			continue
		}
		r := Result{Seq: n}
		rest := string(m[2])
		if e, ok := strings.CutPrefix(rest, "error="); ok {
			r.Error = e
			return r, true
		}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "op":
				r.Op = v
			case "serial":
				r.Serial = v
			case "dev":
				r.Dev = v
			case "sha256":
				r.SHA256 = v
			case "ms":
				r.Millis, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return r, true
	}
	return Result{}, false
}

// Wait polls console (a guest's console output) until command seq's
// outcome shows, for at most bound; a command the guest failed is an
// error carrying its reason.
func Wait(ctx context.Context, console func(context.Context) ([]byte, error), seq int, bound time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var last []byte
	for {
		con, err := console(ctx)
		if err == nil {
			last = con
			if r, ok := Find(con, seq); ok {
				if r.Error != "" {
					return r, fmt.Errorf("disk command %d: %s", seq, r.Error)
				}
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return Result{}, errors.Join(fmt.Errorf("disk command %d: no outcome on the console after %v; console ends:\n%s", seq, bound, tail(last, 2000)), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
