package registry_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// A watcher with ResyncOnLag that falls behind the watch buffer gets a
// fresh snapshot in the stream (every event of it marked Resync, holding
// exactly the nodes that exist then: a node deleted while it lagged is not
// in it), and then the changes that follow, instead of ErrWatchLagged.
func TestWatchResyncOnLag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(watchable(store), registry.WithWatchBuffer(2))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		e.register(t, uuidA, "")
		e.register(t, uuidB, "")

		stuck := make(chan struct{})
		events := make(chan registry.Event, 100)
		done := make(chan error, 1)
		go func() {
			stuckOnce := true
			done <- e.nodes.Watch(ctx, registry.WatchOptions{ResyncOnLag: true}, func(ev registry.Event) error {
				events <- ev
				if ev.Kind != registry.EventSnapshot && ev.Kind != registry.EventSnapshotEnd && stuckOnce {
					stuckOnce = false
					select { // stuck on the first change, until told
					case <-stuck:
					case <-ctx.Done():
					}
				}
				return nil
			})
		}()
		next := func() registry.Event {
			t.Helper()
			select {
			case ev := <-events:
				return ev
			case err := <-done:
				t.Fatalf("watch ended: %v", err)
			case <-ctx.Done():
				t.Fatal("no event in time")
			}
			return registry.Event{}
		}
		for _, want := range []registry.EventKind{registry.EventSnapshot, registry.EventSnapshot, registry.EventSnapshotEnd} {
			if ev := next(); ev.Kind != want || ev.Resync {
				t.Fatalf("event %v (resync %v), want %v of the first snapshot", ev.Kind, ev.Resync, want)
			}
		}
		// The healthy watcher shares the two-event buffer: it sees every
		// change, heartbeats too, and each write below waits for it, so that
		// it never falls behind however the machine schedules it.
		healthy := startWatch(t, e.nodes, registry.WatchOptions{Heartbeats: true})
		healthy.snapshot(t)

		// The first change gets the watcher stuck; while it is, more than
		// the buffer's two events happen, B's deletion among them.
		e.register(t, uuidC, "")
		healthy.expect(t, registry.EventRegistered, uuidC)
		if ev := next(); ev.Kind != registry.EventRegistered || ev.Node.UUID != uuidC {
			t.Fatalf("event %v %s, want the change it is stuck on", ev.Kind, ev.Node.UUID)
		}
		if err := e.nodes.Delete(ctx, uuidB); err != nil {
			t.Fatal(err)
		}
		healthy.expect(t, registry.EventDeleted, uuidB)
		for range 3 {
			if _, err := e.nodes.Heartbeat(ctx, uuidA, nil); err != nil {
				t.Fatal(err)
			}
			healthy.expect(t, registry.EventHeartbeat, uuidA)
		}
		if _, err := e.nodes.Update(ctx, uuidC, registry.Node{IPAddress: "h", Port: 2}); err != nil {
			t.Fatal(err)
		}
		healthy.expect(t, registry.EventUpdated, uuidC)
		close(stuck)

		var ids []string
		for {
			ev := next()
			if !ev.Resync {
				t.Fatalf("event %v %s after the watcher lagged is not marked resync", ev.Kind, ev.Node.UUID)
			}
			if ev.Kind == registry.EventSnapshotEnd {
				break
			}
			if ev.Kind != registry.EventSnapshot {
				t.Fatalf("event %v in the resync snapshot", ev.Kind)
			}
			ids = append(ids, ev.Node.UUID)
			if ev.Node.UUID == uuidC && ev.Node.IPAddress != "h" {
				t.Errorf("resync snapshot has C at %q, want its state after the update", ev.Node.IPAddress)
			}
		}
		if want := []string{uuidA, uuidC}; !slices.Equal(ids, want) {
			t.Errorf("resync snapshot = %v, want %v (B was deleted meanwhile)", ids, want)
		}
		// It carries on with the changes after the resync.
		if err := e.nodes.Delete(ctx, uuidA); err != nil {
			t.Fatal(err)
		}
		if ev := next(); ev.Kind != registry.EventDeleted || ev.Node.UUID != uuidA || ev.Resync {
			t.Fatalf("event %v %s (resync %v), want DELETED %s after the resync", ev.Kind, ev.Node.UUID, ev.Resync, uuidA)
		}
	})
}

// SnapshotRefs delivers the snapshot as NodeRefs that read what Node
// would hold, and the changes as Nodes.
func TestWatchSnapshotRefs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(watchable(store))
		ctx := t.Context()
		if _, err := e.nodes.Register(ctx, registry.Node{UUID: uuidA, IPAddress: "10.0.0.7", Port: 7, HTTPPort: 8,
			Status: registry.StatusInactive, Metadata: map[string]string{"zone": "z", "a": "1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.nodes.Heartbeat(ctx, uuidA, map[string]string{"gpu": "ok"}); err != nil {
			t.Fatal(err)
		}
		want := e.get(t, uuidA)
		w := startWatch(t, e.nodes, registry.WatchOptions{SnapshotRefs: true})
		ev := w.next(t)
		if ev.Kind != registry.EventSnapshot || ev.Node.UUID != "" {
			t.Fatalf("event %v with Node %q, want a snapshot event with Node zero", ev.Kind, ev.Node.UUID)
		}
		r := ev.Ref
		got := registry.Node{UUID: r.UUID(), IPAddress: r.IPAddress(), Port: r.Port(), HTTPPort: r.HTTPPort(), Status: r.Status(),
			LastHeartbeat: r.LastHeartbeat(), RegisteredAt: r.RegisteredAt(), Metadata: map[string]string{}, HealthInfo: map[string]string{}}
		r.Metadata(func(k, v string) bool { got.Metadata[k] = v; return true })
		r.HealthInfo(func(k, v string) bool { got.HealthInfo[k] = v; return true })
		for name, n := range map[string]registry.Node{"accessors": got, "Ref.Node": r.Node()} {
			if n.UUID != want.UUID || n.IPAddress != want.IPAddress || n.Port != want.Port || n.HTTPPort != want.HTTPPort ||
				n.Status != want.Status || !n.LastHeartbeat.Equal(want.LastHeartbeat) || !n.RegisteredAt.Equal(want.RegisteredAt) ||
				!maps.Equal(n.Metadata, want.Metadata) || !maps.Equal(n.HealthInfo, want.HealthInfo) {
				t.Errorf("%s read %+v, want %+v", name, n, want)
			}
		}
		w.expect(t, registry.EventSnapshotEnd, "")
		e.register(t, uuidB, "")
		w.expect(t, registry.EventRegistered, uuidB)
	})
}
