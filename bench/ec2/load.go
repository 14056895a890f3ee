package main

import (
	"context"
	"sort"
	"sync"
	"time"
)

// op is one measured operation of worker w (0 ≤ w < concurrency); i counts
// that worker's operations, so names made from (w, i) are unique in a cell.
type op func(ctx context.Context, w, i int) error

// result is one cell: an operation driven by some concurrent clients.
type result struct {
	ops      int             // operations started after the warm-up and finished
	elapsed  time.Duration   // from the end of the warm-up until the last of them finished
	lat      []time.Duration // each one's latency, sorted
	errs     int
	firstErr error
}

// rps is operations per second over the measured window.
func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// pct is the p-th percentile latency (nearest rank), 0 with none.
func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	k := int(float64(len(r.lat))*p/100+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(r.lat) {
		k = len(r.lat) - 1
	}
	return r.lat[k]
}

// drive runs f from conc workers, each in a closed loop (the next request
// when the last answered, as an SDK client does): for warm without
// recording (connections open, caches fill), then for d, recording each
// operation that starts in that window. A worker stops at the first window
// end it sees once it has recorded an operation, so each worker records at
// least one and slow operations run over the window by at most one each.
func drive(ctx context.Context, conc int, warm, d time.Duration, f op) result {
	start := time.Now()
	measureFrom := start.Add(warm)
	measureTo := measureFrom.Add(d)
	type local struct {
		lat      []time.Duration
		errs     int
		firstErr error
		last     time.Time
		recorded bool
	}
	locals := make([]local, conc)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := &locals[w]
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(measureTo) && l.recorded {
					return
				}
				err := f(ctx, w, i)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				l.last, l.recorded = t1, true
				if err != nil {
					l.errs++
					if l.firstErr == nil {
						l.firstErr = err
					}
					continue
				}
				l.lat = append(l.lat, t1.Sub(t0))
			}
		}(w)
	}
	wg.Wait()
	var r result
	end := measureTo
	for _, l := range locals {
		r.lat = append(r.lat, l.lat...)
		r.errs += l.errs
		if r.firstErr == nil {
			r.firstErr = l.firstErr
		}
		if l.last.After(end) {
			end = l.last
		}
	}
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	r.ops = len(r.lat)
	r.elapsed = end.Sub(measureFrom)
	return r
}
