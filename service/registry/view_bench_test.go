package registry

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// The view's benchmarks, each with its baseline in the same run:
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench 'View|Fence' -benchtime 1s ./service/registry/
//
// Large fleets live in the memory store (filling SQLite with 1,000,000
// nodes takes minutes); what is measured reads the view, which is the same
// whatever the backend, except the fence.

// openFilled returns a view of a store holding n nodes with heartbeats and,
// every other node, a resource report, loaded.
func openFilled(b *testing.B, backend string, n int) (*View, sqlkv.Store) {
	b.Helper()
	var store sqlkv.Store
	if backend == "memory" {
		store = watchstore.New(memory.New())
	} else {
		store = storetest.Open(b, backend)
		if _, ok := store.(sqlkv.Watchable); !ok {
			store = watchstore.New(store)
		}
	}
	fillNodes(b, store, n)
	fillResources(b, store, n)
	v := NewView(store)
	b.Cleanup(v.Close)
	if err := v.WaitLoaded(b.Context()); err != nil {
		b.Fatal(err)
	}
	return v, store
}

// fillResources writes a resource report for every other of n nodes.
func fillResources(b *testing.B, store sqlkv.Store, n int) {
	b.Helper()
	const batch = 2000
	for lo := 0; lo < n; lo += 2 * batch {
		var entries []sqlkv.Entry
		for i := lo; i < min(n, lo+2*batch); i += 2 {
			entries = append(entries, sqlkv.Entry{Key: resourceKey(benchUUID(i)), Value: encode(resourceRecord{
				CPU: float64(i % 100), Mem: 50, MemTotal: 1 << 30, MemUsed: 1 << 29, Load1: 1, UpdatedAt: 1,
			})})
		}
		if err := sqlkv.BatchPut(b.Context(), store, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkViewGetNode is GetNode from the view (fence included) against
// the store path it replaced (one GetMany of the node and heartbeat
// records, decoded), 16 goroutines, 1,000 nodes; and, on Postgres, the
// view without the fence, which is what the fence costs.
func BenchmarkViewGetNode(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			v, store := openFilled(b, backend, 1000)
			r := v.Nodes()
			b.Run("view", func(b *testing.B) {
				parallelReads(b, func(ctx context.Context, id string) error { _, err := r.Get(ctx, id); return err })
			})
			b.Run("view-unfenced", func(b *testing.B) {
				parallelReads(b, func(ctx context.Context, id string) error {
					if e := v.get(id); e == nil {
						return ErrNotFound
					} else {
						_ = e.toNode()
					}
					return nil
				})
			})
			b.Run("store-baseline", func(b *testing.B) {
				parallelReads(b, func(ctx context.Context, id string) error { _, err := storeGet(ctx, store, id); return err })
			})
		})
	}
}

// parallelReads runs get from 16 goroutines over the first 1,000 bench
// uuids until b is done.
func parallelReads(b *testing.B, get func(ctx context.Context, id string) error) {
	b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := get(b.Context(), benchUUID(i%1000)); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

// storeGet is NodeRegistry.Get as it was before the view: the baseline.
func storeGet(ctx context.Context, store sqlkv.Store, id string) (Node, error) {
	entries, err := sqlkv.GetMany(ctx, store, nodeKey(id), heartbeatKey(id))
	if err != nil {
		return Node{}, err
	}
	var nr nodeRecord
	var hbp *heartbeatRecord
	found := false
	for _, e := range entries {
		if string(e.Key) == nodePrefix+id {
			if nr, err = decode[nodeRecord](e.Key, e.Value); err != nil {
				return Node{}, err
			}
			found = true
			continue
		}
		hb, err := decode[heartbeatRecord](e.Key, e.Value)
		if err != nil {
			return Node{}, err
		}
		hbp = &hb
	}
	if !found {
		return Node{}, ErrNotFound
	}
	return assembleNode(id, nr, hbp), nil
}

// BenchmarkFence is one read fence alone, 16 goroutines: on SQLite a
// counter read, on Postgres a NOTIFY round trip shared by the reads that
// wait together.
func BenchmarkFence(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			v, _ := openFilled(b, backend, 10)
			b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := v.sync(b.Context()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkViewLoad loads a view of n nodes (with heartbeats, half with
// reports) and reports the heap it holds per node.
func BenchmarkViewLoad(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("memory/nodes=%d", n), func(b *testing.B) {
			store := watchstore.New(memory.New())
			fillNodes(b, store, n)
			fillResources(b, store, n)
			benchViewLoad(b, func() (sqlkv.Store, func()) { return store, func() {} })
		})
	}
}

// benchViewLoad loads a view of the store open returns, once per
// iteration, and reports the CPU-seconds it took (what a shared machine
// lets one compare; the load keeps several cores busy) and the heap it
// holds per node. done, which open returns, closes what open opened.
func benchViewLoad(b *testing.B, open func() (store sqlkv.Store, done func())) {
	var before, after runtime.MemStats
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		cpu := cpuTime()
		b.StartTimer()
		store, done := open()
		v := NewView(store)
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
		done()
		b.StartTimer()
	}
}

// BenchmarkViewSweep is one idle sweep (nothing expires) of n nodes from
// the view, against the baseline of the sweep it replaced, which read and
// decoded every node, heartbeat and report record (at 100,000 nodes only:
// at 1,000,000 it takes many seconds).
func BenchmarkViewSweep(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("memory/nodes=%d", n), func(b *testing.B) {
			v, store := openFilled(b, "memory", n)
			now := time.Unix(0, 2) // every record was written at 1: 1 ns old
			v.nodes.opts.now = func() time.Time { return now }
			b.Run("view", func(b *testing.B) {
				for b.Loop() {
					res, err := v.Nodes().Sweep(b.Context(), Liveness{})
					if err != nil || res != (SweepResult{}) {
						b.Fatalf("Sweep = %+v, %v; want nothing done", res, err)
					}
				}
			})
			if n <= 100_000 {
				benchScanBaseline(b, store)
			}
		})
	}
}

// benchScanBaseline is the baseline of a view read that answers from
// memory: reading and decoding every record of store, as a read did before
// the view.
func benchScanBaseline(b *testing.B, store sqlkv.Store) {
	b.Run("scan-baseline", func(b *testing.B) {
		for b.Loop() {
			if _, err := loadEntries(b.Context(), store); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkViewClusterStats is GetClusterStats from the view's counters
// at n nodes, against the baseline of reading every record (100,000 nodes
// only).
func BenchmarkViewClusterStats(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("memory/nodes=%d", n), func(b *testing.B) {
			v, store := openFilled(b, "memory", n)
			b.Run("view", func(b *testing.B) {
				for b.Loop() {
					st, err := v.Resources().ClusterStats(b.Context())
					if err != nil || st.TotalNodes != int64(n) {
						b.Fatalf("ClusterStats = %d nodes, %v", st.TotalNodes, err)
					}
				}
			})
			if n <= 100_000 {
				benchScanBaseline(b, store)
			}
		})
	}
}

// BenchmarkViewWatchSnapshot streams a snapshot of n nodes to a watcher
// that discards them (nodes/s), and reports the heap each further idle
// watcher holds.
func BenchmarkViewWatchSnapshot(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("memory/nodes=%d", n), func(b *testing.B) {
			v, _ := openFilled(b, "memory", n)
			r := v.Nodes()
			for b.Loop() {
				count := 0
				err := r.Watch(b.Context(), WatchOptions{}, func(ev Event) error {
					if ev.Kind == EventSnapshotEnd {
						return errSnapshotDone
					}
					count++
					return nil
				})
				if err != errSnapshotDone || count != n {
					b.Fatalf("Watch = %d nodes, %v", count, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
			b.ReportMetric(idleWatcherBytes(b, r), "B/idle-watcher")
		})
	}
}

var errSnapshotDone = fmt.Errorf("snapshot done")

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleWatcherBytes starts 200 watchers of one node each, waits until each
// has its snapshot, and returns the heap they hold each (goroutine stacks
// included).
func idleWatcherBytes(b *testing.B, r *NodeRegistry) float64 {
	const watchers = 200
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ready := make(chan struct{}, watchers)
	done := make(chan struct{}, watchers)
	for range watchers {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = r.Watch(ctx, WatchOptions{UUIDs: []string{benchUUID(1)}}, func(ev Event) error {
				if ev.Kind == EventSnapshotEnd {
					ready <- struct{}{}
				}
				return nil
			})
		}()
	}
	for range watchers {
		<-ready
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	cancel()
	for range watchers {
		<-done
	}
	return float64((after.HeapAlloc+after.StackInuse)-(before.HeapAlloc+before.StackInuse)) / watchers
}

// BenchmarkGetWithResource is GetNodeWithResource's read, 16 goroutines,
// 1,000 nodes (half with a report): one fence and one view entry
// (GetWithResource), against the baseline of the two reads it replaced,
// Get then Resources().Get, each with its fence. On Postgres a fence is a
// NOTIFY round trip.
func BenchmarkGetWithResource(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			v, _ := openFilled(b, backend, 1000)
			r := v.Nodes()
			b.Run("one-fence", func(b *testing.B) {
				parallelReads(b, func(ctx context.Context, id string) error {
					_, _, _, err := r.GetWithResource(ctx, id)
					return err
				})
			})
			b.Run("two-fences-baseline", func(b *testing.B) {
				parallelReads(b, func(ctx context.Context, id string) error {
					if _, err := r.Get(ctx, id); err != nil {
						return err
					}
					_, _, err := v.Resources().Get(ctx, id)
					return err
				})
			})
		})
	}
}

// BenchmarkViewPointRead is the lookup of GetNode, without the fence or
// building the Node, at 1,000,000 nodes, 16 goroutines, uuids spread over
// the whole fleet: through the view's uuid index (entryOf, what GetNode
// uses), against the uuid tree it replaced for point reads (a btree Get
// with an allocated probe entry) and a Go map[string]*entry of the same
// entries. Each reports what its structure holds per node (index-B/node).
func BenchmarkViewPointRead(b *testing.B) {
	const n = 1_000_000
	v, _ := openFilled(b, "memory", n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = benchUUID(i)
	}
	read := func(b *testing.B, lookup func(id string) *entry) {
		b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if lookup(ids[i]) == nil {
					b.Error("not found")
					return
				}
				i = (i + 7919) % n
			}
		})
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.Run("index", func(b *testing.B) {
		read(b, v.get)
		b.ReportMetric(float64(len(v.byID.slots)*8)/n, "index-B/node")
	})
	b.Run("tree", func(b *testing.B) {
		read(b, func(id string) *entry {
			v.mu.RLock()
			defer v.mu.RUnlock()
			e, _ := v.byUUID.Get(&entry{uuid: id})
			return e
		})
		b.ReportMetric(8, "index-B/node") // the tree's item, without its nodes' fill
	})
	b.Run("gomap", func(b *testing.B) {
		before := heap()
		m := make(map[string]*entry, n)
		v.byUUID.Ascend(func(e *entry) bool { m[e.uuid] = e; return true })
		size := heap() - before
		b.ResetTimer()
		read(b, func(id string) *entry {
			v.mu.RLock()
			defer v.mu.RUnlock()
			return m[id]
		})
		b.ReportMetric(float64(size)/n, "index-B/node")
		runtime.KeepAlive(m)
	})
}
