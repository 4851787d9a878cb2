package registry_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// skewedClock is a process's local clock: real time off by skew, plus an
// advance shared by every skewedClock of a test (time passing without
// waiting for it).
type skewedClock struct {
	skew    time.Duration
	advance *atomic.Int64
}

func (c skewedClock) Now() time.Time {
	return time.Now().Add(c.skew + time.Duration(c.advance.Load()))
}

// Two registries on one Postgres database whose local clocks differ by six
// heartbeat timeouts: with their clocks corrected to the database's
// (DatabaseClock), neither marks the other's fresh nodes unhealthy, and
// both see a silent node expire one timeout after its last heartbeat, as
// one process would. With the local clocks as they are, the fast replica
// marks the slow one's fresh node at once: the failure this prevents.
func TestLivenessOnTheDatabaseClock(t *testing.T) {
	const timeout = 10 * time.Second
	l := registry.Liveness{HeartbeatTimeout: timeout}
	store := storetest.Open(t, kvstore.BackendPostgres)
	src, ok := store.(registry.ClockSource)
	if !ok {
		t.Fatalf("the Postgres store (%T) has no database clock", store)
	}
	var advance atomic.Int64
	fast := skewedClock{skew: 3 * timeout, advance: &advance}
	slow := skewedClock{skew: -3 * timeout, advance: &advance}

	t.Run("corrected to the database clock", func(t *testing.T) {
		clockA, clockB := registry.NewDatabaseClock(src, fast.Now), registry.NewDatabaseClock(src, slow.Now)
		for _, c := range []*registry.DatabaseClock{clockA, clockB} {
			if err := c.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if d := clockA.Now().Sub(clockB.Now()).Abs(); d > timeout/2 {
			t.Fatalf("corrected clocks still %v apart", d)
		}
		a := newEnv(store, registry.WithClock(clockA.Now))
		b := newEnv(store, registry.WithClock(clockB.Now))
		a.register(t, uuidA, "")
		b.register(t, uuidB, "")
		if _, err := b.nodes.Heartbeat(t.Context(), uuidB, nil); err != nil {
			t.Fatal(err)
		}

		// Fresh on both clocks: no false marks.
		sweep(t, a.nodes, l, registry.SweepResult{})
		sweep(t, b.nodes, l, registry.SweepResult{})

		// Two timeouts pass in silence (the clocks keep their offsets):
		// the slow replica's sweep marks both, the fast one finds nothing
		// left to do. No missed marks, none twice.
		advance.Add(int64(2 * timeout))
		sweep(t, b.nodes, l, registry.SweepResult{MarkedUnhealthy: 2})
		sweep(t, a.nodes, l, registry.SweepResult{})
		assertStatuses(t, a, map[string]registry.Status{uuidA: registry.StatusUnhealthy, uuidB: registry.StatusUnhealthy})
	})

	t.Run("local clocks as they are", func(t *testing.T) {
		advance.Store(0)
		a := newEnv(store, registry.WithClock(fast.Now))
		b := newEnv(store, registry.WithClock(slow.Now))
		b.register(t, uuidC, "")
		// The fast replica sees the slow one's heartbeat six timeouts old.
		res, err := a.nodes.Sweep(t.Context(), l)
		if err != nil {
			t.Fatal(err)
		}
		if res.MarkedUnhealthy != 1 {
			t.Fatalf("Sweep on skewed local clocks = %+v: expected the false mark this test guards against", res)
		}
	})
}
