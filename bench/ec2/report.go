package main

import (
	"fmt"
	"io"
	"time"
)

// row is one call at one concurrency, on both servers.
type row struct {
	call       string
	conc       int
	euca, moto result
	hasMoto    bool // false: moto not measured at this concurrency
}

type launchFigure struct {
	server string
	n      int
	took   time.Duration
}

type report struct {
	cfg      config
	cpus     int
	ceiling  *result
	launches []launchFigure
	rows     []row
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// rate formats operations per second.
func rate(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	if v >= 1 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	if q := a / b; q >= 10 {
		return fmt.Sprintf("%.0f", q)
	}
	return fmt.Sprintf("%.2f", a/b)
}

// print writes the report as Markdown, the README's form.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nEC2 API: euca (--roles=all --driver sim) against moto_server, the same Go client; %d CPUs; %s per cell after %s warm-up\n\n",
		r.cpus, r.cfg.d, r.cfg.warm)
	fmt.Fprintln(w, "| call | clients | euca req/s | moto req/s | euca/moto | euca p50 ms | moto p50 ms | euca/moto | euca p99 ms | moto p99 ms | euca/moto |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, x := range r.rows {
		if !x.hasMoto {
			fmt.Fprintf(w, "| %s | %d | %s | | | %s | | | %s | | |\n", x.call, x.conc, rate(x.euca.rps()), ms(x.euca.pct(50)), ms(x.euca.pct(99)))
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", x.call, x.conc,
			rate(x.euca.rps()), rate(x.moto.rps()), ratio(x.euca.rps(), x.moto.rps()),
			ms(x.euca.pct(50)), ms(x.moto.pct(50)), ratio(float64(x.euca.pct(50)), float64(x.moto.pct(50))),
			ms(x.euca.pct(99)), ms(x.moto.pct(99)), ratio(float64(x.euca.pct(99)), float64(x.moto.pct(99))))
	}
	fmt.Fprintln(w)
	for _, l := range r.launches {
		fmt.Fprintf(w, "%s: %d instances launched in %s (RunInstances of %d each, then until none is pending)\n",
			l.server, l.n, l.took.Round(100*time.Millisecond), r.cfg.batch)
	}
	if c := r.ceiling; c != nil {
		fmt.Fprintf(w, "client ceiling: DescribeKeyPairs against a trivial server in the client's process: %.0f req/s, p50 %s ms, p99 %s ms\n",
			c.rps(), ms(c.pct(50)), ms(c.pct(99)))
	}
	for _, x := range r.rows {
		if x.euca.errs+x.moto.errs > 0 {
			fmt.Fprintf(w, "errors: %s ×%d: euca %d, moto %d\n", x.call, x.conc, x.euca.errs, x.moto.errs)
		}
	}
}
