package watchstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) sqlkv.Store {
		s := watchstore.New(memory.New())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// next waits for the subscription's next batch.
func next(t *testing.T, sub *sqlkv.Subscription) sqlkv.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

func TestWatchReportsWrites(t *testing.T) {
	ctx := t.Context()
	s := watchstore.New(memory.New())
	defer s.Close()
	sub, err := s.Watch(ctx, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	v1, _ := s.Put(ctx, []byte("a1"), []byte("x"))
	s.Put(ctx, []byte("b1"), []byte("x")) // other prefix
	res, err := s.Apply(ctx,
		sqlkv.Put([]byte("a2"), []byte("y")),
		sqlkv.Delete([]byte("a1")),
		sqlkv.Delete([]byte("a3")), // missing: not reported
		sqlkv.Check([]byte("a2"), sqlkv.IfExists()),
	)
	if err != nil {
		t.Fatal(err)
	}
	// A failed Apply reports nothing.
	if _, err := s.Apply(ctx, sqlkv.Put([]byte("a9"), nil).If(sqlkv.IfVersion(12345))); !errors.Is(err, sqlkv.ErrConflict) {
		t.Fatalf("Apply = %v, want ErrConflict", err)
	}
	got := fmt.Sprint(next(t, sub).Changes)
	want := fmt.Sprint([]sqlkv.Change{
		{Key: []byte("a1"), Version: v1},
		{Key: []byte("a2"), Version: res[0].Version},
		{Key: []byte("a1"), Deleted: true},
	})
	if got != want {
		t.Errorf("changes = %s, want %s", got, want)
	}

	if _, err := s.DeletePrefix(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if b := next(t, sub); !b.Resync {
		t.Errorf("after DeletePrefix: %+v, want a resync", b)
	}
}

func TestSlowSubscriberResyncsWithoutBlockingWriters(t *testing.T) {
	ctx := t.Context()
	s := watchstore.New(memory.New())
	defer s.Close()
	sub, err := s.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sqlkv.SubscriptionBuffer + 1 {
		if _, err := s.Put(ctx, fmt.Appendf(nil, "k%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if b := next(t, sub); !b.Resync || len(b.Changes) != 0 {
		t.Fatalf("batch = resync %v with %d changes, want a bare resync", b.Resync, len(b.Changes))
	}
	s.Put(ctx, []byte("after"), nil)
	if b := next(t, sub); b.Resync || len(b.Changes) != 1 {
		t.Errorf("batch after resync = %+v, want one change", b)
	}

	s.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, sqlkv.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Watch(ctx, nil); !errors.Is(err, sqlkv.ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
}
