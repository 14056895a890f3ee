// Command ec2 measures euca's EC2 Query API against moto's server, driven
// in the same run by the same client (a benchmark, not a test: nothing here
// asserts on time).
//
// For each call and each concurrency (1, 8 and 32 clients by default) it
// reports requests per second and the p50 and p99 latencies, for euca and
// for moto, and the ratios euca/moto. The calls:
//
//   - DescribeKeyPairs, DescribeSecurityGroups and DescribeInstances of an
//     account holding 10 key pairs, 10 security groups (one rule each) and
//     10 running instances;
//   - CreateKeyPair then DeleteKeyPair of a fresh name (one operation is the
//     pair: both servers generate an RSA key in CreateKeyPair);
//   - RunInstances of one m1.small then TerminateInstances of it (the pair);
//   - with 10,000 instances in the store (-instances), launched by
//     RunInstances in batches (-batch): DescribeInstances of them all, as
//     the AWS CLI and Terraform ask (MaxResults 1000, following NextToken:
//     one operation is the whole listing; both servers cut pages from
//     reservations, so 20 reservations of 500 come in one response), and
//     DescribeInstances of one by its id.
//
// euca is `euca --roles=all --driver sim`: the node controller runs over
// the simulated hypervisor (no guests), whose host MAX_CORES, MAX_MEM and
// MAX_DISK size for the instances. Run as root, euca runs as nobody: its
// cluster controller then sets up no network for the simulated instances,
// and cannot touch another cloud's bridge on a shared host. moto is
// `moto_server` from the PATH, which records instances and has no capacity.
// Each phase (the small account, then the 10,000 instances) starts both
// servers afresh, so neither lists what an earlier cell left behind.
//
// The client is this program: one Go process, one HTTP/1.1 keep-alive
// connection per concurrent client, every request signed with SigV4 on its
// own (sign.go). Go rather than boto3 in several processes: on 2 cores a
// Python client would spend the CPU the servers need, and its own ceiling
// would be below moto's. -ceiling measures the client's ceiling against a
// trivial server in this process.
//
// bench/ec2/run.sh (make bench-ec2) builds euca and this program and runs
// it in a private pid namespace.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/euca-cloud/euca/bench/internal/cloud"
)

// config is what a run measures; flags set it, the smoke test makes a tiny one.
type config struct {
	eucaBin   string
	work      string
	d, warm   time.Duration
	conc      []int
	small     int // instances in the small account
	instances int // instances in the large store; 0 skips that phase
	batch     int
	ceiling   bool
	calls     *regexp.Regexp // the calls to measure; nil: all
	out       *os.File
}

func main() {
	var c config
	var conc, calls string
	flag.StringVar(&c.eucaBin, "euca", "bin/euca", "the euca binary (make build)")
	flag.StringVar(&c.work, "work", "", "work directory (default: a new one under $TMPDIR, removed after)")
	flag.DurationVar(&c.d, "d", 10*time.Second, "measured time per cell (one call, one concurrency, one server)")
	flag.DurationVar(&c.warm, "warm", time.Second, "unmeasured warm-up before each cell")
	flag.StringVar(&conc, "c", "1,8,32", "concurrent clients, comma-separated")
	flag.IntVar(&c.small, "small", 10, "key pairs, security groups and instances of the small account")
	flag.IntVar(&c.instances, "instances", 10000, "instances in the large store (0: skip that phase)")
	flag.IntVar(&c.batch, "batch", 500, "instances per RunInstances when filling the large store")
	flag.BoolVar(&c.ceiling, "ceiling", true, "measure the client's own ceiling against a trivial server")
	flag.StringVar(&calls, "calls", "", "measure only the calls whose row matches this regular expression")
	flag.Parse()
	if calls != "" {
		re, err := regexp.Compile(calls)
		if err != nil {
			log.Fatalf("-calls: %v", err)
		}
		c.calls = re
	}
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("-c: %q is not a positive number", f)
		}
		c.conc = append(c.conc, n)
	}
	c.out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, c); err != nil {
		log.Fatal(err)
	}
}

// run measures everything c asks for and prints the report to c.out.
func run(ctx context.Context, c config) (*report, error) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		return nil, errors.New("moto_server is not on the PATH (pip's moto[server])")
	}
	bin, err := filepath.Abs(c.eucaBin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("euca binary: %w (make build)", err)
	}
	c.eucaBin = bin
	if c.work == "" {
		w, err := os.MkdirTemp("", "euca-bench-ec2-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(w)
		c.work = w
	}
	// euca runs as nobody under root: it must reach its directory.
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.work, 0o755); err != nil {
		return nil, err
	}
	maxConc := 1
	for _, n := range c.conc {
		maxConc = max(maxConc, n)
	}
	rep := &report{cfg: c, cpus: runtime.NumCPU()}
	progress("bench-ec2: %d CPUs; %s per cell after %s warm-up; clients %v", rep.cpus, c.d, c.warm, c.conc)
	if c.ceiling {
		r, err := clientCeiling(ctx, c, maxConc)
		if err != nil {
			return nil, err
		}
		rep.ceiling = &r
	}
	if err := smallPhase(ctx, c, maxConc, rep); err != nil {
		return nil, err
	}
	if c.instances > 0 {
		if err := largePhase(ctx, c, maxConc, rep); err != nil {
			return nil, err
		}
	}
	rep.print(c.out)
	return rep, nil
}

// pair is euca and moto, started afresh for a phase.
type pair struct {
	e          *euca
	m          *cloud.Process
	eucaEP     *endpoint
	motoEP     *endpoint
	eucaImage  string
	motoImage  string
	eucaSetup  time.Duration
	motoSetup  time.Duration
	eucaLaunch time.Duration
	motoLaunch time.Duration
}

func startPair(ctx context.Context, c config, phase string, instances, conns int) (*pair, error) {
	p := &pair{}
	var err error
	p.e, p.eucaEP, err = startEuca(c.eucaBin, filepath.Join(c.work, phase, "euca"), instances, conns)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(c.work, phase), 0o755); err != nil {
		p.stop()
		return nil, err
	}
	p.m, p.motoEP, err = startMoto(filepath.Join(c.work, phase), conns)
	if err != nil {
		p.stop()
		return nil, err
	}
	if p.eucaImage, err = eucaImage(ctx, p.e, p.eucaEP); err != nil {
		p.stop()
		return nil, err
	}
	if p.motoImage, err = motoImage(ctx, p.motoEP); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *pair) stop() {
	if p.e != nil {
		p.e.Stop()
	}
	if p.m != nil {
		p.m.Stop()
	}
}

// smallPhase: the calls of an account holding c.small of everything.
func smallPhase(ctx context.Context, c config, conns int, rep *report) error {
	progress("small account: starting euca and moto")
	p, err := startPair(ctx, c, "small", c.small, conns)
	if err != nil {
		return err
	}
	defer p.stop()
	for _, s := range []struct {
		ep    *endpoint
		image string
	}{{p.eucaEP, p.eucaImage}, {p.motoEP, p.motoImage}} {
		if err := fillAccount(ctx, s.ep, s.image, c.small); err != nil {
			return err
		}
	}
	cells := []struct {
		name string
		ops  func(*endpoint, string) op
	}{
		{"DescribeKeyPairs", func(ep *endpoint, _ string) op { return simple(ep, "DescribeKeyPairs", nil) }},
		{"DescribeSecurityGroups", func(ep *endpoint, _ string) op { return simple(ep, "DescribeSecurityGroups", nil) }},
		{"DescribeInstances", func(ep *endpoint, _ string) op { return simple(ep, "DescribeInstances", nil) }},
		{"CreateKeyPair+DeleteKeyPair", func(ep *endpoint, _ string) op { return keyPairCycle(ep) }},
		{"RunInstances+TerminateInstances", func(ep *endpoint, image string) op { return instanceCycle(ep, image) }},
	}
	for _, cell := range cells {
		label := cell.name
		if strings.HasPrefix(label, "Describe") {
			label = fmt.Sprintf("%s (%d in the account)", label, c.small)
		}
		if err := measure(ctx, c, rep, label, cell.ops(p.eucaEP, p.eucaImage), cell.ops(p.motoEP, p.motoImage), false); err != nil {
			return err
		}
	}
	return nil
}

// largePhase: DescribeInstances with c.instances in the store.
func largePhase(ctx context.Context, c config, conns int, rep *report) error {
	progress("large store: starting euca and moto")
	p, err := startPair(ctx, c, "large", c.instances, conns)
	if err != nil {
		return err
	}
	defer p.stop()
	var one [2]string
	for i, s := range []struct {
		ep    *endpoint
		image string
	}{{p.eucaEP, p.eucaImage}, {p.motoEP, p.motoImage}} {
		t0 := time.Now()
		ids, err := launchMany(ctx, s.ep, s.image, c.instances, c.batch)
		if err != nil {
			return err
		}
		took := time.Since(t0)
		progress("%s: %d instances launched in %s (RunInstances of %d, then until none is pending)", s.ep.name, len(ids), took.Round(time.Millisecond), c.batch)
		rep.launches = append(rep.launches, launchFigure{server: s.ep.name, n: len(ids), took: took})
		one[i] = ids[len(ids)/2]
	}
	label := fmt.Sprintf("DescribeInstances, one by id, of %d", c.instances)
	if err := measure(ctx, c, rep, label, describeOne(p.eucaEP, one[0]), describeOne(p.motoEP, one[1]), false); err != nil {
		return err
	}
	label = fmt.Sprintf("DescribeInstances, all %d (MaxResults 1000, following NextToken)", c.instances)
	return measure(ctx, c, rep, label, listAll(p.eucaEP, c.instances), listAll(p.motoEP, c.instances), true)
}

// measure runs one call at each concurrency, euca then moto back to back
// (so that both see the same background load), and records the rows.
// isSlow marks a call whose one operation takes seconds: no warm-up (it
// would cost a whole round of operations), and moto at one client only,
// once (one listing of 10,000 instances takes moto minutes).
func measure(ctx context.Context, c config, rep *report, call string, eucaOp, motoOp op, isSlow bool) error {
	if c.calls != nil && !c.calls.MatchString(call) {
		return nil
	}
	warm := c.warm
	if isSlow {
		warm = 0
	}
	for k, n := range c.conc {
		x := row{call: call, conc: n, hasMoto: !isSlow || k == 0}
		x.euca = drive(ctx, n, warm, c.d, eucaOp)
		results := []struct {
			name string
			res  result
		}{{"euca", x.euca}}
		if x.hasMoto {
			d := c.d
			if isSlow {
				d = 0
			}
			x.moto = drive(ctx, n, warm, d, motoOp)
			results = append(results, struct {
				name string
				res  result
			}{"moto", x.moto})
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, r := range results {
			if r.res.firstErr != nil {
				progress("%s %s ×%d: %d errors; the first: %v", r.name, call, n, r.res.errs, r.res.firstErr)
			}
			if r.res.ops == 0 {
				return fmt.Errorf("%s %s ×%d: no operation succeeded", r.name, call, n)
			}
		}
		m := "not measured"
		if x.hasMoto {
			m = fmt.Sprintf("%8.1f/s p50 %8s p99 %8s", x.moto.rps(), ms(x.moto.pct(50)), ms(x.moto.pct(99)))
		}
		progress("%-52s ×%-2d euca %8.1f/s p50 %8s p99 %8s | moto %s", call, n,
			x.euca.rps(), ms(x.euca.pct(50)), ms(x.euca.pct(99)), m)
		rep.rows = append(rep.rows, x)
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
