package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// TestWatch is the conformance suite for sqlkv.Watchable: every watchable
// store (sqlkv/watchstore over memory or SQLite, sqlkv/postgres) runs it
// unchanged. open must return a new, empty store that implements
// sqlkv.Watchable and register its Close with t.Cleanup; one subtest closes
// its store itself, so Close must be safe to call twice.
//
// It holds stores to what the Watch contract promises, and no more: a
// change may be reported more than once, and a subscription may be told to
// resync at any time (a new Postgres connection announces itself so), so the
// tests collect changes until the ones they expect have come, and treat a
// resync as "re-read", never as a failure.
func TestWatch(t *testing.T, open func(t *testing.T) sqlkv.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s sqlkv.Store, w sqlkv.Watchable)
	}{
		{"ReportsWritesUnderThePrefix", testWatchReportsWrites},
		{"FailedApplyReportsNothing", testWatchFailedApply},
		{"DeletePrefixIsReported", testWatchDeletePrefix},
		{"SlowSubscriberResyncsWithoutBlockingWriters", testWatchSlowSubscriber},
		{"ClosedSubscriptionAndStore", testWatchClosed},
		{"ValuesAreThoseWritten", testWatchValues},
		{"FenceCoversEarlierWrites", testWatchFence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			w, ok := s.(sqlkv.Watchable)
			if !ok {
				t.Fatalf("%T does not implement sqlkv.Watchable", s)
			}
			tt.fn(t, s, w)
		})
	}
}

// watchWait bounds how long a test waits for a change it expects: changes
// travel through a database connection on some backends.
const watchWait = 20 * time.Second

func subscribe(t *testing.T, w sqlkv.Watchable, prefix string) *sqlkv.Subscription {
	t.Helper()
	sub, err := w.Watch(t.Context(), []byte(prefix))
	if err != nil {
		t.Fatalf("Watch(%q): %v", prefix, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// collect takes batches from sub until done says it has seen enough,
// returning the changes and how many resyncs came on the way.
func collect(t *testing.T, sub *sqlkv.Subscription, done func(changes []sqlkv.Change, resyncs int) bool) ([]sqlkv.Change, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), watchWait)
	defer cancel()
	var (
		changes []sqlkv.Change
		resyncs int
	)
	for !done(changes, resyncs) {
		b, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d changes and %d resyncs: %v", len(changes), resyncs, err)
		}
		if b.Resync {
			resyncs++
		}
		changes = append(changes, b.Changes...)
	}
	return changes, resyncs
}

func hasChange(changes []sqlkv.Change, want sqlkv.Change) bool {
	for _, c := range changes {
		if bytes.Equal(c.Key, want.Key) && c.Deleted == want.Deleted && (want.Deleted || c.Version == want.Version) {
			return true
		}
	}
	return false
}

func hasAll(changes []sqlkv.Change, want []sqlkv.Change) bool {
	for _, w := range want {
		if !hasChange(changes, w) {
			return false
		}
	}
	return true
}

func testWatchReportsWrites(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	ctx := t.Context()
	sub := subscribe(t, w, "a")

	odd := "a\x00\xff'\\%_"
	v1 := put(t, s, odd, "x")
	put(t, s, "b1", "x") // another prefix: never reported
	res, err := s.Apply(ctx,
		sqlkv.Put([]byte("a2"), []byte("y")),
		sqlkv.Delete([]byte(odd)),
		sqlkv.Check([]byte("a2"), sqlkv.IfExists()),
	)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	marker := put(t, s, "a-marker", "")
	want := []sqlkv.Change{
		{Key: []byte(odd), Version: v1},
		{Key: []byte("a2"), Version: res[0].Version},
		{Key: []byte(odd), Deleted: true},
		{Key: []byte("a-marker"), Version: marker},
	}
	changes, _ := collect(t, sub, func(c []sqlkv.Change, _ int) bool { return hasAll(c, want) })
	for _, c := range changes {
		if !bytes.HasPrefix(c.Key, []byte("a")) {
			t.Errorf("a watch of prefix %q reported %q", "a", c.Key)
		}
	}
}

func testWatchFailedApply(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	ctx := t.Context()
	sub := subscribe(t, w, "")
	if _, err := s.Apply(ctx, sqlkv.Put([]byte("never"), nil).If(sqlkv.IfVersion(12345))); !errors.Is(err, sqlkv.ErrConflict) {
		t.Fatalf("Apply with a failing condition = %v, want ErrConflict", err)
	}
	marker := put(t, s, "marker", "")
	changes, _ := collect(t, sub, func(c []sqlkv.Change, _ int) bool {
		return hasChange(c, sqlkv.Change{Key: []byte("marker"), Version: marker})
	})
	for _, c := range changes {
		if string(c.Key) == "never" {
			t.Errorf("a failed Apply was reported: %v", c)
		}
	}
}

func testWatchDeletePrefix(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	fill(t, s, "p1", "p2", "q1")
	sub := subscribe(t, w, "p")
	if n, err := sqlkv.DeletePrefix(t.Context(), s, []byte("p")); err != nil || n != 2 {
		t.Fatalf("DeletePrefix = %d, %v; want 2, nil", n, err)
	}
	// Either form tells a watcher both keys are gone: a delete of each, or a
	// resync (re-read, and find them missing).
	want := []sqlkv.Change{{Key: []byte("p1"), Deleted: true}, {Key: []byte("p2"), Deleted: true}}
	collect(t, sub, func(c []sqlkv.Change, resyncs int) bool { return hasAll(c, want) || resyncs > 0 })
}

func testWatchSlowSubscriber(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	ctx := t.Context()
	sub := subscribe(t, w, "")
	// Nobody reads sub while more changes than its buffer are committed
	// (in one BatchPut, so that the test is quick on every backend): the
	// write must not wait for the subscriber ...
	entries := make([]sqlkv.Entry, sqlkv.SubscriptionBuffer+1)
	for i := range entries {
		entries[i].Key = fmt.Appendf(nil, "k%05d", i)
	}
	if err := sqlkv.BatchPut(ctx, s, entries); err != nil {
		t.Fatalf("BatchPut of %d keys with a subscriber that reads nothing: %v", len(entries), err)
	}
	// ... and the subscriber misses nothing silently: it hears of every key,
	// or is told to resync. Then it hears new changes.
	heard, seen := map[string]bool{}, 0
	collect(t, sub, func(c []sqlkv.Change, resyncs int) bool {
		for _, ch := range c[seen:] {
			heard[string(ch.Key)] = true
		}
		seen = len(c)
		return resyncs > 0 || len(heard) == len(entries)
	})
	after := put(t, s, "after", "")
	collect(t, sub, func(c []sqlkv.Change, _ int) bool {
		return hasChange(c, sqlkv.Change{Key: []byte("after"), Version: after})
	})
}

func testWatchClosed(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	ctx := t.Context()
	sub := subscribe(t, w, "")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	// What is pending (a resync announcing a new connection, say) may still
	// be taken; then Next must give up rather than wait.
	for i := 0; ; i++ {
		_, err := sub.Next(cancelled)
		if err == nil && i < 10 {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Next with a cancelled context = %v, want context.Canceled", err)
		}
		break
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Whatever was pending may still be taken; then the end.
	end, stop := context.WithTimeout(ctx, watchWait)
	defer stop()
	for {
		_, err := sub.Next(end)
		if err == nil {
			continue
		}
		if !errors.Is(err, sqlkv.ErrClosed) {
			t.Errorf("Next after the store's Close = %v, want ErrClosed", err)
		}
		break
	}
	if _, err := w.Watch(ctx, nil); !errors.Is(err, sqlkv.ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
}

func testWatchValues(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	sub := subscribe(t, w, "v")
	v := put(t, s, "v1", "value")
	changes, _ := collect(t, sub, func(c []sqlkv.Change, _ int) bool {
		return hasChange(c, sqlkv.Change{Key: []byte("v1"), Version: v})
	})
	for _, c := range changes {
		if c.HasValue && string(c.Key) == "v1" && c.Version == v && string(c.Value) != "value" {
			t.Errorf("change %q v%d carries value %q, want %q", c.Key, c.Version, c.Value, "value")
		}
	}
}

// testWatchFence: a store that is a sqlkv.Fencer has handed every write
// that returned before Fence to its subscriptions when Fence returns,
// without the subscriber waiting; Position counts it.
func testWatchFence(t *testing.T, s sqlkv.Store, w sqlkv.Watchable) {
	f, ok := s.(sqlkv.Fencer)
	if !ok {
		t.Skipf("%T is not a sqlkv.Fencer", s)
	}
	sub := subscribe(t, w, "f")
	for round := range 10 {
		before := sub.Position()
		key := fmt.Sprintf("f%d", round)
		put(t, s, key, "")
		if err := f.Fence(t.Context()); err != nil {
			t.Fatalf("Fence: %v", err)
		}
		if sub.Position() == before {
			t.Fatalf("round %d: Position unchanged after a write and a Fence", round)
		}
		found := false
		for !found {
			b, err := sub.Take()
			if err != nil {
				t.Fatal(err)
			}
			if b.Resync {
				break // re-read: the write is covered
			}
			if len(b.Changes) == 0 {
				t.Fatalf("round %d: after Fence, %q is not in the subscription", round, key)
			}
			if b.Position > sub.Position() {
				t.Fatalf("batch Position %d beyond the subscription's %d", b.Position, sub.Position())
			}
			for _, c := range b.Changes {
				found = found || string(c.Key) == key
			}
		}
	}
}
