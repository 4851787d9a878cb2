package registry_test

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// A new view loads what is already in the store: nodes, heartbeats,
// resource reports, and the counters of ClusterStats.
func TestViewLoadsExistingRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		ctx := t.Context()
		e.register(t, uuidA, "")
		e.register(t, uuidB, "inactive")
		e.register(t, uuidC, "unhealthy")
		if _, err := e.nodes.Heartbeat(ctx, uuidA, map[string]string{"disk": "ok"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.res.Update(ctx, registry.Resource{NodeUUID: uuidA, CPUUsagePercent: 90, TotalMemoryBytes: 100}); err != nil {
			t.Fatal(err)
		}
		want, err := e.nodes.List(ctx, registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}

		v := registry.NewView(store)
		t.Cleanup(v.Close)
		if err := v.WaitLoaded(ctx); err != nil {
			t.Fatalf("WaitLoaded: %v", err)
		}
		if !v.Loaded() {
			t.Error("Loaded = false after WaitLoaded")
		}
		got, err := v.Nodes().List(ctx, registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("loaded %d nodes, want %d", len(got), len(want))
		}
		for i := range want {
			assertNode(t, "loaded node", got[i], want[i])
		}
		res, found, err := v.Resources().Get(ctx, uuidA)
		if err != nil || !found || res.CPUUsagePercent != 90 {
			t.Errorf("loaded resource = %+v, %v, %v; want CPU 90", res, found, err)
		}
		st, err := v.Resources().ClusterStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		assertStats(t, st, registry.ClusterStats{
			TotalNodes: 3,
			NodesByStatus: map[registry.Status]int64{
				registry.StatusActive: 1, registry.StatusInactive: 1, registry.StatusUnhealthy: 1, registry.StatusDecommissioning: 0,
			},
			NodesWithResources: 1, AverageCPUPercent: 90, TotalMemoryBytes: 100, HighLoadNodes: 1,
		})
	})
}

// Every read through one registry reflects a write acknowledged just
// before through another registry with its own view on the same store: on
// Postgres these are two stores (two replicas), and the read fence is what
// makes the write visible without waiting.
func TestViewReadsAreLinearizableAcrossViews(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			storeA, storeB := storetest.Replicas(t, backend)
			a, b := registry.NewView(storeA), registry.NewView(storeB)
			t.Cleanup(a.Close)
			t.Cleanup(b.Close)
			ctx := t.Context()
			for i := range 30 {
				id := nthUUID(i)
				if _, err := a.Nodes().Register(ctx, registry.Node{UUID: id, IPAddress: "10.0.0.1", Port: 1}); err != nil {
					t.Fatal(err)
				}
				if _, err := b.Nodes().Get(ctx, id); err != nil {
					t.Fatalf("round %d: Get through b of a node registered through a: %v", i, err)
				}
				if _, err := a.Resources().Update(ctx, registry.Resource{NodeUUID: id, CPUUsagePercent: float64(i)}); err != nil {
					t.Fatal(err)
				}
				res, found, err := b.Resources().Get(ctx, id)
				if err != nil || !found || res.CPUUsagePercent != float64(i) {
					t.Fatalf("round %d: resource through b = %+v, %v, %v", i, res, found, err)
				}
				st, err := b.Resources().ClusterStats(ctx)
				if err != nil || st.TotalNodes != int64(i+1) {
					t.Fatalf("round %d: ClusterStats through b = %d nodes, %v; want %d", i, st.TotalNodes, err, i+1)
				}
				if err := a.Nodes().Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
				if _, err := b.Nodes().Get(ctx, id); err == nil {
					t.Fatalf("round %d: Get through b of a node deleted through a succeeded", i)
				}
				if _, err := a.Nodes().Register(ctx, registry.Node{UUID: id, IPAddress: "10.0.0.1", Port: 1}); err != nil {
					t.Fatal(err)
				}
			}
			nodes, _, err := b.Nodes().ListPage(ctx, registry.ListOptions{PageSize: 100})
			if err != nil || len(nodes) != 30 {
				t.Fatalf("ListPage through b = %d nodes, %v; want 30", len(nodes), err)
			}
		})
	}
}

// A reconnecting watcher that passes the last version it saw gets only the
// changes since; one whose version is too old, or from another view, gets
// a fresh snapshot.
func TestWatchResumeVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store, registry.WithWatchBuffer(8))
		ctx := t.Context()
		e.register(t, uuidA, "")
		w := startWatch(t, e.nodes, registry.WatchOptions{})
		w.snapshot(t)
		e.register(t, uuidB, "")
		last := w.expect(t, registry.EventRegistered, uuidB).Version
		w.cancel()

		// Missed while away: C registered, A updated.
		e.register(t, uuidC, "")
		if _, err := e.nodes.Update(ctx, uuidA, registry.Node{IPAddress: "h", Port: 2}); err != nil {
			t.Fatal(err)
		}
		w = startWatch(t, e.nodes, registry.WatchOptions{ResumeVersion: last})
		if ev := w.next(t); ev.Kind != registry.EventSnapshotEnd || !ev.Resumed {
			t.Fatalf("first event of a resumed watch = %v (resumed %v), want a resumed snapshot end", ev.Kind, ev.Resumed)
		}
		w.expect(t, registry.EventRegistered, uuidC)
		last = w.expect(t, registry.EventUpdated, uuidA).Version
		w.cancel()

		// Too old: more changes than the view keeps (8). (A read after
		// each makes each its own event: changes applied together are
		// one.)
		for i := range 10 {
			if _, err := e.nodes.Update(ctx, uuidB, registry.Node{IPAddress: "h", Port: int32(3 + i)}); err != nil {
				t.Fatal(err)
			}
			e.get(t, uuidB)
		}
		w = startWatch(t, e.nodes, registry.WatchOptions{ResumeVersion: last})
		if got := w.snapshot(t); len(got) != 3 {
			t.Errorf("watch resuming from too old a version: snapshot of %v, want 3 nodes", got)
		}
		w.cancel()

		// Another view's version (another replica, or before a restart).
		other := registry.NewView(store)
		t.Cleanup(other.Close)
		w = startWatch(t, other.Nodes(), registry.WatchOptions{ResumeVersion: last})
		if got := w.snapshot(t); len(got) != 3 {
			t.Errorf("watch resuming from another view's version: snapshot of %v, want 3 nodes", got)
		}
	})
}

// A watcher costs the view nothing per node: many idle watchers all get a
// change.
func TestManyWatchersShareTheView(t *testing.T) {
	e := newEnv(watchable(storetest.Open(t, "memory")))
	for i := range 50 {
		e.register(t, nthUUID(i), "")
	}
	var watches []*watch
	for range 100 {
		w := startWatch(t, e.nodes, registry.WatchOptions{UUIDs: []string{nthUUID(7)}})
		if got := w.snapshot(t); len(got) != 1 {
			t.Fatalf("snapshot = %v, want one node", got)
		}
		watches = append(watches, w)
	}
	if _, err := e.nodes.Update(t.Context(), nthUUID(7), registry.Node{IPAddress: "h", Port: 9}); err != nil {
		t.Fatal(err)
	}
	for _, w := range watches {
		w.expect(t, registry.EventUpdated, nthUUID(7))
	}
}

// A sweep of a fleet where nothing expires reads nothing from the store
// and writes nothing; one where three nodes expire writes their three
// transitions (a check and a put each) in one Apply.
func TestSweepTouchesOnlyExpiringNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		cs := &countingStore{Store: store}
		e := newEnv(cs)
		for i := range 3 {
			e.register(t, nthUUID(i), "")
		}
		e.clock.Advance(time.Minute)
		for i := 3; i < 200; i++ {
			e.register(t, nthUUID(i), "")
		}
		// Loaded and caught up, so that the view reads nothing either.
		if _, err := e.nodes.Get(t.Context(), nthUUID(0)); err != nil {
			t.Fatal(err)
		}
		cs.reset()
		sweep(t, e.nodes, registry.Liveness{HeartbeatTimeout: 90 * time.Second}, registry.SweepResult{})
		if got := cs.count(); got != 0 {
			t.Errorf("idle sweep of 200 nodes: %d store calls, want 0", got)
		}
		if got := registry.SweepExamined(e.nodes); got != 0 {
			t.Errorf("idle sweep examined %d entries, want 0", got)
		}

		e.clock.Advance(45 * time.Second) // the first three are 105 s silent
		cs.reset()
		sweep(t, e.nodes, registry.Liveness{HeartbeatTimeout: 90 * time.Second}, registry.SweepResult{MarkedUnhealthy: 3})
		if got, ops := cs.applies.Load(), cs.ops.Load(); got != 1 || ops != 6 {
			t.Errorf("sweep expiring 3 of 200 nodes: %d Applies of %d ops, want 1 of 6", got, ops)
		}
		// (On Postgres the view re-reads the three changed records when
		// their notifications arrive, which may be before this.)
		if got := cs.reads.Load(); got != 0 && !isPostgres(store) {
			t.Errorf("sweep expiring 3 of 200 nodes: %d reads, want 0", got)
		}
		if got := registry.SweepExamined(e.nodes); got != 3 {
			t.Errorf("sweep examined %d entries, want 3", got)
		}
	})
}

// countingStore counts the reads and Applies made through it.
type countingStore struct {
	sqlkv.Store
	reads, applies, ops atomic.Int64
}

func (s *countingStore) reset()       { s.reads.Store(0); s.applies.Store(0); s.ops.Store(0) }
func (s *countingStore) count() int64 { return s.reads.Load() + s.applies.Load() }

func (s *countingStore) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	s.reads.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	s.reads.Add(1)
	return s.Store.Range(ctx, opts)
}

func (s *countingStore) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	s.applies.Add(1)
	s.ops.Add(int64(len(ops)))
	return s.Store.Apply(ctx, ops...)
}

// Watch and Fence are the wrapped store's; see hookStore.
func (s *countingStore) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	return s.Store.(sqlkv.Watchable).Watch(ctx, prefix)
}

func (s *countingStore) Fence(ctx context.Context) error { return s.Store.(sqlkv.Fencer).Fence(ctx) }

// Sums of huge memory sizes saturate instead of wrapping around, and come
// back exactly when the reports go.
func TestClusterStatsSaturates(t *testing.T) {
	e := newEnv(watchable(storetest.Open(t, "memory")))
	ctx := t.Context()
	for _, id := range []string{uuidA, uuidB} {
		e.register(t, id, "")
		if _, err := e.res.Update(ctx, registry.Resource{NodeUUID: id, TotalMemoryBytes: math.MaxInt64, UsedMemoryBytes: 5}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.res.ClusterStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalMemoryBytes != math.MaxInt64 || st.UsedMemoryBytes != 10 {
		t.Errorf("memory = %d total, %d used; want MaxInt64, 10", st.TotalMemoryBytes, st.UsedMemoryBytes)
	}
	if err := e.nodes.Delete(ctx, uuidB); err != nil {
		t.Fatal(err)
	}
	if _, err := e.res.Update(ctx, registry.Resource{NodeUUID: uuidA, TotalMemoryBytes: 7, UsedMemoryBytes: 1}); err != nil {
		t.Fatal(err)
	}
	st, err = e.res.ClusterStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalMemoryBytes != 7 || st.UsedMemoryBytes != 1 || st.NodesWithResources != 1 {
		t.Errorf("after the huge reports went: %+v, want 7 total, 1 used, 1 node", st)
	}
}

// Changes the feed could not report (DeletePrefix tells subscribers to
// resync) reach the view by a reload, and watchers as events.
func TestViewResyncs(t *testing.T) {
	store := watchable(storetest.Open(t, "sqlite"))
	e := newEnv(store)
	e.register(t, uuidA, "")
	e.register(t, uuidB, "")
	w := startWatch(t, e.nodes, registry.WatchOptions{})
	w.snapshot(t)
	if _, err := sqlkv.DeletePrefix(t.Context(), store, []byte("node:"+uuidA)); err != nil {
		t.Fatal(err)
	}
	w.expect(t, registry.EventDeleted, uuidA)
	if _, err := e.nodes.Get(t.Context(), uuidA); err == nil {
		t.Error("Get of a node removed by DeletePrefix succeeded")
	}
}

func isPostgres(store sqlkv.Store) bool {
	_, inProcess := store.(*watchstore.Store)
	return !inProcess
}
