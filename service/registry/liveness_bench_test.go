package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// BenchmarkSweepTransitions is one Sweep that finds 10,000 active nodes
// silent and 5,000 resource reports stale (a rack, or a fleet after an
// outage, gone quiet): 15,000 conditional Applies. workers=1 is the
// sequential sweep, the baseline; workers=32 the pool sweeps use.
// transitions/s is the figure to compare.
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench SweepTransitions -benchtime 2x ./service/registry/
func BenchmarkSweepTransitions(b *testing.B) {
	const nodes = 10000
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			store := storetest.Open(b, backend)
			if _, ok := store.(sqlkv.Watchable); !ok {
				store = watchstore.New(store)
			}
			for _, workers := range []int{1, sweepWorkers} {
				b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
					defer func(old int) { sweepWorkers = old }(sweepWorkers)
					sweepWorkers = workers
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
			}
		})
	}
}
