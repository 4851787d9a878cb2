package watchstore

import (
	"context"
	"errors"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

// A Put that the wrapped store has committed, and that a reader of the
// store can see, is covered by a Fence even before it has returned: the
// subscription's Position after the Fence counts it.
func TestFenceCoversWriteCommittedNotReturned(t *testing.T) {
	inner := &heldPut{Store: memory.New(), committed: make(chan struct{}), release: make(chan struct{})}
	s := New(inner)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	sub, err := s.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, []byte("k"), []byte("v"))
		put <- err
	}()
	<-inner.committed
	if _, err := s.Get(ctx, []byte("k")); err != nil {
		t.Fatalf("Get of the committed key = %v", err)
	}
	// The held Put goes on once Fence waits.
	err = s.Fence(&onDone{Context: ctx, f: func() { close(inner.release) }})
	if err != nil {
		t.Fatalf("Fence = %v", err)
	}
	if got := sub.Position(); got != 1 {
		t.Fatalf("Position after Fence = %d; want 1 (the Put a reader could already see)", got)
	}
	if err := <-put; err != nil {
		t.Fatal(err)
	}
}

// heldPut holds its first Put after the wrapped store committed it until
// release is closed.
type heldPut struct {
	sqlkv.Store
	held               bool
	committed, release chan struct{}
}

func (s *heldPut) Put(ctx context.Context, key, value []byte) (int64, error) {
	v, err := s.Store.Put(ctx, key, value)
	if !s.held {
		s.held = true
		close(s.committed)
		<-s.release
	}
	return v, err
}

// wait waits for every write that began before it, whatever order they end
// in, and not for the writes that begin while it waits.
func TestInflightWaitsForEarlierWrites(t *testing.T) {
	var w inflight
	if err := w.wait(t.Context()); err != nil {
		t.Fatalf("wait with nothing in flight = %v", err)
	}
	one, two, three := w.begin(), w.begin(), w.begin()
	w.end(three)
	w.end(one)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.wait(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with write %d in flight = %v; want it to wait (context.Canceled)", two, err)
	}
	// While wait waits for two, a fourth write begins and two ends: the
	// fourth, begun after wait was called, does not hold it.
	var four uint64
	ctx := &onDone{Context: t.Context(), f: func() { four = w.begin(); w.end(two) }}
	if err := w.wait(ctx); err != nil {
		t.Fatalf("wait = %v", err)
	}
	if !ctx.called || w.low != three {
		t.Fatalf("wait returned without waiting (called %v) or before ticket %d ended (low %d)", ctx.called, three, w.low)
	}
	w.end(four)
	if err := w.wait(canceled); err != nil {
		t.Fatalf("wait with every write ended = %v", err)
	}
}

// onDone calls f the first time its Done channel is asked for, which is
// what a caller about to block on it does.
type onDone struct {
	context.Context
	f      func()
	called bool
}

func (c *onDone) Done() <-chan struct{} {
	if !c.called {
		c.called = true
		c.f()
	}
	return c.Context.Done()
}
