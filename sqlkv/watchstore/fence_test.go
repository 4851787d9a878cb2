package watchstore

import (
	"context"
	"errors"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

// A Put that the wrapped store has committed but not yet returned is what
// a Get of its key through the Store sees; the Get answers only once the
// Put is published, so a Fence after it covers the Put: the
// subscription's Position counts it.
func TestReadAnswersOnlyFromPublishedWrites(t *testing.T) {
	inner := &heldApply{Store: memory.New(), committed: make(chan struct{}), release: make(chan struct{})}
	s := New(inner)
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	sub, err := s.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := make(chan error, 1)
	go func() {
		_, err := sqlkv.PutValue(ctx, s, []byte("k"), []byte("v"))
		put <- err
	}()
	<-inner.committed
	// The held Put goes on once the Get waits.
	if _, err := s.Get(&onDone{Context: ctx, f: func() { close(inner.release) }}, []byte("k")); err != nil {
		t.Fatalf("Get of the committed key = %v", err)
	}
	if err := s.Fence(ctx); err != nil {
		t.Fatalf("Fence = %v", err)
	}
	if got := sub.Position(); got != 1 {
		t.Fatalf("Position after a Get that saw the Put, and a Fence = %d; want 1", got)
	}
	if err := <-put; err != nil {
		t.Fatal(err)
	}
}

// heldApply holds its first Apply after the wrapped store committed it
// until release is closed.
type heldApply struct {
	sqlkv.Store
	held               bool
	committed, release chan struct{}
}

func (s *heldApply) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	v, err := s.Store.Apply(ctx, ops...)
	if !s.held {
		s.held = true
		close(s.committed)
		<-s.release
	}
	return v, err
}

// A call waits for the writes in flight on its keys (and for wide writes
// whose prefix covers them), not for its own, not for other keys'; Fence
// waits only for writes being handed to the subscriptions.
func TestInflightWaitsForWritesOfTheSameKeys(t *testing.T) {
	var w inflight
	ctx := t.Context()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	waits := func(err error) bool { return errors.Is(err, context.Canceled) }
	key := func(s string) [][]byte { return [][]byte{[]byte(s)} }

	a := w.begin(key("a"), nil, false)
	b := w.begin([][]byte{[]byte("b"), []byte("a")}, nil, false)
	if err := w.waitKeys(canceled, nil, key("c")); err != nil {
		t.Fatalf("waitKeys(c) with writes of a and b in flight = %v; want no wait", err)
	}
	if err := w.waitKeys(canceled, a, key("a")); !waits(err) {
		t.Fatalf("waitKeys(a) by a, with b writing a = %v; want a wait", err)
	}
	w.publish(b, nil)
	if err := w.waitKeys(canceled, a, key("a")); err != nil {
		t.Fatalf("waitKeys(a) by a, alone on a = %v; want no wait", err)
	}
	if err := w.waitKeys(canceled, nil, key("a")); !waits(err) {
		t.Fatalf("waitKeys(a) with a in flight = %v; want a wait", err)
	}
	if err := w.waitPublishing(canceled); err != nil {
		t.Fatalf("fence with a not publishing = %v; want no wait", err)
	}
	// a publishes: while it does, a fence waits for it.
	sent := false
	w.publish(a, func() {
		sent = true
		if err := w.waitPublishing(canceled); !waits(err) {
			t.Errorf("fence while a publishes = %v; want a wait", err)
		}
	})
	if !sent {
		t.Fatal("publish did not send")
	}
	if err := w.waitKeys(canceled, nil, key("a")); err != nil {
		t.Fatalf("waitKeys(a) after a published = %v", err)
	}

	wide := w.begin(nil, []byte("p/"), true)
	if err := w.waitKeys(canceled, nil, key("p/x")); !waits(err) {
		t.Fatalf("waitKeys(p/x) with a DeletePrefix(p/) in flight = %v; want a wait", err)
	}
	if err := w.waitKeys(canceled, nil, key("q")); err != nil {
		t.Fatalf("waitKeys(q) with a DeletePrefix(p/) in flight = %v; want no wait", err)
	}
	// It ends while a read waits for it.
	if err := w.waitKeys(&onDone{Context: ctx, f: func() { w.publish(wide, nil) }}, nil, key("p/x")); err != nil {
		t.Fatalf("waitKeys(p/x) = %v", err)
	}
	if len(w.all) != 0 || len(w.byKey) != 0 || len(w.wide) != 0 {
		t.Fatalf("inflight keeps %d writes, %d keys, %d wide after every write ended", len(w.all), len(w.byKey), len(w.wide))
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
