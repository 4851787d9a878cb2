package registry_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
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
