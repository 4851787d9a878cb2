package registry_test

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

func TestRegister(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		t.Run("generates a uuid", func(t *testing.T) {
			e := newEnv(store)
			n := e.register(t, "", "")
			canon, err := registry.CanonicalUUID(n.UUID)
			if err != nil || canon != n.UUID {
				t.Fatalf("generated uuid %q is not canonical (%q, %v)", n.UUID, canon, err)
			}
			if got := e.get(t, n.UUID); got.UUID != n.UUID {
				t.Errorf("Get(%q).UUID = %q", n.UUID, got.UUID)
			}
			other := e.register(t, "", "")
			if other.UUID == n.UUID {
				t.Errorf("two registrations got the same uuid %q", n.UUID)
			}
		})

		t.Run("stores canonical uuid and server times", func(t *testing.T) {
			e := newEnv(store)
			n, err := e.nodes.Register(t.Context(), registry.Node{
				UUID:          "{5B1F2A3C-4D5E-4F60-8172-839405A6B7C8}",
				IPAddress:     "node-1.cluster.local",
				Port:          50051,
				HTTPPort:      8080,
				Status:        "ONLINE",
				LastHeartbeat: time.Unix(1, 0), // set by the server, not the client
				RegisteredAt:  time.Unix(1, 0),
				Metadata:      map[string]string{"zone": "a"},
				HealthInfo:    map[string]string{"ignored": "yes"},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := registry.Node{
				UUID:          uuidB,
				IPAddress:     "node-1.cluster.local",
				Port:          50051,
				HTTPPort:      8080,
				Status:        registry.StatusActive,
				LastHeartbeat: e.clock.Now(),
				RegisteredAt:  e.clock.Now(),
				Metadata:      map[string]string{"zone": "a"},
				HealthInfo:    map[string]string{},
			}
			assertNode(t, "Register", n, want)
			assertNode(t, "Get", e.get(t, "URN:UUID:"+uuidB), want)
		})

		t.Run("re-register keeps registered_at and health, refreshes heartbeat, replaces the rest", func(t *testing.T) {
			e := newEnv(store)
			first, err := e.nodes.Register(t.Context(), registry.Node{
				UUID: uuidA, IPAddress: "10.0.0.1", Port: 1, HTTPPort: 2,
				Metadata: map[string]string{"a": "1", "b": "2"},
			})
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			if _, err := e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"disk": "ok"}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			got, err := e.nodes.Register(t.Context(), registry.Node{
				UUID: uuidA, IPAddress: "10.0.0.2", Port: 3, Status: "inactive",
				Metadata: map[string]string{"c": "3"},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := registry.Node{
				UUID: uuidA, IPAddress: "10.0.0.2", Port: 3, HTTPPort: 0,
				Status:        registry.StatusInactive,
				LastHeartbeat: e.clock.Now(),
				RegisteredAt:  first.RegisteredAt,
				Metadata:      map[string]string{"c": "3"},
				HealthInfo:    map[string]string{"disk": "ok"},
			}
			assertNode(t, "Register", got, want)
			assertNode(t, "Get", e.get(t, uuidA), want)
		})

		t.Run("unhealthy is active with an expired heartbeat", func(t *testing.T) {
			e := newEnv(store)
			if got := e.register(t, uuidC, "unhealthy").Status; got != registry.StatusUnhealthy {
				t.Fatalf("Register(unhealthy).Status = %q", got)
			}
			if got := e.get(t, uuidC).Status; got != registry.StatusUnhealthy {
				t.Fatalf("Get.Status = %q, want unhealthy", got)
			}
			if _, err := e.nodes.Heartbeat(t.Context(), uuidC, nil); err != nil {
				t.Fatal(err)
			}
			if got := e.get(t, uuidC).Status; got != registry.StatusActive {
				t.Errorf("Status after heartbeat = %q, want active", got)
			}
		})
	})
}

func TestRegisterKeepsConcurrentHeartbeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		hs := &hookStore{Store: store}
		e := newEnv(store)
		r := registry.NewView(hs, registry.WithClock(e.clock.Now)).Nodes()
		e.register(t, uuidA, "")
		hs.before = func() {
			if _, err := e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"late": "yes"}); err != nil {
				t.Errorf("Heartbeat: %v", err)
			}
		}
		if _, err := r.Register(t.Context(), registry.Node{UUID: uuidA, IPAddress: "h", Port: 9}); err != nil {
			t.Fatal(err)
		}
		n := e.get(t, uuidA)
		if got, want := n.HealthInfo, map[string]string{"late": "yes"}; !maps.Equal(got, want) {
			t.Errorf("HealthInfo = %v, want %v (a heartbeat between Register's read and write was lost)", got, want)
		}
		if got, want := n.IPAddress, "h"; got != want {
			t.Errorf("IPAddress = %q, want %q", got, want)
		}
	})
}

func TestUpdate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		reg, err := e.nodes.Register(t.Context(), registry.Node{
			UUID: uuidA, IPAddress: "10.0.0.1", Port: 1, HTTPPort: 2,
			Metadata: map[string]string{"a": "1", "b": "2"},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		beat, err := e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"cpu": "ok"})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)

		t.Run("replaces fields and keeps times and health", func(t *testing.T) {
			got, err := e.nodes.Update(t.Context(), uuidA, registry.Node{
				UUID:      "0A8E4C4E5D6B4F8E9A611B2C3D4E5F60", // same node, other spelling
				IPAddress: "10.9.9.9", Port: 7, Status: "decommissioning",
				Metadata:      map[string]string{"b": "3"},
				LastHeartbeat: time.Unix(5, 0), RegisteredAt: time.Unix(5, 0), // ignored
				HealthInfo: map[string]string{"ignored": "yes"},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := registry.Node{
				UUID: uuidA, IPAddress: "10.9.9.9", Port: 7, HTTPPort: 0,
				Status:        registry.StatusDecommissioning,
				LastHeartbeat: beat,
				RegisteredAt:  reg.RegisteredAt,
				Metadata:      map[string]string{"b": "3"},
				HealthInfo:    map[string]string{"cpu": "ok"},
			}
			assertNode(t, "Update", got, want)
			assertNode(t, "Get", e.get(t, uuidA), want)
		})

		t.Run("empty status is active", func(t *testing.T) {
			got, err := e.nodes.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != registry.StatusActive || e.get(t, uuidA).Status != registry.StatusActive {
				t.Errorf("Status = %q, want active", got.Status)
			}
			if got := e.get(t, uuidA).Metadata; len(got) != 0 {
				t.Errorf("Metadata = %v, want empty after an update without metadata", got)
			}
		})

		t.Run("unhealthy until the next heartbeat", func(t *testing.T) {
			if _, err := e.nodes.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 1, Status: "Unhealthy"}); err != nil {
				t.Fatal(err)
			}
			n := e.get(t, uuidA)
			if n.Status != registry.StatusUnhealthy || !n.LastHeartbeat.Equal(beat) || n.HealthInfo["cpu"] != "ok" {
				t.Errorf("after Update(unhealthy): status %q, last_heartbeat %v, health %v; want unhealthy, %v, cpu=ok",
					n.Status, n.LastHeartbeat, n.HealthInfo, beat)
			}
			if _, err := e.nodes.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 1, Status: "online"}); err != nil {
				t.Fatal(err)
			}
			if got := e.get(t, uuidA).Status; got != registry.StatusActive {
				t.Errorf("after Update(online): status %q, want active", got)
			}
		})

		t.Run("mismatched uuid", func(t *testing.T) {
			_, err := e.nodes.Update(t.Context(), uuidA, registry.Node{UUID: uuidB, IPAddress: "h", Port: 1})
			var ve *registry.ValidationError
			if !errors.As(err, &ve) || ve.Field != "node.uuid" {
				t.Errorf("Update with another node's uuid: %v, want a ValidationError on node.uuid", err)
			}
		})

		t.Run("invalid input", func(t *testing.T) {
			_, err := e.nodes.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 0})
			if got, want := fmt.Sprint(err), "node.port: must be 1..65535, got 0"; got != want {
				t.Errorf("Update error = %q, want %q", got, want)
			}
			_, err = e.nodes.Update(t.Context(), "nope", registry.Node{IPAddress: "h", Port: 1})
			if got, want := fmt.Sprint(err), `uuid: not a UUID: "nope"`; got != want {
				t.Errorf("Update error = %q, want %q", got, want)
			}
		})

		t.Run("not found", func(t *testing.T) {
			_, err := e.nodes.Update(t.Context(), uuidB, registry.Node{IPAddress: "h", Port: 1})
			if !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Update of an absent node: %v, want ErrNotFound", err)
			}
			if ok, _ := sqlkv.Exists(t.Context(), store, []byte("node:"+uuidB)); ok {
				t.Error("Update of an absent node created it")
			}
		})
	})
}

// An Update that flips the expired flag rewrites the heartbeat record; a
// heartbeat landing between its read and its write must survive.
func TestUpdateKeepsConcurrentHeartbeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		hs := &hookStore{Store: store}
		e := newEnv(store)
		r := registry.NewView(hs, registry.WithClock(e.clock.Now)).Nodes()
		e.register(t, uuidA, "")
		e.clock.Advance(time.Second)
		var beat time.Time
		hs.before = func() {
			var err error
			if beat, err = e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"late": "yes"}); err != nil {
				t.Errorf("Heartbeat: %v", err)
			}
		}
		if _, err := r.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 9, Status: "unhealthy"}); err != nil {
			t.Fatal(err)
		}
		n := e.get(t, uuidA)
		if got, want := n.HealthInfo, map[string]string{"late": "yes"}; !maps.Equal(got, want) {
			t.Errorf("HealthInfo = %v, want %v", got, want)
		}
		if !n.LastHeartbeat.Equal(beat) {
			t.Errorf("LastHeartbeat = %v, want the concurrent heartbeat's %v", n.LastHeartbeat, beat)
		}
		// The update was retried after the heartbeat, so it is the later one.
		if got, want := n.Status, registry.StatusUnhealthy; got != want {
			t.Errorf("Status = %q, want %q", got, want)
		}
	})
}

// A delete and re-register between Update's read and its write must not
// bring back the old registration's registered_at.
func TestUpdateAfterReregisterKeepsNewRegisteredAt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		hs := &hookStore{Store: store}
		e := newEnv(store)
		r := registry.NewView(hs, registry.WithClock(e.clock.Now)).Nodes()
		e.register(t, uuidA, "")
		var again registry.Node
		hs.before = func() {
			if err := e.nodes.Delete(t.Context(), uuidA); err != nil {
				t.Errorf("Delete: %v", err)
			}
			e.clock.Advance(time.Minute)
			again = e.register(t, uuidA, "")
		}
		if _, err := r.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 9}); err != nil {
			t.Fatal(err)
		}
		n := e.get(t, uuidA)
		if !n.RegisteredAt.Equal(again.RegisteredAt) {
			t.Errorf("RegisteredAt = %v, want the re-registration's %v", n.RegisteredAt, again.RegisteredAt)
		}
		if n.IPAddress != "h" {
			t.Errorf("IPAddress = %q, want the update's", n.IPAddress)
		}
	})
}

func TestDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		e.register(t, uuidA, "")
		e.register(t, uuidB, "")
		for _, id := range []string{uuidA, uuidB} {
			if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: id, CPUUsagePercent: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.nodes.Delete(t.Context(), "{"+uuidA+"}"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := e.nodes.Get(t.Context(), uuidA); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
		if _, found, err := e.res.Get(t.Context(), uuidA); err != nil || found {
			t.Errorf("resource Get after Delete: found=%v, %v; want found=false", found, err)
		}
		for _, prefix := range []string{"node:", "heartbeat:", "resource:"} {
			if ok, err := sqlkv.Exists(t.Context(), store, []byte(prefix+uuidA)); err != nil || ok {
				t.Errorf("%s%s exists after Delete (err %v)", prefix, uuidA, err)
			}
		}
		if _, found, _ := e.res.Get(t.Context(), uuidB); !found {
			t.Error("Delete removed another node's resource record")
		}
		if err := e.nodes.Delete(t.Context(), uuidA); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
		if err := e.nodes.Delete(t.Context(), "bad"); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Delete(bad): %v, want ErrInvalid", err)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		reg := e.register(t, uuidA, "")

		t.Run("not found", func(t *testing.T) {
			if _, err := e.nodes.Heartbeat(t.Context(), uuidB, nil); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Heartbeat of an absent node: %v, want ErrNotFound", err)
			}
			if ok, _ := sqlkv.Exists(t.Context(), store, []byte("heartbeat:"+uuidB)); ok {
				t.Error("Heartbeat of an absent node left a heartbeat record")
			}
			if _, err := e.nodes.Heartbeat(t.Context(), "bad", nil); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("Heartbeat(bad): %v, want ErrInvalid", err)
			}
		})

		t.Run("refreshes time and replaces health", func(t *testing.T) {
			e.clock.Advance(30 * time.Second)
			got, err := e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"a": "1", "b": "2"})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(e.clock.Now()) {
				t.Errorf("Heartbeat returned %v, want the server time %v", got, e.clock.Now())
			}
			e.clock.Advance(30 * time.Second)
			if _, err := e.nodes.Heartbeat(t.Context(), uuidA, map[string]string{"c": "3"}); err != nil {
				t.Fatal(err)
			}
			n := e.get(t, uuidA)
			if !n.LastHeartbeat.Equal(e.clock.Now()) || !n.RegisteredAt.Equal(reg.RegisteredAt) {
				t.Errorf("last_heartbeat %v, registered_at %v; want %v, %v", n.LastHeartbeat, n.RegisteredAt, e.clock.Now(), reg.RegisteredAt)
			}
			if want := map[string]string{"c": "3"}; !maps.Equal(n.HealthInfo, want) {
				t.Errorf("HealthInfo = %v, want %v", n.HealthInfo, want)
			}
			if _, err := e.nodes.Heartbeat(t.Context(), uuidA, nil); err != nil {
				t.Fatal(err)
			}
			if n := e.get(t, uuidA); n.HealthInfo == nil || len(n.HealthInfo) != 0 {
				t.Errorf("HealthInfo after a heartbeat without health = %#v, want empty", n.HealthInfo)
			}
		})

		t.Run("keeps inactive", func(t *testing.T) {
			e.register(t, uuidC, "inactive")
			if _, err := e.nodes.Heartbeat(t.Context(), uuidC, nil); err != nil {
				t.Fatal(err)
			}
			if got := e.get(t, uuidC).Status; got != registry.StatusInactive {
				t.Errorf("Status after heartbeat = %q, want inactive", got)
			}
		})

		t.Run("a resource report is not a heartbeat", func(t *testing.T) {
			before := e.get(t, uuidA).LastHeartbeat
			e.clock.Advance(time.Minute)
			if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidA}); err != nil {
				t.Fatal(err)
			}
			if got := e.get(t, uuidA).LastHeartbeat; !got.Equal(before) {
				t.Errorf("LastHeartbeat after a resource report = %v, want %v", got, before)
			}
		})
	})
}

// Heartbeats and updates of one node, all at once: neither may lose the
// other's write, and every call must succeed.
func TestConcurrentHeartbeatsAndUpdates(t *testing.T) {
	const workers, ops = 8, 40
	statuses := []registry.Status{"active", "inactive", "decommissioning", "online"}
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		reg := e.register(t, uuidA, "")
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers)
		for w := range workers {
			wg.Go(func() {
				for i := range ops {
					health := map[string]string{"hb": fmt.Sprintf("%d/%d", w, i)}
					if _, err := e.nodes.Heartbeat(t.Context(), uuidA, health); err != nil {
						errs <- fmt.Errorf("heartbeater %d op %d: %w", w, i, err)
						return
					}
				}
			})
			wg.Go(func() {
				for i := range ops {
					n := registry.Node{
						IPAddress: fmt.Sprintf("10.0.%d.%d", w, i), Port: int32(1000 + i),
						Status:   statuses[(w+i)%len(statuses)],
						Metadata: map[string]string{"writer": fmt.Sprint(w), "seq": fmt.Sprint(i)},
					}
					if _, err := e.nodes.Update(t.Context(), uuidA, n); err != nil {
						errs <- fmt.Errorf("updater %d op %d: %w", w, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		n := e.get(t, uuidA)
		// The final state is the last write of some updater and of some
		// heartbeater, whole: address, status and metadata of one update.
		w := n.Metadata["writer"]
		var wi int
		if _, err := fmt.Sscan(w, &wi); err != nil || wi < 0 || wi >= workers {
			t.Fatalf("Metadata = %v, not written by an updater", n.Metadata)
		}
		last := ops - 1
		wantMeta := map[string]string{"writer": w, "seq": fmt.Sprint(last)}
		if !maps.Equal(n.Metadata, wantMeta) {
			t.Errorf("Metadata = %v, want %v (the last update of writer %s)", n.Metadata, wantMeta, w)
		}
		if got, want := n.IPAddress, fmt.Sprintf("10.0.%d.%d", wi, last); got != want {
			t.Errorf("IPAddress = %q, want %q, from the same update as the metadata", got, want)
		}
		wantStatus, _ := registry.ParseStatus(string(statuses[(wi+last)%len(statuses)]))
		if n.Status != wantStatus {
			t.Errorf("Status = %q, want %q, from the same update as the metadata", n.Status, wantStatus)
		}
		var hw, hi int
		if _, err := fmt.Sscanf(n.HealthInfo["hb"], "%d/%d", &hw, &hi); err != nil || len(n.HealthInfo) != 1 || hi != last {
			t.Errorf("HealthInfo = %v, want the last heartbeat of some heartbeater", n.HealthInfo)
		}
		if !n.RegisteredAt.Equal(reg.RegisteredAt) {
			t.Errorf("RegisteredAt = %v, want %v", n.RegisteredAt, reg.RegisteredAt)
		}
	})
}

func TestList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		if got, err := e.nodes.List(t.Context(), registry.ListOptions{}); err != nil || len(got) != 0 {
			t.Fatalf("List of an empty registry = %v, %v", got, err)
		}
		// Registered out of order, listed in ascending uuid order.
		e.register(t, uuidC, "decommissioning")
		e.register(t, uuidA, "online")
		e.register(t, uuidB, "offline")
		const uuidD = "f0000000-0000-4000-8000-000000000000"
		e.register(t, uuidD, "unhealthy")
		// Another namespace's keys must not show up as nodes.
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidA}); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			filter string
			want   []string
		}{
			{"", []string{uuidA, uuidB, uuidC, uuidD}},
			{"active", []string{uuidA}},
			{"ONLINE", []string{uuidA}},
			{"inactive", []string{uuidB}},
			{" offline ", []string{uuidB}},
			{"Decommissioning", []string{uuidC}},
			{"unhealthy", []string{uuidD}},
		}
		for _, tc := range tests {
			got, err := e.nodes.List(t.Context(), registry.ListOptions{Status: tc.filter})
			if err != nil {
				t.Errorf("List(%q): %v", tc.filter, err)
				continue
			}
			var ids []string
			for _, n := range got {
				ids = append(ids, n.UUID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("List(%q) = %v, want %v", tc.filter, ids, tc.want)
			}
		}
		all, _ := e.nodes.List(t.Context(), registry.ListOptions{})
		if got, want := all[1], e.get(t, uuidB); !nodesEqual(got, want) {
			t.Errorf("List entry = %+v, want what Get returns, %+v", got, want)
		}

		_, err := e.nodes.List(t.Context(), registry.ListOptions{Status: "running"})
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || ve.Field != "status_filter" {
			t.Errorf("List(running): %v, want a ValidationError on status_filter", err)
		}
	})
}

func TestGetInvalidAndMissing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		if _, err := e.nodes.Get(t.Context(), uuidA); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Get of an absent node: %v, want ErrNotFound", err)
		}
		if _, err := e.nodes.Get(t.Context(), ""); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf(`Get(""): %v, want ErrInvalid`, err)
		}
	})
}

func nodesEqual(a, b registry.Node) bool {
	return a.UUID == b.UUID && a.IPAddress == b.IPAddress && a.Port == b.Port &&
		a.HTTPPort == b.HTTPPort && a.Status == b.Status &&
		a.LastHeartbeat.Equal(b.LastHeartbeat) && a.RegisteredAt.Equal(b.RegisteredAt) &&
		maps.Equal(a.Metadata, b.Metadata) && maps.Equal(a.HealthInfo, b.HealthInfo) &&
		a.Metadata != nil && a.HealthInfo != nil && b.Metadata != nil && b.HealthInfo != nil
}

func assertNode(t *testing.T, what string, got, want registry.Node) {
	t.Helper()
	if !nodesEqual(got, want) {
		t.Errorf("%s =\n  %+v\nwant\n  %+v", what, got, want)
	}
}
