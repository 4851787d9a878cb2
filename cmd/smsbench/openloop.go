package main

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to a minute, to three
// significant figures.
const (
	histMin     = 1
	histMax     = int64(time.Minute / time.Microsecond)
	histSigFigs = 3
	// sliceLen is the resolution of openLoop's per-slice maximum latency,
	// which tells what the calls due during a short event (a sweep) saw.
	sliceLen = 100 * time.Millisecond
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigFigs) }

func recordHist(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(min(max(d.Microseconds(), histMin), histMax)) // clamped: never out of range
}

// openLoop is a constant-rate (open-loop) schedule: call i is due at
// start + i/rate, for duration, whatever the earlier calls are doing. Up
// to workers calls are in flight; when all are busy the next call is sent
// late, and its latency still counts from when it was due, so a stall of
// the server shows in the latencies of every call it delayed (no
// coordinated omission).
type openLoop struct {
	rate     float64 // calls per second
	duration time.Duration
	workers  int
	window   time.Duration // the results are split into windows of due time
	timeout  time.Duration // of each call
	// maxLag bounds how late a call may be sent: one the workers reach
	// later is not sent but counted as failed ("unsent"), with its lag as
	// its latency (a lower bound). It keeps a client that cannot offer the
	// rate from running on long after the schedule's end.
	maxLag time.Duration
}

// loopWindow is what the calls due in one window saw.
type loopWindow struct {
	mu sync.Mutex
	// lat is from due time to answer, of the successful calls, and to the
	// moment it was dropped, of the unsent ones.
	lat  *hdrhistogram.Histogram
	lag  *hdrhistogram.Histogram // from due time to send (or drop), every call
	errs map[string]int          // by code, "unsent" for dropped calls
	// taken and done count calls of the window handed to a worker and
	// finished; answered, the successful ones.
	taken, done, answered int64
}

func (w *loopWindow) ok() int64 { return w.answered }

func (w *loopWindow) failed() int64 {
	var n int64
	for _, c := range w.errs {
		n += int64(c)
	}
	return n
}

// loopResult is one run of an openLoop.
type loopResult struct {
	start   time.Time // when call 0 was due
	end     time.Time // when the last call finished
	calls   int64     // calls due: rate × duration
	windows []*loopWindow
	// sliceMax is the highest latency, in µs, of the calls due in each
	// sliceLen of the run.
	sliceMax []atomic.Int64
}

// total merges the windows.
func (r *loopResult) total() *loopWindow {
	t := &loopWindow{lat: newHist(), lag: newHist(), errs: map[string]int{}}
	for _, w := range r.windows {
		t.lat.Merge(w.lat)
		t.lag.Merge(w.lag)
		for k, v := range w.errs {
			t.errs[k] += v
		}
		t.taken += w.taken
		t.done += w.done
		t.answered += w.answered
	}
	return t
}

// windowLen is the length of window i (the last may be short).
func (r *loopResult) windowLen(o openLoop, i int) time.Duration {
	return min(o.window, o.duration-time.Duration(i)*o.window)
}

// maxDuring returns the highest latency of the calls due between from and
// to, at sliceLen resolution, and whether any slice of the run overlaps
// them.
func (r *loopResult) maxDuring(from, to time.Time) (time.Duration, bool) {
	lo := int(from.Sub(r.start) / sliceLen)
	hi := int(to.Sub(r.start) / sliceLen)
	lo, hi = max(lo, 0), min(hi, len(r.sliceMax)-1)
	if lo > hi {
		return 0, false
	}
	var m int64
	for i := lo; i <= hi; i++ {
		m = max(m, r.sliceMax[i].Load())
	}
	return time.Duration(m) * time.Microsecond, true
}

// run calls call(ctx, i) for every call i of the schedule and returns what
// they saw. A call cut short because ctx ended is not counted. progress,
// if not nil, is called from another goroutine with the result so far and
// the index of each window once its time is over and every call due in it
// has finished, in order (if ctx ends the run early: for the windows that
// had calls).
func (o openLoop) run(ctx context.Context, call func(ctx context.Context, i int64) error, progress func(r *loopResult, i int)) *loopResult {
	calls := int64(o.rate * o.duration.Seconds())
	period := float64(time.Second) / o.rate
	due := func(i int64) time.Duration { return time.Duration(float64(i) * period) }
	nw := int(math.Ceil(float64(o.duration) / float64(o.window)))
	r := &loopResult{
		calls:    calls,
		windows:  make([]*loopWindow, nw),
		sliceMax: make([]atomic.Int64, int(o.duration/sliceLen)+1),
	}
	for i := range r.windows {
		r.windows[i] = &loopWindow{lat: newHist(), lag: newHist(), errs: map[string]int{}}
	}
	// A little lead, so that call 0 is not late because the workers are
	// still starting.
	r.start = time.Now().Add(20 * time.Millisecond)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= calls {
					return
				}
				at := r.start.Add(due(i))
				win := r.windows[min(int(due(i)/o.window), nw-1)]
				win.mu.Lock()
				win.taken++
				win.mu.Unlock()
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				}
				sent := time.Now()
				var err error
				unsent := o.maxLag > 0 && sent.Sub(at) > o.maxLag
				if !unsent {
					cctx, cancel := context.WithTimeout(ctx, o.timeout)
					err = call(cctx, i)
					cancel()
				}
				lat := time.Since(at)
				if err != nil && ctx.Err() != nil {
					err = nil // the run's end, not the server
					lat = -1
				}
				win.mu.Lock()
				win.done++
				recordHist(win.lag, sent.Sub(at))
				switch {
				case unsent:
					win.errs["unsent"]++
					recordHist(win.lat, lat)
				case err != nil:
					code := errCode(err).String()
					if errors.Is(err, context.DeadlineExceeded) {
						code = "timeout"
					}
					win.errs[code]++
				case lat >= 0:
					win.answered++
					recordHist(win.lat, lat)
				}
				win.mu.Unlock()
				if lat >= 0 {
					s := &r.sliceMax[min(int(due(i)/sliceLen), len(r.sliceMax)-1)]
					for us := lat.Microseconds(); ; {
						old := s.Load()
						if old >= us || s.CompareAndSwap(old, us) {
							break
						}
					}
				}
			}
		})
	}
	finished := make(chan struct{})
	var reported sync.WaitGroup
	if progress != nil {
		reported.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for i := 0; i < nw; {
				end := due(0) + time.Duration(i+1)*o.window
				// Every call due in window i was handed out (the next one is
				// due after it) and has finished.
				complete := func() bool {
					n := next.Load()
					if n < calls && due(n) < end {
						return false
					}
					w := r.windows[i]
					w.mu.Lock()
					defer w.mu.Unlock()
					return w.taken == w.done
				}
				if time.Since(r.start) >= end && complete() {
					progress(r, i)
					i++
					continue
				}
				select {
				case <-finished:
					// The rest (none, unless ctx ended the run early).
					for ; i < nw && r.windows[i].taken > 0; i++ {
						progress(r, i)
					}
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	r.end = time.Now()
	close(finished)
	reported.Wait()
	return r
}
