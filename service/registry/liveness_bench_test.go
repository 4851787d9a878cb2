package registry

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// sweepSettings are the (workers, batch) pairs the sweep benchmarks
// compare: one Apply per transition from 32 workers (the sweep before
// batching, the baseline), the defaults, and bigger batches.
var sweepSettings = []sweepSetting{
	{32, 1},
	{sweepWorkers, sweepBatch},
	{4, 64},
	{32, 256},
}

type sweepSetting struct{ workers, batch int }

// withSweepSettings runs fn with sweepWorkers and sweepBatch set, to each
// of first and sweepSettings or of SMS_SWEEP_SETTINGS (workers x batch,
// comma separated: "32x1,4x16").
func withSweepSettings(b *testing.B, first []sweepSetting, fn func(b *testing.B)) {
	settings := append(first, sweepSettings...)
	if env := os.Getenv("SMS_SWEEP_SETTINGS"); env != "" {
		settings = nil
		for _, f := range strings.Split(env, ",") {
			var w, n int
			if _, err := fmt.Sscanf(f, "%dx%d", &w, &n); err != nil {
				b.Fatalf("SMS_SWEEP_SETTINGS: %q: %v", f, err)
			}
			settings = append(settings, sweepSetting{w, n})
		}
	}
	for _, s := range settings {
		b.Run(fmt.Sprintf("workers=%d/batch=%d", s.workers, s.batch), func(b *testing.B) {
			defer func(w, n int) { sweepWorkers, sweepBatch = w, n }(sweepWorkers, sweepBatch)
			sweepWorkers, sweepBatch = s.workers, s.batch
			fn(b)
		})
	}
}

// benchStore opens backend as SMS does (memory and SQLite wrapped to
// report their writes).
func benchStore(b *testing.B, backend string) sqlkv.Store {
	store := storetest.Open(b, backend)
	if _, ok := store.(sqlkv.Watchable); !ok {
		store = watchstore.New(store)
	}
	return store
}

// BenchmarkSweepTransitions is one Sweep that finds 10,000 active nodes
// silent and 5,000 resource reports stale (a rack, or a fleet after an
// outage, gone quiet): 15,000 conditional transitions, made with each of
// sweepSettings. transitions/s is the figure to compare, with the first
// setting's in the same run.
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench SweepTransitions -benchtime 2x ./service/registry/
func BenchmarkSweepTransitions(b *testing.B) {
	const nodes = 10000
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			store := benchStore(b, backend)
			withSweepSettings(b, nil, func(b *testing.B) {
				var made int
				var took time.Duration
				for b.Loop() {
					b.StopTimer()
					// Every node active, its heartbeat and every other
					// report written at the epoch: all due.
					fillNodes(b, store, nodes)
					fillResources(b, store, nodes)
					v := NewView(store)
					if err := v.WaitLoaded(b.Context()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					res, err := v.Nodes().Sweep(b.Context(), Liveness{})
					took += time.Since(start)
					b.StopTimer()
					v.Close()
					if err != nil {
						b.Fatal(err)
					}
					if want := (SweepResult{MarkedUnhealthy: nodes, DeletedResources: nodes / 2}); res != want {
						b.Fatalf("Sweep = %+v, want %+v", res, want)
					}
					made += res.MarkedUnhealthy + res.DeletedResources
					b.StartTimer()
				}
				b.ReportMetric(float64(made)/took.Seconds(), "transitions/s")
			})
		})
	}
}

// BenchmarkSweepHeartbeatLatency is heartbeats during a mass sweep: the
// sweep of BenchmarkSweepTransitions (15,000 transitions) while 1,000 live
// nodes heartbeat at a fixed offered rate (hbRate a second, each heartbeat
// on its own goroutine at its scheduled time, so that a stall delays the
// ones scheduled during it instead of issuing fewer), with each of
// sweepSettings and first with workers=0, which is no sweep: heartbeats for
// a second, their latency without a sweep, in the same run. It reports the percentiles of the heartbeats'
// latency from their scheduled time while the sweep runs (hb-p50-ms,
// hb-p99-ms, hb-p99.9-ms, hb-max-ms), how many there were (hbs), and the
// sweep's own rate (transitions/s).
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench SweepHeartbeatLatency -benchtime 2x ./service/registry/
func BenchmarkSweepHeartbeatLatency(b *testing.B) {
	const silent, live, hbRate = 10000, 1000, 2000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			store := benchStore(b, backend)
			withSweepSettings(b, []sweepSetting{{0, 0}}, func(b *testing.B) {
				var (
					lat   []time.Duration
					made  int
					took  time.Duration
					hbErr error
				)
				for b.Loop() {
					b.StopTimer()
					fillNodes(b, store, silent+live)
					fillResources(b, store, silent)
					v := NewView(store)
					if err := v.WaitLoaded(b.Context()); err != nil {
						b.Fatal(err)
					}
					r := v.Nodes()
					for i := silent; i < silent+live; i++ {
						if _, err := r.Heartbeat(b.Context(), benchUUID(i), nil); err != nil {
							b.Fatal(err)
						}
					}
					ctx, stop := context.WithCancel(b.Context())
					var (
						mu    sync.Mutex
						wg    sync.WaitGroup
						pacer sync.WaitGroup
					)
					pacer.Go(func() {
						t0 := time.Now()
						for i := 0; ; i++ {
							at := t0.Add(time.Duration(i) * time.Second / hbRate)
							select {
							case <-ctx.Done():
								return
							case <-time.After(time.Until(at)):
							}
							wg.Go(func() {
								// Not canceled with the window: a
								// heartbeat issued in it runs to its end.
								_, err := r.Heartbeat(b.Context(), benchUUID(silent+i%live), nil)
								d := time.Since(at)
								mu.Lock()
								defer mu.Unlock()
								if err != nil {
									hbErr = err
								}
								lat = append(lat, d)
							})
						}
					})
					b.StartTimer()
					start := time.Now()
					var res SweepResult
					var err error
					if sweepWorkers == 0 {
						time.Sleep(time.Second)
					} else {
						res, err = r.Sweep(b.Context(), Liveness{})
					}
					took += time.Since(start)
					b.StopTimer()
					stop()
					pacer.Wait()
					wg.Wait()
					v.Close()
					if err != nil {
						b.Fatal(err)
					}
					if hbErr != nil {
						b.Fatal(hbErr)
					}
					if want := (SweepResult{MarkedUnhealthy: silent, DeletedResources: silent / 2}); sweepWorkers > 0 && res != want {
						b.Fatalf("Sweep = %+v, want %+v", res, want)
					}
					made += res.MarkedUnhealthy + res.DeletedResources
					b.StartTimer()
				}
				slices.Sort(lat)
				q := func(p float64) float64 {
					if len(lat) == 0 {
						return 0
					}
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
				}
				b.ReportMetric(float64(made)/took.Seconds(), "transitions/s")
				b.ReportMetric(float64(len(lat)), "hbs")
				b.ReportMetric(q(0.5), "hb-p50-ms")
				b.ReportMetric(q(0.99), "hb-p99-ms")
				b.ReportMetric(q(0.999), "hb-p99.9-ms")
				b.ReportMetric(q(1), "hb-max-ms")
			})
		})
	}
}
