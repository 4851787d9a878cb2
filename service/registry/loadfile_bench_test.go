package registry

import (
	"os"
	"runtime"
	"testing"

	"github.com/spear-next/sms/sqlkv/sqlite"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// BenchmarkViewLoadFile loads the view of the SQLite file at
// SMS_BENCH_LOAD_DB (seeded beforehand, e.g. by smsbench --workload seed;
// the benchmark is skipped without it), as cmd/sms does at start, and
// reports the CPU-seconds and the live heap per node. For a profile of the
// load:
//
//	SMS_BENCH_LOAD_DB=/tmp/1m.db go test -run '^$' -bench ViewLoadFile -benchtime 1x -cpuprofile cpu.prof ./service/registry/
func BenchmarkViewLoadFile(b *testing.B) {
	path := os.Getenv("SMS_BENCH_LOAD_DB")
	if path == "" {
		b.Skip("SMS_BENCH_LOAD_DB is not set")
	}
	var before, after runtime.MemStats
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		cpu := cpuTime()
		b.StartTimer()
		store, err := sqlite.Open(b.Context(), path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		v := NewView(watchstore.New(store))
		if err := v.WaitLoaded(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric((cpuTime() - cpu).Seconds(), "cpu-s")
		runtime.GC()
		runtime.ReadMemStats(&after)
		v.mu.RLock()
		n := v.byUUID.Len()
		v.mu.RUnlock()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(max(n, 1)), "heap-B/node")
		runtime.KeepAlive(v)
		v.Close()
		store.Close()
		b.StartTimer()
	}
}
