package registry

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/btree"
)

// BenchmarkOrderBuild is what the first page in a value order costs: the
// build of that order's trees (View.ensureOrder) over a loaded view of n
// nodes (with heartbeats, half with reports), in CPU seconds, and the heap
// the trees hold per node:
//
//	go test -run '^$' -bench OrderBuild -benchtime 1x ./service/registry/
func BenchmarkOrderBuild(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("memory/nodes=%d", n), func(b *testing.B) {
			v, _ := openFilled(b, "memory", n)
			var before, after runtime.MemStats
			for b.Loop() {
				b.StopTimer()
				v.mu.Lock()
				v.sorted.byValue[OrderCPU-OrderLastHeartbeat] = [rankCount]*btree.BTreeG[valueItem]{}
				v.mu.Unlock()
				runtime.GC()
				runtime.ReadMemStats(&before)
				cpu := cpuTime()
				b.StartTimer()
				v.ensureOrder(OrderCPU)
				b.StopTimer()
				b.ReportMetric((cpuTime() - cpu).Seconds(), "cpu-s")
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/node")
				b.StartTimer()
			}
		})
	}
}
