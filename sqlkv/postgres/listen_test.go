package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/faultproxy"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/storetest"
)

func nextBatch(t *testing.T, sub *sqlkv.Subscription) sqlkv.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

// skipResyncs returns the next batch that is not a resync (a connection
// announces itself with one).
func nextChanges(t *testing.T, sub *sqlkv.Subscription) []sqlkv.Change {
	t.Helper()
	for {
		if b := nextBatch(t, sub); !b.Resync {
			return b.Changes
		}
	}
}

// Two stores on one schema stand for two SMS replicas: a write through one
// is heard by a watcher of the other, with its key and version.
func TestWatchAcrossStores(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	other := open(t, storetest.PostgresDSN(t)) // another schema: not heard
	ctx := t.Context()

	sub, err := b.Watch(ctx, []byte("n"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	other.Put(ctx, []byte("n-other"), nil)
	a.Put(ctx, []byte("x"), nil) // other prefix
	key := []byte("n\x00\xff'\\")
	v, err := a.Put(ctx, key, []byte("value"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlkv.DeleteKey(ctx, a, key); err != nil {
		t.Fatal(err)
	}
	var got []sqlkv.Change
	for len(got) < 2 {
		got = append(got, nextChanges(t, sub)...)
	}
	want := []sqlkv.Change{{Key: key, Version: v}, {Key: key, Deleted: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes = %v, want %v", got, want)
	}
}

// When the listening connection is lost, subscribers are told to resync,
// and changes are heard again after the reconnection.
func TestWatchResyncsAfterReconnect(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	s := open(t, dsn)
	ctx := t.Context()
	sub, err := s.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	res, err := s.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = 'LISTEN "sms_kv_' || left(md5(current_schema()), 16) || '"'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("terminated %d listening connections, want 1", n)
	}
	for !nextBatch(t, sub).Resync {
	}
	// Writes are heard again once reconnected; retry until one is.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no change heard after the reconnection")
		}
		if _, err := s.Put(ctx, []byte("k"), nil); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		b, err := sub.Next(wctx)
		cancel()
		if err == nil && len(b.Changes) > 0 {
			break
		}
	}
}

func TestWatch(t *testing.T) {
	kvtest.TestWatch(t, func(t *testing.T) sqlkv.Store { return open(t, storetest.PostgresDSN(t)) })
}

// Fence makes a subscription caught up with every write committed before
// it, by any replica: after b.Fence, the writes a made are in b's
// subscription without waiting. Concurrent fences share NOTIFYs and all
// return.
func TestFenceCoversOtherReplicasWrites(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	sub, err := b.Watch(ctx, []byte("f"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for round := range 20 {
		start := sub.Position()
		key := []byte(fmt.Sprintf("f%d", round))
		if _, err := a.Put(ctx, key, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Fence(ctx); err != nil {
			t.Fatalf("Fence: %v", err)
		}
		if sub.Position() == start {
			t.Fatalf("round %d: after Fence, the subscription has not been handed %q", round, key)
		}
		var found bool
		for !found {
			batch, err := sub.Take()
			if err != nil {
				t.Fatal(err)
			}
			if len(batch.Changes) == 0 && !batch.Resync {
				t.Fatalf("round %d: after Fence, %q is not in the subscription", round, key)
			}
			for _, c := range batch.Changes {
				found = found || string(c.Key) == string(key)
			}
		}
	}

	errs := make(chan error, 32)
	for range cap(errs) {
		go func() { errs <- b.Fence(ctx) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Fence: %v", err)
		}
	}
}

// Fence without a Watch (no listening connection) is unavailable, not a
// hang.
func TestFenceWithoutWatch(t *testing.T) {
	s := open(t, storetest.PostgresDSN(t))
	if err := s.Fence(t.Context()); !errors.Is(err, sqlkv.ErrUnavailable) {
		t.Errorf("Fence = %v, want ErrUnavailable", err)
	}
}

// When the network to the server goes silent with the listening connection
// open (a proxy holding every byte: TCP itself stays up), the listener's
// probe finds it, subscribers are told to resync, and once the network
// heals changes are heard again.
func TestWatchResyncsWhenTheNetworkGoesSilent(t *testing.T) {
	postgres.SetListenProbe(t, 200*time.Millisecond, 300*time.Millisecond)
	proxy, dsn, err := faultproxy.StartURL(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s := open(t, dsn)
	ctx := t.Context()
	sub, err := s.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	proxy.Blackhole(true)
	for !nextBatch(t, sub).Resync {
	}
	proxy.Blackhole(false)
	deadline := time.Now().Add(time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no change heard after the network healed")
		}
		v, err := s.Put(ctx, []byte("k"), nil)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		b, err := sub.Next(wctx)
		cancel()
		if err == nil && slices.ContainsFunc(b.Changes, func(c sqlkv.Change) bool { return c.Version == v }) {
			return
		}
	}
}
