package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// watch is a running NodeRegistry.Watch whose events arrive on events.
type watch struct {
	events chan registry.Event
	done   chan struct{} // closed when Watch has returned err
	err    error
	cancel context.CancelFunc
}

func startWatch(t *testing.T, r *registry.NodeRegistry, opts registry.WatchOptions) *watch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watch{events: make(chan registry.Event, 10000), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		w.err = r.Watch(ctx, opts, func(ev registry.Event) error {
			w.events <- ev
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// next returns the next event; it fails the test if none comes within a
// generous bound.
func (w *watch) next(t *testing.T) registry.Event {
	t.Helper()
	select {
	case ev := <-w.events:
		return ev
	case <-w.done:
		t.Fatalf("watch ended: %v", w.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return registry.Event{}
}

func (w *watch) expect(t *testing.T, kind registry.EventKind, uuid string) registry.Event {
	t.Helper()
	ev := w.next(t)
	if ev.Kind != kind || ev.Node.UUID != uuid {
		t.Fatalf("event = %v %s (status %s), want %v %s", ev.Kind, ev.Node.UUID, ev.Node.Status, kind, uuid)
	}
	return ev
}

// snapshot reads events up to SnapshotEnd and returns the snapshot's uuids.
func (w *watch) snapshot(t *testing.T) []string {
	t.Helper()
	var ids []string
	for {
		ev := w.next(t)
		switch ev.Kind {
		case registry.EventSnapshotEnd:
			return ids
		case registry.EventSnapshot:
			ids = append(ids, ev.Node.UUID)
		default:
			t.Fatalf("event %v before the end of the snapshot", ev.Kind)
		}
	}
}

func TestWatchReportsEveryKindOfChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(watchable(store))
		ctx := t.Context()
		e.register(t, uuidA, "")
		e.register(t, uuidB, "")
		w := startWatch(t, e.nodes, registry.WatchOptions{})
		if got := w.snapshot(t); fmt.Sprint(got) != fmt.Sprint([]string{uuidA, uuidB}) {
			t.Fatalf("snapshot = %v, want [%s %s]", got, uuidA, uuidB)
		}

		e.register(t, uuidC, "")
		w.expect(t, registry.EventRegistered, uuidC)

		if _, err := e.nodes.Update(ctx, uuidA, registry.Node{IPAddress: "h", Port: 2, Metadata: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		if ev := w.expect(t, registry.EventUpdated, uuidA); ev.Node.Metadata["k"] != "v" {
			t.Errorf("updated node = %+v, want the new metadata", ev.Node)
		}

		if _, err := e.nodes.Update(ctx, uuidB, registry.Node{IPAddress: "h", Port: 2, Status: "inactive"}); err != nil {
			t.Fatal(err)
		}
		if ev := w.expect(t, registry.EventStatusChanged, uuidB); ev.Node.Status != "inactive" || ev.PreviousStatus != "active" {
			t.Errorf("status change = %s -> %s, want active -> inactive", ev.PreviousStatus, ev.Node.Status)
		}

		// A heartbeat that changes only the timestamp is not reported...
		if _, err := e.nodes.Heartbeat(ctx, uuidC, map[string]string{"x": "1"}); err != nil {
			t.Fatal(err)
		}
		if err := e.nodes.Delete(ctx, uuidC); err != nil {
			t.Fatal(err)
		}
		// ...so the delete is the next event.
		if ev := w.expect(t, registry.EventDeleted, uuidC); ev.Node.UUID != uuidC {
			t.Errorf("deleted event carries %+v", ev.Node)
		}

		// The sweeper: A goes unhealthy (B is inactive: untouched).
		e.clock.Advance(2 * time.Minute)
		sweep(t, e.nodes, registry.Liveness{}, registry.SweepResult{MarkedUnhealthy: 1})
		if ev := w.expect(t, registry.EventStatusChanged, uuidA); ev.Node.Status != "unhealthy" || ev.PreviousStatus != "active" {
			t.Errorf("sweep = %s -> %s, want active -> unhealthy", ev.PreviousStatus, ev.Node.Status)
		}
		// A heartbeat that makes it active again is a status change.
		if _, err := e.nodes.Heartbeat(ctx, uuidA, nil); err != nil {
			t.Fatal(err)
		}
		if ev := w.expect(t, registry.EventStatusChanged, uuidA); ev.Node.Status != "active" {
			t.Errorf("heartbeat made it %s, want active", ev.Node.Status)
		}

		// The TTL: B (silent, inactive) expires.
		sweep(t, e.nodes, registry.Liveness{NodeTTL: time.Minute}, registry.SweepResult{DeletedNodes: 1})
		w.expect(t, registry.EventExpired, uuidB)

		// Deleted and registered again: registered.
		if err := e.nodes.Delete(ctx, uuidA); err != nil {
			t.Fatal(err)
		}
		w.expect(t, registry.EventDeleted, uuidA)
		e.register(t, uuidA, "")
		w.expect(t, registry.EventRegistered, uuidA)
	})
}

func TestWatchFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(watchable(store))
		ctx := t.Context()
		for _, id := range []string{uuidA, uuidB, uuidC} {
			if _, err := e.nodes.Register(ctx, registry.Node{UUID: id, IPAddress: "h", Port: 1, Metadata: map[string]string{"zone": "a"}}); err != nil {
				t.Fatal(err)
			}
		}
		w := startWatch(t, e.nodes, registry.WatchOptions{
			UUIDs: []string{uuidA, uuidB}, Status: "active", Metadata: map[string]string{"zone": "a"}, Heartbeats: true,
		})
		if got := w.snapshot(t); len(got) != 2 {
			t.Fatalf("snapshot = %v, want A and B", got)
		}
		// C is not watched.
		if _, err := e.nodes.Heartbeat(ctx, uuidC, nil); err != nil {
			t.Fatal(err)
		}
		// Heartbeats are, when asked for.
		if _, err := e.nodes.Heartbeat(ctx, uuidA, map[string]string{"load": "1"}); err != nil {
			t.Fatal(err)
		}
		if ev := w.expect(t, registry.EventHeartbeat, uuidA); ev.Node.HealthInfo["load"] != "1" {
			t.Errorf("heartbeat event health = %v", ev.Node.HealthInfo)
		}
		// Leaving the filter is reported once, with the new state...
		if _, err := e.nodes.Update(ctx, uuidA, registry.Node{IPAddress: "h", Port: 1, Metadata: map[string]string{"zone": "b"}}); err != nil {
			t.Fatal(err)
		}
		w.expect(t, registry.EventUpdated, uuidA)
		// ...and then the node is out of sight.
		if _, err := e.nodes.Heartbeat(ctx, uuidA, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.nodes.Update(ctx, uuidB, registry.Node{IPAddress: "h", Port: 1, Status: "decommissioning", Metadata: map[string]string{"zone": "a"}}); err != nil {
			t.Fatal(err)
		}
		w.expect(t, registry.EventStatusChanged, uuidB)
		// Coming back into the filter is reported.
		if _, err := e.nodes.Update(ctx, uuidA, registry.Node{IPAddress: "h", Port: 1, Metadata: map[string]string{"zone": "a"}}); err != nil {
			t.Fatal(err)
		}
		w.expect(t, registry.EventUpdated, uuidA)

		if err := e.nodes.Watch(ctx, registry.WatchOptions{Status: "sleepy"}, nil); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Watch(bad status) = %v, want ErrInvalid", err)
		}
		if err := e.nodes.Watch(ctx, registry.WatchOptions{UUIDs: []string{"nope"}}, nil); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Watch(bad uuid) = %v, want ErrInvalid", err)
		}
	})
}

// A watcher that stops reading is ended with ErrWatchLagged, and neither
// writers nor other watchers wait for it.
func TestWatchLaggingWatcherIsEnded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(watchable(store), registry.WithWatchBuffer(2))
		ctx := t.Context()
		e.register(t, uuidA, "")

		stuck := make(chan struct{})
		lagged := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			lagged <- e.nodes.Watch(ctx, registry.WatchOptions{Heartbeats: true}, func(ev registry.Event) error {
				if ev.Kind == registry.EventSnapshotEnd {
					close(started)
					return nil
				}
				if ev.Kind != registry.EventSnapshot {
					select { // stuck until told, then never again
					case <-stuck:
					case <-ctx.Done():
					}
				}
				return nil
			})
		}()
		<-started
		healthy := startWatch(t, e.nodes, registry.WatchOptions{Heartbeats: true})
		healthy.snapshot(t)

		// The stuck watcher holds one event and buffers two; the healthy
		// one confirms that each heartbeat was handed out.
		for i := range 10 {
			if _, err := e.nodes.Heartbeat(ctx, uuidA, map[string]string{"i": strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
			healthy.expect(t, registry.EventHeartbeat, uuidA)
		}
		// Let the stuck send return, once; a watcher that found itself
		// lagging before it delivered anything has already ended.
		var err error
		ended := false
		select {
		case stuck <- struct{}{}:
		case err = <-lagged:
			ended = true
		}
		if !ended {
			select {
			case err = <-lagged:
			case <-time.After(10 * time.Second):
				t.Fatal("the stuck watcher was not ended")
			}
		}
		if !errors.Is(err, registry.ErrWatchLagged) {
			t.Errorf("stuck watcher ended with %v, want ErrWatchLagged", err)
		}
	})
}

// Concurrent writers while watchers start: every watcher sees, per node, the
// counter values in increasing order (no duplicate, nothing older than its
// snapshot) and ends at the last value written (no gap at the end).
func TestWatchNoGapNoDuplicate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(watchable(store))
		ctx := t.Context()
		const nodes, writes, watchers = 4, 60, 3
		ids := make([]string, nodes)
		for i := range ids {
			ids[i] = nthUUID(i)
			e.register(t, ids[i], "")
		}
		update := func(id string, n int) {
			t.Helper()
			if _, err := e.nodes.Update(ctx, id, registry.Node{IPAddress: "h", Port: 1, Metadata: map[string]string{"n": strconv.Itoa(n)}}); err != nil {
				t.Error(err)
			}
		}

		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				for n := 1; n <= writes; n++ {
					update(id, n)
				}
			})
		}
		ws := make([]*watch, watchers)
		for i := range ws {
			ws[i] = startWatch(t, e.nodes, registry.WatchOptions{})
			time.Sleep(time.Millisecond) // start them at different points
		}
		wg.Wait()
		for _, id := range ids {
			update(id, writes+1) // a final, known value
		}

		for wi, w := range ws {
			last := map[string]int{}
			for done := 0; done < nodes; {
				ev := w.next(t)
				if ev.Kind == registry.EventSnapshotEnd {
					continue
				}
				n, _ := strconv.Atoi(ev.Node.Metadata["n"])
				if prev, ok := last[ev.Node.UUID]; ok && n <= prev {
					t.Fatalf("watcher %d: node %s went from n=%d to n=%d (%v)", wi, ev.Node.UUID, prev, n, ev.Kind)
				}
				last[ev.Node.UUID] = n
				if n == writes+1 {
					done++
				}
			}
		}
	})
}
