package registry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// A conflict whose conditions all still hold is the database failing to
// serialize concurrent transactions, not a missing node: every write retries
// it instead of reporting not found or skipping.
func TestSerializationConflictsAreRetried(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		cs := &contendedStore{Store: store}
		e := newEnv(cs)
		e.register(t, uuidA, "")
		e.register(t, uuidB, "")

		steps := []struct {
			name string
			do   func() error
		}{
			{"register", func() error {
				_, err := e.nodes.Register(t.Context(), registry.Node{UUID: uuidA, IPAddress: "h", Port: 1})
				return err
			}},
			{"update", func() error {
				_, err := e.nodes.Update(t.Context(), uuidA, registry.Node{IPAddress: "h", Port: 2, Status: "unhealthy"})
				return err
			}},
			{"heartbeat", func() error {
				_, err := e.nodes.Heartbeat(t.Context(), uuidA, nil)
				return err
			}},
			{"resource update", func() error {
				_, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidA})
				return err
			}},
			{"delete", func() error { return e.nodes.Delete(t.Context(), uuidB) }},
		}
		for _, step := range steps {
			cs.failNext(3)
			if err := step.do(); err != nil {
				t.Errorf("%s after 3 serialization conflicts: %v", step.name, err)
			}
		}

		e.clock.Advance(time.Hour)
		cs.failNext(3)
		sweep(t, e.nodes, registry.Liveness{}, registry.SweepResult{MarkedUnhealthy: 1, DeletedResources: 1})

		// A conflict that never clears is reported as one, not as not-found.
		cs.failNext(1000)
		_, err := e.nodes.Heartbeat(t.Context(), uuidA, nil)
		if !errors.Is(err, sqlkv.ErrConflict) || errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Heartbeat under endless conflicts: %v, want ErrConflict", err)
		}
		cs.failNext(0)
	})
}
