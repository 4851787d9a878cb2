package registry_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
)

func TestSweepMarksSilentActiveNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		const uuidD = "d0000000-0000-4000-8000-000000000000"
		e.register(t, uuidA, "active")
		e.register(t, uuidB, "inactive")
		e.register(t, uuidC, "decommissioning")
		e.clock.Advance(30 * time.Second)
		e.register(t, uuidD, "online") // heard from later

		l := registry.Liveness{}          // default timeout, 90s
		e.clock.Advance(60 * time.Second) // A silent for exactly the timeout: not yet
		sweep(t, e.nodes, l, registry.SweepResult{})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "active", uuidB: "inactive", uuidC: "decommissioning", uuidD: "active"})

		e.clock.Advance(time.Nanosecond)
		sweep(t, e.nodes, l, registry.SweepResult{MarkedUnhealthy: 1})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "unhealthy", uuidB: "inactive", uuidC: "decommissioning", uuidD: "active"})
		// Marking changes neither the heartbeat time nor the health info.
		if n := e.get(t, uuidA); !n.LastHeartbeat.Equal(n.RegisteredAt) {
			t.Errorf("LastHeartbeat = %v after marking, want %v", n.LastHeartbeat, n.RegisteredAt)
		}
		// An unhealthy node is not marked again.
		sweep(t, e.nodes, l, registry.SweepResult{})

		e.clock.Advance(time.Hour)
		sweep(t, e.nodes, l, registry.SweepResult{MarkedUnhealthy: 1})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "unhealthy", uuidB: "inactive", uuidC: "decommissioning", uuidD: "unhealthy"})

		if _, err := e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"ok": "1"}); err != nil {
			t.Fatal(err)
		}
		assertStatuses(t, e, map[string]registry.Status{uuidA: "active"})
		sweep(t, e.nodes, l, registry.SweepResult{})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "active"})

		// A custom timeout.
		e.clock.Advance(11 * time.Second)
		sweep(t, e.nodes, registry.Liveness{HeartbeatTimeout: 10 * time.Second}, registry.SweepResult{MarkedUnhealthy: 1})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "unhealthy"})

		// Unhealthy nodes are listed as such.
		got, err := e.nodes.List(t.Context(), registry.ListOptions{Status: "unhealthy"})
		if err != nil || len(got) != 2 || got[0].UUID != uuidA || got[1].UUID != uuidD {
			t.Errorf("List(unhealthy) = %v, %v; want %s, %s", got, err, uuidA, uuidD)
		}
	})
}

func TestSweepSkipsNodeThatHeartbeatsMeanwhile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		hs := &hookStore{Store: store}
		e := newEnv(store)
		r := registry.NewView(hs, registry.WithClock(e.clock.Now)).Nodes()
		e.register(t, uuidA, "")
		e.clock.Advance(time.Hour)
		hs.before = func() {
			if _, err := e.nodes.Heartbeat(t.Context(), uuidA, nil); err != nil {
				t.Errorf("Heartbeat: %v", err)
			}
		}
		sweep(t, r, registry.Liveness{NodeTTL: 2 * time.Hour}, registry.SweepResult{})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "active"})
	})
}

// A heartbeat that lands between a sweep's read and its write fails the
// batch holding its node (the sweep puts several transitions in one
// Apply); the batch is then made one transition at a time, so the other
// nodes are marked, each once, and the one that heartbeated is not.
func TestSweepBatchWithAHeartbeatMeanwhile(t *testing.T) {
	const uuidD = "d0000000-0000-4000-8000-000000000000"
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		hs := &hookStore{Store: store}
		e := newEnv(store)
		r := registry.NewView(hs, registry.WithClock(e.clock.Now)).Nodes()
		for _, id := range []string{uuidA, uuidB, uuidC} {
			e.register(t, id, "")
		}
		w := startWatch(t, e.nodes, registry.WatchOptions{})
		if got := w.snapshot(t); len(got) != 3 {
			t.Fatalf("snapshot = %v, want 3 nodes", got)
		}
		e.clock.Advance(time.Hour)
		hs.before = func() {
			if _, err := e.nodes.Heartbeat(t.Context(), uuidB, nil); err != nil {
				t.Errorf("Heartbeat: %v", err)
			}
		}
		sweep(t, r, registry.Liveness{}, registry.SweepResult{MarkedUnhealthy: 2})
		assertStatuses(t, e, map[string]registry.Status{uuidA: "unhealthy", uuidB: "active", uuidC: "unhealthy"})

		// A node registered after the sweep is the end marker: the
		// events before its own are the sweep's, each exactly once.
		e.register(t, uuidD, "")
		changed := map[string]int{}
		for {
			ev := w.next(t)
			if ev.Node.UUID == uuidD {
				break
			}
			if ev.Kind == registry.EventStatusChanged {
				changed[ev.Node.UUID]++
			}
		}
		if want := map[string]int{uuidA: 1, uuidC: 1}; !maps.Equal(changed, want) {
			t.Errorf("status changes seen by a watcher = %v, want %v", changed, want)
		}
	})
}

func TestSweepNodeTTL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		for _, id := range []string{uuidA, uuidB, uuidC} {
			e.register(t, id, "")
		}
		if _, err := e.nodes.Update(t.Context(), uuidB, registry.Node{IPAddress: "h", Port: 1, Status: "decommissioning"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidA}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		if _, err := e.nodes.Heartbeat(t.Context(), uuidC, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidC}); err != nil {
			t.Fatal(err)
		}

		// No TTL: nodes are never deleted.
		sweep(t, e.nodes, registry.Liveness{}, registry.SweepResult{MarkedUnhealthy: 1, DeletedResources: 1})
		// A and B silent for an hour, C for nothing. The TTL deletes A (with
		// its resource record, already removed above as stale) and B,
		// whatever their status.
		sweep(t, e.nodes, registry.Liveness{NodeTTL: time.Hour - time.Second}, registry.SweepResult{DeletedNodes: 2})
		for _, id := range []string{uuidA, uuidB} {
			if _, err := e.nodes.Get(t.Context(), id); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Get(%s) after the TTL: %v, want ErrNotFound", id, err)
			}
			for _, prefix := range []string{"node:", "heartbeat:", "resource:"} {
				if ok, _ := sqlkv.Exists(t.Context(), store, []byte(prefix+id)); ok {
					t.Errorf("%s%s left behind by the TTL", prefix, id)
				}
			}
		}
		assertStatuses(t, e, map[string]registry.Status{uuidC: "active"})
		if _, found, _ := e.res.Get(t.Context(), uuidC); !found {
			t.Error("a fresh resource record was deleted")
		}

		// A node deleted by the TTL takes its fresh resource record along.
		e.clock.Advance(time.Hour)
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidC}); err != nil {
			t.Fatal(err)
		}
		sweep(t, e.nodes, registry.Liveness{NodeTTL: time.Minute}, registry.SweepResult{DeletedNodes: 1, DeletedResources: 1})
		// Only C's expiry record, for watchers, is left (A's and B's are
		// older than the heartbeat timeout and went in the same sweep)...
		if keys, err := sqlkv.Keys(t.Context(), store, nil); err != nil || len(keys) != 1 || string(keys[0]) != "expired:"+uuidC {
			t.Errorf("store holds %q (err %v) after every node expired, want only expired:%s", keys, err, uuidC)
		}
		// ...until a sweep one heartbeat timeout later.
		e.clock.Advance(registry.DefaultHeartbeatTimeout + time.Second)
		sweep(t, e.nodes, registry.Liveness{NodeTTL: time.Minute}, registry.SweepResult{})
		if n, err := sqlkv.Count(t.Context(), store, nil); err != nil || n != 0 {
			t.Errorf("store holds %d keys (err %v) after the expiry records' timeout, want 0", n, err)
		}
	})
}

func TestSweepStaleResources(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		e.register(t, uuidA, "")
		e.register(t, uuidB, "")
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidA}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(50 * time.Second)
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidB}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{uuidA, uuidB} {
			if _, err := e.nodes.Heartbeat(t.Context(), id, nil); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(41 * time.Second) // A's report is 91s old, B's 41s
		sweep(t, e.nodes, registry.Liveness{}, registry.SweepResult{DeletedResources: 1})
		if _, found, _ := e.res.Get(t.Context(), uuidA); found {
			t.Error("stale resource record kept")
		}
		if _, found, _ := e.res.Get(t.Context(), uuidB); !found {
			t.Error("fresh resource record deleted")
		}
		assertStatuses(t, e, map[string]registry.Status{uuidA: "active", uuidB: "active"})
	})
}

// Several replicas sweeping one store make each transition exactly once.
func TestConcurrentSweepsByReplicas(t *testing.T) {
	const nodes, replicas = 20, 4
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		ids := make([]string, nodes)
		for i := range ids {
			ids[i] = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
			e.register(t, ids[i], "")
			if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: ids[i]}); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(2 * time.Minute)

		run := func(l registry.Liveness) registry.SweepResult {
			var (
				mu    sync.Mutex
				total registry.SweepResult
				wg    sync.WaitGroup
			)
			for range replicas {
				r := registry.NewView(store, registry.WithClock(e.clock.Now)).Nodes()
				wg.Go(func() {
					res, err := r.Sweep(t.Context(), l)
					if err != nil {
						t.Errorf("Sweep: %v", err)
					}
					mu.Lock()
					defer mu.Unlock()
					total.MarkedUnhealthy += res.MarkedUnhealthy
					total.DeletedNodes += res.DeletedNodes
					total.DeletedResources += res.DeletedResources
				})
			}
			wg.Wait()
			return total
		}

		if got, want := run(registry.Liveness{}), (registry.SweepResult{MarkedUnhealthy: nodes, DeletedResources: nodes}); got != want {
			t.Errorf("concurrent sweeps = %+v in total, want %+v", got, want)
		}
		got, err := e.nodes.List(t.Context(), registry.ListOptions{Status: "unhealthy"})
		if err != nil || len(got) != nodes {
			t.Errorf("List(unhealthy) has %d nodes (err %v), want %d", len(got), err, nodes)
		}

		e.clock.Advance(time.Hour)
		if got, want := run(registry.Liveness{NodeTTL: time.Hour}), (registry.SweepResult{DeletedNodes: nodes}); got != want {
			t.Errorf("concurrent TTL sweeps = %+v in total, want %+v", got, want)
		}
	})
}

// A mass transition (thousands of nodes due at once, the sweep's pool of
// workers busy) raced by two replicas still makes each transition exactly
// once: every node is marked, every report and node deleted, and the two
// sweeps' counts add up to the number of transitions, not more.
func TestRacingSweepsOfManyDueNodes(t *testing.T) {
	const nodes = 3000
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		c := newClock()
		at := c.Now()
		fleet := make([]registry.Node, nodes)
		reports := make([]registry.Resource, nodes)
		for i := range fleet {
			fleet[i] = registry.Node{
				UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), IPAddress: "10.0.0.1", Port: 8080,
				Status: registry.StatusActive, RegisteredAt: at, LastHeartbeat: at,
			}
			reports[i] = registry.Resource{UpdatedAt: at}
		}
		for lo := 0; lo < nodes; lo += 1000 {
			if err := registry.BulkPut(t.Context(), store, fleet[lo:lo+1000], reports[lo:lo+1000]); err != nil {
				t.Fatal(err)
			}
		}
		replicas := []*registry.NodeRegistry{
			registry.NewView(store, registry.WithClock(c.Now)).Nodes(),
			registry.NewView(store, registry.WithClock(c.Now)).Nodes(),
		}
		race := func(l registry.Liveness) registry.SweepResult {
			results := make([]registry.SweepResult, len(replicas))
			var wg sync.WaitGroup
			for i, r := range replicas {
				wg.Go(func() {
					var err error
					if results[i], err = r.Sweep(t.Context(), l); err != nil {
						t.Errorf("replica %d: Sweep: %v", i, err)
					}
				})
			}
			wg.Wait()
			var total registry.SweepResult
			for _, res := range results {
				total.MarkedUnhealthy += res.MarkedUnhealthy
				total.DeletedNodes += res.DeletedNodes
				total.DeletedResources += res.DeletedResources
			}
			return total
		}

		c.Advance(registry.DefaultHeartbeatTimeout + time.Second)
		if got, want := race(registry.Liveness{}), (registry.SweepResult{MarkedUnhealthy: nodes, DeletedResources: nodes}); got != want {
			t.Errorf("racing sweeps = %+v in total, want %+v", got, want)
		}
		for _, r := range replicas {
			if got, err := r.List(t.Context(), registry.ListOptions{Status: "unhealthy"}); err != nil || len(got) != nodes {
				t.Errorf("List(unhealthy) has %d nodes (err %v), want %d", len(got), err, nodes)
			}
		}
		if n, err := sqlkv.Count(t.Context(), store, []byte("resource:")); err != nil || n != 0 {
			t.Errorf("%d resource reports left (err %v), want 0", n, err)
		}

		c.Advance(time.Hour)
		if got, want := race(registry.Liveness{NodeTTL: time.Hour}), (registry.SweepResult{DeletedNodes: nodes}); got != want {
			t.Errorf("racing TTL sweeps = %+v in total, want %+v", got, want)
		}
		if n, err := sqlkv.Count(t.Context(), store, []byte("node:")); err != nil || n != 0 {
			t.Errorf("%d nodes left (err %v) after their TTL, want 0", n, err)
		}
		// The expiry records for watchers, one per node, go a heartbeat
		// timeout later, leaving the store empty.
		if n, err := sqlkv.Count(t.Context(), store, []byte("expired:")); err != nil || n != nodes {
			t.Errorf("%d expiry records (err %v), want %d", n, err, nodes)
		}
		c.Advance(registry.DefaultHeartbeatTimeout + time.Second)
		race(registry.Liveness{NodeTTL: time.Hour})
		if n, err := sqlkv.Count(t.Context(), store, nil); err != nil || n != 0 {
			t.Errorf("store holds %d keys (err %v), want 0", n, err)
		}
	})
}

// A sweep whose context ends midway through a mass transition stops
// issuing transitions (at most the pool's in-flight Applies follow),
// returns the context's error, and counts no more than it made; the next
// sweep makes the rest. Batches of 10 transitions, so that 2,000 nodes take
// 200 Applies.
func TestSweepStopsIssuingWhenItsContextEnds(t *testing.T) {
	const nodes, batch, cutAfter = 2000, 10, 10
	registry.SetSweepBatch(t, batch)
	margin := int64(2 * registry.SweepWorkers()) // a pool's worth, with margin
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		c := newClock()
		fleet := make([]registry.Node, nodes)
		for i := range fleet {
			fleet[i] = registry.Node{
				UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), IPAddress: "10.0.0.1", Port: 8080,
				Status: registry.StatusActive, RegisteredAt: c.Now(), LastHeartbeat: c.Now(),
			}
		}
		if err := registry.BulkPut(t.Context(), store, fleet, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cs := &cancelingStore{Store: store, after: cutAfter, cancel: cancel}
		r := registry.NewView(cs, registry.WithClock(c.Now)).Nodes()
		c.Advance(registry.DefaultHeartbeatTimeout + time.Second)

		first, err := r.Sweep(ctx, registry.Liveness{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sweep cut short: %v, want context.Canceled", err)
		}
		// Workers that held a slot when the context ended may still have
		// called Apply: a pool's worth, with margin.
		if calls := cs.calls.Load(); calls > cutAfter+margin {
			t.Errorf("%d Applies after the context ended at the %dth, want at most a pool's worth more", calls, cutAfter)
		}
		second, err := r.Sweep(t.Context(), registry.Liveness{})
		if err != nil {
			t.Fatal(err)
		}
		// What the cut sweep made is what the second did not. It may have
		// counted less: an Apply whose context ended in flight has an
		// unknown outcome (SQLite's group commit can still commit it).
		made := nodes - second.MarkedUnhealthy
		if most := int((cutAfter + margin) * batch); first.MarkedUnhealthy == 0 || first.MarkedUnhealthy > made || made > most {
			t.Errorf("cut sweep counted %d and made %d, want 0 < counted <= made <= %d", first.MarkedUnhealthy, made, most)
		}
		if got, err := r.List(t.Context(), registry.ListOptions{Status: "unhealthy"}); err != nil || len(got) != nodes {
			t.Errorf("List(unhealthy) has %d nodes (err %v), want %d", len(got), err, nodes)
		}
	})
}

// cancelingStore calls cancel when Apply is called for the after-th time,
// and counts the calls.
type cancelingStore struct {
	sqlkv.Store
	after  int64
	cancel context.CancelFunc
	calls  atomic.Int64
}

func (s *cancelingStore) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	if s.calls.Add(1) == s.after {
		s.cancel()
	}
	return s.Store.Apply(ctx, ops...)
}

func (s *cancelingStore) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	return s.Store.(sqlkv.Watchable).Watch(ctx, prefix)
}

func (s *cancelingStore) Fence(ctx context.Context) error { return s.Store.(sqlkv.Fencer).Fence(ctx) }

func TestSweepCanceled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := e.nodes.Sweep(ctx, registry.Liveness{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Sweep with a canceled context: %v, want context.Canceled", err)
		}
	})
}

func sweep(t *testing.T, r *registry.NodeRegistry, l registry.Liveness, want registry.SweepResult) {
	t.Helper()
	got, err := r.Sweep(t.Context(), l)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if got != want {
		t.Errorf("Sweep = %+v, want %+v", got, want)
	}
}

func assertStatuses(t *testing.T, e *env, want map[string]registry.Status) {
	t.Helper()
	for id, status := range want {
		if got := e.get(t, id).Status; got != status {
			t.Errorf("node %s status = %q, want %q", id, got, status)
		}
	}
}

// Deadlines come from stored timestamps: a restarted registry (a new
// process over the same database) marks and expires on the original
// schedule.
func TestSweepDeadlinesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sms.db")
	c := newClock()
	store, err := kvstore.Open(t.Context(), kvstore.SQLite(path))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, clock: c, nodes: registry.NewView(store, registry.WithClock(c.Now)).Nodes()}
	e.register(t, uuidA, "")
	e.register(t, uuidB, "inactive")
	store.Close()

	c.Advance(registry.DefaultHeartbeatTimeout + time.Second)
	store, err = kvstore.Open(t.Context(), kvstore.SQLite(path))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e = &env{store: store, clock: c, nodes: registry.NewView(store, registry.WithClock(c.Now)).Nodes()}
	sweep(t, e.nodes, registry.Liveness{NodeTTL: 2 * registry.DefaultHeartbeatTimeout}, registry.SweepResult{MarkedUnhealthy: 1})
	assertStatuses(t, e, map[string]registry.Status{uuidA: "unhealthy", uuidB: "inactive"})
	c.Advance(registry.DefaultHeartbeatTimeout)
	sweep(t, e.nodes, registry.Liveness{NodeTTL: 2 * registry.DefaultHeartbeatTimeout}, registry.SweepResult{DeletedNodes: 2})
}
